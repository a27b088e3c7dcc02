"""The ``nbrepro`` command line: one module per command, each with a result that prints itself.

    cli      parsing, dispatch, exit statuses, Ctrl-C
    run      ``nbrepro run``: execute in a fresh kernel, write the notebook with its record
    verify   ``nbrepro verify``: run several times, compare, name the first differing cell
    explain  ``nbrepro explain`` / ``verify --explain``: the first differing torch operation
             (or variable), where, and why
    rerun    ``nbrepro rerun``: repeat a recorded run; drift and matching outputs
    show     ``nbrepro show``: print a notebook's record

Each command is a plain function returning its result object; the result's ``status`` is the
exit status and ``print()`` writes its report (stdout) and problems (stderr).
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable

#: Receives one line of progress (no trailing newline).
Progress = Callable[[str], None]


class Status(enum.IntEnum):
    """Exit statuses shared by the commands."""

    OK = 0  #: executed / reproducible / outputs match
    FAILED = 1  #: a cell failed / not reproducible / outputs differ
    ERROR = 2  #: usage, input or output error; a kernel that did not start
    INTERRUPTED = 130  #: Ctrl-C (128 + SIGINT), after every kernel was stopped


def progress_printer(quiet: bool) -> Progress:
    """Progress lines on stderr, prefixed ``nbrepro:``; nothing with ``quiet``."""

    def show(line: str) -> None:
        if not quiet:
            print(f"nbrepro: {line}", file=sys.stderr, flush=True)

    return show


def print_error(command: str, text: str) -> None:
    """``text`` on stderr, each line prefixed ``nbrepro COMMAND:``."""
    for line in text.splitlines():
        print(f"nbrepro {command}: {line}", file=sys.stderr)
