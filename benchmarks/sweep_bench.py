"""What ``nbrepro sweep`` costs over plain fresh-kernel runs, and what a second Dask worker buys.

Run ``python benchmarks/sweep_bench.py [NOTEBOOK] [--runs N] [--repeat R]``. It measures, R
times and interleaved (so a slow spell hits every row alike):

- plain: N back-to-back ``nbclient.NotebookClient(nb).execute()`` runs with immediate kernel
  shutdown, the sum of their wall times;
- sweep, local: ``nbrepro.commands.sweep.sweep([nb], seeds=N, repeat=1, jobs=1)``, and its
  overhead per run over plain (target: under 1 s plus one kernel start a run);
- sweep on a Dask cluster on 127.0.0.1 with one worker, then with two (``--nthreads 1``
  each), and the speed-up of two over one (target: at least 1.6x with 4 or more runs on
  2 cores).

Medians go into one plain-text table. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from verify_bench import plain_runs  # benchmarks/ is on sys.path: scripts run from there

from nbrepro.commands.sweep import sweep

REPO = Path(__file__).resolve().parent.parent
DEFAULT_NOTEBOOK = REPO / "tests" / "notebooks" / "sweep" / "score_baseline.ipynb"


def sweep_time(path: Path, runs: int, scheduler: str | None = None) -> float:
    """Wall time of a sweep of ``runs`` seeds, no repeats."""
    started = time.perf_counter()
    result = sweep([path], seeds=runs, repeat=1, jobs=1, scheduler=scheduler)
    if result.status != 0:
        raise SystemExit(f"the sweep failed: {result.report()}")
    return time.perf_counter() - started


class Cluster:
    """A Dask scheduler and ``workers`` single-threaded workers on 127.0.0.1."""

    def __init__(self, workers: int, folder: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.address = f"tcp://127.0.0.1:{port}"
        log = (folder / "dask.log").open("ab")  # the cluster's and its kernels' chatter
        common = {"stdout": log, "stderr": log, "cwd": folder}
        self.processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "distributed.cli.dask_scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-dashboard",
                ],
                **common,  # type: ignore[arg-type]
            )
        ]
        for number in range(workers):
            self.processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "distributed.cli.dask_worker",
                        self.address,
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                        "--name",
                        f"bench-{number}",
                    ],
                    **common,  # type: ignore[arg-type]
                )
            )
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a worker still closing down: not measured
                process.kill()
                process.wait()


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("notebook", nargs="?", type=Path, default=DEFAULT_NOTEBOOK)
    options.add_argument("--runs", type=int, default=4, help="seeds per sweep (4)")
    options.add_argument("--repeat", type=int, default=2, help="measurements per row (2)")
    args = options.parse_args()
    path: Path = args.notebook
    rows: dict[str, list[float]] = {"plain": [], "local": [], "dask 1": [], "dask 2": []}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.repeat):
            rows["plain"].append(plain_runs(path, args.runs, "immediate"))
            rows["local"].append(sweep_time(path, args.runs))
            for workers in (1, 2):
                cluster = Cluster(workers, Path(folder))
                try:
                    rows[f"dask {workers}"].append(sweep_time(path, args.runs, cluster.address))
                finally:
                    cluster.stop()
    median = {name: statistics.median(times) for name, times in rows.items()}
    print(
        f"nbrepro sweep benchmark: {path.name}, {args.runs} runs a sweep, median of "
        f"{args.repeat}; Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(f"{'what':<44} {'seconds':>8} {'per run':>8}")
    table = [
        ("plain nbclient runs (immediate shutdown)", median["plain"]),
        ("nbrepro sweep, local kernels, --jobs 1", median["local"]),
        ("nbrepro sweep, Dask, 1 worker", median["dask 1"]),
        ("nbrepro sweep, Dask, 2 workers", median["dask 2"]),
    ]
    for what, seconds in table:
        print(f"{what:<44} {seconds:>8.2f} {seconds / args.runs:>8.2f}")
    overhead = (median["local"] - median["plain"]) / args.runs
    print(f"sweep overhead per run over plain runs: {overhead:+.2f} s")
    print(f"speed-up of 2 Dask workers over 1: {median['dask 1'] / median['dask 2']:.2f}x")


if __name__ == "__main__":
    main()
