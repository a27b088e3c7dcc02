"""JAX: no global generator to seed; XLA's GPU determinism flag; version and devices.

Written against the public adapter contract (:mod:`nbrepro.adapters`) alone, as a
third-party adapter would be: it is the contract's proof.

JAX keeps no global random state: every random op takes an explicit key, so there is nothing
to seed, capture or restore. What varies between runs is where keys come from (use
``nbrepro.jax_key(*keys)``, a key from ``derive_seed``; clock- or entropy-made keys are
flagged by the static cell checks) and, on GPU, XLA's nondeterministic kernels (scatter,
GEMMs, convolutions chosen by autotuning). ``--xla_gpu_deterministic_ops=true`` in
``XLA_FLAGS`` switches those off (https://openxla.org/xla/determinism; it implies
``--xla_gpu_exclude_nondeterministic_ops``, openxla/xla#12520). XLA reads ``XLA_FLAGS`` once,
when JAX starts its first backend: after ``import jax`` but before the first computation,
setting it still works; after that only a new process can take it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any, ClassVar

from nbrepro.adapters import (
    Backend,
    Config,
    Determinism,
    Finding,
    SeedContext,
    Severity,
    distribution_version,
    restart_fix,
    start_environment,
)

XLA_FLAGS_VARIABLE = "XLA_FLAGS"
DETERMINISTIC_OPS_FLAG = "--xla_gpu_deterministic_ops"
#: The finding when XLA started its backends without the determinism flag.
XLA_DETERMINISM_NOT_IN_FORCE = "NBR206"

_BRIDGE = "jax._src.xla_bridge"


def with_deterministic_ops(flags: str | None) -> str:
    """``flags`` (an ``XLA_FLAGS`` value) with the GPU determinism flag set to true.

    The user's other flags are kept in their order; a determinism flag of theirs with
    another value is replaced, since ``--deterministic`` asks for it.
    """
    kept = [
        flag for flag in (flags or "").split() if flag.split("=", 1)[0] != DETERMINISTIC_OPS_FLAG
    ]
    return " ".join([*kept, f"{DETERMINISTIC_OPS_FLAG}=true"])


def deterministic_ops_set(flags: str | None) -> bool:
    """Whether an ``XLA_FLAGS`` value turns the GPU determinism flag on."""
    value = None
    for flag in (flags or "").split():
        name, _, given = flag.partition("=")
        if name == DETERMINISTIC_OPS_FLAG:
            value = given or "true"  # the last one wins, as in XLA's parser
    return value is not None and value.lower() in ("true", "1")


class JaxBackend(Backend):
    """JAX: ``--deterministic`` turns on XLA's GPU determinism flag where it can still work."""

    name = "jax"
    module = "jax"
    #: XLA started this process's backends with the flag an adapter set: a fact about the
    #: process, which outlives the session (and its adapters) that set it.
    _started_with_flag: ClassVar[bool] = False

    def __init__(self) -> None:
        #: XLA_FLAGS as found before this adapter set it, while it has (None: it was unset)
        self._saved_flags: tuple[str | None] | None = None

    def seed(self, seed: int) -> None:
        """Nothing to seed: JAX has no global generator (keys are explicit)."""

    def get_state(self) -> Any:
        return None

    def set_state(self, state: Any) -> None:
        """Nothing to restore: see :meth:`seed`."""

    def apply_determinism(self, mode: Determinism, session: SeedContext) -> list[Finding]:
        if not self._backends_started():
            # XLA has not read XLA_FLAGS yet; os.environ writes through to getenv().
            current = os.environ.get(XLA_FLAGS_VARIABLE)
            if not deterministic_ops_set(current):
                if self._saved_flags is None:
                    self._saved_flags = (current,)
                os.environ[XLA_FLAGS_VARIABLE] = with_deterministic_ops(current)
            return []
        if (
            self._started_with_flag
            or deterministic_ops_set(start_environment().get(XLA_FLAGS_VARIABLE))
            # set in this process before the backends started (by this adapter or the user)
            or deterministic_ops_set(os.environ.get(XLA_FLAGS_VARIABLE))
        ):
            return []
        # The backends have started, so asking for their devices starts nothing.
        gpu = any(device.platform == "gpu" for device in self.framework().devices())
        where = "" if gpu else " (JAX runs on CPU here, where it changes nothing)"
        return [
            Finding(
                XLA_DETERMINISM_NOT_IN_FORCE,
                Severity.WARNING if gpu else Severity.INFO,
                f"JAX started its backends without {DETERMINISTIC_OPS_FLAG}=true in "
                f"{XLA_FLAGS_VARIABLE}, so XLA may pick nondeterministic GPU kernels{where}",
                restart_fix(
                    {
                        XLA_FLAGS_VARIABLE: with_deterministic_ops(
                            start_environment().get(XLA_FLAGS_VARIABLE)
                        )
                    }
                ),
            )
        ]

    def restore_determinism(self) -> None:
        if self._saved_flags is None:
            return
        # Once XLA has read the flag it stays in force in this process; the variable is put
        # back all the same, for the processes this one starts.
        if self._backends_started():
            JaxBackend._started_with_flag = True
        (previous,) = self._saved_flags
        if previous is None:
            os.environ.pop(XLA_FLAGS_VARIABLE, None)
        else:
            os.environ[XLA_FLAGS_VARIABLE] = previous
        self._saved_flags = None

    def process_start_settings(
        self, config: Config | None, environ: Mapping[str, str]
    ) -> dict[str, str]:
        if (
            config is None
            or config.deterministic is Determinism.OFF
            or self.installed_version() is None
        ):
            return {}
        return {XLA_FLAGS_VARIABLE: with_deterministic_ops(environ.get(XLA_FLAGS_VARIABLE))}

    def environment_facts(self) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "version": self.version(),
            "jaxlib": distribution_version("jaxlib"),
        }
        if not self._backends_started():
            # Asking for devices would start the backends (and fix XLA_FLAGS): not for a record.
            facts["devices"] = None
            return facts
        jax = self.framework()
        facts["backend"] = jax.default_backend()
        facts["devices"] = [str(device.device_kind) for device in jax.devices()]
        if facts["backend"] == "gpu":
            facts["gpu"] = {"devices": facts["devices"]}
        return facts

    @staticmethod
    def _backends_started() -> bool:
        bridge = sys.modules.get(_BRIDGE)
        if bridge is None:  # nothing has asked JAX for a backend yet
            return False
        started = getattr(bridge, "backends_are_initialized", None)
        if started is None:  # an older JAX: the registry the check reads
            return bool(getattr(bridge, "_backends", True))
        return bool(started())
