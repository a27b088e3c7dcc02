"""Secrets never enter what nbrepro writes, and redaction keeps identity.

Planted credentials of every shape go into the places a record reads free text from (the
allowlisted variables, data paths, the names of files in a fingerprinted folder); the
written files (an exported notebook, `nbrepro run`'s output, `nbrepro show`'s text,
`nbrepro.environment()`) are searched for each. Ordinary values (versions, paths, SHA-256
digests) must come through unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import nbrepro
from nbrepro._fingerprint import drift, fingerprint
from nbrepro._record import read_record
from nbrepro._redact import PLACEHOLDER, redact

# Each shape with the exact text that must never be written. Values are fake.
SHAPES = {
    "huggingface": ("hf_FakeTokenForTests1234567890abcdefXYZ", None),
    "openai": ("sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56", None),
    "github": ("ghp_Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz", None),
    "github-pat": ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzAB", None),
    "slack": ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", None),
    "aws-key-id": ("AKIAIOSFODNN7EXAMPL2", None),
    "aws-secret": ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None),
    "jwt": (
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        None,
    ),
    "40-hex": ("0123456789abcdef0123456789abcdef01234567", None),
    "mixed-case": ("aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY", None),
    "token=": ("plain-token-value-0001", "token={}"),
    "password=": ("hunter2-0002", "password={}"),
    "api_key=": ("apikeyvalue0003", "api_key={}"),
    "quoted-double": ("quoted secret 0004", '--token="{}"'),
    "quoted-single": ("single quoted 0005", "password='{}'"),
    "json": ("json-secret-0006", '{{"token": "{}"}}'),
    "bearer": ("bearer-secret-0007.abc", "Authorization: Bearer {}"),
    "flag-space": ("spaced-secret-0008", "--password {}"),
    "url-password": ("urlpass0009", "https://ada:{}@example.org/data"),
}


def planted(shape: str) -> str:
    """The text holding the secret of ``shape`` as it would appear in a value."""
    secret, form = SHAPES[shape]
    return secret if form is None else form.format(secret)


ALL_PLANTED = " ".join(planted(shape) for shape in SHAPES)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_shape_is_redacted_to_a_stable_placeholder(shape: str) -> None:
    """Alone and amid other text, each shape's secret is replaced; same secret, same
    placeholder; the text around it is kept."""
    secret = SHAPES[shape][0]
    text = f"--xla_dump_to=/tmp/x {planted(shape)} --lr=0.1"
    redacted = redact(text)
    assert secret not in redacted
    assert PLACEHOLDER.search(redacted)
    assert redacted.startswith("--xla_dump_to=/tmp/x ") and redacted.endswith(" --lr=0.1")
    assert redact(text) == redacted  # stable
    assert redact(redacted) == redacted  # redacting again changes nothing


def test_different_secrets_get_different_placeholders() -> None:
    """Identity is kept: two secrets stay two values."""
    one, two = redact("HF_TOKEN=hf_" + "a1B2" * 8), redact("HF_TOKEN=hf_" + "c3D4" * 8)
    assert one != two


@pytest.mark.parametrize(
    "kept",
    [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # sha256
        "f47ac10b-58cc-4372-a567-0e02b2c3d479",  # a cell id
        "/home/ada/data/images_2024/train",
        "/Users/JohnSmith/Projects/Data2024/train.csv",
        "ResNet50_ImageNet_Pretrained_Weights_v2.pt",
        "Linux-6.1.0-x86_64-with-glibc2.36",
        "Intel(R) Xeon(R) Platinum 8370C CPU @ 2.80GHz",
        "2.13.0+cpu",
        "12.4.1+cu124",
        "max_tokens=512 tokenizer=bert-base-uncased author=ada",
        "--xla_gpu_deterministic_ops=true --xla_cpu_enable_fast_math=false",
        "use_auth_token=True",
    ],
)
def test_ordinary_values_are_kept(kept: str) -> None:
    """Digests, ids, paths, CPU names, versions and ordinary flags are not secrets."""
    assert redact(kept) == kept


def test_a_git_commit_in_a_package_version_is_kept() -> None:
    """Versions may name a git commit (40 hex digits); environment() keeps them."""
    version = "1.2.dev3+g0123456789abcdef0123456789abcdef01234567"
    assert redact(version, keep_hex=True) == version


def test_secret_named_data_keeps_identity_and_reports_no_false_drift(tmp_path: Path) -> None:
    """Two top-level paths that differ only in a secret stay two keys; a folder listing
    names no secret; a recorded fingerprint compared with a fresh one shows no drift."""
    nbrepro.seed(3)
    first = tmp_path / ("hf_" + "a1B2" * 8)
    second = tmp_path / ("hf_" + "c3D4" * 8)
    for folder, content in ((first, b"1"), (second, b"2")):
        folder.mkdir()
        (folder / f"token={SHAPES['token='][0]}.csv").write_bytes(content)
        (folder / f"{SHAPES['github'][0]}.csv").write_bytes(content)
        (folder / "plain.csv").write_bytes(content)
    nbrepro.fingerprint([str(first), str(second)])
    from nbrepro._record import build_record
    from nbrepro._session import session

    record = json.loads(json.dumps(build_record(session())))
    text = json.dumps(record)
    assert "a1B2" * 8 not in text and "c3D4" * 8 not in text
    assert SHAPES["token="][0] not in text and SHAPES["github"][0] not in text
    assert len(record["data"]) == 2
    keys = {redact(str(first)), redact(str(second))}
    assert set(record["data"]) == keys
    listing = record["data"][redact(str(first))]["listing"]
    assert "plain.csv" in listing and len(listing) == 3
    assert all(len(digest) == 64 for digest in listing.values())  # digests kept
    now = fingerprint([str(first), str(second)])
    recorded = {str(first): record["data"][redact(str(first))]}
    recorded[str(second)] = record["data"][redact(str(second))]
    assert drift(recorded, now) == []
    (first / f"{SHAPES['github'][0]}.csv").write_bytes(b"changed")
    (line,) = drift(recorded, fingerprint([str(first), str(second)]))
    assert "1 changed (<redacted:" in line and SHAPES["github"][0] not in line


def test_environment_api_redacts_allowlisted_variables(tmp_path: Path) -> None:
    """nbrepro.environment() in a process started with every shape in XLA_FLAGS."""
    result = subprocess.run(
        [sys.executable, "-c", "import json, nbrepro; print(json.dumps(nbrepro.environment()))"],
        capture_output=True,
        text=True,
        env={**os.environ, "XLA_FLAGS": ALL_PLANTED, "NBREPRO_CACHE_DIR": str(tmp_path)},
        check=True,
    )
    facts = json.loads(result.stdout)
    for shape, (secret, _) in SHAPES.items():
        assert secret not in result.stdout, shape
    assert facts["env_vars"]["XLA_FLAGS"].startswith("<redacted:")
    assert facts["packages"]["nbrepro"] == nbrepro.__version__


def _secret_folder(folder: Path) -> None:
    """A data folder whose file names hold secrets, next to an ordinary one."""
    folder.mkdir()
    (folder / f"{SHAPES['github'][0]}.csv").write_text("1")
    (folder / f"token={SHAPES['token='][0]}.csv").write_text("2")
    (folder / "plain.csv").write_text("3")


def _assert_no_secret(text: str, where: str) -> None:
    for shape, (secret, _) in SHAPES.items():
        assert secret not in text, f"{shape} secret written into {where}"


@pytest.mark.kernel
def test_exported_notebook_and_its_rerecording_hold_no_secret(
    tmp_path: Path, run_notebook: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """%repro_export from a real kernel with secrets planted everywhere it reads text: the
    written file holds none, digests and versions are intact, and %repro_data against that
    record in a new kernel finds no drift (placeholders are stable)."""
    _secret_folder(tmp_path / "data")
    secret_path = f"hf_{'a1B2' * 8}"
    (tmp_path / secret_path).mkdir()
    (tmp_path / secret_path / "x.bin").write_bytes(b"x")
    cells = [
        new_code_cell("%load_ext nbrepro"),
        new_code_cell("%repro_seed 5"),
        new_code_cell(f"%repro_data data {secret_path}"),
        # A changed file with a secret in its name: finding NBR601 names it, redacted.
        new_code_cell(
            "import glob\nfor name in glob.glob('data/ghp_*'):\n"
            "    open(name, 'w').write('changed')"
        ),
        new_code_cell("%repro_data data"),
        new_code_cell("%repro_export"),
    ]
    source = tmp_path / "analysis.ipynb"
    nbformat.write(new_notebook(cells=cells), source)
    env = {
        "XLA_FLAGS": ALL_PLANTED,
        "JAX_PLATFORMS": SHAPES["huggingface"][0],
        "KERAS_BACKEND": SHAPES["jwt"][0],
        "NBREPRO_CACHE_DIR": str(tmp_path / "cache"),
    }
    monkeypatch.setenv("NBREPRO_CACHE_DIR", env["NBREPRO_CACHE_DIR"])  # the same key here
    run_notebook(nbformat.read(source, as_version=4), tmp_path, JPY_SESSION_NAME=str(source), **env)
    written = tmp_path / "analysis.repro.ipynb"
    text = written.read_text()
    _assert_no_secret(text, str(written))
    record = read_record(nbformat.read(written, as_version=4))
    assert record is not None
    assert record["data"]["data"]["files"] == 3
    assert "plain.csv" in record["data"]["data"]["listing"]
    assert all(len(d) == 64 for d in record["data"]["data"]["listing"].values())
    assert record["environment"]["packages"]["nbrepro"] == nbrepro.__version__
    assert record["env_vars"]["JAX_PLATFORMS"] == redact(SHAPES["huggingface"][0])
    (finding,) = [f for f in record["findings"] if f["code"] == "NBR601"]
    assert "1 changed (<redacted:" in finding["message"]

    check = tmp_path / "check.ipynb"
    nbformat.write(
        new_notebook(
            cells=[
                new_code_cell("%load_ext nbrepro"),
                new_code_cell(f"%repro_data data {secret_path}"),
            ],
            metadata={"nbrepro": dict(record)},
        ),
        check,
    )
    executed = run_notebook(
        nbformat.read(check, as_version=4), tmp_path, JPY_SESSION_NAME=str(check), **env
    )
    printed = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    assert "NBR601" not in printed and "3 files" in printed


@pytest.mark.kernel
def test_nbrepro_run_output_and_show_hold_no_secret(tmp_path: Path) -> None:
    """`nbrepro run` with secrets in its environment and data: neither the written
    notebook nor `nbrepro show` (text or JSON) holds one."""
    _secret_folder(tmp_path / "data")
    source = tmp_path / "train.ipynb"
    nbformat.write(
        new_notebook(cells=[new_code_cell("%load_ext nbrepro"), new_code_cell("%repro_data data")]),
        source,
    )
    env = {
        **os.environ,
        "XLA_FLAGS": ALL_PLANTED,
        "NBREPRO_CACHE_DIR": str(tmp_path / "cache"),
    }
    output = tmp_path / "out.ipynb"
    run = subprocess.run(
        [sys.executable, "-m", "nbrepro", "run", str(source), "-o", str(output), "--seed", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    _assert_no_secret(output.read_text(), "nbrepro run's output")
    record = read_record(nbformat.read(output, as_version=4))
    assert record is not None and record["data"]["data"]["files"] == 3
    for flags in ([], ["--json"]):
        show = subprocess.run(
            [sys.executable, "-m", "nbrepro", "show", str(output), *flags],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert show.returncode == 0, show.stderr
        _assert_no_secret(show.stdout + show.stderr, f"nbrepro show {flags}")


def _placeholder_in_new_process(cache: Path) -> str:
    return subprocess.run(
        [sys.executable, "-c", "from nbrepro._redact import placeholder; print(placeholder('x'))"],
        capture_output=True,
        text=True,
        env={**os.environ, "NBREPRO_CACHE_DIR": str(cache)},
        check=True,
        timeout=60,
    ).stdout.strip()


def test_placeholders_are_stable_across_processes_and_keyed_per_machine(tmp_path: Path) -> None:
    """The same cache folder (one machine) gives the same placeholder in every process; a
    key elsewhere gives another, so a placeholder cannot be recomputed from a guess."""
    here = _placeholder_in_new_process(tmp_path / "a")
    assert PLACEHOLDER.fullmatch(here)
    assert _placeholder_in_new_process(tmp_path / "a") == here
    assert _placeholder_in_new_process(tmp_path / "b") != here
    assert (tmp_path / "a" / "redaction-key").stat().st_mode & 0o077 == 0  # owner-only


def test_a_damaged_or_special_key_file_never_blocks(tmp_path: Path) -> None:
    """A damaged key file is replaced; a FIFO in its place is left alone, without a hang."""
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "redaction-key").write_text("not hex")
    first = _placeholder_in_new_process(damaged)
    assert _placeholder_in_new_process(damaged) == first
    special = tmp_path / "special"
    special.mkdir()
    os.mkfifo(special / "redaction-key")
    assert PLACEHOLDER.fullmatch(_placeholder_in_new_process(special))
    assert not (special / "redaction-key").is_file()
