"""Processes forked while seeded get distinct, recorded seeds; pools that draw are flagged."""

from __future__ import annotations

import ast
import multiprocessing
import os
import random
import time
from typing import Any

import pytest

import nbrepro
from nbrepro._session import session

np = pytest.importorskip("numpy")

pytestmark = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs fork"
)


def _forked_draws(children: int = 2) -> list[tuple[float, float, float]]:
    """What each of ``children`` processes forked one after another draws first."""
    draws = []
    for _ in range(children):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: draw, report, leave without running the parent's cleanup
            os.close(read)
            values = (random.random(), np.random.random(), np.random.default_rng().random())
            os.write(write, repr(values).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            draws.append(ast.literal_eval(pipe.read()))
        os.waitpid(pid, 0)
    return draws


def test_each_forked_child_gets_its_own_recorded_seed() -> None:
    """Children draw apart from each other, the same under one seed, not under another."""
    nbrepro.seed(7)
    first = _forked_draws()
    assert all(a != b for a, b in zip(*first, strict=True))
    assert all(len(set(child)) == 3 for child in first)
    seeds = [fork.seed for fork in session().forks]
    assert len(seeds) == 2 and seeds[0] != seeds[1]
    assert seeds[0] == nbrepro.derive_seed("fork", 0)
    nbrepro.seed(7)
    assert _forked_draws() == first
    nbrepro.seed(8)
    assert _forked_draws()[0] != first[0]


def test_forking_leaves_the_parents_streams_alone() -> None:
    """The parent's global generators and unseeded stream go on as if nothing was forked."""
    nbrepro.seed(7)
    expected = (random.random(), np.random.random(), np.random.default_rng().random())
    nbrepro.seed(7)
    _forked_draws()
    assert (random.random(), np.random.random(), np.random.default_rng().random()) == expected


def test_after_reset_children_inherit_the_parents_state_again() -> None:
    """register_at_fork cannot unregister: after reset its callbacks do nothing."""
    nbrepro.seed(7)
    nbrepro.reset()
    np.random.seed(3)  # (random reseeds itself from OS entropy in every child)
    child = _forked_draws(1)[0]
    assert child[1] == np.random.random()
    assert session().forks == []


def draw_from_global_generator(task: int) -> float:
    """A pool task that draws from NumPy's global generator."""
    return task + float(np.random.normal())


def draw_per_task_seed(task: int) -> float:
    """A pool task seeded by its own id: the fix NBR503 suggests."""
    return task + float(np.random.default_rng(nbrepro.derive_seed("task", task)).normal())


def _pool_cell(shell: Any, task: str, workers: int = 3) -> list[str]:
    shell.user_ns[task] = globals()[task]
    result = shell.run_cell(
        "import multiprocessing\n"
        f"with multiprocessing.get_context('fork').Pool({workers}) as pool:\n"
        f"    values = pool.map({task}, range(12), chunksize=1)\n",
        store_history=True,
    )
    result.raise_error()
    return [f.message for f in nbrepro.audit() if f.code == "NBR503"]


def test_a_cell_whose_pool_tasks_draw_is_flagged_once(shell: Any) -> None:
    """NBR503 names the cell and how many workers drew; per-task seeds are not flagged."""
    shell.run_cell("%repro_seed 3")
    assert _pool_cell(shell, "draw_per_task_seed") == []
    messages = _pool_cell(shell, "draw_from_global_generator")
    assert len(messages) == 1
    cell = f"In [{shell.execution_count - 1}]"
    assert messages[0].startswith(f"{cell} ran random draws in "), messages[0]
    assert "forked worker process" in messages[0]
    shell.run_cell("x = 1")
    assert len([f for f in nbrepro.audit() if f.code == "NBR503"]) == 1


def test_pool_results_with_per_task_seeds_repeat(shell: Any) -> None:
    """The fix gives the same numbers whichever worker runs which task."""
    shell.run_cell("%repro_seed 3")
    _pool_cell(shell, "draw_per_task_seed", workers=3)
    first = shell.user_ns["values"]
    _pool_cell(shell, "draw_per_task_seed", workers=2)
    assert shell.user_ns["values"] == first


def test_process_pool_executor_workers_are_seeded_apart() -> None:
    """concurrent.futures workers forked while seeded do not share NumPy's global state."""
    from concurrent.futures import ProcessPoolExecutor

    nbrepro.seed(5)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(2, mp_context=context) as executor:
        first_draws = dict(executor.map(_pid_and_first_draw, range(8)))
    # Without a seed per child, both would continue one copy of NumPy's state.
    assert len(first_draws) == 2
    assert len(set(first_draws.values())) == 2
    assert len(session().forks) == 2


_FIRST: list[float] = []


def _pid_and_first_draw(task: int) -> tuple[int, float]:
    """The worker's pid and the first number it drew from NumPy's global generator."""
    if not _FIRST:
        _FIRST.append(float(np.random.random()))
    time.sleep(0.1)  # keep this worker busy so that the other one takes tasks too
    return os.getpid(), _FIRST[0]


def test_children_of_a_forked_child_are_seeded_from_its_stream() -> None:
    """Grandchildren get seeds of their own, the same in every run; only the kernel watches."""

    def grandchildren() -> list[tuple[float, float, float]]:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            os.write(write, repr(_forked_draws()).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            draws: list[tuple[float, float, float]] = ast.literal_eval(pipe.read())
        os.waitpid(pid, 0)
        return draws

    nbrepro.seed(9)
    first = grandchildren()
    assert all(a != b for a, b in zip(*first, strict=True))
    nbrepro.seed(9)
    assert grandchildren() == first
