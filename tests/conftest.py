"""Shared fixtures: every test starts from an unseeded process state and leaves none behind."""

from __future__ import annotations

import copy
import os
import queue
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import nbrepro
from nbrepro._process_settings import HASH_SEED_VARIABLE
from nbrepro._runtime_record import RUNTIME_VARIABLE


@pytest.fixture(autouse=True)
def clean_session() -> Iterator[None]:
    """Undo whatever a test seeded, hooked or switched, and restore ``os.environ``."""
    environ = dict(os.environ)
    nbrepro.reset()
    yield
    nbrepro.reset()
    os.environ.clear()
    os.environ.update(environ)


@pytest.fixture
def python() -> str:
    """The interpreter running the tests, for subprocess checks of import behaviour."""
    return sys.executable


@pytest.fixture
def run_fresh(python: str) -> Callable[..., list[str]]:
    """Run each snippet in its own fresh interpreter, all at once; return their stdouts.

    Keyword arguments are added to the environment; TensorFlow's C++ logging is off.
    """

    def run(*codes: str, **env: str) -> list[str]:
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env}
        processes = [
            subprocess.Popen(
                [python, "-c", textwrap.dedent(code)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=environment,
            )
            for code in codes
        ]
        outputs = [process.communicate() for process in processes]
        for process, code, (_, stderr) in zip(processes, codes, outputs, strict=True):
            assert process.returncode == 0, f"{code}\nexited {process.returncode}:\n{stderr}"
        return [stdout for stdout, _ in outputs]

    return run


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody can write into, root included (root ignores permission bits, so it
    gets the immutable attribute as well)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    if os.geteuid() == 0:
        chattr = shutil.which("chattr")
        if chattr is None:
            pytest.skip("running as root without chattr: cannot make a read-only folder")
        immutable = subprocess.run([chattr, "+i", folder], capture_output=True).returncode == 0
        if not immutable:
            pytest.skip("running as root and chattr +i is refused: no read-only folder")
    yield folder
    if immutable:
        subprocess.run([shutil.which("chattr") or "chattr", "-i", folder], check=True)
    folder.chmod(0o755)


@pytest.fixture
def shell() -> Iterator[Any]:
    """A real IPython shell (terminal-like: no kernel) with nbrepro loaded; unloaded after."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "nbrepro")
    yield ip
    ip.run_line_magic("unload_ext", "nbrepro")


@pytest.fixture
def run_cell(shell: Any) -> Callable[..., Any]:
    """Run code in :func:`shell` as a notebook cell, with a front end's cell id if given.

    Returns the cell's result; the test fails if the cell raises.
    """

    def run(code: str, cell_id: str | None = None) -> Any:
        result = shell.run_cell(code, store_history=True, cell_id=cell_id)
        result.raise_error()
        return result.result

    return run


# Variables a kernel started by a front end would not have.
_START_SETTINGS = {HASH_SEED_VARIABLE, RUNTIME_VARIABLE}


class Kernel:
    """A real kernel driven message by message, as a front end does; every wait times out.

    It starts as a front end's kernel would: without the process-start settings (a fixed
    hash seed, nbrepro's runtime record) that the test run itself may have.
    """

    def __init__(self, **env: str) -> None:
        from jupyter_client.manager import start_new_kernel

        environment = {k: v for k, v in os.environ.items() if k not in _START_SETTINGS}
        self.manager, self.client = start_new_kernel(
            kernel_name="python3",
            startup_timeout=60,
            env={**environment, "PYTHONWARNINGS": "ignore", **env},
        )
        self.replies: dict[str, dict[str, Any]] = {}
        self.stdout: dict[str, str] = {}
        self.idle: set[str] = set()
        self.session = self.reply(self.client.kernel_info())["header"]["session"]

    def send(self, code: str, store_history: bool = True, cell_id: str | None = None) -> str:
        """Queue ``code`` for execution; return the request's id.

        With ``cell_id``, the request carries it in its metadata (``cellId``) as JupyterLab
        sends it; ipykernel passes it to IPython as ``info.cell_id``.
        """
        if cell_id is None:
            return str(self.client.execute(code, store_history=store_history, stop_on_error=True))
        content = {
            "code": code,
            "silent": False,
            "store_history": store_history,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        request = self.client.session.msg("execute_request", content, metadata={"cellId": cell_id})
        self.client.shell_channel.send(request)
        return str(request["header"]["msg_id"])

    def reply(self, msg_id: str, timeout: float = 30) -> dict[str, Any]:
        """The shell reply to ``msg_id``."""
        deadline = time.monotonic() + timeout
        while msg_id not in self.replies:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply to {msg_id} in {timeout} s")
            try:
                message = self.client.get_shell_msg(timeout=left)
            except queue.Empty:
                continue
            self.replies[message["parent_header"].get("msg_id", "")] = message
        return self.replies[msg_id]

    def output(self, msg_id: str, timeout: float = 30) -> str:
        """Everything ``msg_id`` printed, once the kernel went idle after it."""
        deadline = time.monotonic() + timeout
        while msg_id not in self.idle:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{msg_id} did not finish in {timeout} s")
            try:
                message = self.client.get_iopub_msg(timeout=left)
            except queue.Empty:
                continue
            parent = message["parent_header"].get("msg_id", "")
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                self.stdout[parent] = self.stdout.get(parent, "") + content["text"]
            elif kind == "error":
                self.stdout[parent] = self.stdout.get(parent, "") + "\n".join(content["traceback"])
            elif kind == "status" and content["execution_state"] == "idle":
                self.idle.add(parent)
        return self.stdout.get(msg_id, "")

    def run(self, code: str, store_history: bool = True, cell_id: str | None = None) -> str:
        """Execute ``code``, fail unless it succeeds; return what it printed."""
        msg_id = self.send(code, store_history, cell_id)
        reply = self.reply(msg_id)
        printed = self.output(msg_id)
        assert reply["content"]["status"] == "ok", printed
        return printed

    def wait_for_new_process(self, timeout: float = 30) -> None:
        """Until a kernel with a new session id answers on the same connection.

        And until its IOPub messages arrive: the SUB socket reconnects on its own, and what
        the kernel publishes before it has (its first replies' status) is lost, which is why
        jupyter_client's ``wait_for_ready`` also waits for IOPub.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            request = self.client.kernel_info()
            try:
                reply = self.reply(request, timeout=1)
            except TimeoutError:
                continue  # sent while the old process was being replaced
            if reply["header"]["session"] == self.session:
                time.sleep(0.1)
                continue
            try:
                self.output(request, timeout=1)
            except TimeoutError:
                continue
            self.session = reply["header"]["session"]
            return
        raise TimeoutError(f"the kernel did not come back in {timeout} s")

    def close(self) -> None:
        """Stop the kernel and the channels."""
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@pytest.fixture
def kernel() -> Iterator[Callable[..., Kernel]]:
    """Start real kernels (keyword arguments go into their environment); stop them after."""
    started: list[Kernel] = []

    def start(**env: str) -> Kernel:
        started.append(Kernel(**env))
        return started[-1]

    yield start
    for each in started:
        each.close()


@pytest.fixture
def run_notebook() -> Callable[..., Any]:
    """Run a notebook top to bottom in a fresh kernel, as a user's "Run All" would.

    ``run(notebook, folder, timeout=600, **env)`` executes a copy of ``notebook`` with
    ``folder`` as the kernel's working folder and returns the executed copy. ``env`` is added
    to this process's environment; a value of ``None`` removes that variable.
    """
    from nbclient import NotebookClient

    def run(notebook: Any, folder: Path, timeout: int = 600, **env: str | None) -> Any:
        executed = copy.deepcopy(notebook)
        environment = {**os.environ, **{k: v for k, v in env.items() if v is not None}}
        for name in [k for k, v in env.items() if v is None]:
            environment.pop(name, None)
        NotebookClient(
            executed,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(folder)}},
        ).execute(env=environment)
        return executed

    return run
