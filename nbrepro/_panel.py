"""What ``%repro_status`` shows: the live status widget, or a text/HTML summary without one.

The widget (:mod:`nbrepro._widget`) needs anywidget and ipywidgets, the optional ``widget``
extra, and is imported only here, when the panel is first shown. The summary built here is
also the widget's own fallback inside its display bundle, for front ends that cannot show
widgets: terminal IPython, nbconvert output, notebook viewers.
"""

from __future__ import annotations

import html
from typing import Any

from IPython import get_ipython

from nbrepro import _api
from nbrepro._status import FrameworkStatus, Status, generator_count, seed_source_words

_INSTALL_HINT = "For the live panel, which updates after every cell: pip install 'nbrepro[widget]'"


def status_panel() -> Any:
    """The object ``%repro_status`` displays.

    In a kernel with anywidget installed, the shared :class:`~nbrepro._widget.StatusWidget`;
    in terminal IPython (no kernel, so no widget front end) or without anywidget, a
    :class:`StatusSummary` of the status now.
    """
    if getattr(get_ipython(), "kernel", None) is None:
        return StatusSummary(_api.status())
    try:
        from nbrepro._widget import shared_widget
    except ImportError:  # the optional "widget" extra is not installed
        return StatusSummary(_api.status(), note=_INSTALL_HINT)
    return shared_widget()


class StatusSummary:
    """A status displayed as text/plain and text/html: the panel where no widget can be."""

    def __init__(self, status: Status, note: str | None = None) -> None:
        self.status = status
        self.note = note

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return summary_bundle(self.status, self.note)


def summary_bundle(status: Status, note: str | None = None) -> dict[str, str]:
    """``status`` as text/plain (its ``str``) and text/html; ``note`` is added to the HTML."""
    return {"text/plain": str(status), "text/html": summary_html(status, note)}


def framework_state(framework: FrameworkStatus) -> str:
    """``"seeded"``, ``"not seeded"``, ``"seeded on import"`` or ``"not imported"``."""
    if framework.imported:
        return "seeded" if framework.seeded else "not seeded"
    return "seeded on import" if framework.seeded else "not imported"


def summary_html(status: Status, note: str | None = None) -> str:
    """``status`` as a small HTML fragment: plain markup, no scripts, readable unstyled."""
    esc = html.escape
    if status.seed is None:
        head = "no experiment seed yet; run <code>%repro_seed</code>"
    else:
        how = seed_source_words(status.seed_source)
        head = f"seed <b>{status.seed}</b> ({how})"
    threads = "default" if status.threads is None else str(status.threads)
    rows = [
        (
            "frameworks",
            ", ".join(
                esc(" ".join(filter(None, (f.name, f.version))) + f" ({framework_state(f)})")
                for f in status.frameworks
            ),
        ),
        (
            "determinism",
            f"deterministic: {esc(status.deterministic)} | per-cell: "
            f"{'on' if status.per_cell else 'off'} | threads: {threads}",
        ),
    ]
    if status.last_cell is not None:
        cell = status.last_cell
        rows.append(("cell seed", f"{cell.seed} (cell <code>{esc(cell.cell)}</code>)"))
    if status.runtime is not None:
        rows.append(("runtime", esc(str(status.runtime))))
    if status.unseeded_generators or status.library_generators:
        rows.append(("generators", f"made without a seed: {generator_count(status)}"))
    parts = [f'<div class="nbrepro-summary"><p><b>nbrepro</b>: {head}</p><table>']
    parts += [f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows]
    parts.append("</table>")
    if status.findings:
        parts.append(
            "<table><thead><tr><th>code</th><th>severity</th><th>finding</th><th>fix</th>"
            "</tr></thead><tbody>"
        )
        parts += [
            f"<tr><td><code>{esc(f.code)}</code></td><td>{esc(f.severity.value)}</td>"
            f"<td>{esc(f.message)}</td><td>{esc(f.fix)}</td></tr>"
            for f in status.findings
        ]
        parts.append("</tbody></table>")
    else:
        parts.append("<p>No findings.</p>")
    if note:
        parts.append(f"<p><i>{esc(note)}</i></p>")
    parts.append("</div>")
    return "".join(parts)
