"""TensorFlow: the global seed, the global ``tf.random.Generator``, op determinism, threads."""

from __future__ import annotations

import importlib
from typing import Any

from nbrepro._findings import TF_DETERMINISM_OFF, THREAD_SETTING_TOO_LATE
from nbrepro.adapters import Backend, Determinism, Finding, SeedContext, Severity, restart_fix


def _internals(name: str) -> Any:
    # Only ever called once TensorFlow is imported, so this imports nothing new.
    return importlib.import_module(f"tensorflow.python.{name}")


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

    def version(self) -> str:
        return str(getattr(self.framework(), "__version__", "unknown"))

    def seed(self, seed: int) -> None:
        tf = self.framework()
        # The global tf.random.Generator would otherwise be created from OS entropy on first
        # use; reset it in place so references the user holds stay valid. This goes first:
        # set_seed clears TensorFlow's kernel cache, and an op run after that pays for
        # building its kernel again (about 4 ms instead of 0.5 ms, per cell in per-cell mode).
        stateful = _internals("ops.stateful_random_ops")
        generator = stateful.global_generator
        if generator is None:
            tf.random.set_global_generator(tf.random.Generator.from_seed(seed))
        elif self._state_layout_checked:
            generator.state.assign(self._state_from_seed(seed, stateful, generator.algorithm))
        else:
            generator.reset_from_seed(seed)
            expected = generator.state.numpy()
            computed = self._state_from_seed(seed, stateful, generator.algorithm)
            self._state_layout_checked = bool((expected == computed).all())
        # Sets the global seed and resets the op-seed counter derived from it, so tf.random
        # ops and tf.data shuffles with no seed of their own repeat; clearing the kernel
        # cache restarts stateful random kernels that were built with the same op seeds.
        tf.random.set_seed(seed)

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
        }

    def set_state(self, state: Any) -> None:
        tf = self.framework()
        context = _internals("eager.context").context()
        if state["global_seed"] is not None:
            tf.random.set_seed(state["global_seed"])
        if state["op_seeds"] is not None and context._rng is not None:
            context._rng.setstate(state["op_seeds"])
        if state["generator"] is not None:
            import numpy as np  # TensorFlow imports NumPy itself.

            generator = tf.random.get_global_generator()
            generator.state.assign(np.frombuffer(state["generator"], dtype=np.int64))
