"""Keras 3: the global ``SeedGenerator`` behind ``keras.random`` and unseeded layers."""

from __future__ import annotations

import importlib
from typing import Any

from nbrepro.adapters import Backend

_GLOBAL_SEED_GENERATOR = "global_seed_generator"


def _global_state() -> Any:
    return importlib.import_module("keras.src.backend.common.global_state")


class KerasBackend(Backend):
    """Resets Keras's global seed generator; layers made with ``seed=None`` draw from ``random``."""

    name = "keras"
    module = "keras"

    def seed(self, seed: int) -> None:
        # Seeds random, NumPy and TensorFlow with the same seed nbrepro gives them, and
        # drops the global SeedGenerator so that it is recreated from this seed.
        self.framework().utils.set_random_seed(seed)

    def get_state(self) -> Any:
        generator = _global_state().get_global_attribute(_GLOBAL_SEED_GENERATOR)
        if generator is None:
            return None
        import numpy as np  # Keras imports NumPy itself.

        return np.asarray(generator.state.value).tobytes()

    def set_state(self, state: Any) -> None:
        if state is None:
            _global_state().set_global_attribute(_GLOBAL_SEED_GENERATOR, None)
            return
        import numpy as np

        seed_generator = importlib.import_module("keras.src.random.seed_generator")
        generator = seed_generator.global_seed_generator()
        current = np.asarray(generator.state.value)
        generator.state.assign(np.frombuffer(state, dtype=current.dtype).reshape(current.shape))
