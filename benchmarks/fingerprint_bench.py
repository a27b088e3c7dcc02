"""Data fingerprint throughput, and the cost of re-checking unchanged data.

Run ``python benchmarks/fingerprint_bench.py [--gigabytes 1] [--files 1000]``. It writes a
folder of random files (default 1 GB in 1000 files) to a temporary directory, reads it once
so that it sits in the page cache, then times, each as the median of ``--repeat`` passes:

- a full fingerprint with an empty digest cache (every byte hashed): target >= 1 GB/s;
- a re-check of the unchanged folder (digests served from the cache keyed by size, mtime and
  inode: one ``stat`` per file);
- a re-check after one file changed.

Printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from nbrepro._fingerprint import fingerprint


def make_folder(root: Path, total: int, files: int) -> Path:
    """``files`` random files adding up to ``total`` bytes."""
    folder = root / "data"
    folder.mkdir()
    size = total // files
    block = os.urandom(size)
    for index in range(files):
        # Distinct contents at little cost: a per-file prefix on one random block.
        (folder / f"part_{index:05d}.bin").write_bytes(index.to_bytes(8, "big") + block[8:])
    return folder


def timed(action: object, repeat: int) -> float:
    """Median seconds of ``repeat`` calls of ``action``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    total = int(args.gigabytes * 1e9)
    root = Path(tempfile.mkdtemp(prefix="nbrepro-bench-"))
    try:
        os.environ["NBREPRO_CACHE_DIR"] = str(root / "cache")
        folder = make_folder(root, total, args.files)
        for path in folder.iterdir():  # warm the page cache
            path.read_bytes()

        def cold() -> None:
            shutil.rmtree(root / "cache", ignore_errors=True)
            fingerprint([str(folder)])

        cold_time = timed(cold, args.repeat)
        fingerprint([str(folder)])
        warm_time = timed(lambda: fingerprint([str(folder)]), args.repeat)
        victim = folder / "part_00000.bin"

        def one_changed() -> None:
            victim.write_bytes(os.urandom(victim.stat().st_size))
            fingerprint([str(folder)])

        changed_time = timed(one_changed, args.repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    gigabytes = total / 1e9
    print(
        f"fingerprint of {gigabytes:.1f} GB in {args.files} files, {os.cpu_count()} CPUs "
        f"(median of {args.repeat})"
    )
    print(f"{'measure':<44} {'time':>9} {'throughput':>12}  target")
    print(
        f"{'full hash, page cache, empty digest cache':<44} {cold_time:>8.2f}s "
        f"{gigabytes / cold_time:>9.2f} GB/s  >= 1 GB/s"
    )
    print(f"{'re-check, unchanged (digest cache)':<44} {warm_time * 1000:>7.1f}ms")
    print(f"{'re-check, one file changed':<44} {changed_time * 1000:>7.1f}ms")


if __name__ == "__main__":
    main()
