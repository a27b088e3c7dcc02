"""pytest plugin: ``pytest --nbrepro notebooks/`` verifies every notebook it collects.

Each ``.ipynb`` file under the given paths becomes one test item that runs the notebook
``--nbrepro-runs`` times in fresh kernels, exactly like ``nbrepro verify``, and fails with
that command's report: the first differing cell and a diff of its normalised outputs.

pytest loads this module (entry point ``pytest11``) in every session, so it imports nothing
beyond pytest and the standard library until ``--nbrepro`` is given and a notebook runs.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from nbrepro.commands.verify import Verification


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--nbrepro`` and its ``--nbrepro-runs/-jobs/-timeout`` options."""
    group = parser.getgroup("nbrepro", "verify that notebooks reproduce (nbrepro)")
    group.addoption(
        "--nbrepro",
        action="store_true",
        default=False,
        help="collect .ipynb files and verify each reproduces in fresh kernels",
    )
    group.addoption(
        "--nbrepro-runs",
        type=int,
        default=2,
        metavar="N",
        help="fresh runs per notebook, compared with the first (default 2)",
    )
    group.addoption(
        "--nbrepro-jobs",
        type=int,
        default=1,
        metavar="J",
        help="kernels one notebook's runs may use at the same time (default 1)",
    )
    group.addoption(
        "--nbrepro-timeout",
        type=int,
        default=None,
        metavar="T",
        help="seconds a single cell may run (default: no limit)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """With ``--nbrepro``: refuse counts that make no sense, or missing packages."""
    if not config.getoption("nbrepro"):
        return
    for option, minimum in (("runs", 2), ("jobs", 1)):
        value = config.getoption(f"nbrepro_{option}")
        if value < minimum:
            raise pytest.UsageError(f"--nbrepro-{option} must be at least {minimum}, not {value}")
    from nbrepro.commands.cli import missing_dependency

    missing = missing_dependency()
    if missing is not None:
        raise pytest.UsageError(f"--nbrepro: {missing}")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> NotebookFile | None:
    """With ``--nbrepro``, each ``.ipynb`` file is collected as a notebook to verify."""
    if file_path.suffix == ".ipynb" and parent.config.getoption("nbrepro"):
        return NotebookFile.from_parent(parent, path=file_path)
    return None


class NotebookFile(pytest.File):
    """A notebook file; it holds one item, ``reproducible``."""

    def collect(self) -> list[NotebookItem]:
        """The single verification item."""
        return [NotebookItem.from_parent(self, name="reproducible")]


class NotReproducibleError(Exception):
    """Raised by a failing :class:`NotebookItem`; carries the verification."""

    def __init__(self, verification: Verification) -> None:
        super().__init__(verification.report())
        self.verification = verification


class NotebookItem(pytest.Item):
    """Runs the notebook in fresh kernels and compares the runs, as ``nbrepro verify``."""

    def runtest(self) -> None:
        """Verify the notebook; raise with the report unless it is reproducible."""
        from nbrepro.commands.verify import Outcome, verify

        # Named as the user named it, relative to where pytest was started.
        path = Path(os.path.relpath(self.path, self.config.invocation_params.dir))
        with warnings.catch_warnings():
            # The Jupyter client libraries' own deprecation warnings (jupyter_client 7 calls
            # datetime.utcnow() on every message) are not the notebook's business.
            warnings.filterwarnings(
                "ignore", category=DeprecationWarning, module=r"(jupyter_client|nbclient|zmq)\b"
            )
            (verification,) = verify(
                [path],
                runs=self.config.getoption("nbrepro_runs"),
                jobs=self.config.getoption("nbrepro_jobs"),
                timeout=self.config.getoption("nbrepro_timeout"),
            )
        if verification.outcome is not Outcome.REPRODUCIBLE:
            raise NotReproducibleError(verification)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """The ``nbrepro verify`` report, not a traceback through nbrepro's code."""
        if isinstance(excinfo.value, NotReproducibleError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the item points in reports."""
        return self.path, None, f"{self.path.name}: nbrepro verify"
