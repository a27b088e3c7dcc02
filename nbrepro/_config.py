"""The validated experiment configuration: what ``%repro_seed`` / ``nbrepro.seed()`` asked for.

Validation happens here, at the boundary, before anything is applied: a bad value raises
and leaves the running session exactly as it was.
"""

from __future__ import annotations

import enum
import operator
import os
from dataclasses import dataclass

from nbrepro.errors import InvalidOptionError, InvalidSeedError

#: Seeds are 31-bit so that every framework accepts them unchanged (NumPy's legacy
#: ``seed`` takes < 2**32, TensorFlow and Keras use int32 seeds in places).
MAX_SEED = 2**31 - 1
MAX_THREADS = 1024
#: Where no seed is given, a seed in this variable is used instead of a fresh draw.
REPLAY_SEED_VARIABLE = "NBREPRO_SEED"


class Determinism(str, enum.Enum):
    """How nondeterministic framework kernels are treated."""

    OFF = "off"  #: nbrepro leaves the frameworks' own settings alone
    WARN = "warn"  #: deterministic algorithms on; an op without one runs and is recorded
    STRICT = "strict"  #: deterministic algorithms on; an op without one raises


class SeedSource(str, enum.Enum):
    """Where the experiment seed came from."""

    USER = "user"
    AUTO = "auto"


@dataclass(frozen=True)
class Config:
    """One validated request to seed the session."""

    seed: int
    seed_source: SeedSource
    deterministic: Determinism
    per_cell: bool
    threads: int | None


def validate_seed(value: object) -> int:
    """Return ``value`` as a seed, or raise :class:`InvalidSeedError` naming it.

    Integers (and strings of decimal digits, as typed after a magic) from 0 to 2**31-1 are
    allowed; floats, bools and anything else are refused rather than rounded or truncated.
    """
    allowed = f"a seed must be an integer from 0 to {MAX_SEED} (2**31-1)"
    if isinstance(value, bool):
        raise InvalidSeedError(f"invalid seed {value!r}: {allowed}, not a bool")
    if isinstance(value, str):
        text = value.strip()
        if not text.lstrip("-").isdigit() or not text.isascii():
            raise InvalidSeedError(f"invalid seed {value!r}: {allowed}")
        number = int(text)
    else:
        try:
            number = operator.index(value)  # type: ignore[arg-type]
        except TypeError:
            raise InvalidSeedError(
                f"invalid seed {value!r}: {allowed}, not {type(value).__name__}"
            ) from None
    if not 0 <= number <= MAX_SEED:
        raise InvalidSeedError(f"invalid seed {value!r}: {allowed}")
    return number


def validate_threads(value: object) -> int:
    """Return ``value`` as a thread count, or raise :class:`InvalidOptionError` naming it."""
    allowed = f"the thread count must be an integer from 1 to {MAX_THREADS}"
    if isinstance(value, bool):
        raise InvalidOptionError(f"invalid thread count {value!r}: {allowed}")
    try:
        number = int(value.strip()) if isinstance(value, str) else operator.index(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidOptionError(f"invalid thread count {value!r}: {allowed}") from None
    if not 1 <= number <= MAX_THREADS:
        raise InvalidOptionError(f"invalid thread count {value!r}: {allowed}")
    return number


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
) -> Config:
    """Validate every option and return the :class:`Config`; draw a seed if none is given."""
    if seed is None:
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
        per_cell=bool(per_cell),
        threads=None if threads is None else validate_threads(threads),
    )
