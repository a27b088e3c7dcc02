"""TensorFlow: the global seed, the global ``tf.random.Generator``, op determinism, threads."""

from __future__ import annotations

import functools
import importlib
import random
import sys
from typing import Any

from nbrepro._findings import TF_DETERMINISM_OFF, THREAD_SETTING_TOO_LATE
from nbrepro._user_seeds import SeedingWatch
from nbrepro.adapters import Backend, Determinism, Finding, SeedContext, Severity, restart_fix


def _internals(name: str) -> Any:
    # Only ever called once TensorFlow is imported, so this imports nothing new.
    return importlib.import_module(f"tensorflow.python.{name}")


# Where TensorFlow exports its seeding functions (tf.random, tf.random.experimental, compat).
_RANDOM_API = (
    "tensorflow._api.v2.random",
    "tensorflow._api.v2.compat.v2.random",
    "tensorflow._api.v2.compat.v1.random",
)
_GENERATOR_API = (
    "tensorflow.python.ops.stateful_random_ops",
    *_RANDOM_API,
    *(f"{module}.experimental" for module in _RANDOM_API),
)
_SET_SEED_API = ("tensorflow.python.framework.random_seed", *_RANDOM_API[:2])
_SET_RANDOM_SEED_API = (
    "tensorflow.python.framework.random_seed",
    "tensorflow._api.v2.compat.v1",
    "tensorflow._api.v2.compat.v1.random",
)


class TensorflowBackend(Backend):
    """Seeds TensorFlow; ``--deterministic`` turns on op determinism.

    TensorFlow has no warn-only mode: with op determinism on, an op without a deterministic
    kernel always raises, under ``--deterministic`` as under ``--strict``.
    """

    name = "tensorflow"
    module = "tensorflow"
    distribution = "tensorflow"

    def __init__(self) -> None:
        self._saved: bool | None = None
        self._state_layout_checked = False
        self._original_from_entropy: Any = None
        self._generator: Any = None  # the global tf.random.Generator nbrepro made
        self._pending: int | None = None  # the seed of the next one, made on first use
        self._original_get_global: Any = None
        self._getters_replaced: list[Any] = []  # the modules whose getter is nbrepro's
        #: global seeds that may have built stateful random kernels since the cache was cleared
        self._in_force: set[int | None] = set()
        self._watch = SeedingWatch()

    def install(self, session: SeedContext) -> None:
        if self._original_get_global is None:
            self._make_global_generator_lazily()
        if not self._watch.active:
            watch = self._watch.watch
            cleared = self._in_force.clear  # TensorFlow's set_seed clears the kernel cache
            watch(session, self.name, "tf.random.set_seed", _SET_SEED_API, "set_seed", cleared)
            label = "tf.compat.v1.set_random_seed"
            watch(session, self.name, label, _SET_RANDOM_SEED_API, "set_random_seed", cleared)
            label = "tf.random.set_global_generator"
            watch(session, self.name, label, _GENERATOR_API, "set_global_generator")
        # from_non_deterministic_state() seeds from OS entropy (and raises under op
        # determinism): while seeded it makes the generator from the stream's next seed.
        if self._original_from_entropy is not None:
            return
        generator_class = self.framework().random.Generator
        original = generator_class.__dict__["from_non_deterministic_state"]
        self._original_from_entropy = original

        @functools.wraps(original.__func__)
        def from_non_deterministic_state(cls: Any, alg: Any = None) -> Any:
            if not session.seeded:
                return original.__func__(cls, alg)
            return cls.from_seed(session.stream_seed("tf.random.Generator"), alg=alg)

        generator_class.from_non_deterministic_state = classmethod(from_non_deterministic_state)

    def _make_global_generator_lazily(self) -> None:
        # Made from the seed on first use rather than at seeding time: creating it runs
        # TensorFlow's first eager ops (~100 ms in a fresh process, ~2 ms later), which most
        # notebooks never need. TensorFlow would make it from OS entropy, or raise under op
        # determinism, so its getter is replaced wherever it is exported.
        stateful = _internals("ops.stateful_random_ops")
        original = self._original_get_global = stateful.get_global_generator
        init_scope = _internals("framework.ops").init_scope

        @functools.wraps(original)
        def get_global_generator() -> Any:
            if self._pending is not None and stateful.global_generator is None:
                seed, self._pending = self._pending, None
                with init_scope():  # as TensorFlow makes it: outside any function being traced
                    generator = stateful.Generator.from_seed(seed)
                if not self._state_layout_checked:
                    computed = self._state_from_seed(seed, stateful, generator.algorithm)
                    self._state_layout_checked = bool((generator.state.numpy() == computed).all())
                stateful.global_generator = self._generator = generator
            return original()

        for name in _GENERATOR_API:
            module: Any = sys.modules.get(name)
            if module is not None and getattr(module, "get_global_generator", None) is original:
                module.get_global_generator = get_global_generator
                self._getters_replaced.append(module)

    def uninstall(self) -> None:
        self._watch.undo()
        for module in self._getters_replaced:
            module.get_global_generator = self._original_get_global
        self._getters_replaced = []
        self._original_get_global = self._pending = self._generator = None
        if self._original_from_entropy is not None:
            generator_class = self.framework().random.Generator
            generator_class.from_non_deterministic_state = self._original_from_entropy
            self._original_from_entropy = None

    def version(self) -> str:
        return str(getattr(self.framework(), "__version__", "unknown"))

    def seed(self, seed: int) -> None:
        self._seed_global_generator(seed)
        self._set_global_seed(seed)

    def _seed_global_generator(self, seed: int) -> None:
        stateful = _internals("ops.stateful_random_ops")
        current = stateful.global_generator
        if current is not None and current is self._generator:
            # nbrepro's own: reset in place, so that functions traced over it see it too.
            if self._state_layout_checked:
                current.state.assign(self._state_from_seed(seed, stateful, current.algorithm))
            else:
                current.reset_from_seed(seed)
            return
        # None, or one the user (or TensorFlow, from OS entropy) made before %repro_seed:
        # that object keeps its own state; the global one is made anew from the seed.
        stateful.global_generator = self._generator = None
        self._pending = seed

    def _set_global_seed(self, seed: int) -> None:
        # What tf.random.set_seed does in eager mode (context._set_global_seed): the global
        # seed, and a new op-seed sequence derived from it, so tf.random ops and tf.data
        # shuffles with no seed of their own repeat. It also clears the kernel cache, so that
        # stateful random kernels cached under the same (global, op) seed pair restart; but
        # every kernel goes, and a cell's next training step then rebuilds its function
        # (~100 ms). A pair can only be cached under a global seed that was in force since the
        # last clear: with a seed new since then, nothing needs clearing.
        context_module = _internals("eager.context")
        context = context_module.context()
        self._in_force.add(context._seed)  # the seed in force now, the user's included
        eager = context_module.executing_eagerly() and hasattr(context, "_rng")
        if eager and (seed not in self._in_force or context._context_handle is None):
            context._seed = seed
            context._rng = random.Random(seed)
            self._in_force.add(seed)
            return
        self.framework().random.set_seed(seed)
        self._in_force = {seed}

    @staticmethod
    def _state_from_seed(seed: int, stateful: Any, algorithm: Any) -> Any:
        # What reset_from_seed computes with a chain of TF ops (create_rng_state: the seed as
        # the first 64-bit word, the rest zero), built in NumPy: after set_seed has cleared
        # the kernel cache those ops cost ~15 ms a reseed, one assign ~1 ms. Checked against
        # reset_from_seed once per process before it is trusted.
        import numpy as np  # TensorFlow imports NumPy itself

        state = np.zeros(stateful._get_state_size(algorithm), dtype=np.int64)
        state[0] = seed
        return state

    def apply_determinism(self, mode: Determinism, session: SeedContext) -> list[Finding]:
        # Only enable_op_determinism is exported; the getter and the switch-off live beside it.
        config = _internals("framework.config")
        if self._saved is None:
            self._saved = bool(config.is_op_determinism_enabled())
        config.enable_op_determinism()
        return []

    def restore_determinism(self) -> None:
        if self._saved is None:
            return
        if not self._saved:
            _internals("framework.config").disable_op_determinism()
        self._saved = None

    def apply_threads(self, threads: int) -> list[Finding]:
        threading = self.framework().config.threading
        try:
            threading.set_intra_op_parallelism_threads(threads)
            threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            current = threading.get_intra_op_parallelism_threads()
            return [
                Finding(
                    THREAD_SETTING_TOO_LATE,
                    Severity.WARNING,
                    f"TensorFlow's runtime started before --threads {threads} "
                    f"(intra-op threads: {current or 'all cores'}); its pools are fixed now",
                    restart_fix(
                        {
                            "TF_NUM_INTRAOP_THREADS": str(threads),
                            "TF_NUM_INTEROP_THREADS": str(threads),
                        }
                    ),
                )
            ]
        return []

    def audit(self) -> list[Finding]:
        if _internals("framework.config").is_op_determinism_enabled():
            return []
        return [
            Finding(
                TF_DETERMINISM_OFF,
                Severity.WARNING,
                "TensorFlow is in use and op determinism is off",
                "%repro_seed <seed> --deterministic",
            )
        ]

    def environment_facts(self) -> dict[str, Any]:
        tf = self.framework()
        build = tf.sysconfig.get_build_info()
        facts: dict[str, Any] = {"version": self.version(), "cuda_build": build.get("cuda_version")}
        devices = tf.config.list_physical_devices("GPU")
        if devices:
            facts["gpu"] = {
                "devices": [device.name for device in devices],
                "cuda": build.get("cuda_version"),
                "cudnn": build.get("cudnn_version"),
            }
        return facts

    def get_state(self) -> Any:
        context = _internals("eager.context").context()
        stateful = _internals("ops.stateful_random_ops")
        generator = stateful.global_generator
        return {
            "global_seed": context._seed,  # no public getter exists
            "op_seeds": context._rng.getstate() if context._rng is not None else None,
            "generator": None if generator is None else generator.state.numpy().tobytes(),
            "pending": self._pending,  # the seed of a global generator not made yet
        }

    def set_state(self, state: Any) -> None:
        tf = self.framework()
        context = _internals("eager.context").context()
        if state["global_seed"] is not None:
            tf.random.set_seed(state["global_seed"])  # restarts cached stateful kernels
            self._in_force = {state["global_seed"]}
        if state["op_seeds"] is not None and context._rng is not None:
            context._rng.setstate(state["op_seeds"])
        if state["generator"] is not None:
            import numpy as np  # TensorFlow imports NumPy itself.

            generator = tf.random.get_global_generator()
            generator.state.assign(np.frombuffer(state["generator"], dtype=np.int64))
        elif state.get("pending") is not None:
            self._seed_global_generator(state["pending"])
