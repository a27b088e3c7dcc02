"""Notebook files: read and validate one, write one atomically.

Errors: :class:`NotebookFileError` (an :class:`~nbrepro.errors.NbreproError` and an
:class:`OSError`) names the file and what is wrong with it, in one line, for a missing file,
corrupt JSON (also nested too deep, or a number too long to parse), a document that is not a
valid notebook, or an output path that cannot be written.

A target is only ever a regular file, or absent: a FIFO or a device (``-o /dev/null`` as
root) is refused, never replaced. A symlinked target stays a symlink: the file it points to
is replaced. The temporary file a write goes through is removed on any error and on
SIGTERM; one left by a killed process (SIGKILL) is removed by the next write into that
folder once it is older than :data:`STALE_AFTER` seconds.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import nbformat
from nbformat import NotebookNode

from nbrepro._special_files import NotRegularError, file_kind, open_regular
from nbrepro.errors import NotebookFileError

#: A temporary file of nbrepro's older than this (seconds) belongs to no running write.
STALE_AFTER = 60.0
_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{8}\.nbrepro-tmp")


_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number",
               bool: "true or false", type(None): "null"}  # fmt: skip


def read_notebook(path: Path) -> NotebookNode:
    """The notebook at ``path``, validated; :class:`NotebookFileError` says what is wrong."""
    try:
        descriptor = open_regular(path)
    except FileNotFoundError:
        raise NotebookFileError(path, "no such file") from None
    except NotRegularError as error:
        if str(error) == "a folder":
            raise NotebookFileError(path, "is a directory, not a notebook") from None
        raise NotebookFileError(path, f"is {error}, not a notebook file") from None
    except OSError as error:
        raise NotebookFileError(path, f"cannot read it: {error.strerror}") from None
    with os.fdopen(descriptor, "rb") as file:
        try:
            data = file.read()
        except OSError as error:
            raise NotebookFileError(path, f"cannot read it: {error.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise NotebookFileError(path, f"not a notebook (not UTF-8 text: {error})") from None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise NotebookFileError(path, f"not a notebook: corrupt JSON ({error})") from None
    except RecursionError:
        raise NotebookFileError(path, "not a notebook: JSON nested too deeply to read") from None
    except ValueError as error:  # an integer too long to convert, and the like
        problem = str(error).split(";", 1)[0]  # not Python's advice on its own limits
        raise NotebookFileError(path, f"not a notebook: unreadable JSON ({problem})") from None
    # What nbformat itself would trip over with an internal error rather than say.
    if not isinstance(parsed, dict):
        kind = _JSON_KINDS.get(type(parsed), "a value")
        raise NotebookFileError(path, f"not a notebook: the JSON is {kind}, not an object")
    if not isinstance(parsed.get("nbformat"), int):
        raise NotebookFileError(path, "not a valid Jupyter notebook: no integer 'nbformat' key")
    try:
        # reads() only logs a validation error; validate() raises it.
        notebook: NotebookNode = nbformat.reads(text, as_version=4)  # type: ignore[no-untyped-call]
        nbformat.validate(notebook)
    except Exception as error:  # nbformat raises ValidationError, NBFormatError, AttributeError
        message = getattr(error, "message", None) or str(error)
        summary = message.strip().splitlines()[0] if message.strip() else type(error).__name__
        if len(summary) > 200:
            summary = summary[:199] + "…"
        raise NotebookFileError(path, f"not a valid Jupyter notebook: {summary}") from None
    return notebook


def _target(path: Path) -> Path:
    """The file a write to ``path`` replaces: ``path``, or where its symlink(s) lead.

    Raises :class:`NotebookFileError` for a target that exists and is not a regular file,
    or one that exists and cannot be written (no permission, immutable, a read-only file
    system): refused before any time is spent executing.
    """
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as error:
        raise NotebookFileError(path, f"cannot write there: {error.strerror}") from None
    if stat.S_ISDIR(mode):
        raise NotebookFileError(path, "is a directory; give a notebook file name")
    if not stat.S_ISREG(mode):
        raise NotebookFileError(
            path, f"is {file_kind(mode)}, not a regular file; refusing to replace it"
        )
    try:
        # Opened for writing without truncating: answers for permissions, the immutable and
        # append-only attributes (which also forbid the rename) and read-only file systems,
        # also for root. O_NONBLOCK in case it was swapped for a FIFO since the stat.
        os.close(os.open(target, os.O_WRONLY | getattr(os, "O_NONBLOCK", 0)))
    except OSError as error:
        raise NotebookFileError(path, f"cannot write it: {error.strerror}") from None
    return target


def check_writable(path: Path) -> None:
    """Raise :class:`NotebookFileError` unless a notebook can be written to ``path``.

    Checked by opening an existing target for writing and by creating (and removing) a file
    next to it, which answers for permissions, read-only file systems, immutable files and
    missing folders alike, before any time is spent executing.
    """
    target = _target(path)
    fd, temp = _create_temp(target, path)
    os.close(fd)
    temp.unlink()


def write_notebook(notebook: NotebookNode, path: Path) -> None:
    """Write ``notebook`` to ``path`` atomically: all of it or, on any failure, nothing.

    The text goes to a temporary file in the same folder, which then replaces the target
    (``os.replace`` is atomic within a file system); a failure or SIGTERM removes the
    temporary file. A symlink at ``path`` is kept and the file it points to replaced.
    """
    data = nbformat.writes(notebook).encode("utf-8")  # type: ignore[no-untyped-call]
    target = _target(path)
    _remove_stale_temporaries(target.parent)
    with _removed_on_sigterm() as temporaries:
        fd, temp = _create_temp(target, path)
        temporaries.append(temp)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            if target.exists():
                os.chmod(temp, target.stat().st_mode & 0o7777)
            os.replace(temp, target)
        except BaseException as error:
            temp.unlink(missing_ok=True)
            if isinstance(error, OSError):
                raise NotebookFileError(path, f"cannot write it: {error.strerror}") from error
            raise
        finally:
            temporaries.clear()
    _sync_folder(target.parent)


def _sync_folder(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk.
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename itself is done
    finally:
        os.close(descriptor)


def _create_temp(target: Path, named: Path) -> tuple[int, Path]:
    # os.open with mode 0o666 lets the umask decide permissions, as for any new file
    # (tempfile.mkstemp would make an owner-only notebook).
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.nbrepro-tmp")
    try:
        return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temp
    except OSError as error:
        reason = error.strerror or str(error)
        raise NotebookFileError(named, f"cannot write there: {reason}") from None


def _remove_stale_temporaries(folder: Path) -> None:
    """Remove temporary files an earlier, killed write left in ``folder``.

    Only names of the shape nbrepro makes (``.NAME.<8 hex>.nbrepro-tmp``), only regular
    files, only ones untouched for :data:`STALE_AFTER` seconds (a write in progress is
    never that old).
    """
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        if not _TEMPORARY.fullmatch(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and now - info.st_mtime > STALE_AFTER:
                os.unlink(entry.path)
        except OSError:
            continue  # gone already, or not ours to remove


@contextmanager
def _removed_on_sigterm() -> Iterator[list[Path]]:
    """While inside, SIGTERM first removes the temporary files in the yielded list, then
    does what it would have done (by default: ends the process, killed by SIGTERM)."""
    temporaries: list[Path] = []
    if threading.current_thread() is not threading.main_thread():
        yield temporaries  # signal handlers can only be set from the main thread
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        yield temporaries  # SIGTERM cannot interrupt this process
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        for temp in temporaries:
            temp.unlink(missing_ok=True)
        if callable(previous):
            previous(signum, frame)
            return
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield temporaries
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
