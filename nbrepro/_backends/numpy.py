"""NumPy: the legacy global ``RandomState`` and ``default_rng()`` called with no seed."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from nbrepro._findings import THREAD_SETTING_TOO_LATE, Finding, Severity
from nbrepro._process_settings import start_environment
from nbrepro._user_seeds import SeedingWatch
from nbrepro.adapters import Backend

if TYPE_CHECKING:
    from nbrepro.adapters import SeedContext

_BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class NumpyBackend(Backend):
    """Seeds NumPy's global RNG; ``default_rng()`` with no seed gets the stream's next seed."""

    name = "numpy"
    module = "numpy"

    def __init__(self) -> None:
        self._original_default_rng: Any = None
        self._thread_limits: Any = None
        self._watch = SeedingWatch()

    def install(self, session: SeedContext) -> None:
        if self._original_default_rng is not None:
            return
        np = self.framework()
        original = self._original_default_rng = np.random.default_rng

        # A subclass only so that the generators it hands out can be weakly referenced
        # (NumPy's own Generator cannot), which capture_state() needs. It pickles as a
        # plain Generator and behaves as one.
        class Generator(np.random.Generator):  # type: ignore[misc, name-defined]
            __module__ = "numpy.random"

        @functools.wraps(original)
        def default_rng(seed: Any = None) -> Any:
            if seed is None and session.seeded:
                generator = Generator(np.random.PCG64(session.stream_seed("numpy.default_rng")))
                session.track(generator)
                return generator
            return original(seed)

        np.random.default_rng = default_rng
        # The user's own np.random.seed(x) wins over nbrepro's reseeding (nbrepro._user_seeds).
        modules = ("numpy.random", "numpy.random.mtrand")
        self._watch.watch(session, self.name, "np.random.seed", modules, "seed")

    @property
    def original_default_rng(self) -> Any:
        """NumPy's own ``default_rng`` while nbrepro's covers it, else ``None``."""
        return self._original_default_rng

    def uninstall(self) -> None:
        self._watch.undo()
        if self._original_default_rng is not None:
            self.framework().random.default_rng = self._original_default_rng
            self._original_default_rng = None
        if self._thread_limits is not None:
            self._thread_limits.restore_original_limits()
            self._thread_limits = None

    def seed(self, seed: int) -> None:
        self.framework().random.seed(seed)

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
