"""``nbrepro rerun``: repeat a recorded run, report drift and which outputs still match.

A rerun takes everything from the record embedded in the notebook, validated whole before
anything runs (a bad seed or thread count is an error naming the key and the value, not an
unseeded run): the seed (an auto-assigned one too, replayed through ``NBREPRO_SEED``), the
options, the process-start variables, and the cell ids that key per-cell seeds (they are in
the notebook). It executes through the same steps as ``nbrepro run``, then reports drift
(Python, platform, GPU/CUDA, package versions, data fingerprints) and which executed cells'
outputs match the stored ones, compared through the one normaliser.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

from nbrepro._config import REPLAY_SEED_VARIABLE
from nbrepro._execute import CellRef
from nbrepro._fingerprint import drift as data_drift
from nbrepro._fingerprint import fingerprint
from nbrepro._normalize import normalize_cell
from nbrepro._notebook_file import check_writable
from nbrepro._redact import PLACEHOLDER
from nbrepro.commands import Progress, Status, print_error
from nbrepro.commands.run import default_output, error_text, execute_and_write
from nbrepro.commands.show import read_recorded
from nbrepro.errors import InvalidOptionError, NbreproError


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
    # A path whose name held something secret-looking was recorded with a placeholder: there
    # is no telling where it is now, which is not the same as its being gone.
    hidden = [key for key in recorded if PLACEHOLDER.search(key)]
    lines = [
        f"{key}: cannot be checked (part of its name was redacted as a secret when recorded)"
        for key in hidden
    ]
    located = {
        key: str(folder / key) if not Path(key).is_absolute() else key
        for key in recorded
        if key not in hidden
    }
    missing = [key for key, path in located.items() if not Path(path).exists()]
    present = {key: path for key, path in located.items() if key not in missing}
    lines += [f"{key}: missing now" for key in missing]
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
    """Which executed code cells printed the same as the stored notebook."""

    matching: int = 0
    differing: list[CellRef] = field(default_factory=list)
    compared: int = 0  #: code cells the stored notebook shows as executed


def compare_outputs(stored: NotebookNode, rerun: NotebookNode) -> OutputComparison:
    """Compare each executed code cell's normalised outputs, stored against rerun.

    A cell counts as executed when it has an execution count or outputs: a cell that printed
    nothing is compared too, so that a rerun printing something there is a difference.
    """
    result = OutputComparison()
    for index, (old, new) in enumerate(zip(stored.cells, rerun.cells, strict=True)):
        ran = old.get("execution_count") is not None or old.get("outputs")
        if old.cell_type != "code" or not ran:
            continue
        result.compared += 1
        if normalize_cell(old.get("outputs", [])) == normalize_cell(new.get("outputs", [])):
            result.matching += 1
        else:
            result.differing.append(CellRef.of(stored, index))
    return result


def drift_report(lines: Sequence[str], title: str) -> list[str]:
    """``lines`` under a heading, or a line saying there is none."""
    if not lines:
        return [f"{title}: none"]
    return [f"{title}:"] + [f"  {line}" for line in lines]


@dataclass(frozen=True)
class RerunResult:
    """What a rerun found: drift, matching outputs, a failing cell; or why it could not run."""

    source: Path
    output: Path | None = None
    summary: str = ""  #: seed and options replayed
    environment_drift: tuple[str, ...] = ()
    data_drift: tuple[str, ...] = ()
    comparison: OutputComparison | None = None
    failure: str | None = None  #: the cell that raised, timed out or killed the kernel
    error: str | None = None  #: why nothing was rerun

    @property
    def status(self) -> Status:
        """0 every executed cell matches, 1 some differ or a cell failed, 2 an error."""
        if self.error is not None:
            return Status.ERROR
        if self.failure is not None or self.comparison is None or self.comparison.differing:
            return Status.FAILED
        return Status.OK

    def print(self) -> None:
        """The report on stdout; a failing cell or an error on stderr."""
        if self.error is not None:
            print_error("rerun", self.error)
            return
        comparison = self.comparison or OutputComparison()
        lines = [
            f"nbrepro rerun: {self.source}: {self.summary}; wrote {self.output}",
            *drift_report(self.environment_drift, "environment drift"),
            *drift_report(self.data_drift, "data drift"),
            f"outputs: {comparison.matching} of {comparison.compared} executed code cells match",
            *[f"  differs: {cell}" for cell in comparison.differing],
        ]
        print("\n".join(lines))
        if self.failure is not None:
            print_error("rerun", f"{self.source}: {self.failure}")


def rerun(
    source: Path,
    *,
    output: Path | None = None,
    timeout: int | None = None,
    kernel_name: str | None = None,
    progress: Progress,
) -> RerunResult:
    """Rerun ``source`` from its record in a fresh kernel; write the rerun to ``output``.

    ``output`` defaults to ``NB.rerun.ipynb`` beside the source. Nothing runs when the record
    is missing or damaged, or the output cannot be written.
    """
    try:
        stored, record = read_recorded(source)
        target = output or default_output(source, "rerun")
        check_writable(target)  # before anything runs
        data_lines = current_data_drift(record, source.resolve().parent)  # before the run
        arguments = seed_arguments(record)
        notebook = copy.deepcopy(stored)
        failure = execute_and_write(
            notebook,
            source,
            target,
            progress=progress,
            timeout=timeout,
            kernel_name=kernel_name,
            seed_arguments=arguments if record["seed"] is not None else None,
            variables=kernel_variables(record),
            started_by="nbrepro rerun",
        )
    except NbreproError as error:
        return RerunResult(source, error=error_text(error, source))
    new_record = notebook.metadata.get("nbrepro") or {}
    return RerunResult(
        source,
        target,
        summary=f"seed {record['seed']} ({record['seed_source']}), %repro_seed {arguments}",
        environment_drift=tuple(
            environment_drift(record["environment"], new_record.get("environment", {}))
        ),
        data_drift=tuple(data_lines),
        comparison=compare_outputs(stored, notebook),
        failure=None if failure is None else str(failure),
    )
