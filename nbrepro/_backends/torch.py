"""PyTorch: CPU/CUDA/MPS generators, deterministic algorithms, cuDNN, cuBLAS, threads."""

from __future__ import annotations

import functools
import os
import re
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from nbrepro import _import_hooks
from nbrepro._findings import (
    CUBLAS_WORKSPACE_TOO_LATE,
    CUDNN_BENCHMARK_ON,
    NONDETERMINISTIC_OP,
    THREAD_SETTING_TOO_LATE,
    TORCH_DETERMINISM_OFF,
)
from nbrepro._user_seeds import Rebound, SeedingWatch, rebind_user_names, restore_user_names
from nbrepro.adapters import (
    Backend,
    Config,
    Determinism,
    Finding,
    SeedContext,
    Severity,
    restart_fix,
)

CUBLAS_VARIABLE = "CUBLAS_WORKSPACE_CONFIG"
CUBLAS_VALUE = ":4096:8"

# torch releases before 2.10 refuse deterministic cuBLAS matmuls unless CUBLAS_WORKSPACE_CONFIG
# is set when the cuBLAS handle is created. PyTorch PR #161749 removed the requirement, since
# per-handle workspaces (PR #85447) already make cuBLAS deterministic; it first shipped in 2.10.
_FIRST_TORCH_WITHOUT_CUBLAS_VARIABLE = (2, 10)


def needs_cublas_variable(torch_version: str) -> bool:
    """Whether this torch release needs ``CUBLAS_WORKSPACE_CONFIG`` for deterministic cuBLAS."""
    match = re.match(r"(\d+)\.(\d+)", torch_version)
    if match is None:
        return True
    return (int(match[1]), int(match[2])) < _FIRST_TORCH_WITHOUT_CUBLAS_VARIABLE


_INDUCTOR_CONFIG = "torch._inductor.config"


def _use_deterministic_algorithms(torch: Any, mode: bool, *, warn_only: bool) -> None:
    """``torch.use_deterministic_algorithms`` without importing TorchInductor.

    Since torch 2.3 the public function imports ``torch._inductor.config`` to set its
    ``deterministic`` flag, which loads Inductor and Dynamo: 1.3 s on first use, for a flag
    only ``torch.compile`` reads. Set the eager switch directly, and the Inductor flag now if
    Inductor is loaded, else the moment it is imported.
    """
    switch = getattr(torch._C, "_set_deterministic_algorithms", None)
    if switch is None:  # a torch without the private switch: pay the import
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
        return
    switch(mode, warn_only=warn_only)
    finder = _import_hooks.finder()
    inductor = sys.modules.get(_INDUCTOR_CONFIG)
    if inductor is not None:
        inductor.deterministic = mode  # type: ignore[attr-defined]
        finder.unwatch(_INDUCTOR_CONFIG)
    else:
        finder.watch(_INDUCTOR_CONFIG, lambda config: _set_inductor_flag(config, mode, finder))


def _set_inductor_flag(config: Any, mode: bool, finder: _import_hooks.PostImportFinder) -> None:
    config.deterministic = mode
    finder.unwatch(_INDUCTOR_CONFIG)


# torch's alert when an op without a deterministic implementation runs under warn_only.
_ALERT_MARKER = " does not have a deterministic implementation"
_ALERT_PATTERN = r".*" + _ALERT_MARKER


def _capture_alerts(session: SeedContext) -> Callable[[], None]:
    """Record every nondeterministic torch op that runs, as NBR201, once per op and cell.

    Whatever the notebook does with warnings afterwards: the alert reaches nbrepro through
    ``warnings._showwarnmsg``, which Python calls for every warning that passes the filters
    (``logging.captureWarnings`` and ``catch_warnings(record=True)`` replace what comes after
    it), and an ``always`` filter for the alert is kept first among the filters, put back in
    front whenever ``filterwarnings``, ``simplefilter`` or ``resetwarnings`` run (so
    ``warnings.filterwarnings("ignore")`` in a cell, or a library's ``catch_warnings``, cannot
    hide it from the record).

    What is shown follows the notebook's own filters, as if nbrepro were not there: where
    they say ``ignore``, nothing; ``error``, the alert raises. Otherwise, where nbrepro says
    findings under the cell (one line with the fix), torch's own paragraph about ``warn_only``
    is not shown beside it; elsewhere (a script, ``--quiet``) it is, once per op and cell.
    Returns the function that undoes it.
    """
    shown = warnings._showwarnmsg  # type: ignore[attr-defined]
    wrapped = {name: getattr(warnings, name) for name in _FILTER_FUNCTIONS}
    seen: set[tuple[str, str | None]] = set()
    ours = ("always", re.compile(_ALERT_PATTERN, re.IGNORECASE), UserWarning, None, 0)

    def first() -> None:
        filters = warnings.filters
        if filters and filters[0] == ours:
            return
        filters[:] = [ours, *(f for f in filters if f != ours)]  # type: ignore[index]
        warnings._filters_mutated()  # type: ignore[attr-defined]

    def keeping_first(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            finally:
                first()

        return call

    def showwarnmsg(message: Any) -> None:
        text = str(message.message)
        if _ALERT_MARKER not in text or not issubclass(message.category, UserWarning):
            shown(message)
            return
        op = text.split(_ALERT_MARKER, 1)[0].strip()
        cell = session.current_cell
        if (op, cell) in seen:
            return
        seen.add((op, cell))
        where = f" in {cell}" if cell else ""
        session.report(
            [
                Finding(
                    NONDETERMINISTIC_OP,
                    Severity.ERROR,
                    f"torch op {op} has no deterministic implementation and ran{where}",
                    "use a deterministic alternative for this op (or run it on CPU); "
                    "%repro_seed --strict turns this into an error at the op",
                )
            ]
        )
        action = _users_action(text, message.category, ours)
        if action == "error":
            raise message.message
        if action != "ignore" and not session.says_findings:
            shown(message)

    warnings._showwarnmsg = showwarnmsg  # type: ignore[attr-defined]
    for name, function in wrapped.items():
        setattr(warnings, name, keeping_first(function))
    first()

    def stop() -> None:
        if warnings._showwarnmsg is showwarnmsg:  # type: ignore[attr-defined]
            warnings._showwarnmsg = shown  # type: ignore[attr-defined]
        for name, function in wrapped.items():
            if getattr(getattr(warnings, name), "__wrapped__", None) is function:
                setattr(warnings, name, function)
        warnings.filters[:] = [f for f in warnings.filters if f != ours]  # type: ignore[index]
        warnings._filters_mutated()  # type: ignore[attr-defined]

    return stop


# The functions that change the warning filters, kept from putting the alert's filter second.
_FILTER_FUNCTIONS = ("filterwarnings", "simplefilter", "resetwarnings")


def _users_action(text: str, category: type[Warning], ours: tuple[Any, ...]) -> str:
    """What the notebook's own filters do with this warning: the first filter (other than
    nbrepro's) that matches it says; filters for one module or line are passed over."""
    for action, pattern, kind, module, lineno in warnings.filters:
        if (action, pattern, kind, module, lineno) == ours or module is not None or lineno:
            continue
        if (pattern is None or pattern.match(text)) and issubclass(category, kind):
            return str(action)
    return "default"


def _cover_entropy_reseeding(torch: Any, session: SeedContext) -> list[tuple[Any, str, Any]]:
    """Make ``torch.seed()``, ``torch.cuda.seed()`` and ``seed_all()`` take the stream's seed.

    They reseed from OS entropy. ``torch.Generator().seed()`` does too, but its type is
    immutable: the static check flags it instead (NBR302). Returns what it replaced.
    """
    replaced: list[tuple[Any, str, Any]] = []
    covers = (
        ((torch, torch.random), "seed", "torch.seed", torch.manual_seed),
        ((torch.cuda, torch.cuda.random), "seed", "torch.cuda.seed", torch.cuda.manual_seed),
        (
            (torch.cuda, torch.cuda.random),
            "seed_all",
            "torch.cuda.seed_all",
            torch.cuda.manual_seed_all,
        ),
    )
    for modules, name, kind, manual_seed in covers:
        original = getattr(modules[0], name)

        def seed(original: Any = original, kind: str = kind, manual_seed: Any = manual_seed) -> Any:
            if not session.seeded:
                return original()
            value = session.stream_seed(kind)
            manual_seed(value)
            # torch.seed() returns the seed it used; the CUDA ones return nothing.
            return value if kind == "torch.seed" else None

        functools.update_wrapper(seed, original)
        for module in modules:
            if getattr(module, name, None) is original:
                setattr(module, name, seed)
                replaced.append((module, name, original))
    return replaced


def _replacements(replaced: list[tuple[Any, str, Any]]) -> dict[Any, Any]:
    """Each replaced function and what replaced it (for the notebook's own names for them)."""
    return {original: getattr(module, name) for module, name, original in replaced}


def _cpu_only(torch: Any) -> bool:
    """Whether this process has no accelerator torch could seed (checked without starting one)."""
    for name in ("cuda", "xpu", "mtia"):
        device = getattr(torch, name, None)
        if device is not None and device.is_available():
            return False
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return False
    # A third-party device registered as PrivateUse1 renames it.
    return bool(torch._C._get_privateuse1_backend_name() == "privateuseone")


class TorchBackend(Backend):
    """Seeds torch; ``--deterministic`` switches its deterministic algorithms and cuDNN."""

    name = "torch"
    module = "torch"

    def __init__(self) -> None:
        self._saved: tuple[bool, bool, bool, bool] | None = None
        self._saved_threads: tuple[int, int] | None = None  # (found, applied)
        self._stop_alerts: Callable[[], None] | None = None
        self._replaced: list[tuple[Any, str, Any]] = []
        self._rebound: list[Rebound] = []
        self._watch = SeedingWatch()
        self._cpu_only: bool | None = None

    def install(self, session: SeedContext) -> None:
        if not self._replaced:
            self._replaced = _cover_entropy_reseeding(self.framework(), session)
            # `from torch import seed` before seeding: that name is covered too.
            self._rebound = rebind_user_names(_replacements(self._replaced))
        if not self._watch.active:
            # After the covers above, which call the original manual_seed: torch.seed() is
            # nbrepro's to seed, torch.manual_seed(x) is the user's (nbrepro._user_seeds).
            modules = ("torch", "torch.random")
            self._watch.watch(session, self.name, "torch.manual_seed", modules, "manual_seed")

    def seed(self, seed: int) -> None:
        torch = self.framework()
        if self._cpu_only is None:
            self._cpu_only = _cpu_only(torch)
        if self._cpu_only:
            # All that torch.manual_seed seeds here. It would also queue a seed for each
            # accelerator type that is not initialised, formatting the Python stack for each
            # (0.3-0.7 ms, every per-cell reseed), even where none is available.
            torch.default_generator.manual_seed(seed)
        else:
            # The CPU generator and every CUDA/MPS/XPU device, lazily for devices whose
            # context does not exist yet.
            torch.manual_seed(seed)

    def apply_determinism(self, mode: Determinism, session: SeedContext) -> list[Finding]:
        torch = self.framework()
        cudnn = torch.backends.cudnn
        if self._saved is None:
            self._saved = (
                torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
                cudnn.benchmark,
                cudnn.deterministic,
            )
        _use_deterministic_algorithms(torch, True, warn_only=mode is Determinism.WARN)
        cudnn.benchmark = False
        cudnn.deterministic = True
        if mode is Determinism.WARN and self._stop_alerts is None:
            self._stop_alerts = _capture_alerts(session)
        return self._cublas_findings(torch)

    def process_start_settings(
        self, config: Config | None, environ: Mapping[str, str]
    ) -> dict[str, str]:
        # Whatever the config: the variable costs nothing where deterministic algorithms
        # are off, and a kernel started without it cannot switch them on later.
        version = self.installed_version()
        if version is None or not needs_cublas_variable(version):
            return {}
        return {CUBLAS_VARIABLE: CUBLAS_VALUE}

    def _cublas_findings(self, torch: Any) -> list[Finding]:
        if (
            torch.version.cuda is None
            or not needs_cublas_variable(torch.__version__)
            or os.environ.get(CUBLAS_VARIABLE) in (":4096:8", ":16:8")
        ):
            return []
        if not torch.cuda.is_initialized():
            # cuBLAS reads the variable when it creates its first handle, which has not
            # happened before CUDA is initialised; os.environ writes through to getenv().
            os.environ[CUBLAS_VARIABLE] = CUBLAS_VALUE
            return []
        return [
            Finding(
                CUBLAS_WORKSPACE_TOO_LATE,
                Severity.WARNING,
                f"torch {torch.__version__} needs {CUBLAS_VARIABLE} for deterministic cuBLAS, "
                "and CUDA was already initialised before it was set",
                restart_fix({CUBLAS_VARIABLE: CUBLAS_VALUE}),
            )
        ]

    def restore_determinism(self) -> None:
        if self._stop_alerts is not None:
            self._stop_alerts()
            self._stop_alerts = None
        if self._saved is None:
            return
        torch = self.framework()
        enabled, warn_only, benchmark, deterministic = self._saved
        _use_deterministic_algorithms(torch, enabled, warn_only=warn_only)
        torch.backends.cudnn.benchmark = benchmark
        torch.backends.cudnn.deterministic = deterministic
        self._saved = None

    def uninstall(self) -> None:
        self._watch.undo()
        restore_user_names(self._rebound)
        self._rebound = []
        for module, name, original in self._replaced:
            setattr(module, name, original)
        self._replaced = []
        # Put back the intra-op count found, unless it is no longer the one set here: when
        # torch and NumPy share one OpenMP runtime, the NumPy backend's threadpoolctl limits
        # resize torch's pool as well (before this backend runs) and restore it themselves.
        # The inter-op count cannot be changed a second time.
        if self._saved_threads is not None:
            torch = self.framework()
            saved, applied = self._saved_threads
            if torch.get_num_threads() == applied:
                torch.set_num_threads(saved)
            self._saved_threads = None

    def apply_threads(self, threads: int) -> list[Finding]:
        torch = self.framework()
        found = torch.get_num_threads() if self._saved_threads is None else self._saved_threads[0]
        self._saved_threads = (found, threads)
        torch.set_num_threads(threads)
        if torch.get_num_interop_threads() == threads:
            return []
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:
            # Allowed only before the first inter-op parallel work starts.
            return [
                Finding(
                    THREAD_SETTING_TOO_LATE,
                    Severity.INFO,
                    f"torch's inter-op thread pool already runs with "
                    f"{torch.get_num_interop_threads()} threads, not {threads}; it can only "
                    "be sized before torch starts parallel work",
                    restart_fix({"OMP_NUM_THREADS": str(threads)})
                    + ", with %repro_seed --threads before any torch work",
                )
            ]
        return []

    def audit(self) -> list[Finding]:
        torch = self.framework()
        found = []
        if not torch.are_deterministic_algorithms_enabled():
            found.append(
                Finding(
                    TORCH_DETERMINISM_OFF,
                    Severity.WARNING,
                    "torch is in use and its deterministic algorithms are off",
                    "%repro_seed <seed> --deterministic",
                )
            )
        if torch.backends.cudnn.benchmark:
            found.append(
                Finding(
                    CUDNN_BENCHMARK_ON,
                    Severity.ERROR,
                    "torch.backends.cudnn.benchmark is on: cuDNN picks different algorithms "
                    "in every run",
                    "torch.backends.cudnn.benchmark = False (%repro_seed --deterministic sets it)",
                )
            )
        return found

    def environment_facts(self) -> dict[str, Any]:
        torch = self.framework()
        facts: dict[str, Any] = {"version": self.version(), "cuda_build": torch.version.cuda}
        # is_available() asks the driver for a device count; it creates no CUDA context.
        if torch.cuda.is_available():
            facts["gpu"] = {
                "devices": [
                    torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
                ],
                "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version(),
            }
        return facts

    def get_state(self) -> Any:
        torch = self.framework()
        state: dict[str, Any] = {"cpu": torch.get_rng_state().numpy().tobytes()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = [s.numpy().tobytes() for s in torch.cuda.get_rng_state_all()]
        mps = getattr(torch, "mps", None)
        if mps is not None and torch.backends.mps.is_available():
            state["mps"] = mps.get_rng_state().numpy().tobytes()
        return state

    def set_state(self, state: Any) -> None:
        torch = self.framework()

        def tensor(data: bytes) -> Any:
            return torch.frombuffer(bytearray(data), dtype=torch.uint8)

        torch.set_rng_state(tensor(state["cpu"]))
        if "cuda" in state:
            torch.cuda.set_rng_state_all([tensor(s) for s in state["cuda"]])
        if "mps" in state:
            torch.mps.set_rng_state(tensor(state["mps"]))
