"""``nbrepro run``: execute a notebook in a fresh kernel, write it with its record.

The steps ``nbrepro rerun`` shares with it: the output is checked before anything runs (a
FIFO, a device, an immutable file or a read-only folder is refused up front, not found after a
long run), every finished cell is a progress line (:func:`execute_and_write`), and the
notebook is written atomically, also after a failing cell, so that the outputs up to that
cell are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nbformat import NotebookNode

from nbrepro._config import validate_seed
from nbrepro._execute import CellRef, execute
from nbrepro._metric import notebook_metrics
from nbrepro._notebook_file import check_writable, read_notebook, write_notebook
from nbrepro.commands import Progress, Status, print_error
from nbrepro.errors import CellError, NbreproError, NotebookFileError, RecordError


@dataclass(frozen=True)
class RunResult:
    """What ``nbrepro run`` did: the notebook written, a failing cell, or an error."""

    source: Path
    output: Path | None = None  #: where the executed notebook was written
    failure: str | None = None  #: the cell that raised, timed out or killed the kernel
    error: str | None = None  #: why nothing was run or written
    #: every ``nbrepro.metric`` the notebook reported: name -> values, in order
    metrics: Mapping[str, list[float]] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        """0 executed, 1 a cell failed, 2 an error."""
        if self.error is not None:
            return Status.ERROR
        return Status.FAILED if self.failure is not None else Status.OK

    def print(self) -> None:
        """``wrote OUT`` on stdout; a failure or an error on stderr."""
        if self.error is not None:
            print_error("run", self.error)
        elif self.failure is not None:
            print_error(
                "run",
                f"{self.source}: {self.failure}\n"
                f"wrote the notebook, executed as far as that cell, to {self.output}",
            )
        else:
            print(f"nbrepro run: wrote {self.output}")
        for name, values in self.metrics.items():
            shown = ", ".join(f"{value:.6g}" for value in values)
            print(f"nbrepro run: metric {name} = {shown}")


def error_text(error: NbreproError, source: Path) -> str:
    """The one line that says what went wrong, naming the notebook where the error does not."""
    if isinstance(error, NotebookFileError | RecordError):
        return str(error)  # names the file (the output, maybe) itself
    return f"{source}: {error}"


def default_output(source: Path, infix: str) -> Path:
    """``NB`` with ``infix`` before the suffix: ``exp.ipynb`` -> ``exp.nbrepro.ipynb``."""
    return source.with_name(f"{source.stem}.{infix}{source.suffix}")


def seed_arguments(seed: int | None, deterministic: bool) -> str | None:
    """The ``%repro_seed`` arguments for ``--seed``/``--deterministic``, or ``None``."""
    if seed is None and not deterministic:
        return None
    parts = [str(validate_seed(seed))] if seed is not None else []
    return " ".join([*parts, *(["--deterministic"] if deterministic else [])])


def execute_and_write(
    notebook: NotebookNode,
    source: Path,
    output: Path,
    *,
    progress: Progress,
    timeout: int | None,
    kernel_name: str | None,
    seed_arguments: str | None = None,
    variables: Mapping[str, str] | None = None,
    started_by: str = "nbrepro run",
) -> CellError | None:
    """Execute ``notebook`` in place with its record, write it to ``output``.

    Returns the failing cell's error (the notebook is written all the same), or ``None``.
    Raises :class:`~nbrepro.errors.NbreproError` when the kernel fails or the write does.
    """

    def on_cell(cell: CellRef, seconds: float) -> None:
        progress(f"{source}: {cell} done in {seconds:.1f} s")

    def on_preamble(printed: str) -> None:
        for line in printed.splitlines():
            progress(f"{source}: {line}")

    failure = None
    try:
        execute(
            notebook,
            path=source,
            timeout=timeout,
            kernel_name=kernel_name,
            on_cell=on_cell,
            on_preamble=on_preamble,
            seed_arguments=seed_arguments,
            variables=variables,
            record=True,
            started_by=started_by,
        )
    except CellError as error:
        failure = error
    write_notebook(notebook, output)
    return failure


def run(
    source: Path,
    *,
    output: Path | None = None,
    seed: int | None = None,
    deterministic: bool = False,
    timeout: int | None = None,
    kernel_name: str | None = None,
    progress: Progress,
) -> RunResult:
    """Execute ``source`` in a fresh kernel; write it with its record to ``output``.

    ``output`` defaults to ``NB.nbrepro.ipynb`` beside the source. With ``seed`` or
    ``deterministic``, a silent preamble runs ``%repro_seed`` before the first cell.
    """
    try:
        notebook = read_notebook(source)
        target = output or default_output(source, "nbrepro")
        check_writable(target)  # before anything runs
        failure = execute_and_write(
            notebook,
            source,
            target,
            progress=progress,
            timeout=timeout,
            kernel_name=kernel_name,
            seed_arguments=seed_arguments(seed, deterministic),
        )
    except NbreproError as error:
        return RunResult(source, error=error_text(error, source))
    return RunResult(
        source,
        target,
        failure=None if failure is None else str(failure),
        metrics=notebook_metrics(notebook.cells),
    )
