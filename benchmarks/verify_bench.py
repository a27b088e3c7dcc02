"""What ``nbrepro verify`` costs over executing the notebook N times with plain nbclient.

Run ``python benchmarks/verify_bench.py [NOTEBOOK ...] [--runs N] [--repeat R]``. For each
notebook it measures, R times and interleaved (so a slow spell hits every row alike):

- plain: N back-to-back ``nbclient.NotebookClient(nb).execute()`` calls, the sum of their
  wall times (each includes starting and stopping its kernel);
- plain, immediate: the same with ``shutdown_kernel="immediate"``, as nbrepro stops its
  kernels (nbclient's default graceful shutdown waits for the kernel to exit by itself), so
  that the overhead of what nbrepro adds is seen apart from that saving;
- kernel start: starting a kernel until it answers ``kernel_info`` (jupyter_client alone);
- verify: ``nbrepro.commands.verify.verify([nb], runs=N, jobs=1)``, wall time, and its
  overhead per run over plain (target: within 1 s plus one kernel start per run);
- verify with ``jobs=2``, and its speed-up over ``jobs=1``.

Medians are printed in one plain-text table. Timings are reported, never asserted. Everything
runs in this process, so the interpreter's start and imports are in no figure.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import platform
import statistics
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from nbrepro.commands.verify import verify

REPO = Path(__file__).resolve().parent.parent
DEFAULT_NOTEBOOKS = [
    REPO / "tests" / "notebooks" / "seeded_numpy_reproduces.ipynb",
    REPO / "example_notebooks" / "numpy_sklearn.ipynb",
    REPO / "example_notebooks" / "pytorch_mlp.ipynb",
]


def plain_runs(path: Path, runs: int, shutdown: str = "graceful") -> float:
    """Sum of ``runs`` plain nbclient executions of ``path``, in seconds."""
    notebook = nbformat.read(path, as_version=4)
    total = 0.0
    for _ in range(runs):
        started = time.perf_counter()
        NotebookClient(
            copy.deepcopy(notebook),
            kernel_name="python3",
            shutdown_kernel=shutdown,
            resources={"metadata": {"path": str(path.parent)}},
        ).execute()
        total += time.perf_counter() - started
    return total


async def _kernel_start() -> float:
    manager = AsyncKernelManager(kernel_name="python3")
    started = time.perf_counter()
    await manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        return time.perf_counter() - started
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)


def kernel_start() -> float:
    """Seconds from starting a kernel to its first ``kernel_info`` reply."""
    return asyncio.run(_kernel_start())


def verify_time(path: Path, runs: int, jobs: int) -> float:
    """Wall time of ``nbrepro verify`` on ``path``; raises if it does not verify."""
    started = time.perf_counter()
    (result,) = verify([path], runs=runs, jobs=jobs)
    seconds = time.perf_counter() - started
    if result.error is not None or result.divergence is not None:
        raise SystemExit(f"verify_bench: {result.report()}")
    return seconds


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, default=DEFAULT_NOTEBOOKS)
    parser.add_argument("--runs", type=int, default=2, help="runs per verification (2)")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per figure (3)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

    kernel_start()  # warm the disk cache: the first start reads everything from disk
    rows = []
    for path in args.notebooks:
        samples: dict[str, list[float]] = {
            "plain": [], "immediate": [], "start": [], "j1": [], "j2": []
        }  # fmt: skip
        for _ in range(args.repeat):
            samples["plain"].append(plain_runs(path, args.runs))
            samples["immediate"].append(plain_runs(path, args.runs, "immediate"))
            samples["start"].append(kernel_start())
            samples["j1"].append(verify_time(path, args.runs, 1))
            samples["j2"].append(verify_time(path, args.runs, 2))
        median = {name: statistics.median(values) for name, values in samples.items()}
        overhead = (median["j1"] - median["plain"]) / args.runs
        added = (median["j1"] - median["immediate"]) / args.runs
        target = 1.0 + median["start"]
        rows.append(
            (
                path.name,
                f"{median['plain']:.2f}",
                f"{median['immediate']:.2f}",
                f"{median['start']:.2f}",
                f"{median['j1']:.2f}",
                f"{overhead:+.2f} ({'met' if overhead <= target else 'MISSED'}: <= {target:.2f})",
                f"{added:+.2f}",
                f"{median['j2']:.2f}",
                f"{median['j1'] / median['j2']:.2f}x",
            )
        )

    header = (
        "notebook",
        f"plain x{args.runs} (s)",
        "plain, immediate (s)",
        "kernel start (s)",
        "verify j1 (s)",
        "overhead/run vs plain (s)",
        "vs immediate (s)",
        "verify j2 (s)",
        "j2 speed-up",
    )
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print(
        f"nbrepro verify, {args.runs} runs, median of {args.repeat}; "
        f"{platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs"
    )
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
