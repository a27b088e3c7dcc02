"""``nbrepro explain`` and ``nbrepro verify --explain``: why two runs diverge, below the cells.

:mod:`nbrepro.commands.verify` names the first cell whose outputs differ between two fresh
runs. This module then executes a copy of the notebook cut after that cell, twice, in fresh
kernels, with the recorder of :mod:`nbrepro._recorder` switched on by a first, added cell, and
compares the two traces operation by operation:

- the first torch operation whose output hash differs: its operator, outputs (shapes, dtype,
  device), and the cell and line that called it;
- whether its inputs were identical in both runs (the operation itself is nondeterministic:
  a CUDA kernel with atomics or without a deterministic implementation, a CPU reduction that
  depends on thread scheduling, a custom operation) or already differed (the divergence
  entered from outside torch: a tensor built from Python or NumPy values, one that no torch
  operation produced, a Python argument such as the clock);
- without a differing torch operation (NumPy-only or TensorFlow-only notebooks), the first
  differing *variable* after the cell, in the order the notebook assigns them.
"""

from __future__ import annotations

import ast
import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from nbrepro._execute import CellRef, _source, execute_async, run_sync
from nbrepro._notebook_file import read_notebook
from nbrepro._recorder import DEFAULT_CAP, EXTERNAL, SCALAR, Trace, read
from nbrepro.commands import Progress, print_error
from nbrepro.commands.verify import (
    Divergence,
    Outcome,
    Verification,
    _gather_or_cancel,
    verify_async,
)
from nbrepro.errors import CellError, NbreproError

_INSTALL = "import nbrepro._recorder as _nbrepro_recorder\n_nbrepro_recorder.install({cap})"
_FINISH = "print(_nbrepro_recorder.finish(get_ipython().user_ns))"
_TRACE_MARK = "nbrepro-trace:"


@dataclass(frozen=True)
class Place:
    """Where in the notebook something happened: a cell and a line in it."""

    cell: CellRef | None  #: None: outside every cell (a thread, a library's callback)
    line: int
    source: str  #: that line of the cell, stripped ("" when unknown)
    file: str = ""  #: the outermost file, when no cell was on the stack

    def __str__(self) -> str:
        if self.cell is None:
            where = f"{self.file}, line {self.line}" if self.file else "an unknown place"
            return f"outside the notebook's cells ({where})"
        shown = f": {self.source}" if self.source else ""
        return f"cell {self.cell.index}, line {self.line}{shown}"


@dataclass(frozen=True)
class OperationDivergence:
    """The first torch operation whose output differs between the two recorded runs."""

    index: int  #: its position in the recorded sequence of operations
    operator: str  #: "aten::mm", "mylib::noisy"
    outputs: str  #: shapes, dtype and device of its outputs
    place: Place
    inputs_identical: bool
    cause: str  #: one or more sentences: what kind of cause, and which switch applies
    origin: Place | None = None  #: where the first differing input was made, when known


@dataclass(frozen=True)
class VariableDivergence:
    """The first variable (in assignment order) whose value differs after the cell."""

    name: str
    kind: str  #: its type
    shape: str  #: shape and dtype, or a length
    assigned: Place | None  #: the last assignment up to the diverging cell


@dataclass(frozen=True)
class Explanation:
    """``nbrepro explain``'s verdict on one notebook."""

    verification: Verification
    operation: OperationDivergence | None = None
    paths_differ: str | None = None  #: the runs executed different operations from here
    variable: VariableDivergence | None = None
    notes: tuple[str, ...] = ()  #: the cap reached, the divergence not seen under the recorder
    error: str | None = None

    @property
    def status(self) -> Outcome:
        """0 reproducible, 1 diverged (explained as far as possible), 2 error."""
        if self.error is not None:
            return Outcome.ERROR
        return self.verification.outcome

    def report(self) -> str:
        """The plain-text explanation, after verify's report."""
        lines = [self.verification.report()]
        if self.error is not None:
            return "\n".join([*lines, f"  explain: error: {self.error}"])
        if self.verification.outcome is not Outcome.NOT_REPRODUCIBLE:
            return lines[0]
        lines.append("  explain (two more runs with the torch recorder on, up to that cell):")
        found = self.operation
        if found is not None:
            lines += [
                f"    first differing torch operation: {found.operator} -> {found.outputs} "
                f"(operation {found.index + 1} of the run)",
                f"      called at {found.place}",
            ]
            if found.origin is not None:
                lines.append(f"      the differing input was made at {found.origin}")
            lines += [f"    {line}" for line in _wrap(found.cause)]
        if self.paths_differ is not None:
            lines.append(f"    {self.paths_differ}")
        if self.variable is not None:
            found_variable = self.variable
            shape = f", {found_variable.shape}" if found_variable.shape else ""
            lines.append(
                f"    first differing variable: {found_variable.name} "
                f"({found_variable.kind}{shape})"
            )
            if found_variable.assigned is not None:
                lines.append(f"      assigned at {found_variable.assigned}")
        for note in self.notes:
            lines += [f"    {line}" for line in _wrap(note)]
        return "\n".join(lines)


def _wrap(text: str, width: int = 92) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [""]


# -- recording ---------------------------------------------------------------------------------


def recorded_copy(notebook: NotebookNode, last: int, cap: int) -> NotebookNode:
    """``notebook`` up to and including cell ``last``, between the recorder's two cells."""
    cut = copy.deepcopy(notebook)
    new_cell = nbformat.v4.new_code_cell
    first = new_cell(_INSTALL.format(cap=cap))  # type: ignore[no-untyped-call]
    final = new_cell(f"print({_TRACE_MARK!r}, end='')\n{_FINISH}")  # type: ignore[no-untyped-call]
    cut.cells = [first, *cut.cells[: last + 1], final]
    for cell in cut.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return cut


def _trace_path(executed: NotebookNode) -> str:
    outputs = executed.cells[-1].get("outputs", [])
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    if _TRACE_MARK not in text:
        raise NbreproError("the recorder wrote no trace")
    return text.split(_TRACE_MARK, 1)[1].strip()


async def _recorded_run(
    path: Path,
    notebook: NotebookNode,
    last: int,
    cap: int,
    number: int,
    timeout: int | None,
    kernel_name: str | None,
    progress: Progress | None,
) -> tuple[NotebookNode, dict[str, tuple[str, str, str]], Trace]:
    executed = recorded_copy(notebook, last, cap)
    if progress is not None:
        progress(f"{path}: recorded run {number}/2: starting a fresh kernel")
    try:
        await execute_async(
            executed,
            path=path,
            timeout=timeout,
            kernel_name=kernel_name,
            started_by="nbrepro explain",
        )
    except CellError as error:
        # The added first cell shifts every index by one: name the notebook's own cell.
        cell = error.cell
        if isinstance(cell, CellRef) and 0 < cell.index <= last + 1:
            cell = CellRef.of(notebook, cell.index - 1)
        else:
            cell = "nbrepro's recorder cell"
        raise NbreproError(
            f"recorded run {number}: {cell} {error.problem} under the recorder"
        ) from error
    except NbreproError as error:
        raise NbreproError(f"recorded run {number}: {error}") from error
    trace_file = _trace_path(executed)
    try:
        variables, trace = read(trace_file)
    finally:
        os.unlink(trace_file)
    return executed, variables, trace


# -- comparing ---------------------------------------------------------------------------------


def _place(trace: Trace, location: int, executed: NotebookNode, notebook: NotebookNode) -> Place:
    count, line, file = trace.locations[location]
    if not count:
        return Place(None, line, "", file)
    for index, cell in enumerate(executed.cells):
        if cell.cell_type == "code" and cell.get("execution_count") == count:
            if index == 0 or index > len(notebook.cells):
                break  # the recorder's own cells
            original = index - 1
            lines = _source(notebook.cells[original]).splitlines()
            source = lines[line - 1].strip() if 0 < line <= len(lines) else ""
            return Place(CellRef.of(notebook, original), line, source)
    return Place(None, line, "", f"In[{count}]")


def _cause(trace: Trace, index: int, device_is_cuda: bool) -> str:
    operator = trace.op_names[trace.op[index]]
    if not operator.startswith(("aten::", "prims::")):
        return (
            "Its inputs were identical in both runs: the operation itself is nondeterministic. "
            f"{operator} is not a torch built-in operator: its own implementation gives "
            "different results for the same inputs (finding NBR201)."
        )
    if device_is_cuda:
        return (
            "Its inputs were identical in both runs: the operation itself is nondeterministic "
            "(a CUDA kernel with atomic adds or without a deterministic implementation, finding "
            "NBR201). Fix: `%repro_seed SEED --deterministic` (nbrepro run/verify "
            "--deterministic) uses deterministic implementations and names the operations "
            "that have none."
        )
    return (
        "Its inputs were identical in both runs: the operation itself is nondeterministic. On "
        "CPU that is a reduction whose order depends on thread scheduling: fix the thread "
        "count with `%repro_seed SEED --threads N`; `--deterministic` (finding NBR201) covers "
        "the operations torch knows to be nondeterministic."
    )


def _input_cause(
    a: Trace, index: int, row: int, executed: NotebookNode, notebook: NotebookNode
) -> tuple[str, Place | None]:
    """What made the first differing input differ, and where it was made."""
    operator = a.op_names[a.op[index]]
    names = a.op_args[a.op[index]]
    position = a.in_arg[row]
    argument = names[position] if 0 <= position < len(names) else f"#{position}"
    ref = a.in_ref[row]
    outside = "The divergence entered from outside torch: "
    if ref == SCALAR:
        return (
            f"Its inputs already differed: its argument `{argument}` is a Python value that "
            "differs between the runs (the clock, an unseeded random number, os.urandom). "
            + outside
            + "trace that value in the line above.",
            None,
        )
    if ref == EXTERNAL and operator.startswith("aten::lift_fresh"):
        return (
            "Its inputs already differed: it builds a tensor from Python or NumPy values "
            "(torch.tensor(...), torch.as_tensor(...), torch.from_numpy(...)), and those values "
            "differ between the runs. " + outside + "trace the values in the line above "
            "(an unseeded generator, the clock, os.urandom).",
            None,
        )
    if ref == EXTERNAL:
        return (
            f"Its inputs already differed: its argument `{argument}` is a tensor no recorded "
            "torch operation produced (torch.from_numpy(...), memory shared with NumPy, or a "
            "tensor changed outside torch), and its values differ. " + outside + "that "
            "tensor's data came from somewhere else.",
            None,
        )
    producer = a.op_names[a.op[ref]]
    return (
        f"Its inputs already differed: its argument `{argument}` was produced by {producer} "
        "with the same values in both runs and changed afterwards outside torch's operators "
        "(through NumPy memory, .data, or a C extension). The divergence entered from "
        "outside torch.",
        _place(a, a.loc[ref], executed, notebook),
    )


def compare_traces(
    a: Trace, b: Trace, executed: NotebookNode, notebook: NotebookNode
) -> tuple[OperationDivergence | None, str | None]:
    """The first operation whose output differs, or a note that the runs took different paths."""
    for index in range(min(len(a.op), len(b.op))):
        name, other = a.op_names[a.op[index]], b.op_names[b.op[index]]
        place = _place(a, a.loc[index], executed, notebook)
        rows_a, rows_b = a.inputs(index), b.inputs(index)
        if name != other or len(rows_a) != len(rows_b):
            other_place = _place(b, b.loc[index], executed, notebook)
            return None, (
                f"the runs executed different torch operations from operation {index + 1}: "
                f"{name} at {place} in run 1, {other} at {other_place} in run 2 (control flow "
                "that depends on a value that differs)"
            )
        if a.out[index] == b.out[index]:
            continue
        outputs = a.metas[a.meta[index]]
        differing = next(
            (r for r, s in zip(rows_a, rows_b, strict=True) if a.in_hash[r] != b.in_hash[s]),
            None,
        )
        if differing is None:
            cause, origin = _cause(a, index, " on cuda" in outputs), None
        else:
            cause, origin = _input_cause(a, index, differing, executed, notebook)
        return (
            OperationDivergence(index, name, outputs, place, differing is None, cause, origin),
            None,
        )
    if len(a.op) != len(b.op):
        return None, (
            f"the runs executed different numbers of torch operations ({len(a.op)} and "
            f"{len(b.op)}), the first {min(len(a.op), len(b.op))} with identical results"
        )
    return None, None


def _assignments(notebook: NotebookNode, last: int) -> dict[str, tuple[int, int]]:
    """name -> (cell index, line) of its last assignment in cells up to ``last``."""
    from IPython.core.inputtransformer2 import TransformerManager

    transformer = TransformerManager()  # type: ignore[no-untyped-call]
    found: dict[str, tuple[int, int]] = {}
    for index, cell in enumerate(notebook.cells[: last + 1]):
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(transformer.transform_cell(_source(cell)))
        except SyntaxError:  # not Python (a %%bash cell): assigns nothing
            continue
        for node in ast.walk(tree):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AugAssign | ast.AnnAssign | ast.For | ast.withitem):
                target = node.optional_vars if isinstance(node, ast.withitem) else node.target
                targets = [target] if target is not None else []
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        line = getattr(name, "lineno", 0)
                        found.pop(name.id, None)  # re-insert: order is that of assignment
                        found[name.id] = (index, line)
    return found


def compare_variables(
    a: dict[str, tuple[str, str, str]],
    b: dict[str, tuple[str, str, str]],
    notebook: NotebookNode,
    last: int,
) -> VariableDivergence | None:
    """The first variable, in the notebook's assignment order, whose value differs."""
    differing = [name for name in a if name in b and a[name] != b[name]]
    if not differing:
        return None
    assigned = _assignments(notebook, last)
    order = {name: position for position, name in enumerate(assigned)}
    differing.sort(key=lambda name: (assigned.get(name, (last + 1, 0)), order.get(name, 0)))
    name = differing[0]
    place = None
    if name in assigned:
        index, line = assigned[name]
        lines = _source(notebook.cells[index]).splitlines()
        source = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        place = Place(CellRef.of(notebook, index), line, source)
    kind, shape, _ = a[name]
    return VariableDivergence(name, kind, shape, place)


# -- the command -------------------------------------------------------------------------------


async def explain_divergence_async(
    verification: Verification,
    *,
    cap: int = DEFAULT_CAP,
    timeout: int | None = None,
    kernel_name: str | None = None,
    progress: Progress | None = None,
) -> Explanation:
    """Explain a verification that found a divergence (others are returned as they are)."""
    divergence: Divergence | None = verification.divergence
    if divergence is None:
        return Explanation(verification)
    path = verification.path
    try:
        notebook = read_notebook(path)
        last = divergence.cell.index
        runs = await _gather_or_cancel(
            [
                _recorded_run(path, notebook, last, cap, n, timeout, kernel_name, progress)
                for n in (1, 2)
            ]
        )
    except NbreproError as error:
        return Explanation(verification, error=str(error))
    (executed, variables_a, trace_a), (_, variables_b, trace_b) = runs
    notes: list[str] = []
    capped = next((t for t in (trace_a, trace_b) if t.capped_at is not None), None)
    if capped is not None and capped.capped_at is not None:
        notes.append(
            f"The recorder stopped at its cap of {cap} operations, at "
            f"{_place(capped, capped.capped_at, executed, notebook)}; operations from there on "
            "were not compared (raise the cap with --max-ops)."
        )
    operation, paths_differ = (None, None)
    if trace_a.torch or trace_b.torch:
        operation, paths_differ = compare_traces(trace_a, trace_b, executed, notebook)
    variable = None
    if operation is None:
        variable = compare_variables(variables_a, variables_b, notebook, last)
        if trace_a.torch and capped is None and paths_differ is None and variable is not None:
            notes.append("No torch operation differed: the divergence is outside torch.")
        if variable is None and paths_differ is None:
            notes.append(
                "The two recorded runs did not differ in any torch operation or variable: the "
                "divergence did not happen again, or only in what the cell printed."
            )
    return Explanation(verification, operation, paths_differ, variable, tuple(notes))


async def explain_async(
    path: Path,
    *,
    cap: int = DEFAULT_CAP,
    timeout: int | None = None,
    kernel_name: str | None = None,
    progress: Progress | None = None,
) -> Explanation:
    """Verify ``path`` with two fresh runs; when they diverge, explain the divergence."""
    (verification,) = await verify_async(
        [path], runs=2, jobs=2, timeout=timeout, kernel_name=kernel_name, progress=progress
    )
    return await explain_divergence_async(
        verification, cap=cap, timeout=timeout, kernel_name=kernel_name, progress=progress
    )


#: :func:`explain_async` from synchronous code; Ctrl-C stops every kernel.
explain = run_sync(explain_async)


async def _explain_all(
    verifications: Sequence[Verification],
    cap: int,
    timeout: int | None,
    kernel_name: str | None,
    progress: Progress | None,
) -> list[Explanation]:
    return [
        await explain_divergence_async(
            v, cap=cap, timeout=timeout, kernel_name=kernel_name, progress=progress
        )
        for v in verifications
    ]


#: Explain each of ``verify``'s verdicts that found a divergence (``verify --explain``).
explain_verifications = run_sync(_explain_all)


@dataclass(frozen=True)
class ExplainResult:
    """``nbrepro explain`` / ``nbrepro verify --explain``: one explanation per notebook."""

    explanations: list[Explanation] = field(default_factory=list)

    @property
    def status(self) -> Outcome:
        """The worst outcome: 0 reproducible, 1 diverged, 2 error."""
        return max((e.status for e in self.explanations), default=Outcome.REPRODUCIBLE)

    def print(self) -> None:
        """Each notebook's report on stdout; errors also on stderr."""
        for explanation in self.explanations:
            print(explanation.report())
            if explanation.error is not None:
                print_error("explain", f"{explanation.verification.path}: {explanation.error}")
