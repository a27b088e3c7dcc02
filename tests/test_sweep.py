"""nbrepro.metric and nbrepro sweep: statistics, real kernels, a real Dask cluster on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbrepro_cli import nbrepro_command

import nbrepro
from nbrepro._metric import METRIC_MIME, notebook_metrics
from nbrepro._stats import summarize, t_quantile
from nbrepro.commands.sweep import sweep_seeds

NOTEBOOKS = Path(__file__).parent / "notebooks" / "sweep"


def sweep_json(*args: str) -> tuple[int, dict[str, Any], str]:
    """Run ``nbrepro sweep ARGS --json``; the exit status, the JSON and stderr."""
    done = nbrepro_command("sweep", *args, "--json")
    return done.returncode, json.loads(done.stdout), done.stderr


# -- the statistics -------------------------------------------------------------------------


def test_t_quantiles_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for degrees in (1, 2, 3, 4, 9, 29, 200, 10_000):
        for probability in (0.975, 0.9, 0.995, 0.025):
            assert t_quantile(probability, degrees) == pytest.approx(
                stats.t.ppf(probability, degrees), rel=1e-9
            )


def test_summary_matches_a_direct_computation() -> None:
    np = pytest.importorskip("numpy")
    stats = pytest.importorskip("scipy.stats")
    values = [0.91, 0.93, 0.92, 0.95, 0.90, 0.88]
    summary = summarize(values)
    half = stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values))
    assert summary.n == 6
    assert summary.mean == pytest.approx(np.mean(values))
    assert summary.std == pytest.approx(np.std(values, ddof=1))
    assert (summary.minimum, summary.maximum) == (0.88, 0.95)
    assert summary.interval == pytest.approx((np.mean(values) - half, np.mean(values) + half))
    one = summarize([0.5])
    assert one.std == 0 and math.isnan(one.half_width)


# -- nbrepro.metric ----------------------------------------------------------------------------


def test_metric_shows_a_line_and_carries_the_exact_value(shell: Any) -> None:
    from IPython.utils.capture import capture_output

    np = pytest.importorskip("numpy")
    with capture_output() as captured:
        returned = nbrepro.metric("val_accuracy", np.float32(0.25))
    (output,) = captured.outputs
    assert output.data["text/plain"] == "val_accuracy = 0.25"
    assert output.data[METRIC_MIME] == {"name": "val_accuracy", "value": 0.25}
    assert returned == 0.25


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("acc", float("nan"), "nan is not a finite number"),
        ("acc", float("inf"), "inf is not a finite number"),
        ("acc", "0.9", "'0.9' is not a real number"),
        ("acc", [0.9], "[0.9] is not a real number"),
        ("acc", True, "True is not a real number"),
        ("acc", None, "None is not a real number"),
        ("", 0.9, "invalid metric name ''"),
        ("two\nlines", 0.9, "one line"),
        (3, 0.9, "invalid metric name 3"),
    ],
)
def test_metric_refuses_what_is_not_a_named_finite_number(
    name: Any, value: Any, named: str
) -> None:
    with pytest.raises(nbrepro.InvalidOptionError, match=named.replace("[", r"\[")):
        nbrepro.metric(name, value)


def test_metric_refuses_an_array_of_several_values() -> None:
    np = pytest.importorskip("numpy")
    with pytest.raises(nbrepro.InvalidOptionError, match="not a real number"):
        nbrepro.metric("acc", np.array([0.1, 0.2]))
    assert nbrepro.metric("acc", np.array([0.5])) == 0.5


def test_metrics_are_read_back_from_outputs_and_forged_ones_ignored() -> None:
    cells = [
        {"outputs": [{"data": {METRIC_MIME: {"name": "loss", "value": 1.5}}}]},
        {"outputs": [{"data": {METRIC_MIME: {"name": "loss", "value": 0.5}}}]},
        {"outputs": [{"data": {METRIC_MIME: {"name": "loss", "value": "NaN"}}}]},
        {"outputs": [{"data": {METRIC_MIME: ["not", "a", "metric"]}}]},
        {"outputs": [{"text": "loss = 9"}]},
    ]
    assert notebook_metrics(cells) == {"loss": [1.5, 0.5]}


# -- nbrepro sweep on local kernels --------------------------------------------------------


@pytest.mark.kernel
def test_sweep_statistics_match_the_per_seed_values_and_repeat(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    np = pytest.importorskip("numpy")
    stats = pytest.importorskip("scipy.stats")
    notebook = NOTEBOOKS / "accuracy_depends_on_seed.ipynb"
    out = tmp_path / "sweep"
    status, report, stderr = sweep_json(
        str(notebook), "--seeds", "3", "--repeat", "2", "--jobs", "2", "-o", str(out)
    )
    assert status == 0, stderr
    seeds = sweep_seeds(0, 3)
    assert report["seeds"] == seeds == [nbrepro.derive_seed("sweep", i, seed=0) for i in range(3)]
    firsts = {r["seed_index"]: r for r in report["runs"] if r["repeat"] == 1}
    values = [firsts[i]["metrics"]["val_accuracy"] for i in range(3)]
    assert len(set(values)) > 1, "the accuracy should depend on the seed"
    summary = report["notebooks"][str(notebook)]["val_accuracy"]
    half = stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / np.sqrt(3)
    assert summary["mean"] == pytest.approx(np.mean(values))
    assert summary["std"] == pytest.approx(np.std(values, ddof=1))
    assert summary["ci95"] == pytest.approx([np.mean(values) - half, np.mean(values) + half])
    assert (summary["min"], summary["max"]) == (min(values), max(values))
    # The same seed twice in fresh kernels: no run-to-run noise.
    assert summary["repeats"] == [values[0], values[0]]
    assert summary["rerun_noise"] == 0
    # Each executed notebook carries the seed it ran under in its record.
    for run in report["runs"]:
        written = nbformat.read(run["output"], as_version=4)
        record = written.metadata["nbrepro"]
        assert (record["seed"], record["seed_source"]) == (run["seed"], "sweep")
    if importlib.util.find_spec("matplotlib") is not None:
        assert "<img" in (out / "sweep_report.html").read_text()
    else:  # no plot without matplotlib (Colab's stack here): the rest is the same
        assert not (out / "sweep_report.html").exists()

    # The same sweep again gives the same seeds and values.
    status, again, stderr = sweep_json(str(notebook), "--seeds", "3", "--repeat", "1")
    assert status == 0, stderr
    assert [r["metrics"]["val_accuracy"] for r in again["runs"]] == values


@pytest.mark.kernel
def test_two_notebooks_under_the_same_seeds_give_the_paired_difference(tmp_path: Path) -> None:
    first, second = NOTEBOOKS / "score_baseline.ipynb", NOTEBOOKS / "score_plus_a_tenth.ipynb"
    done = nbrepro_command(
        "sweep", str(first), str(second), "--seeds", "2", "--repeat", "1", "--jobs", "2",
        "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        "score: score_plus_a_tenth.ipynb is higher than score_baseline.ipynb by 0.1 ± "
        in done.stdout
    )
    assert "(95% CI of the paired difference, 2 seeds): distinguishable" in done.stdout
    assert "seed alone moves it by up to" in done.stdout


@pytest.mark.kernel
def test_failing_runs_are_named_by_seed_and_the_rest_still_reported(tmp_path: Path) -> None:
    seeds = sweep_seeds(0, 4)
    odd = [i for i, s in enumerate(seeds) if s % 2]
    even = [i for i, s in enumerate(seeds) if s % 2 == 0]
    assert odd and even, "the test needs seeds of both kinds"
    status, report, _ = sweep_json(
        str(NOTEBOOKS / "fails_under_odd_seeds.ipynb"), "--seeds", "4", "--repeat", "1",
        "--jobs", "2", "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert status == 1
    failed = sorted(r["seed_index"] for r in report["runs"] if r["error"])
    assert failed == odd
    assert all(f"odd seed {seeds[i]}" in r["error"] for r in report["runs"] if r["error"]
               for i in [r["seed_index"]])  # fmt: skip
    summary = report["notebooks"][str(NOTEBOOKS / "fails_under_odd_seeds.ipynb")]
    assert summary["seed_mod_7"]["n"] == len(even)
    assert sorted(summary["seed_mod_7"]["values"]) == [str(i) for i in even]
    missing = [i for i in even if seeds[i] % 3]
    assert summary.get("only_some", {"missing": missing})["missing"] == missing
    text = nbrepro_command(
        "sweep", str(NOTEBOOKS / "fails_under_odd_seeds.ipynb"), "--seeds", "4", "--repeat",
        "1", "--jobs", "2", "-q", "-o", str(tmp_path / "out2"),
    )  # fmt: skip
    assert f"{len(odd)} run(s) failed:" in text.stdout
    assert f"seed #{odd[0]} ({seeds[odd[0]]})" in text.stdout


@pytest.mark.kernel
def test_a_notebook_without_metrics_still_runs_and_says_so(tmp_path: Path) -> None:
    done = nbrepro_command(
        "sweep", str(NOTEBOOKS / "no_metric.ipynb"), "--seeds", "2", "--repeat", "1", "-q",
        "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "no metric in its outputs" in done.stdout
    assert "nbrepro.metric('name', value)" in done.stdout
    assert len(list((tmp_path / "out").glob("*.ipynb"))) == 2


def test_bad_arguments_and_notebooks_are_refused_before_anything_runs(tmp_path: Path) -> None:
    notebook = str(NOTEBOOKS / "no_metric.ipynb")
    corrupt = tmp_path / "corrupt.ipynb"
    corrupt.write_text('{"cells": [' * 100_000)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    cases = [
        ((notebook, "--seeds", "1"), "seeds must be at least 2, not 1"),
        ((notebook, "--seeds", "abc"), "'abc' is not an integer"),
        ((notebook, "--seeds", "3", "--repeat", "0"), "repeat must be at least 1"),
        ((notebook, "--seeds", "3", "--seed", "-1"), "-1"),
        ((notebook, notebook, "--seeds", "3"), "the same file"),
        ((notebook, notebook, notebook, "--seeds", "3"), "one notebook, or two"),
        ((str(tmp_path / "missing.ipynb"), "--seeds", "3"), "missing.ipynb"),
        ((str(corrupt), "--seeds", "3"), "corrupt.ipynb"),
        ((notebook, "--seeds", "3", "-o", str(blocked)), "a-file"),
    ]
    for args, named in cases:
        done = nbrepro_command("sweep", *args, timeout=60)
        assert done.returncode == 2, (args, done.stderr)
        assert named in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr, (args, done.stderr)
    assert not list(tmp_path.glob("*.sweep"))


# -- on a real Dask cluster on 127.0.0.1 -----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A Dask scheduler and named workers, each its own process, on 127.0.0.1."""

    def __init__(self, folder: Path) -> None:
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        self.folder = folder
        #: metric_after_a_pause.ipynb leaves a file here when a run starts its pause
        self.markers = folder / "markers"
        self.markers.mkdir()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._start("scheduler", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                    "--port", self.address.rsplit(":", 1)[1], "--no-dashboard")  # fmt: skip

    def _start(self, name: str, module: str, *args: str) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdout=log,
            stderr=log,
            cwd=self.folder,
            env={**os.environ, "SWEEP_TEST_MARKERS": str(self.markers)},
        )

    def add_worker(self, name: str) -> None:
        self._start(name, "distributed.cli.dask_worker", self.address, "--name", name,
                    "--nthreads", "1", "--no-nanny", "--no-dashboard")  # fmt: skip

    def wait_for(self, workers: int) -> dict[str, str]:
        """Until ``workers`` workers are connected; their names -> addresses."""
        from distributed import Client

        deadline = time.monotonic() + 120
        with Client(self.address, timeout=60) as client:
            while time.monotonic() < deadline:
                info = client.scheduler_info()["workers"]
                if len(info) >= workers:
                    return {w["name"]: address for address, w in info.items()}
                time.sleep(0.5)
        raise TimeoutError(f"{workers} Dask workers did not connect")

    def kill(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait()

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[Callable[[int], tuple[Cluster, dict[str, str]]]]:
    """Start a scheduler and N workers; stop them after the test."""
    pytest.importorskip("distributed")
    clusters: list[Cluster] = []

    def start(workers: int) -> tuple[Cluster, dict[str, str]]:
        cluster = Cluster(tmp_path)
        clusters.append(cluster)
        for number in range(1, workers + 1):
            cluster.add_worker(f"worker-{number}")
        return cluster, cluster.wait_for(workers)

    yield start
    for cluster in clusters:
        cluster.stop()


@pytest.mark.kernel
def test_a_sweep_on_a_dask_cluster_names_the_workers_and_matches_local_runs(
    dask_cluster: Callable[[int], tuple[Cluster, dict[str, str]]], tmp_path: Path
) -> None:
    cluster, workers = dask_cluster(2)
    notebook = str(NOTEBOOKS / "score_baseline.ipynb")
    status, remote, stderr = sweep_json(
        notebook, "--seeds", "4", "--repeat", "1", "--scheduler", cluster.address,
        "-o", str(tmp_path / "remote"),
    )  # fmt: skip
    assert status == 0, stderr
    used = {run["worker"] for run in remote["runs"]}
    assert used == set(workers.values()), "both workers should have run a part of the sweep"
    assert remote["workers"] == sorted(workers.values())
    status, local, stderr = sweep_json(
        notebook, "--seeds", "4", "--repeat", "1", "--jobs", "2", "-o", str(tmp_path / "local")
    )
    assert status == 0, stderr
    assert [r["metrics"] for r in remote["runs"]] == [r["metrics"] for r in local["runs"]]
    # A notebook whose folder the worker does not have: a run error saying so, not a hang.
    from distributed import Client

    from nbrepro.commands.sweep import run_on_worker

    text = (NOTEBOOKS / "score_baseline.ipynb").read_text()
    with Client(cluster.address, set_as_default=False) as client:
        missing = tmp_path / "not-on-the-workers" / "score_baseline.ipynb"
        result = client.submit(run_on_worker, text, str(missing), 1, False, 60, None).result(60)
    assert result["error"].startswith(f"the notebook's folder {missing.parent} does not exist")
    assert result["worker"] in workers.values()


@pytest.mark.kernel
def test_a_sweep_survives_a_worker_killed_mid_run(
    dask_cluster: Callable[[int], tuple[Cluster, dict[str, str]]], tmp_path: Path
) -> None:
    cluster, workers = dask_cluster(2)
    sweep = subprocess.Popen(
        [sys.executable, "-m", "nbrepro", "sweep", str(NOTEBOOKS / "metric_after_a_pause.ipynb"),
         "--seeds", "3", "--repeat", "1", "--scheduler", cluster.address, "--json",
         "-o", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # Each run pauses 3 s after its marker: with two markers, each worker is mid-run.
    deadline = time.monotonic() + 180
    while len(list(cluster.markers.iterdir())) < 2:
        assert time.monotonic() < deadline and sweep.poll() is None, "the runs did not start"
        time.sleep(0.1)
    cluster.kill("worker-1")
    stdout, stderr = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, stderr
    report = json.loads(stdout)
    assert all(run["error"] is None and "score" in run["metrics"] for run in report["runs"])
    assert len(report["runs"]) == 3
    assert workers["worker-2"] in report["workers"]
    assert f"worker {workers['worker-1']} was lost during the sweep" in " ".join(report["notes"])
    assert len(list((tmp_path / "out").glob("*.ipynb"))) == 3


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    done = nbrepro_command(
        "sweep", str(NOTEBOOKS / "no_metric.ipynb"), "--seeds", "2", "--scheduler", address,
        "-o", str(tmp_path / "out"), timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"cannot reach the Dask scheduler at '{address}'" in done.stderr
    assert "Traceback" not in done.stderr
    assert time.monotonic() - started < 90


@pytest.mark.kernel
def test_nbrepro_run_lists_the_metrics_the_notebook_reported(tmp_path: Path) -> None:
    done = nbrepro_command(
        "run", str(NOTEBOOKS / "score_baseline.ipynb"), "-q", "-o", str(tmp_path / "out.ipynb")
    )
    assert done.returncode == 0, done.stderr
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    (value,) = notebook_metrics(executed.cells)["score"]
    assert f"nbrepro run: metric score = {value:.6g}" in done.stdout.splitlines()


def test_a_sweep_seed_replaces_the_notebooks_own_and_says_so(
    shell: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NBREPRO_SWEEP_SEED", "1234")
    shell.run_line_magic("repro_seed", "42")
    assert "nbrepro: seed 1234 (from nbrepro sweep)" in capsys.readouterr().out
    assert (nbrepro.status().seed, nbrepro.status().seed_source) == (1234, "sweep")
    with pytest.raises(nbrepro.InvalidSeedError, match="-1"):
        nbrepro.seed(-1)  # a bad seed is still refused
    monkeypatch.setenv("NBREPRO_SWEEP_SEED", "abc")
    with pytest.raises(nbrepro.InvalidSeedError, match="NBREPRO_SWEEP_SEED"):
        nbrepro.seed(42)
    assert nbrepro.status().seed == 1234  # the state in force stays


@pytest.mark.kernel
def test_ctrl_c_stops_the_sweep_and_keeps_the_runs_that_finished(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "nbrepro", "sweep", str(NOTEBOOKS / "metric_after_a_pause.ipynb"),
         "--seeds", "4", "--repeat", "1", "-q", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while not list(out.glob("*.ipynb")):  # the first run has finished and been written
        assert time.monotonic() < deadline and sweep.poll() is None, "no run finished"
        time.sleep(0.1)
    sweep.send_signal(signal.SIGINT)
    _, stderr = sweep.communicate(timeout=120)
    assert sweep.returncode == 130
    # The kernels' own stderr reaches the terminal too (ipykernel 6 warns about frozen modules
    # on Python 3.11); nbrepro's part is one line, last, and no traceback.
    assert "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1] == (
        "nbrepro: interrupted; every kernel it started is stopped"
    )
    finished = list(out.glob("*.ipynb"))
    assert 1 <= len(finished) < 4
    for path in finished:
        assert notebook_metrics(nbformat.read(path, as_version=4).cells)["score"]
