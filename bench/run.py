"""`make bench`: every benchmark, one after the other. Numbers to report, not assertions.

- bench.history: push, read, cancel and list cost with 10 and with 100,000 actions on one
  device, and the memory per retained action.
- bench.http: `GET /actions/{id}` and `POST /battery/{id}` against a bare aiohttp handler under
  wrk, pinned, in interleaved pairs; prints the median of the paired ratios.
- bench.fleet: 10,000 devices x 30 days in process (pushes, events, reads, memory), three runs
  in fresh processes and their median, and the same fleet advanced and read through the
  control API.
- bench.harness: `amps-sim run` with one process against `--jobs 2`, interleaved; the share of
  the run spent on spec validation.

`python -m bench.run [--quick]` (--quick: shorter runs and a smaller fleet, for a smoke check).
"""

from __future__ import annotations

import argparse
import subprocess
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    quick = {
        "bench.http": ["--pairs", "2", "--seconds", "2", "--preload", "3000"],
        "bench.fleet": ["--devices", "1000", "--days", "7", "--http-devices", "1000", "--memory-devices", "200"],
        "bench.harness": ["--pairs", "2"],
        "bench.history": ["--actions", "20000", "--repeat", "500"],
    }
    # The fleet month runs three times, each in a fresh process, and reports their median: the
    # host's speed drifts by half between minutes, and one run is one sample of it.
    full = {"bench.fleet": ["--runs", "3"]}
    for module in ("bench.history", "bench.http", "bench.fleet", "bench.harness"):
        print(f"== {module}", flush=True)
        subprocess.run([sys.executable, "-m", module, *(quick[module] if args.quick else full.get(module, []))], check=True)


if __name__ == "__main__":
    main()
