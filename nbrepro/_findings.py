"""Findings: what still stands between this session and a reproducible run.

A finding has a stable ``code`` (like a linter rule: tests, docs and users may rely on it),
a ``severity``, a one-line ``message`` naming the concrete thing, and the ``fix``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(str, enum.Enum):
    """How much a finding threatens reproducibility; ordered most severe first."""

    ERROR = "error"  #: results will differ between runs
    WARNING = "warning"  #: results may differ between runs or machines
    INFO = "info"  #: worth knowing; does not change results by itself

    @property
    def rank(self) -> int:
        """0 for the most severe."""
        return list(Severity).index(self)


@dataclass(frozen=True)
class Finding:
    """One thing that is still not reproducible, and how to fix it."""

    code: str
    severity: Severity
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.code} [{self.severity.value}] {self.message}\n    fix: {self.fix}"


# Codes in use. Issue-tracked additions go in the same table in README.md.
HASH_RANDOMIZATION = "NBR101"
CUBLAS_WORKSPACE_TOO_LATE = "NBR102"
THREAD_SETTING_TOO_LATE = "NBR103"
NONDETERMINISTIC_OP = "NBR201"
BACKEND_FAILED = "NBR301"


def restart_fix(settings: dict[str, str]) -> str:
    """The fix for settings a running process can no longer change."""
    assignments = " ".join(f"{name}={value}" for name, value in settings.items())
    return (
        f"start the kernel with {assignments} in its environment (restart it), "
        "then run the notebook from the top"
    )
