"""How nbrepro started this process: the runtime record a fresh runtime carries.

A process nbrepro starts (``%repro_restart``, ``%repro_seed --restart``, ``nbrepro run``)
finds :data:`RUNTIME_VARIABLE` in its start environment, so that ``%repro_seed`` can say
"fresh runtime started by %repro_restart" there, and so that ``%repro_seed --restart``
restarts at most once in a row.

Colab cannot start a runtime with a new environment: there the record goes to a file, which
the process Colab starts after the restart reads.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from nbrepro._process_settings import assignments, start_environment

#: The environment variable that tells a process nbrepro started it, and how (JSON).
RUNTIME_VARIABLE = "NBREPRO_RUNTIME"

# On Colab the record cannot travel in the environment. The process Colab starts after the
# kill reads it from this file, if it started within this many seconds of the restart.
_COLAB_RECORD = "nbrepro-runtime.json"
_COLAB_WINDOW_SECONDS = 120.0


@dataclass(frozen=True)
class Runtime:
    """How nbrepro started this process: which command, when, with which settings."""

    started_by: str  #: ``"%repro_restart"`` or ``"%repro_seed --restart"``
    started_at: float  #: seconds since the epoch
    #: the process-start settings it was started with (empty on Colab, which cannot take them)
    settings: dict[str, str]
    #: started by a notebook runner (``nbrepro run``), which runs each cell once: nothing
    #: runs the notebook again after a restart of this kernel
    runner: bool = False

    def __str__(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started_at))
        if not self.settings:
            return (
                f"started by {self.started_by} at {when}; no process-start settings "
                "(Colab restarts its runtime with an environment of its own)"
            )
        return (
            f"started by {self.started_by} at {when}; process-start settings in force: "
            f"{assignments(self.settings)}"
        )


def on_colab() -> bool:
    """Whether this is a Google Colab runtime."""
    return "google.colab" in sys.modules


def runtime_record(started_by: str, settings: dict[str, str], pid: int | None) -> dict[str, Any]:
    """What ``NBREPRO_RUNTIME`` holds (as JSON) in a process nbrepro started fresh.

    ``pid`` is the process that restarts itself in place (an exec keeps it); ``None`` where a
    notebook runner (``nbrepro run``) starts a new kernel with the record.
    """
    return {"started_by": started_by, "started_at": time.time(), "pid": pid, "settings": settings}


def current_runtime() -> Runtime | None:
    """How nbrepro started this process, or ``None`` if it did not."""
    return _runtime_of(os.getpid())


@lru_cache(maxsize=4)
def _runtime_of(pid: int) -> Runtime | None:
    # Keyed by pid: a forked child (a DataLoader worker) inherits the start environment, not
    # the restart. Cached: the start environment never changes, and status reads it often.
    text = start_environment().get(RUNTIME_VARIABLE)
    from_file = text is None and on_colab()
    if from_file:
        text = _read_colab_record()
    try:
        record = json.loads(text) if text else None
        if not isinstance(record, dict):
            return None
        runtime = Runtime(
            started_by=str(record["started_by"]),
            started_at=float(record["started_at"]),
            settings={str(k): str(v) for k, v in dict(record["settings"]).items()},
            # A runner puts the record into the environment of a kernel it starts (no pid);
            # a restart puts its own pid, which the exec keeps.
            runner=record.get("pid") is None,
        )
        # No pid: the record was put in a new kernel's environment by whatever started it
        # (nbrepro run), so it belongs to the first process that reads it as its own.
        restarted_pid = pid if record.get("pid") is None else int(record["pid"])
    except (ValueError, KeyError, TypeError):
        return None  # not written by this nbrepro: ignore it
    if from_file:
        # Written by the process Colab's restart replaced: this one has a new pid, and
        # started just after (a later manual restart of the runtime is not nbrepro's).
        ours = restarted_pid != pid and _started_soon_after(runtime.started_at)
    else:
        ours = restarted_pid == pid  # an exec keeps the pid
    return runtime if ours else None


def write_colab_record(record: dict[str, Any]) -> None:
    """Leave ``record`` for the process Colab starts after this one is killed."""
    path = _colab_record_path()
    partial = f"{path}.{os.getpid()}"
    with open(partial, "w", encoding="utf-8") as file:
        json.dump(record, file)
    os.replace(partial, path)


def _colab_record_path() -> str:
    return os.path.join(tempfile.gettempdir(), _COLAB_RECORD)


def _read_colab_record() -> str | None:
    try:
        with open(_colab_record_path(), encoding="utf-8") as file:
            return file.read()
    except OSError:
        return None


def _started_soon_after(moment: float) -> bool:
    """Whether this process started within the Colab window after ``moment``."""
    started = process_start_time()
    return started is not None and moment - 1 <= started <= moment + _COLAB_WINDOW_SECONDS


def process_start_time() -> float | None:
    """When this process was created (seconds since the epoch), from Linux's /proc.

    An exec keeps it: it tells processes apart, not the runtimes of one process.
    """
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            # Field 22 is the start time in clock ticks since boot; the process name (field
            # 2, in parentheses) may contain spaces, so count from its closing parenthesis.
            ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat", encoding="ascii") as system:
            boot = next(int(line.split()[1]) for line in system if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")
