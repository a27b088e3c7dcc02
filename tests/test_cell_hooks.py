"""The cell hooks: a new finding is said once, on one line, under the cell that caused it,
numbered as the front end numbers that cell; a failing check never prints a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

import nbrepro
from nbrepro._session import session

UUID_CELL = "import uuid\nrun = uuid.uuid4()"


def cell(ip: InteractiveShell, code: str, cell_id: str | None = None) -> Any:
    """Run ``code`` as a notebook cell would; fail on errors; return the result."""
    result = ip.run_cell(code, store_history=True, cell_id=cell_id)
    result.raise_error()
    return result


# The live checks of frameworks that earlier tests imported into this process (torch,
# TensorFlow, JAX) find their determinism switches off: not what these tests are about.
FRAMEWORK_SWITCHES = ("NBR202", "NBR204", "NBR206")


def said(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The finding lines written since the last call."""
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return [
        line
        for line in captured.err.splitlines()
        if line.startswith("nbrepro NBR") and line.split()[1] not in FRAMEWORK_SWITCHES
    ]


def codes() -> list[str]:
    """The codes of ``nbrepro.audit()``, less the framework switches."""
    return [f.code for f in nbrepro.audit() if f.code not in FRAMEWORK_SWITCHES]


def test_a_new_finding_is_said_once_under_its_cell(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    """One line with code, message, cell and fix; not again on a rerun; again once it came
    back after a fix; said under another cell that has it too."""
    cell(shell, "%repro_seed 1")
    said(capsys)
    count = cell(shell, UUID_CELL, cell_id="a").execution_count
    (line,) = said(capsys)
    assert line.startswith("nbrepro NBR402 [warning] uuid.uuid4() ")
    assert f" in In [{count}] — fix: derive ids from data or a counter" in line
    cell(shell, UUID_CELL, cell_id="a")
    assert said(capsys) == []
    cell(shell, "run = 'run-1'", cell_id="a")
    assert said(capsys) == []
    count = cell(shell, UUID_CELL, cell_id="a").execution_count
    assert [f"In [{count}]" in line for line in said(capsys)] == [True]
    cell(shell, UUID_CELL, cell_id="b")
    assert [line.split()[1] for line in said(capsys)] == ["NBR402"]
    assert [f.code for f in nbrepro.audit()].count("NBR402") == 2  # the panel keeps both


def test_clean_cells_and_infos_print_nothing(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before seeding, nothing drawn is an info (unsaid); a draw is said once; the seeding
    cell's summary says the rest, so nothing is repeated under it; seeded cells are quiet."""
    cell(shell, "x = 1")
    assert codes() == ["NBR001"] and said(capsys) == []
    count = cell(shell, "import random\nr = random.random()").execution_count
    (line,) = said(capsys)
    assert line.startswith("nbrepro NBR001 [warning]") and f"In [{count}]" in line
    cell(shell, "s = random.random()")
    assert said(capsys) == []
    cell(shell, "%repro_seed 1")
    assert said(capsys) == [] and "NBR002" in [f.code for f in nbrepro.audit()]
    cell(shell, "t = random.random()\nfiles = sorted(['b', 'a'])")
    assert said(capsys) == []


def test_quiet_says_nothing_and_the_panel_keeps_it(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--quiet` turns the lines off; reseeding without it turns them on for new findings."""
    cell(shell, "%repro_seed 1 --quiet")
    cell(shell, UUID_CELL, cell_id="a")
    assert said(capsys) == []
    assert "NBR402" in [f.code for f in nbrepro.audit()]
    cell(shell, "%repro_seed 1")
    said(capsys)
    cell(shell, UUID_CELL, cell_id="a")
    assert said(capsys) == []  # known, though never said: no backlog when quiet ends
    cell(shell, UUID_CELL, cell_id="b")
    assert len(said(capsys)) == 1


def test_a_setting_is_said_when_it_changes(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    """A session finding (cuDNN benchmark turned on) is said under the cell that caused it,
    once, and again if it comes back after being undone."""
    pytest.importorskip("torch")
    cell(shell, "%repro_seed 1 --deterministic\nimport torch")
    said(capsys)
    on, off = "torch.backends.cudnn.benchmark = True", "torch.backends.cudnn.benchmark = False"
    cell(shell, on)
    assert [line.split()[1:3] for line in said(capsys)] == [["NBR203", "[error]"]]
    cell(shell, on)
    assert said(capsys) == []
    cell(shell, off)
    assert said(capsys) == []
    cell(shell, on)
    assert len(said(capsys)) == 1
    cell(shell, off)


def test_a_failing_check_warns_once_and_the_cells_run(
    shell: InteractiveShell,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A framework adapter that fails to reseed before each cell: one warning, no traceback
    under the cells, which run all the same."""
    from nbrepro._backends import Backend, load_backends

    class FailsToReseed(Backend):
        name = "fails-to-reseed"
        module = "nbrepro_test_reseed_fails"
        seeded = 0

        def seed(self, seed: int) -> None:
            self.seeded += 1
            if self.seeded > 1:
                raise RuntimeError("this generator cannot be reseeded")

        def get_state(self) -> Any:
            return None

        def set_state(self, state: Any) -> None:
            pass

    (tmp_path / "nbrepro_test_reseed_fails.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import nbrepro_test_reseed_fails  # noqa: F401

    session().backends = [*load_backends(), FailsToReseed()]
    cell(shell, "%repro_seed 1 --per-cell")
    said(capsys)
    with pytest.warns(UserWarning, match="this generator cannot be reseeded") as warned:
        assert cell(shell, "x = 41 + 1").result is None
        assert cell(shell, "x").result == 42
    assert len(warned) == 1
    assert said(capsys) == []  # and no "Error in callback" traceback (checked in said)
    sys.modules.pop("nbrepro_test_reseed_fails")


@pytest.mark.kernel
def test_lines_and_cell_numbers_in_a_real_kernel(kernel: Callable[..., Any]) -> None:
    """In a kernel, the line is part of that cell's output and names the number the front end
    shows for it (the execute reply's); so does the label other findings use during the cell.
    IPython 9.8+ raises the count before pre_run_cell, 7.34 after: both are read right."""
    k = kernel()
    k.run("%load_ext nbrepro", cell_id="load")
    k.run("%repro_seed 1", cell_id="seed")
    request = k.send(UUID_CELL, cell_id="uuid")
    count = k.reply(request)["content"]["execution_count"]
    printed = k.output(request)
    assert printed.startswith("nbrepro NBR402 [warning] uuid.uuid4() ")
    assert f"in In [{count}] — fix:" in printed and printed.count("\n") == 1
    assert k.run(UUID_CELL, cell_id="uuid") == ""
    request = k.send("from nbrepro._session import session\nprint(session().current_cell)")
    count = k.reply(request)["content"]["execution_count"]
    assert k.output(request) == f"In [{count}]\n"
