"""Is seeded CUDA training bit-identical across processes, and what does determinism cost?

Run ``python benchmarks/gpu_determinism.py [--steps N]`` on a CUDA machine. It trains the
same seeded CNN (convolutions + batch norm on random data) in fresh subprocesses, twice
under ``nbrepro.seed(0, deterministic=True)`` and twice with plain seeding plus
``torch.backends.cudnn.benchmark = True`` (what many training scripts set for speed), and
compares the final weights bit for bit. It prints a table and the deterministic/default
speed ratio, and checks whether this torch runs a deterministic cuBLAS matmul without
``CUBLAS_WORKSPACE_CONFIG``. Without CUDA it says so and exits 0.

The subprocesses start without ``CUBLAS_WORKSPACE_CONFIG``, so what they show is what
nbrepro does on its own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MODES = ("deterministic", "default")
WARMUP_STEPS = 10  # cuDNN autotuning happens here in benchmark mode; a one-off per shape
ALERT = "does not have a deterministic implementation"

CUBLAS_CHECK = """
import torch
torch.use_deterministic_algorithms(True)
a = torch.randn(1024, 1024, device="cuda")
print(float((a @ a).sum()))
"""


@dataclass(frozen=True)
class Run:
    """One training process: its weight hash, speed, and the alerts torch raised."""

    mode: str
    weights_sha256: str
    steps_per_s: float
    final_loss: float
    alerts: list[str]
    findings: list[str]
    weights_path: str


# -- the worker: one seeded training run in this process ---------------------------------------


def build_model(torch: Any) -> Any:
    """A small CNN of convolutions and batch norm.

    The head averages with ``mean`` rather than ``AdaptiveAvgPool2d``, and the loss is
    written out rather than ``cross_entropy``: torch's ``use_deterministic_algorithms``
    documentation lists both as having no deterministic CUDA implementation, and this
    script measures what the determinism switches do, not which ops a model should avoid.
    """
    nn = torch.nn

    def block(inputs: int, outputs: int, stride: int) -> list[Any]:
        return [
            nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(outputs),
            nn.ReLU(inplace=True),
        ]

    layers = [*block(3, 64, 1), *block(64, 128, 2), *block(128, 256, 2), *block(256, 512, 1)]
    return nn.Sequential(*layers)


def train(torch: Any, steps: int, batch: int) -> tuple[Any, float, float]:
    """Train on seeded random data; the model, steady-state steps per second, last loss."""
    device = torch.device("cuda")
    features = build_model(torch).to(device)
    head = torch.nn.Linear(512, 10).to(device)
    parameters = [*features.parameters(), *head.parameters()]
    optimizer = torch.optim.SGD(parameters, lr=0.05, momentum=0.9)
    # A fixed pool of batches, drawn from the seeded generator, cycled through.
    images = torch.randn(8, batch, 3, 64, 64, device=device)
    labels = torch.randint(0, 10, (8, batch), device=device)
    loss = torch.zeros((), device=device)
    start = time.perf_counter()
    for step in range(steps):
        if step == WARMUP_STEPS:
            torch.cuda.synchronize()
            start = time.perf_counter()
        x, y = images[step % 8], labels[step % 8]
        logits = head(features(x).mean(dim=(2, 3)))
        loss = -logits.log_softmax(1).gather(1, y[:, None]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    model = torch.nn.ModuleDict({"features": features, "head": head})
    return model, (steps - WARMUP_STEPS) / elapsed, float(loss)


def weights_digest(torch: Any, state: dict[str, Any]) -> str:
    """SHA-256 over every tensor's bytes, in key order (batch-norm buffers included)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(tensor.flatten().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def worker(mode: str, steps: int, batch: int, output: Path) -> None:
    """One run in ``mode``; writes a :class:`Run` as JSON and the weights beside it."""
    import torch

    import nbrepro

    # Recording starts before seeding: catch_warnings(record=True) replaces showwarning, and
    # nbrepro's recorder of nondeterministic ops (NBR201) must wrap the recording one.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if mode == "deterministic":
            nbrepro.seed(0, deterministic=True)
        else:
            nbrepro.seed(0)
            torch.backends.cudnn.benchmark = True
        model, speed, loss = train(torch, steps, batch)
    state = model.state_dict()
    weights = output.with_suffix(".pt")
    torch.save(state, weights)
    run = Run(
        mode=mode,
        weights_sha256=weights_digest(torch, state),
        steps_per_s=speed,
        final_loss=loss,
        alerts=sorted(
            {str(w.message).split(ALERT)[0].strip() for w in caught if ALERT in str(w.message)}
        ),
        findings=[f"{f.code} {f.message}" for f in nbrepro.status().findings],
        weights_path=str(weights),
    )
    output.write_text(json.dumps(run.__dict__), encoding="utf-8")


# -- the driver: fresh processes, comparison, table ---------------------------------------------


def child_env() -> dict[str, str]:
    """This environment without the cuBLAS variable, with the repo importable."""
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_worker(mode: str, steps: int, batch: int, folder: Path, index: int) -> Run:
    """Train once in a fresh process."""
    output = folder / f"{mode}-{index}.json"
    argv = [
        sys.executable,
        __file__,
        "--worker",
        mode,
        "--steps",
        str(steps),
        "--batch",
        str(batch),
        "--output",
        str(output),
    ]
    done = subprocess.run(argv, env=child_env(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} run {index} failed:\n{done.stderr[-3000:]}")
    return Run(**json.loads(output.read_text(encoding="utf-8")))


def max_difference(first: Run, second: Run) -> float:
    """The largest absolute difference between the two runs' weights."""
    import torch

    a, b = torch.load(first.weights_path), torch.load(second.weights_path)
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def cublas_check() -> str:
    """Whether a CUDA matmul runs under deterministic algorithms with no cuBLAS variable."""
    done = subprocess.run(
        [sys.executable, "-c", CUBLAS_CHECK],
        env=child_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 0:
        return "runs (no error) without CUBLAS_WORKSPACE_CONFIG"
    return "raises: " + (done.stderr.strip().splitlines() or ["?"])[-1]


def table(runs: dict[str, list[Run]]) -> str:
    """The comparison as aligned plain text."""
    labels = {
        "deterministic": "nbrepro.seed(0, deterministic=True)",
        "default": "nbrepro.seed(0) + cudnn.benchmark=True",
    }
    header = (
        "mode",
        "bit-identical across 2 processes",
        "max |w1-w2|",
        "steps/s",
        "run 1 sha256",
        "run 2 sha256",
        "torch alerts",
    )
    rows = []
    for mode in MODES:
        first, second = runs[mode]
        rows.append(
            (
                labels[mode],
                "yes" if first.weights_sha256 == second.weights_sha256 else "NO",
                f"{max_difference(first, second):.3g}",
                f"{(first.steps_per_s + second.steps_per_s) / 2:.1f}",
                first.weights_sha256[:12],
                second.weights_sha256[:12],
                ", ".join(sorted(set(first.alerts) | set(second.alerts))) or "none",
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def describe_device() -> str:
    """GPU, torch, CUDA and cuDNN versions."""
    import torch

    cudnn: Any = torch.backends.cudnn  # its version() is unannotated
    return (
        f"{torch.cuda.get_device_name(0)}; torch {torch.__version__}, CUDA "
        f"{torch.version.cuda}, cuDNN {cudnn.version()}"
    )


def drive(steps: int, batch: int) -> int:
    """Two fresh processes per mode, then the table; 0 when deterministic runs match."""
    try:
        import torch
    except ImportError:
        print("gpu_determinism: torch is not installed; nothing to measure.")
        return 0
    if not torch.cuda.is_available():
        print(
            f"gpu_determinism: CUDA is not available (torch {torch.__version__}); "
            "run this on a machine with an NVIDIA GPU."
        )
        return 0
    print(describe_device())
    print(f"{steps} steps of batch {batch} (3x64x64), speed over steps {WARMUP_STEPS}..{steps}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        # Interleaved, so that clock or thermal drift hits both modes alike.
        runs: dict[str, list[Run]] = {mode: [] for mode in MODES}
        for index in range(2):
            for mode in MODES:
                runs[mode].append(run_worker(mode, steps, batch, Path(folder), index))
        print(table(runs))
        speed = {m: sum(r.steps_per_s for r in runs[m]) / 2 for m in MODES}
        print(f"speed deterministic/default: {speed['deterministic'] / speed['default']:.2f}x")
        findings = sorted({f for r in runs["deterministic"] for f in r.findings})
        print("nbrepro findings (deterministic runs): " + ("; ".join(findings) or "none"))
    print(f"cuBLAS matmul under use_deterministic_algorithms(True): {cublas_check()}")
    print(f"total {time.perf_counter() - started:.0f} s")
    identical = runs["deterministic"][0].weights_sha256 == runs["deterministic"][1].weights_sha256
    return 0 if identical else 1


def main(argv: list[str] | None = None) -> int:
    """Parse options; run as the driver, or as one worker when ``--worker`` is given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="training steps (default 600)")
    parser.add_argument("--batch", type=int, default=128, help="batch size (default 128)")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps <= WARMUP_STEPS or args.batch < 1:
        parser.error(f"--steps must exceed {WARMUP_STEPS} and --batch be >= 1")
    if args.worker is not None:
        worker(args.worker, args.steps, args.batch, args.output)
        return 0
    return drive(args.steps, args.batch)


if __name__ == "__main__":
    sys.exit(main())
