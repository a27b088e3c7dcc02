"""``derive_seed``: a pure, version-stable function from (experiment seed, keys) to a seed.

The definition is part of nbrepro's public contract and never changes within a major
version, whatever the platform or Python build (no ``hash()``, which is salted per process):

    digest = SHA-256( b"nbrepro.derive_seed.v1"
                      || encode(experiment_seed) || encode(key_1) || ... || encode(key_n) )
    seed   = int.from_bytes(digest[:8], "big") mod 2**31

where ``encode`` of an ``int`` is ``b"i"`` + the 8-byte big-endian length + its decimal ASCII
text, of a ``str`` ``b"s"`` + length + its UTF-8 bytes, and of ``bytes`` ``b"b"`` + length + the
bytes. The length prefix makes ``("ab", "c")`` and ``("a", "bc")`` different keys.
"""

from __future__ import annotations

from nbrepro._config import MAX_SEED
from nbrepro.errors import InvalidOptionError

Key = int | str | bytes

_DOMAIN = b"nbrepro.derive_seed.v1"


def _encode(key: object) -> bytes:
    if isinstance(key, bool) or not isinstance(key, int | str | bytes):
        raise InvalidOptionError(
            f"invalid key {key!r} ({type(key).__name__}): keys must be int, str or bytes"
        )
    if isinstance(key, int):
        tag, payload = b"i", str(key).encode("ascii")
    elif isinstance(key, str):
        tag, payload = b"s", key.encode("utf-8")
    else:
        tag, payload = b"b", key
    return tag + len(payload).to_bytes(8, "big") + payload


def derive_from(base_seed: int, keys: tuple[object, ...]) -> int:
    """Derive a seed in 0..2**31-1 from ``base_seed`` and ``keys`` (see the module docstring)."""
    import hashlib  # loading OpenSSL is most of nbrepro's import time otherwise

    digest = hashlib.sha256(_DOMAIN)
    digest.update(_encode(base_seed))
    for key in keys:
        digest.update(_encode(key))
    return int.from_bytes(digest.digest()[:8], "big") % (MAX_SEED + 1)
