"""A framework imported after seeding gets its own generators seeded, and restarts nothing else.

Every check runs in fresh interpreters (``run_fresh``), with the real frameworks, because what
is under test is what an import does to a process that is already seeded.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

import pytest

RunFresh = Callable[..., list[str]]

# Draws from each framework's global generators, as JSON-able lists.
DRAWS = {
    "random": "[random.random() for _ in range(2)]",
    "numpy": "np.random.rand(2).tolist()",
    "torch": "torch.rand(2).tolist()",
    "tensorflow": "tf.random.uniform([2]).numpy().tolist() + "
    "tf.random.get_global_generator().normal([2]).numpy().tolist()",
    "keras": "keras.ops.convert_to_numpy(keras.random.normal([2])).tolist()",
}
IMPORTS = {
    "random": "import random",
    "numpy": "import numpy as np",
    "torch": "import torch",
    "tensorflow": "import tensorflow as tf",
    "keras": "import keras",
}
# Fresh generators seeded with 7, outside nbrepro: what the global streams must go on to give.
REFERENCE = {
    "random": "[r.random() for r in [random.Random(7)] for _ in range(4)]",
    "numpy": "np.random.RandomState(7).rand(4).tolist()",
    "torch": "torch.rand(4, generator=torch.Generator().manual_seed(7)).tolist()",
}


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _needs(*names: str) -> None:
    for name in names:
        if name != "random" and not _installed(name):
            pytest.skip(f"{name} is not installed")


def _program(*lines: str) -> str:
    return "\n".join(["import json, nbrepro", *lines])


@pytest.mark.parametrize(
    ("late", "earlier"),
    [
        ("numpy", ("random",)),
        ("torch", ("random", "numpy")),
        ("tensorflow", ("random", "numpy", "torch")),
        ("keras", ("random", "numpy", "torch")),
    ],
)
def test_a_late_import_lets_every_other_stream_go_on(
    late: str, earlier: tuple[str, ...], run_fresh: RunFresh
) -> None:
    """Draw, import a framework, draw again: each earlier stream continues where it was.

    The draws before and after the import together equal four draws from a generator seeded
    once (Keras used to reseed ``random`` and NumPy on import: the draws after it repeated
    those before it).
    """
    _needs(late, *earlier)
    program = _program(
        *(IMPORTS[name] for name in earlier),
        "nbrepro.seed(7)",
        f"before = [{', '.join(DRAWS[name] for name in earlier)}]",
        IMPORTS[late],
        f"after = [{', '.join(DRAWS[name] for name in earlier)}]",
        f"expected = [{', '.join(REFERENCE[name] for name in earlier)}]",
        "print(json.dumps([b + a for b, a in zip(before, after)] == expected))",
    )
    assert run_fresh(program)[0].strip() == "true"


@pytest.mark.parametrize("framework", ["numpy", "torch", "tensorflow", "keras"])
def test_seeding_before_or_after_the_import_gives_the_same_numbers(
    framework: str, run_fresh: RunFresh
) -> None:
    """Import then seed; seed then import; seed, draw elsewhere, then import: same draws.

    The framework is seeded with the experiment seed whenever it arrives, and draws in other
    frameworks before its import do not shift its numbers.
    """
    _needs(framework)
    imports, draw = IMPORTS[framework], DRAWS[framework]
    show = f"print(json.dumps({draw}))"
    imported_first = _program("import random", imports, "nbrepro.seed(7)", show)
    seeded_first = _program("import random", "nbrepro.seed(7)", imports, show)
    between_draws = _program("import random", "nbrepro.seed(7)", "random.random()", imports, show)
    outputs = run_fresh(imported_first, seeded_first, between_draws)
    assert outputs[0] == outputs[1] == outputs[2]
    assert json.loads(outputs[0])  # some numbers were drawn


def test_late_imports_of_torch_and_tensorflow_in_either_order_agree(run_fresh: RunFresh) -> None:
    """torch then TensorFlow, or TensorFlow then torch, after seeding: the same numbers."""
    _needs("torch", "tensorflow")
    draws = f"print(json.dumps([{DRAWS['torch']}, {DRAWS['tensorflow']}]))"
    torch_first = _program("nbrepro.seed(7)", "import torch", "import tensorflow as tf", draws)
    tf_first = _program("nbrepro.seed(7)", "import tensorflow as tf", "import torch", draws)
    first, second = run_fresh(torch_first, tf_first)
    assert first == second


def test_a_cell_that_imports_torch_gives_the_same_numbers_when_run_again(
    run_fresh: RunFresh,
) -> None:
    """Per-cell mode: torch imported inside a cell is seeded with that cell's seed, as the
    reseed before the cell's second run seeds it: both runs draw the same numbers."""
    _needs("torch")
    program = _program(
        "from IPython.core.interactiveshell import InteractiveShell",
        "shell = InteractiveShell.instance()",
        "shell.run_line_magic('load_ext', 'nbrepro')",
        "shell.run_line_magic('repro_seed', '7 --per-cell')",
        "cell = 'import torch; draws = torch.rand(2).tolist()'",
        "runs = []",
        "for _ in range(2):",
        "    shell.run_cell(cell, cell_id='imports-torch').raise_error()",
        "    runs.append(shell.user_ns['draws'])",
        "print(json.dumps(runs[0] == runs[1]))",
    )
    assert run_fresh(program)[0].strip().splitlines()[-1] == "true"


def test_generators_held_before_a_late_import_keep_their_state(run_fresh: RunFresh) -> None:
    """A NumPy Generator and a random.Random made before ``import torch`` go on unchanged."""
    _needs("numpy", "torch")
    program = _program(
        "import random, numpy as np",
        "nbrepro.seed(7)",
        "g, r = np.random.default_rng(3), random.Random(3)",
        "before = [float(g.random()), r.random()]",
        "import torch",
        "after = [float(g.random()), r.random()]",
        "g, r = np.random.default_rng(3), random.Random(3)",
        "expected = [[float(g.random()), r.random()] for _ in range(2)]",
        "print(json.dumps([before, after] == expected))",
    )
    assert run_fresh(program)[0].strip() == "true"


def test_an_adapter_that_cannot_read_its_state_never_breaks_a_late_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Protecting the streams during an import skips adapters without get_state()."""
    import sys

    import nbrepro
    from nbrepro._backends import load_backends
    from nbrepro._session import session
    from nbrepro.adapters import Backend

    class Stateless(Backend):  # get_state() and set_state() are not implemented
        name = "stateless"
        module = "nbrepro_test_stateless_framework"

        def seed(self, seed: int) -> None:
            pass

    class Late(Backend):
        name = "late"
        module = "nbrepro_test_late_framework"
        seeded_with: int | None = None

        def seed(self, seed: int) -> None:
            Late.seeded_with = seed

    for module in (Stateless.module, Late.module):
        (tmp_path / f"{module}.py").write_text("VALUE = 1\n")
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__(Stateless.module)
    session().backends = [*load_backends(), Stateless(), Late()]
    nbrepro.seed(3)
    __import__(Late.module)
    assert Late.seeded_with == 3
    assert not [f for f in nbrepro.audit() if f.code == "NBR301"]
