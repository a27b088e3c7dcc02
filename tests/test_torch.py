"""nbrepro on real PyTorch (CPU): seeding, determinism switches, findings, threads, state."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

import nbrepro

if TYPE_CHECKING:
    import torch
else:  # torch is optional: without it this module is skipped, not an error
    torch = pytest.importorskip("torch")

pytestmark = pytest.mark.torch

# torch has no deterministic CPU kernel for max_unpool; under deterministic algorithms it
# alerts as "max_unpooling2d_forward_out does not have a deterministic implementation".
UNPOOL_OP = "max_unpooling2d_forward_out"


def _unpool() -> None:
    torch.nn.functional.max_unpool1d(torch.rand(1, 1, 4), torch.tensor([[[0, 2, 4, 6]]]), (2,))


def _draws() -> list[torch.Tensor]:
    """Plain draws, then the weights of a small MLP with dropout after a few SGD steps."""
    values, permutation = torch.rand(5), torch.randperm(10)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    inputs, targets = torch.randn(16, 4), torch.randn(16, 1)
    for _ in range(3):
        optimizer.zero_grad()
        torch.autograd.backward(torch.nn.functional.mse_loss(model(inputs), targets))
        optimizer.step()
    return [values, permutation, *(p.detach().clone() for p in model.parameters())]


def _identical(first: list[torch.Tensor], second: list[torch.Tensor]) -> bool:
    return all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def _settings() -> tuple[bool, bool, bool, bool]:
    return (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )


@pytest.fixture
def user_settings() -> Iterator[tuple[bool, bool, bool, bool]]:
    """Settings a user chose before nbrepro (not torch's defaults); put back afterwards."""
    before = _settings()
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = True, False
    yield _settings()
    nbrepro.reset()  # first: a reset puts back the settings of the test, which come next
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[2:]


def test_reseeding_repeats_draws_and_training() -> None:
    """Seed, draw, reseed, draw: rand, randperm and MLP training with dropout are bit-identical."""
    nbrepro.seed(42)
    first = _draws()
    nbrepro.seed(42)
    assert _identical(first, _draws())


def test_another_seed_gives_other_draws() -> None:
    """A different seed changes every draw and the trained weights."""
    nbrepro.seed(42)
    first = _draws()
    nbrepro.seed(43)
    assert not any(torch.equal(a, b) for a, b in zip(first, _draws(), strict=True))


def test_deterministic_switches_torch_to_deterministic_warn_only(
    user_settings: tuple[bool, bool, bool, bool],
) -> None:
    """deterministic=True: warn-only deterministic algorithms, cuDNN deterministic, no benchmark."""
    nbrepro.seed(0, deterministic=True)
    assert _settings() == (True, True, False, True)


def test_strict_switches_torch_to_deterministic_errors(
    user_settings: tuple[bool, bool, bool, bool],
) -> None:
    """strict=True: deterministic algorithms without warn-only."""
    nbrepro.seed(0, strict=True)
    assert _settings() == (True, False, False, True)


@pytest.mark.parametrize(
    "undo",
    [nbrepro.reset, lambda: nbrepro.seed(0)],
    ids=["reset", "seed-without-deterministic"],
)
def test_undoing_deterministic_restores_the_user_settings(
    user_settings: tuple[bool, bool, bool, bool], undo: Callable[[], object]
) -> None:
    """reset() or seeding again without deterministic puts back the settings torch had before."""
    nbrepro.seed(0, deterministic=True)
    undo()
    assert _settings() == user_settings


def test_nondeterministic_op_warns_and_is_recorded(recwarn: pytest.WarningsRecorder) -> None:
    """Under deterministic=True an op with no deterministic kernel runs, warns, becomes NBR201."""
    nbrepro.seed(0, deterministic=True)
    _unpool()
    assert any(UNPOOL_OP in str(w.message) for w in recwarn)
    codes = [(f.code, f.severity) for f in nbrepro.status().findings if UNPOOL_OP in f.message]
    assert codes == [("NBR201", nbrepro.Severity.ERROR)]


def test_nondeterministic_op_raises_under_strict() -> None:
    """Under strict=True the same op raises RuntimeError naming it, and nothing is recorded."""
    nbrepro.seed(0, strict=True)
    with pytest.raises(RuntimeError, match=UNPOOL_OP):
        _unpool()
    assert not [f for f in nbrepro.status().findings if f.code == "NBR201"]


def test_reset_removes_the_alert_recorder() -> None:
    """reset() puts back the warnings functions and the warning filters nbrepro changed."""
    names = ("_showwarnmsg", "showwarning", "filterwarnings", "simplefilter", "resetwarnings")
    before = {name: getattr(warnings, name) for name in names}
    filters = list(warnings.filters)
    nbrepro.seed(0, deterministic=True)
    assert warnings._showwarnmsg is not before["_showwarnmsg"]  # type: ignore[attr-defined]
    nbrepro.reset()
    assert {name: getattr(warnings, name) for name in names} == before
    assert warnings.filters == filters


@pytest.mark.parametrize(
    "hide",
    [
        "warnings.filterwarnings('ignore')\nunpool()",
        "warnings.resetwarnings()\nwarnings.simplefilter('ignore')\nunpool()",
        "logging.captureWarnings(True)\nunpool()",
        "with warnings.catch_warnings():\n    warnings.simplefilter('ignore')\n    unpool()",
    ],
    ids=["filterwarnings-ignore", "resetwarnings", "logging", "catch_warnings"],
)
def test_an_op_is_recorded_whatever_the_notebook_does_with_warnings(
    hide: str, recwarn: pytest.WarningsRecorder
) -> None:
    """Filters set after seeding, a library's catch_warnings, logging's capture: NBR201 is
    recorded all the same, and the notebook's own "ignore" still decides what is shown."""
    import logging

    nbrepro.seed(0, deterministic=True)
    try:
        exec(hide, {"warnings": warnings, "logging": logging, "unpool": _unpool})
    finally:
        logging.captureWarnings(False)
    ops = [f.message.split()[2] for f in nbrepro.status().findings if f.code == "NBR201"]
    assert ops == [UNPOOL_OP]
    if "ignore" in hide:
        assert not [w for w in recwarn if "deterministic implementation" in str(w.message)]


def test_a_users_error_filter_still_raises_at_the_op() -> None:
    """warnings.simplefilter('error') after seeding: the alert raises, as without nbrepro,
    and is recorded."""
    nbrepro.seed(0, deterministic=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match=UNPOOL_OP):
            _unpool()
    assert [f.code for f in nbrepro.status().findings if UNPOOL_OP in f.message] == ["NBR201"]


def test_threads_sets_torch_intra_op_threads_until_reset() -> None:
    """threads=2 makes torch use 2 intra-op threads; reset() puts back the count it had."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        nbrepro.seed(0, threads=2)
        assert torch.get_num_threads() == 2
        nbrepro.reset()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("through_pickle", [False, True], ids=["in-memory", "pickled"])
def test_restore_state_continues_the_torch_sequence(through_pickle: bool) -> None:
    """capture_state/restore_state, also through pickle, continue the exact torch sequence."""
    nbrepro.seed(7)
    torch.rand(3)
    state = nbrepro.capture_state()
    expected = _draws()
    if through_pickle:
        state = pickle.loads(pickle.dumps(state))
    nbrepro.restore_state(state)
    assert _identical(expected, _draws())


_AFTER_IMPORT = (
    "import torch; print(torch.rand(4).tolist(), torch.are_deterministic_algorithms_enabled())"
)


def test_torch_imported_after_seeding_is_seeded_on_import(
    run_fresh: Callable[..., list[str]],
) -> None:
    """torch imported after nbrepro.seed() is seeded and made deterministic the moment it loads."""
    seeded = f"import nbrepro; nbrepro.seed(7, deterministic=True); {_AFTER_IMPORT}"
    manual = f"import torch; torch.manual_seed(7); {_AFTER_IMPORT}"
    seeded_run, manual_run = run_fresh(seeded, manual)
    values, deterministic = seeded_run.rsplit(" ", 1)
    assert deterministic.strip() == "True"
    assert values == manual_run.rsplit(" ", 1)[0]


def test_seeding_matches_torch_manual_seed() -> None:
    """nbrepro's seed leaves torch's generator state exactly as torch.manual_seed would."""
    nbrepro.seed(11)
    ours = torch.get_rng_state()
    torch.manual_seed(11)
    assert torch.equal(ours, torch.get_rng_state())


def test_user_manual_seed_survives_per_cell_reseeding(run_cell: Callable[..., Any]) -> None:
    """torch.manual_seed(5) in a cell: later cells continue it; NBR304 names it once."""
    run = run_cell
    run("import torch")
    run("%repro_seed 42 --per-cell")
    run("torch.manual_seed(5)", "seeds")
    first = run("torch.rand(2).tolist()", "draws")
    second = run("torch.rand(2).tolist()", "draws")
    assert first + second == torch.rand(4, generator=torch.Generator().manual_seed(5)).tolist()
    [finding] = [f for f in nbrepro.audit() if f.code == "NBR304"]
    assert (
        "torch.manual_seed(5)" in finding.message and "torch's global generator" in finding.message
    )


def test_torch_generators_made_by_earlier_cells_keep_their_state(
    run_cell: Callable[..., Any],
) -> None:
    """A torch.Generator held in a variable is not reset by per-cell reseeding."""
    run = run_cell
    run("import torch")
    run("%repro_seed 42 --per-cell")
    run("g = torch.Generator().manual_seed(3)", "make")
    first = run("torch.rand(2, generator=g).tolist()", "draws")
    second = run("torch.rand(2, generator=g).tolist()", "draws")
    assert first + second == torch.rand(4, generator=torch.Generator().manual_seed(3)).tolist()
    assert not [f for f in nbrepro.audit() if f.code == "NBR304"]


@pytest.mark.kernel
def test_a_nondeterministic_op_is_said_in_one_line_under_its_cell(
    kernel: Callable[..., Any],
) -> None:
    """In a kernel, the op's cell shows nbrepro's one line with the fix, not torch's paragraph
    about warn_only beside it; with --quiet (no line), torch's own warning is what shows."""
    unpool = (
        "torch.nn.functional.max_unpool1d("
        "torch.rand(1, 1, 4), torch.tensor([[[0, 2, 4, 6]]]), (2,));"
    )
    k = kernel(PYTHONWARNINGS="default")  # not the fixture's "ignore": torch's warning shows
    k.run("import torch\n%load_ext nbrepro")
    k.run("%repro_seed 0 --deterministic")
    said = k.run(unpool)
    assert said.startswith(f"nbrepro NBR201 [error] torch op {UNPOOL_OP} "), said
    assert said.count("\n") == 1 and "warn_only" not in said, said
    k.run("%repro_seed 0 --deterministic --quiet")
    quiet = k.run(unpool)
    assert "NBR201" not in quiet and f"{UNPOOL_OP} does not have a deterministic" in quiet
