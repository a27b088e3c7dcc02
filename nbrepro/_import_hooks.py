"""Run a callback the moment a given top-level module finishes importing.

This is how a framework imported *after* ``%repro_seed`` is seeded and switched to
deterministic mode without nbrepro importing it itself. A finder on ``sys.meta_path``
notices the import of a watched name, lets the normal machinery find the module, and wraps
its loader so that the callback runs right after the module's code has executed.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

Callback = Callable[[ModuleType], None]
#: Called with the module's name just before its code runs.
BeforeCallback = Callable[[str], None]


# The finder and loader implement the import protocols by duck typing: importlib.abc would
# cost more import time than all of nbrepro.


class _NotifyingLoader:
    """Delegates to the real loader, then calls ``callback`` with the loaded module."""

    def __init__(self, loader: Any, callback: Callback, before: BeforeCallback | None) -> None:
        self._loader = loader
        self._callback = callback
        self._before = before

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The real loader stays visible to the module's own introspection (__loader__).
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        if self._before is not None:
            self._before(module.__name__)
        self._loader.exec_module(module)
        self._callback(sys.modules.get(module.__name__, module))

    def __getattr__(self, name: str) -> object:
        return getattr(self._loader, name)


class PostImportFinder:
    """A meta path finder that reports when a watched top-level module has been imported."""

    def __init__(self) -> None:
        self._callbacks: dict[str, Callback] = {}
        self._before: dict[str, BeforeCallback] = {}
        self._busy = threading.local()

    def watch(self, name: str, callback: Callback, before: BeforeCallback | None = None) -> None:
        """Call ``callback(module)`` after the next import of ``name`` completes.

        And ``before(name)``, if given, just before the module's code starts to run.
        """
        self._callbacks[name] = callback
        if before is None:
            self._before.pop(name, None)
        else:
            self._before[name] = before

    def unwatch(self, name: str) -> None:
        """Stop watching ``name``."""
        self._callbacks.pop(name, None)
        self._before.pop(name, None)

    @property
    def watched(self) -> frozenset[str]:
        """The module names with a pending callback."""
        return frozenset(self._callbacks)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        callback = self._callbacks.get(fullname)
        busy: set[str] = self._busy.__dict__.setdefault("names", set())
        if callback is None or fullname in busy:
            return None
        import importlib.util  # only once a watched framework is being imported

        busy.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            busy.discard(fullname)
        if spec is None or spec.loader is None:
            return None
        before = self._before.get(fullname)
        spec.loader = _NotifyingLoader(spec.loader, callback, before)  # type: ignore[assignment]
        return spec


_FINDER: PostImportFinder | None = None


def finder() -> PostImportFinder:
    """The process-wide finder, installed first on ``sys.meta_path`` on first use."""
    global _FINDER
    if _FINDER is None:
        _FINDER = PostImportFinder()
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    return _FINDER


def remove_finder() -> None:
    """Take the finder off ``sys.meta_path`` and forget every callback."""
    global _FINDER
    if _FINDER is not None:
        if _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)
        _FINDER = None
