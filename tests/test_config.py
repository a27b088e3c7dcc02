"""Validation at the boundary: bad seeds and options are refused with the value named."""

from __future__ import annotations

import random

import pytest

import nbrepro
from nbrepro._config import MAX_SEED, Determinism, SeedSource, make_config, validate_seed


@pytest.mark.parametrize("good", [0, 1, 42, MAX_SEED, "7", " 123 "])
def test_valid_seeds_are_accepted(good: object) -> None:
    """Integers and digit strings in 0..2**31-1 are seeds."""
    assert validate_seed(good) == int(str(good).strip())


@pytest.mark.parametrize(
    "bad",
    [
        -1,
        2**31,
        "abc",
        4.2,
        "4.2",
        "2**31",
        True,
        None,
        "",
        "-5",
        "\uff11\uff12",
    ],  # full-width digits
)
def test_invalid_seeds_name_the_value_and_the_range(bad: object) -> None:
    """A bad seed raises InvalidSeedError (a ValueError) naming it and the allowed range."""
    with pytest.raises(nbrepro.InvalidSeedError, match="2147483647") as caught:
        validate_seed(bad)
    assert repr(bad) in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("bad", [0, -2, 10_000, "many", 2.0, True])
def test_invalid_thread_counts_are_refused(bad: object) -> None:
    """--threads takes 1..1024 and names a bad value."""
    with pytest.raises(nbrepro.InvalidOptionError, match="thread count") as caught:
        make_config(1, threads=bad)
    assert repr(bad) in str(caught.value)


def test_options_map_to_the_config() -> None:
    """strict implies deterministic; a given seed is recorded as given."""
    config = make_config(5, deterministic=True, per_cell=True, threads="3")
    assert (config.seed, config.seed_source) == (5, SeedSource.USER)
    assert config.deterministic is Determinism.WARN
    assert (config.per_cell, config.threads) == (True, 3)
    assert make_config(5, strict=True).deterministic is Determinism.STRICT
    assert make_config(5).deterministic is Determinism.OFF


def test_omitted_seed_is_drawn_and_marked_auto() -> None:
    """No seed: one is drawn from OS entropy, in range, and recorded as auto-assigned."""
    seeds = {make_config().seed for _ in range(20)}
    assert all(0 <= s <= MAX_SEED for s in seeds)
    assert len(seeds) > 1
    assert make_config().seed_source is SeedSource.AUTO


def test_bad_input_leaves_the_seed_in_force() -> None:
    """A refused seed changes nothing: the previous configuration and streams stay."""
    nbrepro.seed(11)
    expected = random.random()
    nbrepro.seed(11)
    with pytest.raises(nbrepro.InvalidSeedError):
        nbrepro.seed(-1)
    with pytest.raises(nbrepro.InvalidOptionError):
        nbrepro.seed(12, threads=0)
    assert nbrepro.status().seed == 11
    assert random.random() == expected
