"""``nbrepro rerun`` and ``nbrepro show``: repeat a recorded run, and read a record.

A rerun takes everything from the record embedded in the notebook: the seed (an
auto-assigned one too, replayed through ``NBREPRO_SEED``), the options, the process-start
variables, and the cell ids that key per-cell seeds (they are in the notebook). It then
reports drift (Python, platform, GPU/CUDA, package versions, data fingerprints) and which
cells' outputs match the ones stored in the notebook, compared through the one normaliser.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbrepro._config import REPLAY_SEED_VARIABLE
from nbrepro._fingerprint import drift as data_drift
from nbrepro._fingerprint import fingerprint
from nbrepro._normalize import normalize_cell
from nbrepro.errors import InvalidOptionError


def seed_arguments(record: Mapping[str, Any]) -> str:
    """The ``%repro_seed`` arguments that repeat the recorded configuration."""
    parts = [] if record["seed"] is None else [str(record["seed"])]
    if record["deterministic"] == "strict":
        parts.append("--strict")
    elif record["deterministic"] == "warn":
        parts.append("--deterministic")
    if record["per_cell"]:
        parts.append("--per-cell")
    if record["threads"] is not None:
        parts.append(f"--threads {record['threads']}")
    return " ".join(parts)


def kernel_variables(record: Mapping[str, Any]) -> dict[str, str]:
    """The environment a rerun kernel starts with: the recorded process-start variables."""
    variables = {k: v for k, v in record["env_vars"].items() if isinstance(v, str)}
    if record["seed"] is not None:
        variables[REPLAY_SEED_VARIABLE] = str(record["seed"])
    return variables


def environment_drift(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What differs between two recorded environments, one line per difference."""
    lines = []
    for key in ("python", "implementation", "platform", "machine", "cpu"):
        if before.get(key) != after.get(key):
            lines.append(f"{key}: {before.get(key)} -> {after.get(key)}")
    old_gpu, new_gpu = before.get("gpu") or {}, after.get("gpu") or {}
    for key in ("devices", "cuda", "cudnn", "driver"):
        if key in old_gpu and old_gpu.get(key) != new_gpu.get(key):
            lines.append(f"gpu {key}: {old_gpu.get(key)} -> {new_gpu.get(key)}")
    old_packages, new_packages = before.get("packages") or {}, after.get("packages") or {}
    for name in sorted(old_packages, key=str.lower):
        if old_packages[name] != new_packages.get(name):
            lines.append(
                f"{name}: {old_packages[name]} -> {new_packages.get(name, 'not installed')}"
            )
    return lines


def current_data_drift(record: Mapping[str, Any], folder: Path) -> list[str]:
    """Drift of the recorded data paths (relative ones from ``folder``) as they are now."""
    recorded = record["data"]
    if not recorded:
        return []
    located = {key: str(folder / key) if not Path(key).is_absolute() else key for key in recorded}
    missing = [key for key, path in located.items() if not Path(path).exists()]
    present = {key: path for key, path in located.items() if key not in missing}
    lines = [f"{key}: missing now" for key in missing]
    if present:
        try:
            now = fingerprint(list(present.values()))
        except InvalidOptionError as error:  # vanished between the check and the read
            return [*lines, str(error)]
        lines += data_drift(
            {key: recorded[key] for key in present},
            {key: now[path] for key, path in present.items()},
        )
    return lines


@dataclass
class OutputComparison:
    """Which code cells printed the same as the stored notebook."""

    matching: int = 0
    differing: list[str] = field(default_factory=list)  #: "cell 3 (id …): first line"
    compared: int = 0  #: code cells that had stored outputs


def compare_outputs(stored: Any, rerun: Any) -> OutputComparison:
    """Compare each code cell's normalised outputs, stored against rerun."""
    result = OutputComparison()
    for index, (old, new) in enumerate(zip(stored.cells, rerun.cells, strict=True)):
        if old.cell_type != "code" or not old.get("outputs"):
            continue
        result.compared += 1
        if normalize_cell(old.outputs) == normalize_cell(new.get("outputs", [])):
            result.matching += 1
        else:
            first = (old.source.strip().splitlines() or [""])[0][:60]
            result.differing.append(f"cell {index} (id {old.get('id', '?')}): {first}")
    return result


def format_record(record: Mapping[str, Any], where: str) -> str:
    """A readable account of a record, for ``nbrepro show``."""
    source = {"user": "given", "auto": "auto-assigned"}.get(record["seed_source"] or "", "none")
    environment = record["environment"]
    lines = [
        f"{where}: nbrepro record, schema {record['schema']}, written by nbrepro "
        f"{record.get('nbrepro_version', '?')} at {record.get('created', '?')}",
        f"  seed: {record['seed']} ({source}); deterministic: {record['deterministic']}; "
        f"per-cell: {'on' if record['per_cell'] else 'off'}; "
        f"threads: {record['threads'] if record['threads'] is not None else 'default'}",
    ]
    if record["cell_seeds"]:
        lines.append(f"  per-cell seeds: {len(record['cell_seeds'])} cells")
    set_vars = {k: v for k, v in record["env_vars"].items() if v is not None}
    lines.append(
        "  process-start settings: "
        + (", ".join(f"{k}={v}" for k, v in set_vars.items()) or "none set")
    )
    gpu = environment.get("gpu") or {}
    lines.append(
        f"  python {environment.get('python')} on {environment.get('platform')}; "
        f"cpu: {environment.get('cpu')} x{environment.get('cpu_count')}; "
        f"gpu: {', '.join(gpu.get('devices') or []) or 'none'}"
        + (f" (CUDA {gpu['cuda']}, cuDNN {gpu.get('cudnn')})" if gpu.get("cuda") else "")
    )
    packages = environment.get("packages") or {}
    lines.append(
        "  packages: " + (", ".join(f"{k} {v}" for k, v in packages.items()) or "none recorded")
    )
    for path, data in record["data"].items():
        size = f"{data.get('size', 0):,} bytes"
        what = f"{data['files']} files, {size}" if data.get("kind") == "dir" else size
        lines.append(f"  data: {path}: {what}, sha256 {str(data.get('sha256'))[:12]}")
    if record["findings"]:
        lines.append(f"  findings at export ({len(record['findings'])}):")
        for finding in record["findings"]:
            lines.append(
                f"    {finding.get('code')} [{finding.get('severity')}] {finding.get('message')}"
            )
    else:
        lines.append("  findings at export: none")
    return "\n".join(lines)


def record_json(record: Mapping[str, Any]) -> str:
    """The record as indented JSON (``nbrepro show --json``)."""
    return json.dumps(record, indent=2, sort_keys=True)


def drift_report(lines: Sequence[str], title: str) -> list[str]:
    """``lines`` under a heading, or a line saying there is none."""
    if not lines:
        return [f"{title}: none"]
    return [f"{title}:"] + [f"  {line}" for line in lines]
