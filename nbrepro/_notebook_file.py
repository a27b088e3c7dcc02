"""Notebook files: read and validate one, write one atomically.

Errors: :class:`NotebookFileError` (an :class:`~nbrepro.errors.NbreproError` and an
:class:`OSError`) names the file and what is wrong with it, for a missing file, corrupt JSON,
a document that is not a valid notebook, or an output path that cannot be written.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from nbrepro.errors import NotebookFileError


def read_notebook(path: Path) -> NotebookNode:
    """The notebook at ``path``, validated; :class:`NotebookFileError` says what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotebookFileError(path, "no such file") from None
    except IsADirectoryError:
        raise NotebookFileError(path, "is a directory, not a notebook") from None
    except UnicodeDecodeError as error:
        raise NotebookFileError(path, f"not a notebook (not UTF-8 text: {error})") from None
    except OSError as error:
        raise NotebookFileError(path, f"cannot read it: {error.strerror}") from error
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise NotebookFileError(path, f"not a notebook: corrupt JSON ({error})") from None
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


def check_writable(path: Path) -> None:
    """Raise :class:`NotebookFileError` unless a notebook can be written to ``path``.

    Checked by creating (and removing) a file next to it, which answers for permissions,
    read-only file systems and missing folders alike, before any time is spent executing.
    """
    if path.is_dir():
        raise NotebookFileError(path, "is a directory; give a notebook file name")
    fd, temp = _create_temp(path)
    os.close(fd)
    temp.unlink()


def write_notebook(notebook: NotebookNode, path: Path) -> None:
    """Write ``notebook`` to ``path`` atomically: all of it or, on any failure, nothing.

    The text goes to a temporary file in the same folder, which then replaces ``path``
    (``os.replace`` is atomic within a file system); a failure removes the temporary file.
    """
    data = nbformat.writes(notebook).encode("utf-8")  # type: ignore[no-untyped-call]
    fd, temp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o7777)
        os.replace(temp, path)
    except BaseException as error:
        temp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise NotebookFileError(path, f"cannot write it: {error.strerror}") from error
        raise


def _create_temp(path: Path) -> tuple[int, Path]:
    # os.open with mode 0o666 lets the umask decide permissions, as for any new file
    # (tempfile.mkstemp would make an owner-only notebook).
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.nbrepro-tmp")
    try:
        return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temp
    except OSError as error:
        reason = error.strerror or str(error)
        raise NotebookFileError(path, f"cannot write there: {reason}") from None
