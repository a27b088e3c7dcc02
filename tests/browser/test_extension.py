"""nbrepro's JupyterLab 4 / Notebook 7 extension (js/src), in a real browser.

"Restart and Run All Reproducibly" (``nbrepro:restart-run-all``) must leave every cell
executed once, from prompt 1, in a new kernel process started with ``PYTHONHASHSEED=0``: run
right after the notebook opens (the kernel still starting), twice in a row, from the toolbar
and from the keyboard. The status item shows the seed and follows a cell that adds a finding;
a save writes the record into the notebook on disk, where ``nbrepro show`` reads it, unless
the ``saveRecord`` setting is off or the kernel never loaded nbrepro.
Screenshots (light and dark): tests/artifacts/; docs/extension_*.png are copies refreshed by
hand (a test run must not modify tracked files).

Needs the ``browser`` extra (jupyterlab, notebook, playwright), the extension built and
installed (``.ci/setup`` does both) and ``/usr/bin/chromium``; skips without them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest

from nbrepro._record import read_record

if TYPE_CHECKING:  # fixtures come from conftest.py; importing it at run time is ambiguous
    from conftest import Lab

pytestmark = [pytest.mark.browser, pytest.mark.kernel]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
NAME = "fresh.ipynb"
CELLS = [
    "%load_ext nbrepro",
    "%repro_seed 42",
    # The hash seed the process started with, and which restart started it (its time).
    "import json, os, sys\n"
    "print(os.environ['PYTHONHASHSEED'], sys.flags.hash_randomization,\n"
    "      json.loads(os.environ['NBREPRO_RUNTIME'])['started_at'])",
    "print('leftover' in globals())",
]
# A cell the audit flags: NBR401 (an error: a seed from the clock) and NBR403 (a warning).
CLOCK_CELL = (
    "import os, time\n"
    "import numpy as np\n"
    "\n"
    "rng = np.random.default_rng(int(time.time()))\n"
    "files = os.listdir('.')"
)
TIMEOUT_MS = 180_000  # a loaded machine makes kernels and JupyterLab slow

NOTEBOOK_OPEN = """(cells) => {
    const panel = window.jupyterapp?.shell.currentWidget;
    return Boolean(panel?.content?.widgets?.length === cells && panel.sessionContext);
}"""
COMMAND = "async () => await window.jupyterapp.commands.execute('nbrepro:restart-run-all')"
# Each code cell's prompt number and output text.
CELL_STATE = """() => window.jupyterapp.shell.currentWidget.content.widgets.map((cell) => {
    const outputs = cell.model.outputs;
    let text = '';
    for (let i = 0; outputs && i < outputs.length; i++) {
        const output = outputs.get(i).toJSON();
        const value = output.text ?? output.data?.['text/plain'] ?? output.evalue ?? '';
        text += Array.isArray(value) ? value.join('') : value;
    }
    return { count: cell.model.executionCount ?? null, text };
})"""
EXECUTE = """async (code) => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    await kernel.requestExecute({ code }).done;
}"""
IDLE = """() => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel;
    return kernel?.status === 'idle';
}"""
ADD_AND_RUN = """async (source) => {
    const app = window.jupyterapp;
    const notebook = app.shell.currentWidget.content;
    const count = notebook.model.cells.length;
    notebook.model.sharedModel.insertCell(count, { cell_type: 'code', source });
    notebook.activeCellIndex = count;
    await app.commands.execute('notebook:run-cell');
}"""
DIRTY = "() => window.jupyterapp.shell.currentWidget.context.model.dirty"


def open_notebook(page: Any, server: Lab, name: str, cells: list[str]) -> Path:
    """Write a notebook of ``cells`` and open it in the browser; its path."""
    path = server.add_notebook(name, cells)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url(name))
    page.wait_for_function(NOTEBOOK_OPEN, arg=len(cells))
    return path


def fresh_run(page: Any) -> tuple[str, list[dict[str, Any]]]:
    """Check the cells after the command: all ran once, from prompt 1, in a fresh process.

    Returns the new process's start time (as printed) and the cells.
    """
    cells = page.evaluate(CELL_STATE)
    assert [cell["count"] for cell in cells] == list(range(1, len(CELLS) + 1)), cells
    hash_seed, randomization, started_at = cells[2]["text"].split()
    assert (hash_seed, randomization) == ("0", "0"), cells[2]
    assert cells[3]["text"].strip() == "False", "a variable survived the restart"
    return started_at, cells


def wait_for_new_run(page: Any, started_at: str) -> str:
    """Wait until the cells show a run in a process other than ``started_at``'s; check it."""
    page.wait_for_function(
        """(before) => {
            const cells = window.jupyterapp.shell.currentWidget.content.widgets;
            const out = cells[2].model.outputs;
            const text = out.length ? JSON.stringify(out.get(0).toJSON()) : '';
            const counts = cells.map((c) => c.model.executionCount);
            return !text.includes(before) && text.length > 0
                && counts.every((n, i) => n === i + 1)
                && cells[3].model.outputs.length > 0;
        }""",
        arg=started_at,
    )
    page.wait_for_function(IDLE)
    new, _ = fresh_run(page)
    assert new != started_at
    return new


def status_item(page: Any, app: str) -> Any:
    """The status item: in JupyterLab's status bar, in Notebook 7's notebook toolbar."""
    where = "#jp-main-statusbar" if app == "lab" else ".jp-NotebookPanel-toolbar"
    return page.locator(f"{where} .nbrepro-StatusItem")


def save_now(page: Any, path: Path) -> None:
    """Ctrl+S in the notebook; wait until the file on disk has changed (a loaded machine can
    take many seconds to save)."""
    before = path.read_bytes()
    page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    page.wait_for_function(f"() => !({DIRTY})()")
    deadline = time.monotonic() + 90
    while path.read_bytes() == before:
        assert time.monotonic() < deadline, "the save did not reach the file"
        time.sleep(0.1)


def save_and_read(page: Any, path: Path, app: str) -> dict[str, Any]:
    """Ctrl+S once the record is current; the record in the file on disk, checked."""
    # The record a save writes is fetched once cells stop running: wait until it is current.
    status_item(page, app).and_(page.locator("[data-record='current']")).wait_for()
    save_now(page, path)
    saved = nbformat.read(path, as_version=4)
    record = read_record(saved, str(path))
    assert record is not None, "the save wrote no metadata['nbrepro']"
    shown = subprocess.run(
        [sys.executable, "-m", "nbrepro", "show", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert "seed: 42" in shown.stdout, shown.stdout
    return dict(record)


def shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


@pytest.fixture(autouse=True)
def console(page: Any) -> None:
    """The browser's console messages, printed: pytest shows them when a test fails."""
    page.on("console", lambda message: print(f"console {message.type}: {message.text}"))


def test_restart_run_all_in_jupyterlab(jupyterlab: Lab, page: Any) -> None:
    """Right after opening, twice in a row, from the toolbar and the keyboard: fresh runs."""
    path = open_notebook(page, jupyterlab, NAME, CELLS)

    # Right after opening: the kernel may still be starting.
    assert page.evaluate(COMMAND) is True
    started_at, _ = fresh_run(page)

    # A variable set in the kernel now must not survive the next run; twice in a row.
    page.evaluate(EXECUTE, "leftover = 1")
    assert page.evaluate(COMMAND) is True
    started_at = wait_for_new_run(page, started_at)
    assert page.evaluate(COMMAND) is True
    started_at = wait_for_new_run(page, started_at)

    # The toolbar button, then the keyboard shortcut (in command mode).
    page.evaluate(EXECUTE, "leftover = 1")
    page.locator(".jp-NotebookPanel-toolbar [data-command='nbrepro:restart-run-all']").click()
    started_at = wait_for_new_run(page, started_at)
    page.evaluate(EXECUTE, "leftover = 1")
    page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Alt+r")
    started_at = wait_for_new_run(page, started_at)

    # The command sits in the Kernel and Run menus.
    for menu in ("Kernel", "Run"):
        page.locator(".lm-MenuBar-itemLabel", has_text=menu).first.click()
        item = page.locator(".lm-Menu-itemLabel", has_text="Restart and Run All Reproducibly")
        assert item.count() == 1
        page.keyboard.press("Escape")

    # The status item: the seed, then the findings of a new cell.
    item = status_item(page, "lab")
    item.filter(has_text="seed 42").wait_for()
    assert "error" not in item.inner_text()
    page.evaluate(ADD_AND_RUN, CLOCK_CELL)
    item.filter(has_text="1 error").wait_for()
    assert "1 warning" in item.inner_text()

    record = save_and_read(page, path, "lab")
    page.wait_for_function(IDLE)
    shoot(page, "extension_light.png")
    assert record["seed"] == 42 and record["seed_source"] == "user"
    assert record["env_vars"].get("PYTHONHASHSEED") == "0"
    assert {"NBR401", "NBR403"} <= {finding["code"] for finding in record["findings"]}
    json.dumps(record)  # plain JSON all through

    # The panel behind the item, in the dark theme.
    page.evaluate(
        "async () => await window.jupyterapp.commands.execute("
        "'apputils:change-theme', { theme: 'JupyterLab Dark' })"
    )
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    item.click()
    page.locator(".jp-Dialog .nbrepro-Summary").wait_for()
    shoot(page, "extension_dark.png")


def test_restart_run_all_and_save_in_notebook7(notebook7: Lab, page: Any) -> None:
    """Notebook 7: the command, the toolbar status item, the record on save.

    In per-cell mode, so that the record holds cell seeds: a deleted cell's is not saved.
    """
    cells = [*CELLS[:1], "%repro_seed 42 --per-cell", *CELLS[2:]]
    path = open_notebook(page, notebook7, NAME, cells)

    assert page.evaluate(COMMAND) is True
    started_at, _ = fresh_run(page)
    page.evaluate(EXECUTE, "leftover = 1")
    assert page.evaluate(COMMAND) is True
    wait_for_new_run(page, started_at)

    item = status_item(page, "notebook")
    item.filter(has_text="seed 42").wait_for()
    page.evaluate(ADD_AND_RUN, CLOCK_CELL)
    item.filter(has_text="1 error").wait_for()
    shoot(page, "extension_notebook7.png")

    # Delete the cell "cell-3" (it ran, so it has a seed): the save must not keep its seed.
    page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.model.sharedModel.deleteCell(3)"
    )
    record = save_and_read(page, path, "notebook")
    assert record["seed"] == 42 and record["per_cell"] is True
    assert "NBR401" in {finding["code"] for finding in record["findings"]}
    assert "cell-2" in record["cell_seeds"]
    assert "cell-3" not in record["cell_seeds"]


def test_a_save_right_after_a_cell_is_followed_by_one_with_its_record(
    jupyterlab: Lab, page: Any
) -> None:
    """Ctrl+S while the record is still behind the cell that just ran: that save carries the
    record as it was, and a second save follows by itself once the record is current, so
    the file ends with the cell's finding in its record and the notebook is not left dirty."""
    path = open_notebook(page, jupyterlab, "quick.ipynb", CELLS[:2])
    assert page.evaluate(COMMAND) is True
    item = status_item(page, "lab")
    item.and_(page.locator("[data-record='current']")).wait_for()
    page.evaluate(ADD_AND_RUN, CLOCK_CELL)
    item.and_(page.locator("[data-record='pending']")).wait_for()
    page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 60
    codes: set[str] = set()
    while "NBR401" not in codes and time.monotonic() < deadline:
        time.sleep(0.25)
        try:
            record = read_record(nbformat.read(path, as_version=4), str(path))
        except Exception:  # caught between the save's write and its rename
            continue
        codes = {finding["code"] for finding in (record or {}).get("findings", [])}
    assert "NBR401" in codes, "the file kept the record from before the cell"
    # The file is written before the save's reply reaches the page: then the panel is clean.
    page.wait_for_function(f"() => !({DIRTY})()")


def test_no_record_without_nbrepro(jupyterlab: Lab, page: Any) -> None:
    """A kernel that never loaded nbrepro: no status item, nothing written on save."""
    path = open_notebook(page, jupyterlab, "plain.ipynb", ["x = 1", "print(x)"])
    # The command works on it too: a fresh runtime without nbrepro's state loaded.
    assert page.evaluate(COMMAND) is True
    cells = page.evaluate(CELL_STATE)
    assert [cell["count"] for cell in cells] == [1, 2]
    item = page.locator("#jp-main-statusbar .nbrepro-StatusItem")
    page.wait_for_function(IDLE)
    save_now(page, path)
    assert "nbrepro" not in nbformat.read(path, as_version=4).metadata
    assert item.count() == 0 or not item.is_visible()


def test_the_setting_turns_the_record_off(jupyterlab: Lab, page: Any) -> None:
    """saveRecord false: nbrepro loaded, the status shows the seed, a save writes no record."""
    settings = jupyterlab.root.parent / "settings" / "nbrepro"
    settings.mkdir(parents=True)
    (settings / "plugin.jupyterlab-settings").write_text('{"saveRecord": false}')
    path = open_notebook(page, jupyterlab, "off.ipynb", CELLS[:2])
    assert page.evaluate(COMMAND) is True
    item = status_item(page, "lab")
    item.filter(has_text="seed 42").wait_for()
    page.wait_for_function(IDLE)
    save_now(page, path)
    saved = nbformat.read(path, as_version=4)
    assert [cell.execution_count for cell in saved.cells] == [1, 2], "the save did not happen"
    assert "nbrepro" not in saved.metadata
    # Nor later: with the setting on, the record is asked for once no cell ran for 1 s, and
    # it would have arrived by now (building it takes ~1-2 s here).
    page.wait_for_timeout(6000)
    assert item.get_attribute("data-record") == "pending"
    page.keyboard.press("Control+s")
    page.wait_for_function(f"() => !({DIRTY})()")
    assert "nbrepro" not in nbformat.read(path, as_version=4).metadata
