"""Execute a notebook in a fresh kernel, the way "Restart kernel and run all" in JupyterLab would.

Three things set this apart from a plain nbclient run:

- The kernel starts with the process-start settings already in its environment, the ones
  ``%repro_restart`` uses: ``PYTHONHASHSEED`` (str hash order), and ``CUBLAS_WORKSPACE_CONFIG``
  where the installed torch still needs it. Neither can take effect once the kernel runs.
- Every ``execute_request`` carries the cell's id in ``metadata["cellId"]``, as JupyterLab,
  Notebook 7 and VS Code send it, so ``--per-cell`` seeds are the ones the notebook gets in
  those front ends. nbclient sends no id; cells without one (nbformat < 4.5) fall back to
  their source, as documented in the README.
- An optional silent preamble (``%load_ext nbrepro`` + ``%repro_seed``) runs before the first
  cell and leaves no trace in the notebook.

Errors raised here (see nbrepro.errors): KernelError, CellError.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import queue
import tempfile
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from jupyter_client.kernelspec import NoSuchKernel
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.session import Session
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

from nbrepro._config import validate_seed
from nbrepro._process_settings import process_start_settings
from nbrepro._record import embed
from nbrepro._runtime_record import RUNTIME_VARIABLE, runtime_record
from nbrepro.errors import CellError, KernelError, NbreproError

T = TypeVar("T")

#: Called after each code cell: the cell, and the seconds it took.
CellCallback = Callable[["CellRef", float], None]


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


def kernel_environment(
    base: Mapping[str, str] | None = None, notebook_path: Path | None = None
) -> dict[str, str]:
    """The environment a fresh kernel starts with: ``base`` plus the process-start settings.

    The settings are those ``%repro_restart`` starts a kernel with
    (:func:`nbrepro._process_settings.process_start_settings`): ``PYTHONHASHSEED`` fixed, and
    ``CUBLAS_WORKSPACE_CONFIG`` where the installed torch is older than 2.10.
    ``JPY_SESSION_NAME`` carries the notebook's path, as jupyter_server sets it, for code that
    asks which notebook runs.
    """
    environment = dict(os.environ if base is None else base)
    settings = process_start_settings(None)
    environment.update(settings)
    # Marks the kernel as a fresh runtime nbrepro started, so that %repro_seed --restart in
    # the notebook does not restart it (which would cancel the rest of the run).
    environment[RUNTIME_VARIABLE] = json.dumps(runtime_record("nbrepro run", settings, pid=None))
    if notebook_path is not None:
        environment["JPY_SESSION_NAME"] = str(notebook_path.resolve())
    return environment


def preamble(seed: int | None, deterministic: bool) -> str | None:
    """The code run silently before the first cell, or ``None`` when nothing is asked."""
    if seed is None and not deterministic:
        return None
    arguments = ([str(validate_seed(seed))] if seed is not None else []) + (
        ["--deterministic"] if deterministic else []
    )
    return "%load_ext nbrepro\n%repro_seed " + " ".join(arguments)


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


async def execute_async(
    notebook: NotebookNode,
    *,
    path: Path,
    seed: int | None = None,
    deterministic: bool = False,
    timeout: int | None = None,
    kernel_name: str | None = None,
    on_cell: CellCallback | None = None,
    on_preamble: Callable[[str], None] | None = None,
    seed_line: str | None = None,
    variables: Mapping[str, str] | None = None,
    record: bool = False,
) -> Execution:
    """Execute ``notebook`` (read from ``path``) top to bottom in place, in a fresh kernel.

    The kernel runs in the notebook's folder. ``timeout`` is per cell, in seconds. Raises
    :class:`KernelError` when the kernel does not start or the preamble fails, and
    :class:`CellError` naming the cell that raised, timed out or killed the kernel; the
    notebook then holds the outputs up to and including that cell. ``on_preamble`` gets what
    the preamble printed (the ``%repro_seed`` summary), ``on_cell`` each finished code cell.

    ``seed_line`` replaces the preamble's ``%repro_seed`` arguments (``nbrepro rerun`` repeats
    a record's); ``variables`` are added to the kernel's start environment. With ``record``,
    the session's reproducibility record is read from the kernel after the last cell and
    embedded in the notebook (``metadata["nbrepro"]``).
    """
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
    environment = {**kernel_environment(notebook_path=path), **(variables or {})}
    setup_done = False
    # What the kernel process itself writes (start-up warnings, a crash) is kept out of the
    # caller's terminal, and shown only when the kernel fails.
    with tempfile.TemporaryFile() as kernel_log:
        try:
            async with client.async_setup_kernel(
                env=environment, stdout=kernel_log, stderr=kernel_log
            ):
                setup_done = True
                kc: Any = client.kc  # the async client class; typed as its base in nbclient
                reply = await client.async_wait_for_reply(await _maybe_await(kc.kernel_info()))
                if reply is not None and "language_info" in reply["content"]:
                    notebook.metadata["language_info"] = reply["content"]["language_info"]
                code = preamble(seed, deterministic)
                if seed_line is not None:
                    code = f"%load_ext nbrepro\n%repro_seed {seed_line}"
                if code is not None:
                    printed = await _run_preamble(client, code)
                    if on_preamble is not None:
                        on_preamble(printed)
                await _run_cells(client, notebook, timeout, on_cell, kernel_log)
                client.set_widgets_metadata()
                if record:
                    embed(notebook, json.loads(await _run_preamble(client, _RECORD_CODE)))
        except NoSuchKernel as error:
            raise KernelError(f"no Jupyter kernel named {error.name!r} is installed") from None
        except KernelError as error:
            raise KernelError(f"{error}{_tail(kernel_log)}") from None
        except (RuntimeError, TimeoutError, OSError) as error:
            if isinstance(error, NbreproError):
                raise
            what = "failed" if setup_done else "did not start"
            raise KernelError(f"the kernel {what}: {error}{_tail(kernel_log)}") from error
    return Execution(notebook, time.perf_counter() - started)


async def _run_cells(
    client: NotebookClient,
    notebook: NotebookNode,
    timeout: int | None,
    on_cell: CellCallback | None,
    kernel_log: IO[bytes],
) -> None:
    """Execute every code cell in order, each request carrying the cell's id."""
    session: Any = client.kc.session  # type: ignore[union-attr]  # set up by now
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or not _source(cell).strip():
            continue
        ref = CellRef.of(notebook, index)
        session.cell_id = cell.get("id")
        started = time.perf_counter()
        try:
            await client.async_execute_cell(
                cell, index, execution_count=client.code_cells_executed + 1
            )
        except CellExecutionError as error:
            raise CellError(ref, f"raised {error.ename}: {error.evalue}") from None
        except CellTimeoutError:
            raise CellError(ref, f"did not finish within the {timeout} s timeout") from None
        except DeadKernelError:
            problem = "killed the kernel (it died while the cell ran)"
            raise CellError(ref, problem + _tail(kernel_log)) from None
        finally:
            session.cell_id = None
        if on_cell is not None:
            on_cell(ref, time.perf_counter() - started)


def _tail(kernel_log: IO[bytes], lines: int = 12) -> str:
    """The end of what the kernel process wrote, indented, for an error message."""
    kernel_log.seek(0)
    written = kernel_log.read().decode(errors="replace").strip().splitlines()[-lines:]
    if not written:
        return ""
    return "\n  the kernel process wrote:\n" + "\n".join(f"    {line}" for line in written)


def execute(notebook: NotebookNode, **options: Any) -> Execution:
    """:func:`execute_async` from synchronous code."""
    return run_sync(execute_async(notebook, **options))


async def _run_preamble(client: NotebookClient, code: str) -> str:
    """Run ``code`` silently (no execute_input, no history, no cell events); its stdout."""
    kc: Any = client.kc
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
        missing = "nbrepro" in failure
        hint = " (is nbrepro installed in the kernel's environment?)" if missing else ""
        raise KernelError(
            f"nbrepro's preamble ({code.splitlines()[-1]}) failed in the kernel: {failure}{hint}"
        )
    return printed


async def _maybe_await(value: Any) -> Any:
    # jupyter_client's async client returns coroutines from some methods, plain values from
    # others (execute, kernel_info), and which ones differs between 7.x and 8.x.
    return await value if inspect.isawaitable(value) else value


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
