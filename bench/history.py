"""Cost per operation against a device's history: push, read, cancel and a `GET /actions` page,
timed (in process, through the platform) when the device has 10 actions and again when it has
100,000, and the memory each retained action takes. Prints the ratios (large / small history).

`python -m bench.history [--actions 100000] [--repeat 2000]`
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from datetime import datetime, timezone
from typing import Callable

from amps_sim.simulator.validation import PushRequest
from amps_sim.simulator.world.tenants import TenantSpec, World

START = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)
DEVICE = "dev_history"
WINDOW = {"command": "charge", "start": "2026-05-09T01:00:00Z", "end": "2026-05-09T05:00:00Z",
          "parameters": {"target": {"value": 90, "unit": "percent"}}}
REPLACE = PushRequest.model_validate({"action": WINDOW, "onConflict": "cancel_and_replace"})
PLAIN = PushRequest.model_validate({"action": WINDOW})


def build() -> World:
    spec = TenantSpec.model_validate({"clock": {"mode": "virtual", "now": "2026-05-08T08:00:00Z"}, "devices": [
        {"id": DEVICE, "profile": "foxess", "timeZone": "Europe/London", "timeZoneKnown": True,
         "scheduler": {"enabled": False, "groups": []}}]})
    return World(spec, api_key="bench", seed=1, created_at=START, monotonic=time.monotonic)


def fill(world: World, count: int) -> None:
    while len(world.platform.actions) < count:
        world.platform.push(DEVICE, REPLACE)


def per_op(world: World, repeat: int) -> dict[str, float]:
    """Microseconds per operation (median of five batches)."""
    platform = world.platform
    latest = platform.push(DEVICE, REPLACE)

    def push() -> None:
        nonlocal latest
        latest = platform.push(DEVICE, REPLACE)

    def read() -> None:
        platform.action(latest.id).record()

    def cancel() -> None:
        nonlocal latest
        platform.cancel(latest.id)
        latest = platform.push(DEVICE, PLAIN)

    def page() -> None:
        platform.list_actions(DEVICE, None, 20, 40)

    def page_by_state() -> None:
        platform.list_actions(DEVICE, "cancelled", 20, 40)

    ops: dict[str, Callable[[], None]] = {"push (cancel_and_replace)": push, "read": read, "cancel + push": cancel,
                                           "list page (limit 20, offset 40)": page, "list page, state=cancelled": page_by_state}
    out = {}
    for name, op in ops.items():
        batches = []
        for _ in range(5):
            began = time.perf_counter()
            for _ in range(repeat // 5):
                op()
            batches.append((time.perf_counter() - began) / (repeat // 5) * 1e6)
        out[name] = statistics.median(batches)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    small, large = build(), build()
    fill(small, 10)
    fill(large, args.actions)
    # Interleaved: small, large, small, large, so drift in the host's load falls on both.
    rounds = [(per_op(small, args.repeat), per_op(large, args.repeat)) for _ in range(2)]
    print(f"cost per operation, one device with ~10 actions against ~{args.actions:,} (in process):")
    for name in rounds[0][0]:
        few = statistics.median([r[0][name] for r in rounds])
        many = statistics.median([r[1][name] for r in rounds])
        print(f"  {name}: {few:.1f} us vs {many:.1f} us, ratio {many / few:.2f}")
    del small, large
    gc.collect()
    tracemalloc.start()
    world = build()
    base = tracemalloc.get_traced_memory()[0]
    fill(world, 20_000)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(f"memory: {(held - base) / len(world.platform.actions):,.0f} bytes per retained action "
          f"({len(world.platform.actions):,} cancelled and scheduled windowed actions on one device)")


if __name__ == "__main__":
    main()
