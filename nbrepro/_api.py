"""The plain Python API; the magics are a thin layer over these functions."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from nbrepro import _audit
from nbrepro._config import make_config, validate_seed
from nbrepro._derive import derive_from
from nbrepro._findings import Finding
from nbrepro._session import RNGState, session
from nbrepro._status import Status, snapshot
from nbrepro.errors import MissingDependencyError, NoSeedError, NotInIPythonError

if TYPE_CHECKING:
    from nbrepro._record_schema import Fingerprint, Machine


def seed(
    seed: int | None = None,
    *,
    deterministic: bool = False,
    strict: bool = False,
    per_cell: bool = False,
    threads: int | None = None,
    quiet: bool = False,
) -> Status:
    """Seed every PRNG that is loaded now, and each framework the moment it is imported.

    Args:
        seed: the experiment seed, an integer from 0 to 2**31-1. ``None`` draws one from OS
            entropy; it is recorded as auto-assigned and shown, so the run can be repeated.
        deterministic: switch the frameworks to deterministic kernels (torch deterministic
            algorithms, cuDNN benchmark off, TensorFlow op determinism, the cuBLAS workspace
            variable on torch releases that need it). A torch op with no deterministic
            implementation still runs, with a warning, and is recorded as a finding.
        strict: like ``deterministic``, but such an op raises.
        per_cell: in IPython, reseed every PRNG before each cell with a seed derived from the
            experiment seed and the cell's id (or, where the front end sends no id, the cell's
            source), so a cell's randomness does not depend on which cells ran before it.
        threads: fix intra- and inter-op thread counts (CPU floating-point reproducibility),
            an integer from 1 to 1024.
        quiet: in IPython, do not print a line under a cell for each new warning or error
            finding it caused (``status()`` and the panel still list them).

    Returns:
        The :class:`~nbrepro.Status` in force, with findings for what this process cannot
        fix any more (settings read only at process start).

    Raises:
        InvalidSeedError, InvalidOptionError: a bad value (an option that is not ``True``
            or ``False``, a thread count outside 1..1024); nothing was changed.
        NotInIPythonError: ``per_cell`` outside IPython; nothing was changed.
    """
    config = make_config(
        seed,
        deterministic=deterministic,
        strict=strict,
        per_cell=per_cell,
        threads=threads,
        quiet=quiet,
    )
    shell = _shell()
    if config.per_cell and shell is None:
        raise NotInIPythonError(
            "per_cell=True reseeds before each cell and needs an IPython shell; outside "
            "one, call nbrepro.seed() where each step starts, or use derive_seed()"
        )
    current = session()
    current.apply(config)
    if shell is not None:
        from nbrepro._cell_hooks import register
        from nbrepro._ipython_draws import keep_ipython_off_the_global_stream

        register(shell, current)
        keep_ipython_off_the_global_stream()  # as %load_ext does: nbrepro.seed() alone suffices
    return snapshot(current, _namespace())


def status() -> Status:
    """What is in force now: seed, options, frameworks, findings (see :func:`audit`)."""
    return snapshot(session(), _namespace())


def audit() -> list[Finding]:
    """What is still not reproducible in this session, most severe first.

    Each :class:`~nbrepro.Finding` has a stable ``code`` (the table in README.md), a
    ``severity``, a one-line ``message`` naming the op, cell, variable or setting, and the
    ``fix``. Combines what seeding could not fix (process-start settings), nondeterministic
    ops that ran, a static look at every cell that ran (in IPython), and the determinism
    switches of the frameworks imported now.
    """
    return _audit.audit(session(), _namespace())


def derive_seed(*keys: int | str | bytes, seed: int | None = None) -> int:
    """A seed in 0..2**31-1 derived from the experiment seed (or ``seed``) and ``keys``.

    A pure function: the same seed and keys give the same result in every process, on every
    platform and in every nbrepro release (see ``nbrepro._derive`` for the definition). Use it
    for trial seeds in a hyperparameter search (``derive_seed("trial", 3)``), worker seeds, or
    anything that needs its own independent stream.

    Raises:
        NoSeedError: ``seed`` is not given and no experiment seed is set.
        InvalidSeedError: ``seed`` is not in 0..2**31-1.
        InvalidOptionError: a key that is not an ``int``, ``str`` or ``bytes``.
    """
    if seed is not None:
        return derive_from(validate_seed(seed), keys)
    config = session().config
    if config is None:
        raise NoSeedError(
            "derive_seed() needs the experiment seed: run %repro_seed / nbrepro.seed() "
            "first, or pass seed="
        )
    return derive_from(config.seed, keys)


def rng(*keys: int | str | bytes, seed: int | None = None) -> Any:
    """A NumPy ``Generator`` seeded with ``derive_seed(*keys, seed=seed)``.

    Raises:
        MissingDependencyError: NumPy is not installed.
    """
    derived = derive_seed(*keys, seed=seed)
    try:
        import numpy as np  # the caller asked for a NumPy object
    except ImportError as error:
        raise MissingDependencyError("numpy", "numpy", "nbrepro.rng()") from error
    return np.random.default_rng(derived)


def jax_key(*keys: int | str | bytes, seed: int | None = None) -> Any:
    """A JAX key made from ``derive_seed(*keys, seed=seed)``: ``jax.random.key(derived)``.

    JAX has no global generator, so this is where a notebook's keys should come from:
    ``key = nbrepro.jax_key("init")``, then ``jax.random.split`` as usual. The key is a
    typed key array (``jax.random.key``, JAX >= 0.4.16), of JAX's default implementation
    (``jax_default_prng_impl``, threefry unless configured); wrap it in
    ``jax.random.key_data`` where code expects an old-style ``uint32`` ``PRNGKey``.

    Raises:
        MissingDependencyError: JAX is not installed.
    """
    derived = derive_seed(*keys, seed=seed)
    try:
        import jax  # the caller asked for a JAX object
    except ImportError as error:
        raise MissingDependencyError("jax", "jax", "nbrepro.jax_key()") from error
    return jax.random.key(derived)


def capture_state() -> RNGState:
    """The state of every PRNG nbrepro covers, to pause now and resume later.

    Covers ``random``, NumPy's global RNG, torch (CPU, CUDA, MPS), TensorFlow (global seed,
    op seeds, global ``tf.random.Generator``), Keras's global seed generator, generators
    created without a seed that nbrepro seeded (by creation order), and nbrepro's own seed
    stream. The result pickles; restoring it into a process that ran the same code continues
    every sequence exactly.
    """
    return session().capture()


def restore_state(state: RNGState) -> None:
    """Restore a :func:`capture_state` result; on a mismatch raises and changes nothing.

    Raises:
        StateMismatchError: not an ``RNGState``, a newer format, or it names frameworks this
            process has not imported or more unseeded generators than it has created.
    """
    session().restore(state)


def environment() -> Machine:
    """Python, OS, CPU, GPU(s), CUDA/cuDNN, package versions, process-start settings.

    Environment variables enter by allowlist only (``env_vars``); secret-looking values are
    redacted. Imports no framework: GPU facts come from torch/TensorFlow only if imported.
    """
    from nbrepro._environment import environment as machine

    return machine()


def fingerprint(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> dict[str, Fingerprint]:
    """Fingerprint data files and folders, and record them for the notebook's record.

    Each file is read once (SHA-256, files in parallel); a cache keyed by size, mtime and
    inode makes an unchanged re-check near-instant. When the data differs from what this
    session or the notebook's embedded record saw, ``audit()`` reports NBR601 naming what
    changed (files added, removed, edited). Only regular files are read: FIFOs, sockets
    and devices inside a folder are listed under ``skipped``. Ctrl-C stops it at once.

    Raises:
        InvalidOptionError: a path that does not exist, is not a regular file or folder
            (a FIFO, ``/dev/zero``), or cannot be read; nothing is recorded.
    """
    from nbrepro._export import record_data

    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    names = [os.fspath(p) for p in paths]
    record_data(session(), names, _namespace())
    return {name: session().data[name] for name in names}


def fingerprint_summary(fingerprints: dict[str, Fingerprint]) -> list[tuple[str, str]]:
    """One line per fingerprint: what it covers, its digest prefix, what was skipped."""
    lines = []
    for path, fp in fingerprints.items():
        line = f"{fp['size']:,} bytes, sha256 {fp['sha256'][:12]}"
        if fp["kind"] == "dir":
            line = f"{fp['files']} files, {line}"
            skipped = fp.get("skipped", [])
            if skipped:
                shown = ", ".join(skipped[:3]) + (", …" if len(skipped) > 3 else "")
                line += f"; skipped {len(skipped)} not regular files, not read ({shown})"
        lines.append((path, line))
    return lines


def export(target: str | None = None, *, source: str | None = None, overwrite: bool = False) -> Any:
    """Write the running notebook with its record embedded; see ``%repro_export``."""
    from nbrepro._export import export as write

    return write(session(), _namespace() or {}, target, source=source, overwrite=overwrite)


def reset() -> None:
    """Undo everything nbrepro changed: hooks, patches, determinism settings, the seed."""
    shell = _shell()
    if shell is not None:
        from nbrepro._cell_hooks import unregister

        unregister(shell)
    session().reset()


def _namespace() -> dict[str, Any] | None:
    shell = _shell()
    return None if shell is None else shell.user_ns


def _shell() -> Any:
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    return get_ipython()
