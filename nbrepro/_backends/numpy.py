"""NumPy: the legacy global ``RandomState`` and every generator made without a seed.

While a seed is in force, every way NumPy can be asked for OS entropy draws from the
experiment's stream instead: ``default_rng()``, the bit generators (``PCG64()``,
``PCG64DXSM()``, ``Philox()``, ``SFC64()``, ``MT19937()``) and ``Generator(...)`` around
them, ``RandomState()``, ``SeedSequence()`` with no entropy and ``np.random.seed()``.
"""

from __future__ import annotations

import functools
import importlib
import sys
import threading
from typing import TYPE_CHECKING, Any

from nbrepro._findings import THREAD_SETTING_TOO_LATE, Finding, Severity
from nbrepro._process_settings import start_environment
from nbrepro._user_seeds import SeedingWatch
from nbrepro.adapters import Backend

if TYPE_CHECKING:
    from nbrepro.adapters import SeedContext

_BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: Names in ``numpy.random`` replaced, while seeded, by classes that seed from the stream.
COVERED_CLASSES = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937", "RandomState")
# NumPy's pickling helpers build a bit generator with no seed, then set its state: the
# entropy they ask for is thrown away at once, so it must not take a seed from the stream.
_UNPICKLING_MODULE = "numpy.random._pickle"
# RandomState(5) first makes an MT19937 with no seed, then overwrites its state with the
# legacy seeding of 5: that entropy is thrown away too. Set while a covered class is built
# with a seed of its own.
_SEEDED_CONSTRUCTION = threading.local()


def _covering_class(original: type, session: SeedContext) -> type:
    """A subclass of ``original`` whose instances made with no seed take the stream's next.

    A subclass, so that isinstance checks, pickling and ``type(x) is np.random.PCG64`` keep
    working and its instances can be weakly referenced for ``capture_state()`` (NumPy's own
    cannot). ``isinstance(x, np.random.PCG64)`` stays true for bit generators NumPy makes
    itself (``default_rng(1).bit_generator``), and instances pickle as NumPy's own class.
    """
    kind = f"numpy.{original.__name__}"
    original_reduce: Any = original.__reduce__

    class Covering(type(original)):  # type: ignore[misc]
        def __instancecheck__(cls, instance: Any) -> bool:
            if cls is covering:
                return isinstance(instance, original)
            return type.__instancecheck__(cls, instance)

        def __subclasscheck__(cls, subclass: type) -> bool:
            if cls is covering:
                return issubclass(subclass, original)
            return type.__subclasscheck__(cls, subclass)

    def __init__(self: Any, seed: Any = None, *args: Any, **kwargs: Any) -> None:
        # Philox(key=...) takes its key instead of a seed: nothing to cover there.
        keyed = kwargs.get("key") is not None or len(args) >= 2
        if seed is None and not keyed and session.seeded:
            seed = session.stream_seed(kind)
            session.track(self)
        _SEEDED_CONSTRUCTION.active = seed is not None or keyed
        try:
            original.__init__(self, seed, *args, **kwargs)  # type: ignore[misc]
        finally:
            _SEEDED_CONSTRUCTION.active = False

    def __reduce__(self: Any) -> Any:
        ctor, args, *rest = original_reduce(self)
        # NumPy >= 1.25 names the class itself: name NumPy's, which every process has.
        if args and isinstance(args[0], type):
            args = (original, *args[1:])
        return (ctor, args, *rest)

    namespace = {
        "__module__": "numpy.random",
        "__qualname__": original.__name__,
        "__doc__": original.__doc__,
        "__init__": __init__,
        "__reduce__": __reduce__,
    }
    covering: type = Covering(original.__name__, (original,), namespace)
    return covering


class NumpyBackend(Backend):
    """Seeds NumPy's global RNG; generators made with no seed get the stream's next seed."""

    name = "numpy"
    module = "numpy"

    def __init__(self) -> None:
        self._original_default_rng: Any = None
        self._originals: dict[str, Any] = {}
        self._original_randbits: Any = None
        self._thread_limits: Any = None
        self._watch = SeedingWatch()

    def install(self, session: SeedContext) -> None:
        if self._original_default_rng is not None:
            return
        np = self.framework()
        original = self._original_default_rng = np.random.default_rng
        pcg64 = np.random.PCG64

        # A subclass only so that the generators it hands out can be weakly referenced
        # (NumPy's own Generator cannot), which capture_state() needs. It pickles as a
        # plain Generator and behaves as one.
        class Generator(np.random.Generator):  # type: ignore[misc, name-defined]
            __module__ = "numpy.random"

        @functools.wraps(original)
        def default_rng(seed: Any = None) -> Any:
            if seed is None and session.seeded:
                generator = Generator(pcg64(session.stream_seed("numpy.default_rng")))
                session.track(generator)
                return generator
            return original(seed)

        np.random.default_rng = default_rng
        for name in COVERED_CLASSES:
            self._originals[name] = getattr(np.random, name)
            setattr(np.random, name, _covering_class(self._originals[name], session))
        self._cover_entropy(session)
        # The user's own np.random.seed(x) wins over nbrepro's reseeding (nbrepro._user_seeds).
        modules = ("numpy.random", "numpy.random.mtrand")
        self._watch.watch(session, self.name, "np.random.seed", modules, "seed")

    def _cover_entropy(self, session: SeedContext) -> None:
        # Every SeedSequence made with no entropy asks the module-level `randbits` of
        # numpy.random.bit_generator for it (NumPy >= 1.17), looked up at each call. Every
        # unseeded path ends there: names imported before seeding (`from numpy.random import
        # PCG64`), SeedSequence(), np.random.seed(), generators libraries make.
        bit_generator: Any = importlib.import_module("numpy.random.bit_generator")
        original = getattr(bit_generator, "randbits", None)
        if original is None:  # a NumPy that draws its entropy some other way
            return
        self._original_randbits = (bit_generator, original)

        def randbits(bits: int) -> int:
            caller = sys._getframe(1).f_globals.get("__name__")
            if (
                not session.seeded
                or caller == _UNPICKLING_MODULE
                or getattr(_SEEDED_CONSTRUCTION, "active", False)
            ):
                return int(original(bits))
            return session.stream_seed("numpy.SeedSequence")

        bit_generator.randbits = randbits

    def uninstall(self) -> None:
        self._watch.undo()
        if self._original_default_rng is not None:
            random = self.framework().random
            random.default_rng = self._original_default_rng
            self._original_default_rng = None
            for name, original in self._originals.items():
                setattr(random, name, original)
            self._originals = {}
            if self._original_randbits is not None:
                module, randbits = self._original_randbits
                module.randbits = randbits
                self._original_randbits = None
        if self._thread_limits is not None:
            self._thread_limits.restore_original_limits()
            self._thread_limits = None

    def seed(self, seed: int) -> None:
        self.framework().random.seed(seed)

    def state_digest(self) -> Any:
        """The global generator's raw state, read cheaply: a forked worker compares it before
        each result it sends back (``nbrepro._fork``); ``get_state()`` costs 30 times more."""
        import ctypes

        bit_generator = self.framework().random.get_bit_generator()
        interface = bit_generator.ctypes
        # MT19937's state: 624 32-bit words and the position in them.
        return ctypes.string_at(interface.state_address, 624 * 4 + 4)

    def apply_threads(self, threads: int) -> list[Finding]:
        # BLAS/OpenMP pools are sized when NumPy loads them; threadpoolctl resizes them live.
        try:
            import threadpoolctl
        except ImportError:
            # The pool was sized from the variables the process started with, whatever
            # os.environ says now (nbrepro exports them for processes started later).
            start = start_environment()
            if all(start.get(v) == str(threads) for v in _BLAS_THREAD_VARIABLES):
                return []
            settings = {v: str(threads) for v in _BLAS_THREAD_VARIABLES}
            return [
                Finding(
                    THREAD_SETTING_TOO_LATE,
                    Severity.WARNING,
                    "NumPy's BLAS thread pool was sized when NumPy was imported, before "
                    f"--threads {threads}; install threadpoolctl to resize it in place",
                    "pip install threadpoolctl, or restart the kernel with "
                    + " ".join(f"{k}={v}" for k, v in settings.items()),
                )
            ]
        if self._thread_limits is None:
            self._thread_limits = threadpoolctl.threadpool_limits(limits=threads)
        else:
            threadpoolctl.threadpool_limits(limits=threads)
        return []

    def get_state(self) -> Any:
        return self.framework().random.get_state()

    def set_state(self, state: Any) -> None:
        self.framework().random.set_state(state)
