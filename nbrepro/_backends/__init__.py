"""The registry of adapters: nbrepro's own, then any registered by entry point.

A third-party package adds an adapter for its framework by exposing a
:class:`nbrepro.adapters.Backend` subclass under the ``nbrepro.backends`` entry point group
(:data:`nbrepro.adapters.ENTRY_POINT_GROUP`), e.g. in its ``pyproject.toml``::

    [project.entry-points."nbrepro.backends"]
    myframework = "myframework_nbrepro:MyFrameworkBackend"
"""

from __future__ import annotations

import os
import pathlib
import sys
import warnings
from functools import lru_cache
from typing import Any

from nbrepro._backends.jax import JaxBackend
from nbrepro._backends.keras import KerasBackend
from nbrepro._backends.numpy import NumpyBackend
from nbrepro._backends.python_random import PythonRandomBackend
from nbrepro._backends.tensorflow import TensorflowBackend
from nbrepro._backends.torch import TorchBackend
from nbrepro.adapters import ENTRY_POINT_GROUP, Backend

__all__ = ["ENTRY_POINT_GROUP", "Backend", "load_backends"]

# Keras after TensorFlow: keras.utils.set_random_seed reseeds TensorFlow as well.
_BUILTIN: tuple[type[Backend], ...] = (
    PythonRandomBackend,
    NumpyBackend,
    TorchBackend,
    TensorflowBackend,
    KerasBackend,
    JaxBackend,
)


def _entry_points(metadata: Any) -> list[Any]:
    # metadata.entry_points() builds a Distribution for every installed package, parses its
    # entry_points.txt and normalises its name (~15 ms for 170 packages, on the first
    # %repro_seed of a kernel). Only the few files that name the group need parsing, and
    # finding them takes one directory listing per sys.path entry; a zip on sys.path is
    # searched by importlib itself.
    header = f"[{ENTRY_POINT_GROUP}]"
    declaring: list[Any] = []
    for folder in dict.fromkeys(sys.path):
        if os.path.isfile(folder):
            declaring.extend(metadata.distributions(path=[folder]))
            continue
        try:
            entries = os.scandir(folder or ".")
        except OSError:
            continue
        with entries:
            for entry in entries:
                if entry.name.endswith((".dist-info", ".egg-info")) and _mentions(entry, header):
                    declaring.append(metadata.PathDistribution(pathlib.Path(entry.path)))
    found: list[Any] = []
    for distribution in declaring:
        found.extend(distribution.entry_points.select(group=ENTRY_POINT_GROUP))
    return found


def _mentions(entry: os.DirEntry[str], header: str) -> bool:
    try:
        with open(os.path.join(entry.path, "entry_points.txt"), encoding="utf-8") as file:
            return header in file.read()
    except OSError:
        return False


def load_backends() -> list[Backend]:
    """A new instance of every adapter: the built-in ones, then those from entry points."""
    return [cls() for cls in _registered()]


@lru_cache(maxsize=1)
def _registered() -> tuple[type[Backend], ...]:
    # Once per process: scanning the entry points reads every installed distribution's
    # metadata (milliseconds), and what is installed does not change under a running kernel.
    from importlib import metadata  # not at import time: it costs more than nbrepro itself

    classes = list(_BUILTIN)
    names = {cls.name for cls in classes}
    for entry_point in _entry_points(metadata):
        try:
            cls = entry_point.load()
        except Exception as error:  # a broken plug-in must not break seeding
            warnings.warn(
                f"nbrepro: could not load adapter {entry_point.value!r}: {error}",
                stacklevel=2,
            )
            continue
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            warnings.warn(
                f"nbrepro: entry point {entry_point.value!r} in group {ENTRY_POINT_GROUP!r} is "
                "not a subclass of nbrepro.adapters.Backend; ignored",
                stacklevel=2,
            )
            continue
        if cls.name not in names:
            classes.append(cls)
            names.add(cls.name)
    return tuple(classes)
