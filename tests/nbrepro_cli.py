"""Running the ``nbrepro`` command as a user types it, for the tests of its subcommands.

A plain module, not a fixture in ``conftest.py``: the tests import it by name (pytest puts
``tests/`` on ``sys.path``), and ``tests/browser/conftest.py`` would shadow a ``conftest`` import.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: Kernel noise that is not nbrepro's: ipykernel 6 warns about frozen modules on Python 3.11,
#: TensorFlow logs its start-up to stderr.
QUIET_KERNELS = {"PYDEVD_DISABLE_FILE_VALIDATION": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def nbrepro_command(
    *args: str | Path, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``python -m nbrepro ARGS`` (in ``cwd``), its exit status and what it printed."""
    return subprocess.run(
        [sys.executable, "-m", "nbrepro", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **QUIET_KERNELS},
    )
