"""Errors raised by nbrepro.

Every error is an :class:`NbreproError`, mixed with the builtin it is a kind of,
so callers may catch either::

    NbreproError
    ├── InvalidSeedError          (ValueError)   a seed outside 0..2**31-1, or not an integer
    ├── InvalidOptionError        (ValueError)   a bad option value (threads, keys, ...)
    ├── NoSeedError               (RuntimeError) an experiment seed is needed and none is set
    ├── NotInIPythonError         (RuntimeError) an IPython-only feature used outside IPython
    ├── CannotRestartError        (RuntimeError) no kernel nbrepro can restart (terminal, Windows)
    ├── MissingDependencyError    (ImportError)  an optional package is needed and not installed
    ├── StateMismatchError        (ValueError)   a captured RNG state does not fit this session
    ├── RecordError               (ValueError)   a notebook's nbrepro record is corrupt/newer
    ├── NotebookNotFoundError     (LookupError)  the running notebook's file cannot be found
    ├── NotebookFileError         (OSError)      a notebook file unreadable, invalid, unwritable
    ├── KernelError               (RuntimeError) a kernel did not start, or the preamble failed
    └── CellError                 (RuntimeError) a cell raised, timed out or killed its kernel
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "CannotRestartError",
    "CellError",
    "InvalidOptionError",
    "InvalidSeedError",
    "KernelError",
    "MissingDependencyError",
    "NbreproError",
    "NoSeedError",
    "NotInIPythonError",
    "NotebookFileError",
    "NotebookNotFoundError",
    "RecordError",
    "StateMismatchError",
]


class NbreproError(Exception):
    """Base class of every error nbrepro raises."""


class InvalidSeedError(NbreproError, ValueError):
    """A seed that is not an integer in 0..2**31-1."""


class InvalidOptionError(NbreproError, ValueError):
    """An option with a value outside what it allows."""


class NoSeedError(NbreproError, RuntimeError):
    """An experiment seed is needed, and ``nbrepro.seed()`` / ``%repro_seed`` has not run."""


class NotInIPythonError(NbreproError, RuntimeError):
    """A feature that needs a running IPython shell was used outside one."""


class CannotRestartError(NbreproError, RuntimeError):
    """``%repro_restart`` where there is no kernel it can restart in place.

    Outside a Jupyter kernel (plain Python, terminal IPython, an in-process kernel) and on
    Windows, whose processes cannot be replaced in place. The message says how to start a
    fresh process with the right settings instead.
    """


class MissingDependencyError(NbreproError, ImportError):
    """An optional dependency is needed for what was asked, and is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs {package!r}, which is not installed. "
            f"Install it with: pip install 'nbrepro[{extra}]'"
        )
        self.package = package
        self.extra = extra


class StateMismatchError(NbreproError, ValueError):
    """A captured RNG state that cannot be restored into this session."""


class RecordError(NbreproError, ValueError):
    """A ``metadata["nbrepro"]`` record that is corrupt, foreign, or of a newer schema."""


class NotebookNotFoundError(NbreproError, LookupError):
    """The kernel cannot tell which notebook it runs; the message says what to pass."""


class NotebookFileError(NbreproError, OSError):
    """A notebook that cannot be read or is not a notebook; an output that cannot be written."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class KernelError(NbreproError, RuntimeError):
    """The kernel did not start, or nbrepro's silent preamble failed in it."""


class CellError(NbreproError, RuntimeError):
    """A cell raised, ran past the timeout, or the kernel died while it ran."""

    def __init__(self, cell: object, problem: str) -> None:
        super().__init__(f"{cell} {problem}")
        self.cell = cell  #: the cell (an ``nbrepro._execute.CellRef``)
        self.problem = problem
