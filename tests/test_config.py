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


@pytest.mark.parametrize(
    "bad", [0, -2, 10_000, "many", 2.0, True, "\uff14", "1_0", "+3", "-3", "3.0", "", "0x10"]
)
def test_invalid_thread_counts_are_refused(bad: object) -> None:
    """--threads takes 1..1024 written like a seed (ASCII digits only) and names a bad value."""
    with pytest.raises(nbrepro.InvalidOptionError, match="thread count") as caught:
        make_config(1, threads=bad)
    assert repr(bad) in str(caught.value)


@pytest.mark.parametrize("text", ["1" * 5000, "9" * 4301])
def test_huge_digit_strings_are_refused_without_converting_them(text: str) -> None:
    """Past int()'s 4,300-digit limit: a seed error (shortened, with the length), not ValueError."""
    with pytest.raises(nbrepro.InvalidSeedError, match="2147483647") as caught:
        validate_seed(text)
    assert f"({len(text)} characters)" in str(caught.value)
    assert len(str(caught.value)) < 200
    with pytest.raises(nbrepro.InvalidOptionError, match="1 to 1024"):
        make_config(1, threads=text)


def test_a_huge_integer_is_described_not_printed() -> None:
    """An int too long to turn into a string is described by its size."""
    with pytest.raises(nbrepro.InvalidSeedError, match="about 5001 digits"):
        validate_seed(10**5000)


def test_leading_zeros_are_the_same_number() -> None:
    """ "007" is 7: digits are read as a decimal number, as typed."""
    assert validate_seed("007") == 7
    assert validate_seed("0" * 5000 + "1") == 1
    assert make_config(1, threads="04").threads == 4


@pytest.mark.parametrize("option", ["deterministic", "strict", "per_cell", "quiet"])
@pytest.mark.parametrize("bad", ["no", 1, None, 0.0])
def test_switches_take_only_true_or_false(option: str, bad: object) -> None:
    """A switch is never guessed from truthiness ("no" would switch it on)."""
    with pytest.raises(nbrepro.InvalidOptionError, match="True or False") as caught:
        nbrepro.seed(1, **{option: bad})
    assert f"{option}={bad!r}" in str(caught.value)


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
    with pytest.raises(nbrepro.InvalidSeedError):
        nbrepro.seed("1" * 5000)  # type: ignore[arg-type]
    with pytest.raises(nbrepro.InvalidOptionError):
        nbrepro.seed(12, per_cell="yes")  # type: ignore[arg-type]
    assert nbrepro.status().seed == 11
    assert random.random() == expected
