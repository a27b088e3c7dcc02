"""The validated experiment configuration: what ``%repro_seed`` / ``nbrepro.seed()`` asked for.

Validation happens here, at the boundary, before anything is applied: a bad value raises
and leaves the running session exactly as it was.
"""

from __future__ import annotations

import enum
import operator
import os
import re
import reprlib
from dataclasses import dataclass

from nbrepro.errors import InvalidOptionError, InvalidSeedError

#: Seeds are 31-bit so that every framework accepts them unchanged (NumPy's legacy
#: ``seed`` takes < 2**32, TensorFlow and Keras use int32 seeds in places).
MAX_SEED = 2**31 - 1
MAX_THREADS = 1024
#: Where no seed is given, a seed in this variable is used instead of a fresh draw.
REPLAY_SEED_VARIABLE = "NBREPRO_SEED"
#: Set by ``nbrepro sweep`` in the kernels it starts: that run's seed, which replaces the seed
#: the notebook gives (or draws), so that each run of a sweep is under its own derived seed.
SWEEP_SEED_VARIABLE = "NBREPRO_SWEEP_SEED"

# ASCII digits only: str.isdigit() and int() also take other scripts' digits (U+FF14), and
# int() takes signs and underscores ("+3", "1_0"), none of which a seed may be written with.
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_MAX_DIGITS = 18  # beyond every range here; longer strings are not converted
_SHORT = reprlib.Repr()
_SHORT.maxstring = 40
_SHORT.maxother = 40


class Determinism(str, enum.Enum):
    """How nondeterministic framework kernels are treated."""

    OFF = "off"  #: nbrepro leaves the frameworks' own settings alone
    WARN = "warn"  #: deterministic algorithms on; an op without one runs and is recorded
    STRICT = "strict"  #: deterministic algorithms on; an op without one raises


class SeedSource(str, enum.Enum):
    """Where the experiment seed came from."""

    USER = "user"
    AUTO = "auto"
    SWEEP = "sweep"  #: ``nbrepro sweep`` chose it for this run (SWEEP_SEED_VARIABLE)


@dataclass(frozen=True)
class Config:
    """One validated request to seed the session."""

    seed: int
    seed_source: SeedSource
    deterministic: Determinism
    per_cell: bool
    threads: int | None
    quiet: bool = False  #: no run-time finding lines under cells (the panel still lists them)


def validate_seed(value: object) -> int:
    """Return ``value`` as a seed, or raise :class:`InvalidSeedError` naming it.

    Integers (and strings of ASCII decimal digits, as typed after a magic) from 0 to 2**31-1
    are allowed; floats, bools, signs, underscores, other scripts' digits and anything else are
    refused rather than rounded, truncated or guessed.
    """
    allowed = f"a seed must be an integer from 0 to {MAX_SEED} (2**31-1)"
    number = _integer(value, allowed, InvalidSeedError, "seed")
    if number is None or not 0 <= number <= MAX_SEED:
        raise InvalidSeedError(f"invalid seed {shown(value)}: {allowed}")
    return number


def validate_threads(value: object) -> int:
    """Return ``value`` as a thread count, or raise :class:`InvalidOptionError` naming it.

    The same rules as a seed: an integer, or a string of ASCII digits, from 1 to 1024.
    """
    allowed = f"the thread count must be an integer from 1 to {MAX_THREADS}"
    number = _integer(value, allowed, InvalidOptionError, "thread count")
    if number is None or not 1 <= number <= MAX_THREADS:
        raise InvalidOptionError(f"invalid thread count {shown(value)}: {allowed}")
    return number


def validate_flag(value: object, name: str) -> bool:
    """Return ``value`` if it is ``True`` or ``False``; else :class:`InvalidOptionError`.

    Truthiness is not guessed: ``deterministic="no"`` would otherwise switch determinism on.
    """
    if not isinstance(value, bool):
        raise InvalidOptionError(f"invalid {name}={shown(value)}: it must be True or False")
    return value


def shown(value: object) -> str:
    """``value`` as an error message shows it: its repr, shortened when long.

    A 5,000-digit integer has no repr at all (Python limits int-to-str conversion), so such
    a number is described by its size.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"(an integer of about {int(value.bit_length() * 0.30103) + 1} digits)"
    text = _SHORT.repr(value)
    if isinstance(value, str) and len(text) < len(value) + 2:
        text += f" ({len(value)} characters)"
    return text


def _integer(
    value: object, allowed: str, error: type[InvalidSeedError | InvalidOptionError], what: str
) -> int | None:
    """``value`` as an int, ``None`` for a well-formed number out of any sane range, or raise.

    Strings are ASCII digits only; so long a string is never handed to ``int()`` (which
    refuses more than 4,300 digits with a ValueError of its own).
    """
    if isinstance(value, bool):
        raise error(f"invalid {what} {value!r}: {allowed}, not a bool")
    if isinstance(value, str):
        text = value.strip()
        if not _DIGITS.fullmatch(text):
            raise error(f"invalid {what} {shown(value)}: {allowed}, written with digits 0-9 only")
        significant = text.lstrip("0") or "0"
        return int(significant) if len(significant) <= _MAX_DIGITS else None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise error(
            f"invalid {what} {shown(value)}: {allowed}, not {type(value).__name__}"
        ) from None


def draw_seed() -> int:
    """A fresh seed in 0..2**31-1 from the operating system's entropy source."""
    # 2**32 is a multiple of 2**31, so the modulo keeps every seed equally likely.
    return int.from_bytes(os.urandom(4), "big") % (MAX_SEED + 1)


def make_config(
    seed: object = None,
    *,
    deterministic: bool = False,
    strict: bool = False,
    per_cell: bool = False,
    threads: object = None,
    quiet: bool = False,
) -> Config:
    """Validate every option and return the :class:`Config`; draw a seed if none is given."""
    flags = {"deterministic": deterministic, "strict": strict, "per_cell": per_cell, "quiet": quiet}
    for name, flag in flags.items():
        validate_flag(flag, name)
    sweep = os.environ.get(SWEEP_SEED_VARIABLE)
    if sweep is not None:
        if seed is not None:
            validate_seed(seed)  # a bad seed is still an error, sweep or not
        try:
            chosen, source = validate_seed(sweep), SeedSource.SWEEP
        except InvalidSeedError as error:
            raise InvalidSeedError(f"{SWEEP_SEED_VARIABLE}: {error}") from None
    elif seed is None:
        # nbrepro rerun replays an auto-assigned seed through this variable.
        replay = os.environ.get(REPLAY_SEED_VARIABLE)
        try:
            chosen = draw_seed() if replay is None else validate_seed(replay)
        except InvalidSeedError as error:
            raise InvalidSeedError(f"{REPLAY_SEED_VARIABLE}: {error}") from None
        source = SeedSource.AUTO
    else:
        chosen, source = validate_seed(seed), SeedSource.USER
    if strict:
        mode = Determinism.STRICT
    elif deterministic:
        mode = Determinism.WARN
    else:
        mode = Determinism.OFF
    return Config(
        seed=chosen,
        seed_source=source,
        deterministic=mode,
        per_cell=per_cell,
        threads=None if threads is None else validate_threads(threads),
        quiet=quiet,
    )
