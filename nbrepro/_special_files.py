"""Open a file only if it is a regular one: FIFOs and devices must never block a read.

Opening a FIFO for reading waits for a writer, forever and deaf to Ctrl-C; reading
``/dev/zero`` never ends. Everything nbrepro reads from a path it was given (data to
fingerprint, a notebook, its cache) goes through :func:`open_regular`.
"""

from __future__ import annotations

import os
import stat


class NotRegularError(Exception):
    """A path that is not a regular file; the message says what it is (``a FIFO ...``)."""


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, for messages: ``"a FIFO (named pipe)"``, ``"a folder"``, ..."""
    for test, name in (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | os.PathLike[str]) -> int:
    """A blocking descriptor of ``path`` opened for reading, only if it is a regular file.

    ``O_NONBLOCK`` makes opening a FIFO return at once; ``fstat`` then checks what was
    really opened, so a file swapped for a FIFO after an earlier ``stat`` is refused too.

    Raises:
        OSError: it cannot be opened.
        NotRegularError: it is a FIFO, device, socket or folder.
    """
    descriptor = os.open(
        path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    )
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularError(file_kind(mode))
        os.set_blocking(descriptor, True)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor
