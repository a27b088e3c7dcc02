"""Every generator a notebook can make without a seed draws from the experiment's stream.

Each kind repeats in two fresh interpreters under one seed and differs under another; NumPy's
classes keep working as NumPy's (isinstance, pickling, type checks) and come back on reset.
"""

from __future__ import annotations

import ast
import copy
import pickle
import random
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import nbrepro
from nbrepro import _audit
from nbrepro._session import session

RunFresh = Callable[..., list[str]]

# Each snippet makes one kind of generator without a seed and prints what it draws, then the
# kinds nbrepro recorded for the user's code.
NUMPY_KINDS = {
    "PCG64": "np.random.Generator(np.random.PCG64()).random(3)",
    "PCG64DXSM": "np.random.Generator(np.random.PCG64DXSM()).random(3)",
    "Philox": "np.random.Generator(np.random.Philox()).random(3)",
    "SFC64": "np.random.Generator(np.random.SFC64()).random(3)",
    "MT19937": "np.random.Generator(np.random.MT19937()).random(3)",
    "RandomState": "np.random.RandomState().random_sample(3)",
    "SeedSequence": "np.random.default_rng(np.random.SeedSequence()).random(3)",
    "default_rng": "np.random.default_rng().random(3)",
    # Names bound before the seed was set keep NumPy's class: covered all the same.
    "PCG64 imported before seeding": "np.random.Generator(EarlyPCG64()).random(3)",
    "np.random.seed()": "(np.random.seed(), np.random.random(3))[1]",
}


def _snippet(seed: int, draw: str, prelude: str = "import numpy as np") -> str:
    return f"""
        {prelude}
        from numpy.random import PCG64 as EarlyPCG64
        import nbrepro
        from nbrepro._session import session
        nbrepro.seed({seed})
        value = {draw}
        print(value.tolist() if hasattr(value, "tolist") else value)
        print(sorted({{d.kind for d in session().unseeded if d.library is None}}))
    """


def _repeats_and_differs(run_fresh: RunFresh, draw: str, **kwargs: str) -> list[str]:
    """Run ``draw`` under seed 42 twice and 43 once; return the first run's lines."""
    first, again, other = run_fresh(
        _snippet(42, draw, **kwargs), _snippet(42, draw, **kwargs), _snippet(43, draw, **kwargs)
    )
    assert first == again
    assert first.splitlines()[0] != other.splitlines()[0]
    return first.splitlines()


@pytest.mark.parametrize("draw", list(NUMPY_KINDS.values()), ids=list(NUMPY_KINDS))
def test_numpy_generator_made_without_a_seed_repeats_in_fresh_processes(
    run_fresh: RunFresh, draw: str
) -> None:
    """Each NumPy kind repeats under one seed in two fresh processes and differs under another."""
    pytest.importorskip("numpy")
    _, kinds = _repeats_and_differs(run_fresh, draw)
    assert kinds != "[]", "the generator was not recorded"


def test_bit_generators_record_their_own_kind() -> None:
    """A bit generator made by its name is recorded under it, once."""
    np = pytest.importorskip("numpy")
    nbrepro.seed(1)
    for name in ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937", "RandomState"):
        getattr(np.random, name)()
    kinds = [draw.kind for draw in session().unseeded]
    assert kinds == [
        "numpy.PCG64",
        "numpy.PCG64DXSM",
        "numpy.Philox",
        "numpy.SFC64",
        "numpy.MT19937",
        "numpy.RandomState",
    ]


def test_seeded_constructions_and_unpickling_take_nothing_from_the_stream() -> None:
    """RandomState(5), PCG64(5), unpickling and copying are not generators made without a seed."""
    np = pytest.importorskip("numpy")
    nbrepro.seed(1)
    state = np.random.RandomState(5)
    bit_generator = np.random.PCG64(5)
    pickle.loads(pickle.dumps(state))
    copy.deepcopy(bit_generator)
    pickle.loads(pickle.dumps(np.random.Generator(np.random.Philox())))
    np.random.Philox(key=12345)
    assert [draw.kind for draw in session().unseeded] == ["numpy.Philox"]
    assert state.randint(1000) == np.random.RandomState(5).randint(1000)


def test_numpy_classes_keep_working_as_numpys() -> None:
    """isinstance both ways, type checks, pickling to NumPy's class, subclasses of the name."""
    np = pytest.importorskip("numpy")
    nbrepro.seed(1)
    made = np.random.PCG64()
    assert type(made) is np.random.PCG64 and isinstance(made, np.random.BitGenerator)
    assert repr(made).startswith("<numpy.random._pcg64.PCG64 object") or "PCG64" in repr(made)
    # Objects NumPy makes itself are still instances of the names.
    assert isinstance(np.random.default_rng(1).bit_generator, np.random.PCG64)
    assert isinstance(np.random.mtrand._rand, np.random.RandomState)
    restored = pickle.loads(pickle.dumps(made))
    assert restored.random_raw() == made.random_raw()
    assert type(restored).__module__ == "numpy.random._pcg64"

    class Custom(np.random.PCG64):  # type: ignore[misc, name-defined]
        pass

    assert not isinstance(np.random.PCG64(1), Custom) and isinstance(Custom(1), Custom)


def test_reset_puts_back_numpys_own_names() -> None:
    """After reset every name in numpy.random and the entropy source are NumPy's again."""
    np = pytest.importorskip("numpy")
    bit_generator_module = sys.modules["numpy.random.bit_generator"]
    names = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937", "RandomState", "default_rng")
    before = {name: getattr(np.random, name) for name in names}
    randbits = bit_generator_module.randbits
    nbrepro.seed(1)
    assert np.random.PCG64 is not before["PCG64"]
    nbrepro.reset()
    assert {name: getattr(np.random, name) for name in names} == before
    assert bit_generator_module.randbits is randbits
    first, second = np.random.SeedSequence().entropy, np.random.SeedSequence().entropy
    assert first != second and first > 2**64  # OS entropy again, 128 bits


def test_capture_and_restore_cover_bit_generators_and_random_state() -> None:
    """Generators made without a seed by any NumPy name come back with restore_state."""
    np = pytest.importorskip("numpy")
    nbrepro.seed(1)
    generator = np.random.Generator(np.random.SFC64())
    legacy = np.random.RandomState()
    python = random.Random()
    state = nbrepro.capture_state()
    drawn = (generator.random(), legacy.random_sample(), python.random())
    nbrepro.restore_state(state)
    assert (generator.random(), legacy.random_sample(), python.random()) == drawn


def test_torch_seed_takes_the_streams_seed_and_returns_it(run_fresh: RunFresh) -> None:
    """torch.seed() repeats in fresh processes, returns the seed it used and is recorded."""
    pytest.importorskip("torch")
    draw = "[torch.seed(), torch.initial_seed(), *torch.rand(2).tolist()]"
    lines = _repeats_and_differs(run_fresh, draw, prelude="import torch")
    used, initial = ast.literal_eval(lines[0])[:2]
    assert used == initial
    assert lines[1] == "['torch.seed']"


def test_torch_seed_imported_before_seeding_takes_the_streams_seed(run_fresh: RunFresh) -> None:
    """``from torch import seed`` before nbrepro.seed(): that name reseeds from the stream too
    (a script's names live in ``__main__``), repeats in fresh processes and is recorded."""
    pytest.importorskip("torch")
    draw = "[early_seed(), *torch.rand(2).tolist()]"
    prelude = "import torch; from torch import seed as early_seed"
    lines = _repeats_and_differs(run_fresh, draw, prelude=prelude)
    assert lines[1] == "['torch.seed']"


def test_torch_cuda_reseeding_is_recorded_and_put_back_on_reset() -> None:
    """torch.cuda.seed()/seed_all() take stream seeds (applied lazily without CUDA)."""
    torch = pytest.importorskip("torch")
    originals = (torch.seed, torch.cuda.seed, torch.cuda.seed_all)
    nbrepro.seed(1)
    torch.cuda.seed()
    torch.cuda.seed_all()
    assert [d.kind for d in session().unseeded] == ["torch.cuda.seed", "torch.cuda.seed_all"]
    nbrepro.reset()
    assert (torch.seed, torch.cuda.seed, torch.cuda.seed_all) == originals


@pytest.mark.tensorflow
def test_tf_generator_from_non_deterministic_state_repeats_under_deterministic(
    run_fresh: RunFresh,
) -> None:
    """Under --deterministic it no longer raises: it is seeded from the stream, and repeats."""
    pytest.importorskip("tensorflow")
    prelude = "import tensorflow as tf"
    draw = "tf.random.Generator.from_non_deterministic_state().normal([3]).numpy()"

    def snippet(seed: int) -> str:
        return _snippet(seed, draw, prelude).replace(
            f"nbrepro.seed({seed})", f"nbrepro.seed({seed}, deterministic=True)"
        )

    first, again, other = run_fresh(snippet(42), snippet(42), snippet(43))
    assert first == again and first.splitlines()[0] != other.splitlines()[0]
    assert "'tf.random.Generator'" in first.splitlines()[1]


def test_generators_made_while_a_library_imports_are_counted_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A library's own unseeded generators do not count as the user's in the status."""
    (tmp_path / "nbrepro_test_library.py").write_text(
        "import random\nHELPERS = [random.Random(), random.Random()]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    nbrepro.seed(1)
    __import__("nbrepro_test_library")
    status = nbrepro.status()
    assert (status.unseeded_generators, status.library_generators) == (0, 2)
    assert "generators made without a seed: 0 (+2 inside libraries)" in str(status)
    random.Random()
    assert nbrepro.status().unseeded_generators == 1
    sys.modules.pop("nbrepro_test_library", None)


@pytest.mark.parametrize(
    "source",
    [
        "g = np.random.Generator(np.random.PCG64())",
        "state = np.random.RandomState()",
        "g = np.random.default_rng(np.random.SeedSequence())",
        "g = tf.random.Generator.from_non_deterministic_state()",
        "s = torch.seed()",
        "g = torch.Generator()\ng.manual_seed(3)",
    ],
)
def test_covered_generators_are_not_flagged(source: str) -> None:
    """Generators nbrepro seeds from the stream raise no finding in the static check."""
    assert _audit.check_source(source, "In [2]").findings == []


@pytest.mark.parametrize(
    "source",
    [
        "g = torch.Generator()\ng.seed()",
        "torch.Generator().seed()",
        "torch.default_generator.seed()",
    ],
)
def test_a_torch_generator_reseeded_from_os_entropy_is_flagged(source: str) -> None:
    """torch's Generator type cannot be covered: its .seed() is NBR302, with the fix."""
    (finding,) = _audit.check_source(source, "In [2]").findings
    assert finding.code == "NBR302" and "In [2]" in finding.message
    assert "manual_seed(nbrepro.derive_seed" in finding.fix


def test_random_seed_with_no_argument_takes_the_streams_seed(run_fresh: RunFresh) -> None:
    # random.seed is the hidden global instance's method, bound before nbrepro loads: without
    # care it reseeds from OS entropy.
    draw = "(random.seed(), random.random())[1]"
    _, kinds = _repeats_and_differs(run_fresh, draw, prelude="import random")
    assert kinds == "['random.Random']"
    nbrepro.seed(1)
    nbrepro.reset()
    assert random.seed.__func__ is random.Random.seed  # type: ignore[attr-defined]
