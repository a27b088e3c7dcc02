"""Keep secrets out of everything nbrepro writes: values that look like tokens are redacted.

Environment variables only ever reach a record through an allowlist; this is the second
line: every string nbrepro writes into a notebook passes through :func:`redact_tree`.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "<redacted>"

# Shapes of credentials seen in ML work, most specific first.
_TOKEN_PATTERNS = tuple(
    re.compile(pattern)
    for pattern in (
        r"hf_[A-Za-z0-9]{20,}",  # Hugging Face
        r"(?:sk|rk|pk)-[A-Za-z0-9_-]{20,}",  # OpenAI-style and similar API keys
        r"gh[pousr]_[A-Za-z0-9]{30,}",  # GitHub
        r"github_pat_[A-Za-z0-9_]{30,}",
        r"xox[abpr]-[A-Za-z0-9-]{10,}",  # Slack
        r"AKIA[0-9A-Z]{16}",  # AWS access key id
        r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",  # JWT
        r"(?<![A-Za-z0-9])[0-9a-f]{40}(?![A-Za-z0-9])",  # 40-hex keys (W&B API keys)
        # Long runs mixing upper case, lower case and digits (AWS secret keys, generic
        # tokens). Hex digests and UUIDs (one case only) and paths (separators) don't match.
        r"(?<![A-Za-z0-9+/=_-])(?=[A-Za-z0-9+/=_-]*\d)(?=[A-Za-z0-9+/=_-]*[a-z])"
        r"(?=[A-Za-z0-9+/=_-]*[A-Z])[A-Za-z0-9+/=_-]{32,}(?![A-Za-z0-9+/=_-])",
    )
)
# key=value / key: value where the key names a secret.
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)((?:token|secret|password|passwd|api[_-]?key|access[_-]?key|auth)[A-Za-z0-9_]*"
    r"\s*[=:]\s*)([^\s,;&\"']+)"
)


def redact(text: str) -> str:
    """``text`` with anything that looks like a credential replaced by ``<redacted>``."""
    text = _SECRET_ASSIGNMENT.sub(lambda m: m[1] + REDACTED, text)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def redact_tree(value: Any) -> Any:
    """A copy of a JSON-like structure with every string (keys too) passed through redact."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_tree(k): redact_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v) for v in value]
    return value
