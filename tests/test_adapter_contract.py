"""The public adapter contract (``nbrepro.adapters``), and a third-party adapter that uses it.

The third-party adapter is README's example ("Adding a framework"), installed as a package
with a real entry point (a ``.dist-info`` folder on ``sys.path``) for a stand-in framework,
``dice``, and driven in fresh processes as a user would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import types
import typing
from collections.abc import Callable
from pathlib import Path

import pytest

import nbrepro
import nbrepro.adapters
from nbrepro._session import session
from nbrepro.adapters import ENTRY_POINT_GROUP, Backend, SeedContext

README = Path(__file__).resolve().parent.parent / "README.md"

# The stand-in framework: one global generator, and a fast path that is nondeterministic.
DICE = """
import random
__version__ = "1.0"
rng = random.Random()
fast = True
def roll():
    return rng.randint(1, 6)
"""


def readme_adapter() -> str:
    """The example adapter from README's "Adding a framework" section."""
    section = README.read_text(encoding="utf-8").split("## Adding a framework", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "README's 'Adding a framework' has no python example"
    return match[1]


@pytest.fixture
def dice_site(tmp_path: Path) -> Path:
    """A folder that, on sys.path, has dice and its nbrepro adapter installed."""
    site = tmp_path / "site"
    (site / "dice").mkdir(parents=True)
    (site / "dice" / "__init__.py").write_text(DICE)
    (site / "dice_nbrepro.py").write_text(readme_adapter())
    info = site / "dice-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dice\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\ndice = dice_nbrepro:DiceBackend\n"
    )
    return site


def test_third_party_adapter_is_loaded_and_drives_its_framework(
    dice_site: Path, run_fresh: Callable[..., list[str]]
) -> None:
    """Found by entry point, listed before import and not imported; seeded and switched to
    deterministic on import; reseeding repeats; state restores; its audit finding, its
    process-start setting and reset all go through the contract."""
    (out,) = run_fresh(
        """
        import json, sys
        import nbrepro
        from nbrepro._config import make_config
        from nbrepro._process_settings import process_start_settings

        result = {}
        status = nbrepro.seed(5, deterministic=True)
        result["before"] = [[f.version, f.seeded] for f in status.frameworks if f.name == "dice"]
        result["imported by nbrepro"] = "dice" in sys.modules
        result["settings"] = process_start_settings(make_config(5, deterministic=True), {})
        result["settings off"] = process_start_settings(make_config(5), {})
        import dice
        result["fast after import"] = dice.fast
        first = [dice.roll() for _ in range(8)]
        nbrepro.seed(5, deterministic=True)
        result["repeats"] = [dice.roll() for _ in range(8)] == first
        nbrepro.seed(6)
        result["other seed differs"] = [dice.roll() for _ in range(8)] != first
        state = nbrepro.capture_state()
        ahead = [dice.roll() for _ in range(4)]
        nbrepro.restore_state(state)
        result["restored"] = [dice.roll() for _ in range(4)] == ahead
        result["audit"] = [f.code for f in nbrepro.audit() if f.code.startswith("DICE")]
        result["after"] = [f.version for f in nbrepro.status().frameworks if f.name == "dice"]
        result["facts"] = nbrepro.environment()["frameworks"]["dice"]
        nbrepro.reset()
        dice.fast = False
        nbrepro.seed(7, deterministic=True)
        nbrepro.reset()
        result["fast after reset"] = dice.fast
        print(json.dumps(result))
        """,
        PYTHONPATH=str(dice_site),
    )
    assert json.loads(out) == {
        "before": [[None, True]],
        "imported by nbrepro": False,
        "settings": {"PYTHONHASHSEED": "0", "DICE_THREADS": "1"}
        | _builtin_settings(deterministic=True),
        "settings off": {"PYTHONHASHSEED": "0"} | _builtin_settings(deterministic=False),
        "fast after import": False,
        "repeats": True,
        "other seed differs": True,
        "restored": True,
        "audit": ["DICE001"],
        "after": ["1.0"],
        "facts": {"version": "1.0", "fast": True},  # seeded last without --deterministic
        "fast after reset": False,
    }


def _builtin_settings(deterministic: bool) -> dict[str, str]:
    """What nbrepro's own adapters add to the process-start settings on this machine."""
    from nbrepro._backends import load_backends
    from nbrepro._config import make_config

    config = make_config(5, deterministic=deterministic)
    settings: dict[str, str] = {}
    for backend in load_backends():
        settings.update(backend.process_start_settings(config, {}))
    return settings


def test_a_broken_adapter_is_reported_and_skipped(
    dice_site: Path, run_fresh: Callable[..., list[str]]
) -> None:
    """An entry point that fails to load, or is no Backend, warns once; seeding goes on."""
    (dice_site / "dice_nbrepro.py").write_text("raise RuntimeError('broken plug-in')\n")
    info = dice_site / "dice-1.0.dist-info" / "entry_points.txt"
    info.write_text(info.read_text() + "notabackend = json:dumps\n")
    (out,) = run_fresh(
        """
        import json, warnings
        import nbrepro
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            status = nbrepro.seed(3)
        print(json.dumps({
            "warnings": sorted(str(w.message) for w in caught),
            "names": [f.name for f in status.frameworks],
        }))
        """,
        PYTHONPATH=str(dice_site),
    )
    result = json.loads(out)
    assert "dice" not in result["names"] and "random" in result["names"]
    broken, wrong = result["warnings"]
    assert "could not load adapter 'dice_nbrepro:DiceBackend': broken plug-in" in broken
    assert "'json:dumps'" in wrong and "not a subclass of nbrepro.adapters.Backend" in wrong


def test_readme_adapter_is_strictly_typed(dice_site: Path) -> None:
    """The example passes mypy --strict against nbrepro's published types."""
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    if mypy is None:
        pytest.skip("mypy is not installed")
    # nbrepro from this checkout (an editable install is invisible to mypy); only the
    # example's own errors count.
    result = subprocess.run(
        [mypy, "--strict", "--no-incremental", "--follow-imports=silent", "dice_nbrepro.py"],
        capture_output=True,
        text=True,
        cwd=dice_site,
        env={**os.environ, "MYPYPATH": str(README.parent)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _public_types(annotation: object) -> list[type]:
    """The classes an annotation names (unions and generics taken apart)."""
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return [annotation]
    found = []
    for argument in typing.get_args(annotation):
        found += _public_types(argument)
    origin = typing.get_origin(annotation)
    if isinstance(origin, type) and origin is not types.UnionType:
        found.append(origin)
    return found


def test_the_contract_names_only_public_types() -> None:
    """Every type in a Backend or SeedContext signature is nbrepro.adapters' own, or Python's."""
    namespace = vars(nbrepro.adapters)
    for cls in (Backend, SeedContext):
        for name, member in vars(cls).items():
            function = member.fget if isinstance(member, property) else member
            if name.startswith("_") or not callable(function):
                continue
            hints = typing.get_type_hints(function, namespace)
            for annotation in hints.values():
                for kind in _public_types(annotation):
                    public = getattr(nbrepro.adapters, kind.__name__, None) is kind
                    assert public or kind.__module__ in ("builtins", "collections.abc", "types"), (
                        f"{cls.__name__}.{name} names {kind.__module__}.{kind.__qualname__}"
                    )
    assert nbrepro.Backend is Backend and nbrepro.Finding is nbrepro.adapters.Finding


def test_the_session_is_a_seed_context() -> None:
    """The session adapters are handed satisfies the published protocol."""
    assert isinstance(session(), SeedContext)
    assert not session().seeded
    nbrepro.seed(1)
    assert session().seeded and session().current_cell is None


def test_defaults_of_the_new_contract_methods() -> None:
    """An adapter that only seeds: no audit findings, no settings, its version as its facts."""

    class Minimal(Backend):
        name = "minimal"
        module = "json"

        def seed(self, seed: int) -> None:
            pass

    adapter = Minimal()
    assert adapter.audit() == []
    assert adapter.process_start_settings(None, {}) == {}
    assert adapter.environment_facts() == {"version": adapter.version()}
    assert adapter.installed_version() is None  # no distribution named "json"
    with pytest.raises(NotImplementedError):
        adapter.get_state()


def test_process_start_settings_import_no_framework(run_fresh: Callable[..., list[str]]) -> None:
    """Asking every installed adapter for its settings imports none of the frameworks."""
    (out,) = run_fresh(
        """
        import json, sys
        from nbrepro._config import make_config
        from nbrepro._process_settings import process_start_settings
        process_start_settings(make_config(1, deterministic=True, threads=2))
        heavy = ("torch", "tensorflow", "keras", "jax", "numpy")
        print(json.dumps([m for m in heavy if m in sys.modules]))
        """
    )
    assert json.loads(out) == []


def test_readme_documents_every_contract_method() -> None:
    """README's contract table names each public method of Backend."""
    section = README.read_text(encoding="utf-8").split("## Adding a framework", 1)[1]
    section = section.split("\n## ", 1)[0]
    public = [
        name
        for name, member in vars(Backend).items()
        if not name.startswith("_") and callable(member) and name not in ("framework", "version")
    ]
    missing = [name for name in public if f"`{name}(" not in textwrap.dedent(section)]
    assert missing == []
