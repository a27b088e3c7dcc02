"""The live status panel: an anywidget whose front end is ``js/status_widget.js``.

Needs anywidget and ipywidgets (the optional ``widget`` extra); only
:func:`nbrepro._panel.status_panel` imports this module, when ``%repro_status`` runs.
Works with anywidget 0.9 + ipywidgets 7.7 (Colab) and current anywidget + ipywidgets 8.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from nbrepro import _api
from nbrepro._panel import summary_bundle
from nbrepro._session import session

# Links to js/ in a checkout; the files themselves in a built wheel or sdist.
_STATIC = Path(__file__).parent / "_static"

# The widget every %repro_status shows a view of (shared_widget).
_SHARED: StatusWidget | None = None


class StatusWidget(anywidget.AnyWidget):
    """The status panel: seed, frameworks, determinism settings, cell seed and findings.

    It refreshes itself after every cell, through a listener on the session that holds it
    only weakly, until it is closed.
    """

    # The files' text, not their paths: anywidget watches a path through a signal whose
    # callback holds every instance for good, so no widget could ever be freed.
    _esm = (_STATIC / "status_widget.js").read_text(encoding="utf-8")
    _css = (_STATIC / "status_widget.css").read_text(encoding="utf-8")
    #: :meth:`nbrepro.Status.to_dict` of the session, as of the last cell
    status = traitlets.Dict().tag(sync=True)

    # ipywidgets 7 (Colab's) displays a widget through _ipython_display_, which IPython
    # prefers to _repr_mimebundle_ and which would drop the text fallbacks below. None makes
    # IPython use _repr_mimebundle_, as ipywidgets 7 itself does for a closed widget;
    # ipywidgets 8 has no _ipython_display_.
    _ipython_display_ = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(status=_api.status().to_dict(), **kwargs)
        self._listener = _Refresh(self)
        session().listeners.append(self._listener)

    def refresh(self) -> None:
        """Show the status now (the session calls this after every cell)."""
        self.status = _api.status().to_dict()

    def close(self) -> None:
        """Stop refreshing, and close the widget and its views."""
        self._listener.remove()
        super().close()

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """anywidget's bundle, with the text/plain and text/html summary beside the view.

        A front end with a widget manager shows the panel; terminal IPython, nbconvert and
        notebook viewers show the summary of the status when it was displayed.
        """
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        status = _api.status()
        self.status = status.to_dict()
        return {**data, **summary_bundle(status)}, metadata


class _Refresh:
    """A session listener that refreshes a widget without keeping it alive."""

    def __init__(self, widget: StatusWidget) -> None:
        self._widget = weakref.ref(widget)

    def __call__(self) -> None:
        widget = self._widget()
        if widget is None:
            self.remove()
        else:
            widget.refresh()

    def remove(self) -> None:
        """Unsubscribe from the session."""
        listeners = session().listeners
        if self in listeners:
            listeners.remove(self)


def shared_widget() -> StatusWidget:
    """The kernel's status widget, made on first use and again after it was closed.

    Every ``%repro_status`` shows a view of this one widget, so running that cell again and
    again adds views, not widgets that each refresh after every cell.
    """
    global _SHARED
    if _SHARED is None or _SHARED.comm is None:
        _SHARED = StatusWidget()
    return _SHARED
