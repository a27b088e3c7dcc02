"""nbrepro: reproducible machine-learning notebooks.

In a notebook::

    %load_ext nbrepro
    %repro_seed 42 --deterministic

From Python::

    import nbrepro
    nbrepro.seed(42, deterministic=True)

Importing nbrepro imports no ML framework: frameworks the user imports later are seeded the
moment they are imported.
"""

from __future__ import annotations

from typing import Any

from nbrepro._api import (
    audit,
    capture_state,
    derive_seed,
    environment,
    export,
    fingerprint,
    jax_key,
    reset,
    restore_state,
    rng,
    seed,
    status,
)
from nbrepro._findings import Finding, Severity
from nbrepro._metric import metric
from nbrepro._session import RNGState
from nbrepro._status import FrameworkStatus, Status
from nbrepro._workers import dataloader_generator, worker_init_fn
from nbrepro.adapters import Backend
from nbrepro.errors import (
    CannotRestartError,
    CellError,
    InvalidOptionError,
    InvalidSeedError,
    KernelError,
    MissingDependencyError,
    NbreproError,
    NoSeedError,
    NotebookFileError,
    NotebookNotFoundError,
    NotInIPythonError,
    RecordError,
    StateMismatchError,
)

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "CannotRestartError",
    "CellError",
    "Finding",
    "FrameworkStatus",
    "InvalidOptionError",
    "InvalidSeedError",
    "KernelError",
    "MissingDependencyError",
    "NbreproError",
    "NoSeedError",
    "NotInIPythonError",
    "NotebookFileError",
    "NotebookNotFoundError",
    "RNGState",
    "RecordError",
    "Severity",
    "StateMismatchError",
    "Status",
    "__version__",
    "audit",
    "capture_state",
    "dataloader_generator",
    "derive_seed",
    "environment",
    "export",
    "fingerprint",
    "jax_key",
    "load_ipython_extension",
    "metric",
    "reset",
    "restore_state",
    "rng",
    "seed",
    "status",
    "unload_ipython_extension",
    "worker_init_fn",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbrepro``: register the magics and the cell hooks."""
    from nbrepro._cell_hooks import register
    from nbrepro._ipython_draws import keep_ipython_off_the_global_stream
    from nbrepro._magics import ReproMagics
    from nbrepro._session import session

    ipython.register_magics(ReproMagics)
    register(ipython, session())
    keep_ipython_off_the_global_stream()


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbrepro``: remove every hook and magic, undo every setting."""
    from nbrepro._cell_hooks import unregister
    from nbrepro._ipython_draws import restore
    from nbrepro._magics import ReproMagics

    unregister(ipython)
    restore()
    for kind, names in ReproMagics.magics.items():
        for name in names:
            ipython.magics_manager.magics[kind].pop(name, None)
    reset()
