"""The cost of `serve --state-dir`: push throughput against the in-memory server, and restart time.

Two `amps-sim serve` processes run side by side, one with a state directory and one without.
Each pair of measurements sends the same pushes (immediate charges, one per device, from
`--concurrency` clients) to both, in alternating order; the report is the median of the
per-pair ratios, which cancels most of this shared host's CPU steal. Then the durable server is
killed with SIGKILL and restarted on its directory, and the time until it answers is reported
(the state: `--tenants` tenants holding `--actions` actions in all).

Run with `make bench-durability` or `python -m bench.durability [--pairs N] ...`.

`--state DIR` skips the throughput pairs and the filling: it measures restarts on a copy of a
filled state directory (keep one with `--keep-state DIR`), and `--root TREE` runs another code
tree (say `git archive main` unpacked) on it, for a side-by-side comparison:
first start on the directory, restart after a clean stop, then `--tail` more pushes spread over
the tenants, kill -9 and restart (snapshot + journal tail), with the first request of one tenant
and the admin listing of every tenant timed after it.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "bench-admin-key"
BODY = {"action": {"command": "charge", "parameters": {"target": {"value": 90, "unit": "percent"}}}}


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(state_dir: Path | None, root: Path = ROOT, *extra: str) -> tuple[subprocess.Popen[bytes], str, float]:
    port = _port()
    args = [sys.executable, "-m", "amps_sim.cli", "serve", "--port", str(port), "--seed", "1", *extra]
    if state_dir is not None:
        args += ["--state-dir", str(state_dir)]
    began = time.perf_counter()
    proc = subprocess.Popen(args, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    async with aiohttp.ClientSession() as session:
        keys = []
        for _ in range(tenants):
            spec = {"clock": {"now": "2026-05-08T08:00:00Z"}, "devices": fleet}
            async with session.post(f"{base}/_sim/tenants", json=spec) as resp:
                keys.append((await resp.json())["apiKey"])
        work = [(key, i % devices) for i in range(per_tenant) for key in keys]
        work.reverse()
        await _queue_windows(session, base, work, concurrency)


# The window every filling push books; queued behind the ones before it on the same device.
WINDOW = {"command": "charge", "start": "2026-06-01T10:00:00Z", "end": "2026-06-01T10:30:00Z",
          "parameters": {"target": {"value": 90, "unit": "percent"}}}


async def _queue_windows(session: aiohttp.ClientSession, base: str, work: list[tuple[str, int]], concurrency: int) -> None:
    """Push WINDOW (`queue_after`) for each (tenant key, device number) in `work`, popped from its
    end by `concurrency` clients at once; every push must be accepted."""

    async def client() -> None:
        while work:
            key, device = work.pop()
            body = {"action": WINDOW, "onConflict": "queue_after"}
            async with session.post(f"{base}/battery/f{device}", json=body, headers={"x-api-key": key}) as resp:
                assert resp.status == 202, await resp.text()

    await asyncio.gather(*(client() for _ in range(concurrency)))


def _tenant_keys(state: Path) -> list[str]:
    """The tenant keys a state directory's journal has seen (requests carry them)."""
    with sqlite3.connect(state / "amps-sim-state.sqlite3") as conn:
        rows = conn.execute(
            "SELECT DISTINCT json_extract(headers, '$.\"x-api-key\"') FROM journal WHERE path LIKE '/battery/%'"
        ).fetchall()
    return sorted(row[0] for row in rows if row[0])


async def push_tail(base: str, keys: list[str], count: int, concurrency: int) -> None:
    work = [(keys[i % len(keys)], i % 5) for i in range(count)]
    async with aiohttp.ClientSession() as session:
        await _queue_windows(session, base, work, concurrency)


def _timed_get(base: str, path: str, key: str) -> float:
    began = time.perf_counter()
    request = urllib.request.Request(base + path, headers={"x-api-key": key})
    with urllib.request.urlopen(request, timeout=600) as resp:
        assert resp.status == 200
        resp.read()
    return time.perf_counter() - began


def restarts(state: Path, root: Path, tail: int) -> None:
    """Restart figures on `state` (changed in place) with the code tree `root`."""
    keys = _tenant_keys(state)
    proc, base, ready = start(state, root)
    print(f"[{root}] first start on the directory ({len(keys)} tenants): ready in {ready:.2f} s")
    proc.terminate()
    proc.wait()
    proc, base, ready = start(state, root)
    print(f"[{root}] restart after a clean stop: ready in {ready:.2f} s")
    asyncio.run(push_tail(base, keys, tail, 16))
    time.sleep(5)  # let a snapshot in progress finish
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc, base, ready = start(state, root, "--admin-key", ADMIN)
    print(f"[{root}] restart after kill -9 (snapshot + journal tail, {tail} pushes after the clean stop): ready in {ready:.2f} s")
    first = _timed_get(base, "/actions?limit=1", keys[len(keys) // 2])
    again = _timed_get(base, "/actions?limit=1", keys[len(keys) // 2])
    print(f"[{root}]   then one tenant's first request {first * 1000:.0f} ms (its next {again * 1000:.0f} ms)")
    listing = _timed_get(base, "/_sim/tenants", ADMIN)
    print(f"[{root}]   then the admin list of every tenant {listing:.2f} s")
    proc.terminate()
    proc.wait()
    size = sum(p.stat().st_size for p in state.glob("snapshot-*.pickle")) / 1e6
    print(f"[{root}]   snapshot size after the stop: {size:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--pushes", type=int, default=300)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--actions", type=int, default=100_000)
    parser.add_argument("--state", type=Path, help="measure restarts on a copy of this filled state directory")
    parser.add_argument("--keep-state", type=Path, help="copy the filled state directory here (before the restarts)")
    parser.add_argument("--root", type=Path, nargs="+", default=[ROOT], help="code trees to run with --state, in turn")
    parser.add_argument("--tail", type=int, default=5000, help="with --state: pushes between the clean stop and kill -9")
    args = parser.parse_args()
    if args.state is not None:
        for root in args.root:
            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / "state"
                shutil.copytree(args.state, copy)
                restarts(copy, root.resolve(), args.tail)
        return
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
        if args.keep_state is not None:
            shutil.copytree(state, args.keep_state)
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
