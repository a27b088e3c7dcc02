"""The status widget in a real browser: JupyterLab 4 started here, Debian's Chromium via Playwright.

A notebook seeds, trips findings and shows ``%repro_status``; the test runs it through
JupyterLab's own "Run All", checks what the panel shows, that it follows a later cell, and that
it stays readable in the dark theme. Screenshots: tests/artifacts/ (light and dark); the
README's docs/status_widget.png is a copy of the light one, refreshed by hand (a test run must
not modify tracked files).

Needs the ``browser`` extra (jupyterlab, playwright), the ``widget`` extra and
``/usr/bin/chromium`` (``apt-get install chromium``); skips without them. Playwright is only
the driver here: it never downloads a browser.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.kernel]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
# Keep Chromium from reaching out anywhere or needing a sandbox it cannot have as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
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


def notebook(cells: list[str]) -> dict[str, Any]:
    """An nbformat 4.5 notebook of code cells, with ids as JupyterLab writes them."""
    return {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"cell-{i}",
                "metadata": {},
                "outputs": [],
                "source": source,
            }
            for i, source in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[str]:
    """JupyterLab 4 serving ``tmp_path`` (with the test notebook); yields the notebook's URL."""
    pytest.importorskip("jupyterlab", reason="needs the browser extra: pip install '.[browser]'")
    pytest.importorskip("anywidget", reason="needs the widget extra: pip install '.[widget]'")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "status.ipynb").write_text(json.dumps(notebook(CELLS)))
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No news pop-up over the panel; the light theme for the README's screenshot.
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    (settings / "themes.jupyterlab-settings").write_text('{"theme": "JupyterLab Light"}')
    token = secrets.token_hex(16)
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JUPYTER", "JPY_")) and key != "PYTHONHASHSEED"
    }
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
    )
    log = (tmp_path / "jupyter.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable, "-m", "jupyter", "lab",
            "--allow-root", "--no-browser",
            f"--port={port}", "--ip=127.0.0.1",
            f"--ServerApp.token={token}",
            f"--ServerApp.root_dir={notebooks}",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, to run commands
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    output = (tmp_path / "jupyter.log").read_text()
                    pytest.fail(f"JupyterLab did not start:\n{output}")
                time.sleep(0.25)
        yield f"{base}/lab/tree/status.ipynb?token={token}"
    finally:
        server.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture
def page() -> Iterator[Any]:
    """A page of headless Chromium (the system's), driven by Playwright."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs the browser extra: pip install '.[browser]'"
    )
    if not CHROMIUM.exists():
        pytest.skip(f"needs Chromium at {CHROMIUM}: apt-get install chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 1000}, device_scale_factor=2)
        finally:
            browser.close()


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
