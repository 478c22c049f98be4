"""Benchmarks: numbers to report, not assertions.

1. Push + read round trips per second through the real HTTP stack (aiohttp server on loopback,
   aiohttp client), sequential and with concurrent clients.
2. Wall time to advance 1,000 FoxESS devices, each with a daily windowed charge, through 7
   virtual days (every dispatch, acknowledgement, completion and cleanup event runs).

Run with `make bench` or `python -m bench.run [--devices N] [--days D] [--requests R]`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import datetime, timedelta, timezone

import aiohttp
from aiohttp import web

from amps_sim.simulator.web.app import create_app
from amps_sim.simulator.world import TenantSpec, World

START = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)


def _devices(count: int) -> list[dict]:
    return [{"id": f"dev_{i:05d}", "profile": "foxess", "timeZone": "Europe/London", "timeZoneKnown": True,
             "scheduler": {"enabled": False, "groups": []}} for i in range(count)]


async def http_round_trips(requests: int, concurrency: int) -> float:
    app = create_app(seed=1, wall_clock=lambda: START)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base}/_sim/tenants", json={"clock": {"mode": "virtual", "now": "2026-05-08T08:00:00Z"},
                                                                 "devices": _devices(requests)}) as resp:
                key = (await resp.json())["apiKey"]
            headers = {"x-api-key": key}
            queue = list(range(requests))

            async def worker() -> None:
                while queue:
                    i = queue.pop()
                    body = {"action": {"command": "charge", "parameters": {"target": {"value": 90, "unit": "percent"}}}}
                    async with session.post(f"{base}/battery/dev_{i:05d}", json=body, headers=headers) as resp:
                        assert resp.status == 202, await resp.text()
                        action_id = (await resp.json())["actionId"]
                    async with session.get(f"{base}/actions/{action_id}", headers=headers) as resp:
                        assert resp.status == 200
                        await resp.read()

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - began
    finally:
        await runner.cleanup()
    return requests / elapsed


def seven_days(devices: int, days: int) -> tuple[float, float, int]:
    world = World(TenantSpec.model_validate({"clock": {"mode": "virtual", "now": "2026-05-08T08:00:00Z"}, "devices": _devices(devices)}),
                  api_key="bench", seed=1, created_at=START, monotonic=time.monotonic)
    pushing = advancing = 0.0
    events = 0
    for day in range(days):
        date = (START + timedelta(days=day + 1)).date().isoformat()
        began = time.perf_counter()
        for i in range(devices):
            body = {"action": {"command": "charge", "start": f"{date}T01:00:00+01:00", "end": f"{date}T05:00:00+01:00",
                               "parameters": {"target": {"value": 95, "unit": "percent"}}}}
            world.platform.push(f"dev_{i:05d}", body)
        pushing += time.perf_counter() - began
        began = time.perf_counter()
        events += world.clock.advance_to(world.clock.now + timedelta(days=1))
        advancing += time.perf_counter() - began
    began = time.perf_counter()
    for device_id in world.slots:
        world.platform.device_read(device_id)
    advancing += time.perf_counter() - began
    return pushing, advancing, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()
    random.seed(0)
    sequential = asyncio.run(http_round_trips(args.requests, 1))
    concurrent = asyncio.run(http_round_trips(args.requests, 16))
    print(f"push+read round trips/s over HTTP: {sequential:,.0f} sequential, {concurrent:,.0f} with 16 concurrent clients")
    pushing, advancing, events = seven_days(args.devices, args.days)
    print(f"{args.devices} devices x daily windowed charge x {args.days} virtual days: "
          f"{pushing + advancing:.2f} s wall ({pushing:.2f} s pushing, {advancing:.2f} s advancing and reading), {events:,} events")


if __name__ == "__main__":
    main()
