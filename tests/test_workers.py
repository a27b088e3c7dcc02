"""nbrepro.worker_init_fn and nbrepro.dataloader_generator with real DataLoader workers."""

from __future__ import annotations

import multiprocessing
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

import nbrepro

if TYPE_CHECKING:
    import numpy as np
    import torch
else:  # optional: without them this module is skipped, not an error
    torch = pytest.importorskip("torch")
    np = pytest.importorskip("numpy")

# The workers must inherit the seeded session, as they do when forked (Linux's default).
pytestmark = [
    pytest.mark.torch,
    pytest.mark.skipif(
        "fork" not in multiprocessing.get_all_start_methods(), reason="needs fork workers"
    ),
]

# Columns of a sample: the index, the worker that loaded it, then its random augmentations.
INDEX, WORKER, NUMPY, RANDOM, TORCH, UNSEEDED = range(6)


class AugmentedDataset(torch.utils.data.Dataset[torch.Tensor]):
    """Eight samples whose "augmentation" draws from every generator a worker may use."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> torch.Tensor:
        worker = torch.utils.data.get_worker_info()
        return torch.tensor(
            [
                index,
                worker.id if worker is not None else -1,
                np.random.random(),
                random.random(),
                torch.rand(()).item(),
                np.random.default_rng().random(),  # nbrepro seeds it from its stream
            ],
            dtype=torch.float64,
        )


def _load(
    worker_init_fn: Callable[[int], None] | None = None,
    generator: torch.Generator | None = None,
    context: str = "fork",
) -> torch.Tensor:
    """Every sample of one shuffled pass with two workers, in the order loaded."""
    loader = torch.utils.data.DataLoader(
        AugmentedDataset(),
        batch_size=2,
        shuffle=True,
        num_workers=2,
        multiprocessing_context=context,
        worker_init_fn=worker_init_fn,
        generator=generator,
    )
    return torch.cat(list(loader))


def _by_worker(samples: torch.Tensor, column: int) -> tuple[torch.Tensor, torch.Tensor]:
    return samples[samples[:, WORKER] == 0, column], samples[samples[:, WORKER] == 1, column]


def test_worker_init_fn_repeats_batches_after_reseeding() -> None:
    """Seeding twice gives identical batches and worker augmentations; another seed differs."""
    nbrepro.seed(0)
    first = _load(worker_init_fn=nbrepro.worker_init_fn)
    nbrepro.seed(0)
    assert torch.equal(first, _load(worker_init_fn=nbrepro.worker_init_fn))
    nbrepro.seed(1)
    other = _load(worker_init_fn=nbrepro.worker_init_fn)
    assert not torch.equal(first[:, NUMPY:], other[:, NUMPY:])


@pytest.mark.parametrize(
    "column", [NUMPY, RANDOM, TORCH, UNSEEDED], ids=["numpy", "random", "torch", "unseeded"]
)
def test_worker_init_fn_gives_each_worker_its_own_draws(column: int) -> None:
    """With worker_init_fn the two workers draw different numbers from every generator."""
    nbrepro.seed(0)
    worker0, worker1 = _by_worker(_load(worker_init_fn=nbrepro.worker_init_fn), column)
    assert set(worker0.tolist()).isdisjoint(worker1.tolist())


def test_without_worker_init_fn_forked_workers_get_their_own_unseeded_generators() -> None:
    """Without it, each forked worker still gets its own stream (nbrepro's at-fork seed)."""
    # torch itself seeds each worker's random, NumPy and torch apart (NumPy since torch 1.9,
    # PyTorch PR #56488); nbrepro's stream for unseeded generators is seeded at the fork.
    nbrepro.seed(0)
    first = _load()
    worker0, worker1 = _by_worker(first, UNSEEDED)
    assert set(worker0.tolist()).isdisjoint(worker1.tolist())
    nbrepro.seed(0)
    assert torch.equal(first, _load())


def test_without_worker_init_fn_ranks_repeat_every_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without it, a rank seeded like rank 0 loads exactly rank 0's augmentations."""
    nbrepro.seed(0)
    rank0 = _load()
    monkeypatch.setenv("RANK", "1")
    nbrepro.seed(0)
    assert torch.equal(rank0, _load())


def test_worker_init_fn_gives_each_rank_its_own_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under RANK=1 the same seed gives the same order but different augmentations than rank 0."""
    nbrepro.seed(0)
    rank0 = _load(worker_init_fn=nbrepro.worker_init_fn)
    monkeypatch.setenv("RANK", "1")
    nbrepro.seed(0)
    rank1 = _load(worker_init_fn=nbrepro.worker_init_fn)
    assert torch.equal(rank0[:, INDEX], rank1[:, INDEX])
    for column in (NUMPY, RANDOM, TORCH, UNSEEDED):
        assert set(rank0[:, column].tolist()).isdisjoint(rank1[:, column].tolist())


def test_worker_init_fn_without_nbrepro_seed_follows_torch_seed() -> None:
    """Without nbrepro.seed(), worker seeds derive from torch.manual_seed and still repeat."""
    torch.manual_seed(0)
    first = _load(worker_init_fn=nbrepro.worker_init_fn)[:, :UNSEEDED]
    torch.manual_seed(0)
    assert torch.equal(first, _load(worker_init_fn=nbrepro.worker_init_fn)[:, :UNSEEDED])


def test_dataloader_generator_repeats_order_and_workers_whatever_the_model_drew() -> None:
    """With dataloader_generator, order and worker seeds ignore draws made before the loader."""
    nbrepro.seed(0)
    first = _load(nbrepro.worker_init_fn, nbrepro.dataloader_generator("train"))
    torch.rand(100)  # model initialisation, dropout: must not move the data order
    assert torch.equal(first, _load(nbrepro.worker_init_fn, nbrepro.dataloader_generator("train")))
    other = _load(nbrepro.worker_init_fn, nbrepro.dataloader_generator("valid"))
    assert not torch.equal(first[:, INDEX], other[:, INDEX])


def test_spawned_workers_seed_their_own_session() -> None:
    """Spawned workers (macOS/Windows default) get distinct, repeatable unseeded generators."""
    nbrepro.seed(0)
    first = _load(worker_init_fn=nbrepro.worker_init_fn, context="spawn")
    nbrepro.seed(0)
    assert torch.equal(first, _load(worker_init_fn=nbrepro.worker_init_fn, context="spawn"))
    worker0, worker1 = _by_worker(first, UNSEEDED)
    assert not set(worker0.tolist()) & set(worker1.tolist())
