"""In-process measurements for ``bench.py``, each run in a fresh interpreter.

Usage (``bench.py`` does this): ``python benchmarks/_probes.py PROBE OUTPUT.json [CELLS]``.
Each probe times one thing with ``time.perf_counter`` inside the process and writes its
figures, in seconds, to ``OUTPUT.json``. A file rather than stdout carries the result, because
the magics and TensorFlow print to stdout and stderr themselves.

The shell is an ``InteractiveShell`` created before anything is measured, because in a
notebook kernel the shell always exists before the user types ``%load_ext``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

FRAMEWORKS = ("numpy", "torch", "tensorflow", "keras")


def _shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell

    return InteractiveShell.instance()


def _loaded_frameworks() -> list[str]:
    return [name for name in FRAMEWORKS if name in sys.modules]


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _run_cells(shell: Any, cells: int) -> float:
    """Seconds per cell for ``cells`` runs of an empty cell."""
    start = time.perf_counter()
    for _ in range(cells):
        shell.run_cell("pass")
    return (time.perf_counter() - start) / cells


def _per_cell_costs(shell: Any, cells: int, prefix: str, pairs: int = 2) -> dict[str, float]:
    """Seconds per empty cell in plain seeded mode and in per-cell mode, same shell.

    The modes alternate so that drift in machine load hits both alike; the fastest block of
    each mode is kept, the usual estimator for a cost that noise can only add to.
    """
    plain: list[float] = []
    per_cell: list[float] = []
    for mode in ("42", "42 --per-cell"):
        # Warm-up: the first cells compile and cache, and the first per-cell reseed of
        # TensorFlow creates its global generator; neither recurs in a notebook.
        shell.run_line_magic("repro_seed", mode)
        _run_cells(shell, max(cells // 10, 1))
    for _ in range(pairs):
        shell.run_line_magic("repro_seed", "42")
        plain.append(_run_cells(shell, cells))
        shell.run_line_magic("repro_seed", "42 --per-cell")
        per_cell.append(_run_cells(shell, cells))
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
    return {"seed_first_s": first, "seed_repeat_s": repeat, **_per_cell_costs(shell, cells, "tf_")}


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
