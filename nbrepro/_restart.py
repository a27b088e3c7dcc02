"""Restart the kernel in place into a fresh runtime.

Some settings only take effect when a process starts (``PYTHONHASHSEED``, the cuBLAS workspace,
thread-pool sizes). :func:`restart` replaces the kernel's process with a new one, started with
those settings: ``os.execve`` keeps the pid and the connection file, so the front end's sockets
reconnect to the new kernel on the same ports. The exec runs on the kernel's event loop once
the cell that asked for it has replied (an exec inside the cell would leave the front end
waiting for that reply forever), and every execute request queued behind that cell (a
"Run All") is first answered "aborted", through ipykernel's own abort machinery, so that none
is left waiting either. The new process carries the runtime record
(:mod:`nbrepro._runtime_record`).

Colab has no way to restart its kernel with a new environment: there the process is killed
(Colab starts a new one, with the environment Colab chooses) and the record goes to a file.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nbrepro._kernel_environment import kernel_environment
from nbrepro._process_settings import assignments, process_start_settings, start_environment
from nbrepro._runtime_record import (
    on_colab,
    runtime_record,
    write_colab_record,
)
from nbrepro._session import session
from nbrepro.errors import CannotRestartError

if TYPE_CHECKING:
    from nbrepro._config import Config

# Once the restarting cell has replied, the exec waits until no queued request has been
# aborted for _QUIET_SECONDS (their replies must leave the process first), but never longer
# than _MAX_WAIT_SECONDS (a front end that keeps sending would otherwise hold it off).
_QUIET_SECONDS = 0.5
_MAX_WAIT_SECONDS = 10.0
_POLL_SECONDS = 0.05


def ensure_restartable(shell: Any) -> None:
    """Raise :class:`~nbrepro.errors.CannotRestartError` unless :func:`restart` can work here."""
    _kernel(shell)


def restart(shell: Any, started_by: str = "%repro_restart", config: Config | None = None) -> str:
    """Restart the kernel running ``shell`` into a fresh runtime for the session's config.

    Returns at once, with the text to show the user; the restart happens on the kernel's event
    loop after the current cell has replied and every execute request queued behind it has
    been answered "aborted". The new process has the same pid and connection, the environment
    this one started with plus :func:`process_start_settings`, and :data:`RUNTIME_VARIABLE`.
    On Colab the process is killed instead, and Colab starts a new one. ``started_by`` names
    the command in that record; the returned text is what to show the user. ``config``
    stands in for the session's configuration where it has none yet.

    Raises:
        CannotRestartError: not in a Jupyter kernel (plain Python, terminal IPython, an
            in-process kernel), or on Windows.
    """
    kernel = _kernel(shell)
    settings = process_start_settings(session().config or config)
    record = runtime_record(started_by, {} if on_colab() else settings, os.getpid())
    if on_colab():
        write_colab_record(record)
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
        # The start environment, not os.environ, as a front end's own restart would: what
        # cells set since (%env, os.environ[...]) is set again when the notebook runs again.
        environment = kernel_environment(start_environment(), settings, record)
        message = (
            f"nbrepro: restarting the kernel into a fresh runtime with {assignments(settings)}. "
            "Every variable is lost; cells queued behind this one are cancelled, not run. "
            "When the kernel is back (a few seconds), run the notebook from the top."
        )

        def finish() -> None:
            os.execve(sys.executable, sys.orig_argv, environment)

    _PendingRestart(kernel, finish).start()
    return message


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
        + assignments(process_start_settings(None))
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
            + assignments(process_start_settings(None))
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
