"""The adapter contract: how nbrepro drives one framework, and how to add a framework.

An adapter is a :class:`Backend` subclass, one per framework: nbrepro's own (``random``, NumPy,
torch, TensorFlow, Keras, JAX) and third parties'. The JAX adapter uses nothing but this module,
as a third-party one would: a package exposes its subclass under the :data:`ENTRY_POINT_GROUP`
entry point group and nbrepro loads it with its own (README, "Adding a framework")::

    [project.entry-points."nbrepro.backends"]
    myframework = "myframework_nbrepro:MyFrameworkBackend"

What nbrepro calls, and when:

- while the framework is not imported: only :meth:`Backend.loaded`,
  :meth:`Backend.installed_version` and :meth:`Backend.process_start_settings`; none of them
  may import it (an import hook activates the adapter the moment the user imports it);
- once the user imported it: :meth:`Backend.install`, :meth:`Backend.apply_threads`,
  :meth:`Backend.apply_determinism`, :meth:`Backend.seed` (in that order, then :meth:`~Backend.seed`
  again for each per-cell reseed), :meth:`Backend.audit` after every cell,
  :meth:`Backend.get_state` / :meth:`Backend.set_state`, :meth:`Backend.environment_facts` for
  the record, and the undo methods when the session is reset.

An adapter reaches the session only through :class:`SeedContext`, and reports what it could
not fix as :class:`~nbrepro.Finding` objects: returned from ``apply_*`` and :meth:`Backend.audit`,
or passed to :meth:`SeedContext.report` for what happens later (an op that ran).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any, ClassVar, Protocol, runtime_checkable

from nbrepro._config import Config, Determinism, SeedSource
from nbrepro._findings import Finding, Severity, restart_fix
from nbrepro._process_settings import start_environment

__all__ = [
    "ENTRY_POINT_GROUP",
    "Backend",
    "Config",
    "Determinism",
    "Finding",
    "SeedContext",
    "SeedSource",
    "Severity",
    "distribution_version",
    "restart_fix",
    "start_environment",
]

#: The entry point group third-party adapters are registered under.
ENTRY_POINT_GROUP = "nbrepro.backends"


@runtime_checkable
class SeedContext(Protocol):
    """What an adapter may use of the session that drives it.

    nbrepro's session implements it; adapters must not rely on anything else of it.
    """

    @property
    def seeded(self) -> bool:
        """Whether an experiment seed is in force (generators made now should be seeded)."""
        ...

    @property
    def current_cell(self) -> str | None:
        """The label of the cell running now (``"In [3]"``), when known."""
        ...

    @property
    def says_findings(self) -> bool:
        """Whether a finding :meth:`report` adds now is said on one line under the cell that
        is running (an IPython shell with nbrepro loaded, not ``--quiet``): then an adapter
        need not show its framework's own longer message for the same thing."""
        ...

    def stream_seed(self, kind: str) -> int:
        """The next seed for a ``kind`` generator the user made without one; recorded.

        ``kind`` names the constructor (``"numpy.default_rng"``); each kind has its own stream
        derived from the experiment seed (or the cell's, in per-cell mode).
        """
        ...

    def track(self, generator: Any) -> None:
        """Remember the generator just seeded by :meth:`stream_seed`, for ``capture_state``.

        The generator must be weakly referenceable and expose ``bit_generator.state`` (a NumPy
        ``Generator``), ``get_state()``/``set_state()`` (``RandomState``),
        ``getstate()``/``setstate()`` (``random``) or a settable ``state`` (a bit generator).
        """
        ...

    def report(self, findings: Iterable[Finding]) -> None:
        """Add findings that arose after the ``apply_*`` calls (an op that ran, say)."""
        ...

    def user_seeded(self, names: tuple[str, ...], call: str) -> None:
        """The user's own ``call`` just seeded the global generators of the adapters ``names``.

        nbrepro keeps the user's seed: it stops reseeding them before each cell until the next
        ``%repro_seed``, and in per-cell mode says once what that costs (NBR304).
        """
        ...


class Backend:
    """Base class of adapters; a subclass overrides what its framework supports.

    Every method has a safe default except :meth:`seed`, :meth:`get_state` and
    :meth:`set_state`. Only :meth:`loaded`, :meth:`installed_version` and
    :meth:`process_start_settings` are called while the framework is not imported; the other
    methods may use :meth:`framework`. Adapters are instantiated with no arguments, once per
    session.
    """

    #: Name shown to users, also the key of the adapter's state in ``capture_state()``.
    name: ClassVar[str] = ""
    #: The top-level module whose presence in ``sys.modules`` means the framework is in use.
    module: ClassVar[str] = ""
    #: The distribution to read the version from, when it differs from ``module``.
    distribution: ClassVar[str | None] = None

    def loaded(self) -> bool:
        """Whether the user's process has imported the framework."""
        # None in sys.modules marks a module whose import is blocked, not a loaded one.
        return sys.modules.get(self.module) is not None

    def framework(self) -> Any:
        """The imported framework module (only call when :meth:`loaded`).

        Typed ``Any``: what an adapter reads and sets on it is the framework's own business.
        """
        return sys.modules[self.module]

    def version(self) -> str:
        """The imported framework's version, or ``"unknown"``."""
        found = getattr(sys.modules.get(self.module), "__version__", None)
        if isinstance(found, str):
            return found
        return self.installed_version() or "unknown"

    def installed_version(self) -> str | None:
        """The installed distribution's version from its metadata, or ``None`` if absent.

        Imports nothing: use it to decide process-start settings before the user imports the
        framework.
        """
        return distribution_version(self.distribution or self.module)

    def install(self, session: SeedContext) -> None:
        """Hook constructors that make generators without a seed, so they draw from the stream.

        A hooked constructor calls ``session.stream_seed(kind)`` when ``session.seeded``, and
        ``session.track(generator)`` on the result.
        """

    def uninstall(self) -> None:
        """Undo :meth:`install` (and anything else the adapter changed, such as thread pools)."""

    def seed(self, seed: int) -> None:
        """Seed every global generator of the framework (and nothing of another framework)."""
        raise NotImplementedError

    def apply_determinism(self, mode: Determinism, session: SeedContext) -> list[Finding]:
        """Switch the framework's determinism settings; return what could not take effect.

        ``mode`` is :attr:`Determinism.WARN` (an op without a deterministic implementation
        runs and is reported) or :attr:`Determinism.STRICT` (it raises). Remember what was
        found, for :meth:`restore_determinism`.
        """
        return []

    def restore_determinism(self) -> None:
        """Put back the settings :meth:`apply_determinism` found."""

    def apply_threads(self, threads: int) -> list[Finding]:
        """Fix intra/inter-op thread counts; return what could not take effect."""
        return []

    def get_state(self) -> Any:
        """The framework's complete global RNG state, as plain picklable data."""
        raise NotImplementedError

    def set_state(self, state: Any) -> None:
        """Restore a state returned by :meth:`get_state`."""
        raise NotImplementedError

    def audit(self) -> list[Finding]:
        """Live checks of the framework's switches, run after every cell: keep it cheap.

        For example "deterministic algorithms are off" or "cuDNN autotuning is on". Called
        whether or not a seed is in force.
        """
        return []

    def process_start_settings(
        self, config: Config | None, environ: Mapping[str, str]
    ) -> dict[str, str]:
        """Environment variables only a fresh process can take, for a runtime under ``config``.

        Called while the framework may not be imported, and must not import it (read
        :meth:`installed_version` instead). ``config`` is ``None`` when no seed has been asked
        for yet; ``environ`` is the environment the new process would start with otherwise:
        return the full new value of a variable that holds a list (merge, do not replace the
        user's). ``%repro_restart``, ``nbrepro run`` and Restart-and-Run-All start the new
        process with these.
        """
        return {}

    def environment_facts(self) -> dict[str, Any]:
        """Facts for the record's ``environment`` while the framework is imported.

        JSON types only. The default is the version; adapters add devices, the CUDA build and
        the like, but only what is known without starting anything (no device initialisation).
        """
        return {"version": self.version()}


@cache
def distribution_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or ``None``; imports nothing.

    Cached: the installed version does not change under a running process, and each lookup
    scans ``sys.path`` (about 2 ms).
    """
    from importlib import metadata  # not at import time: it costs more than nbrepro itself

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
