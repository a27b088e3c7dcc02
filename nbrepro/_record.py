"""The reproducibility record: what nbrepro writes under ``metadata["nbrepro"]``.

Schema 1 (documented in README.md, "The record"):

    schema, nbrepro_version, created, seed, seed_source, deterministic, per_cell, threads,
    cell_seeds, env_vars, environment, data, findings

Everything nbrepro writes into a notebook lives under this one key, and writing it again
replaces it whole. Secrets never enter it: environment variables come through an allowlist
and every free-text value is redacted.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from nbrepro._audit import audit
from nbrepro._environment import environment
from nbrepro._redact import redact, redact_tree
from nbrepro._session import Session
from nbrepro.errors import RecordError

SCHEMA = 1
KEY = "nbrepro"
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "schema": int,
    "seed": (int, type(None)),
    "seed_source": (str, type(None)),
    "deterministic": str,
    "per_cell": bool,
    "threads": (int, type(None)),
    "cell_seeds": dict,
    "env_vars": dict,
    "environment": dict,
    "data": dict,
    "findings": list,
}


def build_record(session: Session, namespace: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The record of ``session`` now."""
    from nbrepro import __version__

    config = session.config
    machine = environment()
    env_vars = machine.pop("env_vars")
    return {
        "schema": SCHEMA,
        "nbrepro_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seed": None if config is None else config.seed,
        "seed_source": None if config is None else config.seed_source.value,
        "deterministic": "off" if config is None else config.deterministic.value,
        "per_cell": config is not None and config.per_cell,
        "threads": None if config is None else config.threads,
        "cell_seeds": dict(session.cell_seeds),
        "env_vars": env_vars,
        "environment": machine,
        "data": {redact(path): fingerprint for path, fingerprint in session.data.items()},
        "findings": redact_tree(
            [
                {"code": f.code, "severity": f.severity.value, "message": f.message, "fix": f.fix}
                for f in audit(session, namespace)
            ]
        ),
    }


def read_record(notebook: Mapping[str, Any], where: str = "the notebook") -> dict[str, Any] | None:
    """The record in ``notebook``'s metadata; ``None`` when it has none.

    Raises:
        RecordError: ``metadata["nbrepro"]`` is not a record this nbrepro can read (corrupt,
            written by something else, or a newer schema), naming what is wrong.
    """
    record = notebook.get("metadata", {}).get(KEY)
    if record is None:
        return None
    if not isinstance(record, Mapping):
        raise RecordError(
            f'{where}: metadata["{KEY}"] is a {type(record).__name__}, not an nbrepro record'
        )
    schema = record.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool):
        raise RecordError(
            f'{where}: metadata["{KEY}"] has no integer "schema"; it was not written by nbrepro'
        )
    if schema > SCHEMA:
        raise RecordError(
            f"{where}: the record has schema {schema}, newer than this nbrepro reads "
            f"(schema {SCHEMA}); upgrade nbrepro"
        )
    for key, kind in _REQUIRED.items():
        if key not in record:
            raise RecordError(f'{where}: the record lacks "{key}"; it is damaged')
        if not isinstance(record[key], kind) or (kind is int and isinstance(record[key], bool)):
            raise RecordError(
                f'{where}: the record\'s "{key}" is {record[key]!r}, not the expected type; '
                "it is damaged"
            )
    return dict(record)


def embed(notebook: Any, record: Mapping[str, Any]) -> None:
    """Put ``record`` under ``metadata["nbrepro"]``, replacing any earlier one."""
    notebook.metadata[KEY] = dict(record)
