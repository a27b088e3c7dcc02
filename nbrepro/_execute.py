"""Execute a notebook in a fresh kernel, the way "Restart kernel and run all" in JupyterLab would.

Three things set this apart from a plain nbclient run:

- The kernel starts with the process-start settings already in its environment:
  ``PYTHONHASHSEED`` (str hash order), and ``CUBLAS_WORKSPACE_CONFIG`` where the installed torch
  still needs it. Neither can take effect once the kernel runs.
- Every ``execute_request`` carries the cell's id in ``metadata["cellId"]``, as JupyterLab,
  Notebook 7 and VS Code send it, so ``--per-cell`` seeds are the ones the notebook gets in
  those front ends. nbclient sends no id; cells without one (nbformat < 4.5) fall back to
  their source, as documented in the README.
- An optional silent preamble (``%load_ext nbrepro`` + ``%repro_seed``) runs before the first
  cell and leaves no trace in the notebook.

Errors raised here::

    NbreproError
    ├── NotebookFileError   (OSError)      a notebook that cannot be read or is not a notebook,
    │                                      an output path that cannot be written
    ├── KernelError         (RuntimeError) the kernel did not start, or the preamble failed
    └── CellError           (RuntimeError) a cell raised, timed out, or killed the kernel
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import queue
import secrets
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import nbformat
from jupyter_client.kernelspec import NoSuchKernel
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.session import Session
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

from nbrepro._backends.torch import CUBLAS_VALUE, CUBLAS_VARIABLE, needs_cublas_variable
from nbrepro._config import validate_seed
from nbrepro._process_settings import HASH_SEED_VALUE, HASH_SEED_VARIABLE
from nbrepro.errors import NbreproError

T = TypeVar("T")

#: Called after each code cell: the cell, and the seconds it took.
CellCallback = Callable[["CellRef", float], None]


class NotebookFileError(NbreproError, OSError):
    """A notebook that cannot be read or is not a notebook; an output that cannot be written."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class KernelError(NbreproError, RuntimeError):
    """The kernel did not start, or the nbrepro preamble failed in it."""


class CellError(NbreproError, RuntimeError):
    """A cell raised, ran past the timeout, or the kernel died while it ran."""

    def __init__(self, cell: CellRef, problem: str) -> None:
        super().__init__(f"{cell} {problem}")
        self.cell = cell
        self.problem = problem


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


# -- files ---------------------------------------------------------------------------------


def read_notebook(path: Path) -> NotebookNode:
    """The notebook at ``path``, validated; :class:`NotebookFileError` says what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotebookFileError(path, "no such file") from None
    except IsADirectoryError:
        raise NotebookFileError(path, "is a directory, not a notebook") from None
    except UnicodeDecodeError as error:
        raise NotebookFileError(path, f"not a notebook (not UTF-8 text: {error})") from None
    except OSError as error:
        raise NotebookFileError(path, f"cannot read it: {error.strerror}") from error
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise NotebookFileError(path, f"not a notebook: corrupt JSON ({error})") from None
    try:
        # nbformat is untyped; validation errors are captured here and raised just below.
        notebook: NotebookNode = nbformat.reads(  # type: ignore[no-untyped-call]
            text, as_version=4, capture_validation_error={}
        )
        nbformat.validate(notebook)
    except Exception as error:  # nbformat raises ValidationError, NBFormatError, AttributeError
        message = getattr(error, "message", None) or str(error)
        summary = message.strip().splitlines()[0] if message.strip() else type(error).__name__
        if len(summary) > 200:
            summary = summary[:199] + "…"
        raise NotebookFileError(path, f"not a valid Jupyter notebook: {summary}") from None
    return notebook


def check_writable(path: Path) -> None:
    """Raise :class:`NotebookFileError` unless a notebook can be written to ``path``.

    Checked by creating (and removing) a file next to it, which answers for permissions,
    read-only file systems and missing folders alike, before any time is spent executing.
    """
    if path.is_dir():
        raise NotebookFileError(path, "is a directory; give a notebook file name")
    fd, temp = _create_temp(path)
    os.close(fd)
    temp.unlink()


def write_notebook(notebook: NotebookNode, path: Path) -> None:
    """Write ``notebook`` to ``path`` atomically: all of it or, on any failure, nothing.

    The text goes to a temporary file in the same folder, which then replaces ``path``
    (``os.replace`` is atomic within a file system); a failure removes the temporary file.
    """
    data = nbformat.writes(notebook).encode("utf-8")  # type: ignore[no-untyped-call]
    fd, temp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o7777)
        os.replace(temp, path)
    except BaseException as error:
        temp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise NotebookFileError(path, f"cannot write it: {error.strerror}") from error
        raise


def _create_temp(path: Path) -> tuple[int, Path]:
    # os.open with mode 0o666 lets the umask decide permissions, as for any new file
    # (tempfile.mkstemp would make an owner-only notebook).
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.nbrepro-tmp")
    try:
        return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temp
    except OSError as error:
        reason = error.strerror or str(error)
        raise NotebookFileError(path, f"cannot write there: {reason}") from None


# -- the kernel ----------------------------------------------------------------------------


def kernel_environment(
    base: Mapping[str, str] | None = None, notebook_path: Path | None = None
) -> dict[str, str]:
    """The environment a fresh kernel starts with: ``base`` plus the process-start settings.

    ``PYTHONHASHSEED`` is fixed; ``CUBLAS_WORKSPACE_CONFIG`` is added (unless already set)
    when the installed torch is older than 2.10 (its version is read from the package
    metadata: importing torch here would cost seconds). ``JPY_SESSION_NAME`` carries the
    notebook's path, as jupyter_server sets it, for code that asks which notebook runs.
    """
    environment = dict(os.environ if base is None else base)
    environment[HASH_SEED_VARIABLE] = HASH_SEED_VALUE
    try:
        torch_version: str | None = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    if torch_version is not None and needs_cublas_variable(torch_version):
        environment.setdefault(CUBLAS_VARIABLE, CUBLAS_VALUE)
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
) -> Execution:
    """Execute ``notebook`` (read from ``path``) top to bottom in place, in a fresh kernel.

    The kernel runs in the notebook's folder. ``timeout`` is per cell, in seconds. Raises
    :class:`KernelError` when the kernel does not start or the preamble fails, and
    :class:`CellError` naming the cell that raised, timed out or killed the kernel; the
    notebook then holds the outputs up to and including that cell. ``on_preamble`` gets what
    the preamble printed (the ``%repro_seed`` summary), ``on_cell`` each finished code cell.
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
    code = preamble(seed, deterministic)
    setup_done = False
    try:
        async with client.async_setup_kernel(env=kernel_environment(notebook_path=path)):
            setup_done = True
            kc: Any = client.kc  # the async client class; typed as its base in nbclient
            session = kc.session
            reply = await client.async_wait_for_reply(await _maybe_await(kc.kernel_info()))
            if reply is not None and "language_info" in reply["content"]:
                notebook.metadata["language_info"] = reply["content"]["language_info"]
            if code is not None:
                printed = await _run_preamble(client, code)
                if on_preamble is not None:
                    on_preamble(printed)
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type != "code" or not _source(cell).strip():
                    continue
                ref = CellRef.of(notebook, index)
                session.cell_id = cell.get("id")
                cell_started = time.perf_counter()
                try:
                    await client.async_execute_cell(
                        cell, index, execution_count=client.code_cells_executed + 1
                    )
                except CellExecutionError as error:
                    raise CellError(ref, f"raised {error.ename}: {error.evalue}") from None
                except CellTimeoutError:
                    raise CellError(ref, f"did not finish within the {timeout} s timeout") from None
                except DeadKernelError:
                    raise CellError(ref, "killed the kernel (it died while the cell ran)") from None
                finally:
                    session.cell_id = None
                if on_cell is not None:
                    on_cell(ref, time.perf_counter() - cell_started)
            client.set_widgets_metadata()
    except NoSuchKernel as error:
        raise KernelError(f"no Jupyter kernel named {error.name!r} is installed") from None
    except (RuntimeError, TimeoutError, OSError) as error:
        if setup_done or isinstance(error, NbreproError):
            raise
        raise KernelError(f"the kernel did not start: {error}") from error
    return Execution(notebook, time.perf_counter() - started)


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
