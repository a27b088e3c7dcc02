"""A snapshot of the session for people: ``nbrepro.status()`` and ``%repro_status``."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from nbrepro._audit import audit
from nbrepro._findings import Finding
from nbrepro._runtime_record import Runtime, current_runtime
from nbrepro._session import CellSeed, Session


@dataclass(frozen=True)
class FrameworkStatus:
    """One framework nbrepro knows how to seed."""

    name: str
    version: str | None  #: ``None`` while the framework is not imported
    seeded: bool  #: seeded now (an imported framework) or will be on import

    @property
    def imported(self) -> bool:
        """Whether the process has imported the framework."""
        return self.version is not None


def seed_source_words(source: str | None) -> str:
    """How the seed was chosen, in words: ``given``, ``auto-assigned``, ``from nbrepro sweep``."""
    return {"user": "given", "sweep": "from nbrepro sweep"}.get(source or "", "auto-assigned")


@dataclass(frozen=True)
class Status:
    """What is in force: seed, options, frameworks, the last cell's seed, findings."""

    seed: int | None
    seed_source: str | None  #: ``"user"``, ``"auto"`` or ``"sweep"``
    deterministic: str  #: ``"off"``, ``"warn"`` or ``"strict"``
    per_cell: bool
    threads: int | None
    frameworks: tuple[FrameworkStatus, ...]
    last_cell: CellSeed | None
    #: generators the user's code created without a seed, that nbrepro seeded
    unseeded_generators: int
    findings: tuple[Finding, ...]  #: most severe first
    runtime: Runtime | None = None  #: how nbrepro started this process (%repro_restart), if it did
    #: generators libraries created without a seed while being imported (seeded apart)
    library_generators: int = 0

    def __str__(self) -> str:
        if self.seed is None:
            lines = ["nbrepro: no experiment seed yet; run %repro_seed (or nbrepro.seed())"]
        else:
            how = seed_source_words(self.seed_source)
            lines = [
                f"nbrepro: seed {self.seed} ({how}) | deterministic: {self.deterministic}"
                f" | per-cell: {'on' if self.per_cell else 'off'}"
                f" | threads: {self.threads if self.threads is not None else 'default'}"
            ]
        imported = [f"{f.name} {f.version}" for f in self.frameworks if f.imported]
        waiting = [f.name for f in self.frameworks if not f.imported]
        state = "seeded" if self.seed is not None else "imported"
        lines.append(f"  {state}: {', '.join(imported) or 'nothing'}")
        if self.seed is not None and waiting:
            lines.append(f"  seeded when imported: {', '.join(waiting)}")
        if self.last_cell is not None:
            lines.append(f"  last cell: seed {self.last_cell.seed} (cell {self.last_cell.cell})")
        if self.unseeded_generators or self.library_generators:
            lines.append(f"  generators made without a seed: {generator_count(self)}")
        if self.runtime is not None:
            lines.append(f"  runtime: {self.runtime}")
        for finding in self.findings:
            lines.append("  " + str(finding).replace("\n", "\n  "))
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def to_dict(self) -> dict[str, Any]:
        """The status as JSON types: what the status widget syncs to the browser."""
        return asdict(self, dict_factory=_json_fields)


def generator_count(status: Status) -> str:
    """``"2 (+5 inside libraries)"``: the user's unseeded generators, then the libraries'."""
    libraries = f" (+{status.library_generators} inside libraries)"
    return f"{status.unseeded_generators}{libraries if status.library_generators else ''}"


@functools.cache
def _installed(module: str) -> bool:
    """Whether a top-level module can be imported; it is looked for, not imported."""
    # Once per name: the search walks sys.path (about 0.5 ms a name), and the status is
    # taken after every cell. A framework installed later is seeded when imported all the same.
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or half-initialised package
        return False


def _json_fields(fields: list[tuple[str, Any]]) -> dict[str, Any]:
    # asdict leaves enums (Severity) and tuples as they are; JSON has strings and lists.
    return {name: _json_value(value) for name, value in fields}


def _json_value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    return list(value) if isinstance(value, tuple) else value


def snapshot(session: Session, namespace: Mapping[str, Any] | None = None) -> Status:
    """The :class:`Status` of ``session`` now; ``namespace`` is the user's, when known."""
    config = session.config
    backends = session.backends
    if not backends:
        from nbrepro._backends import load_backends

        backends = load_backends()
    frameworks = tuple(
        FrameworkStatus(
            name=b.name,
            version=b.version() if b.loaded() else None,
            seeded=config is not None and (b in session.active or not b.loaded()),
        )
        for b in backends
        if b.loaded() or _installed(b.module)
    )
    findings = tuple(audit(session, namespace))
    return Status(
        seed=None if config is None else config.seed,
        seed_source=None if config is None else config.seed_source.value,
        deterministic="off" if config is None else config.deterministic.value,
        per_cell=config is not None and config.per_cell,
        threads=None if config is None else config.threads,
        frameworks=frameworks,
        last_cell=session.last_cell,
        unseeded_generators=sum(d.library is None for d in session.unseeded),
        library_generators=sum(d.library is not None for d in session.unseeded),
        findings=findings,
        runtime=current_runtime(),
    )
