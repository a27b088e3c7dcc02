"""``nbrepro.environment()``: what a run depended on besides its code and data.

Python, OS, CPU, GPUs, CUDA/cuDNN, the versions of the packages that matter, and the
process-start settings. Environment variables enter only through :data:`ENV_ALLOWLIST`, and
every value is passed through the secret redactor: nothing secret reaches a notebook.
Nothing here imports a framework: each imported framework's adapter reports its own facts
(``frameworks``: version, devices, CUDA build), and GPU facts come from the first of them that
sees a GPU, else from ``nvidia-smi`` when it exists.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping
from functools import partial
from typing import Any, ClassVar

from nbrepro._process_settings import start_environment
from nbrepro._record_schema import ENV_ALLOWLIST, Gpu, Machine
from nbrepro._redact import redact, redact_tree

__all__ = ["ENV_ALLOWLIST", "env_vars", "environment"]

#: Distributions always looked up, whether or not they are imported.
_RELEVANT = (
    "nbrepro", "numpy", "scipy", "pandas", "scikit-learn", "torch", "torchvision",
    "torchaudio", "lightning", "tensorflow", "tensorflow-cpu", "keras", "jax", "jaxlib",
    "transformers", "datasets", "xgboost", "lightgbm", "ipython", "ipykernel",
)  # fmt: skip


def env_vars() -> dict[str, str | None]:
    """The allowlisted variables as this process started with them (unset: ``None``)."""
    start = start_environment()
    return {name: start.get(name) for name in ENV_ALLOWLIST}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _installed_state() -> tuple[tuple[str, int], ...]:
    """What changes when a distribution is installed or removed: each ``sys.path`` folder's
    modification time (pip adds and removes ``*.dist-info`` folders directly inside it)."""
    state = []
    for entry in sys.path:
        try:
            state.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            state.append((entry, -1))
    return tuple(state)


class _Lookups:
    """What was looked up about the installed distributions, while none is installed or removed:
    reading every distribution's metadata takes a few tenths of a second to seconds, and the
    record is built again on each save and export."""

    installed: ClassVar[tuple[tuple[str, int], ...]] = ()
    providers: ClassVar[Mapping[str, list[str]]] = {}
    versions: ClassVar[dict[str, str | None]] = {}


def _packages() -> dict[str, str]:
    from importlib import metadata

    installed = _installed_state()
    if installed != _Lookups.installed or not _Lookups.providers:
        try:
            providers = metadata.packages_distributions()
        except Exception:  # a broken installed distribution must not break the record
            providers = {}
        _Lookups.installed, _Lookups.providers, _Lookups.versions = installed, providers, {}
    names = set(_RELEVANT)
    # Plus the distributions of every top-level module the process has imported.
    for module in list(sys.modules):
        if "." not in module and not module.startswith("_"):
            names.update(_Lookups.providers.get(module, ()))
    versions = {}
    for name in sorted(names, key=str.lower):
        if name not in _Lookups.versions:
            try:
                _Lookups.versions[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                _Lookups.versions[name] = None
        version = _Lookups.versions[name]
        if version is not None:
            versions[name] = version
    return versions


def _framework_facts() -> dict[str, dict[str, Any]]:
    """What the adapter of each imported framework reports about it."""
    from nbrepro._backends import load_backends

    facts: dict[str, dict[str, Any]] = {}
    for backend in load_backends():
        if backend.loaded():
            try:
                facts[backend.name] = backend.environment_facts()
            except Exception as error:  # a broken adapter must not break the record
                facts[backend.name] = {"error": f"{type(error).__name__}: {error}"}
    return facts


def _gpus(frameworks: Mapping[str, Mapping[str, Any]]) -> Gpu:
    for name, facts in frameworks.items():
        seen = facts.get("gpu")
        if isinstance(seen, Mapping) and seen.get("devices"):
            gpu = Gpu(source=name, devices=[str(d) for d in seen["devices"]])
            for key in ("cuda", "cudnn"):
                if key in seen:
                    gpu[key] = seen[key]
            return gpu
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return {"source": None, "devices": []}
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {"source": "nvidia-smi", "devices": [], "error": "nvidia-smi failed"}
    rows = [line.split(",") for line in out.splitlines() if line.strip()]
    return {
        "source": "nvidia-smi",
        "devices": [row[0].strip() for row in rows],
        "driver": rows[0][1].strip() if rows and len(rows[0]) > 1 else None,
    }


def environment() -> Machine:
    """Python, OS, CPU, GPU(s), CUDA/cuDNN, package versions and process-start settings.

    A plain dict that goes into the record as ``environment`` (``env_vars`` holds the
    allowlisted variables). Secret-looking values are redacted; package versions keep a
    40-hex git commit id (``1.2.dev0+g<commit>``), which is not a secret.
    """
    frameworks = _framework_facts()
    return Machine(
        python=redact(platform.python_version()),
        implementation=redact(platform.python_implementation()),
        platform=redact(platform.platform()),
        machine=redact(platform.machine()),
        cpu=redact(_cpu_model()),
        cpu_count=os.cpu_count(),
        hash_randomization=bool(sys.flags.hash_randomization),
        gpu=redact_tree(_gpus(frameworks)),
        packages=redact_tree(_packages(), partial(redact, keep_hex=True)),
        env_vars=redact_tree(env_vars()),
        frameworks=redact_tree(frameworks),
    )
