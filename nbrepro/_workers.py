"""Seeding data-loading workers: distinct, repeatable seeds per worker and per rank."""

from __future__ import annotations

import os
import sys
from typing import Any

from nbrepro._config import make_config
from nbrepro._derive import derive_from
from nbrepro._fork import CHILD_BACKENDS
from nbrepro._session import session


def global_rank() -> int:
    """This process's rank under torch.distributed / DDP launchers, 0 when not distributed."""
    torch = sys.modules.get("torch")
    distributed = getattr(torch, "distributed", None)
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        return int(distributed.get_rank())
    for variable in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        value = os.environ.get(variable, "")
        if value.isdigit():
            return int(value)
    return 0


def worker_init_fn(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=nbrepro.worker_init_fn)``: seed a worker's generators.

    torch seeds each worker's ``random``, NumPy and torch from ``base_seed`` and the worker id
    (NumPy only since torch 1.9, PyTorch PR #56488), where ``base_seed`` comes from the main
    process's seeded torch generator; nbrepro gives each forked worker its own stream for
    unseeded generators (``default_rng()``, ``random.Random()``). What still repeats: under
    DDP every rank gets the same base seed and the same fork seeds, so every rank draws the
    same "random" augmentations. This seeds ``random``, NumPy, torch and that stream in the
    worker with ``derive_seed(initial_seed, "worker", worker_id, "rank", rank)``: different
    for every worker and rank, the same in every run.
    """
    torch = sys.modules["torch"]  # a DataLoader worker has torch loaded
    seed = derive_from(torch.initial_seed(), ("worker", worker_id, "rank", global_rank()))
    current = session()
    if current.seeded:  # a forked worker: it inherited the parent's session
        current.reseed_scope(seed, CHILD_BACKENDS)
    else:
        # A spawned worker (macOS, Windows, "spawn"/"forkserver" contexts) or a parent that
        # never seeded: give the worker a session of its own, so that its unseeded
        # default_rng()/Random() draw from a stream too.
        current.apply(make_config(seed), only=CHILD_BACKENDS)
        current.reseed_scope(seed, CHILD_BACKENDS)


def dataloader_generator(*keys: Any) -> Any:
    """A ``torch.Generator`` for ``DataLoader(generator=...)``, seeded by ``derive_seed``.

    A loader with its own generator shuffles the same way however many random numbers the
    model drew before it (initialisation, dropout), so data order and model randomness do
    not disturb each other.

    Raises:
        NoSeedError: no experiment seed is set (call ``nbrepro.seed()`` first).
    """
    import torch  # the caller asked for a torch object

    from nbrepro import derive_seed

    generator = torch.Generator()
    generator.manual_seed(derive_seed("dataloader", *keys))
    return generator
