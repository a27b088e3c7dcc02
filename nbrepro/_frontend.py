"""What nbrepro's JupyterLab / Notebook 7 extension (``js/src``) asks the kernel.

The extension sends silent execute requests (no prompt number, no history, no cell hooks)
whose ``user_expressions`` call these functions, wrapped in :class:`Json` so that the answer
comes back as ``application/json`` rather than as a Python repr. The status and
record expressions first check that nbrepro is imported in the kernel, so that a kernel which
never loaded nbrepro imports nothing and gets nothing written into its notebook; only
:func:`restart`, which the user asks for by name, imports nbrepro into any kernel.
"""

from __future__ import annotations

from typing import Any

from nbrepro._config import Config, make_config
from nbrepro.errors import NbreproError

#: How a runtime restarted by the extension's command names its starter (``%repro_seed``
#: and ``%repro_status`` show it).
STARTED_BY = "Restart and Run All Reproducibly"


class Json:
    """A value that IPython's display formatter (and so ``user_expressions``) sends as JSON."""

    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value

    def _repr_json_(self) -> dict[str, Any]:
        return self.value


def state() -> dict[str, Any]:
    """The status item's content: seed, options, finding counts, summary HTML.

    ``{"seed", "seed_source", "deterministic", "per_cell", "errors", "warnings", "infos",
    "html"}``; ``html`` is the ``%repro_status`` summary (escaped, no scripts).
    """
    from nbrepro._findings import Severity
    from nbrepro._panel import summary_html
    from nbrepro._session import session
    from nbrepro._status import snapshot

    status = snapshot(session(), _user_namespace())
    counts = {severity: 0 for severity in Severity}
    for finding in status.findings:
        counts[finding.severity] += 1
    return {
        "seed": status.seed,
        "seed_source": status.seed_source,
        "deterministic": status.deterministic,
        "per_cell": status.per_cell,
        "errors": counts[Severity.ERROR],
        "warnings": counts[Severity.WARNING],
        "infos": counts[Severity.INFO],
        "html": summary_html(status),
    }


def record() -> dict[str, Any]:
    """The session's reproducibility record now (redacted): what a save embeds."""
    from nbrepro._record import build_record
    from nbrepro._session import session

    return dict(build_record(session(), _user_namespace()))


def restart(seed_line: str | None = None) -> dict[str, str]:
    """Restart this kernel into a fresh runtime with the process-start settings.

    The settings are those of the session's configuration; a kernel that has not run
    ``%repro_seed`` yet takes them from ``seed_line``, the notebook's first ``%repro_seed``
    line as the front end found it (``"42 --threads 2"``), so that the first restart already
    starts the process with the thread variables and ``--deterministic``'s settings. A line
    that does not parse is left to the notebook's own ``%repro_seed`` to refuse.

    The restart happens once the request that called this has replied (see
    :func:`nbrepro._restart.restart`); returns ``{"message": the text to show}``.

    Raises:
        CannotRestartError: this kernel cannot be restarted in place (Windows, in-process).
    """
    from IPython import get_ipython

    from nbrepro._restart import restart as restart_kernel

    stand_in = None if seed_line is None else _notebook_config(seed_line)
    return {"message": restart_kernel(get_ipython(), started_by=STARTED_BY, config=stand_in)}


def _notebook_config(seed_line: str) -> Config | None:
    """The configuration ``%repro_seed SEED_LINE`` would make; None where it would refuse."""
    from IPython.core.error import UsageError

    from nbrepro._magics import ReproMagics, parse_arguments, seed_options

    try:
        args = parse_arguments(ReproMagics.repro_seed, seed_line)
        # The seed does not matter to the settings: 0 stands in for an auto-assigned one.
        return make_config(0 if args.seed is None else args.seed, **seed_options(args))
    except (UsageError, NbreproError):
        return None


def _user_namespace() -> dict[str, Any] | None:
    from IPython import get_ipython

    shell = get_ipython()
    return None if shell is None else shell.user_ns
