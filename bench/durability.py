"""The cost of `serve --state-dir`: push throughput against the in-memory server, and restart time.

Two `amps-sim serve` processes run side by side, one with a state directory and one without.
Each pair of measurements sends the same pushes (immediate charges, one per device, from
`--concurrency` clients) to both, in alternating order; the report is the median of the
per-pair ratios, which cancels most of this shared host's CPU steal. Then the durable server is
killed with SIGKILL and restarted on its directory, and the time until it answers is reported
(the state: `--tenants` tenants holding `--actions` actions in all).

Run with `make bench-durability` or `python -m bench.durability [--pairs N] ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
BODY = {"action": {"command": "charge", "parameters": {"target": {"value": 90, "unit": "percent"}}}}


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(state_dir: Path | None) -> tuple[subprocess.Popen[bytes], str, float]:
    port = _port()
    args = [sys.executable, "-m", "amps_sim.cli", "serve", "--port", str(port), "--seed", "1"]
    if state_dir is not None:
        args += ["--state-dir", str(state_dir)]
    began = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            urllib.request.urlopen(base + "/_sim/clock", timeout=1).read()
        except urllib.error.HTTPError:
            break  # answering (401 without a key) means ready
        except OSError:
            time.sleep(0.02)
            continue
        break
    return proc, base, time.perf_counter() - began


def _devices(count: int) -> list[dict[str, object]]:
    return [{"id": f"d{i}", "profile": "direct", "timeZone": "Europe/London", "timeZoneKnown": True} for i in range(count)]


async def pushes_per_second(session: aiohttp.ClientSession, base: str, count: int, concurrency: int) -> float:
    async with session.post(f"{base}/_sim/tenants", json={"devices": _devices(count)}) as resp:
        key = (await resp.json())["apiKey"]
    pending = list(range(count))

    async def client() -> None:
        while pending:
            i = pending.pop()
            async with session.post(f"{base}/battery/d{i}", json=BODY, headers={"x-api-key": key}) as resp:
                assert resp.status == 202, await resp.text()
                await resp.read()

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return count / (time.perf_counter() - began)


async def throughput(memory: str, durable: str, pairs: int, count: int, concurrency: int) -> None:
    ratios, mem_rates, dur_rates = [], [], []
    async with aiohttp.ClientSession() as session:
        for pair in range(pairs):
            order = [(memory, mem_rates), (durable, dur_rates)]
            if pair % 2:
                order.reverse()
            for base, rates in order:
                rates.append(await pushes_per_second(session, base, count, concurrency))
            ratios.append(dur_rates[-1] / mem_rates[-1])
    print(f"pushes/s, {concurrency} clients, {count} pushes per run, {pairs} interleaved pairs:")
    print(f"  in memory   median {statistics.median(mem_rates):8.0f}")
    print(f"  --state-dir median {statistics.median(dur_rates):8.0f}")
    print(f"  ratio (median of per-pair ratios) {statistics.median(ratios):.2f}  (min {min(ratios):.2f}, max {max(ratios):.2f})")


async def fill(base: str, tenants: int, actions: int, concurrency: int, devices: int = 5) -> None:
    """`tenants` tenants of `devices` FoxESS devices each, holding `actions` windowed pushes in all
    (queued one after another on each device, as a busy integration would leave them)."""
    per_tenant = max(1, actions // tenants)
    fleet = [{"id": f"f{i}", "profile": "foxess", "timeZone": "Europe/London", "timeZoneKnown": True,
              "scheduler": {"enabled": False, "groups": []}} for i in range(devices)]
    window = {"command": "charge", "start": "2026-06-01T10:00:00Z", "end": "2026-06-01T10:30:00Z",
              "parameters": {"target": {"value": 90, "unit": "percent"}}}
    async with aiohttp.ClientSession() as session:
        keys = []
        for _ in range(tenants):
            spec = {"clock": {"now": "2026-05-08T08:00:00Z"}, "devices": fleet}
            async with session.post(f"{base}/_sim/tenants", json=spec) as resp:
                keys.append((await resp.json())["apiKey"])
        work = [(key, i % devices) for i in range(per_tenant) for key in keys]
        work.reverse()

        async def client() -> None:
            while work:
                key, device = work.pop()
                body = {"action": window, "onConflict": "queue_after"}
                async with session.post(f"{base}/battery/f{device}", json=body, headers={"x-api-key": key}) as resp:
                    assert resp.status == 202, await resp.text()

        await asyncio.gather(*(client() for _ in range(concurrency)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--pushes", type=int, default=300)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--actions", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        memory, memory_base, _ = start(None)
        durable, durable_base, _ = start(state)
        try:
            for concurrency in args.concurrency if args.pairs > 0 else []:
                asyncio.run(throughput(memory_base, durable_base, args.pairs, args.pushes, concurrency))
        finally:
            memory.terminate()
            memory.wait()
        began = time.perf_counter()
        asyncio.run(fill(durable_base, args.tenants, args.actions, max(args.concurrency)))
        print(f"filled {args.tenants} tenants / {args.actions} actions in {time.perf_counter() - began:.0f} s")
        time.sleep(5)  # let a snapshot in progress finish, as it would on a server that lives on
        durable.send_signal(signal.SIGKILL)
        durable.wait()
        size = sum(p.stat().st_size for p in state.glob("snapshot-*.pickle")) / 1e6
        proc, _, ready = start(state)
        print(f"restart after kill -9 (snapshot of {size:.0f} MB + journal tail): ready in {ready:.2f} s")
        proc.terminate()
        proc.wait()
        proc, _, ready = start(state)
        print(f"restart after a clean stop (snapshot, nothing to replay): ready in {ready:.2f} s")
        proc.terminate()
        proc.wait()
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import amps_sim.cli, amps_sim.simulator.web.app"], cwd=ROOT, check=True)
        print(f"(of which interpreter start and imports: {time.perf_counter() - began:.2f} s)")
        proc, _, ready = start(None)
        print(f"start without --state-dir, for comparison: ready in {ready:.2f} s")
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
