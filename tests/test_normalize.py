"""The output normaliser: masks what varies between identical runs, keeps every result."""

from __future__ import annotations

from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from nbrepro._normalize import _MASKS, mask, normalize_cell, normalize_outputs, render_terminal


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


#: (mask name, text, masked text): at least one case per mask in nbrepro._normalize.
MASK_CASES = [
    (
        "nbrepro runtime",
        "  runtime: started by nbrepro rerun at 2026-11-29 22:13:34 UTC; process-start settings",
        "  runtime: started by <command> at <timestamp> UTC; process-start settings",
    ),
    ("address", "<Net object at 0x7f3a2b1c9d10>", "<Net object at 0x<address>>"),
    ("timestamp", "2026-11-23 03:02:21,123 INFO start", "<timestamp> INFO start"),
    ("ctime", "started Mon Nov 23 03:02:21 2026.", "started <timestamp>."),
    ("time of day", "[03:02:21] epoch 1", "[<time>] epoch 1"),
    (
        "progress timing",
        "100%|██████████| 50/50 [00:01<00:00, 36.71it/s]",
        "100%|██████████| 50/50 [<progress timing>]",
    ),
    ("rate", "throughput 12.5 it/s, 0.08s/it", "throughput <rate>, <rate>"),
    (
        "duration",
        "CPU times: user 1.46 ms, sys: 12 µs, total: 1.47 ms\nWall time: 2.1 s",
        "CPU times: user <duration>, sys: <duration>, total: <duration>\nWall time: <duration>",
    ),
    (
        "timeit loops",
        "1.23 µs ± 4.5 ns per loop (mean ± std. dev. of 7 runs, 1,000,000 loops each)",
        "<duration> ± <duration> per loop (mean ± std. dev. of 7 runs, <n> loops each)",
    ),
]


@pytest.mark.parametrize(("name", "text", "expected"), MASK_CASES)
def test_each_mask(name: str, text: str, expected: str) -> None:
    """Every named mask replaces what varies between runs and nothing around it."""
    assert name in {mask_name for mask_name, _, _ in _MASKS}
    assert mask(text) == expected


def test_every_mask_is_tested() -> None:
    """A new mask comes with a case in test_each_mask."""
    assert {name for name, _, _ in _MASKS} == {name for name, _, _ in MASK_CASES}


@pytest.mark.parametrize(
    "text",
    [
        "seconds since the epoch: 1795404899.1166382",  # time.time() is a result that differs
        "run id 3f2b8c1e-9d4a-4c6b-8e2f-1a2b3c4d5e6f",  # uuid4(): to be flagged, not hidden
        "weights sha256: 9f86d081884c7d65",
        "loss 0.125 after 12 epochs, 3 steps",
        "12:30",  # a ratio, not a time of day
    ],
)
def test_results_are_not_masked(text: str) -> None:
    """Numbers and ids that are what a cell computed stay as they are."""
    assert mask(text) == text


def test_progress_redraws_resolve_to_the_final_state() -> None:
    """tqdm's \\r redraws and Keras's \\b/\\r redraws with ANSI bold leave only the last frame."""
    tqdm = "  0%|          | 0/50 [00:00<?, ?it/s]\r 40%|████      | 20/50 [00:00<00:01, 29.1it/s]"
    tqdm += "\r100%|██████████| 50/50 [00:01<00:00, 36.71it/s]\n"
    assert render_terminal(tqdm) == "100%|██████████| 50/50 [00:01<00:00, 36.71it/s]\n"
    keras = "Epoch 1/2\n\x1b[1m 1/16\x1b[0m ━━ \x1b[1m5s\x1b[0m 350ms/step - loss: 0.70"
    keras += "\b" * 40 + "\r\x1b[1m16/16\x1b[0m ━━━━ \x1b[1m0s\x1b[0m 2ms/step - loss: 0.6931\n"
    cell = new_code_cell("fit", outputs=[new_output("stream", name="stdout", text=keras)])
    (outputs,) = normalize_outputs(new_notebook(cells=[cell]))
    assert outputs == [
        {"type": "stdout", "text": "Epoch 1/2\n16/16 ━━━━ <duration> <duration> - loss: 0.6931\n"}
    ]


def test_progress_bars_with_different_numbers_of_redraws_compare_equal() -> None:
    """A slower run redraws a bar more often; its final frame is what counts."""
    final = "\r100%|██████████| 2/2 [00:00<00:00, 9.1it/s]\n"
    fast = [" 50%|█████     | 1/2 [00:00<00:00]", final]
    slow = [
        "  0%|          | 0/2 [00:00<?, ?it/s]",
        "\r 50%|█████     | 1/2",
        " [00:01<00:01]",
        final,
    ]
    a = new_code_cell("x", outputs=[new_output("stream", name="stdout", text=t) for t in fast])
    b = new_code_cell("x", outputs=[new_output("stream", name="stdout", text=t) for t in slow])
    assert normalize_outputs(new_notebook(cells=[a])) == normalize_outputs(new_notebook(cells=[b]))


def test_widget_model_ids_are_masked() -> None:
    """A widget display's model id is a fresh uuid in every kernel; the view is the result."""

    def widget(model_id: str) -> object:
        view = {"model_id": model_id, "version_major": 2, "version_minor": 0}
        output = new_output("display_data", data={"application/vnd.jupyter.widget-view+json": view})
        return new_notebook(cells=[new_code_cell("w", outputs=[output])])

    first = normalize_outputs(widget("0b5c3f6e2a7d4e1f9c8b7a6d5e4f3a2b"))
    assert first == normalize_outputs(widget("9f8e7d6c5b4a39281706f5e4d3c2b1a0"))
    assert "<model-id>" in first[0][0]["text"]


def test_metrics_are_compared_exactly_not_as_their_rounded_text() -> None:
    from nbrepro._metric import metric_bundle

    def cell(value: float) -> list[dict[str, Any]]:
        return [{"output_type": "display_data", "data": metric_bundle("loss", value)}]

    assert (
        metric_bundle("loss", 0.5)["text/plain"] == metric_bundle("loss", 0.5 + 1e-12)["text/plain"]
    )
    assert normalize_cell(cell(0.5)) != normalize_cell(cell(0.5 + 1e-12))
    assert normalize_cell(cell(0.5)) == normalize_cell(cell(0.5))
