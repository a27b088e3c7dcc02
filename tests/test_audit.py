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
        ("g = torch.Generator()\ng.seed()", "NBR302"),
        ("torch.Generator().seed()", "NBR302"),
        ("dl = DataLoader(ds, num_workers=4)", "NBR501"),
        ("ds = ds.map(f, num_parallel_calls=4, deterministic=False)", "NBR502"),
        ("options.deterministic = False", "NBR502"),
        ("%matplotlib inline\nname = str(uuid.uuid4())", "NBR402"),
        ("vocabulary = list(set(words))", "NBR404"),
        ("for i, w in enumerate(set(words)):\n    index[w] = i", "NBR404"),
        ("for w in frozenset(words):\n    out.append(w)", "NBR404"),
        ("seen = set(words)\nids = {w: i for i, w in enumerate(seen)}", "NBR404"),
        ("first = ', '.join({'b', 'a'})", "NBR404"),
        ("both = set(a) | set(b)\nrows = [f(w) for w in both]", "NBR404"),
        ("if time.time() % 2:\n    model = big", "NBR405"),
        ("row = data[int(time.time()) % n]", "NBR405"),
        ("row = data[datetime.now().second]", "NBR405"),
        ("t = time.time()\nlr = 0.1 if t % 2 else 0.01", "NBR405"),
        ("start = time.time()\nwhile time.time() - start < 60:\n    step()", "NBR405"),
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
        "vocabulary = sorted(set(words))",
        "n = len(set(words))\nknown = 'cat' in set(words)",
        "index = {w: i for i, w in enumerate(sorted(set(words)))}",
        "ordered = sorted(w.lower() for w in set(words))\nunique = {w for w in set(words)}",
        "digits = list({1, 2, 3})\nfor i in set(range(5)):\n    pass",
        "if elapsed is None:\n    elapsed = time.time()",
        "if time.time() - last > 5:\n    print(step)\n    last = time.time()",
        "if time.time() - saved > 600:\n    torch.save(model.state_dict(), path)",
        "timings = {'fit': time.time() - start}\nif timings and loss < 0.1:\n    pass",
    ],
)
def test_static_check_raises_no_false_alarms(source: str) -> None:
    """Timing code, sorted listings, seeded generators and the helpers are clean."""
    assert codes_in(source) == []


def test_set_order_matters_only_while_hash_randomisation_is_on() -> None:
    """NBR404 needs str hashing to be randomised; with PYTHONHASHSEED fixed the order holds."""
    source = "vocabulary = list(set(words))"
    assert [f.code for f in _audit.check_source(source, "c", hash_randomised=True).findings] == [
        "NBR404"
    ]
    assert _audit.check_source(source, "c", hash_randomised=False).findings == []


def test_set_order_looks_at_what_the_set_holds() -> None:
    """Where the namespace shows the set's elements, sets of numbers are not reported."""
    source = "ordered = list(ids)\nfor w in words:\n    pass"
    numbers = {"ids": {3, 1, 2}, "words": {"a", "b"}}
    texts = {"ids": {"x", "y"}, "words": ["a", "b"]}
    assert codes_in_namespace(source, numbers) == ["NBR404"]  # `for w in words` (a set of str)
    assert codes_in_namespace(source, texts) == ["NBR404"]  # list(ids)
    assert codes_in_namespace(source, {"ids": {1}, "words": ["a"]}) == []
    assert codes_in_namespace("pairs = list(set(values))", {"values": [1, 2, 2]}) == []
    stream = iter(["a", "b"])  # an iterator is not looked into: that would consume it
    assert codes_in_namespace("pairs = list(set(stream))", {"stream": stream}) == ["NBR404"]
    assert list(stream) == ["a", "b"]


def codes_in_namespace(source: str, namespace: dict[str, Any]) -> list[str]:
    """The codes the static check reports for ``source`` run in ``namespace``."""
    return [f.code for f in _audit.check_source(source, "c", namespace=namespace).findings]


EXAMPLES = Path(__file__).resolve().parent.parent / "example_notebooks"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.ipynb")), ids=lambda p: p.stem)
def test_example_notebooks_raise_no_false_alarms(path: Path) -> None:
    """The bundled examples are written reproducibly: the static check finds nothing."""
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    found = [f.line() for c in cells for f in _audit.check_source(c.source, "c").findings]
    assert cells and found == []


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
    """Each finding's notebook, run in a real kernel, reports that code and its fix.

    And says it before anyone asks: in the ``%repro_seed`` summary, or on one stderr line
    under the cell that caused it (a line naming a cell names the number of the cell it is
    under). A clean notebook says nothing.
    """
    if any(m in path.read_text() for m in ("import torch", "from torch")):
        pytest.importorskip("torch")
    if "import tensorflow" in path.read_text():
        pytest.importorskip("tensorflow")
    if "import jax" in path.read_text():
        pytest.importorskip("jax")
    # Kernels start with the hash seed fixed, as `nbrepro run` starts them, except where the
    # finding under test is hash randomisation or depends on it.
    hash_seed = None if expected_code(path) in ("NBR101", "NBR404") else "0"
    notebook = run_notebook(
        nbformat.read(path, as_version=4),
        tmp_path,
        timeout=300,
        PYTHONHASHSEED=hash_seed,
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    printed = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    said = {  # execution count -> the finding lines under that cell
        cell.execution_count: [
            line
            for o in cell.outputs
            if o.get("name") == "stderr"
            for line in o["text"].splitlines()
            if line.startswith("nbrepro NBR")
        ]
        for cell in notebook.cells
    }
    for count, lines in said.items():
        for line in lines:  # a line naming a cell names the one it is under
            assert " — fix: " in line and ("In [" not in line or f"In [{count}]" in line), line
    code = expected_code(path)
    if code is None:
        assert printed == "", f"a clean notebook has no findings, got:\n{printed}"
        assert not any(said.values()), said
    else:
        assert code in printed and "fix:" in printed, printed
        before = "".join(o.get("text", "") for c in notebook.cells[:-1] for o in c.outputs)
        # The %repro_seed summary says NBR002 in its fresh-runtime line, in words.
        words = "ran before %repro_seed" if code == "NBR002" else code
        assert code in before or words in before, f"{code} was not said before audit()"


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
