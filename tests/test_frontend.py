"""What the JupyterLab extension asks a real kernel (nbrepro._frontend), as js/src/kernel.ts asks.

Silent execute requests with user expressions: a kernel without nbrepro imports nothing and
answers ``None``; one with nbrepro answers the state and the record as JSON; the restart
expression replaces the process with one started with ``PYTHONHASHSEED=0``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from nbrepro._frontend import STARTED_BY
from nbrepro._record import read_record

if TYPE_CHECKING:
    from conftest import Kernel

pytestmark = pytest.mark.kernel

# The expressions js/src/kernel.ts sends, word for word.
_MODULE = "__import__('nbrepro._frontend', fromlist=['_'])"
STATE = f"({_MODULE}.Json({_MODULE}.state()) if 'nbrepro' in __import__('sys').modules else None)"
RECORD = f"({_MODULE}.Json({_MODULE}.record()) if 'nbrepro' in __import__('sys').modules else None)"
RESTART = f"{_MODULE}.Json({_MODULE}.restart(None))"


def restart_with(seed_line: str) -> str:
    """The restart expression for a notebook whose first ``%repro_seed`` line is given."""
    return f"{_MODULE}.Json({_MODULE}.restart({json.dumps(seed_line)}))"


IMPORTED = "'nbrepro' in __import__('sys').modules"


def ask(kernel: Kernel, **expressions: str) -> dict[str, Any]:
    """Evaluate ``expressions`` in a silent request, as the extension does; their values."""
    content = {
        "code": "",
        "silent": True,
        "store_history": False,
        "user_expressions": expressions,
        "allow_stdin": False,
        "stop_on_error": False,
    }
    request = kernel.client.session.msg("execute_request", content)
    kernel.client.shell_channel.send(request)
    reply = kernel.reply(str(request["header"]["msg_id"]))["content"]
    assert reply["status"] == "ok", reply
    values: dict[str, Any] = reply["user_expressions"]
    for name, value in values.items():
        assert value["status"] == "ok", (name, value)
    return values


def test_a_kernel_without_nbrepro_imports_nothing(kernel: Callable[..., Kernel]) -> None:
    """State and record are None, nbrepro stays unimported, no prompt number is used."""
    k = kernel()
    values = ask(k, state=STATE, record=RECORD)
    assert values["state"]["data"] == {"text/plain": "None"}
    assert values["record"]["data"] == {"text/plain": "None"}
    assert ask(k, imported=IMPORTED)["imported"]["data"]["text/plain"] == "False"
    first = k.reply(k.send("pass"))["content"]
    assert first["execution_count"] == 1, "a silent request used a prompt number"


def test_state_and_record_as_json(kernel: Callable[..., Kernel]) -> None:
    """After %repro_seed 42 and a cell seeding from the clock: seed, counts, a valid record."""
    k = kernel()
    k.run("%load_ext nbrepro")
    k.run("%repro_seed 42 --per-cell", cell_id="cell-a")
    k.run("import time, random\nrandom.seed(time.time())", cell_id="cell-b")
    values = ask(k, state=STATE, record=RECORD)
    state = values["state"]["data"]["application/json"]
    assert state["seed"] == 42 and state["per_cell"] is True
    assert state["errors"] >= 1  # NBR401: a seed from the clock
    assert "NBR401" in state["html"]
    record = values["record"]["data"]["application/json"]
    checked = read_record({"metadata": {"nbrepro": record}})
    assert checked is not None and checked["seed"] == 42
    assert "cell-b" in checked["cell_seeds"]
    json.dumps(record)


def test_restart_gives_a_fresh_process_with_the_hash_seed(kernel: Callable[..., Kernel]) -> None:
    """The restart expression works in a kernel that never loaded nbrepro."""
    k = kernel()
    k.run("leftover = 1")
    message = ask(k, restart=RESTART)["restart"]["data"]["application/json"]["message"]
    assert "PYTHONHASHSEED=0" in message
    k.wait_for_new_process(timeout=60)
    printed = k.run(
        "import json, os\n"
        "print(os.environ['PYTHONHASHSEED'], 'leftover' in globals(),\n"
        "      json.loads(os.environ['NBREPRO_RUNTIME'])['started_by'])"
    )
    assert printed.strip().split(maxsplit=2) == ["0", "False", STARTED_BY]


@pytest.mark.parametrize(
    ("seed_line", "threads"),
    [("42 --threads 2 --deterministic", "2"), ("--threads abc", None), ("", None)],
    ids=["threads", "bad-line", "auto-seed"],
)
def test_the_first_restart_takes_the_notebooks_seed_line(
    kernel: Callable[..., Kernel], seed_line: str, threads: str | None
) -> None:
    """A kernel that never ran %repro_seed: the notebook's line (sent by the front end) gives
    the new process its thread variables; a line %repro_seed would refuse gives none."""
    k = kernel()
    ask(k, restart=restart_with(seed_line))
    k.wait_for_new_process(timeout=60)
    printed = k.run("import os\nprint(os.environ.get('OMP_NUM_THREADS'))")
    assert printed.strip() == str(threads)
