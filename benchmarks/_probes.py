"""In-process measurements for ``bench.py``, each run in a fresh interpreter.

Usage (``bench.py`` does this): ``python benchmarks/_probes.py PROBE OUTPUT.json [CELLS]``.
Each probe times one thing with ``time.perf_counter`` inside the process and writes its
figures, in seconds, to ``OUTPUT.json``. A file rather than stdout carries the result, because
the magics and TensorFlow print to stdout and stderr themselves.

The shell is an ``InteractiveShell`` created before anything is measured, because in a
notebook kernel the shell always exists before the user types ``%load_ext``.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Callable
from typing import Any

FRAMEWORKS = ("numpy", "torch", "tensorflow", "keras")

#: A small Keras model (TensorFlow backend) and one training step on a fixed batch: what a
#: training cell makes TensorFlow run. train_on_batch runs a traced tf.function, which is what
#: a cleared kernel cache makes expensive (the function is instantiated again).
TRAIN_SETUP = """
import numpy as np, keras
model = keras.Sequential([
    keras.Input((8,)),
    keras.layers.Dense(32, activation="relu"),
    keras.layers.Dropout(0.2),
    keras.layers.Dense(1),
])
model.compile(optimizer="sgd", loss="mse")
x = np.linspace(-1, 1, 256, dtype="float32").reshape(32, 8)
y = x.sum(axis=1, keepdims=True)
model.train_on_batch(x, y)
"""
TRAIN_STEP = "loss = model.train_on_batch(x, y)"

# Every cell run gets an id of its own, as each cell of a notebook run top to bottom does
# (the per-cell seed comes from the id); rerun probes pass one id on purpose.
_CELL_IDS = (f"cell-{n}" for n in itertools.count())


def _shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell

    return InteractiveShell.instance()


def _loaded_frameworks() -> list[str]:
    return [name for name in FRAMEWORKS if name in sys.modules]


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _run_cells(shell: Any, cells: int, code: str = "pass", cell_id: str | None = None) -> float:
    """Seconds per cell for ``cells`` runs of ``code``, each a new cell unless ``cell_id``."""
    start = time.perf_counter()
    for _ in range(cells):
        shell.run_cell(code, cell_id=cell_id or next(_CELL_IDS))
    return (time.perf_counter() - start) / cells


def _per_cell_costs(
    shell: Any,
    cells: int,
    prefix: str,
    pairs: int = 2,
    code: str = "pass",
    cell_id: str | None = None,
) -> dict[str, float]:
    """Seconds per ``code`` cell in plain seeded mode and in per-cell mode, same shell.

    The modes alternate so that drift in machine load hits both alike; the fastest block of
    each mode is kept, the usual estimator for a cost that noise can only add to.
    """
    plain: list[float] = []
    per_cell: list[float] = []
    for mode in ("42", "42 --per-cell"):
        # Warm-up: the first cells compile and cache; that does not recur in a notebook.
        shell.run_line_magic("repro_seed", mode)
        _run_cells(shell, max(cells // 10, 1), code, cell_id)
    for _ in range(pairs):
        shell.run_line_magic("repro_seed", "42")
        plain.append(_run_cells(shell, cells, code, cell_id))
        shell.run_line_magic("repro_seed", "42 --per-cell")
        per_cell.append(_run_cells(shell, cells, code, cell_id))
    return {f"{prefix}cell_plain_s": min(plain), f"{prefix}cell_per_cell_s": min(per_cell)}


def load_ext(cells: int) -> dict[str, Any]:
    """``import nbrepro`` plus ``%load_ext nbrepro`` in an existing shell, and what it imported."""
    shell = _shell()
    before = _loaded_frameworks()

    def load() -> None:
        import nbrepro  # noqa: F401 - the import is what is measured

        shell.run_line_magic("load_ext", "nbrepro")

    return {
        "load_ext_s": _timed(load),
        "frameworks_before": before,
        "frameworks_after": _loaded_frameworks(),
    }


def kernel_with_tf(cells: int) -> dict[str, Any]:
    """NumPy, torch and TensorFlow loaded: ``%repro_seed --deterministic``, then per-cell cost."""
    shell = _shell()
    import numpy  # noqa: F401 - loaded as a user's kernel would have it
    import tensorflow  # noqa: F401
    import torch  # noqa: F401

    shell.run_line_magic("load_ext", "nbrepro")
    line = "42 --deterministic"
    first = _timed(lambda: shell.run_line_magic("repro_seed", line))
    repeat = _timed(lambda: shell.run_line_magic("repro_seed", line))
    figures = {"seed_first_s": first, "seed_repeat_s": repeat}
    figures.update(_per_cell_costs(shell, cells, "tf_"))
    # A training cell: what reseeding before it makes TensorFlow pay when the step runs.
    shell.run_cell(TRAIN_SETUP)
    steps = max(cells // 4, 1)
    figures.update(_per_cell_costs(shell, steps, "tf_train_", code=TRAIN_STEP))
    # The same training cell run again and again: each rerun restarts TensorFlow's kernels.
    rerun = _per_cell_costs(shell, steps, "tf_rerun_", code=TRAIN_STEP, cell_id="rerun")
    figures.update(rerun)
    return figures


def kernel_without_tf(cells: int) -> dict[str, Any]:
    """NumPy and torch only: per-cell cost, then torch's own first-call determinism cost."""
    shell = _shell()
    import numpy  # noqa: F401 - loaded as a user's kernel would have it
    import torch

    shell.run_line_magic("load_ext", "nbrepro")
    costs = _per_cell_costs(shell, cells, "no_tf_")
    # Measured last so that the modules it imports cannot colour the per-cell figures. torch
    # >= 2.11 imports torch._inductor.config (and with it torch._dynamo) inside this call.
    costs["torch_deterministic_first_s"] = _timed(lambda: torch.use_deterministic_algorithms(True))
    return costs


PROBES: dict[str, Callable[[int], dict[str, Any]]] = {
    "load_ext": load_ext,
    "kernel_with_tf": kernel_with_tf,
    "kernel_without_tf": kernel_without_tf,
}


def main(argv: list[str]) -> None:
    """Run the probe named in ``argv`` and write its figures to the given JSON file."""
    name, output = argv[0], argv[1]
    cells = int(argv[2]) if len(argv) > 2 else 200
    result = PROBES[name](cells)
    with open(output, "w", encoding="utf-8") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main(sys.argv[1:])
