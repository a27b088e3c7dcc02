"""End to end: real notebooks executed in fresh Jupyter kernels through nbclient."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from nbrepro._normalize import normalize_cell, normalize_outputs

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "example_notebooks"
NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"


def execute(notebook: Any, tmp_path: Path, **env: str) -> Any:
    """Run ``notebook`` top to bottom in a fresh kernel, as a user's "Run All" would."""
    notebook = copy.deepcopy(notebook)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute(env={**os.environ, "PYTHONWARNINGS": "ignore", **env})
    return notebook


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
    name: str, modules: tuple[str, ...], tmp_path: Path
) -> None:
    """Each bundled example, run twice from scratch, prints the same numbers bit for bit."""
    needs(*modules)
    # The kernel is told which notebook it runs, as JupyterLab does, for %repro_export.
    env = {"JPY_SESSION_NAME": str(EXAMPLES / name), "NBREPRO_CACHE_DIR": str(tmp_path)}
    first = normalize_outputs(execute(read(EXAMPLES / name), tmp_path, **env))
    second = normalize_outputs(execute(read(EXAMPLES / name), tmp_path, **env))
    assert first == second
    printed = "".join(o["text"] for cell in first for o in cell if o["type"] == "stdout")
    assert "seed 42 (given)" in printed
    assert any(result in printed for result in ("weights sha256", "kmeans centers", "final loss"))


def test_frameworks_imported_after_seeding_repeat(tmp_path: Path) -> None:
    """torch (DataLoader workers too) and TensorFlow imported after %repro_seed repeat."""
    needs("numpy", "torch", "tensorflow")
    path = NOTEBOOKS / "frameworks_imported_late_repeat_in_fresh_kernels.ipynb"
    first = normalize_outputs(execute(read(path), tmp_path))
    assert first == normalize_outputs(execute(read(path), tmp_path))
    assert all(cell for cell in first[-3:]), "every framework cell printed something"


def target_output(notebook: Any) -> list[dict[str, str]]:
    """The normalised outputs of the cell tagged ``target``."""
    return normalize_cell(notebook.cells[cell_tagged(notebook, "target")].outputs)


def test_per_cell_target_ignores_skipped_and_rerun_cells(tmp_path: Path) -> None:
    """--per-cell: skipping a randomness-consuming cell, or rerunning, leaves a cell's output."""
    needs("numpy", "torch")
    notebook = read(NOTEBOOKS / "per_cell_target_ignores_skipped_and_rerun_cells.ipynb")
    full = target_output(execute(notebook, tmp_path))

    skipped = copy.deepcopy(notebook)
    del skipped.cells[cell_tagged(skipped, "consumer")]
    assert target_output(execute(skipped, tmp_path)) == full

    rerun = copy.deepcopy(notebook)
    target = rerun.cells[cell_tagged(rerun, "target")]
    consumer = rerun.cells[cell_tagged(rerun, "consumer")]
    rerun.cells += [copy.deepcopy(consumer), copy.deepcopy(target)]
    rerun.cells[-2].metadata["tags"] = []
    rerun.cells[-1].metadata["tags"] = []
    rerun.cells[-1].id = "rerun-target"
    rerun.cells[-2].id = "rerun-consumer"
    executed = execute(rerun, tmp_path)
    assert target_output(executed) == full
    assert normalize_cell(executed.cells[-1].outputs) == full


def test_without_per_cell_the_target_depends_on_earlier_cells(tmp_path: Path) -> None:
    """The converse: without --per-cell, skipping the consuming cell changes the output."""
    needs("numpy", "torch")
    notebook = read(NOTEBOOKS / "no_per_cell_target_depends_on_earlier_cells.ipynb")
    full = target_output(execute(notebook, tmp_path))
    skipped = copy.deepcopy(notebook)
    del skipped.cells[cell_tagged(skipped, "consumer")]
    assert target_output(execute(skipped, tmp_path)) != full


def run_with_cell_ids(cells: list[tuple[str, str]]) -> list[str]:
    """Execute (cell id, source) pairs in a fresh kernel the way JupyterLab does.

    JupyterLab puts the cell id in the execute request's metadata (``cellId``); ipykernel
    passes it to IPython as ``info.cell_id``. Returns each cell's stdout.
    """
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3")
    try:
        printed = []
        for cell_id, source in cells:
            content = {
                "code": source,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            }
            request = client.session.msg("execute_request", content, metadata={"cellId": cell_id})
            client.shell_channel.send(request)
            stdout = ""
            while True:
                message = client.get_iopub_msg(timeout=120)
                if message["parent_header"].get("msg_id") != request["header"]["msg_id"]:
                    continue
                kind, body = message["msg_type"], message["content"]
                if kind == "stream" and body["name"] == "stdout":
                    stdout += body["text"]
                elif kind == "error":
                    raise AssertionError("\n".join(body["traceback"]))
                elif kind == "status" and body["execution_state"] == "idle":
                    break
            printed.append(stdout)
        return printed
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_per_cell_seed_follows_the_front_ends_cell_id() -> None:
    """With cell ids sent, the seed is derive_seed("cell", id): same id, same draws."""
    needs("numpy")
    draw = "import random, numpy as np; print(random.random(), np.random.rand())"
    seed_of_last = "import nbrepro; print(nbrepro.status().last_cell.seed)"
    out = run_with_cell_ids(
        [
            ("a", "%load_ext nbrepro"),
            ("b", "%repro_seed 42 --per-cell"),
            ("c", draw),
            ("d", draw),
            ("c", draw),
            ("e", seed_of_last),
        ]
    )
    assert out[2] == out[4] != out[3]
    import nbrepro

    assert int(out[5]) == nbrepro.derive_seed("cell", "e", seed=42)


def test_kernels_run_the_environment_under_test() -> None:
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
    (out,) = run_with_cell_ids([("probe", probe)])
    assert out.splitlines() == [sys.prefix, IPython.__version__, ipykernel.__version__]
