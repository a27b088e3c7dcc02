"""Shared fixtures: every test starts from an unseeded process state and leaves none behind."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

import nbrepro


@pytest.fixture(autouse=True)
def clean_session() -> Iterator[None]:
    """Undo whatever a test seeded, hooked or switched, and restore ``os.environ``."""
    environ = dict(os.environ)
    nbrepro.reset()
    yield
    nbrepro.reset()
    os.environ.clear()
    os.environ.update(environ)


def framework(name: str) -> object:
    """Import an optional framework for a test, or skip the test when it is not installed."""
    return pytest.importorskip(name)


@pytest.fixture
def python() -> str:
    """The interpreter running the tests, for subprocess checks of import behaviour."""
    return sys.executable
