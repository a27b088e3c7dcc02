"""nbrepro rerun and show: the pieces, then the commands end to end on real notebooks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import nbrepro
from nbrepro._record import build_record, embed
from nbrepro._session import session
from nbrepro.commands.rerun import environment_drift, kernel_variables, seed_arguments
from nbrepro.commands.show import format_record


def test_seed_arguments_repeat_the_configuration() -> None:
    """The recorded options become the same %repro_seed line."""
    nbrepro.seed(7, strict=True, threads=2)
    record = build_record(session())
    assert seed_arguments(record) == "7 --strict --threads 2"
    assert kernel_variables(record)["NBREPRO_SEED"] == "7"


def test_environment_drift_names_what_changed() -> None:
    """Package, Python and GPU changes are each a line; unchanged ones are not."""
    before = {
        "python": "3.11.7",
        "packages": {"torch": "2.13.0", "numpy": "2.4.6"},
        "gpu": {"devices": ["H100"], "cuda": "13.0"},
    }
    after = {
        "python": "3.12.1",
        "packages": {"numpy": "2.4.6"},
        "gpu": {"devices": ["A100"], "cuda": "13.0"},
    }
    assert environment_drift(before, after) == [
        "python: 3.11.7 -> 3.12.1",
        "gpu devices: ['H100'] -> ['A100']",
        "torch: 2.13.0 -> not installed",
    ]
    assert environment_drift(before, before) == []


def test_auto_seed_is_replayed_from_the_variable(monkeypatch) -> None:
    """NBREPRO_SEED stands in for a fresh draw, still marked auto; a bad value is named."""
    monkeypatch.setenv("NBREPRO_SEED", "1234")
    status = nbrepro.seed()
    assert (status.seed, status.seed_source) == (1234, "auto")
    monkeypatch.setenv("NBREPRO_SEED", "-3")
    with pytest.raises(nbrepro.InvalidSeedError, match="NBREPRO_SEED"):
        nbrepro.seed()
    assert nbrepro.status().seed == 1234


def test_show_reads_well() -> None:
    """format_record gives seed, options, settings, environment and findings."""
    nbrepro.seed(3, deterministic=True)
    text = format_record(build_record(session()), "n.ipynb")
    assert "seed: 3 (given); deterministic: warn" in text
    assert "python " in text and "packages:" in text


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the nbrepro command."""
    return subprocess.run(
        [sys.executable, "-m", "nbrepro", *args],
        capture_output=True, text=True, cwd=cwd, check=False,
        env={**os.environ, "NBREPRO_CACHE_DIR": str(cwd / "cache")},
    )  # fmt: skip


def recorded_notebook(tmp_path: Path) -> Path:
    """A notebook with an auto seed and a data folder, run once by `nbrepro run`."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("1\n")
    notebook = new_notebook(
        cells=[
            new_code_cell("%load_ext nbrepro"),
            new_code_cell("%repro_seed --per-cell"),
            new_code_cell("%repro_data data"),
            new_code_cell("import random\nprint(random.random(), sorted({'b', 'a', 'c'}))"),
            new_code_cell("print(set('abcdefgh'))"),
        ],
        metadata={
            "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}
        },
    )
    source = tmp_path / "exp.ipynb"
    nbformat.write(notebook, source)
    done = cli("run", "exp.ipynb", "-o", "exp.run.ipynb", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path / "exp.run.ipynb"


@pytest.mark.kernel
def test_run_embeds_the_record_and_rerun_reproduces_it(tmp_path: Path) -> None:
    """`nbrepro run` writes the record; `rerun` replays the auto seed and matches outputs."""
    executed = recorded_notebook(tmp_path)
    record = nbformat.read(executed, as_version=4).metadata["nbrepro"]
    assert record["seed_source"] == "auto" and record["per_cell"]
    assert record["env_vars"]["PYTHONHASHSEED"] == "0"
    assert record["data"]["data"]["files"] == 1

    again = cli("rerun", "exp.run.ipynb", "-o", "exp.rerun.ipynb", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"seed {record['seed']}" in again.stdout
    assert "outputs: 5 of 5 executed code cells match" in again.stdout
    assert "data drift: none" in again.stdout

    shown = cli("show", "exp.rerun.ipynb", cwd=tmp_path)
    assert shown.returncode == 0 and f"seed: {record['seed']} (auto-assigned)" in shown.stdout


@pytest.mark.kernel
def test_rerun_names_changed_data_and_differing_cells(tmp_path: Path) -> None:
    """After a data file changes, rerun names it; a cell printing the data differs, exit 1."""
    executed = recorded_notebook(tmp_path)
    notebook = nbformat.read(executed, as_version=4)
    notebook.cells.append(
        new_code_cell(
            "print(open('data/a.txt').read())",
            outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\n\n")],
        )
    )
    nbformat.write(notebook, executed)
    (tmp_path / "data" / "a.txt").write_text("2\n")
    again = cli("rerun", "exp.run.ipynb", "-o", "exp.rerun.ipynb", cwd=tmp_path)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "data/a.txt" in again.stdout or "a.txt" in again.stdout
    assert "cell 5" in again.stdout


@pytest.mark.parametrize(
    ("content", "problem"),
    [("{not json", "corrupt JSON"), (None, "no nbrepro record")],
)
def test_rerun_and_show_refuse_what_they_cannot_read(tmp_path: Path, content, problem) -> None:
    """A corrupt notebook or one without a record: exit 2, the problem named."""
    path = tmp_path / "bad.ipynb"
    if content is None:
        nbformat.write(new_notebook(cells=[new_code_cell("1")]), path)
    else:
        path.write_text(content)
    for command in ("rerun", "show"):
        done = cli(command, "bad.ipynb", cwd=tmp_path)
        assert done.returncode == 2 and problem in done.stderr, (command, done.stderr)


def test_show_refuses_a_newer_schema(tmp_path: Path) -> None:
    """A record from a newer nbrepro is named as such."""
    notebook = new_notebook()
    embed(notebook, {"schema": 9})
    nbformat.write(notebook, tmp_path / "new.ipynb")
    done = cli("show", "new.ipynb", cwd=tmp_path)
    assert done.returncode == 2 and "schema 9, newer" in done.stderr


def recorded(tmp_path: Path, name: str, *sources: str, run_args: tuple[str, ...] = ()) -> Path:
    """A notebook of ``sources`` cells, run once by `nbrepro run RUN_ARGS`; the executed copy."""
    notebook = new_notebook(
        cells=[new_code_cell(source) for source in sources],
        metadata={
            "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}
        },
    )
    nbformat.write(notebook, tmp_path / f"{name}.ipynb")
    done = cli("run", f"{name}.ipynb", "-o", f"{name}.run.ipynb", *run_args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path / f"{name}.run.ipynb"


DRAWS = "import random\nprint(random.random(), sorted({'b', 'a', 'c'}), set('abcdefgh'))"


@pytest.mark.kernel
@pytest.mark.parametrize(
    ("sources", "run_args"),
    [
        (("%load_ext nbrepro", "%repro_seed 5", DRAWS), ()),
        (("%load_ext nbrepro", "%repro_seed --per-cell", DRAWS, DRAWS), ()),
        (("%load_ext nbrepro", "%repro_seed", DRAWS), ("--seed", "8")),
        (
            (
                DRAWS,
                "print(nbrepro_loaded := 'nbrepro' in get_ipython().magics_manager.magics['line'])",
            ),
            ("--seed", "9", "--deterministic"),
        ),
    ],
    ids=["own-seed", "own-auto-per-cell", "own-and-cli-seed", "cli-seed-only"],
)
def test_rerun_of_an_unchanged_recorded_notebook_exits_0(
    tmp_path: Path, sources: tuple[str, ...], run_args: tuple[str, ...]
) -> None:
    """With or without the notebook's own %load_ext/%repro_seed, user or auto seed, per-cell
    or not: every executed cell matches, nothing prints "already loaded", exit 0."""
    executed = recorded(tmp_path, "exp", *sources, run_args=run_args)
    again = cli("rerun", executed.name, "-o", "exp.rerun.ipynb", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    count = len(sources)
    assert f"outputs: {count} of {count} executed code cells match" in again.stdout
    rerun = nbformat.read(tmp_path / "exp.rerun.ipynb", as_version=4)
    printed = [o.get("text", "") for cell in rerun.cells for o in cell.outputs]
    assert not [text for text in printed if "already loaded" in text]


@pytest.mark.kernel
def test_rerun_names_a_cell_that_prints_where_it_printed_nothing(tmp_path: Path) -> None:
    """An executed cell that printed nothing is compared too: printing now is a difference."""
    executed = recorded(tmp_path, "exp", "import os", "x = 1")
    notebook = nbformat.read(executed, as_version=4)
    notebook.cells[1].source = "x = 1\nprint('now it prints')"
    nbformat.write(notebook, executed)
    again = cli("rerun", executed.name, cwd=tmp_path)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "outputs: 1 of 2 executed code cells match" in again.stdout
    assert "differs: cell 1" in again.stdout


def damaged(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """A notebook whose (otherwise valid) record ``change`` damaged."""
    nbrepro.seed(3)
    record = build_record(session())
    record["data"]["data.csv"] = {"kind": "file", "size": 4, "sha256": "0" * 64}
    change(record)
    notebook = new_notebook(cells=[new_code_cell("print(1)")])
    embed(notebook, record)
    path = tmp_path / "damaged.ipynb"
    nbformat.write(notebook, path)
    return path


def set_key(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change that sets ``record[key]``."""

    def change(record: dict[str, Any]) -> None:
        record[key] = value

    return change


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("seed", -1),
        ("seed", 2**40),
        ("seed", True),
        ("threads", -1),
        ("threads", 2**40),
        ("threads", True),
    ],
)
@pytest.mark.parametrize("command", ["rerun", "show"])
def test_a_record_with_a_bad_seed_or_threads_exits_2_naming_it(
    tmp_path: Path, command: str, key: str, value: Any
) -> None:
    """A seed or thread count out of range, or a boolean: exit 2 naming the key and the
    value, before anything runs (no rerun written)."""
    path = damaged(tmp_path, set_key(key, value))
    done = cli(command, path.name, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert key in lines[0] and str(value).lower() in lines[0].lower(), lines[0]
    assert not (tmp_path / "damaged.rerun.ipynb").exists()
    assert "done in" not in done.stderr


def inner(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    """A change that sets the value at a key path inside the record."""

    def change(record: dict[str, Any]) -> None:
        target = record
        for key in path[:-1]:
            target = target[key] if key != "*" else next(iter(target.values()))
        if path[-1] == "*":
            target[next(iter(target))] = value
        else:
            target[path[-1]] = value

    return change


def drop_files(record: dict[str, Any]) -> None:
    """The data entry becomes a folder entry without ``files``."""
    entry = next(iter(record["data"].values()))
    entry["kind"] = "dir"
    entry.pop("files", None)


@pytest.mark.parametrize(
    "change",
    [
        inner(("data", "*"), "a string"),
        drop_files,
        inner(("environment", "packages"), ["numpy"]),
        set_key("findings", [None]),
        set_key("cell_seeds", {"a": "seven"}),
    ],
    ids=[
        "data-entry-a-string",
        "folder-without-files",
        "packages-a-list",
        "findings-null",
        "cell-seed-a-string",
    ],
)
@pytest.mark.parametrize("command", ["rerun", "show"])
def test_a_record_with_wrong_inner_types_exits_2_with_one_line(
    tmp_path: Path, command: str, change: Callable[[dict[str, Any]], None]
) -> None:
    """Inner values of the wrong type: exit 2, one line, no traceback, nothing run."""
    path = damaged(tmp_path, change)
    done = cli(command, path.name, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert path.name in lines[0]
    assert not (tmp_path / "damaged.rerun.ipynb").exists()


def test_data_named_with_a_redacted_secret_cannot_be_checked_rather_than_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recorded path whose name held a secret-looking part is said to be uncheckable, not
    missing; a really missing path and an unchanged one are reported as such beside it."""
    from nbrepro._fingerprint import fingerprint
    from nbrepro.commands.rerun import current_data_drift

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("1\n")
    monkeypatch.chdir(tmp_path)
    recorded = fingerprint(["data/a.txt"])
    hidden = "s3/token=<redacted:0123abcd>/train.csv"
    record = {
        "data": {**recorded, hidden: recorded["data/a.txt"], "gone.txt": recorded["data/a.txt"]}
    }
    assert current_data_drift(record, tmp_path) == [
        f"{hidden}: cannot be checked (part of its name was redacted as a secret when recorded)",
        "gone.txt: missing now",
    ]
