"""A fresh runtime: restart the kernel in place, and tell a fresh runtime from a used one.

Some settings only take effect when a process starts (``PYTHONHASHSEED``, the cuBLAS workspace,
thread-pool sizes), and a notebook is only known to run from scratch when nothing ran before
its seed. :func:`restart` replaces the kernel's process with a new one, started with those
settings: ``os.execve`` keeps the pid and the connection file, so the front end's sockets
reconnect to the new kernel on the same ports. The exec runs on the kernel's event loop once
the cell that asked for it has replied (an exec inside the cell would leave the front end
waiting for that reply forever), and every execute request queued behind that cell (a
"Run All") is first answered "aborted", through ipykernel's own abort machinery, so that none
is left waiting either.

The new process learns how it was started from :data:`RUNTIME_VARIABLE`, so that
``%repro_seed`` can say "fresh runtime started by %repro_restart" there, and so that
``%repro_seed --restart`` restarts at most once in a row.

Colab has no way to restart its kernel with a new environment: there the process is killed
(Colab starts a new one, with the environment Colab chooses) and the record goes to a file.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from nbrepro._backends.torch import CUBLAS_VALUE, CUBLAS_VARIABLE, needs_cublas_variable
from nbrepro._config import Config
from nbrepro._findings import (
    CUBLAS_WORKSPACE_TOO_LATE,
    HASH_RANDOMIZATION,
    THREAD_SETTING_TOO_LATE,
    Finding,
)
from nbrepro._process_settings import (
    HASH_SEED_VALUE,
    HASH_SEED_VARIABLE,
    THREAD_VARIABLES,
    start_environment,
)
from nbrepro._session import session
from nbrepro.errors import CannotRestartError

#: The environment variable that tells a process nbrepro started it, and how (JSON).
RUNTIME_VARIABLE = "NBREPRO_RUNTIME"

#: Findings about settings that only a new process can change.
PROCESS_START_CODES = frozenset(
    {HASH_RANDOMIZATION, CUBLAS_WORKSPACE_TOO_LATE, THREAD_SETTING_TOO_LATE}
)

# Once the restarting cell has replied, the exec waits until no queued request has been
# aborted for _QUIET_SECONDS (their replies must leave the process first), but never longer
# than _MAX_WAIT_SECONDS (a front end that keeps sending would otherwise hold it off).
_QUIET_SECONDS = 0.5
_MAX_WAIT_SECONDS = 10.0
_POLL_SECONDS = 0.05

# On Colab the record cannot travel in the environment. The process Colab starts after the
# kill reads it from this file, if it started within this many seconds of the restart.
_COLAB_RECORD = "nbrepro-runtime.json"
_COLAB_WINDOW_SECONDS = 120.0

# Line magics that prepare a session without running the user's computation; cells made of
# these, imports and literal assignments leave a runtime fresh.
_SETUP_MAGICS = frozenset(
    {
        "load_ext", "reload_ext", "repro_seed", "repro_status", "repro_data", "repro_export",
        "repro_restart", "matplotlib", "config", "env", "pip", "conda", "mamba", "autoreload",
        "aimport",
    }
)  # fmt: skip
_CELLS_NAMED = 5  # in a message; the rest are counted


@dataclass(frozen=True)
class Runtime:
    """How nbrepro started this process: which command, when, with which settings."""

    started_by: str  #: ``"%repro_restart"`` or ``"%repro_seed --restart"``
    started_at: float  #: seconds since the epoch
    #: the process-start settings it was started with (empty on Colab, which cannot take them)
    settings: dict[str, str]

    def __str__(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started_at))
        if not self.settings:
            return (
                f"started by {self.started_by} at {when}; no process-start settings "
                "(Colab restarts its runtime with an environment of its own)"
            )
        return (
            f"started by {self.started_by} at {when}; process-start settings in force: "
            f"{_assignments(self.settings)}"
        )


@dataclass(frozen=True)
class Freshness:
    """Whether ``%repro_seed`` ran in a fresh runtime, and if not, what made it used."""

    #: cells that ran before, other than setup, as ``"In [3] `x = random.random()`"``
    cells: tuple[str, ...]
    #: findings about settings only a new process can change (NBR101, NBR102, NBR103)
    settings: tuple[Finding, ...]
    runtime: Runtime | None  #: how nbrepro started this process, if it did
    restartable: bool = True  #: in a kernel :func:`restart` can restart (not terminal IPython)

    @property
    def fresh(self) -> bool:
        """Nothing but setup ran before, and every process-start setting is in force."""
        return not self.cells and not self.settings

    def __str__(self) -> str:
        if self.fresh:
            return "  fresh runtime: nothing ran before %repro_seed"
        reasons = []
        if self.cells:
            named = ", ".join(self.cells[:_CELLS_NAMED])
            if len(self.cells) > _CELLS_NAMED:
                named += f" and {len(self.cells) - _CELLS_NAMED} more"
            reasons.append(
                f"{named} ran before %repro_seed, so a run from the top will not repeat what "
                "they did to random state and variables"
            )
        for finding in self.settings:
            reasons.append(f"{finding.code} needs a new process ({_setting_names(finding)})")
        fix = (
            "%repro_restart, then run the notebook from the top (or %repro_seed --restart, "
            "which restarts by itself)"
        )
        if not self.restartable:
            fix = (
                "start a new process with PYTHONHASHSEED=0 in its environment (there is no "
                "kernel to restart here), then run the code from the top"
            )
        elif on_colab() and not self.cells and _colab_cannot_fix(self.settings):
            fix = (
                "none on Colab, which cannot start a runtime with PYTHONHASHSEED set: keep "
                "results independent of the iteration order of sets of str (sort them)"
            )
        return "  not a fresh runtime: " + "; ".join(reasons) + f"\n      fix: {fix}"


def on_colab() -> bool:
    """Whether this is a Google Colab runtime."""
    return "google.colab" in sys.modules


def runtime_record(started_by: str, settings: dict[str, str], pid: int | None) -> dict[str, Any]:
    """What ``NBREPRO_RUNTIME`` holds (as JSON) in a process nbrepro started fresh."""
    return {"started_by": started_by, "started_at": time.time(), "pid": pid, "settings": settings}


def process_start_settings(config: Config | None) -> dict[str, str]:
    """The environment a fresh runtime for ``config`` needs from its start.

    ``PYTHONHASHSEED`` always; ``CUBLAS_WORKSPACE_CONFIG`` when the installed torch needs it
    for deterministic cuBLAS (read from the package metadata: torch is not imported); the
    thread variables when ``config`` fixes the thread count.
    """
    settings = {HASH_SEED_VARIABLE: HASH_SEED_VALUE}
    torch_version = _installed_torch()
    if torch_version is not None and needs_cublas_variable(torch_version):
        settings[CUBLAS_VARIABLE] = CUBLAS_VALUE
    if config is not None and config.threads is not None:
        settings.update(dict.fromkeys(THREAD_VARIABLES, str(config.threads)))
    return settings


@lru_cache(maxsize=1)
def _installed_torch() -> str | None:
    # Read from the package metadata (torch is not imported), once: the installed version does
    # not change under a running process, and the lookup costs ~2 ms.
    from importlib import metadata  # not at import time: it costs more than nbrepro itself

    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


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


def check_freshness(shell: Any, findings: Sequence[Finding]) -> Freshness:
    """Whether the cell running now would be the first of a fresh runtime.

    ``shell`` is the IPython shell whose input history is read (cells that ran before the
    current one); ``findings`` are the session's, of which the process-start ones count.
    """
    cells: list[str] = []
    count = getattr(shell, "execution_count", 0)
    history = getattr(shell, "history_manager", None)
    if history is not None:
        raw, parsed = history.input_hist_raw, history.input_hist_parsed
        # Index n holds the cell with execution count n; the current cell is stored already.
        for number in range(1, min(count, len(raw), len(parsed))):
            if not setup_only(parsed[number]):
                cells.append(f"In [{number}] `{_first_line(raw[number])}`")
    settings = tuple(f for f in findings if f.code in PROCESS_START_CODES)
    try:
        _kernel(shell)
    except CannotRestartError:
        restartable = False
    else:
        restartable = True
    return Freshness(tuple(cells), settings, current_runtime(), restartable)


def setup_only(source: str) -> bool:
    """Whether a cell (as IPython translated it) only prepares: imports, setup magics, literals.

    Such cells draw no random numbers and compute nothing, so running them before
    ``%repro_seed`` leaves a runtime fresh. Anything else, or code that does not parse, counts
    as a cell that ran.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return all(_setup_statement(node) for node in tree.body)


def restart_refusal(freshness: Freshness) -> str | None:
    """Why ``%repro_seed --restart`` must not restart now, or ``None`` when a restart helps.

    A runtime nbrepro started is restarted again by itself only when the session's
    configuration asks for a process-start setting it was not started with: otherwise the
    cells above ``%repro_seed`` (or a setting a restart cannot fix) would make the next run not
    fresh either, and every "Run All" would restart the kernel again.
    """
    runtime = freshness.runtime
    if runtime is not None:
        started = f"{runtime.started_by} started this runtime"
        anyway = "or run %repro_restart to restart anyway"
        if freshness.cells:
            return (
                f"nbrepro: not restarting again: {started}, and the cells named above ran in "
                f"it before %repro_seed. Move %repro_seed above them, {anyway}."
            )
        wanted = process_start_settings(session().config)
        if on_colab() or wanted.items() <= runtime.settings.items():
            return (
                f"nbrepro: not restarting again: {started} with the settings a restart would "
                f"give it now; {anyway}."
            )
    if on_colab() and not freshness.cells and _colab_cannot_fix(freshness.settings):
        return (
            "nbrepro: not restarting: on Colab a new runtime cannot be given PYTHONHASHSEED, "
            "so a restart would not fix NBR101; keep results independent of the iteration "
            "order of sets of str (sort them)."
        )
    return None


def ensure_restartable(shell: Any) -> None:
    """Raise :class:`~nbrepro.errors.CannotRestartError` unless :func:`restart` can work here."""
    _kernel(shell)


def restart(shell: Any, started_by: str = "%repro_restart") -> str:
    """Restart the kernel running ``shell`` into a fresh runtime for the session's config.

    Returns at once, with the text to show the user; the restart happens on the kernel's event
    loop after the current cell has replied and every execute request queued behind it has
    been answered "aborted". The new process has the same pid and connection, the environment
    this one started with plus :func:`process_start_settings`, and :data:`RUNTIME_VARIABLE`.
    On Colab the process is killed instead, and Colab starts a new one. ``started_by`` names
    the command in that record; the returned text is what to show the user.

    Raises:
        CannotRestartError: not in a Jupyter kernel (plain Python, terminal IPython, an
            in-process kernel), or on Windows.
    """
    kernel = _kernel(shell)
    settings = process_start_settings(session().config)
    record = runtime_record(started_by, {} if on_colab() else settings, os.getpid())
    if on_colab():
        _write_colab_record(record)
        message = (
            "nbrepro: restarting the Colab runtime: its process is stopped, and Colab starts a "
            "new one (it may report that the session crashed; that is this restart). Colab "
            "cannot start it with new environment variables, so PYTHONHASHSEED stays unfixed "
            "(NBR101): keep results independent of the order of sets of str. Every variable "
            "is lost; cells queued behind this one are cancelled. When the runtime is back, "
            "run the notebook from the top."
        )
        finish: Callable[[], None] = _kill
    else:
        environment = fresh_environment(settings, record)
        message = (
            f"nbrepro: restarting the kernel into a fresh runtime with {_assignments(settings)}. "
            "Every variable is lost; cells queued behind this one are cancelled, not run. "
            "When the kernel is back (a few seconds), run the notebook from the top."
        )

        def finish() -> None:
            os.execve(sys.executable, sys.orig_argv, environment)

    _PendingRestart(kernel, finish).start()
    return message


def fresh_environment(settings: dict[str, str], record: dict[str, Any]) -> dict[str, str]:
    """The environment this process started with, plus ``settings`` and the ``record``.

    The start environment, not ``os.environ``, as a front end's own restart would: what cells
    set since (``%env``, ``os.environ[...]``) is set again when the notebook runs again.
    Settings an earlier nbrepro restart added are dropped first, so that options the
    current config no longer has (``--threads``) do not linger.
    """
    environment = start_environment()
    previous = current_runtime()
    if previous is not None:
        for name, value in previous.settings.items():
            if environment.get(name) == value:
                del environment[name]
    environment.update(settings)
    environment[RUNTIME_VARIABLE] = json.dumps(record)
    return environment


class _PendingRestart:
    """Answers the execute requests queued behind the restart "aborted", then ``finish``es.

    ipykernel (6.x and 7.x alike) aborts every execute request it dispatches while its
    ``_aborting`` flag is set: that is how "Run All" stops after an error. Its own abort
    clears the flag once the queue is drained; here the flag stays set until the process is
    replaced, so requests that arrive meanwhile are answered too.
    """

    def __init__(self, kernel: Any, finish: Callable[[], None]) -> None:
        self.kernel = kernel
        self.finish = finish
        self.replied_at: float | None = None
        self.last_abort = 0.0
        self.send_abort_reply: Any = None

    def start(self) -> None:
        kernel = self.kernel
        if kernel.has_trait("_aborting"):
            kernel._aborting = True
            kernel.observe(self._keep_aborting, names="_aborting")
        _abort_subshells(kernel, True)
        self.send_abort_reply = getattr(kernel, "_send_abort_reply", None)
        if self.send_abort_reply is not None:
            kernel._send_abort_reply = self._send_abort_reply
        # add_callback, unlike call_later, may be called from another thread (a subshell's).
        kernel.io_loop.add_callback(self._poll)

    def _keep_aborting(self, change: dict[str, Any]) -> None:
        if not change["new"]:
            self.kernel._aborting = True

    def _send_abort_reply(self, *args: Any, **kwargs: Any) -> Any:
        self.last_abort = time.monotonic()
        return self.send_abort_reply(*args, **kwargs)

    def _poll(self) -> None:
        now = time.monotonic()
        if self.replied_at is None:
            # The event loop runs again only once the restarting cell has finished and its
            # reply has been sent.
            self.replied_at = now
        quiet = now - max(self.replied_at, self.last_abort) >= _QUIET_SECONDS
        if quiet or now - self.replied_at >= _MAX_WAIT_SECONDS:
            self._finish()
        else:
            self.kernel.io_loop.call_later(_POLL_SECONDS, self._poll)

    def _finish(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        _restore_standard_streams()
        try:
            self.finish()
        except OSError as error:
            # The old process goes on: let it run cells again, and say why in the kernel log.
            self._undo()
            print(f"nbrepro: the kernel could not restart: {error}", file=sys.__stderr__)

    def _undo(self) -> None:
        kernel = self.kernel
        if kernel.has_trait("_aborting"):
            kernel.unobserve(self._keep_aborting, names="_aborting")
            kernel._aborting = False
        _abort_subshells(kernel, False)
        if self.send_abort_reply is not None:
            del kernel._send_abort_reply


def _kernel(shell: Any) -> Any:
    """The ipykernel kernel running ``shell``, or :class:`CannotRestartError`."""
    how = (
        "quit, then start it again with "
        + _assignments(process_start_settings(None))
        + " in its environment (for example `PYTHONHASHSEED=0 ipython`)"
    )
    kernel = getattr(shell, "kernel", None)
    if kernel is None or getattr(kernel, "io_loop", None) is None:
        where = "plain Python" if shell is None else "terminal IPython"
        raise CannotRestartError(f"restarting needs a Jupyter kernel, and this is {where}: {how}")
    if type(kernel).__module__.startswith("ipykernel.inprocess"):
        raise CannotRestartError(
            "this kernel runs inside its front end's process, which nbrepro cannot restart: " + how
        )
    if sys.platform == "win32":
        raise CannotRestartError(
            "on Windows a process cannot be replaced in place: set "
            + _assignments(process_start_settings(None))
            + " in the kernel's environment (the kernelspec's \"env\") and restart the "
            "kernel from the front end"
        )
    return kernel


def _abort_subshells(kernel: Any, aborting: bool) -> None:
    # ipykernel >= 7 runs subshells with an aborting flag each; a request queued on one
    # would otherwise run, and be cut off by the exec without a reply.
    thread = getattr(kernel, "shell_channel_thread", None)
    manager = getattr(thread, "manager", None) if thread else None
    if manager is None or not hasattr(manager, "list_subshell"):
        return
    for subshell in manager.list_subshell():
        manager.set_subshell_aborting(subshell, aborting)


def _restore_standard_streams() -> None:
    # ipykernel points fds 1 and 2 at pipes that its own threads read, and keeps the
    # originals (the kernel log the kernel manager collects). The new process must inherit
    # those: the reading end of the pipes dies with this process.
    for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
        original = getattr(stream, "_original_stdstream_copy", None)
        if isinstance(original, int):
            os.dup2(original, fd)


def _kill() -> None:
    # What Colab users do to restart a runtime from code: Colab starts a new process.
    os.kill(os.getpid(), signal.SIGKILL)


def _colab_record_path() -> str:
    return os.path.join(tempfile.gettempdir(), _COLAB_RECORD)


def _write_colab_record(record: dict[str, Any]) -> None:
    path = _colab_record_path()
    partial = f"{path}.{os.getpid()}"
    with open(partial, "w", encoding="utf-8") as file:
        json.dump(record, file)
    os.replace(partial, path)


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


def _setup_statement(node: ast.stmt) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.Pass)):
        return True
    if isinstance(node, ast.Expr):
        return isinstance(node.value, ast.Constant) or _setup_call(node.value)
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        try:
            ast.literal_eval(node.value)
        except ValueError:
            return False
        return True
    if isinstance(node, ast.Try):
        body = [*node.body, *node.orelse, *node.finalbody]
        body += [statement for handler in node.handlers for statement in handler.body]
        return all(_setup_statement(statement) for statement in body)
    return False


def _setup_call(node: ast.expr) -> bool:
    """``get_ipython().run_line_magic("<setup magic>", ...)`` or ``get_ipython().system(...)``."""
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Call)
        and isinstance(node.func.value.func, ast.Name)
        and node.func.value.func.id == "get_ipython"
    ):
        return False
    if node.func.attr == "system":  # `!pip install ...`: runs outside the kernel
        return True
    return (
        node.func.attr == "run_line_magic"
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value in _SETUP_MAGICS
    )


def _first_line(source: str, width: int = 48) -> str:
    lines = [line.strip() for line in source.strip().splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if len(first) > width or len(lines) > 1:
        return first[:width].rstrip() + " …"
    return first


def _assignments(settings: dict[str, str]) -> str:
    return " ".join(f"{name}={value}" for name, value in settings.items())


def _colab_cannot_fix(settings: Sequence[Finding]) -> bool:
    # Colab starts its runtimes with its own environment: a fixed hash seed is out of reach,
    # while the cuBLAS and thread settings only need %repro_seed to run before the frameworks.
    return all(finding.code == HASH_RANDOMIZATION for finding in settings)


def _setting_names(finding: Finding) -> str:
    if finding.code == HASH_RANDOMIZATION:
        return HASH_SEED_VARIABLE
    if finding.code == CUBLAS_WORKSPACE_TOO_LATE:
        return CUBLAS_VARIABLE
    return "thread variables"
