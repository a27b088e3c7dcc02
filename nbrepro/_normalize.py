"""The one normaliser through which nbrepro compares notebook outputs.

Two runs of a reproducible notebook give the same results but not the same bytes: execution
counts, memory addresses in reprs, timestamps, durations, progress bars, widget model ids and
log lines written to stderr all vary. ``normalize_outputs`` keeps what a cell computed and
masks what only says when or where it ran, so that equal normalised outputs mean equal results.

What is deliberately *not* masked: numbers that are not durations (``time.time()`` printed as
a float is a result that differs, and should), UUIDs in text (``uuid4()`` is a source of
nondeterminism to report, not noise), random-looking hex digests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from nbrepro._metric import METRIC_MIME

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

_UNIT = r"(?:ns|µs|μs|us|ms|s|sec|secs|seconds?|min)"

#: (name, pattern, placeholder), applied in order: the first ones are the most specific.
_MASKS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        # %repro_seed's summary says which command started the kernel: `nbrepro rerun` and
        # the `nbrepro run` it repeats differ there, and nowhere in what the notebook computed.
        "nbrepro runtime",
        re.compile(r"\bruntime: started by .+? at "),
        "runtime: started by <command> at ",
    ),
    ("address", re.compile(r"\b0x[0-9a-fA-F]{6,}\b"), "0x<address>"),
    (
        "timestamp",  # ISO 8601 and logging's "2026-11-23 03:02:21,123"
        re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"),
        "<timestamp>",
    ),
    (
        "ctime",  # time.ctime(), datetime.ctime()
        re.compile(
            r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct"
            r"|Nov|Dec) [ \d]\d \d{2}:\d{2}:\d{2} \d{4}\b"
        ),
        "<timestamp>",
    ),
    (
        "progress timing",  # tqdm's "[00:01<00:02, 9.87it/s]"
        re.compile(r"\[(?:\d+:)?\d{1,2}:\d{2}<(?:(?:\d+:)?\d{1,2}:\d{2}|\?)(?:,[^\]\n]*)?\]"),
        "[<progress timing>]",
    ),
    ("time of day", re.compile(r"\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<time>"),
    ("rate", re.compile(r"(?:\b\d+(?:\.\d+)?|\?)\s?(?:it/s|s/it)\b"), "<rate>"),
    (
        "duration",
        re.compile(rf"\b\d+(?:\.\d+)?\s?{_UNIT}(?:/(?:step|it|epoch|sample))?\b"),
        "<duration>",
    ),
    ("timeit loops", re.compile(r"\b\d[\d,]* loops? each\b"), "<n> loops each"),
)

_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def mask(text: str) -> str:
    """``text`` with memory addresses, timestamps, durations and rates replaced by placeholders."""
    for _, pattern, placeholder in _MASKS:
        text = pattern.sub(placeholder, text)
    return text


def render_terminal(text: str) -> str:
    """What a notebook front end shows for ``text``: progress-bar redraws resolved.

    ``\\b`` deletes the character before it; on each line, ``\\r`` discards what came before
    it (as JupyterLab does), so only a progress bar's final state remains, however many
    times it was redrawn. ANSI colour codes are removed.
    """
    if "\b" in text:
        kept: list[str] = []
        for char in text:
            if char != "\b":
                kept.append(char)
            elif kept and kept[-1] != "\n":
                kept.pop()
        text = "".join(kept)
    if "\r" in text:
        lines = []
        for line in text.split("\n"):
            parts = [part for part in line.split("\r") if part]
            lines.append(parts[-1] if parts else "")
        text = "\n".join(lines)
    return _ANSI_ESCAPE.sub("", text)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(value)
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _shown(mime: str, value: Any) -> str:
    if mime == _WIDGET_VIEW and isinstance(value, Mapping):
        # A widget's model id is a fresh uuid4 hex in every kernel.
        value = {**value, "model_id": "<model-id>"} if "model_id" in value else value
    return mask(render_terminal(_text(value)))


def normalize_cell(outputs: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    """One code cell's outputs, normalised.

    Kept: stdout (consecutive writes joined, then progress redraws resolved), results and
    displays (their text/plain, or every other representation when there is none; an
    ``nbrepro.metric``'s exact value as well), errors
    (name and value). Dropped: stderr (logs, progress bars and warnings, which repeat with
    timestamps and counts), execution counts, output metadata and transient display ids.
    Masked in what is kept: see :func:`mask`, and widget model ids.
    """
    normalised: list[dict[str, str]] = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            if output.get("name") != "stdout":
                continue
            text = _text(output.get("text", ""))
            if normalised and normalised[-1]["type"] == "stdout":
                normalised[-1]["text"] += text
            else:
                normalised.append({"type": "stdout", "text": text})
        elif kind in ("execute_result", "display_data"):
            data = output.get("data", {})
            shown = {"text/plain": data["text/plain"]} if "text/plain" in data else data
            if METRIC_MIME in data:  # compared exactly, not as its rounded text
                shown = {**shown, METRIC_MIME: data[METRIC_MIME]}
            for mime, value in sorted(shown.items()):
                normalised.append({"type": "result", "mime": mime, "text": _shown(mime, value)})
        elif kind == "error":
            text = f"{output.get('ename')}: {mask(str(output.get('evalue')))}"
            normalised.append({"type": "error", "text": text})
    for entry in normalised:
        if entry["type"] == "stdout":
            entry["text"] = mask(render_terminal(entry["text"]))
    return normalised


def normalize_outputs(notebook: Mapping[str, Any]) -> list[list[dict[str, str]]]:
    """Every code cell's normalised outputs, in order."""
    return [
        normalize_cell(cell.get("outputs", []))
        for cell in notebook["cells"]
        if cell.get("cell_type") == "code"
    ]
