"""IPython cell events: name the running cell, reseed before it in per-cell mode, audit after,
and say each new finding once, on one line, under the cell that caused it.

Where the lines go: a ``post_run_cell`` callback runs while the kernel still handles the cell's
execute request, so what it writes to ``sys.stderr`` becomes a stream output of that very cell
(checked with ipykernel 7 and 6.17, Colab's). stderr rather than a display: ``nbrepro verify``
leaves stderr out of its comparisons, and a finding may name values that vary.

Which findings are "new": each finding has a display key, its code and message with the cell
labels (``In [3]``) taken out, scoped to the cell for the static findings of a cell (its id, or
its source where the front end sends no id) and to the session for the rest. A key is shown
once; it is forgotten when the finding goes away (the cell was fixed and rerun, the setting
changed), so the finding is shown again if it comes back. Rerunning a cell with the same
finding shows nothing new. A cell that loads nbrepro or seeds it prints its own summary, so
what the session holds at its end counts as said (only that cell's static findings get lines).
Severity ``info`` is never shown; ``quiet`` shows nothing.

The cell's number: IPython 9.8 raises ``execution_count`` before ``pre_run_cell``, earlier
releases after the cell, so the label is read accordingly there (it is what findings made
during the cell name) and taken from ``post_run_cell``'s ``result.execution_count`` after it.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import IPython

from nbrepro._audit import audit, audit_cell
from nbrepro._findings import Finding, Severity
from nbrepro._session import Session

_HOOKS: dict[int, Any] = {}
_T = TypeVar("_T")

# IPython 9.8 raises execution_count before pre_run_cell, earlier releases after the cell ran
# (ipython/ipython@aaa5a45, "execution count more atomic").
_COUNT_RAISED_FIRST = tuple(IPython.version_info[:2]) >= (9, 8)

_CELL_LABELS = re.compile(r"In \[\d+\](?:, In \[\d+\])*(?: and \d+ more cells)?|this cell")
_SHOWN_SEVERITIES = (Severity.ERROR, Severity.WARNING)

Key = tuple[str, str, str]  # (scope: "" for the session or the cell's, code, message)


def display_key(finding: Finding, scope: str = "") -> Key:
    """What makes a finding the same one again, wherever it is reported from."""
    return (scope, finding.code, _CELL_LABELS.sub("<cell>", finding.message))


class CellHooks:
    """The ``pre_run_cell`` and ``post_run_cell`` callbacks nbrepro registers on a shell."""

    def __init__(self, shell: Any, session: Session) -> None:
        self.shell = shell
        self.session = session
        self.shown: set[Key] = set()
        self._config_before: object = None
        self._ran_pre = False  # False in the cell that loaded nbrepro: it ran no pre_run_cell
        self._failures: set[tuple[str, str]] = set()

    @property
    def in_cell(self) -> bool:
        """Between this shell's ``pre_run_cell`` and ``post_run_cell``."""
        return self._ran_pre

    def pre_run_cell(self, info: Any) -> None:
        """Before each cell: remember which cell runs; reseed it in per-cell mode.

        ``info.cell_id`` arrives from JupyterLab, Notebook 7 and VS Code (IPython >= 7.33
        with ipykernel >= 6.11); where it is missing, the cell's source stands in.
        """
        self._guard("before the cell", self._before, info)

    def post_run_cell(self, result: Any) -> None:
        """After each cell: check it, update listeners, then say what is new under it."""
        # A cell that loaded nbrepro (it ran no pre_run_cell) or seeded it printed a summary.
        summarised = not self._ran_pre or self.session.config is not self._config_before
        self._ran_pre = False
        checked = self._guard("after the cell", self._check, result)
        self.session.notify()  # listeners may add findings (forked workers' draws)
        if checked is not None:
            found, scope = checked
            self._guard("after the cell", self._say, found, scope, summarised)

    def _before(self, info: Any) -> None:
        session = self.session
        if getattr(info, "store_history", True):
            count = self.shell.execution_count - int(_COUNT_RAISED_FIRST)
            session.current_cell = f"In [{count}]"
        else:  # a tool's code, run without a number (a variable explorer's query)
            session.current_cell = None
        self._config_before = session.config
        self._ran_pre = True
        config = session.config
        if config is not None and config.per_cell:
            session.reseed_cell(getattr(info, "cell_id", None), getattr(info, "raw_cell", "") or "")

    def _check(self, result: Any) -> tuple[list[Finding], str] | None:
        """The static look at the cell: its findings and its scope (None: an empty cell)."""
        session = self.session
        info = getattr(result, "info", None)
        source = getattr(info, "raw_cell", "") or ""
        if not source.strip():  # IPython ran nothing (and numbered nothing)
            return None
        cell_id = getattr(info, "cell_id", None)
        count = getattr(result, "execution_count", None)
        if count is not None and getattr(info, "store_history", False):
            session.current_cell = f"In [{count}]"  # the number the front end shows
        found = audit_cell(
            session, source, session.current_cell, key=cell_id, namespace=self.shell.user_ns
        )
        return found, cell_id or f"source:{hash(source)}"

    def _say(self, found: list[Finding], scope: str, summarised: bool) -> None:
        session = self.session
        static = {f for findings in session.cell_findings.values() for f in findings}
        rest = [f for f in audit(session, self.shell.user_ns) if f not in static]
        new = self.new_findings(found, scope, rest, show=not summarised)
        config = session.config
        if new and not (config is not None and config.quiet):
            sys.stderr.write("".join(f"nbrepro {f.line()}\n" for f in new))

    def new_findings(
        self, cell: list[Finding], scope: str, session: Iterable[Finding], show: bool = True
    ) -> list[Finding]:
        """The warnings and errors among ``cell`` (this cell's static findings, under
        ``scope``) and ``session`` (the rest, but other cells' static ones) not shown
        before; remembers them.

        ``show=False`` counts the session's findings as shown without returning them: a cell
        that loads nbrepro or seeds it prints them in its own summary.
        """
        in_cell = set(cell)
        current = [(display_key(f, scope), f) for f in cell]
        current += [(display_key(f), f) for f in session]
        present = {key for key, _ in current}
        self.shown = {k for k in self.shown if k[0] not in ("", scope) or k in present}
        new = []
        for key, finding in current:
            if key in self.shown:
                continue
            self.shown.add(key)
            if finding.severity in _SHOWN_SEVERITIES and (show or finding in in_cell):
                new.append(finding)
        return new

    def _guard(self, stage: str, call: Callable[..., _T], *arguments: Any) -> _T | None:
        # IPython prints a traceback under the cell for a callback that raises, and would under
        # every cell after it: warn once per distinct failure instead, and carry on.
        try:
            return call(*arguments)
        except Exception as error:
            failure = (stage, f"{type(error).__name__}: {error}")
            if failure not in self._failures:
                self._failures.add(failure)
                warnings.warn(
                    f"nbrepro: its check {stage} failed ({failure[1]}); the cell itself ran. "
                    "Please report this to nbrepro",
                    stacklevel=2,
                )
            return None


def register(shell: Any, session: Session) -> None:
    """Register the hooks on ``shell`` once."""
    if id(shell) in _HOOKS:
        return
    hooks = CellHooks(shell, session)
    shell.events.register("pre_run_cell", hooks.pre_run_cell)
    shell.events.register("post_run_cell", hooks.post_run_cell)
    _HOOKS[id(shell)] = hooks


def in_a_cell() -> bool:
    """Whether a shell with nbrepro's hooks is running a cell now: what is found meanwhile
    is said under it when it ends."""
    return any(hooks.in_cell for hooks in _HOOKS.values())


def unregister(shell: Any) -> None:
    """Remove the hooks :func:`register` added to ``shell``."""
    hooks = _HOOKS.pop(id(shell), None)
    if hooks is not None:
        shell.events.unregister("pre_run_cell", hooks.pre_run_cell)
        shell.events.unregister("post_run_cell", hooks.post_run_cell)
