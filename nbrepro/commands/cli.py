"""The ``nbrepro`` command: parsing, dispatch to the commands, exit statuses, Ctrl-C.

Exit statuses (:class:`nbrepro.commands.Status`): ``run`` 0 executed, 1 a cell raised / timed
out / killed the kernel, 2 usage, input or output error, or the kernel did not start.
``verify`` and ``explain`` 0 reproducible, 1 not reproducible, 2 error (bad notebook, a run
failed, a cell that fails under the recorder). ``rerun``
0 every executed cell's output matches, 1 some differ or a cell failed, 2 error (no readable
or a damaged record, ...). ``show`` 0, or 2 without a readable record. Every command: 130
after Ctrl-C, 143 after SIGTERM, once every kernel it started is stopped. Progress goes to
stderr as plain lines; every error is one line, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Protocol

from nbrepro import __version__
from nbrepro._config import MAX_SEED
from nbrepro.commands import Status, progress_printer
from nbrepro.errors import MissingDependencyError, NbreproError

EXIT_TERMINATED = 143  # 128 + SIGTERM


class Result(Protocol):
    """What every command returns: an exit status, and a report that prints itself."""

    @property
    def status(self) -> int:
        """The exit status."""

    def print(self) -> None:
        """Print the report (stdout) and any problem (stderr)."""


def _positive(kind: str, minimum: int = 1) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{kind} must be at least {minimum}, not {value}")
        return value

    parse.__name__ = kind  # argparse names the type in its messages
    return parse


def _seed(text: str) -> int:
    from nbrepro._config import validate_seed

    try:
        return validate_seed(text)
    except NbreproError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parser() -> argparse.ArgumentParser:
    """The ``nbrepro`` argument parser."""
    top = argparse.ArgumentParser(
        prog="nbrepro",
        description="Execute and verify Jupyter notebooks in fresh, reproducibly started kernels.",
    )
    top.add_argument("--version", action="version", version=f"nbrepro {__version__}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="execute a notebook in a fresh kernel and write the executed notebook",
        description="Execute NB top to bottom in a fresh kernel started with PYTHONHASHSEED "
        "fixed (and CUBLAS_WORKSPACE_CONFIG where torch needs it), sending each cell's id as "
        "JupyterLab does. Exit 0 executed, 1 a cell failed, 2 usage/input/output error.",
    )
    run.add_argument("notebook", metavar="NB", type=Path, help="the notebook to execute")
    _output(run, "the executed notebook", ".nbrepro")
    run.add_argument(
        "--seed",
        metavar="S",
        type=_seed,
        help=f"run %%load_ext nbrepro and %%repro_seed S (0..{MAX_SEED}) silently before "
        "the first cell",
    )
    run.add_argument(
        "--deterministic",
        action="store_true",
        help="add --deterministic to that %%repro_seed (without --seed, a seed is drawn and "
        "printed)",
    )
    _common(run)

    verify = commands.add_parser(
        "verify",
        help="run notebooks several times in fresh kernels and compare their outputs",
        description="Run each NB --runs times in fresh kernels and compare the normalised "
        "outputs; name the first differing cell. Exit 0 reproducible, 1 not reproducible, "
        "2 error.",
    )
    verify.add_argument("notebooks", metavar="NB", type=Path, nargs="+", help="notebooks")
    verify.add_argument(
        "--runs", metavar="N", type=_positive("runs", 2), default=2, help="runs per notebook (2)"
    )
    verify.add_argument(
        "--jobs",
        metavar="J",
        type=_positive("jobs"),
        default=1,
        help="kernels running at the same time (1)",
    )
    verify.add_argument(
        "--explain",
        action="store_true",
        help="when runs diverge, rerun twice with a torch recorder and name the first "
        "operation (or variable) that differs, where, and why (see `nbrepro explain`)",
    )
    _max_ops(verify)
    _common(verify)

    explain = commands.add_parser(
        "explain",
        help="name the first torch operation (or variable) that differs between two runs",
        description="Run NB twice in fresh kernels; when the runs diverge, run it twice more "
        "up to the first differing cell with a recorder of torch operations on, and report "
        "the first operation whose output differs (operator, shapes, dtype, device, cell and "
        "line), whether it is nondeterministic itself or its inputs already differed, and "
        "where those came from; for notebooks without torch work, the first differing "
        "variable. Exit 0 reproducible, 1 diverged, 2 error.",
    )
    explain.add_argument("notebook", metavar="NB", type=Path, help="the notebook to explain")
    _max_ops(explain)
    _common(explain)

    rerun = commands.add_parser(
        "rerun",
        help="repeat a recorded run and report drift and which outputs still match",
        description="Rerun NB from the record embedded in it (seed, options, per-cell seeds, "
        "process-start settings) in a fresh kernel; report environment and data drift and "
        "which cells' outputs match the stored ones. Exit 0 all match, 1 some differ, 2 error.",
    )
    rerun.add_argument("notebook", metavar="NB", type=Path, help="a notebook with a record")
    _output(rerun, "the rerun notebook", ".rerun")
    _common(rerun)

    sweep = commands.add_parser(
        "sweep",
        help="run notebooks under several seeds and report how much of each metric is the seed",
        description="Run NB in fresh kernels under K seeds derived from the experiment seed "
        "(derive_seed('sweep', i)) and --repeat runs of the first; report each "
        "nbrepro.metric's mean, std, min/max, 95%% interval and rerun noise. With a second "
        "notebook, both run under the same seeds and each shared metric's paired difference "
        "is reported. Exit 0 done, 1 a run failed, 2 usage or notebook error.",
    )
    sweep.add_argument("notebooks", metavar="NB", type=Path, nargs="+", help="one or two notebooks")
    sweep.add_argument(
        "--seeds", metavar="K", type=_positive("seeds", 2), required=True, help="seeds (>= 2)"
    )
    sweep.add_argument(
        "--repeat",
        metavar="R",
        type=_positive("repeat"),
        default=2,
        help="runs of the first seed, for the run-to-run noise (2; 1 = none)",
    )
    sweep.add_argument(
        "--seed",
        metavar="S",
        type=_seed,
        default=0,
        help=f"the experiment seed the sweep's seeds derive from (0..{MAX_SEED}; default 0)",
    )
    sweep.add_argument(
        "--jobs", metavar="J", type=_positive("jobs"), default=1, help="local kernels at a time (1)"
    )
    sweep.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="run on this Dask distributed scheduler (tcp://host:port) instead of locally",
    )
    sweep.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        type=Path,
        default=None,
        help="folder for each executed notebook and the HTML report (default: NB's name with "
        ".sweep, beside the first notebook)",
    )
    sweep.add_argument("--deterministic", action="store_true", help="%%repro_seed --deterministic")
    sweep.add_argument("--json", action="store_true", help="every value as JSON on stdout")
    _common(sweep)

    show = commands.add_parser(
        "show",
        help="print the reproducibility record embedded in a notebook",
        description="Print NB's nbrepro record readably (or as JSON). Exit 2 when NB has no "
        "readable record.",
    )
    show.add_argument("notebook", metavar="NB", type=Path, help="a notebook with a record")
    show.add_argument("--json", action="store_true", help="the record as JSON")
    return top


def _output(command: argparse.ArgumentParser, what: str, infix: str) -> None:
    command.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        type=Path,
        help=f"where to write {what} (default: NB with {infix} before the suffix; the source "
        "is only overwritten when OUT names it)",
    )


def _max_ops(command: argparse.ArgumentParser) -> None:
    from nbrepro._recorder import DEFAULT_CAP

    command.add_argument(
        "--max-ops",
        metavar="N",
        type=_positive("max-ops"),
        default=DEFAULT_CAP,
        help=f"torch operations the recorder keeps per run ({DEFAULT_CAP}; about 60 bytes each)",
    )


def _common(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--timeout",
        metavar="T",
        type=_positive("timeout"),
        default=None,
        help="seconds a single cell may run (default: no limit)",
    )
    command.add_argument(
        "--kernel",
        metavar="NAME",
        default=None,
        help="Jupyter kernel to use (default: the notebook's kernelspec, else python3)",
    )
    command.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


@contextmanager
def _without_iri_syntax_checks() -> Iterator[None]:
    """Keep ``rfc3987_syntax`` out of this process while the command runs.

    nbformat validates notebooks with jsonschema, and jsonschema imports ``rfc3987_syntax``
    whenever it is installed (JupyterLab brings it, through jupyter_events) for its IRI format
    checks; that package builds a grammar as it is imported, 3 of the 4 s that
    ``import nbformat`` took here, on every command. Notebook validation checks no formats;
    marked missing, jsonschema leaves those checks out. Kernels are other processes. A
    caller of :func:`main` in its own process (a test) gets the module back afterwards.
    """
    added = "rfc3987_syntax" not in sys.modules
    if added:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if added and "rfc3987_syntax" in sys.modules and sys.modules["rfc3987_syntax"] is None:
            del sys.modules["rfc3987_syntax"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``nbrepro`` command line; return its exit status."""
    args = parser().parse_args(argv)
    with _without_iri_syntax_checks():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    missing = missing_dependency()
    if missing is not None:
        print(f"nbrepro {args.command}: {missing}", file=sys.stderr)
        return Status.ERROR
    try:
        with _sigterm_stops():
            result = _dispatch(args)
            result.print()
    except KeyboardInterrupt:
        print("nbrepro: interrupted; every kernel it started is stopped", file=sys.stderr)
        return Status.INTERRUPTED
    except _Terminated:
        print("nbrepro: terminated; every kernel it started is stopped", file=sys.stderr)
        return EXIT_TERMINATED
    except NbreproError as error:  # each command reports its own; this is the last guard
        print(f"nbrepro {args.command}: {error}", file=sys.stderr)
        return Status.ERROR
    return int(result.status)


def _dispatch(args: argparse.Namespace) -> Result:
    if args.command == "run":
        from nbrepro.commands.run import run

        return run(
            args.notebook,
            output=args.output,
            seed=args.seed,
            deterministic=args.deterministic,
            timeout=args.timeout,
            kernel_name=args.kernel,
            progress=progress_printer(args.quiet),
        )
    if args.command == "rerun":
        from nbrepro.commands.rerun import rerun

        return rerun(
            args.notebook,
            output=args.output,
            timeout=args.timeout,
            kernel_name=args.kernel,
            progress=progress_printer(args.quiet),
        )
    if args.command == "sweep":
        from nbrepro.commands.sweep import default_output_dir, sweep

        result = sweep(
            args.notebooks,
            seeds=args.seeds,
            repeat=args.repeat,
            base_seed=args.seed,
            jobs=args.jobs,
            scheduler=args.scheduler,
            output_dir=args.output or default_output_dir(args.notebooks[0]),
            deterministic=args.deterministic,
            timeout=args.timeout,
            kernel_name=args.kernel,
            progress=progress_printer(args.quiet),
        )
        result.as_json = args.json
        return result
    if args.command == "show":
        from nbrepro.commands.show import show

        return show(args.notebook, as_json=args.json)
    if args.command == "explain":
        from nbrepro.commands.explain import ExplainResult, explain

        return ExplainResult(
            [
                explain(
                    args.notebook,
                    cap=args.max_ops,
                    timeout=args.timeout,
                    kernel_name=args.kernel,
                    progress=progress_printer(args.quiet),
                )
            ]
        )
    from nbrepro.commands.verify import VerifyResult, verify

    verifications = verify(
        args.notebooks,
        runs=args.runs,
        jobs=args.jobs,
        timeout=args.timeout,
        kernel_name=args.kernel,
        progress=progress_printer(args.quiet),
    )
    if args.explain:
        from nbrepro.commands.explain import ExplainResult, explain_verifications

        return ExplainResult(
            explain_verifications(
                verifications, args.max_ops, args.timeout, args.kernel, progress_printer(args.quiet)
            )
        )
    return VerifyResult(verifications)


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that the kernels are stopped on the way out."""


@contextmanager
def _sigterm_stops() -> Iterator[None]:
    """While the command runs, SIGTERM unwinds it (stopping kernels) instead of killing it."""

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def missing_dependency() -> MissingDependencyError | None:
    """The error to show when the packages that execute notebooks are not installed."""
    for package in ("nbformat", "nbclient", "ipykernel"):
        if importlib.util.find_spec(package) is None:
            return MissingDependencyError(package, "cli", "executing notebooks")
    return None
