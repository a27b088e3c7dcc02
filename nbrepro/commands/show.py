"""``nbrepro show``: print the reproducibility record embedded in a notebook, readably or as JSON.

The record is read through the one validating reader (:func:`nbrepro._record.read_record`):
a damaged record is refused whole, naming the key and the value, instead of being printed in
part or crashing on a value of the wrong type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

from nbrepro._notebook_file import read_notebook
from nbrepro._record import Record, read_record
from nbrepro.commands import Status, print_error
from nbrepro.errors import NbreproError, RecordError


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


def read_recorded(path: Path) -> tuple[NotebookNode, Record]:
    """The notebook at ``path`` and its validated record.

    Raises:
        NotebookFileError: the notebook cannot be read.
        RecordError: it has no record, or a damaged one (naming the key and the value).
    """
    notebook = read_notebook(path)
    record = read_record(notebook, str(path))
    if record is None:
        raise RecordError(
            f"{path}: no nbrepro record in its metadata; make one with `nbrepro run` or "
            "%repro_export"
        )
    return notebook, record


@dataclass(frozen=True)
class ShowResult:
    """A record to print, or why there is none."""

    path: Path
    text: str | None = None  #: the record, readable or JSON
    error: str | None = None

    @property
    def status(self) -> Status:
        """0 shown, 2 no readable record."""
        return Status.OK if self.error is None else Status.ERROR

    def print(self) -> None:
        """The record on stdout, or the problem on stderr."""
        if self.error is not None:
            print_error("show", self.error)
        else:
            print(self.text)


def show(path: Path, *, as_json: bool = False) -> ShowResult:
    """Read ``path``'s record for printing (``as_json``: the record as indented JSON)."""
    try:
        _, record = read_recorded(path)
    except NbreproError as error:
        return ShowResult(path, error=str(error))
    return ShowResult(path, record_json(record) if as_json else format_record(record, str(path)))
