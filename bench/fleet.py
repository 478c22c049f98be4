"""Fleet engine benchmark: numbers to report, not assertions.

1. In process: N FoxESS devices, each with a homeowner's two daily native rows (scheduler on)
   and a windowed charge pushed through the platform every day, advanced day by day through D
   virtual days with every event run, then every device read. Prints wall time per phase, the
   events run, and the memory the world holds (tracemalloc, measured in a separate pass because
   tracing slows Python down).
2. Over HTTP (the control API, `amps-sim serve` in a subprocess): N devices with the same two
   daily rows, advanced D days with one `POST /_sim/clock/advance`, then read back with one
   `GET /_sim/devices`; prints the wall time of each request.

`python -m bench.fleet [--devices 10000] [--days 30] [--http-devices 10000] [--memory-devices 1000] [--gc on|off|freeze] [--no-gc] [--digest] [--runs N]`
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from amps_sim.simulator.validation import PushRequest
from amps_sim.simulator.world.tenants import TenantSpec, World

START = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)
HOMEOWNER_ROWS = [
    {"start": "07:00", "end": "08:59", "workMode": "ForceDischarge", "fdSoc": 20, "fdPwr": 2000},
    {"start": "17:00", "end": "19:59", "workMode": "Backup"},
]


def devices(count: int) -> list[dict[str, object]]:
    return [
        {"id": f"dev_{i:05d}", "profile": "foxess", "timeZone": "Europe/London", "timeZoneKnown": True,
         "scheduler": {"enabled": True, "groups": HOMEOWNER_ROWS}}
        for i in range(count)
    ]


def build(count: int) -> World:
    spec = TenantSpec.model_validate({"clock": {"mode": "virtual", "now": "2026-05-08T08:00:00Z"}, "devices": devices(count)})
    return World(spec, api_key="bench", seed=1, created_at=START, monotonic=time.monotonic)


def run_days(world: World, count: int, days: int, freeze_daily: bool = False) -> tuple[float, float, float, int]:
    pushing = advancing = 0.0
    events = 0
    ids = [f"dev_{i:05d}" for i in range(count)]
    for day in range(days):
        if freeze_daily:
            # What survived the day before moves to the collector's permanent generation, so
            # its full passes scan only what the new day made (see in_process).
            gc.freeze()
        date = (START + timedelta(days=day + 1)).date().isoformat()
        began = time.perf_counter()
        # The day's request is the same for every device, so it is parsed once (as a client
        # driving a fleet would build it once); every push still goes through Platform.push.
        body = {"action": {"command": "charge", "start": f"{date}T01:00:00+01:00", "end": f"{date}T05:00:00+01:00",
                           "parameters": {"target": {"value": 95, "unit": "percent"}}}}
        request = PushRequest.model_validate(body)
        push = world.platform.push
        for device_id in ids:
            push(device_id, request)
        pushing += time.perf_counter() - began
        began = time.perf_counter()
        events += world.clock.advance_to(world.clock.now + timedelta(days=1))
        advancing += time.perf_counter() - began
    began = time.perf_counter()
    for device_id in world.devices:
        world.device_view(device_id)
    reading = time.perf_counter() - began
    return pushing, advancing, reading, events


def digest(world: World) -> str:
    """A fingerprint of everything the run produced: every device as read now, every action's record.

    An optimisation of the engine must leave it unchanged (compare it with the tree before)."""
    hasher = hashlib.sha256()
    for view in world.device_views():
        hasher.update(json.dumps(view, sort_keys=True, default=str).encode())
    for action in world.platform.actions:
        hasher.update(json.dumps(action.record(), sort_keys=True, default=str).encode())
    return hasher.hexdigest()[:16]


class CollectorTimer:
    """Counts the garbage collector's passes per generation and the wall time they take."""

    def __init__(self) -> None:
        self.passes = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.passes[info["generation"]] += 1
            self.seconds[info["generation"]] += time.perf_counter() - self._began


GC_MODES = {
    "on": "garbage collector as Python sets it",
    "off": "garbage collector off during the run",
    "freeze": "survivors frozen (gc.freeze) at the start of each day",
}


def in_process(count: int, days: int, memory_devices: int, mode: str = "on", fingerprint: bool = False) -> None:
    began = time.perf_counter()
    world = build(count)
    setup = time.perf_counter() - began
    gc.collect()
    if mode == "off":
        # The world holds hundreds of thousands of live records and no garbage cycles, so the
        # collector's automatic full passes only re-scan live objects; a driver that knows this
        # turns them off. The collection afterwards reports how much cyclic garbage there was.
        gc.disable()
    # "freeze": the collector stays on, but what survived each day is frozen, so a full pass
    # scans only the newest day's objects rather than the whole month's world. Frozen objects
    # are still freed by reference counting; only cyclic garbage would wait, and the collection
    # after the run (unfrozen) reports how much of it there was.
    timer = CollectorTimer()
    gc.callbacks.append(timer)
    try:
        pushing, advancing, reading, events = run_days(world, count, days, freeze_daily=mode == "freeze")
    finally:
        gc.callbacks.remove(timer)
    total = pushing + advancing + reading
    found = None
    if mode != "on":
        gc.enable()
        gc.unfreeze()
        found = gc.collect()
    print(f"fleet in process: {count:,} devices x {days} days (2 native rows each + a daily windowed charge pushed), "
          f"{GC_MODES[mode]}")
    print(f"  {total:.2f} s wall: {pushing:.2f} s pushing {count * days:,} actions, {advancing:.2f} s advancing "
          f"({events:,} events), {reading:.2f} s reading every device (setup {setup:.2f} s, not counted)")
    print(f"  collector: {timer.passes[2]} full passes in {timer.seconds[2]:.2f} s, "
          f"{timer.passes[0] + timer.passes[1]:,} young passes in {timer.seconds[0] + timer.seconds[1]:.2f} s")
    if found is not None:
        print(f"  a full collection afterwards found {found:,} unreachable objects")
    # What every full pass walks, and how many references it follows (each reference a memory
    # read): the retained records' share of it is what an engine change can cut.
    tracked = gc.get_objects()
    followed = sum(map(len, map(gc.get_referents, tracked)))
    print(f"  collector: {len(tracked):,} objects tracked after the run ({len(tracked) / count:.1f} per device), "
          f"{followed:,} references a full pass follows ({followed / count:.0f} per device)")
    del tracked
    print(f"  queue holds {len(world.clock.queue):,} live events; {len(world.platform.actions):,} actions retained")
    if fingerprint:
        print(f"  digest of every device view and action record: {digest(world)}")
    if memory_devices:
        # Tracing slows Python several times over, so memory is measured on a smaller fleet; the
        # bytes per device and per retained action do not depend on the fleet's size.
        del world
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        world = build(memory_devices)
        base = tracemalloc.get_traced_memory()[0]
        run_days(world, memory_devices, days)
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        retained = len(world.platform.actions)
        print(f"  memory ({memory_devices:,} devices, traced): {(base - before) / memory_devices:,.0f} bytes per device "
              f"after setup; {(held - base) / max(retained, 1):,.0f} bytes more per retained action after {days} days "
              f"(the record, its indexes and handles, and the rows and events it left)")


def repeated(count: int, days: int, memory_devices: int, mode: str, fingerprint: bool, runs: int) -> None:
    """The in-process fleet `runs` times, each run in a fresh interpreter (no heap or collector
    state carried from the one before), one after the other; prints every run's report, then
    the median and range of their wall times. On a host whose speed drifts between minutes,
    one run is one sample of the drift; the median of several is the figure to compare."""
    walls = []
    for run in range(runs):
        argv = [sys.executable, "-m", "bench.fleet", "--devices", str(count), "--days", str(days), "--http-devices", "0",
                "--memory-devices", str(memory_devices if run == runs - 1 else 0), "--gc", mode]
        if fingerprint:
            argv.append("--digest")
        report = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
        print(f"run {run + 1} of {runs}:")
        print(report, end="", flush=True)
        found = re.search(r"^  ([0-9.]+) s wall:", report, re.MULTILINE)
        if found is None:
            raise SystemExit(f"no wall time in the run's report:\n{report}")
        walls.append(float(found.group(1)))
    print(f"fleet in process, {runs} runs: median {statistics.median(walls):.2f} s wall "
          f"(runs {', '.join(f'{wall:.2f}' for wall in walls)} s)")


def over_http(count: int, days: int) -> None:
    from bench.http import free_port, serving

    world = {"apiKey": "sk_bench", "clock": {"mode": "virtual", "now": "2026-05-08T00:00:00Z"}, "devices": devices(count)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fleet.yaml"
        path.write_text(yaml.safe_dump(world), encoding="utf-8")
        port = free_port()
        argv = [sys.executable, "-m", "amps_sim.cli", "serve", "--port", str(port), "--seed", "1", "--world", str(path)]
        with serving(argv, port, cpu=None) as base:
            def call(method: str, route: str, body: object = None) -> tuple[float, bytes]:
                data = json.dumps(body).encode() if body is not None else None
                request = urllib.request.Request(base + route, data=data, method=method,
                                                 headers={"x-api-key": "sk_bench", "Content-Type": "application/json"})
                began = time.perf_counter()
                with urllib.request.urlopen(request, timeout=3600) as reply:
                    raw = reply.read()
                return time.perf_counter() - began, raw

            advance_s, _ = call("POST", "/_sim/clock/advance", {"by": f"{days}d"})
            read_s, raw = call("GET", "/_sim/devices")
            listed = json.loads(raw)["devices"]
    print(f"fleet over the control API: {count:,} devices with 2 daily native rows, advanced {days} days: "
          f"advance {advance_s:.2f} s, GET /_sim/devices {read_s:.2f} s ({len(listed):,} devices, {len(raw) / 2**20:.1f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000, help="in-process fleet size (0: skip)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--http-devices", type=int, default=10_000)
    parser.add_argument("--memory-devices", type=int, default=1000, help="fleet size for the memory pass (0: skip)")
    parser.add_argument("--gc", choices=sorted(GC_MODES), default="on",
                        help="the collector during the in-process run: on (as Python sets it), off, or freeze "
                             "(what survived each day is frozen, so full passes scan only the new day)")
    parser.add_argument("--no-gc", action="store_true", help="the same as --gc off")
    parser.add_argument("--digest", action="store_true",
                        help="print a fingerprint of the in-process run's results (devices and actions), to check "
                             "that an engine change leaves them unchanged")
    parser.add_argument("--runs", type=int, default=1,
                        help="in-process runs, each in a fresh process (the memory pass follows the last); with "
                             "more than one, their median and range are printed as well")
    args = parser.parse_args()
    mode = "off" if args.no_gc else args.gc
    if args.devices and args.runs > 1:
        repeated(args.devices, args.days, args.memory_devices, mode, args.digest, args.runs)
    elif args.devices:
        in_process(args.devices, args.days, args.memory_devices, mode=mode, fingerprint=args.digest)
    if args.http_devices:
        over_http(args.http_devices, args.days)


if __name__ == "__main__":
    main()
