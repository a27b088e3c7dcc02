"""The reproducibility record: what nbrepro writes under ``metadata["nbrepro"]``.

Schema 1 (documented in README.md, "The record"):

    schema, nbrepro_version, created, seed, seed_source, deterministic, per_cell, threads,
    cell_seeds, env_vars, environment, data, findings

Everything nbrepro writes into a notebook lives under this one key, and writing it again
replaces it whole. Secrets never enter it: environment variables come through an allowlist
and every free-text value, data path and listed file name is redacted to a stable
placeholder. The typed shape and its validating reader are in :mod:`nbrepro._record_schema`;
this module builds a record from a session and reads one from a notebook.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, cast

from nbrepro._audit import audit
from nbrepro._environment import environment
from nbrepro._record_schema import (
    KEY,
    SCHEMA,
    DirFingerprint,
    Environment,
    FileFingerprint,
    FindingEntry,
    Fingerprint,
    Record,
    validate_record,
)
from nbrepro._redact import redact, redact_fingerprint
from nbrepro._session import Session

__all__ = [
    "KEY",
    "SCHEMA",
    "DirFingerprint",
    "Environment",
    "FileFingerprint",
    "FindingEntry",
    "Fingerprint",
    "Record",
    "build_record",
    "embed",
    "read_record",
    "validate_record",
]


def build_record(session: Session, namespace: Mapping[str, Any] | None = None) -> Record:
    """The record of ``session`` now."""
    from nbrepro import __version__

    config = session.config
    machine = environment()
    return Record(
        schema=SCHEMA,
        nbrepro_version=__version__,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        seed=None if config is None else config.seed,
        seed_source=None if config is None else config.seed_source.value,
        deterministic="off" if config is None else config.deterministic.value,
        per_cell=config is not None and config.per_cell,
        threads=None if config is None else config.threads,
        cell_seeds=dict(session.cell_seeds),
        env_vars=machine["env_vars"],
        environment=cast("Environment", {k: v for k, v in machine.items() if k != "env_vars"}),
        # Each path redacted to its own stable placeholder: two paths stay two keys.
        data={redact(path): redact_fingerprint(fp) for path, fp in session.data.items()},
        findings=[
            FindingEntry(
                code=f.code,
                severity=f.severity.value,
                message=redact(f.message),
                fix=redact(f.fix),
            )
            for f in audit(session, namespace)
        ],
    )


def read_record(notebook: Mapping[str, Any], where: str = "the notebook") -> Record | None:
    """The record in ``notebook``'s metadata, validated whole; ``None`` when it has none.

    Raises:
        RecordError: ``metadata["nbrepro"]`` is not a record this nbrepro can read (corrupt,
            written by something else, a newer schema, any value of the wrong type or
            range), naming the key path and the value.
    """
    metadata = notebook.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    record = metadata.get(KEY)
    if record is None:
        return None
    return validate_record(record, where)


def embed(notebook: Any, record: Record | Mapping[str, Any]) -> None:
    """Put ``record`` under ``metadata["nbrepro"]``, replacing any earlier one."""
    notebook.metadata[KEY] = dict(record)
