"""Keras 3: the global ``SeedGenerator`` behind ``keras.random`` calls made with no seed.

Only that generator: Keras's own ``keras.utils.set_random_seed`` also reseeds ``random``,
NumPy and TensorFlow, which would restart their streams in the middle of a notebook when Keras
is imported late. Layers and initialisers made with ``seed=None`` take their seeds from
``random``, which its own adapter seeds.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

from nbrepro._user_seeds import SeedingWatch
from nbrepro.adapters import Backend

if TYPE_CHECKING:
    from nbrepro.adapters import SeedContext

_GLOBAL_SEED_GENERATOR = "global_seed_generator"
# Where keras.utils.set_random_seed is reachable, in Keras 3 and through tf.keras.
_SET_RANDOM_SEED_MODULES = (
    "keras.utils",
    "keras.src.utils",
    "keras.src.utils.rng_utils",
    "keras._tf_keras.keras.utils",
)


def _global_state() -> Any:
    return importlib.import_module("keras.src.backend.common.global_state")


def _seed_generator() -> Any:
    return importlib.import_module("keras.src.random.seed_generator")


def _current() -> Any:
    return _global_state().get_global_attribute(_GLOBAL_SEED_GENERATOR)


class KerasBackend(Backend):
    """Seeds Keras's global ``SeedGenerator``, made from the seed when it is first used."""

    name = "keras"
    module = "keras"

    def __init__(self) -> None:
        self._generator: Any = None  # the global SeedGenerator nbrepro made
        self._pending: int | None = None  # the seed of the next one, made on first use
        self._original_global: Any = None
        self._watch = SeedingWatch()

    def install(self, session: SeedContext) -> None:
        if self._original_global is None:
            module = _seed_generator()
            original = self._original_global = module.global_seed_generator

            # draw_seed() finds this by its module-level name at each call. Made on first
            # use rather than at seeding time: creating it makes a backend variable (~1 ms),
            # and most notebooks never draw from it.
            @functools.wraps(original)
            def global_seed_generator() -> Any:
                if self._pending is not None and _current() is None:
                    seed, self._pending = self._pending, None
                    self._generator = module.SeedGenerator(seed)
                    _global_state().set_global_attribute(_GLOBAL_SEED_GENERATOR, self._generator)
                return original()

            module.global_seed_generator = global_seed_generator
        if not self._watch.active:
            self._watch.watch(
                session,
                self.name,
                "keras.utils.set_random_seed",
                _SET_RANDOM_SEED_MODULES,
                "set_random_seed",
                after=self._forget,
            )

    def _forget(self) -> None:
        # The user's keras.utils.set_random_seed dropped the global generator: Keras makes
        # the next one from the `random` state the user set.
        self._pending = None
        self._generator = None

    def uninstall(self) -> None:
        self._watch.undo()
        if self._original_global is not None:
            _seed_generator().global_seed_generator = self._original_global
            self._original_global = None
        self._forget()

    def seed(self, seed: int) -> None:
        current = _current()
        if current is not None and current is self._generator:
            # In place, so that functions traced over it (tf.function) see the reseed too.
            import numpy as np  # Keras imports NumPy itself.

            current.state.assign(np.array([seed, 0], dtype=current.state.dtype))
            return
        if current is not None:
            # Not nbrepro's: leave that object as it is; the global one is made anew.
            _global_state().set_global_attribute(_GLOBAL_SEED_GENERATOR, None)
        self._generator = None
        self._pending = seed

    def get_state(self) -> Any:
        generator = _current()
        if generator is None:
            return {"pending": self._pending}
        import numpy as np  # Keras imports NumPy itself.

        return {"state": np.asarray(generator.state.value).tobytes()}

    def set_state(self, state: Any) -> None:
        # States captured before the generator was made lazily: the bytes, or None.
        if not isinstance(state, dict):
            state = {"pending": None} if state is None else {"state": state}
        if "pending" in state:
            _global_state().set_global_attribute(_GLOBAL_SEED_GENERATOR, None)
            self._generator = None
            self._pending = state["pending"]
            return
        import numpy as np

        generator = _seed_generator().global_seed_generator()
        current = np.asarray(generator.state.value)
        saved = np.frombuffer(state["state"], dtype=current.dtype).reshape(current.shape)
        generator.state.assign(saved)
