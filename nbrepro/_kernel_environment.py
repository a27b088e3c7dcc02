"""The environment a fresh kernel starts with: the one builder, for every way nbrepro starts one.

``nbrepro run``/``verify``/``rerun`` start a new kernel process; ``%repro_restart`` replaces
the running one in place. Both give the new process the same things: the environment it is
based on, without settings an earlier nbrepro restart added (so that options the current
config no longer has, such as ``--threads``, do not linger), the process-start settings, and
the runtime record (:mod:`nbrepro._runtime_record`) that tells it nbrepro started it fresh.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nbrepro._runtime_record import RUNTIME_VARIABLE, current_runtime

#: Where jupyter_server (>= 2) tells a kernel which notebook it runs.
SESSION_NAME_VARIABLE = "JPY_SESSION_NAME"


def kernel_environment(
    base: Mapping[str, str],
    settings: Mapping[str, str],
    record: Mapping[str, Any],
    *,
    notebook_path: Path | None = None,
) -> dict[str, str]:
    """``base`` plus the process-start ``settings`` and the runtime ``record``, as a new dict.

    Settings that the runtime nbrepro started this process with put into ``base`` are dropped
    first, where ``base`` still holds them unchanged. With ``notebook_path``,
    ``JPY_SESSION_NAME`` names the notebook (resolved), as jupyter_server sets it, for code that
    asks which notebook runs.
    """
    environment = dict(base)
    previous = current_runtime()
    if previous is not None:
        for name, value in previous.settings.items():
            if environment.get(name) == value:
                del environment[name]
    environment.update(settings)
    environment[RUNTIME_VARIABLE] = json.dumps(dict(record))
    if notebook_path is not None:
        environment[SESSION_NAME_VARIABLE] = str(notebook_path.resolve())
    return environment
