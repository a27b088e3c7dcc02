"""The ``nbrepro`` command: ``run``, ``verify``, ``rerun``, ``show``; parsing and exit statuses.

Exit statuses: ``run`` 0 executed, 1 a cell raised / timed out / killed the kernel, 2 usage,
input or output error, or the kernel did not start. ``verify`` 0 reproducible, 1 not
reproducible, 2 error (bad notebook, a run failed). ``rerun`` 0 every stored output matches,
1 some differ or a cell failed, 2 error (no readable record, ...). ``show`` 0, or 2 without a
readable record. Progress goes to stderr as plain lines.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nbrepro import __version__
from nbrepro._config import MAX_SEED
from nbrepro.errors import CellError, MissingDependencyError, NbreproError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


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
    _common(verify)

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


def _progress(quiet: bool) -> Callable[[str], None]:
    def show(line: str) -> None:
        if not quiet:
            print(f"nbrepro: {line}", file=sys.stderr, flush=True)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``nbrepro`` command line; return its exit status."""
    args = parser().parse_args(argv)
    missing = missing_dependency()
    if missing is not None:
        print(f"nbrepro {args.command}: {missing}", file=sys.stderr)
        return EXIT_ERROR
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "rerun":
            return _rerun(args)
        if args.command == "show":
            return _show(args)
        return _verify(args)
    except KeyboardInterrupt:
        print("nbrepro: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def missing_dependency() -> MissingDependencyError | None:
    """The error to show when the packages that execute notebooks are not installed."""
    for package in ("nbformat", "nbclient", "ipykernel"):
        if importlib.util.find_spec(package) is None:
            return MissingDependencyError(package, "cli", "executing notebooks")
    return None


def _run(args: argparse.Namespace) -> int:
    from nbrepro._execute import CellRef, execute
    from nbrepro._notebook_file import check_writable, read_notebook, write_notebook

    source: Path = args.notebook
    show = _progress(args.quiet)
    try:
        notebook = read_notebook(source)
        output: Path = args.output or source.with_name(f"{source.stem}.nbrepro{source.suffix}")
        check_writable(output)
    except NbreproError as error:
        print(f"nbrepro run: {error}", file=sys.stderr)
        return EXIT_ERROR

    def on_cell(cell: CellRef, seconds: float) -> None:
        show(f"{source}: {cell} done in {seconds:.1f} s")

    def on_preamble(printed: str) -> None:
        for line in printed.splitlines():
            show(f"{source}: {line}")

    status, failure = EXIT_OK, None
    try:
        execute(
            notebook,
            path=source,
            seed=args.seed,
            deterministic=args.deterministic,
            timeout=args.timeout,
            kernel_name=args.kernel,
            on_cell=on_cell,
            on_preamble=on_preamble,
            record=True,
        )
    except CellError as error:
        status, failure = EXIT_FAILED, error
    except NbreproError as error:
        print(f"nbrepro run: {source}: {error}", file=sys.stderr)
        return EXIT_ERROR
    try:
        write_notebook(notebook, output)
    except NbreproError as error:
        print(f"nbrepro run: {error}", file=sys.stderr)
        return EXIT_ERROR
    if failure is not None:
        print(
            f"nbrepro run: {source}: {failure}\n"
            f"nbrepro run: wrote the notebook, executed as far as that cell, to {output}",
            file=sys.stderr,
        )
    else:
        print(f"nbrepro run: wrote {output}")
    return status


def _verify(args: argparse.Namespace) -> int:
    from nbrepro._verify import Outcome, outcome, verify

    verifications = verify(
        args.notebooks,
        runs=args.runs,
        jobs=args.jobs,
        timeout=args.timeout,
        kernel_name=args.kernel,
        progress=_progress(args.quiet),
    )
    for verification in verifications:
        print(verification.report())
    if len(verifications) > 1:
        counts = {kind: sum(v.outcome is kind for v in verifications) for kind in Outcome}
        print(
            f"{counts[Outcome.REPRODUCIBLE]} reproducible, "
            f"{counts[Outcome.NOT_REPRODUCIBLE]} not reproducible, "
            f"{counts[Outcome.ERROR]} could not be verified"
        )
    return int(outcome(verifications))


def _read_record(command: str, path: Path) -> tuple[Any, dict[str, Any]] | None:
    """The notebook and its record, or ``None`` after saying on stderr what is wrong."""
    from nbrepro._notebook_file import read_notebook
    from nbrepro._record import read_record

    try:
        notebook = read_notebook(path)
        record = read_record(notebook, str(path))
    except NbreproError as error:
        print(f"nbrepro {command}: {error}", file=sys.stderr)
        return None
    if record is None:
        print(
            f"nbrepro {command}: {path}: no nbrepro record in its metadata; make one with "
            "`nbrepro run` or %repro_export",
            file=sys.stderr,
        )
        return None
    return notebook, record


def _show(args: argparse.Namespace) -> int:
    from nbrepro._rerun import format_record, record_json

    found = _read_record("show", args.notebook)
    if found is None:
        return EXIT_ERROR
    _, record = found
    print(record_json(record) if args.json else format_record(record, str(args.notebook)))
    return EXIT_OK


def _rerun(args: argparse.Namespace) -> int:
    import copy

    from nbrepro._execute import CellRef, execute
    from nbrepro._notebook_file import check_writable, write_notebook
    from nbrepro._rerun import (
        compare_outputs,
        current_data_drift,
        drift_report,
        environment_drift,
        kernel_variables,
        seed_arguments,
    )

    source: Path = args.notebook
    found = _read_record("rerun", source)
    if found is None:
        return EXIT_ERROR
    stored, record = found
    output: Path = args.output or source.with_name(f"{source.stem}.rerun{source.suffix}")
    try:
        check_writable(output)
    except NbreproError as error:
        print(f"nbrepro rerun: {error}", file=sys.stderr)
        return EXIT_ERROR
    show = _progress(args.quiet)
    data_lines = current_data_drift(record, source.resolve().parent)  # before the run
    notebook = copy.deepcopy(stored)
    arguments = seed_arguments(record)

    def on_cell(cell: CellRef, seconds: float) -> None:
        show(f"{source}: {cell} done in {seconds:.1f} s")

    failure = None
    try:
        execute(
            notebook,
            path=source,
            timeout=args.timeout,
            kernel_name=args.kernel,
            on_cell=on_cell,
            seed_line=arguments if record["seed"] is not None else None,
            variables=kernel_variables(record),
            record=True,
        )
    except CellError as error:
        failure = error
    except NbreproError as error:
        print(f"nbrepro rerun: {source}: {error}", file=sys.stderr)
        return EXIT_ERROR
    try:
        write_notebook(notebook, output)
    except NbreproError as error:
        print(f"nbrepro rerun: {error}", file=sys.stderr)
        return EXIT_ERROR
    new_record = notebook.metadata.get("nbrepro") or {}
    comparison = compare_outputs(stored, notebook)
    lines = [
        f"nbrepro rerun: {source}: seed {record['seed']} ({record['seed_source']}), "
        f"%repro_seed {arguments}; wrote {output}",
        *drift_report(
            environment_drift(record["environment"], new_record.get("environment", {})),
            "environment drift",
        ),
        *drift_report(data_lines, "data drift"),
        f"outputs: {comparison.matching} of {comparison.compared} code cells with outputs match",
        *[f"  differs: {cell}" for cell in comparison.differing],
    ]
    print("\n".join(lines))
    if failure is not None:
        print(f"nbrepro rerun: {source}: {failure}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK if not comparison.differing else EXIT_FAILED
