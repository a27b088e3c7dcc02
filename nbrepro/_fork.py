"""Processes forked while seeded: each child gets a distinct, recorded seed.

A forked child starts with a copy of every generator's state, so without this every worker of a
``multiprocessing`` fork pool or a ``ProcessPoolExecutor`` draws the same "random" numbers.
While a seed is in force, the parent takes the next seed of its ``"fork"`` stream before each
fork (recorded in ``Session.forks``), and the child reseeds ``random``, NumPy and torch and
restarts its stream for unseeded generators from it.

Even with distinct seeds, a pool hands tasks to whichever worker is free: a task that draws from
a global generator gets numbers that depend on that schedule. Each child therefore notes, when
it sends something back to the parent (every pool result goes through ``ForkingPickler``),
whether its generators moved since it last looked; the parent reads those notes from shared
memory after each cell and reports NBR503 once under the cell.

``os.register_at_fork`` cannot unregister: the callbacks are registered once and do nothing
while no session is installed.
"""

from __future__ import annotations

import mmap
import os
import struct
import sys
from typing import TYPE_CHECKING, Any

from nbrepro._findings import FORKED_WORKERS_DRAW, Finding, Severity

if TYPE_CHECKING:
    from nbrepro._session import Session

# Frameworks a forked child reseeds: the fork-safe ones. TensorFlow is not fork-safe, and
# tf.data workers are threads of the main process, seeded by its seed.
CHILD_BACKENDS = ("random", "numpy", "torch")

_SLOTS = 4096  # one 4-byte draw counter per fork, reused round-robin
_SLOT = struct.Struct("=I")


class _Forks:
    """The installed session and the shared counters children write into."""

    def __init__(self) -> None:
        self.session: Session | None = None
        self.registered = False
        self.counters: mmap.mmap | None = None
        self.forked = 0  # forks made while installed, for the slot of the next one
        #: (session, seed, slot) between the two halves of a fork; no slot in a child, whose
        #: own children are seeded but not watched (only the kernel's process reports)
        self.pending: tuple[Session, int, int | None] | None = None
        self.in_child = False
        #: (slot, draws seen) of each child forked by this process while seeded
        self.children: list[tuple[int, int]] = []
        self.child_slot: int | None = None  # in a child: its own slot
        self.child_state: list[Any] = []


_FORKS = _Forks()


def install(session: Session) -> None:
    """Seed children forked from now on from ``session``'s stream; watch them for draws."""
    forks = _FORKS
    forks.session = session
    if forks.counters is None:
        forks.counters = mmap.mmap(-1, _SLOTS * _SLOT.size)  # anonymous: shared with children
    if session_check not in session.listeners:
        # First, so that the finding is there when the displays update after the cell.
        session.listeners.insert(0, session_check)
    if not forks.registered:
        os.register_at_fork(
            before=_before_fork,
            after_in_parent=_after_in_parent,
            after_in_child=_after_in_child,
        )
        forks.registered = True


def uninstall(session: Session) -> None:
    """Stop seeding forked children (the at-fork callbacks stay, doing nothing)."""
    if session_check in session.listeners:
        session.listeners.remove(session_check)
    _FORKS.session = None
    _FORKS.children = []


def _before_fork() -> None:
    forks = _FORKS
    session = forks.session
    if session is None or not session.seeded or forks.counters is None:
        return
    # Held across the fork, so that no other thread holds it in the child.
    session._lock.acquire()
    try:
        seed = session.fork_seed()
    except BaseException:
        session._lock.release()
        raise
    slot = None
    if not forks.in_child:
        slot = forks.forked % _SLOTS
        forks.forked += 1
        _SLOT.pack_into(forks.counters, slot * _SLOT.size, 0)
    forks.pending = (session, seed, slot)


def _after_in_parent() -> None:
    forks = _FORKS
    if forks.pending is None:
        return
    session, _, slot = forks.pending
    forks.pending = None
    if slot is not None:
        forks.children.append((slot, 0))
        del forks.children[:-_SLOTS]
    session._lock.release()


def _after_in_child() -> None:
    forks = _FORKS
    if forks.pending is None:
        return
    session, seed, slot = forks.pending
    forks.pending = None
    forks.children = []
    forks.in_child = True
    try:
        session.reseed_scope(seed, CHILD_BACKENDS)
        forks.child_slot = None
        if slot is not None:
            forks.child_state = _generator_state(session)
            forks.child_slot = slot
            _watch_results()
    except Exception:  # never break the user's child process: it goes on unwatched
        forks.child_slot = None
    finally:
        session._lock.release()


def _generator_state(session: Session) -> list[Any]:
    """The state of the child's global generators and unseeded stream, compared with ``==``."""
    states: list[Any] = [sorted(session._stream_counts.items())]
    for backend in session.active:
        if backend.name in CHILD_BACKENDS:
            # An adapter may offer a cheaper digest of its state (NumPy's get_state copies it
            # through Python objects): this runs before every result a worker sends back.
            digest = getattr(backend, "state_digest", None)
            states.append(digest() if digest is not None else backend.get_state())
    return states


def _in_dataloader_worker() -> bool:
    # torch's DataLoader seeds each worker itself and gives each a fixed share of the
    # indices: what its workers draw does not depend on scheduling.
    worker = sys.modules.get("torch.utils.data._utils.worker")
    return getattr(worker, "_worker_info", None) is not None


def note_draws() -> None:
    """In a forked child: count a draw if its generators moved since the last look."""
    forks = _FORKS
    session = forks.session
    if forks.child_slot is None or session is None or forks.counters is None:
        return
    try:
        state = _generator_state(session)
    except Exception:  # a framework that cannot report its state here: stop watching
        forks.child_slot = None
        return
    if state == forks.child_state or _in_dataloader_worker():
        return
    forks.child_state = state
    offset = forks.child_slot * _SLOT.size
    (count,) = _SLOT.unpack_from(forks.counters, offset)
    _SLOT.pack_into(forks.counters, offset, count + 1)


def _watch_results() -> None:
    # Everything a pool worker sends back (multiprocessing.Pool, ProcessPoolExecutor) is
    # pickled by ForkingPickler.dumps first: look at the generators just before.
    reduction = sys.modules.get("multiprocessing.reduction")
    pickler: Any = getattr(reduction, "ForkingPickler", None)
    if pickler is None:
        return
    dumps = pickler.dumps

    def watched_dumps(obj: Any, protocol: int | None = None) -> Any:
        note_draws()
        return dumps(obj, protocol)

    pickler.dumps = staticmethod(watched_dumps)


def drawing_children() -> int:
    """In the parent: how many children drew from a generator since the last call."""
    forks = _FORKS
    if forks.counters is None:
        return 0
    drew = 0
    for index, (slot, seen) in enumerate(forks.children):
        (count,) = _SLOT.unpack_from(forks.counters, slot * _SLOT.size)
        if count != seen:
            drew += 1
            forks.children[index] = (slot, count)
    return drew


def session_check() -> None:
    """After each cell: report NBR503 under it if forked children drew during it."""
    session = _FORKS.session
    if session is None or _FORKS.in_child:
        return
    drew = drawing_children()
    if not drew:
        return
    cell = session.current_cell or "this cell"
    processes = "process" if drew == 1 else "processes"
    session.report(
        [
            Finding(
                FORKED_WORKERS_DRAW,
                Severity.WARNING,
                f"{cell} ran random draws in {drew} forked worker {processes}: which worker "
                "runs which task decides the numbers each task gets",
                "seed per task: np.random.default_rng(nbrepro.derive_seed('task', i)) inside "
                "the task function",
            )
        ]
    )
