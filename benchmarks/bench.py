"""What nbrepro costs a notebook, next to the seeding helpers people use instead.

Run ``python benchmarks/bench.py [--repeat N] [--cells N] [--json PATH]``. It prints one
plain-text table; every figure is the median over ``--repeat`` fresh subprocesses, shown
as a time and as a ratio over the baseline (``python -c "import numpy, torch"`` wall time).
Targets are printed beside the figures, never asserted: timings belong in a report, not in
a pass/fail gate that flakes with machine load.

Only the standard library is used here; the subprocesses use whatever is installed
(``pip install nbrepro[bench]`` adds the competitors, lightning-fabric and transformers).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

try:
    import resource
except ImportError:  # Windows: no getrusage; CPU time is then left out
    resource = None  # type: ignore[assignment]

PROBES = Path(__file__).with_name("_probes.py")
REPO = Path(__file__).resolve().parent.parent

BASELINE_CODE = "import numpy, torch"

#: Process-start probes: code run with ``python -c``; the figure is wall time minus baseline.
#: Lightning's helper seeds only, so its counterpart is plain ``nbrepro.seed``; transformers'
#: helper also switches torch determinism, like ``deterministic=True``.
COMPETITORS: dict[str, tuple[str, str, str | None]] = {
    "lightning": (
        "lightning_fabric seed_everything(42)",
        "import numpy, torch; from lightning_fabric.utilities.seed import seed_everything; "
        "seed_everything(42)",
        "lightning_fabric",
    ),
    "transformers": (
        "transformers enable_full_determinism(42)",
        # Exported at the top level (defined in transformers.trainer_utils) in 4.x and 5.x.
        "import numpy, torch; from transformers import enable_full_determinism; "
        "enable_full_determinism(42)",
        "transformers",
    ),
    "nbrepro_seed": (
        "nbrepro.seed(42)",
        "import numpy, torch, nbrepro; nbrepro.seed(42)",
        None,
    ),
    "nbrepro_deterministic": (
        "nbrepro.seed(42, deterministic=True)",
        "import numpy, torch, nbrepro; nbrepro.seed(42, deterministic=True)",
        None,
    ),
}

Figures = dict[str, Any]


class ProbeError(RuntimeError):
    """A benchmark subprocess exited with an error."""


@dataclass(frozen=True)
class Row:
    """One line of the table: a median in seconds, its ratio over baseline, and a target."""

    key: str
    label: str
    median_s: float | None
    ratio: float | None
    low_s: float | None
    high_s: float | None
    target_s: float | None = None
    note: str = ""
    samples: int = 0


# -- running subprocesses ---------------------------------------------------------------


def child_env() -> dict[str, str]:
    """The environment for every subprocess: this one, with TensorFlow's C++ logging off."""
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def children_cpu_s() -> float | None:
    """CPU seconds (user + system) used so far by this process's finished children.

    Wall time is what a user waits, but on a shared machine it mostly measures the other
    tenants; CPU time is far less sensitive to them, so it is reported beside it.
    """
    if resource is None:
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(argv: list[str]) -> tuple[float, float | None]:
    """Wall time and CPU time of one subprocess, start to exit, in seconds."""
    cpu_before = children_cpu_s()
    start = time.perf_counter()
    done = subprocess.run(
        argv, cwd=REPO, env=child_env(), capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    cpu_after = children_cpu_s()
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        raise ProbeError(f"{' '.join(argv[:3])}... exited {done.returncode}: {tail}")
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return elapsed, cpu


def run_probe(name: str, cells: int) -> Figures:
    """Run an in-process probe of ``_probes.py`` in a fresh interpreter; its figures."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "result.json"
        run_timed([sys.executable, str(PROBES), name, str(output), str(cells)])
        result: Figures = json.loads(output.read_text(encoding="utf-8"))
        return result


def process_job(key: str, code: str) -> Callable[[], Figures]:
    """A job that times ``python -c code`` as a whole process: wall and CPU time."""

    def job() -> Figures:
        wall, cpu = run_timed([sys.executable, "-c", code])
        return {key: wall} if cpu is None else {key: wall, f"{key}_cpu": cpu}

    return job


def probe_job(name: str, cells: int) -> Callable[[], Figures]:
    """A job that runs the in-process probe ``name``."""
    return lambda: run_probe(name, cells)


def plan(cells: int) -> tuple[dict[str, Callable[[], Figures]], dict[str, str]]:
    """The jobs to run each round, and the competitors skipped because they are missing."""
    jobs = {
        "baseline": process_job("baseline", BASELINE_CODE),
        "load_ext": probe_job("load_ext", cells),
        "kernel_with_tf": probe_job("kernel_with_tf", cells),
        "kernel_without_tf": probe_job("kernel_without_tf", cells),
    }
    skipped: dict[str, str] = {}
    for key, (_, code, module) in COMPETITORS.items():
        if module is not None and importlib.util.find_spec(module) is None:
            skipped[key] = f"not installed (pip install {module.replace('_', '-')})"
        else:
            jobs[key] = process_job(key, code)
    return jobs, skipped


def collect(
    jobs: dict[str, Callable[[], Figures]], repeat: int
) -> tuple[dict[str, list[Any]], dict[str, str]]:
    """Every figure from ``repeat`` rounds, and the jobs that failed.

    Round-robin rather than one job ``repeat`` times in a row, so that a slow spell of the
    machine lands on all rows alike and the ratios stay fair.
    """
    figures: dict[str, list[Any]] = {}
    failed: dict[str, str] = {}
    started = time.perf_counter()
    for round_ in range(1, repeat + 1):
        for name, job in jobs.items():
            if name in failed:
                continue
            try:
                result = job()
            except ProbeError as error:
                failed[name] = str(error)
                print(f"  {name} failed: {error}", file=sys.stderr)
                continue
            for key, value in result.items():
                figures.setdefault(key, []).append(value)
        elapsed = time.perf_counter() - started
        print(f"  round {round_}/{repeat} done ({elapsed:.0f} s)", file=sys.stderr, flush=True)
    return figures, failed


# -- turning figures into rows --------------------------------------------------------------


def summarise(
    key: str,
    label: str,
    samples: list[float] | None,
    baseline: float | None,
    *,
    target_s: float | None = None,
    note: str = "",
) -> Row:
    """A row for the median of ``samples``, with its ratio over baseline."""
    if not samples:
        return Row(key, label, None, None, None, None, target_s, note or "no samples", 0)
    median = statistics.median(samples)
    ratio = median / baseline if baseline else None
    return Row(key, label, median, ratio, min(samples), max(samples), target_s, note, len(samples))


def over_baseline(figures: dict[str, list[Any]], key: str, base: str = "baseline") -> list[float]:
    """Per-round process time of ``key`` minus the ``base`` process of the same round.

    Paired by round, because on a busy machine load drifts over minutes and a difference of
    two medians taken at different moments can come out below zero.
    """
    pairs = zip(figures.get(key, []), figures.get(base, []), strict=False)
    return [process - reference for process, reference in pairs]


def per_cell_overhead(figures: dict[str, list[Any]], prefix: str) -> list[float]:
    """Per-process per-cell overhead: the per-cell mode's cell time minus plain mode's.

    Paired within each process, where both modes ran in the same shell.
    """
    plain = figures.get(f"{prefix}cell_plain_s", [])
    per_cell = figures.get(f"{prefix}cell_per_cell_s", [])
    return [on - off for on, off in zip(per_cell, plain, strict=True)]


def cpu_note(samples: list[float], sign: str) -> str:
    """``cpu 2.41 s`` / ``cpu +0.35 s``: the median CPU time behind a process row."""
    if not samples:
        return ""
    median = statistics.median(samples)
    return f"cpu {sign if median >= 0 else ''}{fmt_time(median)}"


def frameworks_note(figures: dict[str, list[Any]]) -> str:
    """Which frameworks ``import nbrepro`` + ``%load_ext`` pulled in, over all runs."""
    imported: set[str] = set()
    for before, after in zip(
        figures.get("frameworks_before", []), figures.get("frameworks_after", []), strict=True
    ):
        imported |= set(after) - set(before)
    if not figures.get("frameworks_after"):
        return ""
    return "imports: " + (", ".join(sorted(imported)) if imported else "no framework")


def build_rows(figures: dict[str, list[Any]], skipped: dict[str, str], repeat: int) -> list[Row]:
    """The table's rows, in the order of the README; short rows say how many runs they had."""
    base_samples = figures.get("baseline")
    baseline = statistics.median(base_samples) if base_samples else None
    rows = [
        summarise(
            "baseline",
            f'baseline: python -c "{BASELINE_CODE}"',
            base_samples,
            baseline,
            note=cpu_note(figures.get("baseline_cpu", []), ""),
        ),
        summarise(
            "load_ext",
            "import nbrepro + %load_ext nbrepro (in shell)",
            figures.get("load_ext_s"),
            baseline,
            target_s=0.030,
            note=frameworks_note(figures),
        ),
        summarise(
            "seed_first",
            "%repro_seed 42 --deterministic, 1st call [np+torch+tf]",
            figures.get("seed_first_s"),
            baseline,
            target_s=0.010,
        ),
        summarise(
            "seed_repeat",
            "%repro_seed 42 --deterministic, repeat call",
            figures.get("seed_repeat_s"),
            baseline,
            target_s=0.005,
        ),
        summarise(
            "torch_deterministic_first",
            "  torch.use_deterministic_algorithms, 1st call",
            figures.get("torch_deterministic_first_s"),
            baseline,
            note="torch alone [np+torch]",
        ),
        summarise(
            "per_cell_tf",
            "--per-cell overhead per cell [np+torch+tf]",
            per_cell_overhead(figures, "tf_"),
            baseline,
            target_s=0.001,
        ),
        summarise(
            "per_cell_tf_train",
            "--per-cell overhead per Keras training-step cell [np+torch+tf]",
            per_cell_overhead(figures, "tf_train_"),
            baseline,
            target_s=0.001,
            note="each cell once, as in Run All",
        ),
        summarise(
            "per_cell_tf_rerun",
            "  the same training cell run again",
            per_cell_overhead(figures, "tf_rerun_"),
            baseline,
            note="a rerun restarts TensorFlow's kernels (its set_seed)",
        ),
        summarise(
            "per_cell_no_tf",
            "--per-cell overhead per cell [np+torch]",
            per_cell_overhead(figures, "no_tf_"),
            baseline,
            target_s=0.001,
        ),
    ]
    for key, (label, _, _) in COMPETITORS.items():
        rows.append(
            summarise(
                key,
                f"{label}, process - baseline",
                over_baseline(figures, key),
                baseline,
                note=skipped.get(key)
                or cpu_note(over_baseline(figures, f"{key}_cpu", "baseline_cpu"), "+"),
            )
        )
    return [_flag_short(row, repeat) for row in rows]


def _flag_short(row: Row, repeat: int) -> Row:
    # A probe that failed part-way leaves fewer samples than rounds; say so in the table.
    if row.samples == 0 or row.samples >= repeat:
        return row
    count = f"only {row.samples} of {repeat} runs"
    return replace(row, note=f"{row.note}; {count}" if row.note else count)


# -- printing ------------------------------------------------------------------------------------


def fmt_time(seconds: float | None) -> str:
    """``1.87 s``, ``19.2 ms``, ``340 us``: three significant figures in a fitting unit."""
    if seconds is None:
        return "-"
    magnitude = abs(seconds)
    if magnitude >= 1:
        return f"{seconds:.2f} s"
    if magnitude >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"


def fmt_ratio(ratio: float | None) -> str:
    """A ratio over baseline, ``1.76x`` or ``0.0103x``: enough digits for tiny per-cell costs."""
    if ratio is None:
        return "-"
    return f"{ratio:.2f}x" if abs(ratio) >= 0.1 else f"{ratio:.3g}x"


def fmt_target(row: Row) -> str:
    """``< 30 ms: ok`` or ``< 5 ms: OVER``; blank where the row has no target."""
    if row.target_s is None or row.median_s is None:
        return ""
    verdict = "ok" if row.median_s < row.target_s else "OVER"
    return f"< {fmt_time(row.target_s)}: {verdict}"


def format_table(rows: list[Row]) -> str:
    """The rows as an aligned plain-text table that reads well in a CI log."""
    header = ("measurement", "median", "x baseline", "min .. max", "target", "note")
    lines = [
        (
            row.label,
            fmt_time(row.median_s),
            fmt_ratio(row.ratio),
            "" if row.low_s is None else f"{fmt_time(row.low_s)} .. {fmt_time(row.high_s)}",
            fmt_target(row),
            row.note,
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    rule = "  ".join("-" * width for width in widths)
    out = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True)), rule]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(line.rstrip() for line in out)


def versions() -> dict[str, str]:
    """Versions of the interpreter and the packages measured, read without importing them."""
    found = {"python": platform.python_version()}
    for name in (
        "nbrepro",
        "ipython",
        "numpy",
        "torch",
        "tensorflow",
        "tensorflow-cpu",
        "lightning-fabric",
        "transformers",
    ):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


# -- entry point ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat",
        type=int,
        default=7,
        metavar="N",
        help="fresh subprocesses per figure (default 7); the median is shown",
    )
    parser.add_argument(
        "--cells",
        type=int,
        default=200,
        metavar="N",
        help="empty cells per timed block in the per-cell rows (default 200)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the numbers here")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.cells < 1:
        parser.error(f"--repeat and --cells must be >= 1, got {args.repeat} and {args.cells}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every probe ``--repeat`` times, print the table, optionally write JSON."""
    args = parse_args(argv)
    jobs, skipped = plan(args.cells)
    print(f"nbrepro benchmark: {len(jobs)} probes x {args.repeat} rounds", file=sys.stderr)
    figures, failed = collect(jobs, args.repeat)
    rows = build_rows(figures, {**skipped, **failed}, args.repeat)
    env = versions()
    print(
        f"median of {args.repeat} fresh processes per figure; {os.cpu_count()} CPUs; "
        + ", ".join(f"{name} {version}" for name, version in env.items())
    )
    print(format_table(rows))
    for name, error in failed.items():
        print(f"failed: {name}: {error}")
    if args.json is not None:
        report = {
            "repeat": args.repeat,
            "cells": args.cells,
            "cpus": os.cpu_count(),
            "versions": env,
            "rows": [asdict(row) for row in rows],
            "samples": figures,
            "failed": failed,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
