"""The reproducibility record: environment, secrets, data fingerprints, export from a kernel."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

import nbrepro
from nbrepro._fingerprint import drift, fingerprint
from nbrepro._record import SCHEMA, build_record, embed, read_record
from nbrepro._redact import redact
from nbrepro._session import session

SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "HF_TOKEN": "hf_FakeTokenForTests1234567890abcdefXYZ",
    "WANDB_API_KEY": "0123456789abcdef0123456789abcdef01234567",
}
# A token-like value inside an allowlisted variable: the record keeps the variable, not it.
LEAKY_FLAGS = "--xla_dump_to=/tmp/x --auth_token=sk-live-AbCdEf1234567890GhIjKlMnOp"


@pytest.mark.parametrize("secret", [*SECRETS.values(), "sk-live-AbCdEf1234567890GhIjKlMnOp"])
def test_redact_hides_token_shapes(secret: str) -> None:
    """Known credential shapes are replaced wherever they appear in a string."""
    assert secret not in redact(f"value={secret}; other text")


@pytest.mark.parametrize(
    "kept",
    [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "f47ac10b-58cc-4372-a567-0e02b2c3d479",
        "/home/ada/data/images_2024/train",
        "Linux-6.1.0-x86_64-with-glibc2.36",
        "2.13.0+cpu",
    ],
)
def test_redact_keeps_digests_ids_paths_versions(kept: str) -> None:
    """Digests, cell ids, paths and versions are not mistaken for secrets."""
    assert redact(kept) == kept


def test_environment_records_only_allowlisted_variables() -> None:
    """environment() holds python, platform, packages and allowlisted variables only."""
    facts = nbrepro.environment()
    assert facts["python"] and facts["platform"] and facts["cpu_count"]
    assert "nbrepro" in facts["packages"]
    assert set(facts["env_vars"]) <= set(
        __import__("nbrepro._environment")._environment.ENV_ALLOWLIST
    )
    assert "PATH" not in json.dumps(facts["env_vars"])


def test_package_versions_follow_installs_and_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The looked-up versions are kept between records, and looked up again the moment a
    distribution is installed, upgraded or imported: never a stale version."""
    (tmp_path / "nbrepro_probe_pkg").mkdir()
    (tmp_path / "nbrepro_probe_pkg" / "__init__.py").write_text("")

    def install(version: str) -> None:
        for old in tmp_path.glob("*.dist-info"):
            shutil.rmtree(old)
        info = tmp_path / f"nbrepro_probe_pkg-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: nbrepro-probe-pkg\nVersion: {version}\n"
        )
        (info / "top_level.txt").write_text("nbrepro_probe_pkg\n")

    monkeypatch.syspath_prepend(str(tmp_path))
    install("1.0")
    assert "nbrepro-probe-pkg" not in nbrepro.environment()["packages"]  # not imported
    monkeypatch.setitem(sys.modules, "nbrepro_probe_pkg", __import__("nbrepro_probe_pkg"))
    assert nbrepro.environment()["packages"]["nbrepro-probe-pkg"] == "1.0"
    install("2.0")  # pip install -U: the folder's dist-info is replaced
    assert nbrepro.environment()["packages"]["nbrepro-probe-pkg"] == "2.0"


def make_data(folder: Path, files: int) -> None:
    """``files`` small files in ``folder``."""
    folder.mkdir(exist_ok=True)
    for index in range(files):
        (folder / f"img_{index:04d}.bin").write_bytes(os.urandom(64) + bytes([index % 256]))


def test_fingerprint_of_files_and_folders_and_drift(tmp_path: Path, monkeypatch) -> None:
    """A folder's drift names added, removed and changed files; a file's, its size."""
    monkeypatch.setenv("NBREPRO_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "images"
    make_data(data, 5)
    single = tmp_path / "labels.csv"
    single.write_text("a,b\n")
    before = fingerprint([str(data), str(single)])
    assert before[str(data)]["files"] == 5 and before[str(single)]["kind"] == "file"
    assert fingerprint([str(data), str(single)]) == before  # stable, and served from cache
    (data / "img_0000.bin").unlink()
    (data / "img_0001.bin").write_bytes(b"edited")
    make_data(data / "more", 3)
    single.write_text("a,b\n1,2\n")
    lines = drift(before, fingerprint([str(data), str(single)]))
    assert "3 added (more/img_0000.bin" in lines[0]
    assert "1 removed (img_0000.bin)" in lines[0] and "1 changed (img_0001.bin)" in lines[0]
    assert lines[1].endswith("contents changed (4 -> 8 bytes)")


def test_cache_is_keyed_by_size_and_mtime(tmp_path: Path, monkeypatch) -> None:
    """An edit that keeps the size but changes mtime is noticed (no stale cache hit)."""
    monkeypatch.setenv("NBREPRO_CACHE_DIR", str(tmp_path / "cache"))
    target = tmp_path / "weights.bin"
    target.write_bytes(b"aaaa")
    first = fingerprint([str(target)])[str(target)]["sha256"]
    time.sleep(0.01)
    target.write_bytes(b"bbbb")
    assert fingerprint([str(target)])[str(target)]["sha256"] != first


def test_missing_data_path_is_refused_and_records_nothing(tmp_path: Path) -> None:
    """A path that does not exist raises naming it; the session's data is unchanged."""
    with pytest.raises(nbrepro.InvalidOptionError, match="no-such-folder"):
        nbrepro.fingerprint([str(tmp_path / "no-such-folder")])
    assert session().data == {}


def test_record_round_trips_through_nbformat(tmp_path: Path) -> None:
    """The record survives writing and reading the notebook, and reads back valid."""
    nbrepro.seed(42, deterministic=True)
    notebook = new_notebook(cells=[new_code_cell("1")])
    embed(notebook, build_record(session()))
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    record = read_record(nbformat.read(path, as_version=4))
    assert record is not None
    assert (record["schema"], record["seed"], record["deterministic"]) == (SCHEMA, 42, "warn")
    for key in (
        "seed_source",
        "per_cell",
        "threads",
        "cell_seeds",
        "env_vars",
        "environment",
        "data",
        "findings",
        "nbrepro_version",
    ):
        assert key in record


def valid_record() -> dict[str, Any]:
    """A record as build_record writes it, round-tripped through JSON like a file's."""
    nbrepro.seed(7)
    return json.loads(json.dumps(build_record(session())))


def _set(record: dict[str, Any], path: str, value: object) -> None:
    *parents, last = path.split(".")
    for key in parents:
        record = record[key]
    if value is _DELETE:
        del record[last]
    else:
        record[last] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("a string", "not an nbrepro record"),
        ({"author": "someone else"}, 'no integer "schema"'),
        ({"schema": 99}, "schema 99, newer"),
        ({"schema": 1}, "record: seed is missing; the record is damaged"),
    ],
)
def test_foreign_and_newer_records_are_named(value: object, problem: str) -> None:
    """Corrupt, foreign and newer records raise RecordError saying what is wrong."""
    notebook = new_notebook()
    notebook.metadata["nbrepro"] = value
    with pytest.raises(nbrepro.RecordError, match=problem):
        read_record(notebook, "n.ipynb")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("seed", -1, "record: seed is -1: a seed must be an integer from 0 to 2147483647"),
        ("seed", 2**40, "record: seed is 1099511627776: a seed must be an integer from 0"),
        ("seed", True, "record: seed is True: must be an integer, not bool"),
        ("seed", "42", "record: seed is '42': must be an integer, not str"),
        ("seed", _DELETE, "record: seed is missing"),
        pytest.param(
            "seed",
            10**5000,
            "record: seed is an integer of about 5001 digits: a seed must be",
            id="seed-5001-digits",
        ),
        ("threads", 0, "record: threads is 0: the thread count must be an integer from 1"),
        ("threads", True, "record: threads is True: must be an integer"),
        ("deterministic", "sometimes", "record: deterministic is 'sometimes': must be one of"),
        ("per_cell", 1, "record: per_cell is 1: must be true or false"),
        ("cell_seeds", {"c1": -5}, r"record: cell_seeds\['c1'\] is -5: a seed must be"),
        ("data", {"d": "a string"}, r"record: data\['d'\] is 'a string': a data fingerprint"),
        (
            "data",
            {"d": {"kind": "dir", "size": 1, "sha256": "0" * 64}},
            r"record: data\['d'\].files is missing",
        ),
        (
            "data",
            {"d": {"kind": "file", "size": -1, "sha256": "0" * 64}},
            r"record: data\['d'\].size is -1: must be a whole number",
        ),
        (
            "data",
            {"d": {"kind": "file", "size": 1, "sha256": "xyz"}},
            r"record: data\['d'\].sha256 is 'xyz': must be a SHA-256 hex digest",
        ),
        (
            "data",
            {"d": {"kind": "dir", "files": 1, "size": 1, "sha256": "0" * 64, "listing": []}},
            r"record: data\['d'\].listing is \[\]: a folder listing must be a mapping",
        ),
        ("environment.packages", ["numpy"], "record: environment.packages is \\['numpy'\\]"),
        ("environment.gpu", None, "record: environment.gpu is None: the GPU facts must be"),
        ("environment.gpu.devices", "cpu", "record: environment.gpu.devices is 'cpu'"),
        ("environment.python", 3.11, "record: environment.python is 3.11: must be a string"),
        ("environment.cpu_count", "2", "record: environment.cpu_count is '2'"),
        ("findings", [None], r"record: findings\[0\] is None: a finding must be a mapping"),
        ("findings", {}, "record: findings is {}: must be a list"),
        (
            "findings",
            [{"code": "X", "severity": "fatal", "message": "", "fix": ""}],
            r"record: findings\[0\].severity is 'fatal'",
        ),
        ("env_vars", {"LD_PRELOAD": "/tmp/x.so"}, "record: env_vars key is 'LD_PRELOAD': not a"),
        ("env_vars", {"PYTHONHASHSEED": 0}, "record: env_vars.PYTHONHASHSEED is 0: must be a"),
        ("seed_source", "chosen", "record: seed_source is 'chosen': must be one of"),
    ],
)
def test_every_key_and_inner_value_is_validated(path: str, value: object, message: str) -> None:
    """One wrong key or inner value anywhere: RecordError naming the key path and the value."""
    record = valid_record()
    _set(record, path, value)
    notebook = new_notebook(metadata={"nbrepro": record})
    with pytest.raises(nbrepro.RecordError, match="^n.ipynb: " + message):
        read_record(notebook, "n.ipynb")


def test_a_valid_record_reads_back_typed_and_whole() -> None:
    """A record as written reads back equal, unknown keys dropped, plain dicts throughout."""
    record = valid_record()
    record["added_by_a_later_version"] = 1
    read = read_record(new_notebook(metadata={"nbrepro": record}))
    assert read is not None
    del record["added_by_a_later_version"]
    assert read == record and type(read) is dict


@pytest.mark.kernel
def test_export_from_a_live_kernel_keeps_cells_and_no_secrets(
    tmp_path: Path, run_notebook: Callable[..., Any]
) -> None:
    """%repro_export in a real kernel finds its notebook, embeds the record, leaks nothing."""
    data = tmp_path / "data"
    make_data(data, 4)
    saved = new_code_cell(
        "print('saved output')",
        outputs=[new_output("stream", name="stdout", text="saved output\n")],
    )
    cells = [
        saved,
        new_code_cell("%load_ext nbrepro"),
        new_code_cell("%repro_seed 42 --per-cell"),
        new_code_cell("import random\nx = random.random()"),
        new_code_cell("%repro_data data"),
        new_code_cell("%repro_export"),
    ]
    notebook = new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}
        },
    )
    path = tmp_path / "analysis.ipynb"
    nbformat.write(notebook, path)
    run_notebook(
        nbformat.read(path, as_version=4),
        tmp_path,
        timeout=120,
        **SECRETS,
        XLA_FLAGS=LEAKY_FLAGS,
        JPY_SESSION_NAME=str(path),
        NBREPRO_CACHE_DIR=str(tmp_path / "cache"),
    )

    written = tmp_path / "analysis.repro.ipynb"
    text = written.read_text()
    for secret in [*SECRETS.values(), "sk-live-AbCdEf1234567890GhIjKlMnOp"]:
        assert secret not in text
    exported = nbformat.read(written, as_version=4)
    assert [c.source for c in exported.cells] == [c.source for c in cells]
    assert exported.cells[0].outputs[0]["text"] == "saved output\n"
    record = read_record(exported)
    assert record is not None and record["seed"] == 42 and record["per_cell"]
    assert record["env_vars"]["XLA_FLAGS"].startswith("--xla_dump_to=/tmp/x --auth_token=")
    assert record["data"]["data"]["files"] == 4
    assert record["cell_seeds"]
    assert nbformat.read(path, as_version=4).metadata.get("nbrepro") is None  # source untouched


@pytest.mark.kernel
def test_changed_data_is_named_against_the_embedded_record(
    tmp_path: Path, run_notebook: Callable[..., Any]
) -> None:
    """After a data file changes, %repro_data in the recorded notebook names it (NBR601)."""
    data = tmp_path / "data"
    make_data(data, 3)
    nbrepro.seed(1)
    nbrepro.fingerprint([str(data)])
    record = build_record(session())
    record["data"] = {"data": record["data"][str(data)]}
    (data / "img_0002.bin").write_bytes(b"changed")
    make_data(data / "extra", 2)
    notebook = new_notebook(
        cells=[
            new_code_cell("%load_ext nbrepro"),
            new_code_cell("%repro_seed 1"),
            new_code_cell("%repro_data data"),
        ]
    )
    embed(notebook, record)
    path = tmp_path / "trained.ipynb"
    nbformat.write(notebook, path)
    executed = run_notebook(
        nbformat.read(path, as_version=4),
        tmp_path,
        timeout=120,
        JPY_SESSION_NAME=str(path),
        NBREPRO_CACHE_DIR=str(tmp_path / "cache"),
    )
    printed = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    assert "NBR601" in printed and "trained.ipynb" in printed
    assert "img_0002.bin" in printed and "2 added" in printed


def test_locate_notebook_follows_each_front_ends_hint(tmp_path: Path, monkeypatch) -> None:
    """VS Code's variable, ipykernel's __session__, JPY_SESSION_NAME (also cwd-relative)."""
    from nbrepro._export import locate_notebook

    notebook = tmp_path / "analysis.ipynb"
    nbformat.write(new_notebook(), notebook)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert locate_notebook({"__vsc_ipynb_file__": str(notebook)}) == notebook.resolve()
    assert locate_notebook({"__session__": str(notebook)}) == notebook.resolve()
    monkeypatch.chdir(tmp_path)
    assert locate_notebook({"__session__": "work/sub/analysis.ipynb"}) == notebook.resolve()
    monkeypatch.setenv("JPY_SESSION_NAME", "analysis.ipynb")
    assert locate_notebook({}) == notebook.resolve()
    monkeypatch.setenv("JPY_SESSION_NAME", "elsewhere/missing.ipynb")
    assert locate_notebook({"__session__": "not-a-notebook"}) is None


def test_export_refuses_without_a_source_or_over_itself(tmp_path: Path, monkeypatch) -> None:
    """No way to find the notebook: the error says what to pass; the source is never clobbered."""
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    nbrepro.seed(1)
    with pytest.raises(nbrepro.NotebookNotFoundError, match="--source"):
        nbrepro.export()
    source = tmp_path / "a.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("1")]), source)
    before = source.read_bytes()
    with pytest.raises(nbrepro.InvalidOptionError, match="--overwrite"):
        nbrepro.export(str(source), source=str(source))
    assert source.read_bytes() == before
    nbrepro.export(str(source), source=str(source), overwrite=True)
    assert read_record(nbformat.read(source, as_version=4))["seed"] == 1


def test_export_into_an_unwritable_folder_leaves_nothing(
    tmp_path: Path, read_only_dir: Path
) -> None:
    """A target that cannot be written raises naming it; no file or temporary is left."""
    source = tmp_path / "a.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("1")]), source)
    with pytest.raises(nbrepro.NotebookFileError, match="cannot write"):
        nbrepro.export(str(read_only_dir / "out.ipynb"), source=str(source))
    assert list(read_only_dir.iterdir()) == []
