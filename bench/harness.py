"""Harness benchmark: `amps-sim run` in one process against `--jobs N`, in interleaved pairs, and
the share of each run spent on spec validation (as the run's own summary line reports it).

`python -m bench.harness [--pairs 4] [--jobs 2] [PATH ...]`
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time

_SUMMARY = re.compile(r"in ([0-9.]+) s · spec validation ([0-9.]+) s over (\d+) responses \(([0-9.]+)% of the run\)")


def timed_run(paths: list[str], jobs: int) -> tuple[float, float]:
    """(wall seconds of the whole command, validation share in percent)."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "amps_sim.cli", "run", *paths, "--jobs", str(jobs)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    match = _SUMMARY.search(done.stdout)
    assert match is not None, done.stdout[-500:]
    return wall, float(match.group(4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", default=["scenarios"])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    speedups, shares = [], []
    for pair in range(args.pairs):
        order = [1, args.jobs] if pair % 2 == 0 else [args.jobs, 1]
        walls = {}
        for jobs in order:
            walls[jobs], share = timed_run(args.paths, jobs)
            if jobs == 1:
                shares.append(share)
        speedups.append(walls[1] / walls[args.jobs])
        print(f"  pair {pair + 1}: one process {walls[1]:.2f} s, --jobs {args.jobs} {walls[args.jobs]:.2f} s, "
              f"speed-up {speedups[-1]:.2f}x; validation {shares[-1]:.1f}% of the one-process run", flush=True)
    print(f"amps-sim run --jobs {args.jobs}: median speed-up {statistics.median(speedups):.2f}x "
          f"(range {min(speedups):.2f}-{max(speedups):.2f}); spec validation median {statistics.median(shares):.1f}% of the run")


if __name__ == "__main__":
    main()
