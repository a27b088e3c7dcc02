"""The output normaliser: masks what varies between identical runs, keeps every result."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from nbrepro._normalize import mask, normalize_outputs


def test_masks_addresses_timestamps_and_durations() -> None:
    """Run-specific text becomes placeholders; numbers that are results stay."""
    text = "<Net at 0x7f3a2b1c9d10> 2026-11-23T03:02:21.5Z took 12.5s, 3ms/step; loss 0.125"
    assert mask(text) == (
        "<Net at 0x<address>> <timestamp> took <duration>, <duration>; loss 0.125"
    )


def test_keeps_results_and_drops_run_noise() -> None:
    """stdout and results stay; stderr, counts and metadata go; stdout writes are joined."""
    cell = new_code_cell("x", execution_count=7)
    cell.outputs = [
        new_output("stream", name="stdout", text="epoch 0: "),
        new_output("stream", name="stdout", text="loss 0.5\n"),
        new_output("stream", name="stderr", text="W1123 03:02 warning at 0x7f00aa11bb22\n"),
        new_output("execute_result", data={"text/plain": "42"}, execution_count=7),
        new_output("error", ename="ValueError", evalue="bad", traceback=[]),
    ]
    notebook = new_notebook(cells=[cell, nbformat.v4.new_markdown_cell("text")])
    assert normalize_outputs(notebook) == [
        [
            {"type": "stdout", "text": "epoch 0: loss 0.5\n"},
            {"type": "result", "mime": "text/plain", "text": "42"},
            {"type": "error", "text": "ValueError: bad"},
        ]
    ]


def test_different_results_stay_different() -> None:
    """Two runs that computed different numbers do not normalise to the same thing."""
    a = new_code_cell("x", outputs=[new_output("stream", name="stdout", text="loss 0.51\n")])
    b = new_code_cell("x", outputs=[new_output("stream", name="stdout", text="loss 0.52\n")])
    assert normalize_outputs(new_notebook(cells=[a])) != normalize_outputs(new_notebook(cells=[b]))
