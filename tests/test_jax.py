"""JAX through its adapter, on a real (CPU) JAX: keys, XLA's determinism flag, the record.

The adapter (``nbrepro/_backends/jax.py``) is written against the public contract
(``nbrepro.adapters``) only; these tests are its proof. JAX is optional: without it they skip.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest

import nbrepro
from nbrepro import _process_settings
from nbrepro._backends.jax import (
    DETERMINISTIC_OPS_FLAG,
    deterministic_ops_set,
    with_deterministic_ops,
)
from nbrepro._config import make_config
from nbrepro.errors import NoSeedError

if TYPE_CHECKING:
    import jax
    from conftest import Kernel
else:
    jax = pytest.importorskip("jax")

FLAG = f"{DETERMINISTIC_OPS_FLAG}=true"
# A flag XLA's CPU backend acts on, so a test can see a user's own flags survive: it makes
# JAX show that many CPU devices.
USER_FLAG = "--xla_force_host_platform_device_count=3"
NOTEBOOKS = Path(__file__).parent / "notebooks"

# Prints a key made by jax_key, draws from it, and whether XLA_FLAGS has the determinism flag.
KEY_PROBE = """
import json, os, sys
import nbrepro
nbrepro.seed({seed})
import jax
key = nbrepro.jax_key("init")
print(json.dumps({{
    "key": jax.random.key_data(key).tolist(),
    "draws": jax.random.normal(key, (3,)).tolist(),
    "other": jax.random.key_data(nbrepro.jax_key("other")).tolist(),
}}))
"""


def _key_data(key: Any) -> list[int]:
    return list(jax.random.key_data(key).tolist())


def test_jax_key_is_a_typed_key_from_derive_seed() -> None:
    """jax_key(*keys) == jax.random.key(derive_seed(*keys)): same keys, same key; others differ."""
    nbrepro.seed(11)
    key = nbrepro.jax_key("init", 0)
    assert jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    assert _key_data(key) == _key_data(jax.random.key(nbrepro.derive_seed("init", 0)))
    assert _key_data(nbrepro.jax_key("init", 0)) == _key_data(key)
    assert _key_data(nbrepro.jax_key("init", 1)) != _key_data(key)
    assert _key_data(nbrepro.jax_key("init", 0, seed=12)) != _key_data(key)
    nbrepro.seed(12)
    assert _key_data(nbrepro.jax_key("init", 0)) == _key_data(nbrepro.jax_key("init", 0, seed=12))


def test_jax_key_needs_a_seed() -> None:
    """Without an experiment seed (and no seed=), it refuses instead of inventing one."""
    with pytest.raises(NoSeedError, match="derive_seed"):
        nbrepro.jax_key("init")
    assert _key_data(nbrepro.jax_key("init", seed=5)) == _key_data(
        jax.random.key(nbrepro.derive_seed("init", seed=5))
    )


@pytest.mark.parametrize(
    "code",
    [
        "key = jax.random.key(int(time.time()))",
        "key = jax.random.PRNGKey(time.time_ns() % 2**31)",
        "key = jr.key(seed=int(datetime.now().timestamp()))",
        "key = jax.random.fold_in(key, int(time.time()))",
        "key = jax.random.wrap_key_data(np.array([0, int(time.time())], dtype=np.uint32))",
        "key = jax.random.key(int.from_bytes(os.urandom(4), 'big'))",
        "key = jax.random.key(secrets.randbits(31))",
    ],
)
def test_keys_made_from_the_clock_or_entropy_are_flagged(code: str) -> None:
    """NBR401 for each usual spelling of a JAX key made from the clock or OS entropy."""
    from nbrepro._audit import check_source

    assert [f.code for f in check_source(code, "In [1]").findings] == ["NBR401"]


@pytest.mark.parametrize(
    "code",
    [
        "key = jax.random.key(0)",
        "key = nbrepro.jax_key('init')",
        "start = time.time()\nkey = jax.random.fold_in(key, step)",
    ],
)
def test_fixed_keys_are_not_flagged(code: str) -> None:
    """Keys from fixed seeds or jax_key, and timing a step, say nothing."""
    from nbrepro._audit import check_source

    assert check_source(code, "In [1]").findings == []


def test_jax_key_repeats_across_fresh_processes(run_fresh: Callable[..., list[str]]) -> None:
    """Two fresh processes with one seed make the same keys and draws; another seed does not."""
    first, second, third = (
        json.loads(out)
        for out in run_fresh(
            KEY_PROBE.format(seed=3), KEY_PROBE.format(seed=3), KEY_PROBE.format(seed=4)
        )
    )
    assert first == second
    assert first["key"] != first["other"]
    assert third["key"] != first["key"] and third["draws"] != first["draws"]


def test_import_nbrepro_and_seeding_do_not_import_jax(run_fresh: Callable[..., list[str]]) -> None:
    """Seeding, status, audit, the record's environment and the restart settings leave JAX
    unimported; the adapter is listed, to be seeded on import."""
    (out,) = run_fresh(
        """
        import json, sys
        import nbrepro
        from nbrepro import _process_settings
        from nbrepro._config import make_config
        status = nbrepro.seed(1, deterministic=True)
        nbrepro.audit()
        nbrepro.environment()
        settings = _process_settings.process_start_settings(make_config(1, deterministic=True))
        jax = [f for f in status.frameworks if f.name == "jax"]
        print(json.dumps({
            "imported": "jax" in sys.modules or "jaxlib" in sys.modules,
            "listed": [(f.version, f.seeded) for f in jax],
            "xla_flags": settings.get("XLA_FLAGS"),
        }))
        """
    )
    result = json.loads(out)
    assert result == {"imported": False, "listed": [[None, True]], "xla_flags": FLAG}


def test_status_shows_jax_with_its_version_once_imported() -> None:
    """The adapter is discovered like the built-ins and shows the imported JAX's version."""
    status = nbrepro.seed(2)
    (entry,) = [f for f in status.frameworks if f.name == "jax"]
    assert (entry.version, entry.seeded) == (jax.__version__, True)
    assert f"jax {jax.__version__}" in str(status)


def test_environment_facts_carry_the_version_without_starting_jax(
    run_fresh: Callable[..., list[str]],
) -> None:
    """The version always; devices only once JAX has started its backends itself."""
    (out,) = run_fresh(
        """
        import json
        import jax
        from nbrepro._backends.jax import JaxBackend
        adapter = JaxBackend()
        before = adapter.environment_facts()
        started = jax._src.xla_bridge.backends_are_initialized()
        jax.numpy.ones(2).block_until_ready()
        print(json.dumps({"before": before, "started": started,
                          "after": adapter.environment_facts()}))
        """
    )
    result = json.loads(out)
    assert result["before"]["version"] == jax.__version__
    assert result["before"]["devices"] is None and not result["started"]
    assert result["after"]["backend"] == "cpu" and result["after"]["devices"]


def test_the_record_carries_jax_facts() -> None:
    """environment()["frameworks"]["jax"] has the version, and survives the record's reader."""
    from nbrepro._record import build_record
    from nbrepro._record_schema import validate_record
    from nbrepro._session import session

    nbrepro.seed(4)
    facts = nbrepro.environment()["frameworks"]["jax"]
    assert facts["version"] == jax.__version__
    assert facts["jaxlib"] == importlib.metadata.version("jaxlib")
    record = validate_record(json.loads(json.dumps(build_record(session()))))
    assert record["environment"]["frameworks"]["jax"]["version"] == jax.__version__


@pytest.mark.parametrize(
    ("found", "merged"),
    [
        (None, FLAG),
        ("", FLAG),
        (USER_FLAG, f"{USER_FLAG} {FLAG}"),
        (f"{DETERMINISTIC_OPS_FLAG}=false {USER_FLAG}", f"{USER_FLAG} {FLAG}"),
        (f"{USER_FLAG} {FLAG}", f"{USER_FLAG} {FLAG}"),
    ],
)
def test_the_flag_joins_the_users_xla_flags(found: str | None, merged: str) -> None:
    """The user's own flags stay, in order; a determinism flag of theirs is set to true."""
    assert with_deterministic_ops(found) == merged
    assert deterministic_ops_set(merged)


def test_process_start_settings_have_the_flag_only_under_deterministic() -> None:
    """--deterministic (and --strict) add XLA_FLAGS, merged with the base environment's."""
    base = {"XLA_FLAGS": USER_FLAG}
    for config in (make_config(1, deterministic=True), make_config(1, strict=True)):
        settings = _process_settings.process_start_settings(config, base)
        assert settings["XLA_FLAGS"] == f"{USER_FLAG} {FLAG}"
    assert "XLA_FLAGS" not in _process_settings.process_start_settings(make_config(1), base)
    assert "XLA_FLAGS" not in _process_settings.process_start_settings(None, base)


# In a fresh process: the flag in force or not, the finding, and whether the user's own flag
# (three CPU devices) took effect.
FLAG_PROBE = """
import json, os
import jax
import nbrepro
if {start_first}:
    jax.numpy.ones(2).block_until_ready()
status = nbrepro.seed(1, deterministic=True)
jax.numpy.ones(2).block_until_ready()
print(json.dumps({{
    "xla_flags": os.environ.get("XLA_FLAGS"),
    "devices": jax.device_count(),
    "findings": [(f.code, f.severity.value, f.fix) for f in status.findings
                 if f.code == "NBR206"],
}}))
"""


def test_deterministic_sets_the_flag_while_xla_has_not_started(
    run_fresh: Callable[..., list[str]],
) -> None:
    """Imported but not started: the flag is set in place, merged with the user's, no finding.
    Already started: NBR206 (info where JAX runs on CPU), fixed by a restart with the flag;
    a process started with the flag has no finding."""
    early, late = (
        json.loads(out)
        for out in run_fresh(
            FLAG_PROBE.format(start_first=False),
            FLAG_PROBE.format(start_first=True),
            XLA_FLAGS=USER_FLAG,
        )
    )
    assert early == {"xla_flags": f"{USER_FLAG} {FLAG}", "devices": 3, "findings": []}
    assert late["xla_flags"] == USER_FLAG
    ((code, severity, fix),) = late["findings"]
    assert (code, severity) == ("NBR206", "info")
    assert f"XLA_FLAGS={USER_FLAG} {FLAG}" in fix
    (fresh,) = run_fresh(FLAG_PROBE.format(start_first=True), XLA_FLAGS=f"{USER_FLAG} {FLAG}")
    assert json.loads(fresh)["findings"] == []


def test_reset_puts_back_the_users_xla_flags(run_fresh: Callable[..., list[str]]) -> None:
    """reset() puts XLA_FLAGS back; the flag XLA already read stays in force in the process,
    so seeding again reports nothing."""
    (out,) = run_fresh(
        """
        import json, os
        import jax
        import nbrepro
        nbrepro.seed(1, deterministic=True)
        jax.numpy.ones(2).block_until_ready()
        nbrepro.reset()
        after_reset = os.environ.get("XLA_FLAGS")
        status = nbrepro.seed(2, deterministic=True)
        print(json.dumps([after_reset, [f.code for f in status.findings]]))
        """,
        XLA_FLAGS=USER_FLAG,
    )
    after_reset, codes = json.loads(out)
    assert after_reset == USER_FLAG
    assert "NBR206" not in codes


@pytest.mark.kernel
def test_repro_restart_starts_the_kernel_with_the_flag(kernel: Callable[..., Kernel]) -> None:
    """%repro_restart after %repro_seed --deterministic: XLA_FLAGS has the user's flag and
    the determinism flag, and JAX in the new process sees the user's three devices."""
    k = kernel(XLA_FLAGS=USER_FLAG)
    k.run("%load_ext nbrepro")
    k.run("%repro_seed 5 --deterministic")
    restart = k.send("%repro_restart", cell_id="restart")
    assert f"XLA_FLAGS={USER_FLAG} {FLAG}" in k.output(restart)
    k.wait_for_new_process()
    printed = k.run(
        "import json, os, jax\nprint(json.dumps([os.environ['XLA_FLAGS'], jax.device_count()]))"
    )
    assert json.loads(printed) == [f"{USER_FLAG} {FLAG}", 3]


@pytest.mark.kernel
def test_a_started_xla_is_named_until_a_restart_gives_it_the_flag(
    kernel: Callable[..., Kernel],
) -> None:
    """JAX computed before %repro_seed --deterministic: the summary names NBR206 as needing a
    new process; after %repro_restart the same cells say nothing of it."""
    cells = ("import jax\njax.numpy.ones(2).block_until_ready()", "%load_ext nbrepro")
    k = kernel()
    for cell in cells:
        k.run(cell)
    printed = k.run("%repro_seed 5 --deterministic")
    assert "NBR206" in printed and "XLA_FLAGS" in printed, printed
    k.output(k.send("%repro_restart", cell_id="restart"))
    k.wait_for_new_process()
    for cell in cells:
        k.run(cell)
    printed = k.run("%repro_seed 5 --deterministic")
    assert "NBR206" not in printed, printed


@pytest.mark.kernel
def test_nbrepro_run_deterministic_starts_the_kernel_with_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nbrepro run --deterministic: the kernel starts with XLA_FLAGS merged with the caller's."""
    from nbrepro.commands.cli import main

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("import os\nprint(os.environ.get('XLA_FLAGS'))"),
    ]
    path = tmp_path / "flags.ipynb"
    nbformat.write(notebook, path)
    monkeypatch.setenv("XLA_FLAGS", USER_FLAG)
    outputs = {}
    for mode in ("plain", "deterministic"):
        target = tmp_path / f"{mode}.ipynb"
        arguments = ["run", str(path), "-o", str(target), "--seed", "1"]
        assert main(arguments + (["--deterministic"] if mode == "deterministic" else [])) == 0
        cell = nbformat.read(target, as_version=4).cells[0]
        outputs[mode] = "".join(o.get("text", "") for o in cell.outputs).strip()
    assert outputs == {"plain": USER_FLAG, "deterministic": f"{USER_FLAG} {FLAG}"}
