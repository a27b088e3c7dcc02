"""The standard library's ``random``: the module-level generator and unseeded ``Random()``."""

from __future__ import annotations

import platform
import random
from typing import TYPE_CHECKING, Any, cast

from nbrepro._user_seeds import SeedingWatch
from nbrepro.adapters import Backend

if TYPE_CHECKING:
    from nbrepro.adapters import SeedContext


class PythonRandomBackend(Backend):
    """Seeds ``random`` and makes ``random.Random()`` with no seed draw from the seed stream."""

    name = "random"
    module = "random"

    def __init__(self) -> None:
        self._original_seed: Any = None
        self._original_module_seed: Any = None
        self._watch = SeedingWatch()

    def version(self) -> str:
        return platform.python_version()

    def install(self, session: SeedContext) -> None:
        if self._original_seed is not None:
            return
        original = self._original_seed = random.Random.seed

        # Random.__init__ calls self.seed(x), so patching seed covers Random(). (random.seed
        # is the global instance's method, bound to the original when random was imported.)
        # SystemRandom overrides seed and stays untouched, as it should.
        def seed(self: random.Random, a: Any = None, version: int = 2) -> None:
            if a is None and session.seeded:
                a = session.stream_seed("random.Random")
                original(self, a, version)
                session.track(self)
                return
            original(self, a, version)

        seed.__doc__ = original.__doc__
        seed.__wrapped__ = original  # type: ignore[attr-defined]
        random.Random.seed = seed  # type: ignore[method-assign]
        # random.seed is the hidden global instance's method, bound when random was imported,
        # so it would go on calling the original: random.seed() would reseed the global
        # generator from OS entropy. Dispatch it through the class, which is covered.
        module_seed = self._original_module_seed = random.seed
        instance: random.Random = cast(Any, module_seed).__self__

        def seed_global(a: Any = None, version: int = 2) -> None:
            instance.seed(a, version)

        seed_global.__doc__ = module_seed.__doc__
        random.seed = seed_global
        self._watch.watch(
            session, self.name, "random.seed", ["random"], "seed", aliases=(module_seed,)
        )

    def uninstall(self) -> None:
        self._watch.undo()
        if self._original_module_seed is not None:
            random.seed = self._original_module_seed
            self._original_module_seed = None
        if self._original_seed is not None:
            random.Random.seed = self._original_seed  # type: ignore[method-assign]
            self._original_seed = None

    def seed(self, seed: int) -> None:
        random.seed(seed)

    def get_state(self) -> Any:
        return random.getstate()

    def set_state(self, state: Any) -> None:
        random.setstate(state)
