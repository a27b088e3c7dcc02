"""``nbrepro run`` and ``nbrepro verify`` end to end: the command, real notebooks, real kernels."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import queue
import random
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbrepro_cli import nbrepro_command

import nbrepro
from nbrepro import _kernel_environment, _process_settings, _runtime_record
from nbrepro._execute import CellRef
from nbrepro._normalize import normalize_outputs
from nbrepro._notebook_file import write_notebook
from nbrepro._record import build_record, embed
from nbrepro._session import session
from nbrepro.adapters import distribution_version
from nbrepro.commands.cli import main
from nbrepro.commands.verify import Divergence, Outcome, Verification, outcome

NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"

kernel = pytest.mark.kernel


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder holding copies of the test notebooks, so outputs land outside the repo, and
    two broken ones (made here: as files in tests/ they would break linters that read
    notebooks)."""
    for notebook in NOTEBOOKS.glob("*.ipynb"):
        shutil.copy(notebook, tmp_path)
    (tmp_path / "corrupt_json_exits_2.ipynb").write_text('{\n "cells": [\n  {"cell_type": "code"\n')
    cell = {"cell_type": "code", "id": "x", "metadata": {}, "outputs": []}  # no "source"
    invalid = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell]}
    (tmp_path / "invalid_notebook_exits_2.ipynb").write_text(json.dumps(invalid))
    return tmp_path


def nbrepro_main(
    *args: str | Path,
    cwd: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[int, str, str]:
    """The command in this process (for checks that start no kernel): status, stdout, stderr."""
    monkeypatch.chdir(cwd)
    try:
        status = main([str(arg) for arg in args])
    except SystemExit as exit:  # argparse
        status = int(exit.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def read(path: Path) -> nbformat.NotebookNode:
    """A notebook from disk."""
    return nbformat.read(path, as_version=4)


def stdout_of(notebook: nbformat.NotebookNode, cell_id: str) -> str:
    """What the cell with ``cell_id`` printed."""
    (cell,) = [c for c in notebook.cells if c.get("id") == cell_id]
    return "".join(o["text"] for o in cell.outputs if o["output_type"] == "stream")


# -- nbrepro run ---------------------------------------------------------------------------


@kernel
def test_run_sends_cell_ids_so_per_cell_seeds_match_jupyterlab(workdir: Path) -> None:
    """The kernel gets each cell's id: the per-cell seed is derive_seed("cell", id)."""
    source = workdir / "per_cell_seed_follows_cell_ids.ipynb"
    before = source.read_bytes()
    result = nbrepro_command("run", source.name, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert source.read_bytes() == before, "the source notebook is never overwritten by default"
    executed = read(workdir / "per_cell_seed_follows_cell_ids.nbrepro.ipynb")
    cell, seed, from_id = stdout_of(executed, "report-cell-seed").split()
    assert cell == "report-cell-seed"
    assert int(seed) == nbrepro.derive_seed("cell", "report-cell-seed", seed=42)
    assert from_id == "True"
    assert all(c.execution_count for c in executed.cells if c.cell_type == "code")
    assert "wrote per_cell_seed_follows_cell_ids.nbrepro.ipynb" in result.stdout


@kernel
def test_run_without_cell_ids_falls_back_to_the_source(workdir: Path) -> None:
    """nbformat 4.4 cells have no id: the seed comes from the cell's source, as documented."""
    result = nbrepro_command("run", "no_cell_ids_fall_back_to_source.ipynb", cwd=workdir)
    assert result.returncode == 0, result.stderr
    executed = read(workdir / "no_cell_ids_fall_back_to_source.nbrepro.ipynb")
    last = executed.cells[-1]
    cell, seed, from_id = "".join(o["text"] for o in last.outputs).split()
    digest = hashlib.sha256(last.source.encode()).hexdigest()
    assert cell == f"source:{digest[:16]}"
    assert int(seed) == nbrepro.derive_seed("cell-source", digest, seed=42)
    assert from_id == "False"


@kernel
def test_run_seed_option_seeds_with_a_silent_preamble(workdir: Path) -> None:
    """--seed 7 seeds the kernel as %repro_seed 7 would; the preamble leaves no trace."""
    name = "unseeded_random_reproduces_with_seed_option.ipynb"
    seeded = nbrepro_command("run", name, "--seed", "7", "-o", "seeded.ipynb", cwd=workdir)
    assert seeded.returncode == 0, seeded.stderr
    plain = nbrepro_command("run", name, "-o", "plain.ipynb", cwd=workdir)
    assert plain.returncode == 0, plain.stderr
    executed, unseeded = read(workdir / "seeded.ipynb"), read(workdir / "plain.ipynb")
    assert [c.source for c in executed.cells] == [c.source for c in read(workdir / name).cells]
    assert stdout_of(executed, "draw") == f"{random.Random(7).random()}\n"
    # Silent: the kernel's execution count is the same as without the preamble.
    assert stdout_of(executed, "count") == stdout_of(unseeded, "count")
    assert "seed 7 (given)" in seeded.stderr  # the %repro_seed summary, as progress


@kernel
def test_run_cell_error_exits_1_naming_the_cell(workdir: Path) -> None:
    """A raising cell: exit 1, the cell named, the notebook written as far as it ran."""
    result = nbrepro_command("run", "cell_error_fails_run.ipynb", cwd=workdir)
    assert result.returncode == 1
    assert "cell 2 (id raises) `raise ValueError(" in result.stderr
    assert "raised ValueError: this cell always fails" in result.stderr
    executed = read(workdir / "cell_error_fails_run.nbrepro.ipynb")
    assert stdout_of(executed, "fine") == "before the error\n"
    assert [o["ename"] for o in executed.cells[2].outputs] == ["ValueError"]
    assert executed.cells[3].outputs == []


@kernel
def test_run_timeout_exits_1_naming_the_cell(workdir: Path) -> None:
    """A cell past --timeout: exit 1 naming it."""
    result = nbrepro_command("run", "sleeping_cell_times_out.ipynb", "--timeout", "1", cwd=workdir)
    assert result.returncode == 1
    assert "cell 0 (id sleeps)" in result.stderr
    assert "did not finish within the 1 s timeout" in result.stderr


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("corrupt_json_exits_2.ipynb", "not a notebook: corrupt JSON (Expecting"),
        ("invalid_notebook_exits_2.ipynb", "not a valid Jupyter notebook: 'source' is a required"),
        ("missing.ipynb", "no such file"),
        (".", "is a directory, not a notebook"),
    ],
)
@pytest.mark.parametrize("command", ["run", "verify"])
def test_bad_input_exits_2_naming_the_problem(
    command: str,
    name: str,
    problem: str,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A missing, corrupt or invalid notebook: the problem named, exit 2, nothing written."""
    before = sorted(workdir.iterdir())
    status, out, err = nbrepro_main(
        command, name, cwd=workdir, capsys=capsys, monkeypatch=monkeypatch
    )
    assert status == 2
    assert f"{name}: " in out + err
    assert problem in out + err
    assert sorted(workdir.iterdir()) == before


def test_run_into_a_read_only_folder_exits_2_and_leaves_nothing(
    workdir: Path,
    read_only_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """-o into a folder that cannot be written: exit 2 before running, no temporary file."""
    target = read_only_dir / "out.ipynb"
    status, _, err = nbrepro_main(
        "run", "seeded_numpy_reproduces.ipynb", "-o", target,
        cwd=workdir, capsys=capsys, monkeypatch=monkeypatch,
    )  # fmt: skip
    assert status == 2
    assert f"{target}: cannot write there" in err
    assert list(read_only_dir.iterdir()) == []
    assert "done in" not in err  # refused before executing anything


def test_write_is_atomic_and_keeps_the_file_mode(tmp_path: Path) -> None:
    """Writing replaces the file whole, keeps its permissions, and leaves no temporary file."""
    target = tmp_path / "out.ipynb"
    target.write_text("old")
    target.chmod(0o640)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    write_notebook(notebook, target)
    assert read(target).cells[0].source == "1 + 1"
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["out.ipynb"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["verify", "--runs", "1", "x.ipynb"], "runs must be at least 2, not 1"),
        (["verify", "--jobs", "0", "x.ipynb"], "jobs must be at least 1, not 0"),
        (["run"], "the following arguments are required: NB"),
        (["run", "--seed", "-1", "x.ipynb"], "invalid seed '-1'"),
        (["run", "--timeout", "soon", "x.ipynb"], "'soon' is not an integer"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bad arguments: a usage message naming the bad value, exit 2."""
    status, _, err = nbrepro_main(*args, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert status == 2
    assert "usage: nbrepro" in err
    assert message in err


# -- what the kernel gets ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("torch_version", "cublas"), [("2.9.1", ":4096:8"), ("2.13.0", None), (None, None)]
)
def test_kernel_environment_fixes_process_start_settings(
    monkeypatch: pytest.MonkeyPatch, torch_version: str | None, cublas: str | None
) -> None:
    """PYTHONHASHSEED is fixed; CUBLAS_WORKSPACE_CONFIG only for a torch that needs it."""

    def version(name: str) -> str:
        if torch_version is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return torch_version

    monkeypatch.setattr(importlib.metadata, "version", version)
    distribution_version.cache_clear()  # read once per process; here, per case
    try:
        settings = _process_settings.process_start_settings(None)
    finally:
        distribution_version.cache_clear()
    environment = _kernel_environment.kernel_environment(
        {"PYTHONHASHSEED": "random", "HOME": "/h"}, settings, {"pid": None}
    )
    assert environment["PYTHONHASHSEED"] == "0"
    assert environment["HOME"] == "/h"
    assert environment.get("CUBLAS_WORKSPACE_CONFIG") == cublas


def test_kernel_environment_drops_the_last_restarts_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Base + settings + record; settings of the restart that started this process do not
    linger (the one builder %repro_restart and nbrepro run share)."""
    previous = _runtime_record.Runtime(
        "%repro_restart", 0.0, {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "2"}
    )
    monkeypatch.setattr(_kernel_environment, "current_runtime", lambda: previous)
    base = {"PATH": "/bin", "OMP_NUM_THREADS": "2", "PYTHONHASHSEED": "0"}
    environment = _kernel_environment.kernel_environment(
        base, {"PYTHONHASHSEED": "0"}, {"pid": 1}, notebook_path=tmp_path / "n.ipynb"
    )
    assert environment == {
        "PATH": "/bin",
        "PYTHONHASHSEED": "0",
        _runtime_record.RUNTIME_VARIABLE: '{"pid": 1}',
        "JPY_SESSION_NAME": str(tmp_path / "n.ipynb"),
    }
    assert base["OMP_NUM_THREADS"] == "2", "the base is not changed"


# -- nbrepro verify ------------------------------------------------------------------------


@kernel
def test_verify_passes_on_seeded_notebooks(workdir: Path) -> None:
    """Seeded NumPy and str-set order (hash seed fixed at kernel start) verify; exit 0."""
    result = nbrepro_command(
        "verify",
        "seeded_numpy_reproduces.ipynb",
        "str_set_order_reproduces_with_fixed_hash_seed.ipynb",
        "--jobs",
        "2",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "seeded_numpy_reproduces.ipynb: reproducible: 2 runs" in result.stdout
    assert "str_set_order_reproduces_with_fixed_hash_seed.ipynb: reproducible" in result.stdout
    assert "2 reproducible, 0 not reproducible, 0 could not be verified" in result.stdout
    # Progress: plain lines on stderr, readable in CI logs.
    assert "seeded_numpy_reproduces.ipynb: run 2/2: starting a fresh kernel" in result.stderr
    assert "(id draws)" in result.stderr
    assert "\r" not in result.stderr


@kernel
def test_verify_names_the_first_cell_that_reads_the_wall_clock(workdir: Path) -> None:
    """The wall-clock notebook is not reproducible: exit 1, the `clock` cell named, a diff."""
    result = nbrepro_command("verify", "wall_clock_differs_every_run.ipynb", cwd=workdir)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("wall_clock_differs_every_run.ipynb: NOT reproducible")
    assert lines[1] == (
        '  first differing cell: cell 3 (id clock) `print("seconds since the epoch:", time.time())`'
    )
    assert lines[2:4] == ["  --- run 1", "  +++ run 2"]
    assert [line[:28] for line in lines if line.startswith(("  -s", "  +s"))] == [
        "  -seconds since the epoch: ",
        "  +seconds since the epoch: ",
    ]


@kernel
def test_verify_a_failing_cell_is_an_error(workdir: Path) -> None:
    """A notebook that raises cannot be verified: exit 2, the run and cell named."""
    result = nbrepro_command("verify", "cell_error_fails_run.ipynb", "-q", cwd=workdir)
    assert result.returncode == 2
    assert "cell_error_fails_run.ipynb: error: run " in result.stdout
    assert "cell 2 (id raises)" in result.stdout
    assert result.stderr.count("nbrepro:") == 0  # -q: no progress


@kernel
def test_verify_a_kernel_death_is_an_error(workdir: Path) -> None:
    """A cell that ends the kernel process: exit 2, the cell named."""
    result = nbrepro_command("verify", "kernel_death_is_an_error.ipynb", "-q", cwd=workdir)
    assert result.returncode == 2
    assert "cell 2 (id dies) `import os` killed the kernel" in result.stdout


def test_run_with_an_unknown_kernel_exits_2(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--kernel names a kernelspec that does not exist: exit 2 naming it, nothing written."""
    status, _, err = nbrepro_main(
        "run", "seeded_numpy_reproduces.ipynb", "--kernel", "no-such-kernel",
        cwd=workdir, capsys=capsys, monkeypatch=monkeypatch,
    )  # fmt: skip
    assert status == 2
    assert "no Jupyter kernel named 'no-such-kernel' is installed" in err
    assert not (workdir / "seeded_numpy_reproduces.nbrepro.ipynb").exists()


@kernel
def test_str_set_order_differs_in_kernels_with_random_hash_seeds(tmp_path: Path) -> None:
    """The converse of the verify test: without a fixed hash seed the notebook varies."""
    from nbclient import NotebookClient

    notebook = read(NOTEBOOKS / "str_set_order_reproduces_with_fixed_hash_seed.ipynb")
    environment = {**os.environ, "PYTHONHASHSEED": "random"}
    outputs = []
    for _ in range(2):
        run = nbformat.from_dict(json.loads(json.dumps(notebook)))
        NotebookClient(run, kernel_name="python3").execute(env=environment)
        outputs.append(normalize_outputs(run))
    assert outputs[0] != outputs[1]


def test_exit_status_is_the_worst_outcome() -> None:
    """Several notebooks: error beats not reproducible beats reproducible."""
    ok = Verification(Path("a.ipynb"), 2, 1.0, compared_cells=1)
    cell = CellRef(index=1, id="c", first_line="print(time.time())")
    differs = Verification(Path("b.ipynb"), 2, 1.0, 1, Divergence(cell, 2, "-1\n+2"))
    error = Verification(Path("c.ipynb"), 2, 1.0, error="no such file")
    assert outcome([ok]) is Outcome.REPRODUCIBLE
    assert outcome([ok, differs]) is Outcome.NOT_REPRODUCIBLE
    assert outcome([differs, error, ok]) is Outcome.ERROR
    assert outcome([]) is Outcome.REPRODUCIBLE


def test_compare_names_the_first_differing_cell_across_runs() -> None:
    """The earliest cell that differs in any run is named, with a diff against run 1."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    from nbrepro.commands.verify import compare

    def run(*printed: str) -> nbformat.NotebookNode:
        cells = [new_markdown_cell("# title")]
        for number, text in enumerate(printed):
            cell = new_code_cell(f"print({number})  # cell {number}")
            cell.id = f"c{number}"
            cell.outputs = [new_output("stream", name="stdout", text=text)]
            cells.append(cell)
        return new_notebook(cells=cells)

    same = run("a\n", "at 0x7f00aa11bb22\n", "x\n")
    assert compare([same, run("a\n", "at 0x7f00cc33dd44\n", "x\n")]) == (None, 3)
    divergence, _ = compare([same, same, run("a\n", "at 0x7f00aa11bb22\n", "y\n")])
    assert divergence is not None
    assert (divergence.run, str(divergence.cell)) == (3, "cell 3 (id c2) `print(2)  # cell 2`")
    assert divergence.diff.splitlines()[-2:] == ["-x", "+y"]


# -- Ctrl-C and SIGTERM: one line, every kernel stopped ------------------------------------


def child_pids(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (the kernels a command started)."""
    children = set()
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[1]) == pid:
            children.add(int(entry.parent.name))
    return children


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def start_command(*args: str | Path, cwd: Path) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    """``python -m nbrepro ARGS`` started in the background; its stderr lines in a queue."""
    process = subprocess.Popen(
        [sys.executable, "-m", "nbrepro", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return process, lines


def wait_for_line(lines: queue.Queue[str], text: str, count: int = 1, timeout: float = 120) -> str:
    """Every stderr line up to the ``count``-th one containing ``text``."""
    seen, found = "", 0
    deadline = time.monotonic() + timeout
    while found < count:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no line with {text!r} in {timeout} s; got:\n{seen}") from None
        seen += line
        found += text in line
    return seen


def drain(lines: queue.Queue[str]) -> str:
    """The stderr lines not read yet."""
    rest = ""
    while not lines.empty():
        rest += lines.get()
    return rest


@kernel
@pytest.mark.parametrize(
    ("command", "signal_number", "status", "kernels"),
    [
        ("run", signal.SIGINT, 130, 1),
        ("verify", signal.SIGINT, 130, 2),
        ("rerun", signal.SIGINT, 130, 1),
        ("run", signal.SIGTERM, 143, 1),
    ],
)
def test_a_signal_while_a_cell_runs_stops_every_kernel(
    command: str, signal_number: int, status: int, kernels: int, workdir: Path
) -> None:
    """Ctrl-C (a real SIGINT) while a cell sleeps: one line, no traceback, exit 130, no
    kernel left running, nothing written; SIGTERM likewise, exit 143."""
    name = "interrupted_run_stops_its_kernels.ipynb"
    if command == "rerun":
        notebook = read(workdir / name)
        nbrepro.seed(11)
        embed(notebook, build_record(session()))
        write_notebook(notebook, workdir / name)
    args = ["--jobs", "2"] if command == "verify" else []
    before = sorted(p.name for p in workdir.iterdir())
    process, lines = start_command(command, name, *args, cwd=workdir)
    try:
        seen = wait_for_line(lines, "(id starts)", count=kernels)
        time.sleep(1)  # into the sleeping cell
        started = child_pids(process.pid)
        assert len(started) == kernels, seen
        process.send_signal(signal_number)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.stderr is not None
    process.stderr.close()
    errors = drain(lines)
    assert process.returncode == status, seen + errors
    assert "Traceback" not in errors and "Error" not in errors, errors
    word = "interrupted" if signal_number == signal.SIGINT else "terminated"
    assert errors.strip().splitlines()[-1] == (
        f"nbrepro: {word}; every kernel it started is stopped"
    )
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in started if running(pid)], "kernels left running"
    assert sorted(p.name for p in workdir.iterdir()) == before, "nothing written"


# -- corrupt input: one line, exit 2, in every command --------------------------------------

#: JSON that does not fail as a JSONDecodeError: Python's parser gives up with RecursionError
#: on deep nesting, and with ValueError on an integer longer than 4300 digits.
HOSTILE_JSON = {
    "nested_100000_deep.ipynb": "[" * 100_000 + "]" * 100_000,
    "number_5000_digits.ipynb": '{"nbformat": ' + "7" * 5000 + "}",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_JSON))
@pytest.mark.parametrize("command", ["run", "verify", "rerun", "show"])
def test_hostile_json_exits_2_with_one_line(
    command: str,
    name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deeply nested JSON or a huge number: exit 2, one line naming the file, nothing
    written, in every command."""
    (tmp_path / name).write_text(HOSTILE_JSON[name])
    status, out, err = nbrepro_main(
        command, name, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch
    )
    assert status == 2, out + err
    report = (out + err).strip().splitlines()
    assert len(report) == 1, report
    assert name in report[0] and "not a notebook" in report[0], report
    assert [p.name for p in tmp_path.iterdir()] == [name]


# -- output targets: refused before anything runs, never replaced ---------------------------


def refused_before_running(
    target: Path,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str = "run",
) -> str:
    """``nbrepro COMMAND NB -o TARGET``: must exit 2 before a cell runs; its stderr."""
    name = "seeded_numpy_reproduces.ipynb"
    if command == "rerun":  # give the notebook a record to repeat
        notebook = read(workdir / name)
        nbrepro.seed(5)
        embed(notebook, build_record(session()))
        write_notebook(notebook, workdir / name)
    status, _, err = nbrepro_main(
        command, name, "-o", target, cwd=workdir, capsys=capsys, monkeypatch=monkeypatch
    )
    assert status == 2, err
    assert "done in" not in err, "refused before executing anything"
    assert len(err.strip().splitlines()) == 1, err
    assert str(target) in err
    return err


@pytest.mark.parametrize("command", ["run", "rerun"])
def test_run_and_rerun_refuse_a_fifo_as_output(
    command: str,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """-o onto a FIFO: refused up front (no hang opening it), and it stays a FIFO."""
    fifo = workdir / "pipe.ipynb"
    os.mkfifo(fifo)
    refused_before_running(fifo, workdir, capsys, monkeypatch, command)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_run_refuses_a_device_as_output(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """-o onto a device node (a private /dev/null: as root, -o /dev/null must not replace the
    system's): refused, and it stays a device."""
    device = workdir / "null"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root")
    refused_before_running(device, workdir, capsys, monkeypatch)
    assert stat.S_ISCHR(device.lstat().st_mode)


def test_run_refuses_an_immutable_output_before_running(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An existing output that cannot be written (chattr +i, which binds root too) is refused
    before the notebook runs, and is left as it was."""
    chattr = shutil.which("chattr")
    target = workdir / "kept.ipynb"
    target.write_text("kept")
    if chattr is None or subprocess.run([chattr, "+i", target], capture_output=True).returncode:
        pytest.skip("chattr +i is not available here")
    try:
        refused_before_running(target, workdir, capsys, monkeypatch)
    finally:
        subprocess.run([chattr, "-i", target], check=True)
    assert target.read_text() == "kept"


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[Path]:
    """A read-only tmpfs (root ignores permission bits, not a read-only mount)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mount = shutil.which("mount")
    done = mount and subprocess.run(
        [mount, "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", folder], capture_output=True
    )
    if not done or done.returncode:
        pytest.skip("cannot mount a read-only tmpfs here")
    yield folder
    subprocess.run(["umount", folder], check=True)


def test_run_refuses_a_read_only_file_system_before_running(
    workdir: Path,
    read_only_mount: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """-o into a read-only mount: refused before the notebook runs."""
    err = refused_before_running(read_only_mount / "out.ipynb", workdir, capsys, monkeypatch)
    assert "read-only" in err.lower()


@kernel
def test_run_writes_through_a_symlinked_output(workdir: Path) -> None:
    """A symlinked -o stays a symlink: the notebook lands in the file it points to."""
    (workdir / "results").mkdir()
    real = workdir / "results" / "out.ipynb"
    real.write_text("old")
    link = workdir / "out.ipynb"
    link.symlink_to(real)
    result = nbrepro_command("run", "seeded_numpy_reproduces.ipynb", "-o", link.name, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and link.resolve() == real
    assert "nbrepro" in read(real).metadata
