"""Shared fixtures: every test starts from an unseeded process state and leaves none behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import nbrepro


@pytest.fixture(autouse=True)
def clean_session() -> Iterator[None]:
    """Undo whatever a test seeded, hooked or switched, and restore ``os.environ``."""
    environ = dict(os.environ)
    nbrepro.reset()
    yield
    nbrepro.reset()
    os.environ.clear()
    os.environ.update(environ)


def framework(name: str) -> object:
    """Import an optional framework for a test, or skip the test when it is not installed."""
    return pytest.importorskip(name)


@pytest.fixture
def python() -> str:
    """The interpreter running the tests, for subprocess checks of import behaviour."""
    return sys.executable


@pytest.fixture
def run_fresh(python: str) -> Callable[..., list[str]]:
    """Run each snippet in its own fresh interpreter, all at once; return their stdouts.

    Keyword arguments are added to the environment; TensorFlow's C++ logging is off.
    """

    def run(*codes: str, **env: str) -> list[str]:
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env}
        processes = [
            subprocess.Popen(
                [python, "-c", textwrap.dedent(code)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=environment,
            )
            for code in codes
        ]
        outputs = [process.communicate() for process in processes]
        for process, code, (_, stderr) in zip(processes, codes, outputs, strict=True):
            assert process.returncode == 0, f"{code}\nexited {process.returncode}:\n{stderr}"
        return [stdout for stdout, _ in outputs]

    return run


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody can write into, root included (root ignores permission bits, so it
    gets the immutable attribute as well)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    if os.geteuid() == 0:
        chattr = shutil.which("chattr")
        if chattr is None:
            pytest.skip("running as root without chattr: cannot make a read-only folder")
        immutable = subprocess.run([chattr, "+i", folder], capture_output=True).returncode == 0
        if not immutable:
            pytest.skip("running as root and chattr +i is refused: no read-only folder")
    yield folder
    if immutable:
        subprocess.run([shutil.which("chattr") or "chattr", "-i", folder], check=True)
    folder.chmod(0o755)


@pytest.fixture
def shell() -> Iterator[Any]:
    """A real IPython shell (terminal-like: no kernel) with nbrepro loaded; unloaded after."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "nbrepro")
    yield ip
    ip.run_line_magic("unload_ext", "nbrepro")
