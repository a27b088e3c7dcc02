"""IPython's own draws from the global ``random`` stream, kept off it once nbrepro is loaded.

IPython 9 puts a random tip into the shell's banner (``IPython.core.tips.pick_tip``, which calls
``random.choice``), and ipykernel reads the banner on every ``kernel_info`` request: JupyterLab
sends one each time it connects or reconnects to a kernel, a second browser tab another. Each
one moves a seeded ``random`` stream between two cells, outside any cell, so the same notebook
gives other numbers in JupyterLab than under ``nbrepro run`` (checked with ipykernel 7.4 and
IPython 9.18; IPython 7.34, Colab's, has no tips). No other request ipykernel answers draws
from it (complete, inspect, history, is_complete, comm_info: checked).

The tip is picked once, when nbrepro loads, with the global state put back afterwards, and that
tip is the one every later banner shows: after this, no banner draws anything. Picking once,
in the loading cell's own thread, leaves no window in which another thread's draws could be
undone by putting the state back.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable

_ORIGINAL: Callable[[], str] | None = None


def keep_ipython_off_the_global_stream() -> None:
    """Make IPython's banner stop drawing from ``random``; :func:`restore` undoes it."""
    global _ORIGINAL
    shell_module = sys.modules.get("IPython.core.interactiveshell")
    original = getattr(shell_module, "pick_tip", None)
    if _ORIGINAL is not None or original is None or not callable(original):
        return
    saved = random.getstate()
    try:
        tip = str(original())
    except Exception:  # IPython's own picker broke: leave it as it is, never break loading
        return
    finally:
        random.setstate(saved)

    def pick_the_same_tip() -> str:
        return tip

    _ORIGINAL = original
    shell_module.pick_tip = pick_the_same_tip  # type: ignore[union-attr]


def restore() -> None:
    """Put IPython's own tip picker back (``%unload_ext nbrepro``)."""
    global _ORIGINAL
    shell_module = sys.modules.get("IPython.core.interactiveshell")
    if _ORIGINAL is not None and shell_module is not None:
        shell_module.pick_tip = _ORIGINAL  # type: ignore[attr-defined]
    _ORIGINAL = None
