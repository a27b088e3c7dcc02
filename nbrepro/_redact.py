"""Keep secrets out of everything nbrepro writes: values that look like credentials are redacted.

Environment variables only ever reach a record through an allowlist; this is the second
line: every string nbrepro writes into a notebook (variable values, environment facts, data
paths and the file names of a folder's listing, findings) passes through :func:`redact`.

A secret becomes ``<redacted:3f2a9c1b>``: a keyed hash of the value (HMAC-SHA256 with a
random key kept in nbrepro's cache folder, so a placeholder cannot be reversed by guessing
values), the same for the same value in every run on this machine and different for
different values. Two data paths that differ only in a secret stay two keys, and a path
recorded earlier is found again under its placeholder.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from nbrepro._special_files import NotRegularError, open_regular

if TYPE_CHECKING:
    from nbrepro._record_schema import Fingerprint

PLACEHOLDER = re.compile(r"<redacted:[0-9a-f]{8}>")

_KEYS: dict[Path, bytes] = {}


def _read_key(path: Path) -> bytes | None:
    try:
        with os.fdopen(open_regular(path), "rb") as file:  # never blocks on a FIFO
            key = bytes.fromhex(file.read(128).decode("ascii").strip())
    except (OSError, ValueError, NotRegularError):
        return None
    return key if len(key) == 32 else None


def _key() -> bytes:
    """This machine's redaction key: made once, kept owner-only in the cache folder."""
    from nbrepro._fingerprint import cache_dir

    folder = cache_dir()
    if folder in _KEYS:
        return _KEYS[folder]
    path = folder / "redaction-key"
    key = _read_key(path)
    if key is None:
        key = secrets.token_bytes(32)  # without a writable cache: for this process only
        temporary = folder / f".redaction-key.{secrets.token_hex(4)}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(key.hex())
            if not os.path.lexists(path):
                os.link(temporary, path)  # of two processes racing, the first key wins
            elif os.path.isfile(path) and not os.path.islink(path):
                os.replace(temporary, path)  # a damaged key file
        except OSError:
            pass  # FileExistsError: another process won the race; read its key below
        finally:
            temporary.unlink(missing_ok=True)
        key = _read_key(path) or key
    _KEYS[folder] = key
    return key


def placeholder(secret: str) -> str:
    """The stable placeholder that stands for ``secret`` in everything nbrepro writes."""
    digest = hmac.new(_key(), secret.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return f"<redacted:{digest.hexdigest()[:8]}>"


def _class_switches(text: str) -> float:
    """How often neighbouring characters change class (upper, lower, digit): about 0.6 in
    random tokens, about 0.3 in CamelCase words and paths."""
    kinds = ["u" if c.isupper() else "l" if c.islower() else "d" for c in text if c.isalnum()]
    if len(kinds) < 2:
        return 0.0
    return sum(a != b for a, b in itertools.pairwise(kinds)) / (len(kinds) - 1)


def _random_looking(text: str, minimum: int, switches: float = 0.4) -> bool:
    letters = [c for c in text if c.isalnum()]
    return (
        len(letters) >= minimum
        and any(c.isupper() for c in letters)
        and any(c.islower() for c in letters)
        and any(c.isdigit() for c in letters)
        and _class_switches(text) >= switches
    )


def _aws_secret(text: str) -> bool:
    # Random base64 of 40 characters holds a "/" or two; a path of that length has more
    # separators and word-like parts between them.
    return text.count("/") <= 2 and _random_looking(text, 30, 0.3)


# Shapes of credentials seen in ML work; the whole match is the secret.
_TOKEN_PATTERNS = tuple(
    re.compile(pattern)
    for pattern in (
        r"hf_[A-Za-z0-9]{20,}",  # Hugging Face
        r"(?:sk|rk|pk)-[A-Za-z0-9_-]{20,}",  # OpenAI-style (sk-proj-…, sk-ant-…) and similar
        r"gh[pousr]_[A-Za-z0-9]{30,}",  # GitHub
        r"github_pat_[A-Za-z0-9_]{30,}",
        r"xox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
        r"xapp-[A-Za-z0-9-]{10,}",
        r"(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}",  # AWS key ids
        r"AIza[0-9A-Za-z_-]{35}",  # Google API keys
        r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",  # JWT
    )
)
# 40 hex digits, alone: W&B API keys and similar (a git commit id too: see keep_hex).
_HEX_40 = re.compile(r"(?<![A-Za-z0-9])[0-9a-f]{40}(?![A-Za-z0-9])")
# Runs that may be random tokens, judged by _random_looking: base64/base64url runs, and
# 40-character base64 runs with "/" or "+" (AWS secret access keys).
_TOKEN_RUN = re.compile(r"(?<![A-Za-z0-9+_-])[A-Za-z0-9+_-]{24,}={0,2}(?![A-Za-z0-9+=_-])")
_SLASHED_40 = re.compile(
    r"(?<![A-Za-z0-9/+])(?=[A-Za-z0-9/+]*[/+])[A-Za-z0-9+][A-Za-z0-9/+]{38}[A-Za-z0-9+=]"
    r"(?![A-Za-z0-9/+=])"
)
# "Bearer <token>" anywhere (HTTP Authorization headers, curl lines).
_BEARER = re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/=-]{8,})")
# Passwords in URLs: scheme://user:password@host.
_URL_PASSWORD = re.compile(r"(://[^/\s:@]+:)([^/\s@]+)(@)")
# key=value, key: value, "key": "value", --key="value", --key value: where the key names a
# secret (HF_TOKEN, --auth_token, api-key, SECRET_ACCESS_KEY, password1, Authorization).
# "tokens", "tokenizer" and "author" are not secret names.
_SECRET_NAME = (
    r"(?:api[_-]?key|access[_-]?key|private[_-]?key|secret|token|password|passwd|pwd|"
    r"credentials?|authorization|auth(?:[_-]?token)?)(?:[_-][A-Za-z0-9_-]*|[0-9]*)"
)
_VALUE = (
    r"""("(?:[^"\\]|\\.)*"|'[^']*'|(?:(?:bearer|basic|token|digest)\s+)?[^\s,;&"'<>{}\[\]()]+)"""
)
_SECRET_ASSIGNMENT = re.compile(
    rf"(?i)(?<![A-Za-z0-9_.-])([A-Za-z0-9_.-]*?{_SECRET_NAME})" r"""(["']?\s*[=:]\s*)""" + _VALUE
)
# --password VALUE: a flag naming a secret, then its value as the next word.
_SECRET_FLAG = re.compile(
    rf"(?i)(?<![A-Za-z0-9_.-])(--?[A-Za-z0-9_.-]*?{_SECRET_NAME})(\s+)(?=[^-\s])" + _VALUE
)
# What every pattern above needs somewhere: a secret's name, "://", or a run of 15 token
# characters (the shortest a token pattern matches: "xoxb-" and ten more).
_MAYBE_SECRET = re.compile(
    r"(?i)api|key|secret|token|pass|pwd|cred|auth|bearer|://|[A-Za-z0-9+/=_-]{15}"
)
_SCHEMES = re.compile(r"(?i)(bearer|basic|token|digest)\s+")
# Values that are no secret; the schemes stay when their token was redacted already.
_NOT_SECRET = {"", "true", "false", "none", "null", "yes", "no", "0", "1"}
_NOT_SECRET |= {"bearer", "basic", "token", "digest"}


def _assignment(match: re.Match[str]) -> str:
    name, separator, value = match[1], match[2], match[3]
    scheme = _SCHEMES.match(value)
    if scheme is not None and value[scheme.end() :]:  # Authorization: Bearer <token>
        return name + separator + scheme[0] + _secret_value(value[scheme.end() :])
    return name + separator + _secret_value(value)


def _secret_value(value: str) -> str:
    quote = value[0] if value[:1] in ("'", '"') and value[-1:] == value[:1] else ""
    inner = value[len(quote) : len(value) - len(quote)] if quote else value
    if inner.lower() in _NOT_SECRET or PLACEHOLDER.fullmatch(inner):
        return value
    return quote + placeholder(inner) + quote


def redact(text: str, *, keep_hex: bool = False) -> str:
    """``text`` with anything that looks like a credential replaced by its placeholder.

    ``keep_hex`` leaves 40-hex runs alone (package versions may name a git commit).
    SHA-256 digests (64 hex digits), UUIDs, paths and versions are kept.
    """
    if not _MAYBE_SECRET.search(text):
        return text  # most strings (file names, versions): one search instead of fifteen
    text = _SECRET_ASSIGNMENT.sub(_assignment, text)
    text = _SECRET_FLAG.sub(_assignment, text)
    text = _URL_PASSWORD.sub(lambda m: m[1] + _secret_value(m[2]) + m[3], text)
    text = _BEARER.sub(lambda m: m[1] + _secret_value(m[2]), text)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(lambda m: placeholder(m[0]), text)
    if not keep_hex:
        text = _HEX_40.sub(lambda m: placeholder(m[0]), text)
    text = _SLASHED_40.sub(lambda m: placeholder(m[0]) if _aws_secret(m[0]) else m[0], text)
    return _TOKEN_RUN.sub(lambda m: placeholder(m[0]) if _random_looking(m[0], 24) else m[0], text)


T = TypeVar("T")


def redact_tree(value: T, redactor: Callable[[str], str] = redact) -> T:
    """A copy of a JSON-like structure with every string (keys too) passed through redact."""
    if isinstance(value, str):
        return redactor(value)  # type: ignore[return-value]
    if isinstance(value, dict):
        return {redact_tree(k, redactor): redact_tree(v, redactor) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list | tuple):
        return [redact_tree(v, redactor) for v in value]  # type: ignore[return-value]
    return value


def redact_fingerprint(fingerprint: Fingerprint) -> Fingerprint:
    """``fingerprint`` with the file names of a folder's listing and skipped list redacted.

    Digests are kept: a 64-hex SHA-256 is not a secret, and drift needs it.
    """
    copy: Any = dict(fingerprint)
    if "listing" in copy:
        copy["listing"] = {redact(name): digest for name, digest in copy["listing"].items()}
    if "skipped" in copy:
        copy["skipped"] = [redact(name) for name in copy["skipped"]]
    result: Fingerprint = copy
    return result
