"""Webhook delivery cost, as numbers (not assertions).

Each round: a fresh virtual tenant with D FoxESS devices, one immediate charge pushed to each,
then one `POST /_sim/clock/advance {by: 1m}`, timed. Variant A has no endpoint; variant B has one
endpoint on a loopback receiver answering 204 (so the advance also makes D signed HTTP POSTs,
one at a time, at their instants); variant C's receiver answers 500, and the advance is 2 days,
so every message runs the whole ladder (8 attempts each). Rounds interleave the variants; the
medians and the ratios of medians are printed (this host loses CPU to steal: compare ratios).

    python -m bench.webhooks [--devices 50] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import datetime, timezone

import aiohttp
from aiohttp import web

from amps_sim.simulator.web.app import create_app

START = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)


def _devices(count: int) -> list[dict[str, object]]:
    return [{"id": f"dev_{i:04d}", "profile": "foxess", "timeZone": "Europe/London", "timeZoneKnown": True} for i in range(count)]


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def one_round(session: aiohttp.ClientSession, base: str, receiver_url: str | None, devices: int, span: str) -> tuple[float, int]:
    async with session.post(f"{base}/_sim/tenants", json={"clock": {"now": "2026-05-08T08:00:00Z"}, "devices": _devices(devices)}) as resp:
        headers = {"x-api-key": (await resp.json())["apiKey"]}
    if receiver_url is not None:
        async with session.post(f"{base}/_sim/webhooks", json={"url": receiver_url, "events": ["push.completed"]}, headers=headers) as resp:
            assert resp.status == 201, await resp.text()
    for i in range(devices):
        async with session.post(f"{base}/battery/dev_{i:04d}", json={"action": {"command": "charge"}}, headers=headers) as resp:
            assert resp.status == 202
    began = time.perf_counter()
    async with session.post(f"{base}/_sim/clock/advance", json={"by": span}, headers=headers) as resp:
        reply = await resp.json()
    return time.perf_counter() - began, int(reply["webhookAttempts"])


async def main(devices: int, rounds: int) -> None:
    received = 0
    status = {"code": 204}

    async def hook(request: web.Request) -> web.Response:
        nonlocal received
        await request.read()
        received += 1
        return web.Response(status=status["code"])

    receiver = web.Application()
    receiver.router.add_post("/hooks", hook)
    sim_runner, base = await _serve(create_app(seed=1, wall_clock=lambda: START))
    hook_runner, hook_base = await _serve(receiver)
    times: dict[str, list[float]] = {"A no endpoint, 1m": [], "B 204 receiver, 1m": [], "C 500 receiver, 2d": []}
    attempts: dict[str, int] = {}
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(rounds):
                for name in times:
                    status["code"] = 500 if name.startswith("C") else 204
                    url = None if name.startswith("A") else f"{hook_base}/hooks"
                    seconds, made = await one_round(session, base, url, devices, "2d" if name.startswith("C") else "1m")
                    times[name].append(seconds)
                    attempts[name] = made
    finally:
        await hook_runner.cleanup()
        await sim_runner.cleanup()
    base_median = statistics.median(times["A no endpoint, 1m"])
    print(f"{devices} devices, one charge each, {rounds} interleaved rounds")
    for name, values in times.items():
        median = statistics.median(values)
        per = f", {median / attempts[name] * 1000:.2f} ms per attempt" if attempts[name] else ""
        print(f"  {name:22s} advance median {median * 1000:8.1f} ms  x{median / base_median:5.1f}  "
              f"{attempts[name]:4d} attempts{per}")
    print(f"  receiver got {received} requests in all")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.devices, args.rounds))
