"""%repro_restart and the fresh-runtime check: through real kernels, and a terminal shell."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import nbrepro
from nbrepro import _freshness, _process_settings, _restart, _runtime_record
from nbrepro._config import make_config
from nbrepro.errors import CannotRestartError, NotInIPythonError

if TYPE_CHECKING:  # the kernel fixture and its driver live in tests/conftest.py
    from conftest import Kernel

# What the new process reports about itself, as JSON: a variable set before the restart
# is gone, the hash seed comes from the process's start environment.
PROBE = """\
import json, os, sys
with open("/proc/self/environ", "rb") as f:
    start = dict(e.decode().split("=", 1) for e in f.read().split(b"\\0") if b"=" in e)
print(json.dumps({
    "pid": os.getpid(),
    "marker": "marker" in globals(),
    "hash_randomization": sys.flags.hash_randomization,
    "PYTHONHASHSEED": start.get("PYTHONHASHSEED"),
    "OMP_NUM_THREADS": start.get("OMP_NUM_THREADS"),
    "hash": hash("abc"),
}))
"""


def probe(kernel: Kernel) -> dict[str, Any]:
    """What the kernel's process says about itself (see PROBE)."""
    result: dict[str, Any] = json.loads(kernel.run(PROBE))
    return result


@pytest.mark.kernel
def test_restart_replaces_the_process_in_place(kernel: Callable[..., Kernel]) -> None:
    """Same pid and connection, new process with a fixed hash seed; queued cells aborted."""
    k = kernel()
    k.run("%load_ext nbrepro")
    k.run("marker = 1")
    before = probe(k)
    assert before["marker"] and before["hash_randomization"] == 1

    restart = k.send("%repro_restart", cell_id="restart")  # a front end's cell, with its id
    queued = k.send("print('ran after the restart')")
    assert k.reply(restart)["content"]["status"] == "ok"
    assert "restarting the kernel into a fresh runtime with PYTHONHASHSEED=0" in k.output(restart)
    assert k.reply(queued)["content"]["status"] == "aborted"
    k.wait_for_new_process()

    k.run("%load_ext nbrepro")
    printed = k.run("%repro_seed 3 --threads 2")
    assert "runtime: started by %repro_restart at" in printed
    assert "process-start settings in force: PYTHONHASHSEED=0" in printed
    assert "fresh runtime: nothing ran before %repro_seed" in printed
    assert "NBR101" not in printed
    after = probe(k)
    assert after["pid"] == before["pid"]
    assert not after["marker"]
    assert after["hash_randomization"] == 0 and after["PYTHONHASHSEED"] == "0"
    assert after["OMP_NUM_THREADS"] is None

    restart = k.send("%repro_restart", cell_id="restart")
    assert "OMP_NUM_THREADS=2" in k.output(restart)
    k.wait_for_new_process()
    again = probe(k)
    assert again["pid"] == before["pid"] and again["OMP_NUM_THREADS"] == "2"
    assert again["hash"] == after["hash"]


@pytest.mark.kernel
def test_repro_seed_names_cells_and_restarts_once(kernel: Callable[..., Kernel]) -> None:
    """Not fresh: the cell is named; --restart restarts, and not again in a loop."""
    k = kernel()
    draw = "import random\nx = random.random()"
    k.run(draw, cell_id="draw")
    k.run("%load_ext nbrepro", cell_id="load")
    printed = k.run("%repro_seed 5", cell_id="seed")
    assert "not a fresh runtime: In [1] `import random …` ran before %repro_seed" in printed
    assert "NBR101 [warning]" in printed
    fixes = {line.strip() for line in printed.splitlines() if line.strip().startswith("fix:")}
    assert len(fixes) == 1 and fixes.pop().startswith("fix: %repro_restart")

    restart = k.send("%repro_seed 5 --restart", cell_id="seed")
    queued = k.send("x")
    assert k.reply(restart)["content"]["status"] == "ok"
    restarting = k.output(restart)
    assert "nbrepro: not a fresh runtime: 1 cell(s) ran before %repro_seed; NBR101" in restarting
    assert "restarting the kernel" in restarting
    assert k.reply(queued)["content"]["status"] == "aborted"
    k.wait_for_new_process()

    # "Run All" again: %repro_seed first finds the fresh runtime and does not restart.
    k.run("%load_ext nbrepro")
    printed = k.run("%repro_seed 5 --restart", cell_id="seed")
    assert "fresh runtime: nothing ran before %repro_seed" in printed
    assert "started by %repro_seed --restart" in printed
    # A cell that draws before it now: the same runtime refuses a second restart by itself.
    k.run(draw)
    printed = k.run("%repro_seed 5 --restart", cell_id="seed")
    assert "not a fresh runtime: In [3] `import random …`" in printed
    assert "not restarting again: %repro_seed --restart started this runtime" in printed
    assert k.run("print(type(x).__name__)") == "float\n"  # still the same process


@pytest.mark.kernel
def test_colab_kills_the_process_and_records_the_restart(
    kernel: Callable[..., Kernel], tmp_path: Path
) -> None:
    """On Colab (simulated): reply, abort the queue, kill; the next runtime reads the record."""
    # Not a cell of the notebook: kept out of the history that the freshness check reads.
    fake_colab = "import sys, types; sys.modules['google.colab'] = types.ModuleType('google.colab')"
    k = kernel(TMPDIR=str(tmp_path))
    k.run(fake_colab, store_history=False)
    k.run("%load_ext nbrepro")
    restart = k.send("%repro_restart")
    queued = k.send("1")
    assert k.reply(restart)["content"]["status"] == "ok"
    assert "PYTHONHASHSEED stays unfixed" in k.output(restart)
    assert k.reply(queued)["content"]["status"] == "aborted"
    deadline = time.monotonic() + 10
    while k.manager.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not k.manager.is_alive()
    record = json.loads((tmp_path / "nbrepro-runtime.json").read_text())
    assert record["started_by"] == "%repro_restart" and record["settings"] == {}

    # The runtime Colab starts next knows it is fresh, and that a restart cannot fix NBR101.
    fresh = kernel(TMPDIR=str(tmp_path))
    fresh.run(fake_colab, store_history=False)
    fresh.run("%load_ext nbrepro")
    printed = fresh.run("%repro_seed 5 --restart")
    assert "runtime: started by %repro_restart at" in printed
    assert "no process-start settings (Colab" in printed
    assert "fix: none on Colab" in printed
    assert "not restarting again" in printed


@pytest.fixture
def terminal(shell: InteractiveShell) -> InteractiveShell:
    """Terminal IPython: a real shell with no kernel behind it."""
    return shell


def test_terminal_ipython_gets_a_clear_error(terminal: InteractiveShell) -> None:
    """No kernel to restart: a UsageError that says how to start a fresh process instead."""
    with pytest.raises(UsageError, match=r"this is terminal IPython.*PYTHONHASHSEED=0 ipython"):
        terminal.run_line_magic("repro_restart", "")
    with pytest.raises(UsageError, match="unrecognized arguments"):
        terminal.run_line_magic("repro_restart", "--now")
    with pytest.raises(UsageError, match="%repro_seed: restarting needs a Jupyter kernel, and"):
        terminal.run_line_magic("repro_seed", "1 --restart")
    assert nbrepro.status().seed is None  # nothing was applied


def test_plain_python_gets_a_clear_error() -> None:
    """The plain function outside IPython: CannotRestartError, a RuntimeError."""
    with pytest.raises(CannotRestartError, match="this is plain Python") as caught:
        _restart.restart(None)
    assert isinstance(caught.value, RuntimeError)
    assert not isinstance(caught.value, NotInIPythonError)


@pytest.mark.parametrize(
    ("source", "setup"),
    [
        ("import numpy as np\nfrom torch import nn", True),
        ("get_ipython().run_line_magic('load_ext', 'nbrepro')", True),
        ("get_ipython().run_line_magic('repro_seed', '42 --deterministic')", True),
        ("get_ipython().system('pip install torch')", True),
        ("SEED = 42\nLAYERS: list[int] = [64, 32]  # settings\n'''notes'''", True),
        ("try:\n    import torch\nexcept ImportError:\n    pass", True),
        ("", True),
        ("import random\nx = random.random()", False),
        ("get_ipython().run_line_magic('time', 'model.fit(x)')", False),
        ("get_ipython().run_cell_magic('capture', '', 'import torch')", False),
        ("SIZE = len(data)", False),
        ("print(", False),
    ],
)
def test_setup_only_cells(source: str, setup: bool) -> None:
    """Imports, setup magics and literal assignments leave a runtime fresh; nothing else."""
    assert _freshness.setup_only(source) is setup


def test_freshness_names_the_cells_that_ran(terminal: InteractiveShell) -> None:
    """The shell's history: setup cells are skipped, the others named by their number."""
    for source in ["import random", "x = random.random()", "SEED = 1", "%repro_seed 1"]:
        terminal.run_cell(source, store_history=True).raise_error()
    start = terminal.execution_count - 4  # the shell is shared: earlier tests' cells come first
    freshness = _freshness.check_freshness(terminal, nbrepro.status().findings)
    assert freshness.cells[-1] == f"In [{start + 1}] `x = random.random()`"
    assert not any(
        cell.startswith((f"In [{start}]", f"In [{start + 2}]")) for cell in freshness.cells
    )
    assert not freshness.fresh
    assert "fix: quit, start a new process with PYTHONHASHSEED=0" in str(freshness)
    one = _freshness.Freshness(freshness.cells[-1:], (), None, fix=freshness.fix)
    assert f"not a fresh runtime: In [{start + 1}] `x = random.random()` ran before" in str(one)
    assert f"fix: {freshness.fix}" in str(one)


def test_process_start_settings_follow_the_config() -> None:
    """PYTHONHASHSEED always, thread variables with --threads, cuBLAS by torch's metadata."""
    settings = _process_settings.process_start_settings(None)
    assert settings["PYTHONHASHSEED"] == "0"
    assert "OMP_NUM_THREADS" not in settings
    threaded = _process_settings.process_start_settings(make_config(1, threads=3))
    assert threaded["OMP_NUM_THREADS"] == threaded["TF_NUM_INTEROP_THREADS"] == "3"
    try:
        from importlib.metadata import version

        needs = version("torch").split(".")[:2] < ["2", "10"]
    except Exception:
        needs = False
    assert ("CUBLAS_WORKSPACE_CONFIG" in settings) is needs


def test_a_record_from_another_process_is_ignored(run_fresh: Callable[..., list[str]]) -> None:
    """A child process inherits the variable, not the restart: the pid must match."""
    record = {"started_by": "%repro_restart", "started_at": 0, "pid": 1, "settings": {}}
    (out,) = run_fresh(
        "from nbrepro import _runtime_record; print(_runtime_record.current_runtime())",
        NBREPRO_RUNTIME=json.dumps(record),
    )
    assert out == "None\n"


def test_a_runtime_nbrepro_started_is_not_restarted_for_the_same_settings() -> None:
    """The loop guard: cells, or settings the runtime already has, mean no second restart."""
    wanted = _process_settings.process_start_settings(None)
    runtime = _runtime_record.Runtime("%repro_seed --restart", 0.0, wanted)
    setting = nbrepro.Finding("NBR103", nbrepro.Severity.WARNING, "pool sized", "restart")
    with_cells = _freshness.Freshness(cells=("In [1] `x = 1 + 1`",), settings=(), runtime=runtime)
    assert "Move %repro_seed above them" in str(_freshness.restart_refusal(with_cells))
    same = _freshness.Freshness(cells=(), settings=(setting,), runtime=runtime)
    assert "with the settings a restart would give it now" in str(_freshness.restart_refusal(same))
    nbrepro.seed(1, threads=2)  # asks for thread variables the runtime was not started with
    assert _freshness.restart_refusal(same) is None
    assert _freshness.restart_refusal(_freshness.Freshness((), (setting,), None)) is None


def test_status_shows_the_runtime_nbrepro_started(run_fresh: Callable[..., list[str]]) -> None:
    """A process that exec'd itself with the record (as a restart does) reports it."""
    code = """
        import json, os, sys
        if "NBREPRO_RUNTIME" not in os.environ:
            record = {"started_by": "%repro_restart", "started_at": 0, "pid": os.getpid(),
                      "settings": {"PYTHONHASHSEED": "0"}}
            os.execve(sys.executable, sys.orig_argv,
                      {**os.environ, "PYTHONHASHSEED": "0", "NBREPRO_RUNTIME": json.dumps(record)})
        import nbrepro
        status = nbrepro.status()
        print(status)
        print(json.dumps(status.to_dict()["runtime"]))
    """
    (out,) = run_fresh(code)
    *text, runtime = out.splitlines()
    assert (
        "  runtime: started by %repro_restart at 1970-01-01 00:00:00 UTC; "
        "process-start settings in force: PYTHONHASHSEED=0"
    ) in text
    assert "NBR101" not in out
    assert json.loads(runtime) == {
        "started_by": "%repro_restart",
        "started_at": 0.0,
        "settings": {"PYTHONHASHSEED": "0"},
        "runner": False,
    }
