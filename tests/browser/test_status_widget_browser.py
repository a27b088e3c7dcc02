"""The status widget in a real browser: JupyterLab 4 started here, Debian's Chromium via Playwright.

A notebook seeds, trips findings and shows ``%repro_status``; the test runs it through
JupyterLab's own "Run All", checks what the panel shows, that it follows a later cell, and that
it stays readable in the dark theme. Screenshots: tests/artifacts/ (light and dark); the
README's docs/status_widget.png is a copy of the light one, refreshed by hand (a test run must
not modify tracked files).

Needs the ``browser`` extra (jupyterlab, playwright), the ``widget`` extra and
``/usr/bin/chromium`` (``apt-get install chromium``); skips without them. JupyterLab and
Chromium come from the fixtures in conftest.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # fixtures come from conftest.py; importing it at run time is ambiguous
    from conftest import Lab

pytestmark = [pytest.mark.browser, pytest.mark.kernel]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CELLS = [
    "%load_ext nbrepro",
    "%repro_seed 42 --deterministic",
    # Two findings from the audit's look at this cell: NBR401 (an error: a seed made from the
    # clock) and NBR403 (a warning: a directory listing in file-system order).
    "import os, time\n"
    "import numpy as np\n"
    "\n"
    "rng = np.random.default_rng(int(time.time()))\n"
    "files = os.listdir('.')",
    "%repro_status",
]


@pytest.fixture
def lab(jupyterlab: Lab) -> str:
    """JupyterLab serving the test notebook; the notebook's URL."""
    pytest.importorskip("anywidget", reason="needs the widget extra: pip install '.[widget]'")
    jupyterlab.add_notebook("status.ipynb", CELLS)
    return jupyterlab.url("status.ipynb")


RUN_ALL = """async () => {
    const app = window.jupyterapp;
    const panel = app.shell.currentWidget;
    await panel.context.ready;
    await panel.sessionContext.ready;
    await app.commands.execute("notebook:run-all-cells");
}"""

EXECUTE = """async (code) => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    await kernel.requestExecute({ code }).done;
}"""

# The panel's text colour, relative luminance 0 (black) to 1 (white).
TEXT_LUMINANCE = """(el) => {
    const [r, g, b] = getComputedStyle(el).color.match(/[\\d.]+/g).map(Number);
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}"""


def shoot(panel: Any, path: Path) -> None:
    """Screenshot the panel's output area into ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    panel.screenshot(path=str(path))


def test_panel_shows_seed_and_findings_and_follows_cells(lab: str, page: Any) -> None:
    """Run All shows seed 42 and the findings with fixes; a later cell updates the panel."""
    page.goto(lab)
    page.wait_for_function("() => window.jupyterapp?.shell.currentWidget?.sessionContext")
    page.evaluate(RUN_ALL)
    status = page.locator(".nbrepro-status")
    status.wait_for(state="visible", timeout=120_000)

    assert status.locator(".nbrepro-seed").inner_text() == "42"
    assert status.locator(".nbrepro-source-user").inner_text() == "given"
    deterministic = status.locator(".nbrepro-chip", has_text="deterministic")
    assert " ".join(deterministic.inner_text().split()) == "deterministic: warn"
    codes = status.locator(".nbrepro-code").all_inner_texts()
    assert {"NBR401", "NBR403"} <= set(codes)
    severities = status.locator(".nbrepro-badge").all_inner_texts()
    assert severities[0].lower() == "error"  # most severe first
    listing = status.locator(".nbrepro-finding", has_text="NBR403")
    assert "os.listdir()" in listing.locator(".nbrepro-message").inner_text()
    assert "sorted(os.listdir(...))" in listing.locator(".nbrepro-fix").inner_text()
    numpy = status.locator(".nbrepro-chip", has_text="numpy")
    assert "seeded" in numpy.inner_text()

    output = page.locator(".jp-OutputArea-output", has=status)
    shoot(output, ARTIFACTS / "status_widget.png")
    assert status.evaluate(TEXT_LUMINANCE) < 0.35  # dark text on the light theme

    page.evaluate(
        "() => window.jupyterapp.commands.execute("
        "'apputils:change-theme', { theme: 'JupyterLab Dark' })"
    )
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    page.wait_for_function(f"(el) => ({TEXT_LUMINANCE})(el) > 0.65", arg=status.element_handle())
    shoot(output, ARTIFACTS / "status_widget_dark.png")

    # Any cell refreshes the panel: here one sent straight to the notebook's kernel.
    page.evaluate(EXECUTE, "%repro_seed 7 --per-cell")
    page.wait_for_function(
        "() => document.querySelector('.nbrepro-status .nbrepro-seed')?.textContent === '7'"
    )
    per_cell = status.locator(".nbrepro-chip", has_text="per-cell")
    assert " ".join(per_cell.inner_text().split()) == "per-cell: on"
    assert status.locator(".nbrepro-key", has_text="Cell seed").count() == 1
