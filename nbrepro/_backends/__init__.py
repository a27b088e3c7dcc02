"""The registry of seeding backends: nbrepro's own, then any registered by entry point.

A third-party package adds a backend for its framework by exposing a
:class:`~nbrepro._backends._base.Backend` subclass under the ``nbrepro.backends`` entry
point group, e.g. in its ``pyproject.toml``::

    [project.entry-points."nbrepro.backends"]
    myframework = "myframework.nbrepro_backend:MyFrameworkBackend"
"""

from __future__ import annotations

import warnings

from nbrepro._backends._base import Backend
from nbrepro._backends.keras import KerasBackend
from nbrepro._backends.numpy import NumpyBackend
from nbrepro._backends.python_random import PythonRandomBackend
from nbrepro._backends.tensorflow import TensorflowBackend
from nbrepro._backends.torch import TorchBackend

__all__ = ["ENTRY_POINT_GROUP", "Backend", "load_backends"]

ENTRY_POINT_GROUP = "nbrepro.backends"

# Keras after TensorFlow: keras.utils.set_random_seed reseeds TensorFlow as well.
_BUILTIN: tuple[type[Backend], ...] = (
    PythonRandomBackend,
    NumpyBackend,
    TorchBackend,
    TensorflowBackend,
    KerasBackend,
)


def load_backends() -> list[Backend]:
    """One instance of every backend: the built-in ones, then those from entry points."""
    from importlib import metadata  # not at import time: it costs more than nbrepro itself

    backends = [cls() for cls in _BUILTIN]
    names = {b.name for b in backends}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = entry_point.load()
        except Exception as error:  # a broken plug-in must not break seeding
            warnings.warn(
                f"nbrepro: could not load backend {entry_point.value!r}: {error}",
                stacklevel=2,
            )
            continue
        if isinstance(cls, type) and issubclass(cls, Backend) and cls.name not in names:
            backends.append(cls())
            names.add(cls.name)
    return backends
