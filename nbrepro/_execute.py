"""Execute a notebook in a fresh kernel, the way "Restart kernel and run all" in JupyterLab would.

nbclient runs the cells (``NotebookClient.async_execute``); nbrepro adds, through nbclient's
own hooks:

- The kernel starts with the process-start settings already in its environment, the ones
  ``%repro_restart`` uses (:mod:`nbrepro._kernel_environment`): ``PYTHONHASHSEED`` (str hash
  order), and ``CUBLAS_WORKSPACE_CONFIG`` where the installed torch still needs it. Neither
  can take effect once the kernel runs.
- Every ``execute_request`` carries the cell's id in ``metadata["cellId"]``, as JupyterLab,
  Notebook 7 and VS Code send it (``on_cell_execute``), so ``--per-cell`` seeds are the ones
  the notebook gets in those front ends. nbclient sends no id; cells without one
  (nbformat < 4.5) fall back to their source, as documented in the README.
- An optional silent preamble (nbrepro loaded, ``%repro_seed``) runs just before the first
  cell (``on_cell_execute``) and leaves no trace in the notebook.
- Optionally, the session's reproducibility record is read from the kernel after the last cell.

:func:`run_sync` runs the coroutines from synchronous code so that Ctrl-C stops every kernel
before it ends the program. Errors raised here (see nbrepro.errors): KernelError, CellError.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import functools
import inspect
import json
import os
import queue
import shlex
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar

from jupyter_client.kernelspec import NoSuchKernel
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.session import Session
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

from nbrepro._config import Config, make_config
from nbrepro._kernel_environment import kernel_environment
from nbrepro._process_settings import process_start_settings
from nbrepro._runtime_record import runtime_record
from nbrepro.errors import CellError, KernelError, NbreproError

T = TypeVar("T")
P = ParamSpec("P")

#: Called after each code cell that ran without error: the cell, and the seconds it took.
CellCallback = Callable[["CellRef", float], None]

# How long an interrupted run may take to stop its kernels before the program ends anyway.
_STOP_SECONDS = 30.0


@dataclass(frozen=True)
class CellRef:
    """A cell named the way reports name it: index among all cells, id, first line."""

    index: int  #: 0-based position among all the notebook's cells, markdown included
    id: str | None  #: the nbformat >= 4.5 cell id
    first_line: str  #: first non-blank source line, shortened

    @classmethod
    def of(cls, notebook: NotebookNode, index: int) -> CellRef:
        """The :class:`CellRef` of ``notebook.cells[index]``."""
        cell = notebook.cells[index]
        lines = (line.strip() for line in _source(cell).splitlines())
        first = next((line for line in lines if line), "")
        if len(first) > 72:
            first = first[:71] + "…"
        return cls(index=index, id=cell.get("id"), first_line=first)

    def __str__(self) -> str:
        ident = f" (id {self.id})" if self.id else ""
        return f"cell {self.index}{ident} `{self.first_line}`"


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _start_config(seed_arguments: str | None) -> Config | None:
    """The preamble's ``%repro_seed`` request, as far as process-start settings depend on it.

    Only its determinism: with ``--deterministic``/``--strict`` the kernel also starts with
    the adapters' determinism variables (``XLA_FLAGS``). The seed there changes no setting.
    """
    words = shlex.split(seed_arguments or "")
    if "--deterministic" not in words and "--strict" not in words:
        return None
    return make_config(0, deterministic=True, strict="--strict" in words)


def preamble(seed_arguments: str) -> str:
    """The code run silently before the first cell: load nbrepro, ``%repro_seed ARGUMENTS``.

    nbrepro is loaded by calling its ``load_ipython_extension`` rather than ``%load_ext``, so
    IPython's extension manager does not count it as loaded: the notebook's own
    ``%load_ext nbrepro`` then loads it again (registering nothing twice) silently, instead of
    printing "already loaded" where the recorded run printed nothing.
    """
    return (
        "import nbrepro as _nbrepro\n"
        "_nbrepro.load_ipython_extension(get_ipython())\n"
        "del _nbrepro\n"
        f"get_ipython().run_line_magic('repro_seed', {seed_arguments!r})"
    )


# Run silently in the kernel after the last cell: prints the session's record as JSON.
_RECORD_CODE = (
    "import json as _nbrepro_json\n"
    "from nbrepro._record import build_record as _nbrepro_build\n"
    "from nbrepro._session import session as _nbrepro_session\n"
    "print(_nbrepro_json.dumps(_nbrepro_build(_nbrepro_session(), get_ipython().user_ns)))\n"
    "del _nbrepro_json, _nbrepro_build, _nbrepro_session"
)


class _CellIdSession(Session):
    """A Session whose ``execute_request`` messages carry :attr:`cell_id` as ``cellId``.

    This is the field JupyterLab fills; ipykernel (>= 6.11) hands it to IPython as
    ``info.cell_id``. ``Session.clone`` keeps the class, so the kernel client gets one too.
    """

    cell_id: str | None = None

    def msg(
        self,
        msg_type: str,
        content: dict[str, Any] | None = None,
        parent: dict[str, Any] | None = None,
        header: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if msg_type == "execute_request" and self.cell_id:
            metadata = {**(metadata or {}), "cellId": self.cell_id}
        message: dict[str, Any] = super().msg(msg_type, content, parent, header, metadata)
        return message


class _CellIdKernelManager(AsyncKernelManager):
    """An AsyncKernelManager whose session sends cell ids (see :class:`_CellIdSession`)."""

    def _session_default(self) -> Session:
        return _CellIdSession(parent=self)


@dataclass(frozen=True)
class Execution:
    """One notebook executed in place; what :func:`execute` returns."""

    notebook: NotebookNode
    seconds: float  #: wall time, kernel start and shutdown included


class _Run:
    """One execution's state, and the nbclient hooks that drive it."""

    def __init__(
        self,
        notebook: NotebookNode,
        client: NotebookClient,
        seed_arguments: str | None,
        on_cell: CellCallback | None,
        on_preamble: Callable[[str], None] | None,
    ) -> None:
        self.notebook = notebook
        self.client = client
        self.seed_arguments = seed_arguments
        self.on_cell = on_cell
        self.on_preamble = on_preamble
        self.cell: CellRef | None = None  #: the cell running now (or last)
        self.cell_started = 0.0
        self.preamble_done = False

    async def run_preamble(self) -> None:
        """Run the preamble, once, if there is one."""
        if self.seed_arguments is not None and not self.preamble_done:
            self.preamble_done = True
            printed = await run_silently(self.client, preamble(self.seed_arguments))
            if self.on_preamble is not None:
                self.on_preamble(printed)

    async def on_cell_execute(self, cell: NotebookNode, cell_index: int) -> None:
        """Just before the cell's execute request goes out: the preamble before the first
        one, then the cell's id for its request."""
        # Not in on_notebook_start: nbclient asks for kernel_info after that hook, and
        # ipykernel 7 changes the state of the global `random` answering it.
        await self.run_preamble()
        self.cell = CellRef.of(self.notebook, cell_index)
        _session(self.client).cell_id = cell.get("id")
        self.cell_started = time.perf_counter()

    def on_cell_executed(
        self, cell: NotebookNode, cell_index: int, execute_reply: dict[str, Any]
    ) -> None:
        """The cell replied: report it when it succeeded."""
        succeeded = execute_reply["content"].get("status") == "ok"
        if self.on_cell is not None and self.cell is not None and succeeded:
            self.on_cell(self.cell, time.perf_counter() - self.cell_started)


def _session(client: NotebookClient) -> _CellIdSession:
    kc: Any = client.kc  # set up once the kernel answers
    session: _CellIdSession = kc.session
    return session


async def execute_async(
    notebook: NotebookNode,
    *,
    path: Path,
    timeout: int | None = None,
    kernel_name: str | None = None,
    on_cell: CellCallback | None = None,
    on_preamble: Callable[[str], None] | None = None,
    seed_arguments: str | None = None,
    variables: Mapping[str, str] | None = None,
    record: bool = False,
    started_by: str = "nbrepro run",
) -> Execution:
    """Execute ``notebook`` (read from ``path``) top to bottom in place, in a fresh kernel.

    The kernel runs in the notebook's folder. ``timeout`` is per cell, in seconds. Raises
    :class:`KernelError` when the kernel does not start or the preamble fails, and
    :class:`CellError` naming the cell that raised, timed out or killed the kernel; the
    notebook then holds the outputs up to and including that cell. The kernel is stopped
    whatever happens, cancellation included.

    With ``seed_arguments``, a silent preamble loads nbrepro and runs ``%repro_seed`` with
    them before the first cell; ``on_preamble`` gets what it printed. ``on_cell`` gets each
    code cell that ran without error. ``variables`` are added to the kernel's start
    environment; ``started_by`` names the command in its runtime record. With ``record``, the
    session's reproducibility record is read from the kernel after the last cell and embedded
    in the notebook (``metadata["nbrepro"]``).
    """
    from nbrepro._record import embed  # the record's builders are not needed to execute

    started = time.perf_counter()
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name=kernel_name or "",
        kernel_manager_class=_CellIdKernelManager,
        # The kernel's state is thrown away; a graceful shutdown only costs time and, after a
        # timeout, makes the busy kernel log tracebacks about its closed sockets.
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(path.resolve().parent)}},
    )
    run = _Run(notebook, client, seed_arguments, on_cell, on_preamble)
    client.on_cell_execute = run.on_cell_execute
    client.on_cell_executed = run.on_cell_executed
    settings = process_start_settings(_start_config(seed_arguments), os.environ)
    environment = kernel_environment(
        os.environ, settings, runtime_record(started_by, settings, pid=None), notebook_path=path
    )
    environment.update(variables or {})
    # What the kernel process itself writes (start-up warnings, a crash) is kept out of the
    # caller's terminal, and shown only when the kernel fails.
    with tempfile.TemporaryFile() as kernel_log:
        try:
            # cleanup_kc=False: the kernel outlives the last cell, for the record; it is
            # stopped below, in every case.
            await client.async_execute(
                env=environment, stdout=kernel_log, stderr=kernel_log, cleanup_kc=False
            )
            await run.run_preamble()  # when no cell ran, the record still has the seed
            if record:
                embed(notebook, json.loads(await run_silently(client, _RECORD_CODE)))
        except NoSuchKernel as error:
            raise KernelError(f"no Jupyter kernel named {error.name!r} is installed") from None
        except CellExecutionError as error:
            raise CellError(run.cell, f"raised {error.ename}: {error.evalue}") from None
        except CellTimeoutError:
            raise CellError(run.cell, f"did not finish within the {timeout} s timeout") from None
        except DeadKernelError:
            problem = "killed the kernel (it died while the cell ran)"
            raise CellError(run.cell, problem + _tail(kernel_log)) from None
        except KernelError as error:
            raise KernelError(f"{error}{_tail(kernel_log)}") from None
        except (RuntimeError, TimeoutError, OSError) as error:
            if isinstance(error, NbreproError):
                raise
            what = "failed" if run.cell is not None else "did not start"
            raise KernelError(f"the kernel {what}: {error}{_tail(kernel_log)}") from error
        finally:
            await _stop(client)
    return Execution(notebook, time.perf_counter() - started)


async def _stop(client: NotebookClient) -> None:
    """Stop the kernel and close the channels, if they are still there."""
    # nbclient registers this cleanup to run at exit before it starts the kernel, and forgets
    # to unregister it when the start fails (an unknown kernel name): it is done here.
    atexit.unregister(client._cleanup_kernel)
    manager = client.km
    kc: Any = client.kc  # the async client; typed as its base in nbclient
    client.kc = None
    try:
        if kc is not None:
            await _maybe_await(kc.stop_channels())
    finally:
        if manager is not None and manager.has_kernel:
            await _maybe_await(manager.shutdown_kernel(now=True))


def _tail(kernel_log: IO[bytes], lines: int = 12) -> str:
    """The end of what the kernel process wrote, indented, for an error message."""
    kernel_log.seek(0)
    written = kernel_log.read().decode(errors="replace").strip().splitlines()[-lines:]
    if not written:
        return ""
    return "\n  the kernel process wrote:\n" + "\n".join(f"    {line}" for line in written)


async def run_silently(client: NotebookClient, code: str) -> str:
    """Run ``code`` silently (no execute_input, no history, no cell events); its stdout."""
    kc: Any = client.kc
    _session(client).cell_id = None
    msg_id = await _maybe_await(kc.execute(code, silent=True, store_history=False))
    printed, failure = "", None
    while True:
        try:
            message = await _maybe_await(kc.get_iopub_msg(timeout=client.startup_timeout))
        except queue.Empty:
            raise KernelError(
                f"nbrepro's preamble got no answer from the kernel in {client.startup_timeout} s"
            ) from None
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = message["msg_type"], message["content"]
        if kind == "stream":
            printed += content["text"]
        elif kind == "error":
            failure = f"{content['ename']}: {content['evalue']}"
        elif kind == "status" and content["execution_state"] == "idle":
            break
    await client.async_wait_for_reply(msg_id)
    if failure is not None:
        missing = "nbrepro" in failure and "ModuleNotFound" in failure
        hint = " (is nbrepro installed in the kernel's environment?)" if missing else ""
        raise KernelError(
            f"nbrepro's preamble ({code.splitlines()[-1]}) failed in the kernel: {failure}{hint}"
        )
    return printed


async def _maybe_await(value: Any) -> Any:
    # jupyter_client's async client returns coroutines from some methods, plain values from
    # others (execute, kernel_info), and which ones differs between 7.x and 8.x.
    return await value if inspect.isawaitable(value) else value


def run_sync(function: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """A synchronous version of the coroutine function ``function`` that Ctrl-C stops cleanly.

    The coroutine runs on its own event loop in a worker thread: that works where a loop
    already runs (Jupyter, pytest-asyncio), and leaves SIGINT to Python's handler in the main
    thread. (nbclient installs its own SIGINT handler when it runs in the main thread; it
    shuts the kernel down under the running cell, which then fails with an AssertionError.)
    When the waiting main thread is interrupted (KeyboardInterrupt, or SystemExit from a
    SIGTERM handler), the coroutine is cancelled and its cleanup, which stops every kernel it
    started, finishes before the exception goes on.
    """

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return _run_in_thread(function(*args, **kwargs))

    return wrapper


def _run_in_thread(coroutine: Coroutine[Any, Any, T]) -> T:
    result: concurrent.futures.Future[T] = concurrent.futures.Future()
    running: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = []
    started = threading.Event()

    async def main() -> T:
        task = asyncio.current_task()
        assert task is not None  # a coroutine run by asyncio.run runs in a task
        running.append((asyncio.get_running_loop(), task))
        started.set()
        return await coroutine

    def work() -> None:
        try:
            result.set_result(asyncio.run(main()))
        except BaseException as error:
            result.set_exception(error)
        finally:
            started.set()

    threading.Thread(target=work, name="nbrepro-kernels", daemon=True).start()
    try:
        return result.result()
    except BaseException:
        if not result.done():  # interrupted while waiting, not failed
            _cancel_and_wait(result, running, started)
        raise


def _cancel_and_wait(
    result: concurrent.futures.Future[Any],
    running: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]],
    started: threading.Event,
) -> None:
    deadline = time.monotonic() + _STOP_SECONDS
    cancelled = False
    while not result.done() and time.monotonic() < deadline:
        try:
            if not cancelled and started.wait(timeout=deadline - time.monotonic()):
                if running:
                    loop, task = running[0]
                    loop.call_soon_threadsafe(task.cancel)
                cancelled = True
            concurrent.futures.wait([result], timeout=deadline - time.monotonic())
        except KeyboardInterrupt:
            continue  # a second Ctrl-C while the kernels stop: they still must stop


#: :func:`execute_async` from synchronous code; Ctrl-C stops the kernel (see :func:`run_sync`).
execute = run_sync(execute_async)
