"""Fingerprints of data files and folders, to notice data that changed under the same path.

Each file is read once and hashed with SHA-256 (hashlib uses the CPU's SHA extensions: over
1 GB/s a core), files in parallel threads (hashlib releases the GIL). A cache keyed by path,
size, mtime and inode makes re-checking unchanged data a matter of ``stat`` calls. A folder's
fingerprint hashes the sorted (relative path, size, file digest) list, so it changes when any
file is added, removed, renamed or edited; up to :data:`MAX_LISTED` files are also listed one
by one, so that drift can name them.

Only regular files are read. A FIFO, socket or device inside a folder would block or never
end (``/dev/zero``), so it is listed under ``skipped`` and not read; named directly, it is
refused. Ctrl-C stops hashing within one chunk: the worker threads check a flag between reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat as stat_module
import threading
from collections.abc import Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import cast

from nbrepro._record_schema import DirFingerprint, FileFingerprint, Fingerprint
from nbrepro._redact import redact, redact_fingerprint
from nbrepro._special_files import NotRegularError, file_kind, open_regular
from nbrepro.errors import InvalidOptionError

CHUNK = 1 << 20
MAX_LISTED = 2000
_CACHE_VERSION = 1
_CACHE_LIMIT = 256 << 20  # a cache file larger than this is not read (it is not ours)


def cache_dir() -> Path:
    """nbrepro's cache folder: ``$NBREPRO_CACHE_DIR``, else ``~/.cache/nbrepro``."""
    return Path(
        os.environ.get("NBREPRO_CACHE_DIR")
        or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "nbrepro"
        )
    )


class _Stopped(Exception):
    """Hashing stopped because another file failed or Ctrl-C was pressed."""


class _Cache:
    """File digests by (path, size, mtime_ns, inode); loaded once, saved after a run.

    A cache file that is corrupt, of another version or of the wrong shape is ignored and
    rewritten on the next save; an entry of the wrong shape is recomputed.
    """

    def __init__(self) -> None:
        self.path = cache_dir() / "fingerprints.json"
        self.entries: dict[str, list[object]] = {}
        self.lock = threading.Lock()
        self.dirty = False
        self.writable = True
        try:
            descriptor = open_regular(str(self.path))
        except FileNotFoundError:
            return
        except (OSError, NotRegularError):
            self.writable = False  # not ours to replace (a FIFO, a folder, no permission)
            return
        try:
            with os.fdopen(descriptor, "rb") as file:
                data = json.loads(file.read(_CACHE_LIMIT + 1))
        except (OSError, ValueError, RecursionError):
            data = None  # corrupt JSON (also too deep or a number too long to parse)
        if (
            isinstance(data, dict)
            and data.get("version") == _CACHE_VERSION
            and isinstance(data.get("entries"), dict)
        ):
            self.entries = {k: v for k, v in data["entries"].items() if _valid_entry(v)}
            self.dirty = len(self.entries) != len(data["entries"])  # drop the bad ones
        else:
            self.dirty = True  # rewrite it in the right shape

    def get(self, path: str, stat: os.stat_result) -> str | None:
        entry = self.entries.get(path)
        if entry is not None and entry[:3] == [stat.st_size, stat.st_mtime_ns, stat.st_ino]:
            return str(entry[3])
        return None

    def put(self, path: str, stat: os.stat_result, digest: str) -> None:
        with self.lock:
            self.entries[path] = [stat.st_size, stat.st_mtime_ns, stat.st_ino, digest]
            self.dirty = True

    def save(self) -> None:
        if not self.dirty or not self.writable:
            return
        temporary = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps({"version": _CACHE_VERSION, "entries": self.entries}))
            os.replace(temporary, self.path)
        except OSError:
            pass  # a read-only home only costs the next check its speed
        finally:
            temporary.unlink(missing_ok=True)  # also on Ctrl-C


def _valid_entry(entry: object) -> bool:
    """A cache entry of the shape ``[size, mtime_ns, inode, sha256 hex digest]``."""
    return (
        isinstance(entry, list)
        and len(entry) == 4
        and all(isinstance(n, int) and not isinstance(n, bool) for n in entry[:3])
        and isinstance(entry[3], str)
        and len(entry[3]) == 64
    )


def _hash_file(path: str, stop: threading.Event) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with os.fdopen(open_regular(path), "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            if stop.is_set():
                raise _Stopped
            digest.update(view[:count])
    return digest.hexdigest()


def _walk(folder: Path) -> tuple[list[tuple[str, str, os.stat_result]], list[str]]:
    """Regular files under ``folder`` (relative name, full path, stat) and what was skipped."""
    found, skipped = [], []
    for root, directories, files in os.walk(folder):
        directories.sort()
        prefix = os.path.relpath(root, folder).replace(os.sep, "/") + "/"
        prefix = "" if prefix == "./" else prefix
        # os.walk does not follow links to folders (they could loop): say so.
        linked = [d for d in directories if os.path.islink(os.path.join(root, d))]
        skipped += [prefix + name for name in linked]
        for name in sorted(files):
            full = os.path.join(root, name)
            try:
                stat = os.stat(full)
            except OSError:
                skipped.append(prefix + name)  # a dangling link, or vanished
                continue
            if stat_module.S_ISREG(stat.st_mode):
                found.append((prefix + name, full, stat))
            else:
                skipped.append(prefix + name)  # a FIFO, socket or device: reading would block
    return found, sorted(skipped)


def _unreadable(path: str, error: BaseException) -> InvalidOptionError:
    if isinstance(error, NotRegularError):
        reason = f"it is {error}"
    else:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return InvalidOptionError(
        f"cannot fingerprint {path!r}: {reason}; only readable regular files are fingerprinted"
    )


def fingerprint(
    paths: Iterable[str | os.PathLike[str]], *, workers: int | None = None
) -> dict[str, Fingerprint]:
    """Fingerprints of files and folders, keyed by the path as given.

    A file: ``{"kind": "file", "size", "sha256"}``. A folder: ``{"kind": "dir", "files",
    "size", "sha256", "listing"}``, where ``listing`` maps relative paths (secret-looking
    names redacted) to their digests (omitted above :data:`MAX_LISTED` files), and
    ``skipped`` lists what in the folder was not read: FIFOs, sockets, devices, dangling
    links, links to folders. Ctrl-C (``KeyboardInterrupt``) stops the hashing threads
    within one chunk.

    Raises:
        InvalidOptionError: a path that does not exist, one that is not a regular file or
            folder (a FIFO, ``/dev/zero``), or a file that cannot be read; nothing is
            recorded then.
    """
    names = [os.fspath(p) for p in paths]
    missing = [p for p in names if not os.path.exists(p)]
    if missing:
        raise InvalidOptionError(
            f"no such file or folder: {', '.join(map(repr, missing))}; "
            "give paths to existing data files or folders"
        )
    jobs: list[tuple[str, str, str, os.stat_result]] = []  # (key, relative, full, stat)
    skipped: dict[str, list[str]] = {}
    for key in names:
        stat = os.stat(key)
        if stat_module.S_ISDIR(stat.st_mode):
            found, skipped[key] = _walk(Path(key))
            jobs += [(key, rel, full, file_stat) for rel, full, file_stat in found]
        elif stat_module.S_ISREG(stat.st_mode):
            jobs.append((key, "", key, stat))
        else:
            raise _unreadable(key, NotRegularError(file_kind(stat.st_mode)))
    cache = _Cache()
    digests = _digests(jobs, cache, workers)
    cache.save()

    result: dict[str, Fingerprint] = {}
    for key in names:
        entries = [
            (rel, stat.st_size, digest)
            for (owner, rel, _, stat), digest in zip(jobs, digests, strict=True)
            if owner == key
        ]
        if key not in skipped:
            (_, size, digest) = entries[0]
            result[key] = FileFingerprint(kind="file", size=size, sha256=digest)
            continue
        folder = hashlib.sha256()
        for rel, size, digest in entries:
            folder.update(f"{rel}\0{size}\0{digest}\n".encode())
        record = DirFingerprint(
            kind="dir",
            files=len(entries),
            size=sum(size for _, size, _ in entries),
            sha256=folder.hexdigest(),
        )
        if len(entries) <= MAX_LISTED:
            record["listing"] = {rel: digest for rel, _, digest in entries}
        if skipped[key]:
            record["skipped"] = skipped[key]
        result[key] = redact_fingerprint(record)
    return result


def _digests(
    jobs: list[tuple[str, str, str, os.stat_result]], cache: _Cache, workers: int | None
) -> list[str]:
    """The digest of each job's file, in order, hashed in parallel threads.

    The first failure, or Ctrl-C, sets a flag every thread checks between chunks, so the
    threads stop within one chunk and the error (or ``KeyboardInterrupt``) is raised here.
    """
    stop = threading.Event()
    full_paths = [os.path.abspath(job[2]) for job in jobs]
    digests = [cache.get(full, job[3]) for full, job in zip(full_paths, jobs, strict=True)]
    missing = [index for index, digest in enumerate(digests) if digest is None]
    if not missing:
        return [digest for digest in digests if digest is not None]

    def digest(index: int) -> str:
        if stop.is_set():
            raise _Stopped
        try:
            value = _hash_file(full_paths[index], stop)
        except _Stopped:
            raise
        except (OSError, NotRegularError) as error:
            stop.set()
            raise _unreadable(jobs[index][2], error) from None
        cache.put(full_paths[index], jobs[index][3], value)
        return value

    pool = ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 1) + 1))
    try:
        futures = {index: pool.submit(digest, index) for index in missing}
        # wait() sleeps on a lock, which a signal interrupts: Ctrl-C lands here at once.
        done, _ = wait(futures.values(), return_when=FIRST_EXCEPTION)
        for future in futures.values():
            error = future.exception() if future in done else None
            if error is not None and not isinstance(error, _Stopped):
                raise error
        for index, future in futures.items():
            digests[index] = future.result()
        return [digest for digest in digests if digest is not None]
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def drift(recorded: dict[str, Fingerprint], current: dict[str, Fingerprint]) -> list[str]:
    """What changed between two fingerprints of the same paths, one line per path changed.

    File names are compared and reported redacted, so a fingerprint read back from a
    record matches a fresh one, and no secret-looking name reaches a finding.
    """
    lines = []
    for key, before in recorded.items():
        after = current.get(key)
        shown = redact(key)
        if after is None:
            lines.append(f"{shown}: missing now")
            continue
        if before["sha256"] == after["sha256"]:
            continue
        if before["kind"] != "dir" or after["kind"] != "dir":
            lines.append(f"{shown}: contents changed ({before['size']} -> {after['size']} bytes)")
            continue
        summary = (
            f"{before['files']} -> {after['files']} files, "
            f"{before['size']} -> {after['size']} bytes"
        )
        old = cast("DirFingerprint", redact_fingerprint(before)).get("listing")
        new = cast("DirFingerprint", redact_fingerprint(after)).get("listing")
        if old is None or new is None:
            lines.append(f"{shown}: contents changed ({summary})")
            continue
        added = sorted(set(new) - set(old))
        removed = sorted(set(old) - set(new))
        changed = sorted(k for k in set(old) & set(new) if old[k] != new[k])
        parts = [
            f"{len(names)} {what} ({_names(names)})"
            for what, names in (("added", added), ("removed", removed), ("changed", changed))
            if names
        ]
        lines.append(f"{shown}: {', '.join(parts)}; {summary}")
    return lines


def _names(names: list[str], shown: int = 3) -> str:
    more = f", … {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
