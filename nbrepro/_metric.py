"""Named scalar results: ``nbrepro.metric("val_accuracy", acc)``.

A metric is shown like any output (``val_accuracy = 0.9312``) and also carried, exactly, in a
dedicated MIME type of the cell's display data, so that runners (``nbrepro run``, ``nbrepro
sweep``) read it back from the executed notebook without parsing text.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from nbrepro.errors import InvalidOptionError

#: The MIME type of a metric in a cell's display data: ``{"name": str, "value": float}``.
METRIC_MIME = "application/vnd.nbrepro.metric+json"

_MAX_NAME = 200


def validate_metric(name: object, value: object) -> tuple[str, float]:
    """``(name, value)`` as a metric, or :class:`InvalidOptionError` naming what is wrong.

    The name is a non-empty one-line string of at most 200 characters; the value is a finite
    real number (an ``int``, a ``float``, a NumPy scalar, a one-element array or tensor).
    """
    if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME:
        raise InvalidOptionError(
            f"invalid metric name {name!r}: a metric name is a non-empty string of at most "
            f"{_MAX_NAME} characters"
        )
    if "\n" in name or "\r" in name:
        raise InvalidOptionError(f"invalid metric name {name!r}: it must fit on one line")
    number = _as_float(value)
    if number is None:
        raise InvalidOptionError(
            f"invalid value for metric {name!r}: {_shown(value)} is not a real number "
            "(an int, a float, or a one-element array or tensor)"
        )
    if not math.isfinite(number):
        raise InvalidOptionError(
            f"invalid value for metric {name!r}: {number!r} is not a finite number"
        )
    return name, number


def _as_float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    # NumPy scalars and arrays, torch and TensorFlow tensors with one element.
    item = getattr(value, "item", None)
    size = getattr(value, "size", None)
    if callable(size):  # torch: size() is a method; numel() counts the elements
        numel = getattr(value, "numel", None)
        size = numel() if callable(numel) else None
    if callable(item) and size in (None, 1):
        try:
            scalar = item()
        except (TypeError, ValueError):
            return None
        if isinstance(scalar, numbers.Real) and not isinstance(scalar, bool):
            return float(scalar)
    return None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def metric_bundle(name: str, value: float) -> dict[str, Any]:
    """The display data of one metric: plain text for people, the metric MIME for runners."""
    return {"text/plain": f"{name} = {value:.6g}", METRIC_MIME: {"name": name, "value": value}}


def metric(name: str, value: Any) -> float:
    """Report a named scalar result of the notebook, such as a validation accuracy.

    Shows ``name = value`` under the cell and carries the exact value in the
    ``application/vnd.nbrepro.metric+json`` MIME type, where ``nbrepro run`` lists it and
    ``nbrepro sweep`` collects it across seeds. Outside IPython it prints the line.

    Returns:
        The value as a float.

    Raises:
        InvalidOptionError: an empty or multi-line name, or a value that is not a finite
            real number (``nan``, ``inf``, a string, a list, a tensor of several elements).
    """
    checked_name, number = validate_metric(name, value)
    bundle = metric_bundle(checked_name, number)
    if "IPython" in sys.modules:
        from IPython import get_ipython

        if get_ipython() is not None:
            from IPython.display import display

            display(bundle, raw=True)  # type: ignore[no-untyped-call]
            return number
    print(bundle["text/plain"])
    return number


def notebook_metrics(cells: Iterable[Mapping[str, Any]]) -> dict[str, list[float]]:
    """Every metric reported in an executed notebook's outputs: name -> values, in order.

    Outputs that carry the metric MIME type but not a valid metric (a hand-edited file) are
    ignored rather than trusted.
    """
    found: dict[str, list[float]] = {}
    for cell in cells:
        for output in cell.get("outputs", []) or []:
            data = output.get("data") if isinstance(output, Mapping) else None
            payload = data.get(METRIC_MIME) if isinstance(data, Mapping) else None
            if not isinstance(payload, Mapping):
                continue
            try:
                name, number = validate_metric(payload.get("name"), payload.get("value"))
            except InvalidOptionError:
                continue
            found.setdefault(name, []).append(number)
    return found
