"""Whether ``%repro_seed`` runs in a fresh runtime, and whether ``--restart`` should restart.

A notebook is only known to run from scratch when nothing but setup ran before its seed, and
every setting read at process start (``PYTHONHASHSEED``, the cuBLAS workspace, thread-pool
sizes) is in force.
"""

from __future__ import annotations

import ast
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from nbrepro._backends.jax import XLA_DETERMINISM_NOT_IN_FORCE, XLA_FLAGS_VARIABLE
from nbrepro._backends.torch import CUBLAS_VARIABLE
from nbrepro._findings import (
    CUBLAS_WORKSPACE_TOO_LATE,
    DRAWN_BEFORE_SEED,
    HASH_RANDOMIZATION,
    THREAD_SETTING_TOO_LATE,
    Finding,
)
from nbrepro._process_settings import (
    HASH_SEED_VARIABLE,
    assignments,
    process_start_settings,
    start_environment,
)
from nbrepro._restart import ensure_restartable
from nbrepro._runtime_record import Runtime, current_runtime, on_colab
from nbrepro._session import session
from nbrepro._status import Status
from nbrepro.errors import CannotRestartError

#: Findings about settings that only a new process can change.
PROCESS_START_CODES = frozenset(
    {
        HASH_RANDOMIZATION,
        CUBLAS_WORKSPACE_TOO_LATE,
        THREAD_SETTING_TOO_LATE,
        XLA_DETERMINISM_NOT_IN_FORCE,
    }
)

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
# What starts the kernels of JupyterLab, Notebook (7 and classic) and JupyterHub: programs,
# or modules run with `python -m`.
_SERVER_PROGRAMS = frozenset(
    {"jupyter-lab", "jupyter-notebook", "jupyter-server", "jupyter-nbclassic",
     "jupyterhub-singleuser", "jupyter-labhub"}
)  # fmt: skip
_SERVER_MODULES = frozenset({"jupyterlab", "notebook", "jupyter_server", "nbclassic"})


@dataclass(frozen=True)
class Freshness:
    """Whether ``%repro_seed`` ran in a fresh runtime, and if not, what made it used."""

    #: cells that ran before, other than setup, as ``"In [3] `x = random.random()`"``
    cells: tuple[str, ...]
    #: findings about settings only a new process can change (NBR101, NBR102, NBR103)
    settings: tuple[Finding, ...]
    runtime: Runtime | None  #: how nbrepro started this process, if it did
    #: the one way to a fresh runtime here, which depends on what runs the kernel
    fix: str = ""
    #: why nothing runs the notebook again after a restart here (a notebook runner), if so
    runs_once: str | None = None

    @property
    def fresh(self) -> bool:
        """Nothing but setup ran before, and every process-start setting is in force."""
        return not self.cells and not self.settings

    def __str__(self) -> str:
        if self.fresh:
            return "  fresh runtime: nothing ran before %repro_seed"
        if not self.cells:
            # A new kernel: the process-start findings are listed, each with this same fix.
            return "  nothing ran before %repro_seed"
        named = ", ".join(self.cells[:_CELLS_NAMED])
        if len(self.cells) > _CELLS_NAMED:
            named += f" and {len(self.cells) - _CELLS_NAMED} more"
        return (
            f"  not a fresh runtime: {named} ran before %repro_seed, so a run from the top will "
            f"not repeat what they did to random state and variables\n      fix: {self.fix}"
        )

    def reasons(self) -> str:
        """Why this runtime is not fresh, in one line (said before a restart)."""
        reasons = []
        if self.cells:
            reasons.append(f"{len(self.cells)} cell(s) ran before %repro_seed")
        for finding in self.settings:
            reasons.append(f"{finding.code} needs a new process ({_setting_names(finding)})")
        return "; ".join(reasons) or "nothing"

    def summary(self, status: Status) -> str:
        """What the first ``%repro_seed`` prints: ``status``, then this, each problem once.

        Findings about process-start settings carry this runtime's :attr:`fix` (the generic
        "start the kernel with ..." means %repro_restart in a kernel, ``nbrepro run`` under a
        notebook runner, a new process in terminal IPython), so that no two fixes differ; and
        NBR002 (draws before the seed) is left to the line that names the cells that ran.
        """
        findings = tuple(
            replace(f, fix=self.fix) if f.code in PROCESS_START_CODES and self.fix else f
            for f in status.findings
            # The cells named below say it, with this runtime's fix.
            if not (f.code == DRAWN_BEFORE_SEED and self.cells)
        )
        return f"{replace(status, findings=findings)}\n{self}"


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
    once = runs_once(shell)
    return Freshness(
        tuple(cells), settings, current_runtime(), _fix(shell, cells, settings, once), once
    )


def runs_once(shell: Any) -> str | None:
    """Why nothing will run the notebook again after a restart here, or ``None``.

    A person at a front end (JupyterLab, Notebook 7, VS Code, Colab) runs the notebook again
    after a restart. A notebook runner (nbclient, and so ``jupyter nbconvert --execute`` and
    papermill; ``nbrepro run``) runs each cell once and stops after the last, so a restart
    would leave every later cell unexecuted while the run reports success. They are told
    apart by what they send: JupyterLab, Notebook 7 and VS Code send each cell's id with its
    execute request (``metadata.cellId``), nbclient sends none; ``nbrepro run``, which does,
    marks its kernels with a runtime record. A classic Notebook server that sends no id is
    recognised as the kernel's parent process.
    """
    runtime = current_runtime()
    if runtime is not None and runtime.runner:
        return f"{runtime.started_by} started this kernel, and runs each cell once"
    if on_colab():
        return None
    kernel = getattr(shell, "kernel", None)
    get_parent = getattr(kernel, "get_parent", None)  # ipykernel >= 6
    request = get_parent("shell") if callable(get_parent) else {}
    if (request.get("metadata") or {}).get("cellId") or _jupyter_server_parent():
        return None
    return (
        "this cell came without a cell id, as notebook runners send cells (nbclient, jupyter "
        "nbconvert --execute, papermill), which run each cell once and stop after the last"
    )


def restart_refusal(freshness: Freshness) -> str | None:
    """Why ``%repro_seed --restart`` must not restart now, or ``None`` when a restart helps.

    Nothing restarts where no one would run the notebook again (a notebook runner). A runtime
    nbrepro started is restarted again by itself only when the session's configuration asks
    for a process-start setting it was not started with: otherwise the cells above
    ``%repro_seed`` (or a setting a restart cannot fix) would make the next run not fresh
    either, and every "Run All" would restart the kernel again.
    """
    if freshness.runs_once is not None:
        return (
            f"nbrepro: not restarting: {freshness.runs_once}; after a restart every later "
            "cell would be left unexecuted."
        )
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


def _fix(
    shell: Any, cells: Sequence[str], settings: Sequence[Finding], runs_once: str | None
) -> str:
    """The one way to a fresh runtime from here."""
    wanted = assignments(process_start_settings(session().config))
    try:
        ensure_restartable(shell)
    except CannotRestartError as error:
        if getattr(shell, "kernel", None) is not None:  # Windows, an in-process kernel
            return str(error)
        return (
            f"quit, start a new process with {wanted} in its environment (for example "
            f"`{wanted} ipython`), and run the code from the top"
        )
    if runs_once is not None:
        return (
            f"run the notebook with `nbrepro run NOTEBOOK`, which starts its kernel with "
            f"{wanted} and runs every cell once"
        )
    if on_colab() and not cells and _colab_cannot_fix(settings):
        return (
            "none on Colab, which cannot start a runtime with PYTHONHASHSEED set: keep "
            "results independent of the iteration order of sets of str (sort them)"
        )
    return (
        f"%repro_restart (a new kernel process with {wanted}), then run the notebook from the "
        "top; or %repro_seed --restart, which restarts by itself"
    )


def _jupyter_server_parent() -> bool:
    """Whether the process that started this kernel is a Jupyter server (Linux only)."""
    parent = start_environment().get("JPY_PARENT_PID") or str(os.getppid())
    try:
        with open(f"/proc/{int(parent)}/cmdline", "rb") as file:
            argv = [os.fsdecode(arg) for arg in file.read().split(b"\0") if arg]
    except (OSError, ValueError):
        return False
    names = {os.path.basename(arg) for arg in argv}
    modules = {module for flag, module in itertools.pairwise(argv) if flag == "-m"}
    return bool(names & _SERVER_PROGRAMS or modules & _SERVER_MODULES)


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


def _colab_cannot_fix(settings: Sequence[Finding]) -> bool:
    # Colab starts its runtimes with its own environment: a fixed hash seed is out of reach,
    # while the cuBLAS and thread settings only need %repro_seed to run before the frameworks.
    return all(finding.code == HASH_RANDOMIZATION for finding in settings)


def _setting_names(finding: Finding) -> str:
    if finding.code == HASH_RANDOMIZATION:
        return HASH_SEED_VARIABLE
    if finding.code == CUBLAS_WORKSPACE_TOO_LATE:
        return CUBLAS_VARIABLE
    if finding.code == XLA_DETERMINISM_NOT_IN_FORCE:
        return XLA_FLAGS_VARIABLE
    return "thread variables"
