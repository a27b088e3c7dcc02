"""Run-time finding lines in a real front end (issue 8): the line is in the output of the cell
that caused it, as a stderr stream, naming the number the front end shows in that cell's
prompt; a clean cell shows nothing. JupyterLab 4 and Notebook 7, in Debian's Chromium.

Needs the ``browser`` extra (jupyterlab, notebook, playwright) and ``/usr/bin/chromium``; skips
without them. The servers and Chromium come from the fixtures in conftest.py.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # fixtures come from conftest.py; importing it at run time is ambiguous
    from conftest import Lab

pytestmark = [pytest.mark.browser, pytest.mark.kernel]

NAME = "lines.ipynb"
CELLS = [
    "%load_ext nbrepro",
    "%repro_seed 1",
    "import uuid\nrun = uuid.uuid4()",
    "ordered = sorted({'b', 'a'})\nprint(ordered)",
]
RUN_ALL = """async () => {
    const app = window.jupyterapp;
    const panel = app.shell.currentWidget;
    await panel.context.ready;
    await panel.sessionContext.ready;
    await app.commands.execute("notebook:run-all-cells");
}"""
STDERR = "[data-mime-type='application/vnd.jupyter.stderr']"


@pytest.mark.parametrize("front_end", ["jupyterlab", "notebook7"])
def test_a_finding_line_sits_under_its_cell(
    front_end: str, request: pytest.FixtureRequest, page: Any
) -> None:
    """Run All: the uuid4 cell shows one stderr line naming its own prompt number; the
    seeded, sorted cell after it shows only what it printed."""
    lab: Lab = request.getfixturevalue(front_end)
    lab.add_notebook(NAME, CELLS)
    page.set_default_timeout(120_000)  # a loaded machine starts kernels slowly
    page.goto(lab.url(NAME))
    page.wait_for_function("() => window.jupyterapp?.shell.currentWidget?.sessionContext")
    page.evaluate(RUN_ALL)
    cells = page.locator(".jp-Notebook .jp-Cell")
    last = cells.nth(len(CELLS) - 1)
    last.locator(".jp-OutputArea-output", has_text="['a', 'b']").wait_for()

    uuid_cell = cells.nth(2)
    prompt = re.search(r"\[(\d+)\]", uuid_cell.locator(".jp-InputPrompt").inner_text())
    assert prompt is not None
    (line,) = uuid_cell.locator(STDERR).all_inner_texts()
    assert line.startswith("nbrepro NBR402 [warning] uuid.uuid4() ")
    assert f" in In [{prompt[1]}] — fix: " in line and line.strip().count("\n") == 0
    assert last.locator(STDERR).count() == 0
    assert cells.nth(1).locator(STDERR).count() == 0  # the summary is not repeated
