"""What building the record costs: the first time in a kernel, and again (each save, export).

Run ``python benchmarks/record_bench.py [--repeat 5] [--import numpy torch]``. In one fresh
subprocess per round, with the named frameworks imported and nbrepro seeded, it times
``build_record(session())`` three times: the first call (installed distributions are looked
up), a repeat with nothing changed (the lookup is kept), and one after a new top-level module
was imported (the lookup is made again). Medians over the rounds, with ratios to the first
call: compare ratios, not seconds, on a busy machine. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PROBE = """
import json, sys, time
for name in sys.argv[1:]:
    __import__(name)
import nbrepro
from nbrepro._record import build_record
from nbrepro._session import session
nbrepro.seed(42)
times = []
for step in ("first", "repeat", "after an import"):
    if step == "after an import":
        import xml.dom.minidom  # a top-level module not imported before
    start = time.perf_counter()
    build_record(session())
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--import", dest="modules", nargs="*", default=["numpy"])
    args = parser.parse_args()
    rounds = []
    for _ in range(args.repeat):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, *args.modules],
            capture_output=True, text=True, check=True,
            env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
        ).stdout  # fmt: skip
        rounds.append(json.loads(out.splitlines()[-1]))
    first = statistics.median(r[0] for r in rounds)
    print(f"build_record with {', '.join(args.modules) or 'nothing'} imported, "
          f"median of {args.repeat} processes")  # fmt: skip
    print(f"{'call':<18}{'ms':>10}{'ratio':>10}")
    for index, name in enumerate(("first", "repeat", "after an import")):
        median = statistics.median(r[index] for r in rounds)
        print(f"{name:<18}{median * 1000:>10.1f}{median / first:>10.3f}")


if __name__ == "__main__":
    main()
