"""Export the running notebook with its record, and record data fingerprints.

The kernel does not know its notebook's file. Where the front ends tell it:

- VS Code puts the absolute path in ``__vsc_ipynb_file__`` in the user namespace;
- ipykernel >= 6.21.2 sets ``__session__`` and jupyter_server >= 2 sets the environment
  variable ``JPY_SESSION_NAME`` to the notebook's path (JupyterLab, Notebook 7); it may be
  relative to the server's root, so it is also tried against the kernel's working folder,
  which Jupyter sets to the notebook's folder;
- Colab has no file: the front end hands over the notebook JSON
  (``google.colab._message.blocking_request("get_ipynb")``).

Elsewhere the user names the notebook (``%repro_export --source NB``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbrepro._findings import DATA_CHANGED, Finding, Severity
from nbrepro._fingerprint import drift, fingerprint
from nbrepro._record import Fingerprint, Record, build_record, embed, read_record
from nbrepro._redact import redact
from nbrepro._session import Session
from nbrepro.errors import InvalidOptionError, NbreproError, NotebookNotFoundError


@dataclass(frozen=True)
class Exported:
    """Where an export went and what it recorded."""

    source: str  #: the notebook read (a path, or "Colab" for the front end's copy)
    target: Path
    record: Record


def _candidates(value: str) -> list[Path]:
    path = Path(value).expanduser()
    return [path, Path.cwd() / path, Path.cwd() / path.name]


def locate_notebook(namespace: Mapping[str, Any]) -> Path | None:
    """The running notebook's file, when the front end says which it is."""
    for value in (
        namespace.get("__vsc_ipynb_file__"),
        namespace.get("__session__"),
        os.environ.get("JPY_SESSION_NAME"),
    ):
        if not isinstance(value, str) or not value.endswith(".ipynb"):
            continue
        for candidate in _candidates(value):
            if candidate.is_file():
                return candidate.resolve()
    return None


def _colab_notebook() -> Any:
    from google.colab import _message

    reply = _message.blocking_request("get_ipynb", timeout_sec=60)
    import nbformat

    return nbformat.from_dict(reply["ipynb"])  # type: ignore[no-untyped-call]


def export(
    session: Session,
    namespace: Mapping[str, Any],
    target: str | None = None,
    *,
    source: str | None = None,
    overwrite: bool = False,
) -> Exported:
    """Write the running notebook, with its record embedded, to ``target``.

    ``source`` names the notebook where it cannot be located. ``target`` defaults to
    ``<name>.repro.ipynb`` beside the source; writing over the source needs ``overwrite``.
    The write is atomic and keeps every cell and output of the saved notebook.

    Raises:
        NotebookNotFoundError: the notebook cannot be located and ``source`` is not given.
        InvalidOptionError: ``target`` is the source without ``overwrite``.
        NotebookFileError: the source cannot be read or the target cannot be written.
    """
    from nbrepro._notebook_file import check_writable, read_notebook, write_notebook

    colab = source is None and "google.colab" in sys.modules
    if source is not None:
        source_path: Path | None = Path(source).expanduser().resolve()
    elif colab:
        source_path = None
    else:
        source_path = locate_notebook(namespace)
        if source_path is None:
            raise NotebookNotFoundError(
                "cannot tell which notebook this kernel runs (no __vsc_ipynb_file__, "
                "__session__ or JPY_SESSION_NAME): name it, e.g. "
                "%repro_export --source analysis.ipynb"
            )
    if target is None:
        if source_path is None:
            target_path = Path.cwd() / "notebook.repro.ipynb"
        else:
            target_path = source_path.with_name(source_path.stem + ".repro.ipynb")
    else:
        target_path = Path(target).expanduser().resolve()
    if source_path is not None and target_path == source_path and not overwrite:
        raise InvalidOptionError(
            f"{target_path} is the notebook itself; pass --overwrite to write the record "
            "into it, or give another file name"
        )
    check_writable(target_path)
    notebook = _colab_notebook() if source_path is None else read_notebook(source_path)
    record = build_record(session, namespace)
    embed(notebook, record)
    write_notebook(notebook, target_path)
    return Exported(source="Colab" if source_path is None else str(source_path),
                    target=target_path, record=record)  # fmt: skip


def record_data(
    session: Session, paths: list[str], namespace: Mapping[str, Any] | None = None
) -> list[Finding]:
    """Fingerprint ``paths`` into the session; findings for data that changed.

    Compared with the fingerprints this session recorded before and, when the running
    notebook can be located, with the record embedded in it.
    """
    current = fingerprint(paths)
    previous: dict[str, Fingerprint] = {p: session.data[p] for p in paths if p in session.data}
    where = "the last %repro_data"
    if namespace is not None:
        located = locate_notebook(namespace)
        if located is not None:
            recorded = _embedded_data(located)
            for path in paths:
                # The record keys each path redacted, to the same placeholder as now.
                if redact(path) in recorded and path not in previous:
                    previous[path] = recorded[redact(path)]
                    where = f"the record in {located.name}"
    session.data.update(current)
    findings = [
        Finding(
            DATA_CHANGED,
            Severity.WARNING,
            f"data changed since {where}: {line}",
            "if the change is intended, the new fingerprint is now recorded; otherwise "
            "restore the data the record names",
        )
        for line in drift(previous, current)
    ]
    session.findings += [f for f in findings if f not in session.findings]
    return findings


def _embedded_data(path: Path) -> dict[str, Fingerprint]:
    from nbrepro._notebook_file import read_notebook

    try:
        record = read_record(read_notebook(path), str(path))
    except NbreproError:  # an unreadable record is reported by rerun/show, not here
        return {}
    return {} if record is None else record["data"]
