"""End to end: real notebooks executed in fresh Jupyter kernels through nbclient."""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest

from nbrepro._normalize import normalize_cell, normalize_outputs

if TYPE_CHECKING:  # the kernel fixture and its driver live in tests/conftest.py
    from conftest import Kernel

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "example_notebooks"
NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"


# Notebook runs keep Python's warnings (shown on stderr, which comparisons ignore) quiet.
QUIET = {"PYTHONWARNINGS": "ignore"}


def cell_tagged(notebook: Any, tag: str) -> int:
    """Index of the only cell carrying ``tag``."""
    (index,) = [i for i, c in enumerate(notebook.cells) if tag in c.metadata.get("tags", [])]
    return index


def read(path: Path) -> Any:
    """A notebook from disk."""
    return nbformat.read(path, as_version=4)


def needs(*modules: str) -> None:
    """Skip unless every module is installed."""
    for module in modules:
        pytest.importorskip(module)


@pytest.mark.parametrize(
    ("name", "modules"),
    [
        ("numpy_sklearn.ipynb", ("numpy", "sklearn")),
        ("colab_quickstart.ipynb", ("numpy", "torch")),
        ("pytorch_mlp.ipynb", ("numpy", "torch")),
        ("keras_dropout.ipynb", ("numpy", "tensorflow", "keras")),
    ],
)
def test_example_gives_identical_outputs_in_two_fresh_kernels(
    run_notebook: Callable[..., Any], name: str, modules: tuple[str, ...], tmp_path: Path
) -> None:
    """Each bundled example, run twice from scratch, prints the same numbers bit for bit."""
    needs(*modules)
    # The kernel is told which notebook it runs, as JupyterLab does, for %repro_export.
    env = {"JPY_SESSION_NAME": str(EXAMPLES / name), "NBREPRO_CACHE_DIR": str(tmp_path)}
    first = normalize_outputs(run_notebook(read(EXAMPLES / name), tmp_path, **QUIET, **env))
    second = normalize_outputs(run_notebook(read(EXAMPLES / name), tmp_path, **QUIET, **env))
    assert first == second
    printed = "".join(o["text"] for cell in first for o in cell if o["type"] == "stdout")
    assert "seed 42 (given)" in printed
    assert any(result in printed for result in ("weights sha256", "kmeans centers", "final loss"))


def test_frameworks_imported_after_seeding_repeat(
    run_notebook: Callable[..., Any], tmp_path: Path
) -> None:
    """torch (DataLoader workers too) and TensorFlow imported after %repro_seed repeat."""
    needs("numpy", "torch", "tensorflow")
    path = NOTEBOOKS / "frameworks_imported_late_repeat_in_fresh_kernels.ipynb"
    first = normalize_outputs(run_notebook(read(path), tmp_path, **QUIET))
    assert first == normalize_outputs(run_notebook(read(path), tmp_path, **QUIET))
    assert all(cell for cell in first[-3:]), "every framework cell printed something"


def without_consumer(notebook: Any) -> Any:
    """A copy of ``notebook`` without the cell tagged ``consumer`` (as if it were skipped)."""
    skipped = copy.deepcopy(notebook)
    del skipped.cells[cell_tagged(skipped, "consumer")]
    return skipped


def target_output(notebook: Any) -> list[dict[str, str]]:
    """The normalised outputs of the cell tagged ``target``."""
    return normalize_cell(notebook.cells[cell_tagged(notebook, "target")].outputs)


def test_per_cell_target_ignores_skipped_and_rerun_cells(
    run_notebook: Callable[..., Any], tmp_path: Path
) -> None:
    """--per-cell: skipping a randomness-consuming cell, or rerunning, leaves a cell's output."""
    needs("numpy", "torch")
    notebook = read(NOTEBOOKS / "per_cell_target_ignores_skipped_and_rerun_cells.ipynb")
    full = target_output(run_notebook(notebook, tmp_path, **QUIET))

    assert target_output(run_notebook(without_consumer(notebook), tmp_path, **QUIET)) == full

    rerun = copy.deepcopy(notebook)
    target = rerun.cells[cell_tagged(rerun, "target")]
    consumer = rerun.cells[cell_tagged(rerun, "consumer")]
    rerun.cells += [copy.deepcopy(consumer), copy.deepcopy(target)]
    rerun.cells[-2].metadata["tags"] = []
    rerun.cells[-1].metadata["tags"] = []
    rerun.cells[-1].id = "rerun-target"
    rerun.cells[-2].id = "rerun-consumer"
    executed = run_notebook(rerun, tmp_path, **QUIET)
    assert target_output(executed) == full
    assert normalize_cell(executed.cells[-1].outputs) == full


def test_without_per_cell_the_target_depends_on_earlier_cells(
    run_notebook: Callable[..., Any], tmp_path: Path
) -> None:
    """The converse: without --per-cell, skipping the consuming cell changes the output."""
    needs("numpy", "torch")
    notebook = read(NOTEBOOKS / "no_per_cell_target_depends_on_earlier_cells.ipynb")
    full = target_output(run_notebook(notebook, tmp_path, **QUIET))
    assert target_output(run_notebook(without_consumer(notebook), tmp_path, **QUIET)) != full


def test_per_cell_seed_follows_the_front_ends_cell_id(kernel: Callable[..., Kernel]) -> None:
    """With cell ids sent, the seed is derive_seed("cell", id): same id, same draws."""
    needs("numpy")
    draw = "import random, numpy as np; print(random.random(), np.random.rand())"
    seed_of_last = "import nbrepro; print(nbrepro.status().last_cell.seed)"
    k = kernel()
    cells = [
        ("a", "%load_ext nbrepro"),
        ("b", "%repro_seed 42 --per-cell"),
        ("c", draw),
        ("d", draw),
        ("c", draw),
        ("e", seed_of_last),
    ]
    out = [k.run(source, cell_id=cell_id) for cell_id, source in cells]
    assert out[2] == out[4] != out[3]
    import nbrepro

    assert int(out[5]) == nbrepro.derive_seed("cell", "e", seed=42)


def test_kernels_run_the_environment_under_test(kernel: Callable[..., Kernel]) -> None:
    """The "python3" kernel is this environment's ipykernel and IPython.

    So the Colab-stack venv (.ci/colab_venv.sh) really tests IPython 7.34 / ipykernel 6.17
    in its kernels: a user-level "python3" kernelspec would shadow it and silently test another
    environment's stack.
    """
    import ipykernel
    import IPython

    probe = (
        "import sys, IPython, ipykernel\n"
        "print(sys.prefix, IPython.__version__, ipykernel.__version__, sep='\\n')"
    )
    out = kernel().run(probe)
    assert out.splitlines() == [sys.prefix, IPython.__version__, ipykernel.__version__]
