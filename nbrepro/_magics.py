"""nbrepro's magics: parse the line, call the API, show the result."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display

from nbrepro import _api, _freshness, _restart
from nbrepro._config import REPLAY_SEED_VARIABLE
from nbrepro._panel import status_panel
from nbrepro.errors import (
    CannotRestartError,
    InvalidOptionError,
    InvalidSeedError,
    NbreproError,
    NotInIPythonError,
)


class _Once(argparse.Action):
    """Stores an option's value, and refuses the option given twice rather than pick one."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        given = namespace.__dict__.setdefault("_given", set())
        if self.dest in given:
            parser.error(f"{option_string} is given twice; give it once")
        given.add(self.dest)
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


class _FlagOnce(_Once):
    """A switch (``store_true``) that may be given once."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, const=True, default=False, **kwargs)


def parse_arguments(magic: Callable[..., Any], line: str) -> argparse.Namespace:
    """``line`` split as a shell splits it, then parsed by ``magic``'s argument parser.

    IPython's own splitting keeps quotes (``"my data.csv"`` would be a file name with quotes
    in it). Options must be spelt out: ``--det`` is refused, not taken for
    ``--deterministic``. Every refusal is a :class:`UsageError` that names the magic and shows
    its usage.
    """
    parser: argparse.ArgumentParser = magic.parser  # type: ignore[attr-defined]
    parser.allow_abbrev = False  # read at parse time; IPython's parser takes no such argument
    name = f"%{magic.__name__}"
    try:
        argv = shlex.split(line, posix=os.name != "nt")
    except ValueError as error:  # "No closing quotation", "No escaped character"
        raise UsageError(
            f"{name}: {str(error).lower()} in {line.strip()!r}: close each quote (put a path "
            "with spaces in matching quotes, or escape the space with a backslash)"
        ) from None
    if os.name == "nt":  # backslashes are path separators there, so no POSIX escapes
        argv = [_unquoted(arg) for arg in argv]
    try:
        return parser.parse_args(argv)
    except UsageError as error:
        # IPython's formatter writes reStructuredText ("::") and wraps lines: one line here.
        usage = " ".join(parser.format_usage().replace("::", "").split())
        raise UsageError(f"{name}: {error} (usage: {usage})") from None


def _unquoted(arg: str) -> str:
    if len(arg) >= 2 and arg[0] == arg[-1] and arg[0] in "\"'":
        return arg[1:-1]
    return arg


def seed_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``nbrepro.seed()`` that ``%repro_seed``'s parsed ``args`` ask for."""
    return {
        "deterministic": args.deterministic,
        "strict": args.strict,
        "per_cell": args.per_cell,
        "threads": args.threads,
        "quiet": args.quiet,
    }


@magics_class
class ReproMagics(Magics):
    """nbrepro's line magics."""

    @magic_arguments()
    @argument(
        "seed",
        nargs="?",
        default=None,
        help="experiment seed, an integer from 0 to 2147483647 (2**31-1); "
        "omitted: drawn from OS entropy, printed and recorded as auto-assigned",
    )
    @argument(
        "--deterministic",
        action=_FlagOnce,
        help="deterministic kernels: torch deterministic algorithms (nondeterministic ops warn "
        "and are recorded), cuDNN benchmark off, TensorFlow op determinism, cuBLAS workspace",
    )
    @argument("--strict", action=_FlagOnce, help="like --deterministic, but such ops raise")
    @argument(
        "--per-cell",
        action=_FlagOnce,
        help="reseed every PRNG before each cell from the experiment seed and the cell's id",
    )
    @argument(
        "--threads",
        metavar="N",
        action=_Once,
        default=None,
        help="fix intra/inter-op thread counts, an integer from 1 to 1024",
    )
    @argument(
        "--quiet",
        action=_FlagOnce,
        help="no line under a cell for the new findings it caused (the panel still lists them)",
    )
    @argument(
        "--restart",
        action=_FlagOnce,
        help="if the runtime is not fresh (cells ran before, or a process-start setting "
        "needs a new process), restart the kernel into a fresh one instead; run the notebook "
        "from the top afterwards. A runtime nbrepro started is not restarted again by itself, "
        "nor one a notebook runner (nbconvert --execute, papermill, nbrepro run) drives",
    )
    @line_magic
    def repro_seed(self, line: str) -> None:
        """Seed every PRNG now, and each framework when it is imported.

        Also says whether the runtime is fresh: nothing but imports and setup ran before, and
        the settings read at process start are in force; if not, names what ran, with the one
        fix that works here (``%repro_restart`` in a kernel, ``nbrepro run`` under a notebook
        runner, a new process in terminal IPython).
        """
        args = parse_arguments(self.repro_seed, line)
        try:
            if args.restart:
                _restart.ensure_restartable(self.shell)
            status = _api.seed(args.seed, **seed_options(args))
        except (
            InvalidSeedError,
            InvalidOptionError,
            NotInIPythonError,
            CannotRestartError,
        ) as error:
            raise UsageError(f"%repro_seed: {error}") from error
        freshness = _freshness.check_freshness(self.shell, status.findings)
        refusal = None
        if args.restart and not freshness.fresh:
            refusal = _freshness.restart_refusal(freshness)
            if refusal is None:
                # The process is replaced in a moment: what was just applied goes with it.
                print(f"nbrepro: not a fresh runtime: {freshness.reasons()}")
                print(_restart.restart(self.shell, started_by="%repro_seed --restart"))
                return
        if status.seed_source == "auto":
            # The same words whether drawn or replayed, so a rerun prints what the run did;
            # the replay is said on stderr, which output comparisons leave out.
            print(
                f"nbrepro: no seed given; auto-assigned {status.seed}. "
                f"To repeat this run: %repro_seed {status.seed}"
            )
            if os.environ.get(REPLAY_SEED_VARIABLE):
                print(
                    f"nbrepro: {status.seed} is the recorded seed, replayed from "
                    f"{REPLAY_SEED_VARIABLE}",
                    file=sys.stderr,
                )
        print(freshness.summary(status))
        if refusal is not None:
            print(refusal)

    @magic_arguments()
    @line_magic
    def repro_restart(self, line: str) -> None:
        """Restart the kernel in place into a fresh runtime for the current %repro_seed options.

        The new process has PYTHONHASHSEED=0, CUBLAS_WORKSPACE_CONFIG where the installed torch
        needs it, and the thread variables with --threads; same connection, every variable
        lost. Cells queued behind this one (a "Run All") are cancelled. Refused under a
        notebook runner (nbconvert --execute, papermill, nbrepro run), which would not run the
        notebook again: use `nbrepro run NOTEBOOK` there. On Colab the runtime
        is restarted without new environment variables.
        """
        parse_arguments(self.repro_restart, line)
        try:
            _restart.ensure_restartable(self.shell)
        except CannotRestartError as error:
            raise UsageError(f"%repro_restart: {error}") from error
        reason = _freshness.runs_once(self.shell)
        if reason is not None:
            # A UsageError fails the cell, so the runner reports it instead of a success
            # with every later cell unexecuted.
            raise UsageError(
                f"%repro_restart: not restarting: {reason}; after a restart every later cell "
                "would be left unexecuted. To run the notebook in a fresh runtime: "
                "`nbrepro run NOTEBOOK`"
            )
        print(_restart.restart(self.shell))

    @line_magic
    def repro_status(self, line: str) -> None:
        """Show the status panel: seed, options, frameworks, findings; it updates after each cell.

        A text/HTML summary where no widget can be shown (terminal IPython, nbconvert, no
        anywidget installed).
        """
        if line.strip():
            raise UsageError(f"%repro_status takes no arguments, got {line.strip()!r}")
        display(status_panel())

    @magic_arguments()
    @argument("paths", nargs="+", metavar="PATH", help="data files or folders to fingerprint")
    @line_magic
    def repro_data(self, line: str) -> None:
        """Fingerprint data files and folders into the record; warn when they changed.

        Compared with this session's earlier fingerprints and with the record embedded in the
        notebook (where the notebook can be located). Unchanged data is re-checked from a
        cache keyed by size and modification time.
        """
        args = parse_arguments(self.repro_data, line)
        try:
            # `~/data` as a shell would expand it (%repro_export's paths expand the same way).
            changed = _api.fingerprint([os.path.expanduser(path) for path in args.paths])
        except InvalidOptionError as error:
            raise UsageError(f"%repro_data: {error}") from error
        for path, print_ in _api.fingerprint_summary(changed):
            print(f"nbrepro: {path}: {print_}")
        for finding in [f for f in _api.audit() if f.code == "NBR601"]:
            print(finding)

    @magic_arguments()
    @argument(
        "target",
        nargs="?",
        default=None,
        metavar="PATH",
        help="where to write; default: <notebook>.repro.ipynb beside the notebook",
    )
    @argument(
        "--source",
        metavar="NB",
        action=_Once,
        default=None,
        help="the running notebook's file, where the kernel cannot tell",
    )
    @argument("--overwrite", action=_FlagOnce, help="allow PATH to be the notebook itself")
    @line_magic
    def repro_export(self, line: str) -> None:
        """Write the notebook (as last saved) with its reproducibility record embedded.

        The record (``metadata["nbrepro"]``): seed and options, per-cell seeds, process-start
        settings, environment, data fingerprints, findings; never secrets. Atomic; every cell
        and output kept; the source notebook is only written with --overwrite.
        """
        args = parse_arguments(self.repro_export, line)
        try:
            exported = _api.export(args.target, source=args.source, overwrite=args.overwrite)
        except NbreproError as error:  # no notebook found, target refused, unwritable
            raise UsageError(f"%repro_export: {error}") from error
        record = exported.record
        print(
            f"nbrepro: wrote {exported.target} from {exported.source} (seed {record['seed']}, "
            f"{len(record['findings'])} findings). It holds the notebook as last saved: save "
            "first to include the latest outputs."
        )
