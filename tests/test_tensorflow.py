"""nbrepro on real TensorFlow and Keras 3 (CPU): seeding, op determinism, state."""

from __future__ import annotations

import os
import pickle
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

import nbrepro

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TF loads: no C++ log noise

if TYPE_CHECKING:
    import keras
    import numpy as np
    import tensorflow as tf
else:  # optional: without them this module is skipped, not an error
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    np = pytest.importorskip("numpy")

# Only enable_op_determinism is exported; its getter lives beside it.
from tensorflow.python.framework import config as op_determinism

pytestmark = pytest.mark.tensorflow


def _train() -> np.ndarray:
    """The weights of a tiny Sequential model with Dropout after fit() for 2 shuffled epochs."""
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    inputs = np.linspace(-1, 1, 64, dtype="float32").reshape(16, 4)
    model.fit(inputs, inputs.sum(axis=1), epochs=2, batch_size=4, verbose=0)
    return np.concatenate([w.ravel() for w in model.get_weights()])


def _draws() -> list[np.ndarray]:
    """tf.random.uniform, a tf.data shuffle order, the global generator, Keras training."""
    return [
        tf.random.uniform([4]).numpy(),
        np.fromiter(tf.data.Dataset.range(10).shuffle(10).as_numpy_iterator(), dtype=np.int64),
        tf.random.get_global_generator().normal([4]).numpy(),
        _train(),
    ]


def _sequences() -> list[np.ndarray]:
    """The next values of the sequences capture_state() must continue."""
    return [
        tf.random.uniform([4]).numpy(),
        tf.random.get_global_generator().normal([4]).numpy(),
        keras.ops.convert_to_numpy(keras.random.normal([4])),
    ]


def test_reseeding_repeats_draws_shuffles_and_training() -> None:
    """Seed, draw, reseed, draw: uniform, tf.data shuffle, global generator, fit() all repeat."""
    nbrepro.seed(42)
    first = _draws()
    nbrepro.seed(42)
    for a, b in zip(first, _draws(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_another_seed_gives_other_draws() -> None:
    """A different seed changes every draw, the shuffle order and the trained weights."""
    nbrepro.seed(42)
    first = _draws()
    nbrepro.seed(43)
    assert not any(np.array_equal(a, b) for a, b in zip(first, _draws(), strict=True))


def test_deterministic_turns_op_determinism_on_and_reset_off() -> None:
    """deterministic=True enables TF op determinism; reset() disables it again."""
    assert not op_determinism.is_op_determinism_enabled()
    nbrepro.seed(0, deterministic=True)
    assert op_determinism.is_op_determinism_enabled()
    nbrepro.reset()
    assert not op_determinism.is_op_determinism_enabled()


def test_seeding_without_deterministic_turns_op_determinism_off() -> None:
    """Seeding again without deterministic puts op determinism back as it was."""
    nbrepro.seed(0, deterministic=True)
    nbrepro.seed(0)
    assert not op_determinism.is_op_determinism_enabled()


@pytest.mark.parametrize("through_pickle", [False, True], ids=["in-memory", "pickled"])
def test_restore_state_continues_tf_and_keras_sequences(through_pickle: bool) -> None:
    """capture_state/restore_state continue tf.random, the global generator and keras.random."""
    nbrepro.seed(7)
    _sequences()
    state = nbrepro.capture_state()
    expected = _sequences()
    if through_pickle:
        state = pickle.loads(pickle.dumps(state))
    nbrepro.restore_state(state)
    for a, b in zip(expected, _sequences(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_tensorflow_imported_after_seeding_is_seeded_on_import(
    run_fresh: Callable[..., list[str]],
) -> None:
    """TensorFlow imported after nbrepro.seed() is seeded and made deterministic as it loads."""
    after_import = (
        "import tensorflow as tf; from tensorflow.python.framework import config; "
        "print(tf.random.uniform([4]).numpy().tolist(), config.is_op_determinism_enabled())"
    )
    seeded = f"import nbrepro; nbrepro.seed(7, deterministic=True); {after_import}"
    manual = after_import.replace("print(", "tf.random.set_seed(7); print(", 1)
    seeded_run, manual_run = run_fresh(seeded, manual)
    values, deterministic = seeded_run.rsplit(" ", 1)
    assert deterministic.strip() == "True"
    assert values == manual_run.rsplit(" ", 1)[0]


def test_global_generator_repeats_on_every_reseed() -> None:
    """The fast in-place reset of the global generator (after the first) repeats too."""
    draws = []
    for _ in range(4):
        nbrepro.seed(21)
        draws.append(tf.random.get_global_generator().normal([3]).numpy().tolist())
    nbrepro.seed(22)
    assert draws[0] == draws[1] == draws[2] == draws[3]
    assert tf.random.get_global_generator().normal([3]).numpy().tolist() != draws[0]


def _user_seed_findings() -> list[nbrepro.Finding]:
    return [f for f in nbrepro.audit() if f.code == "NBR304"]


def test_user_tf_seed_survives_per_cell_reseeding(run_cell: Callable[..., Any]) -> None:
    """tf.random.set_seed(3) in a cell: later cells continue its op seeds; NBR304 names it."""
    run = run_cell
    run("import tensorflow as tf")
    run("%repro_seed 42 --per-cell")
    run("tf.random.set_seed(3)", "seeds")
    first = run("tf.random.uniform([2]).numpy().tolist()", "draws")
    second = run("tf.random.uniform([2]).numpy().tolist()", "draws")
    tf.random.set_seed(3)
    assert [first, second] == [tf.random.uniform([2]).numpy().tolist() for _ in range(2)]
    [finding] = _user_seed_findings()
    assert "tf.random.set_seed(3)" in finding.message
    assert "tensorflow's global generator" in finding.message


def test_user_global_generator_is_never_reset(run_cell: Callable[..., Any]) -> None:
    """A generator the user installed stays the global one, and keeps its own state."""
    run = run_cell
    run("import tensorflow as tf")
    run("%repro_seed 42 --per-cell")
    run("mine = tf.random.Generator.from_seed(1); tf.random.set_global_generator(mine)", "set")
    draw = "tf.random.get_global_generator().normal([2]).numpy().tolist()"
    first = run(draw, "draws")
    second = run(draw, "draws")
    assert run("tf.random.get_global_generator() is mine", "check")
    reference = tf.random.Generator.from_seed(1)
    assert [first, second] == [reference.normal([2]).numpy().tolist() for _ in range(2)]
    [finding] = _user_seed_findings()
    assert "tf.random.set_global_generator(<Generator>)" in finding.message


def test_keras_set_random_seed_is_one_finding_for_every_generator_it_seeds(
    run_cell: Callable[..., Any],
) -> None:
    """keras.utils.set_random_seed(3): random, NumPy, TensorFlow and Keras are all the user's."""
    run = run_cell
    run("import random, numpy as np, keras")
    run("%repro_seed 42 --per-cell")
    run("keras.utils.set_random_seed(3)", "seeds")
    first = run("[random.random(), float(np.random.rand())]", "draws")
    second = run("[random.random(), float(np.random.rand())]", "draws")
    keras.utils.set_random_seed(3)
    assert [first, second] == [[random.random(), float(np.random.rand())] for _ in range(2)]
    [finding] = _user_seed_findings()
    assert finding.message.startswith("keras.utils.set_random_seed(3)")
    for name in ("random", "numpy", "tensorflow", "keras"):
        assert f"{name}'s global generator" in finding.message


def test_per_cell_reseeds_nbrepros_global_generators_and_op_seeds(
    run_cell: Callable[..., Any],
) -> None:
    """Rerunning a cell repeats tf.random ops, the global generator and keras.random."""
    run = run_cell
    run("import tensorflow as tf, keras")
    run("%repro_seed 42 --per-cell")
    draw = (
        "[tf.random.uniform([2]).numpy().tolist(), "
        "tf.random.get_global_generator().normal([2]).numpy().tolist(), "
        "keras.ops.convert_to_numpy(keras.random.normal([2])).tolist()]"
    )
    first = run(draw, "draws")
    run(draw, "other")
    assert run(draw, "draws") == first
    assert run(draw, "another") != first
    assert not _user_seed_findings()


def test_tf_generators_made_by_earlier_cells_keep_their_state(run_cell: Callable[..., Any]) -> None:
    """A tf.random.Generator held in a variable is not reset by per-cell reseeding."""
    run = run_cell
    run("import tensorflow as tf")
    run("%repro_seed 42 --per-cell")
    run("g = tf.random.Generator.from_seed(5)", "make")
    first = run("g.normal([2]).numpy().tolist()", "draws")
    second = run("g.normal([2]).numpy().tolist()", "draws")
    reference = tf.random.Generator.from_seed(5)
    assert [first, second] == [reference.normal([2]).numpy().tolist() for _ in range(2)]


def test_a_global_generator_from_before_seeding_is_left_as_it_was() -> None:
    """seed() makes a global generator of its own; the one the user held keeps its state."""
    held = tf.random.Generator.from_seed(9)
    tf.random.set_global_generator(held)
    held_state = held.state.numpy().tolist()
    nbrepro.seed(4)
    assert held.state.numpy().tolist() == held_state
    ours = tf.random.get_global_generator()
    assert ours is not held
    assert ours.normal([2]).numpy().tolist() == (
        tf.random.Generator.from_seed(4).normal([2]).numpy().tolist()
    )
