"""IPython cell events: name the running cell, and reseed before it in per-cell mode."""

from __future__ import annotations

from typing import Any

from nbrepro._session import Session

_HOOKS: dict[int, Any] = {}


class CellHooks:
    """The ``pre_run_cell`` callback nbrepro registers on a shell."""

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


def register(shell: Any, session: Session) -> None:
    """Register the hooks on ``shell`` once."""
    if id(shell) in _HOOKS:
        return
    hooks = CellHooks(shell, session)
    shell.events.register("pre_run_cell", hooks.pre_run_cell)
    _HOOKS[id(shell)] = hooks


def unregister(shell: Any) -> None:
    """Remove the hooks :func:`register` added to ``shell``."""
    hooks = _HOOKS.pop(id(shell), None)
    if hooks is not None:
        shell.events.unregister("pre_run_cell", hooks.pre_run_cell)
