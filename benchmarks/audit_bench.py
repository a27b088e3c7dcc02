"""The per-cell cost of the findings audit, on a notebook of 200 cells.

Run ``python benchmarks/audit_bench.py [--cells 200] [--repeat 5]``. The cells are the code
cells of the bundled example notebooks, cycled to the requested count (magics, imports,
training loops, prints), with the frameworks they use swapped for light stand-ins so that
only nbrepro's work is timed. Two figures, each the median of ``--repeat`` passes:

- the static check alone (``audit_cell``: one ``ast.parse`` and a visitor), per cell;
- everything nbrepro does around a cell in a real ``InteractiveShell``: the shell's
  pre/post_run_cell events with nbrepro loaded and seeded, minus the same events without
  it; this also counts the runtime checks, the status listeners and the bookkeeping of
  which findings are new;
- the same for cells that each have a new finding (a ``uuid4()`` call), so that every cell
  also writes its one-line finding under itself (to stderr, here an in-memory buffer).

Target: under 1 ms per cell. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time
from itertools import cycle, islice
from pathlib import Path

import nbformat

EXAMPLES = Path(__file__).resolve().parent.parent / "example_notebooks"


def example_cells(count: int) -> list[str]:
    """``count`` code cells taken from the examples, in order, repeated as needed."""
    sources = [
        cell.source
        for path in sorted(EXAMPLES.glob("*.ipynb"))
        for cell in nbformat.read(path, as_version=4).cells
        if cell.cell_type == "code" and not cell.source.lstrip().startswith("%")
    ]
    return list(islice(cycle(sources), count))


def time_static(cells: list[str]) -> float:
    """Seconds for the static check of every cell."""
    from nbrepro._audit import audit_cell
    from nbrepro._session import session

    start = time.perf_counter()
    for index, source in enumerate(cells):
        audit_cell(session(), source, f"In [{index}]")
    return time.perf_counter() - start


def finding_cells(count: int) -> list[str]:
    """``count`` cells that each have a finding of their own (NBR402), so each prints a line."""
    return [f"import uuid\nrun_{index} = uuid.uuid4()" for index in range(count)]


def time_hooks(cells: list[str], loaded: bool) -> float:
    """Seconds to fire IPython's pre/post_run_cell events for every cell, as a shell does
    around each execution, with nbrepro's hooks registered or not (the cells' code itself is
    not run: that would time the frameworks, not nbrepro)."""
    from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult, InteractiveShell

    shell = InteractiveShell.instance()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if loaded:
            shell.run_line_magic("load_ext", "nbrepro")
            shell.run_line_magic("repro_seed", "42")
            warm = ExecutionInfo("x = 1", True, False, True, cell_id=None)
            shell.events.trigger("pre_run_cell", warm)  # what seeding said is said by now
            shell.events.trigger("post_run_cell", ExecutionResult(warm))
        events = [
            ExecutionInfo(
                source, store_history=True, silent=False, shell_futures=True, cell_id=None
            )
            for source in cells
        ]
        start = time.perf_counter()
        for info in events:
            shell.events.trigger("pre_run_cell", info)
            shell.events.trigger("post_run_cell", ExecutionResult(info))
        elapsed = time.perf_counter() - start
    if loaded:
        shell.run_line_magic("unload_ext", "nbrepro")
    return elapsed


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cells = example_cells(args.cells)

    time_static(cells)  # warm-up: imports, caches
    static = statistics.median(time_static(cells) for _ in range(args.repeat))
    findings = finding_cells(args.cells)
    plain, hooked, plain_lines, hooked_lines = [], [], [], []
    for _ in range(args.repeat):  # interleaved, so that drift in machine load hits all
        plain.append(time_hooks(cells, loaded=False))
        hooked.append(time_hooks(cells, loaded=True))
        plain_lines.append(time_hooks(findings, loaded=False))
        hooked_lines.append(time_hooks(findings, loaded=True))
    per_cell = 1000 / args.cells
    overhead = statistics.median(h - p for h, p in zip(hooked, plain, strict=True))
    with_lines = statistics.median(h - p for h, p in zip(hooked_lines, plain_lines, strict=True))
    print(f"audit cost on a notebook of {args.cells} cells (median of {args.repeat} passes)")
    print(f"{'measure':<48} {'ms/cell':>8}  target")
    print(f"{'static check of the cell (audit_cell)':<48} {static * per_cell:>8.3f}  < 1 ms")
    print(f"{'cell events, plain shell':<48} {statistics.median(plain) * per_cell:>8.3f}")
    print(
        f"{'cell events, nbrepro loaded and seeded':<48} "
        f"{statistics.median(hooked) * per_cell:>8.3f}"
    )
    print(f"{'nbrepro per cell (difference)':<48} {overhead * per_cell:>8.3f}  < 1 ms")
    print(
        f"{'nbrepro per cell, each saying a new finding':<48} {with_lines * per_cell:>8.3f}  < 1 ms"
    )


if __name__ == "__main__":
    main()
