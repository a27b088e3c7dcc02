"""Fingerprints of data files and folders, to notice data that changed under the same path.

Each file is read once and hashed with SHA-256 (hashlib uses the CPU's SHA extensions: over
1 GB/s a core), files in parallel threads (hashlib releases the GIL). A cache keyed by path,
size, mtime and inode makes re-checking unchanged data a matter of ``stat`` calls. A folder's
fingerprint hashes the sorted (relative path, size, file digest) list, so it changes when any
file is added, removed, renamed or edited; up to :data:`MAX_LISTED` files are also listed one
by one, so that drift can name them.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from nbrepro.errors import InvalidOptionError

CHUNK = 1 << 20
MAX_LISTED = 2000
_CACHE_VERSION = 1


def _cache_path() -> Path:
    base = os.environ.get("NBREPRO_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "nbrepro"
    )
    return Path(base) / "fingerprints.json"


class _Cache:
    """File digests by (path, size, mtime_ns, inode); loaded once, saved after a run."""

    def __init__(self) -> None:
        self.path = _cache_path()
        self.entries: dict[str, list[Any]] = {}
        self.lock = threading.Lock()
        self.dirty = False
        try:
            data = json.loads(self.path.read_text())
            if data.get("version") == _CACHE_VERSION:
                self.entries = data["entries"]
        except (OSError, ValueError, KeyError, AttributeError):
            pass  # no cache, or an unreadable one: start afresh

    def get(self, path: str, stat: os.stat_result) -> str | None:
        entry = self.entries.get(path)
        if entry and entry[:3] == [stat.st_size, stat.st_mtime_ns, stat.st_ino]:
            return str(entry[3])
        return None

    def put(self, path: str, stat: os.stat_result, digest: str) -> None:
        with self.lock:
            self.entries[path] = [stat.st_size, stat.st_mtime_ns, stat.st_ino, digest]
            self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps({"version": _CACHE_VERSION, "entries": self.entries}))
            os.replace(temporary, self.path)
        except OSError:
            pass  # a read-only home only costs the next check its speed


def _hash_file(path: str) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
    return digest.hexdigest()


def _digest(path: str, stat: os.stat_result, cache: _Cache) -> str:
    cached = cache.get(path, stat)
    if cached is not None:
        return cached
    digest = _hash_file(path)
    cache.put(path, stat, digest)
    return digest


def _walk(folder: Path) -> list[tuple[str, str, os.stat_result]]:
    found = []
    for root, directories, files in os.walk(folder):
        directories.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            try:
                stat = os.stat(full)
            except OSError:
                continue  # vanished, or a dangling link
            found.append((os.path.relpath(full, folder).replace(os.sep, "/"), full, stat))
    return found


def fingerprint(
    paths: Iterable[str | os.PathLike[str]], *, workers: int | None = None
) -> dict[str, Any]:
    """Fingerprints of files and folders, keyed by the path as given.

    A file: ``{"kind": "file", "size", "sha256"}``. A folder: ``{"kind": "dir", "files",
    "size", "sha256", "listing"}``, where ``listing`` maps relative paths to their digests
    (omitted above :data:`MAX_LISTED` files).

    Raises:
        InvalidOptionError: a path that does not exist; nothing is recorded then.
    """
    names = [os.fspath(p) for p in paths]
    missing = [p for p in names if not os.path.exists(p)]
    if missing:
        raise InvalidOptionError(
            f"no such file or folder: {', '.join(map(repr, missing))}; "
            "give paths to existing data files or folders"
        )
    cache = _Cache()
    jobs: list[tuple[str, str, str, os.stat_result]] = []  # (key, relative, full, stat)
    for key in names:
        if os.path.isdir(key):
            jobs += [(key, rel, full, stat) for rel, full, stat in _walk(Path(key))]
        else:
            jobs.append((key, "", os.path.abspath(key), os.stat(key)))
    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 1) + 1)) as pool:
        digests = list(pool.map(lambda job: _digest(os.path.abspath(job[2]), job[3], cache), jobs))
    cache.save()

    result: dict[str, Any] = {}
    for key in names:
        entries = [
            (rel, stat.st_size, digest)
            for (owner, rel, _, stat), digest in zip(jobs, digests, strict=True)
            if owner == key
        ]
        if not os.path.isdir(key):
            (_, size, digest) = entries[0]
            result[key] = {"kind": "file", "size": size, "sha256": digest}
            continue
        folder = hashlib.sha256()
        for rel, size, digest in entries:
            folder.update(f"{rel}\0{size}\0{digest}\n".encode())
        record: dict[str, Any] = {
            "kind": "dir",
            "files": len(entries),
            "size": sum(size for _, size, _ in entries),
            "sha256": folder.hexdigest(),
        }
        if len(entries) <= MAX_LISTED:
            record["listing"] = {rel: digest for rel, _, digest in entries}
        result[key] = record
    return result


def drift(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What changed between two fingerprints of the same paths, one line per path changed."""
    lines = []
    for key, before in recorded.items():
        after = current.get(key)
        if after is None:
            lines.append(f"{key}: missing now")
            continue
        if before.get("sha256") == after.get("sha256"):
            continue
        if before.get("kind") != "dir" or after.get("kind") != "dir":
            lines.append(
                f"{key}: contents changed ({before.get('size')} -> {after.get('size')} bytes)"
            )
            continue
        old, new = before.get("listing"), after.get("listing")
        summary = (
            f"{before['files']} -> {after['files']} files, "
            f"{before['size']} -> {after['size']} bytes"
        )
        if old is None or new is None:
            lines.append(f"{key}: contents changed ({summary})")
            continue
        added = sorted(set(new) - set(old))
        removed = sorted(set(old) - set(new))
        changed = sorted(k for k in set(old) & set(new) if old[k] != new[k])
        parts = [
            f"{len(names)} {what} ({_names(names)})"
            for what, names in (("added", added), ("removed", removed), ("changed", changed))
            if names
        ]
        lines.append(f"{key}: {', '.join(parts)}; {summary}")
    return lines


def _names(names: list[str], shown: int = 3) -> str:
    more = f", … {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
