"""The findings engine: the static look at cells, live checks, and one real notebook per finding."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

import nbrepro
from nbrepro import _audit
from nbrepro._session import session

FINDINGS = Path(__file__).resolve().parent / "notebooks" / "findings"


def codes_in(source: str) -> list[str]:
    """The codes the static check reports for ``source``."""
    return [f.code for f in _audit.check_source(source, "In [1]").findings]


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("rng = np.random.default_rng(int(time.time()))", "NBR401"),
        ("torch.manual_seed(datetime.now().microsecond)", "NBR401"),
        ("model = Forest(random_state=os.urandom(1)[0])", "NBR401"),
        ("name = str(uuid.uuid4())", "NBR402"),
        ("token = secrets.token_hex(8)", "NBR402"),
        ("files = os.listdir(path)", "NBR403"),
        ("for p in Path('data').iterdir():\n    pass", "NBR403"),
        ("images = glob.glob('*.png')", "NBR403"),
        ("g = np.random.Generator(np.random.PCG64())", "NBR302"),
        ("state = np.random.RandomState()", "NBR302"),
        ("g = tf.random.Generator.from_non_deterministic_state()", "NBR205"),
        ("dl = DataLoader(ds, num_workers=4)", "NBR501"),
        ("ds = ds.map(f, num_parallel_calls=4, deterministic=False)", "NBR502"),
        ("options.deterministic = False", "NBR502"),
        ("%matplotlib inline\nname = str(uuid.uuid4())", "NBR402"),
    ],
)
def test_static_check_finds(source: str, code: str) -> None:
    """Each pattern is reported with its code, the cell, and a fix."""
    findings = _audit.check_source(source, "In [7]").findings
    assert [f.code for f in findings] == [code]
    assert "In [7]" in findings[0].message and findings[0].fix


@pytest.mark.parametrize(
    "source",
    [
        "start = time.time()\ntrain()\nprint(time.time() - start)",
        "files = sorted(os.listdir(path))",
        "files = os.listdir(path)\nfiles.sort()",
        "for p in sorted(Path('data').glob('*.png')):\n    pass",
        "rng = np.random.default_rng(42)\ng = np.random.Generator(np.random.PCG64(7))",
        "dl = DataLoader(ds, num_workers=2, worker_init_fn=nbrepro.worker_init_fn)",
        "dl = DataLoader(ds, num_workers=0)",
        "%%bash\nls | head",
        "ds = ds.map(f, num_parallel_calls=4)",
        "torch.manual_seed(nbrepro.derive_seed('trial', 3))",
    ],
)
def test_static_check_raises_no_false_alarms(source: str) -> None:
    """Timing code, sorted listings, seeded generators and the helpers are clean."""
    assert codes_in(source) == []


def test_random_draws_are_recognised() -> None:
    """Global-generator draws are noticed (for NBR001/NBR002); seeding calls are not draws."""
    assert _audit.check_source("x = np.random.rand(3)", "c").draws
    assert _audit.check_source("t = torch.randperm(5)", "c").draws
    assert not _audit.check_source("np.random.seed(1)\nrandom.seed(2)", "c").draws


def test_no_seed_and_draws_before_seed() -> None:
    """NBR001 without a seed names the drawing cell; after seeding it becomes NBR002."""
    current = session()
    _audit.audit_cell(current, "x = random.random()", "In [3]")
    (finding,) = [f for f in nbrepro.audit() if f.code.startswith("NBR00")]
    assert (finding.code, "In [3]" in finding.message) == ("NBR001", True)
    nbrepro.seed(1)
    assert "NBR002" in [f.code for f in nbrepro.audit()]


def test_rerunning_a_cell_replaces_its_findings() -> None:
    """Findings are kept per cell id: a fixed and rerun cell loses its finding."""
    current = session()
    _audit.audit_cell(current, "f = os.listdir('.')", "In [2]", key="cell-a")
    assert "NBR403" in [f.code for f in nbrepro.audit()]
    _audit.audit_cell(current, "f = sorted(os.listdir('.'))", "In [5]", key="cell-a")
    assert "NBR403" not in [f.code for f in nbrepro.audit()]


def test_findings_are_ordered_most_severe_first() -> None:
    """Errors come before warnings before infos."""
    current = session()
    nbrepro.seed(1)
    _audit.audit_cell(
        current, "a = os.listdir('.')\nb = np.random.default_rng(int(time.time()))", "c"
    )
    ranks = [f.severity.rank for f in nbrepro.audit()]
    assert ranks == sorted(ranks) and ranks[0] == 0


def expected_code(path: Path) -> str | None:
    """``nbr401_…`` expects NBR401; ``clean_…`` expects nothing."""
    match = re.match(r"nbr(\d{3})_", path.name)
    return f"NBR{match[1]}" if match else None


NOTEBOOKS = sorted(FINDINGS.glob("*.ipynb"))


@pytest.mark.kernel
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_reports_its_finding(
    path: Path, tmp_path: Path, run_notebook: Callable[..., Any]
) -> None:
    """Each finding's notebook, run in a real kernel, reports that code and its fix."""
    if any(m in path.read_text() for m in ("import torch", "from torch")):
        pytest.importorskip("torch")
    if "import tensorflow" in path.read_text():
        pytest.importorskip("tensorflow")
    # Kernels start with the hash seed fixed, as `nbrepro run` starts them, except where the
    # finding under test is hash randomisation itself.
    hash_seed = None if expected_code(path) == "NBR101" else "0"
    notebook = run_notebook(
        nbformat.read(path, as_version=4),
        tmp_path,
        timeout=300,
        PYTHONHASHSEED=hash_seed,
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    printed = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    code = expected_code(path)
    if code is None:
        assert printed == "", f"a clean notebook has no findings, got:\n{printed}"
    else:
        assert code in printed and "fix:" in printed, printed


def test_a_failing_backend_never_breaks_the_users_import(tmp_path: Path, monkeypatch) -> None:
    """NBR301: a backend that fails on import is reported; the import itself succeeds."""
    from nbrepro._backends import Backend, load_backends

    class Broken(Backend):
        name = "broken"
        module = "nbrepro_test_broken_framework"

        def seed(self, seed: int) -> None:
            raise RuntimeError("no generator here")

    (tmp_path / "nbrepro_test_broken_framework.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    current = session()
    current.backends = [*load_backends(), Broken()]
    nbrepro.seed(1)
    with pytest.warns(UserWarning, match="could not seed broken"):
        import nbrepro_test_broken_framework  # noqa: F401
    (finding,) = [f for f in nbrepro.audit() if f.code == "NBR301"]
    assert "RuntimeError: no generator here" in finding.message
