"""nbrepro on real TensorFlow and Keras 3 (CPU): seeding, op determinism, state."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from typing import TYPE_CHECKING

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
