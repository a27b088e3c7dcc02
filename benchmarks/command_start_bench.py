"""How long the ``nbrepro`` command takes to start, against importing what it needs.

Run ``python benchmarks/command_start_bench.py [--repeat 5]``. Each row is the median wall
time of ``--repeat`` fresh processes, rounds interleaved so that a slow spell hits every row:
``python -c "import nbformat"`` (what every command needs to read a notebook), the same with
``rfc3987_syntax`` kept out as the command keeps it out (see ``nbrepro.commands.cli``), and
``nbrepro show`` of a bundled example (read, validate, report). Compare ratios; printed,
never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "example_notebooks" / "numpy_sklearn.ipynb"
ROWS = {
    "import nbformat": [sys.executable, "-c", "import nbformat"],
    "import nbformat, rfc3987_syntax kept out": [
        sys.executable,
        "-c",
        "import sys; sys.modules['rfc3987_syntax'] = None; import nbformat",
    ],
    "nbrepro show EXAMPLE": [sys.executable, "-m", "nbrepro", "show", str(EXAMPLE)],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in ROWS}
    for _ in range(args.repeat):
        for name, command in ROWS.items():
            start = time.perf_counter()
            subprocess.run(command, capture_output=True, check=False)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["import nbformat"])
    print(f"median of {args.repeat} processes each")
    print(f"{'process':<42}{'s':>8}{'ratio':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<42}{median:>8.2f}{median / base:>8.2f}")


if __name__ == "__main__":
    main()
