"""Session state: what was applied, the seed stream, per-cell seeds, findings, RNG state.

One :class:`Session` per process (:func:`session`). The public API, the magics and the cell
hooks all drive it; it imports no framework, only adapts the ones already loaded.
"""

from __future__ import annotations

import sys
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import FrameType, ModuleType
from typing import Any

from nbrepro import _fork, _import_hooks, _process_settings
from nbrepro._backends import Backend, load_backends
from nbrepro._config import Config, Determinism
from nbrepro._derive import derive_from
from nbrepro._findings import BACKEND_FAILED, Finding, Severity
from nbrepro._user_seeds import nbrepro_seeding, user_seed_finding
from nbrepro.errors import NoSeedError, StateMismatchError

STATE_FORMAT = 1


@dataclass(frozen=True)
class UnseededDraw:
    """A generator created without a seed, and the seed nbrepro gave it instead."""

    kind: str  #: ``"numpy.default_rng"``, ``"numpy.PCG64"``, ``"random.Random"``, ...
    seed: int
    cell: str | None  #: the cell it was created in, when known
    #: the module whose import created it (a library's own generator), ``None`` for the
    #: user's code
    library: str | None = None


@dataclass(frozen=True)
class UserSeed:
    """A global generator the user's own code seeded while nbrepro was seeding."""

    call: str  #: how it was seeded, ``"np.random.seed(7)"``
    cell: str | None  #: the cell that did it, when known


@dataclass(frozen=True)
class CellSeed:
    """The seed a cell ran with in per-cell mode, and what it was derived from."""

    seed: int
    cell: str  #: the cell's id, or ``"source:<sha256 prefix>"`` in the fallback
    from_cell_id: bool


@dataclass(frozen=True)
class RNGState:
    """Every PRNG's state at one moment; picklable. Made by :func:`nbrepro.capture_state`."""

    format: int
    scope_seed: int | None
    stream_counts: dict[tuple[str, ...], int]
    backends: dict[str, Any]
    #: stream key -> state of each live generator nbrepro seeded from its stream
    tracked: dict[tuple[Any, ...], Any] = field(repr=False)


class Session:
    """The reproducibility state of this process."""

    def __init__(self) -> None:
        self.config: Config | None = None
        self.backends: list[Backend] = []
        self.active: list[Backend] = []  # seeded backends, in registry order
        self.findings: list[Finding] = []  # from applying the config, and ops that ran
        #: static findings of each cell that ran, by cell id (or label where there is none)
        self.cell_findings: dict[str, list[Finding]] = {}
        #: cells that drew from a global generator while no experiment seed was set
        self.draws_before_seed: list[str] = []
        #: data fingerprints recorded by %repro_data / nbrepro.fingerprint(record=True)
        self.data: dict[str, Any] = {}
        self.unseeded: list[UnseededDraw] = []
        #: processes forked while seeded, and the seed each child was given (``nbrepro._fork``)
        self.forks: list[UnseededDraw] = []
        self.cell_seeds: dict[str, int] = {}
        self.last_cell: CellSeed | None = None
        self.current_cell: str | None = None
        #: adapters whose global generators the user seeded, by name: nbrepro leaves them alone
        self.user_seeds: dict[str, UserSeed] = {}
        #: the active generators' states when a watched framework's import began, by module
        self._before_imports: dict[str, dict[str, Any]] = {}
        self._scope_seed: int | None = None
        self._stream_counts: dict[tuple[str, ...], int] = {}
        self._tracked: dict[tuple[Any, ...], weakref.ref[Any]] = {}
        self._last_key: tuple[Any, ...] = ()
        self._lock = threading.RLock()
        #: Called with no arguments after each cell and each change of configuration
        #: (the status widget subscribes here). Kept across reset().
        self.listeners: list[Callable[[], None]] = []

    @property
    def seeded(self) -> bool:
        """Whether an experiment seed is in force."""
        return self.config is not None

    @property
    def says_findings(self) -> bool:
        """Whether a finding made now is said on one line under the cell that caused it: an
        IPython shell with nbrepro loaded is running a cell, and ``--quiet`` is off."""
        from nbrepro._cell_hooks import in_a_cell

        return in_a_cell() and not (self.config is not None and self.config.quiet)

    @property
    def scope_seed(self) -> int:
        """The seed in force now: the current cell's in per-cell mode, else the experiment's."""
        if self._scope_seed is None:
            raise NoSeedError("no experiment seed yet: call nbrepro.seed() or %repro_seed first")
        return self._scope_seed

    # -- applying a configuration -------------------------------------------------------

    def apply(self, config: Config, only: tuple[str, ...] | None = None) -> list[Finding]:
        """Make ``config`` the one in force and return the findings it leaves.

        ``only`` limits it to the backends with those names (a DataLoader worker's).
        """
        with self._lock:
            if not self.backends:
                self.backends = load_backends()
            previous = self.config
            if previous is not None and previous.deterministic is not Determinism.OFF:
                self._restore_determinism()
            self.config = config
            self.findings = []
            self.active = []
            self._scope_seed = config.seed
            self._stream_counts = {}
            self._tracked = {}
            self.unseeded = []
            self.forks = []
            self.cell_seeds = {}
            self.last_cell = None
            self.user_seeds = {}  # an explicit %repro_seed seeds everything again
            if config.threads is not None:
                _process_settings.set_thread_variables(config.threads)
            finder = _import_hooks.finder()
            for backend in self.backends:
                if only is not None and backend.name not in only:
                    continue
                if backend.loaded():
                    self._activate(backend)
                else:
                    finder.watch(backend.module, self._on_import, self._before_import)
            _fork.install(self)
            self._add(_process_settings.hash_seed_findings())
            return list(self.findings)

    def _activate(self, backend: Backend) -> None:
        config = self.config
        assert config is not None
        backend.install(self)
        if config.threads is not None:
            self._add(backend.apply_threads(config.threads))
        if config.deterministic is not Determinism.OFF:
            self._add(backend.apply_determinism(config.deterministic, self))
        if backend.name not in self.user_seeds:
            # Only this framework's own generators: every other stream goes on (a late
            # import restarts nothing).
            with nbrepro_seeding():
                backend.seed(self.scope_seed)
        self.active.append(backend)
        self.active.sort(key=self.backends.index)

    def _before_import(self, name: str) -> None:
        # Libraries may draw from the global generators while they are imported (importing
        # TensorFlow 2.21 imports jax, which draws from NumPy's, and rich, which draws from
        # random's): the user's streams go on afterwards as if the import had drawn nothing,
        # so that importing a framework earlier or later shifts none of their numbers.
        with self._lock:
            if self.config is None:
                return
            states = {}
            for backend in self.active:
                try:
                    states[backend.name] = backend.get_state()
                except Exception:  # an adapter that cannot read its state: its stream goes on
                    continue
            self._before_imports[name] = states

    def _on_import(self, module: ModuleType) -> None:
        with self._lock:
            _import_hooks.finder().unwatch(module.__name__)
            before = self._before_imports.pop(module.__name__, {})
            if self.config is None:
                return
            with nbrepro_seeding():
                for backend in self.active:
                    if backend.name in before:
                        # Only what changed: TensorFlow's set_state clears its kernel cache.
                        state = before[backend.name]
                        try:
                            if not _same_state(state, backend.get_state()):
                                backend.set_state(state)
                        except Exception:  # never break the user's import over this
                            continue
            for backend in self.backends:
                if backend.module == module.__name__ and backend not in self.active:
                    try:
                        self._activate(backend)
                    except Exception as error:
                        # Never break the user's import: report, and leave it unseeded.
                        finding = Finding(
                            BACKEND_FAILED,
                            Severity.ERROR,
                            f"nbrepro could not seed {backend.name} {backend.version()} when "
                            f"it was imported: {type(error).__name__}: {error}",
                            "report this to nbrepro with the framework's version; seed it "
                            "yourself meanwhile",
                        )
                        self._add([finding])
                        warnings.warn(f"nbrepro: {finding.message}", stacklevel=2)

    def _activate_late_imports(self) -> None:
        # A framework can arrive without passing our finder (imported before the finder was
        # installed in another thread, or put into sys.modules directly).
        for backend in self.backends:
            if backend not in self.active and backend.loaded():
                self._activate(backend)

    def _restore_determinism(self) -> None:
        for backend in self.active:
            backend.restore_determinism()

    def _add(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            if finding not in self.findings:
                self.findings.append(finding)

    def report(self, findings: Iterable[Finding]) -> None:
        """Add findings an adapter met after applying the configuration (an op that ran)."""
        with self._lock:
            self._add(findings)

    def user_seeded(self, names: tuple[str, ...], call: str) -> None:
        """The user's own ``call`` seeded the global generators of the adapters ``names``.

        nbrepro respects it: per-cell reseeding skips them until ``%repro_seed`` runs again.
        In per-cell mode that makes the cells after this one depend on the order they run
        in, which is reported once, for the cell that first did it (NBR304).
        """
        with self._lock:
            cell = self.current_cell
            new = [name for name in names if name not in self.user_seeds]
            for name in names:
                self.user_seeds[name] = UserSeed(call, cell)
            config = self.config
            if new and config is not None and config.per_cell:
                self._add([user_seed_finding(names, call, cell)])

    def reset(self) -> None:
        """Undo everything nbrepro changed in this process and forget the configuration."""
        with self._lock:
            if self.config is not None and self.config.deterministic is not Determinism.OFF:
                self._restore_determinism()
            for backend in self.backends:
                backend.uninstall()
            _import_hooks.remove_finder()
            _fork.uninstall(self)
            listeners = self.listeners  # the displays outlive a reset: they show it
            self.__init__()  # type: ignore[misc]
            self.listeners = listeners

    def notify(self) -> None:
        """Tell every listener that the status may have changed."""
        for listener in list(self.listeners):
            try:
                listener()
            except Exception as error:  # a broken display must not break the user's cell
                warnings.warn(f"nbrepro: status listener failed: {error}", stacklevel=2)

    # -- per-cell seeds ------------------------------------------------------------------

    def reseed_cell(self, cell_id: str | None, source: str) -> CellSeed:
        """Reseed every generator for the cell about to run; see ``nbrepro.seed(per_cell=)``."""
        with self._lock:
            config = self.config
            if config is None:
                raise NoSeedError("per-cell reseeding needs an experiment seed")
            if cell_id:
                cell, keys = cell_id, ("cell", cell_id)
            else:
                import hashlib

                digest = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
                cell, keys = f"source:{digest[:16]}", ("cell-source", digest)
            seed = derive_from(config.seed, keys)
            self._activate_late_imports()
            # What the user seeded themselves stays theirs (NBR304 said what it costs).
            names = tuple(b.name for b in self.active if b.name not in self.user_seeds)
            self.reseed_scope(seed, names if self.user_seeds else None)
            self.last_cell = CellSeed(seed=seed, cell=cell, from_cell_id=bool(cell_id))
            self.cell_seeds[cell] = seed
            return self.last_cell

    def reseed_scope(self, seed: int, names: tuple[str, ...] | None = None) -> None:
        """Reseed the active backends (those in ``names``, if given) and restart the stream."""
        with self._lock:
            self._scope_seed = seed
            self._stream_counts = {}
            with nbrepro_seeding():
                for backend in self.active:
                    if names is None or backend.name in names:
                        backend.seed(seed)

    # -- the stream of seeds for generators created without one ---------------------------

    def stream_seed(self, kind: str) -> int:
        """The next seed for a ``kind`` generator created with no seed; recorded.

        Generators a library creates while it is being imported get a stream of their own,
        keyed by that module, so that importing a library earlier or later (or not at all)
        never shifts the seeds of the generators the user's code creates.
        """
        with self._lock:
            importing = _importing_module()
            stream = (kind,) if importing is None else (kind, "import", importing)
            count = self._stream_counts.get(stream, 0)
            self._stream_counts[stream] = count + 1
            key = (self.scope_seed, *stream, count)
            seed = derive_from(self.scope_seed, ("unseeded", *stream, count))
            self.unseeded.append(
                UnseededDraw(kind=kind, seed=seed, cell=self.current_cell, library=importing)
            )
            self._last_key = key
            return seed

    def fork_seed(self) -> int:
        """The seed for the next process forked while seeded; recorded in :attr:`forks`.

        ``derive_seed("fork", n)`` for the n-th fork (from the cell's seed in per-cell mode).
        """
        with self._lock:
            count = self._stream_counts.get(("os.fork",), 0)
            self._stream_counts[("os.fork",)] = count + 1
            seed = derive_from(self.scope_seed, ("fork", count))
            self.forks.append(UnseededDraw(kind="os.fork", seed=seed, cell=self.current_cell))
            return seed

    def track(self, generator: Any) -> None:
        """Remember the generator just seeded by :meth:`stream_seed`, for ``capture_state``."""
        self._tracked[self._last_key] = weakref.ref(generator)

    # -- capture and restore ---------------------------------------------------------------

    def capture(self) -> RNGState:
        """Every generator's state now; see :func:`nbrepro.capture_state`."""
        with self._lock:
            if not self.backends:
                self.backends = load_backends()
            if self.config is not None:
                self._activate_late_imports()
            backends = {b.name: b.get_state() for b in self.backends if b.loaded()}
            tracked = {
                key: _generator_state(generator)
                for key, ref in self._tracked.items()
                if (generator := ref()) is not None
            }
            return RNGState(
                format=STATE_FORMAT,
                scope_seed=self._scope_seed,
                stream_counts=dict(self._stream_counts),
                backends=backends,
                tracked=tracked,
            )

    def restore(self, state: RNGState) -> None:
        """Put back a state from :meth:`capture`; checks everything before changing anything."""
        if not isinstance(state, RNGState):
            raise StateMismatchError(
                f"expected the RNGState returned by nbrepro.capture_state(), got "
                f"{type(state).__name__}"
            )
        if state.format != STATE_FORMAT:
            raise StateMismatchError(
                f"this RNG state has format {state.format}; this nbrepro reads format "
                f"{STATE_FORMAT}"
            )
        with self._lock:
            if not self.backends:
                self.backends = load_backends()
            by_name = {b.name: b for b in self.backends}
            missing = [n for n in state.backends if n not in by_name or not by_name[n].loaded()]
            if missing:
                raise StateMismatchError(
                    f"the state holds generators of {', '.join(missing)}, which "
                    "this process has not imported; import them first"
                )
            live = {key: ref() for key, ref in self._tracked.items()}
            absent = [key for key in state.tracked if live.get(key) is None]
            if absent:
                raise StateMismatchError(
                    f"the state holds {len(absent)} generator(s) created without a seed that "
                    "this session has not created (or has dropped): run the same code first"
                )
            with nbrepro_seeding():
                for name, backend_state in state.backends.items():
                    by_name[name].set_state(backend_state)
            for key, saved in state.tracked.items():
                _set_generator_state(live[key], saved)
            self._scope_seed = state.scope_seed
            self._stream_counts = dict(state.stream_counts)


def _same_state(first: Any, second: Any) -> bool:
    try:
        return bool(first == second)
    except (TypeError, ValueError):  # NumPy's holds an array: comparing it is ambiguous
        return False


def _generator_state(generator: Any) -> Any:
    # A NumPy Generator, a legacy RandomState, a NumPy bit generator, a random.Random.
    if hasattr(generator, "bit_generator"):
        return generator.bit_generator.state
    if hasattr(generator, "get_state"):
        return generator.get_state()
    if hasattr(generator, "getstate"):
        return generator.getstate()
    return generator.state


def _set_generator_state(generator: Any, state: Any) -> None:
    if hasattr(generator, "bit_generator"):
        generator.bit_generator.state = state
    elif hasattr(generator, "set_state"):
        generator.set_state(state)
    elif hasattr(generator, "setstate"):
        generator.setstate(state)
    else:
        generator.state = state


def _importing_module() -> str | None:
    """The module whose import is running the caller's code, if any (a frame walk)."""
    frame: FrameType | None = sys._getframe(2)
    module = None
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return module
        if frame.f_code.co_name == "<module>":
            module = frame.f_globals.get("__name__")
        frame = frame.f_back
    return None


_SESSION = Session()


def session() -> Session:
    """The process's session."""
    return _SESSION
