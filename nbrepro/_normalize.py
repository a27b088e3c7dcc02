"""The one normaliser through which nbrepro compares notebook outputs.

Two runs of a reproducible notebook give the same results but not the same bytes: execution
counts, memory addresses in reprs, timestamps, durations and log lines written to stderr all
vary. ``normalize_outputs`` keeps what a cell computed and masks what only says when or where
it ran, so that equal normalised outputs mean equal results.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b0x[0-9a-fA-F]{6,}\b"), "0x<address>"),
    (
        re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"),
        "<timestamp>",
    ),
    (re.compile(r"\b\d+(?:\.\d+)?\s?(?:ns|µs|us|ms|s)(?:/(?:step|it|epoch))?\b"), "<duration>"),
)


def mask(text: str) -> str:
    """``text`` with memory addresses, timestamps and durations replaced by placeholders."""
    for pattern, placeholder in _MASKS:
        text = pattern.sub(placeholder, text)
    return text


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def normalize_cell(outputs: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    """One code cell's outputs, normalised.

    Kept: stdout (consecutive writes joined), results and displays (their text/plain, or
    every other representation when there is none), errors (name and value). Dropped:
    stderr (logs, progress bars and warnings, which repeat with timestamps and counts),
    execution counts, output metadata and transient display ids.
    """
    normalised: list[dict[str, str]] = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            if output.get("name") != "stdout":
                continue
            text = mask(_text(output.get("text", "")))
            if normalised and normalised[-1]["type"] == "stdout":
                normalised[-1]["text"] += text
            else:
                normalised.append({"type": "stdout", "text": text})
        elif kind in ("execute_result", "display_data"):
            data = output.get("data", {})
            if "text/plain" in data:
                shown = {"text/plain": mask(_text(data["text/plain"]))}
            else:
                shown = {mime: mask(_text(value)) for mime, value in sorted(data.items())}
            for mime, value in shown.items():
                normalised.append({"type": "result", "mime": mime, "text": value})
        elif kind == "error":
            text = f"{output.get('ename')}: {mask(str(output.get('evalue')))}"
            normalised.append({"type": "error", "text": text})
    return normalised


def normalize_outputs(notebook: Mapping[str, Any]) -> list[list[dict[str, str]]]:
    """Every code cell's normalised outputs, in order."""
    return [
        normalize_cell(cell.get("outputs", []))
        for cell in notebook["cells"]
        if cell.get("cell_type") == "code"
    ]
