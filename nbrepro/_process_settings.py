"""Settings a process reads once, at start or when a library loads: check and prepare them."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from nbrepro._config import Config
from nbrepro._findings import HASH_RANDOMIZATION, Finding, Severity, restart_fix

HASH_SEED_VARIABLE = "PYTHONHASHSEED"
HASH_SEED_VALUE = "0"

#: Read when OpenMP/BLAS runtimes and TensorFlow start: they size thread pools for
#: frameworks imported later and for worker processes (DataLoader, multiprocessing).
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


def start_environment() -> dict[str, str]:
    """The environment this process started with (not what ``os.environ`` says now).

    Linux keeps it in ``/proc/self/environ``, which an exec replaces (``%repro_restart``);
    elsewhere the current environment is the best available answer.
    """
    try:
        with open("/proc/self/environ", "rb") as environ:
            entries = environ.read().split(b"\0")
    except OSError:
        return dict(os.environ)
    environment = {}
    for entry in entries:
        name, equals, value = entry.partition(b"=")
        if equals:
            environment[os.fsdecode(name)] = os.fsdecode(value)
    return environment


def hash_seed_findings() -> list[Finding]:
    """A finding when ``str``/``bytes`` hashing is randomised in this process.

    ``PYTHONHASHSEED`` only takes effect at interpreter start, so setting it now cannot help
    this kernel, which is why the value is read from the process's start environment.
    """
    if not sys.flags.hash_randomization:
        return []  # PYTHONHASHSEED=0 at start
    value = start_environment().get(HASH_SEED_VARIABLE) or ""
    if value.isdigit():
        return []
    return [
        Finding(
            HASH_RANDOMIZATION,
            Severity.WARNING,
            "hash randomisation is on (PYTHONHASHSEED is "
            + (f"{value!r}" if value else "unset")
            + "): iterating a set of str or bytes gives a different order in every run",
            restart_fix({HASH_SEED_VARIABLE: HASH_SEED_VALUE}),
        )
    ]


def set_thread_variables(threads: int) -> None:
    """Export the thread-count variables for libraries loaded later and child processes."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)


def process_start_settings(
    config: Config | None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment a fresh runtime for ``config`` needs from its start.

    ``PYTHONHASHSEED`` always; the thread variables when ``config`` fixes the thread count;
    and what each installed framework's adapter asks for, read without importing it
    (:meth:`nbrepro.adapters.Backend.process_start_settings`: ``CUBLAS_WORKSPACE_CONFIG`` for
    a torch that needs it, ``XLA_FLAGS`` with XLA's determinism flag under
    ``--deterministic``). ``base`` is the environment the new process starts from (this
    process's start environment when not given): a variable holding a list of flags is
    returned merged with the one there.
    """
    # Imported here: the adapters read this module's start environment, so importing them
    # when this module loads would be circular.
    from nbrepro._backends import load_backends

    environ = start_environment() if base is None else base
    settings = {HASH_SEED_VARIABLE: HASH_SEED_VALUE}
    for backend in load_backends():
        settings.update(backend.process_start_settings(config, environ))
    if config is not None and config.threads is not None:
        settings.update(dict.fromkeys(THREAD_VARIABLES, str(config.threads)))
    return settings


def assignments(settings: dict[str, str]) -> str:
    """``settings`` as shell assignments: ``PYTHONHASHSEED=0 OMP_NUM_THREADS=2``."""
    return " ".join(f"{name}={value}" for name, value in settings.items())
