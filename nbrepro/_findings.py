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

    def line(self) -> str:
        """The finding on one line, as it is shown under the cell that caused it."""
        return f"{self.code} [{self.severity.value}] {self.message} — fix: {self.fix}"


# Codes in use, grouped by hundreds; README.md's findings table documents each one.
# 0xx: the experiment seed
NO_SEED = "NBR001"
DRAWN_BEFORE_SEED = "NBR002"
# 1xx: settings only a fresh process can change
HASH_RANDOMIZATION = "NBR101"
CUBLAS_WORKSPACE_TOO_LATE = "NBR102"
THREAD_SETTING_TOO_LATE = "NBR103"
# 2xx: nondeterministic kernels
NONDETERMINISTIC_OP = "NBR201"
TORCH_DETERMINISM_OFF = "NBR202"
CUDNN_BENCHMARK_ON = "NBR203"
TF_DETERMINISM_OFF = "NBR204"
TF_NONDETERMINISTIC_GENERATOR = "NBR205"  # retired: such generators are seeded now
# 3xx: generators nbrepro does not seed
BACKEND_FAILED = "NBR301"
UNCOVERED_GENERATOR = "NBR302"
DEFAULT_RNG_IMPORTED_EARLY = "NBR303"  # retired: names bound early are covered now
USER_SEED_IN_PER_CELL_MODE = "NBR304"
# 4xx: sources nothing can seed
CLOCK_SEED = "NBR401"
ENTROPY_VALUE = "NBR402"
UNSORTED_LISTING = "NBR403"
SET_ORDER = "NBR404"
CLOCK_DECIDES = "NBR405"
# 5xx: data-loading workers
DATALOADER_WORKERS_UNSEEDED = "NBR501"
TF_DATA_NONDETERMINISTIC = "NBR502"
FORKED_WORKERS_DRAW = "NBR503"
# 6xx: drift outside the code
DATA_CHANGED = "NBR601"


def restart_fix(settings: dict[str, str]) -> str:
    """The fix for settings a running process can no longer change."""
    assignments = " ".join(f"{name}={value}" for name, value in settings.items())
    return (
        f"start the kernel with {assignments} in its environment (restart it), "
        "then run the notebook from the top"
    )
