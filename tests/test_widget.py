"""The status widget's Python side: a real, comm-less StatusWidget and a real InteractiveShell.

What the browser shows is tested in tests/browser/; here, the synced state, its updates after
each cell, the listener's life cycle and the text/HTML fallbacks in the display bundle.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import sys
import weakref
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

import nbrepro
from nbrepro import _panel
from nbrepro._findings import Finding, Severity
from nbrepro._session import session

ROOT = Path(__file__).resolve().parent.parent
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# Trips NBR401 (an error: a seed made from the clock) and NBR403 (a warning: an unsorted
# directory listing), both found by the audit's static look at the cell.
TRIPPING_CELL = "import os, random, time\nrandom.seed(time.time())\nfiles = os.listdir('.')"


@pytest.fixture
def widget_module() -> Iterator[Any]:
    """nbrepro._widget (skips without anywidget); drops the listeners a failed test left."""
    pytest.importorskip("anywidget")
    from nbrepro import _widget

    listeners = list(session().listeners)
    yield _widget
    if _widget._SHARED is not None:
        _widget._SHARED.close()
        _widget._SHARED = None
    session().listeners[:] = listeners


def cell(ip: InteractiveShell, code: str, cell_id: str | None = None) -> None:
    """Run ``code`` as a notebook cell would, failing on errors."""
    ip.run_cell(code, store_history=True, cell_id=cell_id).raise_error()


def test_state_holds_seed_frameworks_settings_and_findings(
    shell: InteractiveShell, widget_module: Any
) -> None:
    """The synced `status` is the session's: seed and source, frameworks, options, findings."""
    cell(shell, "%repro_seed 42 --deterministic --threads 2")
    cell(shell, TRIPPING_CELL)
    state = widget_module.StatusWidget().status
    assert (state["seed"], state["seed_source"]) == (42, "user")
    assert (state["deterministic"], state["per_cell"], state["threads"]) == ("warn", False, 2)
    frameworks = {f["name"]: f for f in state["frameworks"]}
    assert frameworks["random"] == {
        "name": "random",
        "version": sys.version.split()[0],
        "seeded": True,
    }
    # Every framework nbrepro seeds that is installed here (and only those): a green dot
    # promises seeding on import, so a framework that cannot be imported gets none.
    installed = {n for n in ("numpy", "torch", "tensorflow", "keras", "jax") if find_spec(n)}
    assert frameworks.keys() == {"random", *installed}
    assert all(f["seeded"] for f in frameworks.values())
    findings = {f["code"]: f for f in state["findings"]}
    assert findings["NBR401"]["severity"] == "error"
    assert "time.time()" in findings["NBR401"]["message"]
    assert findings["NBR403"]["fix"].startswith("sort the result")
    assert state == nbrepro.status().to_dict() == json.loads(json.dumps(state))


def test_findings_are_most_severe_first(shell: InteractiveShell, widget_module: Any) -> None:
    """Errors, then warnings, then information, whatever order they were found in."""
    cell(shell, "%repro_seed 1")
    session().findings.extend(
        [
            Finding("NBR901", Severity.INFO, "for information", "nothing to do"),
            Finding("NBR902", Severity.ERROR, "an error", "fix it"),
        ]
    )
    cell(shell, TRIPPING_CELL)
    severities = [f["severity"] for f in widget_module.StatusWidget().status["findings"]]
    assert "info" in severities and "error" in severities
    assert severities == sorted(severities, key=lambda s: Severity(s).rank)


def test_unseeded_session_and_auto_seed(shell: InteractiveShell, widget_module: Any) -> None:
    """Before %repro_seed: no seed, nothing seeded; after `%repro_seed`: auto-assigned."""
    widget = widget_module.StatusWidget()
    assert widget.status["seed"] is None
    assert not any(f["seeded"] for f in widget.status["frameworks"])
    cell(shell, "%repro_seed")
    assert widget.status["seed"] == nbrepro.status().seed
    assert widget.status["seed_source"] == "auto"


def test_updates_after_every_cell(shell: InteractiveShell, widget_module: Any) -> None:
    """Each cell run through the shell refreshes the state, with the cell seed in per-cell mode."""
    widget = widget_module.StatusWidget()
    changes: list[Any] = []
    widget.observe(changes.append, names="status")
    cell(shell, "%repro_seed 5 --per-cell")
    assert (widget.status["seed"], widget.status["per_cell"]) == (5, True)
    cell(shell, "x = 1", cell_id="abc")
    assert widget.status["last_cell"] == {
        "seed": nbrepro.derive_seed("cell", "abc"),
        "cell": "abc",
        "from_cell_id": True,
    }
    cell(shell, "y = 2", cell_id="def")
    assert widget.status["last_cell"]["seed"] == nbrepro.derive_seed("cell", "def")
    assert len(changes) == 3


def test_close_unsubscribes_and_frees_the_widget(
    shell: InteractiveShell, widget_module: Any
) -> None:
    """A closed widget leaves the session's listeners and is not kept alive by nbrepro."""
    before = len(session().listeners)
    widget = widget_module.StatusWidget()
    assert len(session().listeners) == before + 1
    widget.close()
    assert len(session().listeners) == before
    cell(shell, "%repro_seed 3")
    assert widget.status["seed"] is None
    alive = weakref.ref(widget)
    del widget
    gc.collect()
    assert alive() is None


def test_listener_holds_its_widget_weakly(widget_module: Any) -> None:
    """A widget dropped without close() is not kept by the session: its listener leaves."""
    refreshed: list[int] = []

    class Widget:
        def refresh(self) -> None:
            refreshed.append(1)

    widget = Widget()
    listener = widget_module._Refresh(widget)
    session().listeners.append(listener)
    session().notify()
    assert refreshed == [1]
    del widget
    gc.collect()
    session().notify()
    assert refreshed == [1] and listener not in session().listeners


def test_bundle_has_widget_view_and_text_and_html_fallbacks(
    shell: InteractiveShell, widget_module: Any
) -> None:
    """Displayed, the widget brings its view plus text/plain and text/html summaries."""
    cell(shell, "%repro_seed 42 --deterministic")
    session().findings.append(
        Finding("NBR999", Severity.WARNING, "<script>alert(1)</script> & co", "do <this>")
    )
    widget = widget_module.StatusWidget()
    data, _ = shell.display_formatter.format(widget)
    assert data[WIDGET_MIME]["model_id"] == widget.model_id
    assert data["text/plain"] == str(nbrepro.status())
    assert "seed 42 (given)" in data["text/plain"]
    page = data["text/html"]
    assert "seed <b>42</b> (given)" in page and "deterministic: warn" in page
    assert "<code>NBR999</code>" in page and "do &lt;this&gt;" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page


def test_terminal_ipython_shows_the_summary(shell: InteractiveShell, capsys: Any) -> None:
    """No kernel, no widget: %repro_status shows the summary, without importing anywidget."""
    cell(shell, "%repro_seed 42")
    capsys.readouterr()
    cell(shell, "%repro_status")
    assert capsys.readouterr().out.startswith("nbrepro: seed 42 (given)")
    panel = _panel.status_panel()
    assert isinstance(panel, _panel.StatusSummary)
    bundle = panel._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert "pip install" not in bundle["text/html"]


def test_kernel_shows_one_shared_widget(
    shell: InteractiveShell, widget_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a kernel, every %repro_status shows the same widget, a new one once it is closed."""
    monkeypatch.setattr(shell, "kernel", object(), raising=False)
    first = _panel.status_panel()
    assert isinstance(first, widget_module.StatusWidget)
    assert _panel.status_panel() is first
    first.close()
    second = _panel.status_panel()
    assert isinstance(second, widget_module.StatusWidget) and second is not first


def test_kernel_without_anywidget_shows_the_summary_and_the_extra(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the widget extra a kernel gets the summary, which names the extra to install."""
    monkeypatch.setattr(shell, "kernel", object(), raising=False)
    monkeypatch.setitem(sys.modules, "anywidget", None)  # makes `import anywidget` fail
    monkeypatch.delitem(sys.modules, "nbrepro._widget", raising=False)
    cell(shell, "%repro_seed 8")
    panel = _panel.status_panel()
    assert isinstance(panel, _panel.StatusSummary)
    page = panel._repr_mimebundle_()["text/html"]
    assert "seed <b>8</b>" in page and "pip install &#x27;nbrepro[widget]&#x27;" in page


def test_summary_html_without_a_seed() -> None:
    """The summary of a fresh session asks for a seed, and says each framework's state."""
    status = nbrepro.status()
    page = _panel.summary_html(status)
    assert "no experiment seed yet" in page and "<code>%repro_seed</code>" in page
    for framework in status.frameworks:
        assert f"({_panel.framework_state(framework)})" in page
        assert _panel.framework_state(framework) in ("not seeded", "not imported")


def test_runtime_nbrepro_started_is_shown() -> None:
    """A runtime started by %repro_restart reaches the widget's state and the summary."""
    from nbrepro._runtime_record import Runtime

    runtime = Runtime("%repro_restart", 0.0, {"PYTHONHASHSEED": "0"})
    status = dataclasses.replace(nbrepro.status(), runtime=runtime)
    state = json.loads(json.dumps(status.to_dict()))
    assert state["runtime"] == {
        "started_by": "%repro_restart",
        "started_at": 0.0,
        "settings": {"PYTHONHASHSEED": "0"},
        "runner": False,
    }
    assert "<th>runtime</th><td>started by %repro_restart" in _panel.summary_html(status)


@pytest.mark.parametrize(
    ("version", "seeded", "state"),
    [
        ("2.13.0", True, "seeded"),
        ("2.13.0", False, "not seeded"),
        (None, True, "seeded on import"),
        (None, False, "not imported"),
    ],
)
def test_framework_states(version: str | None, seeded: bool, state: str) -> None:
    """Imported or not, seeded or not: four words, the same the panel uses."""
    framework = nbrepro.FrameworkStatus(name="torch", version=version, seeded=seeded)
    assert _panel.framework_state(framework) == state
    assert f'"{state}"' in (ROOT / "js" / "status_widget.js").read_text()


def test_load_ext_and_seeding_import_no_widget_library(run_fresh: Any) -> None:
    """`%load_ext nbrepro`, `%repro_seed` and terminal `%repro_status` leave anywidget alone."""
    (out,) = run_fresh(
        """
        import sys
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "nbrepro")
        ip.run_cell("%repro_seed 1 --deterministic")
        ip.run_cell("%repro_status")
        print(sorted(m for m in ("anywidget", "ipywidgets") if m in sys.modules))
        """
    )
    assert out.strip().splitlines()[-1] == "[]"


def test_front_end_ships_with_the_package() -> None:
    """The widget loads js/status_widget.{js,css} through the package's _static folder."""
    static = ROOT / "nbrepro" / "_static"
    for name in ("status_widget.js", "status_widget.css"):
        assert (static / name).read_bytes() == (ROOT / "js" / name).read_bytes()
    source = (ROOT / "js" / "status_widget.js").read_text()
    assert "export default { render }" in source
    assert "innerHTML" not in source  # findings quote user code: text nodes only
