"""IPython cell events: name the running cell, reseed before it in per-cell mode, audit after."""

from __future__ import annotations

from typing import Any

from nbrepro._audit import audit_cell
from nbrepro._session import Session

_HOOKS: dict[int, Any] = {}


class CellHooks:
    """The ``pre_run_cell`` and ``post_run_cell`` callbacks nbrepro registers on a shell."""

    def __init__(self, shell: Any, session: Session) -> None:
        self.shell = shell
        self.session = session

    def pre_run_cell(self, info: Any) -> None:
        """Before each cell: remember which cell runs; reseed it in per-cell mode.

        ``info.cell_id`` arrives from JupyterLab, Notebook 7 and VS Code (IPython >= 7.33
        with ipykernel >= 6.11); where it is missing, the cell's source stands in.
        """
        self.session.current_cell = f"In [{self.shell.execution_count}]"
        config = self.session.config
        if config is not None and config.per_cell:
            self.session.reseed_cell(
                getattr(info, "cell_id", None), getattr(info, "raw_cell", "") or ""
            )

    def post_run_cell(self, result: Any) -> None:
        """After each cell: check it for leftover nondeterminism, then update listeners."""
        info = getattr(result, "info", None)
        source = getattr(info, "raw_cell", "") or ""
        cell_id = getattr(info, "cell_id", None)
        audit_cell(self.session, source, self.session.current_cell, key=cell_id)
        self.session.notify()


def register(shell: Any, session: Session) -> None:
    """Register the hooks on ``shell`` once."""
    if id(shell) in _HOOKS:
        return
    hooks = CellHooks(shell, session)
    shell.events.register("pre_run_cell", hooks.pre_run_cell)
    shell.events.register("post_run_cell", hooks.post_run_cell)
    _HOOKS[id(shell)] = hooks


def unregister(shell: Any) -> None:
    """Remove the hooks :func:`register` added to ``shell``."""
    hooks = _HOOKS.pop(id(shell), None)
    if hooks is not None:
        shell.events.unregister("pre_run_cell", hooks.pre_run_cell)
        shell.events.unregister("post_run_cell", hooks.post_run_cell)
