"""The magics through a real IPython InteractiveShell."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import nbrepro

pytest.importorskip("numpy")


def cell(ip: InteractiveShell, code: str, cell_id: str | None = None) -> object:
    """Run ``code`` as a notebook cell would and return its result, failing on errors."""
    result = ip.run_cell(code, store_history=True, cell_id=cell_id)
    result.raise_error()
    return result.result


def test_repro_seed_seeds_and_reports(shell: InteractiveShell, capsys) -> None:
    """`%repro_seed 42 --deterministic` seeds, prints the summary, and repeats draws."""
    cell(shell, "import random, numpy as np")
    cell(shell, "%repro_seed 42 --deterministic")
    out = capsys.readouterr().out
    assert "seed 42 (given)" in out and "deterministic: warn" in out
    first = cell(
        shell, "(random.random(), float(np.random.rand()), np.random.default_rng().random())"
    )
    cell(shell, "%repro_seed 42 --deterministic")
    again = cell(
        shell, "(random.random(), float(np.random.rand()), np.random.default_rng().random())"
    )
    assert again == first


def test_omitted_seed_is_drawn_printed_and_repeatable(shell: InteractiveShell, capsys) -> None:
    """`%repro_seed` alone prints the drawn seed and how to repeat the run."""
    cell(shell, "%repro_seed")
    out = capsys.readouterr().out
    drawn = nbrepro.status().seed
    assert f"auto-assigned {drawn}" in out
    assert f"%repro_seed {drawn}" in out
    assert nbrepro.status().seed_source == "auto"


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("-1", "'-1'"),
        ("2147483648", "'2147483648'"),
        ("2**31", "'2**31'"),
        ("abc", "'abc'"),
        ("4.2", "'4.2'"),
        ("1 --threads 0", "'0'"),
        ("1 --threads many", "'many'"),
        ("1 --fast", "--fast"),
        ("1 2", "2"),
        ("1" * 5000, "(5000 characters)"),
        ("1 --threads \uff14", "'\uff14'"),
        ("1 --threads 1_0", "'1_0'"),
        ("1 --threads +3", "'+3'"),
        ("1 --threads -3", "'-3'"),
        ("1 --det", "--det"),
        ("1 --threads 2 --threads 3", "--threads is given twice"),
        ("1 --strict --strict", "--strict is given twice"),
        ("1 --threads", "--threads"),
        ("'1", "no closing quotation"),
    ],
)
def test_bad_arguments_raise_usage_error_and_change_nothing(
    shell: InteractiveShell, line: str, shown: str
) -> None:
    """Each bad line is a UsageError naming the value; the seed in force stays."""
    cell(shell, "%repro_seed 7 --per-cell")
    before = nbrepro.status()
    with pytest.raises(UsageError) as caught:
        shell.run_line_magic("repro_seed", line)
    assert shown in str(caught.value)
    after = nbrepro.status()
    assert (after.seed, after.per_cell, after.deterministic) == (7, True, before.deterministic)


def test_refusals_show_the_usage(shell: InteractiveShell) -> None:
    """An unknown, abbreviated or repeated option is answered with the magic's usage line."""
    with pytest.raises(UsageError) as caught:
        shell.run_line_magic("repro_seed", "1 --per")
    assert str(caught.value) == (
        "%repro_seed: unrecognized arguments: --per (usage: %repro_seed [--deterministic] "
        "[--strict] [--per-cell] [--threads N] [--quiet] [--restart] [seed])"
    )


@pytest.mark.parametrize(
    ("magic", "line", "shown"),
    [
        ("repro_export", "out.ipynb --overwrite --overwrite", "--overwrite is given twice"),
        ("repro_export", "--sour nb.ipynb", "--sour"),
        ("repro_export", "--source a.ipynb --source b.ipynb", "--source is given twice"),
        ("repro_export", "a.ipynb b.ipynb", "b.ipynb"),
        ("repro_export", "'my notebook.ipynb", "no closing quotation"),
        ("repro_data", "", "PATH"),
        ("repro_data", '"my data.csv', "no closing quotation"),
        ("repro_data", "--fast data.csv", "--fast"),
        ("repro_restart", "--now", "--now"),
    ],
)
def test_other_magics_refuse_bad_arguments(
    shell: InteractiveShell, magic: str, line: str, shown: str
) -> None:
    """%repro_export, %repro_data and %repro_restart follow the same rules as %repro_seed."""
    with pytest.raises(UsageError) as caught:
        shell.run_line_magic(magic, line)
    assert str(caught.value).startswith(f"%{magic}: ")
    assert shown in str(caught.value)


def test_paths_with_spaces_are_split_as_a_shell_would(
    shell: InteractiveShell,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Quotes group a path with spaces and are not part of it; so does an escaped space; `~`
    is the home folder."""
    folder = tmp_path / "my data"
    folder.mkdir()
    (folder / "train set.csv").write_text("a,b\n1,2\n")
    (folder / "labels.csv").write_text("y\n0\n")
    source = tmp_path / "my notebook.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), source)
    cell(shell, "%repro_seed 5")
    cell(shell, f"%repro_data '{folder / 'train set.csv'}' {str(folder / 'labels.csv')!r}")
    train = f"%repro_data {str(folder / 'train set.csv').replace(' ', chr(92) + ' ')}"
    cell(shell, train)
    monkeypatch.setenv("HOME", str(tmp_path))
    cell(shell, "%repro_data ~/'my data'/labels.csv")
    out = capsys.readouterr().out
    assert f"nbrepro: {folder / 'train set.csv'}: " in out
    assert f"nbrepro: {folder / 'labels.csv'}: " in out
    assert out.count(f"nbrepro: {folder / 'labels.csv'}: ") == 2  # by its path, then from ~
    target = tmp_path / "out put" / "exported copy.ipynb"
    target.parent.mkdir()
    cell(shell, f'%repro_export "{target}" --source "{source}"')
    assert f"wrote {target} from {source}" in capsys.readouterr().out
    assert nbformat.read(target, as_version=4).metadata["nbrepro"]["seed"] == 5


def test_quiet_is_recorded_in_the_config(shell: InteractiveShell) -> None:
    """--quiet is an option of the configuration (read by the run-time finding lines)."""
    from nbrepro._session import session

    cell(shell, "%repro_seed 3 --quiet")
    assert session().config is not None and session().config.quiet
    cell(shell, "%repro_seed 3")
    assert session().config is not None and not session().config.quiet


def test_usage_error_message_names_the_range(shell: InteractiveShell) -> None:
    """The message says what is allowed."""
    with pytest.raises(UsageError, match=r"integer from 0 to 2147483647"):
        shell.run_line_magic("repro_seed", "-1")


def test_help_documents_every_option(shell: InteractiveShell) -> None:
    """`%repro_seed?` shows the argument help (magic_arguments)."""
    doc = shell.find_line_magic("repro_seed").__doc__
    for option in ("--deterministic", "--strict", "--per-cell", "--threads", "2147483647"):
        assert option in doc


def test_per_cell_makes_a_cell_independent_of_order(shell: InteractiveShell) -> None:
    """With --per-cell, a cell gives the same output rerun, or with an earlier cell skipped."""
    cell(shell, "import random, numpy as np")
    cell(shell, "%repro_seed 42 --per-cell")
    draw = "(random.random(), float(np.random.rand()), np.random.default_rng().random())"
    cell(shell, "consume = [random.random() for _ in range(5)]", cell_id="early")
    first = cell(shell, draw, cell_id="late")
    again = cell(shell, draw, cell_id="late")
    cell(shell, "consume = np.random.rand(100)", cell_id="early")
    cell(shell, "consume = np.random.rand(100)", cell_id="other")
    after_other_cells = cell(shell, draw, cell_id="late")
    assert first == again == after_other_cells
    assert cell(shell, draw, cell_id="another") != first


def test_per_cell_seed_comes_from_the_cell_id(shell: InteractiveShell) -> None:
    """The cell seed is derive_seed("cell", id); the status shows it."""
    cell(shell, "%repro_seed 42 --per-cell")
    cell(shell, "x = 1", cell_id="abc")
    status = nbrepro.status()
    assert status.last_cell is not None
    assert status.last_cell.cell == "abc" and status.last_cell.from_cell_id
    assert status.last_cell.seed == nbrepro.derive_seed("cell", "abc") == 1126212308


def test_per_cell_falls_back_to_the_source(shell: InteractiveShell) -> None:
    """Without a cell id the cell's source keys the seed: same code, same seed."""
    cell(shell, "import random")
    cell(shell, "%repro_seed 42 --per-cell")
    first = cell(shell, "random.random()")
    cell(shell, "random.random()")
    assert cell(shell, "random.random()") == first
    last = nbrepro.status().last_cell
    assert last is not None and last.cell.startswith("source:") and not last.from_cell_id


def test_reseeding_without_per_cell_stops_it(shell: InteractiveShell) -> None:
    """`%repro_seed 42` after `--per-cell` stops reseeding before each cell."""
    cell(shell, "import random")
    cell(shell, "%repro_seed 42 --per-cell")
    cell(shell, "%repro_seed 42")
    assert cell(shell, "random.random()") != cell(shell, "random.random()")


def test_status_magic_prints_the_summary(shell: InteractiveShell, capsys) -> None:
    """`%repro_status` prints seed, frameworks and findings as plain text."""
    cell(shell, "%repro_status")
    assert "no experiment seed yet" in capsys.readouterr().out
    cell(shell, "import numpy")
    cell(shell, "%repro_seed 3")
    capsys.readouterr()
    cell(shell, "%repro_status")
    out = capsys.readouterr().out
    assert "seed 3 (given)" in out and "numpy" in out
    with pytest.raises(UsageError, match="no arguments"):
        shell.run_line_magic("repro_status", "extra")


def test_unload_removes_magics_and_hooks(shell: InteractiveShell) -> None:
    """`%unload_ext nbrepro` removes both magics and the pre_run_cell hook, and unseeds."""
    cell(shell, "%repro_seed 1 --per-cell")
    callbacks = len(shell.events.callbacks["pre_run_cell"])
    shell.run_line_magic("unload_ext", "nbrepro")
    assert shell.find_line_magic("repro_seed") is None
    assert shell.find_line_magic("repro_status") is None
    assert len(shell.events.callbacks["pre_run_cell"]) == callbacks - 1
    assert nbrepro.status().seed is None
    shell.run_line_magic("load_ext", "nbrepro")  # the fixture unloads it again
