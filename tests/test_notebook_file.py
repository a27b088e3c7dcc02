"""Notebook files on hostile input: corrupt JSON, special targets, symlinks, killed writes."""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from nbrepro._notebook_file import STALE_AFTER, check_writable, read_notebook, write_notebook
from nbrepro.errors import NotebookFileError

pytestmark = pytest.mark.timeout(120)  # a regression here is a hang


def notebook(text: str = "1") -> nbformat.NotebookNode:
    """A one-cell notebook."""
    return new_notebook(cells=[new_code_cell(text)])


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
        ('{"nbformat": ' + "9" * 5000 + "}", "unreadable JSON"),
        ("{", "corrupt JSON"),
        ('{"cells": 3}', "not a valid Jupyter notebook: no integer 'nbformat' key"),
        ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": 3}', "not a valid"),
        ("[1, 2]", "the JSON is an array, not an object"),
    ],
    ids=["deep", "long-number", "truncated", "no-nbformat", "cells-not-a-list", "an-array"],
)
def test_corrupt_json_is_one_line_notebook_file_error(
    tmp_path: Path, content: str, problem: str
) -> None:
    """Nesting 100,000 deep, a 5,000-digit number: NotebookFileError in one line."""
    path = tmp_path / "bad.ipynb"
    path.write_text(content)
    with pytest.raises(NotebookFileError, match=problem) as raised:
        read_notebook(path)
    assert "\n" not in str(raised.value) and len(str(raised.value)) < 400


def test_reading_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    """A FIFO named as the notebook: refused at once (a plain read waits for a writer)."""
    path = tmp_path / "nb.ipynb"
    os.mkfifo(path)
    with pytest.raises(NotebookFileError, match="is a FIFO"):
        read_notebook(path)


@pytest.fixture
def device(tmp_path: Path) -> Path:
    """A character device node (a copy of /dev/null's) in the test's folder."""
    path = tmp_path / "null"
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, AttributeError):
        pytest.skip("cannot make a device node here (needs root)")
    return path


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_special_target_is_refused_and_kept(tmp_path: Path, kind: str, request) -> None:
    """Writing onto a FIFO or a device node refuses, and the node stays what it was."""
    if kind == "fifo":
        target = tmp_path / "out.ipynb"
        os.mkfifo(target)
    else:
        target = request.getfixturevalue("device")
    before = os.lstat(target)
    for attempt in (lambda: check_writable(target), lambda: write_notebook(notebook(), target)):
        with pytest.raises(NotebookFileError, match="not a regular file; refusing to replace"):
            attempt()
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (
        before.st_mode,
        before.st_ino,
        before.st_rdev,
    )
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary left


def test_a_symlinked_target_stays_a_symlink(tmp_path: Path) -> None:
    """The write goes through the link, atomically, to the file it points to."""
    real = tmp_path / "store" / "real.ipynb"
    real.parent.mkdir()
    nbformat.write(notebook("old"), real)
    real.chmod(0o640)
    link = tmp_path / "link.ipynb"
    link.symlink_to(real)
    write_notebook(notebook("new"), link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert nbformat.read(real, as_version=4).cells[0].source == "new"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert sorted(p.name for p in real.parent.iterdir()) == ["real.ipynb"]


@pytest.fixture
def immutable_file(tmp_path: Path) -> Iterator[Path]:
    """An existing notebook with the immutable attribute (which binds root too)."""
    path = tmp_path / "frozen.ipynb"
    nbformat.write(notebook("kept"), path)
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", path], capture_output=True).returncode:
        pytest.skip("chattr +i is not available here")
    yield path
    subprocess.run([chattr, "-i", path], check=True)


def test_an_immutable_target_is_refused_up_front(immutable_file: Path) -> None:
    """check_writable (what run/rerun/export call before executing) refuses it."""
    before = immutable_file.read_bytes()
    with pytest.raises(NotebookFileError, match="cannot write it: Operation not permitted"):
        check_writable(immutable_file)
    with pytest.raises(NotebookFileError, match="cannot write it"):
        write_notebook(notebook("new"), immutable_file)
    assert immutable_file.read_bytes() == before
    assert [p.name for p in immutable_file.parent.iterdir()] == [immutable_file.name]


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs holding one notebook, remounted read-only (binds root too)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mount = shutil.which("mount")
    if (
        mount is None
        or subprocess.run(
            [mount, "-t", "tmpfs", "-o", "size=1m", "tmpfs", folder], capture_output=True
        ).returncode
    ):
        pytest.skip("cannot mount a tmpfs here")
    try:
        nbformat.write(notebook("kept"), folder / "nb.ipynb")
        if subprocess.run([mount, "-o", "remount,ro", folder], capture_output=True).returncode:
            pytest.skip("cannot remount a tmpfs read-only here")
        yield folder
    finally:
        subprocess.run([shutil.which("umount") or "umount", folder], check=False)


def test_a_target_on_a_read_only_file_system_is_refused_up_front(read_only_mount: Path) -> None:
    """An existing notebook on a read-only mount: refused before anything runs."""
    target = read_only_mount / "nb.ipynb"
    with pytest.raises(NotebookFileError, match="Read-only file system"):
        check_writable(target)
    with pytest.raises(NotebookFileError, match="Read-only file system"):
        check_writable(read_only_mount / "new.ipynb")
    assert nbformat.read(target, as_version=4).cells[0].source == "kept"


def _writer(target: Path) -> subprocess.Popen[str]:
    """A process writing a notebook to ``target`` whose fsync pauses, so a signal lands
    while the temporary file exists."""
    script = textwrap.dedent(
        f"""
        import os, time
        from pathlib import Path
        from nbformat.v4 import new_code_cell, new_notebook
        from nbrepro._notebook_file import write_notebook
        real_fsync = os.fsync
        def slow_fsync(fd):
            print("writing", flush=True)
            time.sleep(60)
            real_fsync(fd)
        os.fsync = slow_fsync
        write_notebook(new_notebook(cells=[new_code_cell("x")]), Path({str(target)!r}))
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "writing"
    return process


def temporaries(folder: Path) -> list[Path]:
    """nbrepro's temporary files in ``folder``."""
    return [p for p in folder.iterdir() if p.name.endswith(".nbrepro-tmp")]


def test_sigterm_during_a_write_removes_the_temporary_file(tmp_path: Path) -> None:
    """A real SIGTERM mid-write: the process dies of it, the temporary file is gone, the
    target untouched."""
    target = tmp_path / "out.ipynb"
    nbformat.write(notebook("before"), target)
    process = _writer(target)
    assert len(temporaries(tmp_path)) == 1
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGTERM
    assert temporaries(tmp_path) == []
    assert nbformat.read(target, as_version=4).cells[0].source == "before"


def test_a_write_killed_by_sigkill_is_cleaned_up_by_the_next(tmp_path: Path) -> None:
    """SIGKILL leaves the temporary file; the next write into the folder removes it once it
    is stale, and leaves fresh ones and files that are not nbrepro's alone."""
    target = tmp_path / "out.ipynb"
    process = _writer(target)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    (left,) = temporaries(tmp_path)
    old = time.time() - STALE_AFTER - 5
    os.utime(left, (old, old))
    fresh = tmp_path / ".out.ipynb.0123abcd.nbrepro-tmp"
    fresh.write_text("a write in progress")
    foreign = tmp_path / ".other.ipynb.tmp"
    foreign.write_text("not ours")
    os.utime(foreign, (old, old))
    write_notebook(notebook("after"), target)
    assert not left.exists() and fresh.exists() and foreign.exists()
    assert nbformat.read(target, as_version=4).cells[0].source == "after"


def test_export_refuses_a_fifo_target_and_keeps_it(tmp_path: Path) -> None:
    """nbrepro.export() (and so %repro_export) onto a FIFO: refused, the FIFO kept."""
    import nbrepro

    source = tmp_path / "a.ipynb"
    nbformat.write(notebook(), source)
    target = tmp_path / "out.ipynb"
    os.mkfifo(target)
    nbrepro.seed(1)
    with pytest.raises(NotebookFileError, match="FIFO"):
        nbrepro.export(str(target), source=str(source))
    assert stat.S_ISFIFO(os.lstat(target).st_mode)


def test_nbformat_is_a_runtime_dependency_imported_only_when_needed(tmp_path: Path) -> None:
    """`pip install nbrepro` brings nbformat (export writes notebooks with it), and
    `import nbrepro` still does not import it."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    names = [re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0] for d in project["project"]["dependencies"]]
    assert "nbformat" in names
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, nbrepro; print('nbformat' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert imported.stdout.strip() == "False"
