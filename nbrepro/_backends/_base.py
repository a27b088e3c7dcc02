"""The interface every seeding backend implements.

A backend adapts one framework: it seeds it, switches its determinism settings, fixes its
thread counts, and reads and writes its RNG state. It never imports its framework: every
method is only called once ``module`` is already in ``sys.modules``.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from nbrepro._config import Determinism
    from nbrepro._findings import Finding
    from nbrepro._session import Session


class Backend:
    """Base class of seeding backends; subclasses override what their framework supports.

    Third parties register a subclass under the ``nbrepro.backends`` entry point group.
    """

    #: Name shown to users, also the key of the backend's state in ``capture_state()``.
    name: ClassVar[str] = ""
    #: The top-level module whose presence in ``sys.modules`` means the framework is in use.
    module: ClassVar[str] = ""
    #: The distribution to read the version from, when it differs from ``module``.
    distribution: ClassVar[str | None] = None

    def loaded(self) -> bool:
        """Whether the user's process has imported the framework."""
        # None in sys.modules marks a module whose import is blocked, not a loaded one.
        return sys.modules.get(self.module) is not None

    def framework(self) -> ModuleType:
        """The imported framework module (only call when :meth:`loaded`)."""
        return sys.modules[self.module]

    def version(self) -> str:
        """The framework's version, or ``"unknown"``."""
        found = getattr(sys.modules.get(self.module), "__version__", None)
        if isinstance(found, str):
            return found
        from importlib import metadata

        try:
            return metadata.version(self.distribution or self.module)
        except metadata.PackageNotFoundError:
            return "unknown"

    def install(self, session: Session) -> None:
        """Hook unseeded constructors so they draw from the session's seed stream."""

    def uninstall(self) -> None:
        """Undo :meth:`install`."""

    def seed(self, seed: int) -> None:
        """Seed every global generator of the framework."""
        raise NotImplementedError

    def apply_determinism(self, mode: Determinism, session: Session) -> list[Finding]:
        """Switch the framework's determinism settings; return what could not take effect."""
        return []

    def restore_determinism(self) -> None:
        """Put back the settings :meth:`apply_determinism` found."""

    def apply_threads(self, threads: int) -> list[Finding]:
        """Fix intra/inter-op thread counts; return what could not take effect."""
        return []

    def get_state(self) -> Any:
        """The framework's complete RNG state, as plain picklable data."""
        raise NotImplementedError

    def set_state(self, state: Any) -> None:
        """Restore a state returned by :meth:`get_state`."""
        raise NotImplementedError
