"""What ``nbrepro explain``'s recorder costs a small CPU training cell, in time and memory.

Run ``python benchmarks/explain_bench.py [--steps S] [--repeat R] [--width W]``. The cell
trains an MLP (784 -> W -> 10, batch 256, SGD with momentum) for S steps, run as a cell of a
real IPython ``InteractiveShell`` so that the recorder finds the cell's frames as it does in a
kernel. Each repeat runs the cell plainly and then with the recorder on (interleaved, so a slow
spell hits both alike) and reports the medians:

- plain / recorded seconds, and the slowdown (target: at most 3x, DESIGN.md 3.7);
- the operations recorded per step, and the trace's bytes per operation (the flat arrays,
  inputs included; target: a few dozen).

Timings are reported, never asserted. torch runs with one thread, as a loaded machine would
give it anyway, so that the ratio is not a thread-scheduling artefact.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

CELL = """
for _ in range(STEPS):
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(inputs), targets)
    loss.backward()
    optimizer.step()
"""

SETUP = """
import torch
torch.set_num_threads(1)
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Linear(784, WIDTH), torch.nn.ReLU(), torch.nn.Linear(WIDTH, 10)
)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
inputs = torch.randn(256, 784)
targets = torch.randint(0, 10, (256,))
"""


def main() -> None:
    """Measure and print one table."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--steps", type=int, default=30)
    options.add_argument("--repeat", type=int, default=5)
    options.add_argument("--width", type=int, default=256)
    args = options.parse_args()

    from IPython.core.interactiveshell import InteractiveShell

    from nbrepro import _recorder

    shell = InteractiveShell.instance()
    shell.run_cell(SETUP.replace("WIDTH", str(args.width)), store_history=True)
    cell = CELL.replace("STEPS", str(args.steps))

    def timed() -> float:
        started = time.perf_counter()
        result = shell.run_cell(cell, store_history=True)
        result.raise_error()
        return time.perf_counter() - started

    timed()  # warm up: first-call costs in torch and IPython
    plain: list[float] = []
    recorded: list[float] = []
    ops: list[int] = []
    sizes: list[float] = []
    for _ in range(args.repeat):
        plain.append(timed())
        _recorder.install()
        recorded.append(timed())
        recorder = _recorder._RECORDER
        assert recorder is not None
        trace = recorder.trace
        recorder.stop()
        count = len(trace.op)
        arrays = sum(
            getattr(trace, name).itemsize * len(getattr(trace, name)) for name in _recorder._ARRAYS
        )
        ops.append(count)
        sizes.append(arrays / max(count, 1))

    import torch

    plain_s, recorded_s = statistics.median(plain), statistics.median(recorded)
    print(
        f"explain recorder: {platform.python_version()}, torch {torch.__version__}, "
        f"{platform.machine()}, MLP 784-{args.width}-10, batch 256, {args.steps} steps, "
        f"median of {args.repeat}"
    )
    print(f"  plain cell          {plain_s * 1000:8.1f} ms")
    print(
        f"  recorded cell       {recorded_s * 1000:8.1f} ms   "
        f"({recorded_s / plain_s:.2f}x; target <= 3x)"
    )
    print(f"  operations / step   {statistics.median(ops) / args.steps:8.1f}")
    print(f"  trace bytes / op    {statistics.median(sizes):8.1f}")
    print(f"  recorder per op     {(recorded_s - plain_s) / statistics.median(ops) * 1e6:8.1f} µs")


if __name__ == "__main__":
    sys.exit(main())
