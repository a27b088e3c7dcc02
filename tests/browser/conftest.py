"""What the browser tests share: JupyterLab 4 or Notebook 7 started in a temp dir, Chromium.

Needs the ``browser`` extra (jupyterlab, playwright) and ``/usr/bin/chromium``
(``apt-get install chromium``); the tests skip without them. Playwright is only the driver
here: it never downloads a browser.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

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


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab (``app="lab"``) or Notebook 7 (``app="notebook"``).

    ``root`` is the folder it serves.
    """

    root: Path
    base: str
    token: str
    app: str = "lab"

    def add_notebook(self, name: str, cells: list[str]) -> Path:
        """Write a notebook of code cells ``cells`` into the served folder; its path."""
        path = self.root / name
        path.write_text(json.dumps(notebook(cells)))
        return path

    def url(self, name: str) -> str:
        """The URL that opens notebook ``name``."""
        where = "lab/tree" if self.app == "lab" else "notebooks"
        return f"{self.base}/{where}/{name}?token={self.token}"


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab 4 serving an empty ``tmp_path / "notebooks"``, isolated from the user's own."""
    pytest.importorskip("jupyterlab", reason="needs the browser extra: pip install '.[browser]'")
    yield from serve(tmp_path, "lab")


@pytest.fixture
def notebook7(tmp_path: Path) -> Iterator[Lab]:
    """Notebook 7 serving an empty ``tmp_path / "notebooks"``, isolated from the user's own."""
    pytest.importorskip("notebook", reason="needs the browser extra: pip install '.[browser]'")
    yield from serve(tmp_path, "notebook")


def serve(tmp_path: Path, app: str) -> Iterator[Lab]:
    """Run ``jupyter lab`` or ``jupyter notebook`` (``app``) until the generator is closed."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No news pop-up over the notebook; the light theme for the README's screenshot.
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
    # window.jupyterapp, to run commands and read the notebook's state
    options = (
        [
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        if app == "lab"
        else ["--JupyterNotebookApp.expose_app_in_browser=True"]
    )
    server = subprocess.Popen(
        [
            sys.executable, "-m", "jupyter", app,
            "--allow-root", "--no-browser",
            f"--port={port}", "--ip=127.0.0.1",
            f"--ServerApp.token={token}",
            f"--ServerApp.root_dir={notebooks}",
            *options,
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
                    pytest.fail(f"jupyter {app} did not start:\n{output}")
                time.sleep(0.25)
        yield Lab(root=notebooks, base=base, token=token, app=app)
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
