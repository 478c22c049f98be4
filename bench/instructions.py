"""Engine cost per device-day in CPU instructions (valgrind's callgrind): a figure that, unlike
wall time, does not move with the host's load.

The in-process fleet (see `bench.fleet`) runs twice under callgrind with the collector off, for
LONG and for SHORT days; the difference, divided by devices x (LONG - SHORT), is what one more
device-day costs, with interpreter start, imports and setup cancelled out. `PYTHONHASHSEED=0`
keeps string hashing, and so dict layouts, the same from run to run.

`python -m bench.instructions [--devices 200] [--days 20 10] [--tree PATH]`
(`--tree`: count another source tree, e.g. `git archive main` unpacked, with this interpreter.)
Needs valgrind (Debian: `apt-get install valgrind`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# The measured child, run with `-c` in the counted tree (so that tree's `bench.fleet` and engine
# are the ones imported): build the fleet, then run its days with the collector off.
CHILD = """
import gc, sys
from bench.fleet import build, run_days
devices, days = int(sys.argv[1]), int(sys.argv[2])
world = build(devices)
gc.collect()
gc.disable()
run_days(world, devices, days)
"""


def counted(devices: int, days: int, tree: Path) -> int:
    """Instructions callgrind counts for one child run of `devices` x `days` in `tree`."""
    argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
            sys.executable, "-c", CHILD, str(devices), str(days)]
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--days", type=int, nargs=2, default=[20, 10], metavar=("LONG", "SHORT"))
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="source tree to count (default: this one)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    long, short = args.days
    if long <= short:
        raise SystemExit("--days LONG SHORT needs LONG > SHORT")
    high, low = counted(args.devices, long, args.tree), counted(args.devices, short, args.tree)
    per = (high - low) / (args.devices * (long - short))
    print(f"{args.tree}: {per:,.0f} instructions per device-day "
          f"({args.devices} devices; {long} days {high:,}, {short} days {low:,}; collector off)")


if __name__ == "__main__":
    main()
