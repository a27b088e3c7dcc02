"""``nbrepro sweep``: how much of a result is the seed, measured.

A notebook runs in fresh kernels under K seeds derived from the experiment seed
(``derive_seed("sweep", i)``) and R times under the first of them; each run's
``nbrepro.metric`` values are read back from its outputs (:mod:`nbrepro._metric`). The report
gives, per metric, the mean, standard deviation, extremes and a 95% interval over seeds
(:mod:`nbrepro._stats`), and the spread over repeats of one seed (run-to-run noise: 0 when the
notebook is reproducible). With two notebooks, both run under the same seeds, and each shared
metric's paired difference gets its own interval.

Runs go to local fresh kernels (``--jobs`` at a time) or, with ``--scheduler``, to the
workers of a Dask distributed cluster: each run is a task that starts its own kernel on its
worker (:func:`run_on_worker`), one per GPU on workers that declare a ``GPU`` resource.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import importlib
import io
import json
import math
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from nbrepro._config import SWEEP_SEED_VARIABLE, validate_seed
from nbrepro._derive import derive_from
from nbrepro._execute import execute_async, run_sync
from nbrepro._metric import notebook_metrics
from nbrepro._notebook_file import check_writable, read_notebook, write_notebook
from nbrepro._stats import Summary, spread, summarize
from nbrepro.commands import Progress, Status, print_error
from nbrepro.errors import MissingDependencyError, NbreproError, NotebookFileError

#: The fewest seeds a sweep runs: one seed says nothing about the spread over seeds.
MIN_SEEDS = 2
#: How long to wait for a Dask scheduler to answer before giving up.
CONNECT_SECONDS = 10.0
LOCAL = "local"


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: which notebook, under which seed, which repeat."""

    notebook: Path
    index: int  #: ``i`` in ``derive_seed("sweep", i)``
    seed: int
    repeat: int  #: 1 for the seed's first run; 2..R for the repeats of seed 0

    @property
    def label(self) -> str:
        """``A.ipynb seed #3 (1234)``, with the repeat where there is one."""
        again = f", repeat {self.repeat}" if self.repeat > 1 else ""
        return f"{self.notebook.name} seed #{self.index} ({self.seed}{again})"

    def output_name(self) -> str:
        """The executed notebook's file name in the output folder."""
        again = f".repeat{self.repeat}" if self.repeat > 1 else ""
        return f"{self.notebook.stem}.seed{self.index:02d}{again}.ipynb"


@dataclass(frozen=True)
class RunOutcome:
    """What one run gave: its metrics (the last value of each name), or why it failed."""

    spec: RunSpec
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    worker: str = LOCAL
    error: str | None = None
    output: Path | None = None


@dataclass(frozen=True)
class MetricReport:
    """One metric of one notebook over the sweep's seeds."""

    name: str
    summary: Summary
    values: dict[int, float]  #: seed index -> value (first runs only)
    repeats: list[float]  #: the values of every run of seed 0, repeats included
    missing: list[int]  #: seed indices whose run finished without this metric

    @property
    def noise(self) -> float | None:
        """The spread over repeats of one seed; ``None`` with fewer than two repeats."""
        return spread(self.repeats) if len(self.repeats) >= 2 else None


@dataclass(frozen=True)
class Comparison:
    """The paired difference B - A of one metric over the seeds both notebooks finished."""

    name: str
    summary: Summary

    def verdict(self, first: str, second: str) -> str:
        """``B is higher than A by 0.8 ± 1.1 (10 seeds): distinguishable`` or not."""
        s = self.summary
        if s.n < 2:
            return f"{self.name}: {second} - {first} = {s.mean:+.4g} on 1 seed: too few to tell"
        low, high = s.interval
        distinguishable = low > 0 or high < 0
        word = "higher" if s.mean > 0 else "lower" if s.mean < 0 else "no different"
        verdict = (
            "distinguishable from seed noise"
            if distinguishable
            else "not distinguishable from seed noise"
        )
        return (
            f"{self.name}: {second} is {word} than {first} by {abs(s.mean):.4g} ± "
            f"{s.half_width:.4g} (95% CI of the paired difference, {s.n} seeds): {verdict}"
        )


@dataclass
class SweepResult:
    """A finished sweep; ``status`` is the exit status and :meth:`report` the table."""

    notebooks: list[Path]
    base_seed: int
    seeds: list[int]
    repeat: int
    runs: list[RunOutcome] = field(default_factory=list)
    scheduler: str | None = None
    output_dir: Path | None = None
    plot: Path | None = None
    plot_note: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)  #: what happened on the way (a lost worker)
    as_json: bool = False  #: :meth:`print` writes :meth:`to_json` instead of the report

    def print(self) -> None:
        """The report (or JSON) on stdout; an error on stderr, as one line."""
        if self.error is not None and not self.as_json:
            print_error("sweep", self.error)
            return
        print(json.dumps(self.to_json(), indent=2) if self.as_json else self.report())

    @property
    def status(self) -> Status:
        """0 every run finished, 1 a run failed (named in the report), 2 an error."""
        if self.error is not None:
            return Status.ERROR
        return Status.FAILED if any(run.error for run in self.runs) else Status.OK

    @property
    def failures(self) -> list[RunOutcome]:
        """The runs that failed, in plan order."""
        return [run for run in self.runs if run.error is not None]

    def metrics(self, notebook: Path) -> list[MetricReport]:
        """Each metric of ``notebook``, in the order first seen."""
        mine = [r for r in self.runs if r.spec.notebook == notebook and r.error is None]
        names: list[str] = []
        for run in mine:
            names.extend(n for n in run.metrics if n not in names)
        reports = []
        for name in names:
            firsts = {r.spec.index: r.metrics[name] for r in mine if r.spec.repeat == 1
                      and name in r.metrics}  # fmt: skip
            missing = sorted(
                r.spec.index for r in mine if r.spec.repeat == 1 and name not in r.metrics
            )
            repeats = [r.metrics[name] for r in mine if r.spec.index == 0 and name in r.metrics]
            values = [firsts[i] for i in sorted(firsts)]
            reports.append(MetricReport(name, summarize(values), firsts, repeats, missing))
        return reports

    def comparisons(self) -> list[Comparison]:
        """Paired differences (second notebook minus first) of their shared metrics."""
        if len(self.notebooks) != 2:
            return []
        first, second = ({m.name: m for m in self.metrics(notebook)} for notebook in self.notebooks)
        found = []
        for name, a in first.items():
            b = second.get(name)
            if b is None:
                continue
            shared = sorted(set(a.values) & set(b.values))
            if shared:
                differences = [b.values[i] - a.values[i] for i in shared]
                found.append(Comparison(name, summarize(differences)))
        return found

    def workers(self) -> list[str]:
        """The workers (Dask addresses, or ``local``) that ran at least one run."""
        return sorted({run.worker for run in self.runs if run.error is None})

    def report(self) -> str:
        """The plain-text report: a table per notebook, comparisons, failures."""
        if self.error is not None:
            return f"error: {self.error}"
        lines = [
            f"{len(self.seeds)} seeds derived from experiment seed {self.base_seed} "
            f'(derive_seed("sweep", i)); seed #0 ({self.seeds[0]}) run {self.repeat} '
            f"time{'s' if self.repeat != 1 else ''}; runs on "
            + (
                f"Dask scheduler {self.scheduler}: {', '.join(self.workers())}"
                if self.scheduler
                else "local fresh kernels"
            )
        ]
        for notebook in self.notebooks:
            lines.append("")
            lines.extend(self._notebook_report(notebook))
        comparisons = self.comparisons()
        if comparisons:
            lines.append("")
            first, second = (n.name for n in self.notebooks)
            lines.append(f"paired over the same seeds ({second} - {first}):")
            lines.extend(f"  {c.verdict(first, second)}" for c in comparisons)
        if self.notes:
            lines.append("")
            lines.extend(self.notes)
        if self.failures:
            lines.append("")
            lines.append(f"{len(self.failures)} run(s) failed:")
            lines.extend(f"  {run.spec.label}: {run.error}" for run in self.failures)
        if self.output_dir is not None:
            lines.append("")
            lines.append(f"executed notebooks (with their records): {self.output_dir}")
        if self.plot is not None:
            lines.append(f"strip plot of each metric per seed: {self.plot}")
        elif self.plot_note:
            lines.append(self.plot_note)
        return "\n".join(lines)

    def _notebook_report(self, notebook: Path) -> list[str]:
        metrics = self.metrics(notebook)
        finished = [r for r in self.runs if r.spec.notebook == notebook and r.error is None]
        lines = [f"{notebook}:"]
        if not metrics:
            if finished:
                lines.append(
                    "  no metric in its outputs, so there is nothing to summarise: report "
                    "results with nbrepro.metric('name', value) in the notebook"
                )
            else:
                lines.append("  no run finished")
            return lines
        header = ("metric", "n", "mean", "std", "min", "max", "95% CI of the mean", "rerun noise")
        rows = [header]
        for m in metrics:
            s = m.summary
            interval = f"[{s.interval[0]:.4g}, {s.interval[1]:.4g}]" if s.n >= 2 else "n/a (1 seed)"
            noise = m.noise
            noise_text = (
                "n/a" if noise is None else "0 (reproducible)" if noise == 0 else f"{noise:.4g}"
            )
            rows.append(
                (
                    m.name,
                    str(s.n),
                    f"{s.mean:.4g}",
                    f"{s.std:.4g}",
                    f"{s.minimum:.4g}",
                    f"{s.maximum:.4g}",
                    interval,
                    noise_text,
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for row in rows:
            lines.append(
                "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            )
        for m in metrics:
            if m.missing:
                lines.append(
                    f"  {m.name}: missing from the runs of seed #"
                    + ", #".join(str(i) for i in m.missing)
                )
            if m.summary.n >= 2 and m.summary.std > 0:
                # Two single runs differ by the seed alone with std sqrt(2)·s; 95% of such
                # differences are within 1.96·sqrt(2)·s.
                band = 1.96 * math.sqrt(2) * m.summary.std
                lines.append(
                    f"  {m.name}: the seed alone moves it by up to ±{band:.3g} between two "
                    "single runs (95%): a smaller difference between two variants run once "
                    "each is not evidence"
                )
            noise = m.noise
            if noise:
                lines.append(
                    f"  {m.name}: NOT reproducible: {len(m.repeats)} runs of seed #0 differ "
                    f"by up to {noise:.4g} (nbrepro verify names the cell)"
                )
        return lines

    def to_json(self) -> dict[str, Any]:
        """Every value, for ``--json``."""

        def finite(x: float) -> float | None:
            return x if math.isfinite(x) else None  # JSON has no nan

        def summary(s: Summary) -> dict[str, Any]:
            return {
                "n": s.n, "mean": s.mean, "std": s.std, "min": s.minimum, "max": s.maximum,
                "ci95": [finite(s.interval[0]), finite(s.interval[1])],
            }  # fmt: skip

        return {
            "status": int(self.status),
            "error": self.error,
            "base_seed": self.base_seed,
            "seeds": self.seeds,
            "repeat": self.repeat,
            "scheduler": self.scheduler,
            "workers": self.workers(),
            "notes": self.notes,
            "runs": [
                {
                    "notebook": str(run.spec.notebook),
                    "seed_index": run.spec.index,
                    "seed": run.spec.seed,
                    "repeat": run.spec.repeat,
                    "metrics": run.metrics,
                    "seconds": run.seconds,
                    "worker": run.worker,
                    "error": run.error,
                    "output": None if run.output is None else str(run.output),
                }
                for run in self.runs
            ],
            "notebooks": {
                str(notebook): {
                    m.name: {
                        **summary(m.summary),
                        "values": {str(i): v for i, v in sorted(m.values.items())},
                        "repeats": m.repeats,
                        "rerun_noise": m.noise,
                        "missing": m.missing,
                    }
                    for m in self.metrics(notebook)
                }
                for notebook in self.notebooks
            },
            "paired": [{"metric": c.name, **summary(c.summary)} for c in self.comparisons()],
        }


def sweep_seeds(base_seed: int, count: int) -> list[int]:
    """The sweep's seeds: ``derive_seed("sweep", i)`` for i in 0..count-1."""
    return [derive_from(base_seed, ("sweep", i)) for i in range(count)]


def plan(notebooks: Sequence[Path], seeds: Sequence[int], repeat: int) -> list[RunSpec]:
    """Every run: each notebook under each seed, then the repeats of seed 0."""
    specs = [
        RunSpec(notebook, index, seed, 1)
        for index, seed in enumerate(seeds)
        for notebook in notebooks
    ]
    specs += [
        RunSpec(notebook, 0, seeds[0], again)
        for again in range(2, repeat + 1)
        for notebook in notebooks
    ]
    return specs


def seed_arguments(seed: int, deterministic: bool) -> str:
    """What the silent preamble passes to ``%repro_seed`` for one run."""
    return f"{seed}{' --deterministic' if deterministic else ''}"


async def _execute_run(
    notebook: NotebookNode,
    path: Path,
    seed: int,
    *,
    deterministic: bool,
    timeout: int | None,
    kernel_name: str | None,
) -> tuple[NotebookNode, str | None]:
    """Run one copy of ``notebook`` under ``seed``; the executed copy and why it failed."""
    executed = copy.deepcopy(notebook)
    try:
        await execute_async(
            executed,
            path=path,
            timeout=timeout,
            kernel_name=kernel_name,
            seed_arguments=seed_arguments(seed, deterministic),
            variables={SWEEP_SEED_VARIABLE: str(seed)},
            record=True,
            started_by="nbrepro sweep",
        )
    except NbreproError as error:
        return executed, str(error)
    return executed, None


def run_on_worker(
    notebook_json: str,
    path: str,
    seed: int,
    deterministic: bool,
    timeout: int | None,
    kernel_name: str | None,
) -> dict[str, Any]:
    """One run as a Dask task: start a kernel on this worker, run, return what it gave.

    The notebook travels as JSON and runs in ``path``'s folder, which must exist on the
    worker (a shared file system, or the same machine): where it does not, the run fails
    saying so. A failing cell is part of the result,
    not an exception, so that Dask retries only runs whose worker was lost.
    """
    from distributed import get_worker  # only ever runs on a Dask worker

    notebook = _from_text(notebook_json)
    started = time.perf_counter()
    address = get_worker().address
    folder = Path(path).parent
    if folder.is_dir():
        executed, error = run_sync(_execute_run)(
            notebook,
            Path(path),
            seed,
            deterministic=deterministic,
            timeout=timeout,
            kernel_name=kernel_name,
        )
    else:
        executed, error = (
            notebook,
            (
                f"the notebook's folder {folder} does not exist on worker {address}: runs on a "
                "Dask cluster need it, with the notebook's data, at the same path on every worker "
                "(a shared file system)"
            ),
        )
    return {
        "notebook": _to_text(executed),
        "error": error,
        "seconds": time.perf_counter() - started,
        "worker": address,
    }


def _to_text(notebook: NotebookNode) -> str:
    # Notebooks cross to Dask workers and back as JSON text, which every pickler takes.
    text: str = nbformat.writes(notebook)  # type: ignore[no-untyped-call]
    return text


def _from_text(text: str) -> NotebookNode:
    notebook: NotebookNode = nbformat.reads(text, as_version=nbformat.NO_CONVERT)  # type: ignore[no-untyped-call]
    return notebook


def _last_values(executed: NotebookNode) -> dict[str, float]:
    # A metric reported several times in a run (per epoch, say) counts with its last value.
    return {name: values[-1] for name, values in notebook_metrics(executed.cells).items()}


class _Collector:
    """Turns finished runs into :class:`RunOutcome`; writes each executed notebook."""

    def __init__(self, total: int, output_dir: Path | None, progress: Progress) -> None:
        self.total = total
        self.output_dir = output_dir
        self.progress = progress
        self.outcomes: dict[RunSpec, RunOutcome] = {}

    def finished(
        self,
        spec: RunSpec,
        executed: NotebookNode | None,
        error: str | None,
        seconds: float,
        worker: str,
    ) -> None:
        output = None
        metrics = {} if executed is None else _last_values(executed)
        if executed is not None and self.output_dir is not None:
            output = self.output_dir / spec.output_name()
            try:
                write_notebook(executed, output)
            except NbreproError as written:
                error = error or f"could not write the executed notebook: {written}"
                output = None
        self.outcomes[spec] = RunOutcome(spec, metrics, seconds, worker, error, output)
        where = "" if worker == LOCAL else f" on {worker}"
        shown = ", ".join(f"{k} = {v:.4g}" for k, v in metrics.items()) or "no metric"
        state = f"FAILED: {error}" if error else f"{shown}"
        self.progress(
            f"sweep: {spec.label}: {state} ({seconds:.1f} s{where}; "
            f"{len(self.outcomes)}/{self.total})"
        )


async def _run_local(
    specs: Sequence[RunSpec],
    notebooks: dict[Path, NotebookNode],
    collector: _Collector,
    *,
    jobs: int,
    deterministic: bool,
    timeout: int | None,
    kernel_name: str | None,
) -> None:
    slots = asyncio.Semaphore(jobs)

    async def one(spec: RunSpec) -> None:
        async with slots:
            started = time.perf_counter()
            executed, error = await _execute_run(
                notebooks[spec.notebook],
                spec.notebook,
                spec.seed,
                deterministic=deterministic,
                timeout=timeout,
                kernel_name=kernel_name,
            )
            collector.finished(spec, executed, error, time.perf_counter() - started, LOCAL)

    tasks = [asyncio.ensure_future(one(spec)) for spec in specs]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _run_dask(
    specs: Sequence[RunSpec],
    notebooks: dict[Path, NotebookNode],
    collector: _Collector,
    *,
    scheduler: str,
    deterministic: bool,
    timeout: int | None,
    kernel_name: str | None,
) -> list[str]:
    """Run ``specs`` as tasks on the cluster; notes on workers lost on the way."""
    try:
        distributed: Any = importlib.import_module("distributed")  # untyped; optional
    except ImportError as error:
        raise MissingDependencyError("distributed", "dask", "nbrepro sweep --scheduler") from error
    try:
        client = distributed.Client(scheduler, timeout=CONNECT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        raise NbreproError(
            f"cannot reach the Dask scheduler at {scheduler!r} within {CONNECT_SECONDS:.0f} s: "
            f"{error}"
        ) from None
    try:
        workers = client.scheduler_info().get("workers", {})
        if not workers:
            raise NbreproError(f"the Dask scheduler at {scheduler} has no workers")
        # A worker that declares GPUs takes one run per GPU.
        gpu = any("GPU" in (w.get("resources") or {}) for w in workers.values())
        texts = {path: _to_text(nb) for path, nb in notebooks.items()}
        batch = uuid.uuid4().hex[:8]
        futures = {
            client.submit(
                run_on_worker,
                texts[spec.notebook],
                str(spec.notebook.resolve()),
                spec.seed,
                deterministic,
                timeout,
                kernel_name,
                key=f"nbrepro-sweep-{batch}-{number}",
                pure=False,
                resources={"GPU": 1} if gpu else None,
            ): spec
            for number, spec in enumerate(specs)
        }
        try:
            for future in distributed.as_completed(futures, loop=client.loop):
                spec = futures[future]
                try:
                    result = future.result()
                except Exception as error:  # the worker was lost too often, or the task broke
                    reason = f"{type(error).__name__}: {error}"
                    collector.finished(spec, None, f"the Dask task failed: {reason}", 0.0, "?")
                    continue
                executed = _from_text(result["notebook"])
                collector.finished(
                    spec, executed, result["error"], result["seconds"], result["worker"]
                )
        except BaseException:
            client.cancel(list(futures), force=True)
            raise
        # nthreads() asks the scheduler now; scheduler_info() may be a cached copy.
        lost = sorted(set(workers) - set(client.nthreads()))
        return [
            f"worker {address} was lost during the sweep; Dask ran its runs again on the "
            "other workers"
            for address in lost
        ]
    finally:
        client.close()


def sweep(
    notebooks: Sequence[Path],
    *,
    seeds: int,
    repeat: int = 2,
    base_seed: int = 0,
    jobs: int = 1,
    scheduler: str | None = None,
    output_dir: Path | None = None,
    deterministic: bool = False,
    timeout: int | None = None,
    kernel_name: str | None = None,
    progress: Progress | None = None,
) -> SweepResult:
    """Run ``notebooks`` under ``seeds`` derived seeds and ``repeat`` runs of the first.

    Nothing runs when an argument is wrong or a notebook cannot be read, or the output folder
    cannot be written: the result then has an ``error`` (exit status 2). A failing run is
    reported by its seed; the other runs still count.
    """
    say = progress or (lambda line: None)
    result = SweepResult(
        list(notebooks), base_seed, [], repeat, scheduler=scheduler, output_dir=output_dir
    )
    problem = _check_arguments(notebooks, seeds, repeat, jobs, base_seed)
    if problem is not None:
        result.error = problem
        return result
    try:
        loaded = {path: read_notebook(path) for path in notebooks}
        if output_dir is not None:
            _prepare_output(output_dir, plan(notebooks, [0] * seeds, repeat))
    except NbreproError as error:
        result.error = str(error)
        return result
    result.seeds = sweep_seeds(base_seed, seeds)
    specs = plan(notebooks, result.seeds, repeat)
    collector = _Collector(len(specs), output_dir, say)
    say(
        f"sweep: {len(specs)} runs ({len(notebooks)} notebook(s) x {seeds} seeds, "
        f"+{(repeat - 1) * len(notebooks)} repeats) "
        + (f"on {scheduler}" if scheduler else f"in local kernels, {jobs} at a time")
    )
    try:
        if scheduler is not None:
            result.notes = _run_dask(
                specs, loaded, collector, scheduler=scheduler, deterministic=deterministic,
                timeout=timeout, kernel_name=kernel_name,
            )  # fmt: skip
        else:
            run_sync(_run_local)(
                specs, loaded, collector, jobs=jobs, deterministic=deterministic,
                timeout=timeout, kernel_name=kernel_name,
            )  # fmt: skip
    except NbreproError as error:
        result.error = str(error)
        return result
    finally:
        # What finished before an interruption is still reported and written.
        result.runs = [collector.outcomes[s] for s in specs if s in collector.outcomes]
    if output_dir is not None:
        result.plot, result.plot_note = write_plot(result, output_dir)
    return result


def _check_arguments(
    notebooks: Sequence[Path], seeds: int, repeat: int, jobs: int, base_seed: int
) -> str | None:
    if not 1 <= len(notebooks) <= 2:
        return f"sweep takes one notebook, or two to compare; got {len(notebooks)}"
    if len(notebooks) == 2 and Path(notebooks[0]).resolve() == Path(notebooks[1]).resolve():
        return "the two notebooks to compare are the same file"
    if seeds < MIN_SEEDS:
        return f"--seeds {seeds}: a sweep needs at least {MIN_SEEDS} seeds to measure a spread"
    if repeat < 1:
        return f"--repeat {repeat}: the first seed runs at least once (1 = no repeats)"
    if jobs < 1:
        return f"--jobs {jobs}: at least one kernel at a time"
    try:
        validate_seed(base_seed)
    except NbreproError as error:
        return str(error)
    return None


def _prepare_output(folder: Path, specs: Sequence[RunSpec]) -> None:
    """Make the output folder and check every target before anything runs."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise NotebookFileError(
            folder, f"cannot create the output folder: {error.strerror}"
        ) from None
    for spec in specs:
        check_writable(folder / spec.output_name())


def write_plot(result: SweepResult, folder: Path) -> tuple[Path | None, str | None]:
    """An HTML report with a strip plot of each metric per seed, where matplotlib exists."""
    reports = [(nb, m) for nb in result.notebooks for m in result.metrics(nb)]
    if not reports:
        return None, None
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return None, "no plot: install matplotlib for a strip plot of each metric per seed"
    figures = []
    names = sorted({m.name for _, m in reports})
    for name in names:
        figure, axes = plt.subplots(figsize=(7, 1.6 + 0.6 * len(result.notebooks)))
        for row, notebook in enumerate(result.notebooks):
            metric = next((m for nb, m in reports if nb == notebook and m.name == name), None)
            if metric is None:
                continue
            xs = [metric.values[i] for i in sorted(metric.values)]
            axes.scatter(xs, [row] * len(xs), alpha=0.7)
            axes.plot([metric.summary.mean] * 2, [row - 0.3, row + 0.3], color="black")
            if len(metric.repeats) >= 2:
                axes.scatter(metric.repeats, [row + 0.15] * len(metric.repeats), marker="x",
                             color="red")  # fmt: skip
        axes.set_yticks(range(len(result.notebooks)), [nb.name for nb in result.notebooks])
        axes.set_ylim(-0.6, len(result.notebooks) - 0.4)
        axes.set_xlabel(name)
        axes.set_title(f"{name} per seed (x: runs of seed #0; bar: mean)", fontsize=10)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        plt.close(figure)
        figures.append((name, base64.b64encode(buffer.getvalue()).decode("ascii")))
    import html

    body = "\n".join(
        f"<h2>{html.escape(name)}</h2>\n<img alt='{html.escape(name)} per seed' "
        f"src='data:image/png;base64,{data}'>"
        for name, data in figures
    )
    page = (
        "<!doctype html>\n<meta charset='utf-8'>\n<title>nbrepro sweep</title>\n"
        f"<h1>nbrepro sweep</h1>\n<pre>{html.escape(result.report())}</pre>\n{body}\n"
    )
    target = folder / "sweep_report.html"
    temporary = folder / f".sweep_report.{os.getpid()}.tmp"
    temporary.write_text(page, encoding="utf-8")
    os.replace(temporary, target)
    return target, None


__all__ = [
    "Comparison",
    "MetricReport",
    "RunOutcome",
    "RunSpec",
    "SweepResult",
    "default_output_dir",
    "plan",
    "run_on_worker",
    "sweep",
    "sweep_seeds",
]


def default_output_dir(notebook: Path) -> Path:
    """``train.sweep`` beside ``train.ipynb``: where a sweep writes without ``-o``."""
    return notebook.with_name(f"{notebook.stem}.sweep")
