"""The record survives a save in JupyterLab (issue 5): a real edit, Ctrl+S, the file re-read.

A notebook carrying a record built by nbrepro itself (seed 42, two findings from the audit's
look at a cell) is opened in JupyterLab 4 in Debian's Chromium; the test types into a cell,
saves with Ctrl+S and waits for the file on disk to change. The saved notebook must hold the
edit and, under ``metadata["nbrepro"]``, the very same record.

Needs the ``browser`` extra (jupyterlab, playwright) and ``/usr/bin/chromium``; skips without
them. JupyterLab and Chromium come from the fixtures in conftest.py.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import nbformat
import pytest

import nbrepro
from nbrepro._audit import audit_cell
from nbrepro._record import build_record, embed, read_record
from nbrepro._session import session

if TYPE_CHECKING:  # fixtures come from conftest.py; importing it at run time is ambiguous
    from conftest import Lab

pytestmark = [pytest.mark.browser, pytest.mark.kernel]

NAME = "recorded.ipynb"
CLOCK_CELL = (
    "import os, time\n"
    "import numpy as np\n"
    "\n"
    "rng = np.random.default_rng(int(time.time()))\n"
    "files = os.listdir('.')"
)
CELLS = ["%load_ext nbrepro", "%repro_seed 42 --deterministic", CLOCK_CELL]
EDIT = "edited_in_lab = True"
TIMEOUT_MS = 60_000  # generous: a loaded machine makes JupyterLab slow to start and to save

# The notebook panel that is open, once its file is loaded and all its cells are drawn.
NOTEBOOK_READY = """(cells) => {
    const panel = window.jupyterapp?.shell.currentWidget;
    return Boolean(panel?.context?.isReady && panel.content?.widgets.length === cells);
}"""
DIRTY = "() => window.jupyterapp.shell.currentWidget.context.model.dirty"


def test_record_survives_an_edit_and_a_save_in_jupyterlab(jupyterlab: Lab, page: Any) -> None:
    """Type into a cell, Ctrl+S: the file holds the edit and the record, unchanged."""
    nbrepro.seed(42, deterministic=True)
    audit_cell(session(), CLOCK_CELL, "cell-2", "cell-2")  # NBR401 and NBR403, as in a kernel
    record = build_record(session())
    path = jupyterlab.add_notebook(NAME, CELLS)
    notebook = nbformat.read(path, as_version=4)
    embed(notebook, record)
    nbformat.write(notebook, path)
    before = path.read_bytes()

    page.set_default_timeout(TIMEOUT_MS)
    page.goto(jupyterlab.url(NAME))
    page.wait_for_function(NOTEBOOK_READY, arg=len(CELLS))

    # A real edit: click into the last cell's editor and type a new line at its end.
    editor = page.locator(".jp-Notebook .jp-Cell").nth(len(CELLS) - 1).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.press("Enter")
    page.keyboard.type(EDIT)
    page.wait_for_function(DIRTY)

    page.keyboard.press("Control+s")
    page.wait_for_function(f"() => !({DIRTY})()")
    # The panel is clean once the server answered the save; the file has changed by then, but
    # poll a little in case the write reaches the disk late.
    deadline = time.monotonic() + 90  # a loaded machine can take many seconds to save
    while path.read_bytes() == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert path.read_bytes() != before, "the save never reached the file"

    saved = nbformat.read(path, as_version=4)
    assert saved.cells[-1].source == f"{CLOCK_CELL}\n{EDIT}"
    kept = read_record(saved, str(path))
    assert kept is not None, "the save dropped metadata['nbrepro']"
    assert kept["seed"] == 42 and kept["deterministic"] == "warn"
    assert {"NBR401", "NBR403"} <= {finding["code"] for finding in kept["findings"]}
    assert kept.keys() == record.keys()
    assert kept == record
