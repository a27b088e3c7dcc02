"""The first %repro_seed's summary, loading twice, and no restart where nothing runs again.

Through real kernels, a real ``jupyter nbconvert --execute``, a real nbclient run, and terminal
IPython.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell
from nbformat.v4 import new_code_cell, new_notebook

if TYPE_CHECKING:  # the kernel fixture and its driver live in tests/conftest.py
    from conftest import Kernel

# Variables that would make the runtime fresh, or mark it as one nbrepro started.
_FRESH_SETTINGS = ("PYTHONHASHSEED", "NBREPRO_RUNTIME", "JPY_SESSION_NAME")


def fix_lines(printed: str) -> set[str]:
    """The distinct ``fix:`` lines of a summary."""
    return {line.strip() for line in printed.splitlines() if line.strip().startswith("fix:")}


def outputs(cell: Any) -> str:
    """Everything a cell of an executed notebook printed."""
    return "".join(
        output.get("text", "") + "\n".join(output.get("traceback", []))
        for output in cell.get("outputs", [])
    )


def notebook(*sources: str) -> Any:
    """A notebook with one code cell per source."""
    return new_notebook(cells=[new_code_cell(source) for source in sources])


@pytest.mark.kernel
def test_the_first_seed_in_a_new_kernel_is_calm(kernel: Callable[..., Kernel]) -> None:
    """Nothing ran: not called "not a fresh runtime"; NBR101 said once, with the one fix."""
    k = kernel()
    k.run("%load_ext nbrepro", cell_id="load")
    printed = k.run("%repro_seed 1", cell_id="seed")
    assert "not a fresh runtime" not in printed
    assert "  nothing ran before %repro_seed" in printed
    assert printed.count("NBR101") == 1
    assert fix_lines(printed) == {
        "fix: %repro_restart (a new kernel process with PYTHONHASHSEED=0), then run the "
        "notebook from the top; or %repro_seed --restart, which restarts by itself"
    }


def test_terminal_ipython_gives_one_fix_that_needs_no_kernel(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    """In terminal IPython no line says "restart it" or points to %repro_restart."""
    shell.run_cell("x = 1 + 1", store_history=True).raise_error()
    shell.run_cell("%repro_seed 1", store_history=True).raise_error()
    printed = capsys.readouterr().out
    assert "not a fresh runtime: In [" in printed
    assert printed.count("NBR101") == 1
    # Frameworks earlier tests imported here add "--deterministic" fixes of their own.
    (fix,) = {line for line in fix_lines(printed) if "--deterministic" not in line}
    assert fix.startswith("fix: quit, start a new process with PYTHONHASHSEED=0")
    assert "restart it" not in printed and "%repro_restart" not in printed


@pytest.mark.kernel
def test_loading_the_extension_again_is_silent(kernel: Callable[..., Kernel]) -> None:
    """As nbrepro's runners load it (load_ipython_extension), a notebook's own %load_ext
    prints nothing, and the cell hooks stay registered once."""
    k = kernel()
    k.run(
        "import nbrepro as _n; _n.load_ipython_extension(get_ipython()); del _n",
        store_history=False,
    )
    assert k.run("%load_ext nbrepro", cell_id="load") == ""
    k.run("%repro_seed 1", cell_id="seed")
    count = (
        "print(sum(getattr(getattr(c, '__self__', None), '__module__', '') == "
        "'nbrepro._cell_hooks' for c in get_ipython().events.callbacks['pre_run_cell']))"
    )
    assert k.run(count, store_history=False) == "1\n"


def _not_fresh_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _FRESH_SETTINGS}


def test_nbconvert_execute_runs_every_cell_instead_of_restarting(tmp_path: Path) -> None:
    """`jupyter nbconvert --execute`: --restart is refused, said why, and every cell runs."""
    source = tmp_path / "restart.ipynb"
    nbformat.write(
        notebook("%load_ext nbrepro", "%repro_seed 3 --restart", "print('after', 6 * 7)"), source
    )
    done = subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute", str(source),
         "--output", "executed.ipynb"],
        capture_output=True, text=True, timeout=300, env=_not_fresh_environment(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    cells = nbformat.read(tmp_path / "executed.ipynb", as_version=4).cells
    assert [cell.execution_count for cell in cells] == [1, 2, 3]
    seeded = outputs(cells[1])
    assert "nbrepro: not restarting: this cell came without a cell id" in seeded
    assert "nbconvert --execute" in seeded
    assert "fix: run the notebook with `nbrepro run NOTEBOOK`" in seeded
    assert outputs(cells[2]) == "after 42\n"


def test_nbconvert_execute_fails_on_repro_restart(tmp_path: Path) -> None:
    """An explicit %repro_restart under a runner fails the run, naming `nbrepro run`."""
    source = tmp_path / "restart.ipynb"
    nbformat.write(notebook("%load_ext nbrepro", "%repro_restart", "print('after')"), source)
    done = subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute", str(source),
         "--output", "executed.ipynb"],
        capture_output=True, text=True, timeout=300, env=_not_fresh_environment(),
    )  # fmt: skip
    assert done.returncode != 0
    assert "%repro_restart: not restarting" in done.stderr
    assert "`nbrepro run NOTEBOOK`" in done.stderr


def test_nbclient_runs_every_cell_instead_of_restarting(
    run_notebook: Callable[..., Any], tmp_path: Path
) -> None:
    """A plain nbclient run (as papermill makes): the same refusal, every cell executed."""
    executed = run_notebook(
        notebook("%load_ext nbrepro", "import random\nx = random.random()",
                 "%repro_seed 3 --restart", "print(type(x).__name__)"),
        tmp_path,
        **dict.fromkeys(_FRESH_SETTINGS),
    )  # fmt: skip
    seeded = outputs(executed.cells[2])
    assert "not a fresh runtime: In [2]" in seeded
    assert "nbrepro: not restarting: this cell came without a cell id" in seeded
    assert outputs(executed.cells[3]) == "float\n"  # the same process, every cell ran


@pytest.mark.kernel
def test_a_kernel_a_runner_started_is_not_restarted(kernel: Callable[..., Kernel]) -> None:
    """`nbrepro run` kernels send cell ids, and carry a record without a pid: no restart, even
    for a setting they were not started with (here the hash seed)."""
    record = {"started_by": "nbrepro run", "started_at": 0, "pid": None, "settings": {}}
    k = kernel(NBREPRO_RUNTIME=json.dumps(record))
    k.run("%load_ext nbrepro", cell_id="load")
    printed = k.run("%repro_seed 3 --restart", cell_id="seed")
    assert "NBR101" in printed
    assert "nbrepro: not restarting: nbrepro run started this kernel, and runs each cell" in printed
    assert k.run("print('same process')", cell_id="after") == "same process\n"


def test_seeded_when_imported_lists_installed_frameworks_only(
    run_fresh: Callable[..., list[str]],
) -> None:
    """With no framework installed (site-packages off the path), none is promised."""
    repository = str(Path(__file__).resolve().parents[1])
    (out,) = run_fresh(f"""
        import sys
        sys.path[:] = [{repository!r}] + [p for p in sys.path if "-packages" not in p]
        import nbrepro
        status = nbrepro.seed(1)
        print(status)
        print([f.name for f in status.frameworks])
    """)
    assert "seeded when imported" not in out
    assert out.splitlines()[-1] == "['random']"
