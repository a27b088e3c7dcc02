"""Data fingerprints on hostile input: special files, unreadable files, Ctrl-C, a bad cache."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import nbrepro
from nbrepro._fingerprint import fingerprint
from nbrepro._session import session

pytestmark = pytest.mark.timeout(120)  # a regression here is a hang


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own fingerprint cache folder."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("NBREPRO_CACHE_DIR", str(folder))
    return folder


def fifo(path: Path) -> Path:
    """A named pipe at ``path``, or skip where there are none."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(path)
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A folder with two data files, a FIFO, a link to /dev/zero, a dangling link and a
    link to a folder."""
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("a,b\n")
    (folder / "sub" / "b.csv").write_text("1,2\n")
    fifo(folder / "pipe")
    (folder / "sub" / "zero").symlink_to("/dev/zero")
    (folder / "dangling").symlink_to(folder / "nowhere")
    (folder / "loop").symlink_to(folder)  # a link to a folder is not followed
    return folder


def test_special_files_in_a_folder_are_listed_as_skipped_not_read(data: Path) -> None:
    """A FIFO and a device inside a folder would hang the read: skipped, and said so."""
    result = fingerprint([str(data)])[str(data)]
    assert result["kind"] == "dir"
    assert result["files"] == 2 and sorted(result["listing"]) == ["a.csv", "sub/b.csv"]
    assert result["skipped"] == ["dangling", "loop", "pipe", "sub/zero"]


def test_skipped_files_are_shown_by_repro_data(shell: Any, data: Path, capsys: Any) -> None:
    """%repro_data prints what it did not read."""
    shell.run_line_magic("repro_data", str(data))
    printed = capsys.readouterr().out
    assert "2 files" in printed
    assert "skipped 4 not regular files, not read (dangling, loop, pipe, …)" in printed


@pytest.mark.parametrize(
    ("name", "kind"),
    [("/dev/zero", "a character device"), ("pipe", "a FIFO"), ("/proc/self/mem", "")],
)
def test_special_or_unreadable_file_named_directly_is_a_clear_error(
    tmp_path: Path, name: str, kind: str
) -> None:
    """/dev/zero, a FIFO, /proc/self/mem (which even root cannot read): one clear error,
    nothing recorded, no hang."""
    path = fifo(tmp_path / name) if name == "pipe" else Path(name)
    if not path.exists():
        pytest.skip(f"{name} does not exist here")
    with pytest.raises(nbrepro.InvalidOptionError, match="cannot fingerprint") as raised:
        nbrepro.fingerprint(str(path))
    assert kind in str(raised.value) and "only readable regular files" in str(raised.value)
    assert session().data == {}


def test_a_file_without_read_permission_is_a_clear_error(tmp_path: Path) -> None:
    """Unreadable for this user (root reads anything, so this one is for other users)."""
    if os.geteuid() == 0:
        pytest.skip("root can read any file; /proc/self/mem covers root")
    secret = tmp_path / "data"
    secret.mkdir()
    (secret / "locked.bin").write_bytes(b"x")
    (secret / "locked.bin").chmod(0)
    with pytest.raises(nbrepro.InvalidOptionError, match=r"locked\.bin.*Permission denied"):
        fingerprint([str(secret)])


@pytest.mark.parametrize(
    "content",
    [
        "[" * 100_000 + "]" * 100_000,  # nested too deep to parse
        '{"version": 1, "entries": {"x": ' + "9" * 5000 + "}}",  # a number too long
        "not json at all",
        "[]",
        '{"version": 1, "entries": []}',
        '{"version": 1, "entries": {"PATH": "a string", "P2": [1, 2], "P3": [1, 2, 3, 4]}}',
        '{"version": "1", "entries": {}}',
    ],
    ids=["deep", "long-number", "garbage", "list", "entries-list", "bad-entries", "bad-version"],
)
def test_a_bad_cache_is_ignored_and_rewritten(tmp_path: Path, cache: Path, content: str) -> None:
    """A corrupt cache, or one with the wrong types: the digest is computed, the cache
    rewritten in the right shape."""
    target = tmp_path / "x.bin"
    target.write_bytes(b"payload")
    cache.mkdir()
    (cache / "fingerprints.json").write_text(content.replace("PATH", str(target)))
    digest = fingerprint([str(target)])[str(target)]["sha256"]
    assert digest == "239f59ed55e737c77147cf55ad0c1b030b6d7ee748a7426952f9b852d5a935e5"
    rewritten = json.loads((cache / "fingerprints.json").read_text())
    assert rewritten["version"] == 1
    assert rewritten["entries"][str(target)][3] == digest
    assert all(len(entry) == 4 for entry in rewritten["entries"].values())


def test_a_cache_that_is_a_fifo_is_left_alone(tmp_path: Path, cache: Path) -> None:
    """A FIFO where the cache file should be: ignored and kept, no hang."""
    target = tmp_path / "x.bin"
    target.write_bytes(b"payload")
    cache.mkdir()
    fifo(cache / "fingerprints.json")
    assert fingerprint([str(target)])[str(target)]["size"] == 7
    assert stat.S_ISFIFO(os.lstat(cache / "fingerprints.json").st_mode)  # not replaced


def test_ctrl_c_stops_fingerprinting_promptly(tmp_path: Path) -> None:
    """SIGINT to a process hashing a large file: KeyboardInterrupt within a second or so,
    the hashing threads stopped, the process exits."""
    big = tmp_path / "big.bin"
    with open(big, "wb") as file:
        file.truncate(64 << 30)  # sparse: 64 GiB of zeros takes a minute to hash
    script = textwrap.dedent(
        f"""
        import sys, time, threading
        import nbrepro
        print("hashing", flush=True)
        try:
            nbrepro.fingerprint({str(big)!r})
        except KeyboardInterrupt:
            print("interrupted", threading.active_count(), flush=True)
            sys.exit(7)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "hashing"
    time.sleep(1.0)
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("fingerprinting ignored Ctrl-C")
    assert time.monotonic() - sent < 5
    assert process.returncode == 7, err
    assert out.strip() == "interrupted 1"  # no hashing thread left running


def test_rerun_data_check_of_a_crafted_record_naming_a_fifo_does_not_hang(
    tmp_path: Path,
) -> None:
    """A record whose data path is a FIFO: rerun's data check says so instead of waiting."""
    rerun = pytest.importorskip("nbrepro.commands.rerun")
    fifo(tmp_path / "pipe")
    digest = "0" * 64
    record = {"data": {"pipe": {"kind": "file", "size": 1, "sha256": digest}}}
    (line,) = rerun.current_data_drift(record, tmp_path)
    assert "FIFO" in line
