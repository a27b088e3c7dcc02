"""Seeding the user does themselves: noticed, so that nbrepro never overrides it.

While nbrepro seeds, each adapter replaces its framework's public seeding functions
(``random.seed``, ``np.random.seed``, ``torch.manual_seed``, ``tf.random.set_seed``,
``tf.random.set_global_generator``, ``keras.utils.set_random_seed``) with a wrapper that calls
the original and tells the session which frameworks the user's code just seeded. The session
then leaves those generators alone: per-cell reseeding skips them until the next
``%repro_seed`` (see ``Session.user_seeded``).

A call made inside another watched call is part of it: ``keras.utils.set_random_seed(7)``
seeds ``random``, NumPy and TensorFlow through their own (watched) functions, and is reported
once, as itself, for all four. nbrepro's own calls go through :func:`nbrepro_seeding` and are
never the user's.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from nbrepro._findings import USER_SEED_IN_PER_CELL_MODE, Finding, Severity

if TYPE_CHECKING:
    from nbrepro.adapters import SeedContext


class _CallStack(threading.local):
    def __init__(self) -> None:
        self.ours = 0  #: depth of nbrepro's own seeding on this thread
        self.call: str | None = None  #: the outermost watched call the user is making
        self.names: list[str] = []  #: the frameworks that call has seeded so far


_STACK = _CallStack()


@contextlib.contextmanager
def nbrepro_seeding() -> Iterator[None]:
    """Seeding done by nbrepro itself in this block: the watched functions do not report it."""
    _STACK.ours += 1
    try:
        yield
    finally:
        _STACK.ours -= 1


def _describe(label: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    shown = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
    return f"{label}({', '.join(shown)})"


def _short(value: Any) -> str:
    if isinstance(value, int | str | float | bool | type(None)):
        text = repr(value)
        return text if len(text) <= 24 else text[:20] + "..."
    return f"<{type(value).__name__}>"


class SeedingWatch:
    """The wrappers one adapter put over its framework's seeding functions; undone together."""

    def __init__(self) -> None:
        self._replaced: list[tuple[Any, str, Any]] = []
        self._rebound: list[Rebound] = []  #: the user's names bound to a watched function

    @property
    def active(self) -> bool:
        """Whether any function is watched now."""
        return bool(self._replaced)

    def watch(
        self,
        session: SeedContext,
        name: str,
        label: str,
        modules: Iterable[str],
        attribute: str,
        after: Callable[[], None] | None = None,
        aliases: tuple[Any, ...] = (),
    ) -> None:
        """Watch ``attribute`` of each of ``modules`` already imported (the public aliases).

        ``name`` is the adapter the function seeds, ``label`` how the user spells the call
        (``"np.random.seed"``), ``after`` what the adapter does once the user has called it.
        Modules not imported are skipped: watching never imports anything. A call with no
        arguments, or ``None``, reseeds from OS entropy and is not the user's fixed seed.
        Names the notebook bound to the function before (``from numpy.random import seed``),
        or to one of ``aliases`` (what the attribute was before the adapter replaced it), are
        watched too: they are rebound to the same wrapper, and put back by :meth:`undo`.
        """
        original: Any = None
        wrapper: Any = None
        for module_name in modules:
            module = sys.modules.get(module_name)
            found = getattr(module, attribute, None) if module is not None else None
            if found is None:
                continue
            if original is None:
                original = found
                wrapper = _wrap(session, name, label, original, after)
            if found is not original:
                continue
            setattr(module, attribute, wrapper)
            self._replaced.append((module, attribute, original))
        if wrapper is not None:
            replaced = dict.fromkeys((original, *aliases), wrapper)
            self._rebound += rebind_user_names(replaced)

    def undo(self) -> None:
        """Put every original function back."""
        for module, attribute, original in reversed(self._replaced):
            setattr(module, attribute, original)
        self._replaced = []
        restore_user_names(self._rebound)
        self._rebound = []


#: (namespace, name, the value it had, what nbrepro bound it to)
Rebound = tuple[dict[str, Any], str, Any, Any]


def rebind_user_names(replaced: dict[Any, Any]) -> list[Rebound]:
    """Rebind the notebook's global names that hold a key of ``replaced`` to its value.

    ``replaced`` maps functions nbrepro replaced (``torch.seed``) to their replacements, so
    that a name bound before (``from torch import seed``) calls the replacement too. One pass
    over each namespace, matching by identity; :func:`restore_user_names` undoes it.
    """
    by_id = {id(old): (old, new) for old, new in replaced.items()}
    rebound: list[Rebound] = []
    for namespace in _user_namespaces():
        for key, value in list(namespace.items()):
            found = by_id.get(id(value))
            if found is not None and found[0] is value:
                namespace[key] = found[1]
                rebound.append((namespace, key, value, found[1]))
    return rebound


def restore_user_names(rebound: list[Rebound]) -> None:
    """Put back what :func:`rebind_user_names` rebound, unless the user rebound it since."""
    for namespace, key, value, replacement in reversed(rebound):
        if namespace.get(key) is replacement:
            namespace[key] = value


def _user_namespaces() -> list[dict[str, Any]]:
    """The notebook's (or script's) global names: IPython's user namespace and ``__main__``."""
    found: dict[int, dict[str, Any]] = {}
    main = sys.modules.get("__main__")
    if main is not None:
        found[id(main.__dict__)] = main.__dict__
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        found[id(shell.user_ns)] = shell.user_ns
    return list(found.values())


def _wrap(
    session: SeedContext,
    name: str,
    label: str,
    original: Any,
    after: Callable[[], None] | None,
) -> Callable[..., Any]:
    @functools.wraps(original)
    def seeding(*args: Any, **kwargs: Any) -> Any:
        stack = _STACK
        fixed = any(a is not None for a in (*args, *kwargs.values()))
        if stack.ours or not fixed or not session.seeded:
            return original(*args, **kwargs)
        outermost = stack.call is None
        if outermost:
            stack.call, stack.names = _describe(label, args, kwargs), []
        try:
            result = original(*args, **kwargs)
            if name not in stack.names:
                stack.names.append(name)
            if after is not None:
                after()
        finally:
            if outermost:
                call, names = stack.call, stack.names
                stack.call, stack.names = None, []
        if outermost and call is not None and names:
            session.user_seeded(tuple(names), call)
        return result

    return seeding


def user_seed_finding(names: tuple[str, ...], call: str, cell: str | None) -> Finding:
    """NBR304: in per-cell mode, the user's ``call`` in ``cell`` seeded the ``names`` generators."""
    generators = " and ".join(f"{name}'s global generator" for name in names)
    where = f" in {cell}" if cell else ""
    after = f"cells after {cell}" if cell else "later cells"
    pronoun = "it" if len(names) == 1 else "them"
    return Finding(
        USER_SEED_IN_PER_CELL_MODE,
        Severity.WARNING,
        f"{call}{where} seeded {generators}: nbrepro keeps your seed and no longer reseeds "
        f"{pronoun} before each cell, so {after} depend on the order they run in for {generators}",
        "draw from a generator of your own instead of reseeding a global one "
        '(rng = nbrepro.rng("noise"), or np.random.default_rng / torch.Generator seeded with '
        'nbrepro.derive_seed("noise")), or drop --per-cell; %repro_seed again reseeds everything',
    )
