"""The user's own seeding wins over nbrepro's, in every mode; per-cell mode says what it costs.

``random`` and NumPy here, through a real IPython shell; torch and TensorFlow/Keras have the
same checks in their own test modules.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

import nbrepro
from nbrepro._findings import USER_SEED_IN_PER_CELL_MODE
from nbrepro._session import session

np = pytest.importorskip("numpy")


def user_seed_findings() -> list[nbrepro.Finding]:
    return [f for f in nbrepro.audit() if f.code == USER_SEED_IN_PER_CELL_MODE]


def test_numpy_seed_in_a_cell_survives_per_cell_reseeding(run_cell: Callable[..., Any]) -> None:
    """np.random.seed(5) in a cell: the next cells continue the user's stream."""
    run_cell("import numpy as np")
    run_cell("%repro_seed 42 --per-cell")
    run_cell("np.random.seed(5)", cell_id="seeds")
    first = run_cell("np.random.rand(2).tolist()", cell_id="draws")
    second = run_cell("np.random.rand(2).tolist()", cell_id="draws")
    assert first + second == np.random.RandomState(5).rand(4).tolist()


@pytest.mark.parametrize(
    ("imports", "call", "draw", "expected"),
    [
        ("from numpy.random import seed", "seed(5)", "np.random.rand(2).tolist()",
         lambda: np.random.RandomState(5).rand(4).tolist()),
        ("from random import seed", "seed(5)", "[random.random() for _ in range(2)]",
         lambda: [r.random() for r in [random.Random(5)] for _ in range(4)]),
    ],
    ids=["numpy", "random"],
)  # fmt: skip
def test_a_seed_function_imported_before_seeding_is_still_the_users_seed(
    run_cell: Callable[..., Any], imports: str, call: str, draw: str, expected: Any
) -> None:
    """``from numpy.random import seed`` before %repro_seed, ``seed(5)`` after: noticed like
    ``np.random.seed(5)``, kept in per-cell mode; %unload_ext puts the user's name back."""
    run_cell(f"import random, numpy as np\n{imports}")
    original = run_cell("seed")
    run_cell("%repro_seed 42 --per-cell")
    run_cell(call, cell_id="seeds")
    first = run_cell(draw, cell_id="draws")
    second = run_cell(draw, cell_id="draws")
    assert first + second == expected()
    assert [f.code for f in user_seed_findings()] == [USER_SEED_IN_PER_CELL_MODE]
    run_cell("%unload_ext nbrepro")
    assert run_cell("seed") is original


def test_per_cell_mode_reports_the_user_seed_once_with_cell_and_fix(
    run_cell: Callable[..., Any],
) -> None:
    """NBR304 names the call, the cell and the generator, with a fix; once, however often."""
    run_cell("import numpy as np")
    run_cell("%repro_seed 42 --per-cell")
    run_cell("np.random.seed(5)", cell_id="seeds")
    label = session().current_cell
    run_cell("np.random.seed(5)", cell_id="seeds")
    run_cell("x = np.random.rand()", cell_id="draws")
    [finding] = [f for f in session().findings if f.code == USER_SEED_IN_PER_CELL_MODE]
    assert finding.severity is nbrepro.Severity.WARNING
    assert "np.random.seed(5)" in finding.message and f"in {label}" in finding.message
    assert "numpy's global generator" in finding.message
    assert "order they run in" in finding.message
    assert "nbrepro.rng(" in finding.fix and "--per-cell" in finding.fix
    assert finding in user_seed_findings()


def test_other_generators_are_still_reseeded_before_each_cell(run_cell: Callable[..., Any]) -> None:
    """Seeding NumPy leaves per-cell reseeding of ``random`` as it was."""
    run_cell("import random, numpy as np")
    run_cell("%repro_seed 42 --per-cell")
    first = run_cell("random.random()", cell_id="draws")
    run_cell("np.random.seed(5)", cell_id="seeds")
    assert run_cell("random.random()", cell_id="draws") == first


def test_random_seed_is_kept_and_reported(run_cell: Callable[..., Any]) -> None:
    """random.seed(9) in a cell: later cells continue it; NBR304 names it."""
    run_cell("import random")
    run_cell("%repro_seed 42 --per-cell")
    run_cell("random.seed(9)", cell_id="seeds")
    first = run_cell("random.random()", cell_id="draws")
    second = run_cell("random.random()", cell_id="draws")
    reference = random.Random(9)
    assert [first, second] == [reference.random(), reference.random()]
    [finding] = user_seed_findings()
    assert "random.seed(9)" in finding.message and "random's global generator" in finding.message


def test_repro_seed_again_reseeds_everything(run_cell: Callable[..., Any]) -> None:
    """After %repro_seed runs again, per-cell reseeding covers NumPy again, and no NBR304."""
    run_cell("import numpy as np")
    run_cell("%repro_seed 42 --per-cell")
    first = run_cell("np.random.rand()", cell_id="draws")
    run_cell("np.random.seed(5)", cell_id="seeds")
    run_cell("%repro_seed 42 --per-cell")
    assert not user_seed_findings()
    assert run_cell("np.random.rand()", cell_id="draws") == first


def test_without_per_cell_the_user_seed_is_kept_silently() -> None:
    """Plain mode: nothing reseeds behind the user's back, and there is nothing to report."""
    nbrepro.seed(42)
    np.random.seed(5)
    assert np.random.rand(2).tolist() == np.random.RandomState(5).rand(2).tolist()
    assert "numpy" in session().user_seeds
    assert not user_seed_findings()


def test_nbrepros_own_seeding_is_not_the_users() -> None:
    """seed(), per-cell-like reseeds and restore_state() never count as the user's seeding."""
    nbrepro.seed(42)
    state = nbrepro.capture_state()
    session().reseed_scope(7)
    nbrepro.restore_state(state)
    nbrepro.seed(43)
    assert session().user_seeds == {}


def test_reseeding_from_os_entropy_is_not_a_user_seed() -> None:
    """np.random.seed() / random.seed() with no value are not a fixed seed to respect."""
    nbrepro.seed(42)
    np.random.seed()
    random.seed()
    assert session().user_seeds == {}


def test_seeding_functions_are_put_back_on_reset() -> None:
    """reset() restores NumPy's and random's own seeding functions."""
    originals = (np.random.seed, random.seed)
    nbrepro.seed(42)
    assert (np.random.seed, random.seed) != originals
    assert np.random.seed.__wrapped__ is originals[0]  # type: ignore[attr-defined]
    nbrepro.reset()
    assert (np.random.seed, random.seed) == originals


def test_generators_made_by_earlier_cells_keep_their_state(run_cell: Callable[..., Any]) -> None:
    """A NumPy Generator, RandomState and random.Random held in a variable are not reset."""
    run_cell("import random, numpy as np")
    run_cell("%repro_seed 42 --per-cell")
    run_cell(
        "g = np.random.default_rng(3); legacy = np.random.RandomState(3); r = random.Random(3)",
        cell_id="make",
    )
    draw = "[float(g.random()), float(legacy.rand()), r.random()]"
    first = run_cell(draw, cell_id="draws")
    second = run_cell(draw, cell_id="draws")
    g, legacy, r = np.random.default_rng(3), np.random.RandomState(3), random.Random(3)
    assert [first, second] == [
        [float(g.random()), float(legacy.rand()), r.random()] for _ in range(2)
    ]


@pytest.mark.kernel
def test_a_front_end_connecting_between_cells_leaves_the_stream_alone(
    kernel: Callable[..., Any],
) -> None:
    """JupyterLab sends kernel_info each time it connects; IPython 9 then picks a random tip
    for the banner from the global stream. With nbrepro loaded, the draws in the next cell are
    the ones they are without any request in between; the banner still has its tip."""
    draws = "import random\nprint([random.random() for _ in range(3)])"
    k = kernel()
    k.run("%load_ext nbrepro")
    k.run("%repro_seed 7")
    quiet = k.run(draws)
    k.run("%repro_seed 7")
    for _ in range(3):
        banner = k.reply(k.client.kernel_info())["content"]["banner"]
    assert k.run(draws) == quiet
    assert "IPython" in banner
    k.run("%unload_ext nbrepro")
    k.run("random.seed(7)")
    before = k.run("print(hash(random.getstate()))")
    for _ in range(3):
        k.reply(k.client.kernel_info())
    tips = "Tip:" in banner  # IPython 7.34 (Colab's) has no tips and never drew
    assert (k.run("print(hash(random.getstate()))") != before) == tips, "unload restores IPython"
    # nbrepro.seed() in a kernel that never ran %load_ext protects the stream as well.
    k.run("import nbrepro\nnbrepro.seed(7)")
    for _ in range(3):
        k.reply(k.client.kernel_info())
    assert k.run(draws) == quiet
