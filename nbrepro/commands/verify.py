"""``nbrepro verify``: run notebooks several times in fresh kernels and compare what they print.

Each run goes through :mod:`nbrepro._execute` (fixed hash seed, cell ids sent); outputs are
compared only through :mod:`nbrepro._normalize`. The report names the first cell whose
normalised outputs differ between run 1 and another run, with a short unified diff. The
pytest plugin verifies through the same :func:`verify` and shows the same report.
"""

from __future__ import annotations

import asyncio
import copy
import difflib
import enum
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from nbformat import NotebookNode

from nbrepro._execute import CellRef, execute_async, run_sync
from nbrepro._normalize import normalize_cell
from nbrepro._notebook_file import read_notebook
from nbrepro.commands import Progress
from nbrepro.errors import NbreproError

T = TypeVar("T")

MAX_DIFF_LINES = 24
MAX_LINE = 160


class Outcome(enum.IntEnum):
    """How a notebook fared; the value is ``nbrepro verify``'s exit status."""

    REPRODUCIBLE = 0
    NOT_REPRODUCIBLE = 1
    ERROR = 2


@dataclass(frozen=True)
class Divergence:
    """The first cell whose normalised outputs differ between two runs."""

    cell: CellRef
    run: int  #: the run that differs from run 1 (2..N)
    diff: str  #: unified diff of the cell's normalised outputs, run 1 against ``run``


@dataclass(frozen=True)
class Verification:
    """The verdict on one notebook."""

    path: Path
    runs: int
    seconds: float
    compared_cells: int = 0  #: code cells whose outputs were compared (and had any)
    divergence: Divergence | None = None
    error: str | None = None  #: why the notebook could not be verified

    @property
    def outcome(self) -> Outcome:
        """Reproducible, not reproducible, or not verifiable (an error)."""
        if self.error is not None:
            return Outcome.ERROR
        return Outcome.REPRODUCIBLE if self.divergence is None else Outcome.NOT_REPRODUCIBLE

    def report(self) -> str:
        """The plain-text verdict, as ``nbrepro verify`` prints it and the pytest plugin shows."""
        took = f"{self.seconds:.1f} s"
        if self.error is not None:
            return f"{self.path}: error: {self.error}"
        if self.divergence is None:
            if not self.compared_cells:
                return (
                    f"{self.path}: reproducible, vacuously: no cell printed or displayed "
                    f"anything, so nothing was compared ({self.runs} runs, {took})"
                )
            cells = (
                "1 code cell" if self.compared_cells == 1 else f"{self.compared_cells} code cells"
            )
            return (
                f"{self.path}: reproducible: {self.runs} runs in fresh kernels, identical "
                f"normalised outputs in {cells} ({took})"
            )
        found = self.divergence
        lines = [
            f"{self.path}: NOT reproducible: run {found.run} differs from run 1 "
            f"({self.runs} runs, {took})",
            f"  first differing cell: {found.cell}",
        ]
        lines += ["  " + line for line in found.diff.splitlines()]
        return "\n".join(lines)


def _lines(outputs: list[dict[str, str]]) -> list[str]:
    """A cell's normalised outputs as the lines a diff shows."""
    lines: list[str] = []
    for output in outputs:
        if output["type"] == "stdout":
            lines += output["text"].splitlines()
        elif output["type"] == "error":
            lines.append(f"[error] {output['text']}")
        else:
            shown = output["text"].splitlines() or [""]
            lines += [f"[{output['mime']}] {shown[0]}", *shown[1:]]
    return [line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…" for line in lines]


def _diff(first: list[dict[str, str]], other: list[dict[str, str]], run: int) -> str:
    diff = list(
        difflib.unified_diff(_lines(first), _lines(other), "run 1", f"run {run}", n=1, lineterm="")
    )
    if len(diff) > MAX_DIFF_LINES:
        diff = [*diff[:MAX_DIFF_LINES], f"... ({len(diff) - MAX_DIFF_LINES} more diff lines)"]
    return "\n".join(diff)


def compare(runs: Sequence[NotebookNode]) -> tuple[Divergence | None, int]:
    """The first cell (in notebook order) where a run's normalised outputs differ from run 1's.

    Also returns how many code cells had outputs to compare.
    """
    first = runs[0]
    compared = 0
    for index, cell in enumerate(first.cells):
        if cell.cell_type != "code":
            continue
        expected = normalize_cell(cell.get("outputs", []))
        compared += bool(expected)
        for number, other in enumerate(runs[1:], start=2):
            found = normalize_cell(other.cells[index].get("outputs", []))
            if found != expected:
                diff = _diff(expected, found, number)
                return Divergence(CellRef.of(first, index), number, diff), compared
    return None, compared


async def _gather_or_cancel(awaitables: Sequence[Awaitable[T]]) -> list[T]:
    """All results; on the first failure the other tasks are cancelled (their kernels stop)."""
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _verify_one(
    path: Path,
    runs: int,
    slots: asyncio.Semaphore,
    timeout: int | None,
    kernel_name: str | None,
    progress: Progress | None,
) -> Verification:
    started = time.perf_counter()

    def say(line: str) -> None:
        if progress is not None:
            progress(f"{path}: {line}")

    try:
        notebook = read_notebook(path)
    except NbreproError as error:
        return Verification(path, runs, 0.0, error=str(error).removeprefix(f"{path}: "))
    code_cells = sum(cell.cell_type == "code" for cell in notebook.cells)

    async def one_run(number: int) -> NotebookNode:
        async with slots:
            label = f"run {number}/{runs}"
            say(f"{label}: starting a fresh kernel")
            run_started = time.perf_counter()
            done = 0

            def on_cell(cell: CellRef, seconds: float) -> None:
                nonlocal done
                done += 1
                say(f"{label}: {cell} done in {seconds:.1f} s ({done}/{code_cells} code cells)")

            executed = copy.deepcopy(notebook)
            try:
                await execute_async(
                    executed,
                    path=path,
                    timeout=timeout,
                    kernel_name=kernel_name,
                    on_cell=on_cell,
                    started_by="nbrepro verify",
                )
            except NbreproError as error:
                raise NbreproError(f"{label}: {error}") from error
            say(f"{label}: finished in {time.perf_counter() - run_started:.1f} s")
            return executed

    try:
        executed = await _gather_or_cancel([one_run(n) for n in range(1, runs + 1)])
    except NbreproError as error:
        return Verification(path, runs, time.perf_counter() - started, error=str(error))
    divergence, compared = compare(executed)
    return Verification(path, runs, time.perf_counter() - started, compared, divergence)


async def verify_async(
    paths: Sequence[Path],
    *,
    runs: int = 2,
    jobs: int = 1,
    timeout: int | None = None,
    kernel_name: str | None = None,
    progress: Progress | None = None,
) -> list[Verification]:
    """Verify each notebook with ``runs`` fresh runs, at most ``jobs`` kernels at a time.

    Returns one :class:`Verification` per path, in order. A notebook that cannot be read or
    fails to run (a cell raises or times out, the kernel dies) gets an ``error`` and does
    not stop the others.
    """
    slots = asyncio.Semaphore(jobs)
    return list(
        await asyncio.gather(
            *(_verify_one(path, runs, slots, timeout, kernel_name, progress) for path in paths)
        )
    )


#: :func:`verify_async` from synchronous code; Ctrl-C stops every kernel (see ``run_sync``).
verify = run_sync(verify_async)


def outcome(verifications: Sequence[Verification]) -> Outcome:
    """The exit status for several notebooks: the worst of their outcomes."""
    return max((v.outcome for v in verifications), default=Outcome.REPRODUCIBLE)


@dataclass(frozen=True)
class VerifyResult:
    """``nbrepro verify``'s verdicts, one per notebook."""

    verifications: list[Verification]

    @property
    def status(self) -> Outcome:
        """The exit status: the worst outcome."""
        return outcome(self.verifications)

    def print(self) -> None:
        """Each notebook's report, then a count when there are several (stdout)."""
        for verification in self.verifications:
            print(verification.report())
        if len(self.verifications) > 1:
            counts = {kind: sum(v.outcome is kind for v in self.verifications) for kind in Outcome}
            print(
                f"{counts[Outcome.REPRODUCIBLE]} reproducible, "
                f"{counts[Outcome.NOT_REPRODUCIBLE]} not reproducible, "
                f"{counts[Outcome.ERROR]} could not be verified"
            )
