"""The pytest plugin: ``pytest --nbrepro PATH`` verifies notebooks, through a real pytest run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"


def pytest_in(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m pytest ARGS`` in ``folder``, which has no configuration of its own: the
    plugin is found through its ``pytest11`` entry point, as in a user's project."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
    )


def project_with(tmp_path: Path, *notebooks: str) -> Path:
    """A folder with ``notebooks/`` holding copies of the named test notebooks."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name in notebooks:
        shutil.copy(NOTEBOOKS / name, folder)
    return tmp_path


@pytest.mark.kernel
def test_plugin_passes_a_seeded_notebook(tmp_path: Path) -> None:
    """A seeded notebook is collected as one item, which passes."""
    project = project_with(tmp_path, "seeded_numpy_reproduces.ipynb")
    result = pytest_in(project, "--nbrepro", "notebooks", "-v")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "notebooks/seeded_numpy_reproduces.ipynb::reproducible PASSED" in result.stdout


@pytest.mark.kernel
def test_plugin_fails_the_wall_clock_notebook_with_verifys_report(tmp_path: Path) -> None:
    """The failure reads like ``nbrepro verify``: the first differing cell and a diff."""
    project = project_with(tmp_path, "wall_clock_differs_every_run.ipynb")
    result = pytest_in(project, "--nbrepro", "--nbrepro-runs", "3", "notebooks")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "NOT reproducible: run 2 differs from run 1 (3 runs" in out
    assert "first differing cell: cell 3 (id clock)" in out
    assert "  -seconds since the epoch: " in out
    assert "_verify.py" not in out, "the report, not a traceback through nbrepro"
    assert "1 failed" in out


def test_without_the_option_nothing_is_collected_or_imported(tmp_path: Path) -> None:
    """Without --nbrepro the plugin is loaded, collects no notebook and imports nothing heavy."""
    project = project_with(tmp_path, "wall_clock_differs_every_run.ipynb")
    (project / "notebooks" / "test_probe.py").write_text(
        textwrap.dedent(
            """
            import sys

            def test_plugin_loaded_but_idle(request):
                assert request.config.pluginmanager.hasplugin("nbrepro")
                heavy = {"nbclient", "nbformat", "jupyter_client", "zmq", "nbrepro._verify"}
                assert heavy.isdisjoint(sys.modules)
            """
        )
    )
    result = pytest_in(project, "notebooks", "-v")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_probe.py::test_plugin_loaded_but_idle PASSED" in result.stdout
    assert ".ipynb" not in result.stdout
    assert "1 passed" in result.stdout


def test_runs_below_two_is_a_usage_error(tmp_path: Path) -> None:
    """One run compares nothing: refused before anything runs."""
    result = pytest_in(tmp_path, "--nbrepro", "--nbrepro-runs", "1")
    assert result.returncode == 4  # pytest's usage-error status
    assert "--nbrepro-runs must be at least 2, not 1" in result.stderr


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, '{"nbformat": ' + "7" * 5000 + "}"],
    ids=["deep", "long"],
)
def test_a_corrupt_notebook_fails_with_one_line_not_a_traceback(tmp_path: Path, text: str) -> None:
    """JSON nested 100,000 deep or a 5,000-digit number: the item fails naming the file and
    the problem; no RecursionError/ValueError traceback, no kernel started."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "corrupt.ipynb").write_text(text)
    result = pytest_in(tmp_path, "--nbrepro", "notebooks")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "notebooks/corrupt.ipynb: error: not a notebook" in result.stdout
    assert "Traceback" not in result.stdout and "RecursionError" not in result.stdout
    assert "1 failed" in result.stdout
