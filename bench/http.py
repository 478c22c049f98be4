"""HTTP path benchmark: the simulator against a bare aiohttp handler, side by side.

For each operation, a bare aiohttp server (bench/bare.py: checks the key, answers a JSON body of
the simulator's reply size) and `amps-sim serve` are both pinned to one CPU and loaded in turn by
wrk (one thread, 16 connections, pinned to the other CPU), in interleaved pairs of short runs.
This host loses CPU to steal and to neighbours, so only the median of the paired ratios means
anything; every pair is printed too.

Operations: `GET /actions/{id}`, and `POST /battery/{id}` (a windowed push with
`onConflict: cancel_and_replace` to one device, so its history grows by one action per request;
the per-pair ratios show whether the push slows down as it grows).

Each pair also reports both servers' CPU time per request (from /proc): bare / simulator is the
ratio the throughput would show if both were kept busy, and it holds still when the load generator
is starved by a neighbour (then requests per second compress towards 1).

`python -m bench.http [--pairs 6] [--seconds 3] [--connections 16] [--preload 20000] [--access-log]`
`python -m bench.http --trend 30`: 30 pairs of pushes on one simulator while its history grows.
`python -m bench.http --instructions 200 600 [--access-log] [--warm 2000]`: instructions per request
(callgrind); `--warm 2000` counts pushes made after the default world's FoxESS calls for the day
are spent, as in a wrk run (the platform then skips its submission-time read).
`--tree PATH` serves the simulator from another source tree (e.g. `git archive main` unpacked),
with this interpreter, to compare trees run for run; the bare server always comes from here.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

KEY = "sk_live_abc123xyz"  # the default world's key
DEVICE = "dev_abc123"
PUSH_BODY = {
    "action": {
        "command": "charge",
        "start": "2026-05-09T01:00:00Z",
        "end": "2026-05-09T05:00:00Z",
        "parameters": {"target": {"value": 90, "unit": "percent"}},
    },
    "onConflict": "cancel_and_replace",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpus() -> tuple[str, str]:
    """(CPU for the load generator, CPU for the servers)."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return str(available[0]), str(available[0])
    return str(available[0]), str(available[1])


@contextmanager
def serving(argv: list[str], port: int, cpu: str | None) -> Iterator[str]:
    with server_process(argv, port, cpu) as (base, _pid):
        yield base


@contextmanager
def server_process(argv: list[str], port: int, cpu: str | None, cwd: str | None = None) -> Iterator[tuple[str, int]]:
    """`serving`, also giving the server's process id (to read its CPU time). `cwd`: the folder
    to run in (`python -m` imports the source tree found there first)."""
    command = ["taskset", "-c", cpu, *argv] if cpu is not None and shutil.which("taskset") else argv
    # The server's log goes to a file, never to a pipe nobody drains: with one log line per
    # request, a full pipe would block the server mid-run.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, cwd=cwd)
        base = f"http://127.0.0.1:{port}"
        try:
            # A big world (the 10,000-device fleet) takes a while to build before the port opens.
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if process.poll() is not None:
                        log.seek(0)
                        raise RuntimeError(f"server exited: {log.read().decode(errors='replace')[-2000:]}") from None
                    time.sleep(0.05)
            yield base, process.pid
        finally:
            process.terminate()
            process.wait(timeout=10)


def request(base: str, method: str, path: str, body: object = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers={"x-api-key": KEY, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def actions_on(base: str) -> int:
    status, raw = request(base, "GET", f"/actions?deviceId={DEVICE}&limit=1")
    assert status == 200, raw
    return int(json.loads(raw)["total"])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, seconds: float, connections: int, cpu: str, script: Path | None) -> tuple[float, int]:
    """(requests per second, requests completed)."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-H", f"x-api-key: {KEY}"]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    if shutil.which("taskset"):
        argv = ["taskset", "-c", cpu, *argv]
    for _attempt in range(3):  # wrk now and then exits 1 on a starved host; try again
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode == 0:
            break
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}")
    out = done.stdout
    match = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if match is None:
        raise RuntimeError(f"no Requests/sec in wrk output:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{url}: {non2xx.group(1)} non-2xx replies")
    done_count = re.search(r"(\d+) requests in", out)
    assert done_count is not None, out
    return float(match.group(1)), int(done_count.group(1))


def post_script(directory: Path, body: object) -> Path:
    path = directory / "post.lua"
    text = json.dumps(json.dumps(body))  # a Lua string literal is a JSON string literal here
    path.write_text(f'wrk.method = "POST"\nwrk.body = {text}\nwrk.headers["Content-Type"] = "application/json"\n')
    return path


def compare(name: str, sim: tuple[str, int], bare: tuple[str, int], path: str, args: argparse.Namespace,
            script: Path | None, load_cpu: str) -> tuple[list[float], list[float]]:
    """Per pair, (throughput ratios, CPU ratios): simulator / bare requests per second, and bare /
    simulator server CPU time per request (the second does not depend on whether the load
    generator, starved by a neighbour, kept the servers busy)."""
    ratios, cpu_ratios = [], []
    for pair in range(args.pairs):
        # Alternate which server goes first, so drift in the host's load falls on both sides.
        order = [(bare, "bare"), (sim, "sim")] if pair % 2 == 0 else [(sim, "sim"), (bare, "bare")]
        rates, cpu_per_request = {}, {}
        for (base, pid), label in order:
            before = cpu_seconds(pid)
            rates[label], count = wrk(base + path, args.seconds, args.connections, load_cpu, script)
            cpu_per_request[label] = (cpu_seconds(pid) - before) / max(count, 1)
        ratio = rates["sim"] / rates["bare"]
        cpu_ratio = cpu_per_request["bare"] / cpu_per_request["sim"] if cpu_per_request["sim"] else float("nan")
        ratios.append(ratio)
        cpu_ratios.append(cpu_ratio)
        print(f"  {name} pair {pair + 1}: simulator {rates['sim']:,.0f} req/s, bare {rates['bare']:,.0f} req/s, ratio {ratio:.2f}; "
              f"server CPU per request {cpu_per_request['sim'] * 1e6:,.0f} µs against {cpu_per_request['bare'] * 1e6:,.0f} µs, "
              f"ratio {cpu_ratio:.2f}", flush=True)
    print(f"{name}: median ratio {statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f}, {args.pairs} pairs); "
          f"CPU ratio {statistics.median(cpu_ratios):.2f} (range {min(cpu_ratios):.2f}-{max(cpu_ratios):.2f})", flush=True)
    return ratios, cpu_ratios


def served_instructions(argv: list[str], port: int, method: str, path: str | None, count: int, cwd: str | None = None,
                        warm: int = 20) -> int:
    """CPU instructions (valgrind's callgrind) the server spends on `count` requests, over four
    keep-alive connections; start-up and `warm` requests before them are not counted. `path`
    None: the action a first push returns."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", *argv]
        with server_process(command, port, None, cwd) as (base, pid):
            status, raw = request(base, "POST", f"/battery/{DEVICE}", PUSH_BODY)
            target = path or f"/actions/{json.loads(raw)['actionId'] if status == 202 else 'x'}"
            body = PUSH_BODY if method == "POST" else None

            def send(times: int) -> None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
                data = json.dumps(body).encode() if body is not None else None
                for _ in range(times):
                    connection.request(method, target, data, {"x-api-key": KEY, "Content-Type": "application/json"})
                    reply = connection.getresponse()
                    reply.read()
                    assert reply.status < 300, (reply.status, target)
                connection.close()

            send(warm)
            subprocess.run(["callgrind_control", "-i", "on", str(pid)], check=True, capture_output=True)
            workers = [threading.Thread(target=send, args=(count // 4,)) for _ in range(4)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            subprocess.run(["callgrind_control", "-i", "off", str(pid)], check=True, capture_output=True)
            os.kill(pid, signal.SIGINT)  # a clean exit writes the counts
            deadline = time.monotonic() + 120
            while not out.exists() or "totals:" not in out.read_text():
                if time.monotonic() > deadline:
                    raise RuntimeError("callgrind wrote no totals")
                time.sleep(0.2)
        return sum(int(total) for total in re.findall(r"^totals:\s+(\d+)", out.read_text(), re.M))


def instructions(counts: tuple[int, int], access_log: bool, tree: str | None = None, bare: bool = True, warm: int = 20) -> None:
    """Instructions per request, simulator and bare: two runs differing only in the number of
    requests, subtracted, so start-up and shutdown cancel. Repeatable to a fraction of a per cent
    on a loaded host, unlike requests per second."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install -y valgrind)")
    low, high = counts
    for method, label in (("GET", "GET /actions/{id}"), ("POST", "POST /battery/{id}")):
        per_request = {}
        for server in ("sim", "bare") if bare else ("sim",):
            totals = []
            for count in (low, high):
                port = free_port()
                if server == "sim":
                    argv = [sys.executable, "-m", "amps_sim.cli", "serve", "--port", str(port), "--seed", "1"]
                    argv += [] if access_log else ["--log-level", "warning"]
                    path = None if method == "GET" else f"/battery/{DEVICE}"
                else:
                    size, status = (400, 200) if method == "GET" else (300, 202)
                    argv = [sys.executable, "-m", "bench.bare", str(port), KEY, str(size), str(status)]
                    path = "/actions/x" if method == "GET" else f"/battery/{DEVICE}"
                totals.append(served_instructions(argv, port, method, path, count, tree if server == "sim" else None, warm))
            per_request[server] = (totals[1] - totals[0]) / (high - low)
        if not bare:
            print(f"{label}: simulator {per_request['sim']:,.0f} instructions per request", flush=True)
            continue
        print(f"{label}: simulator {per_request['sim']:,.0f} instructions per request, bare {per_request['bare']:,.0f}, "
              f"ratio (bare / simulator) {per_request['bare'] / per_request['sim']:.2f}", flush=True)


def trend(args: argparse.Namespace, sim: tuple[str, int], push_size: int, script: Path, load_cpu: str, server_cpu: str) -> None:
    """`--trend`: one pair after another on the same simulator, whose device gains every push, so
    the last pairs run on a history tens of times longer than the first."""
    bare_port = free_port()
    one_pair = argparse.Namespace(**{**vars(args), "pairs": 1})
    cpu_ratios = []
    with server_process([sys.executable, "-m", "bench.bare", str(bare_port), KEY, str(push_size), "202"], bare_port, server_cpu) as bare:
        for _round in range(args.trend):
            _, cpu = compare(f"POST /battery/{{id}} after {actions_on(sim[0]):,} actions", sim, bare, f"/battery/{DEVICE}",
                             one_pair, script, load_cpu)
            cpu_ratios += cpu
    third = max(1, len(cpu_ratios) // 3)
    print(f"CPU ratio, median of the first {third} pairs {statistics.median(cpu_ratios[:third]):.2f}, of the last {third} "
          f"{statistics.median(cpu_ratios[-third:]):.2f}; {actions_on(sim[0]):,} actions on {DEVICE} at the end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--preload", type=int, default=20_000, help="pushes to the device before the late push pairs")
    parser.add_argument("--access-log", action="store_true",
                        help="keep the simulator's one log line per request (default: --log-level warning, "
                             "since the bare handler logs nothing)")
    parser.add_argument("--instructions", nargs=2, type=int, metavar=("LOW", "HIGH"),
                        help="instead of wrk: instructions per request under callgrind, from runs of LOW and HIGH requests")
    parser.add_argument("--no-bare", action="store_true", help="with --instructions: count the simulator only")
    parser.add_argument("--warm", type=int, default=20,
                        help="with --instructions: requests sent before counting (2000 spends the default world's "
                             "1,440 FoxESS calls of the day first, as a wrk run does within its first second)")
    parser.add_argument("--trend", type=int, metavar="ROUNDS",
                        help="instead: ROUNDS pairs of pushes on one simulator, its history growing all along; prints each "
                             "pair's ratios and compares the first third's median with the last third's")
    parser.add_argument("--tree", metavar="PATH", help="serve the simulator from this source tree (default: the one imported here)")
    args = parser.parse_args()
    tree = str(Path(args.tree).resolve()) if args.tree else None
    if args.instructions:
        instructions((args.instructions[0], args.instructions[1]), args.access_log, tree, not args.no_bare, args.warm)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install -y wrk)")
    load_cpu, server_cpu = cpus()
    sim_port = free_port()
    serve = [sys.executable, "-m", "amps_sim.cli", "serve", "--port", str(sim_port), "--seed", "1"]
    if not args.access_log:
        serve += ["--log-level", "warning"]
    with tempfile.TemporaryDirectory() as tmp, server_process(serve, sim_port, server_cpu, tree) as (sim, sim_pid):
        status, raw = request(sim, "POST", f"/battery/{DEVICE}", PUSH_BODY)
        assert status == 202, raw
        push_size = len(raw)
        action_id = json.loads(raw)["actionId"]
        status, raw = request(sim, "GET", f"/actions/{action_id}")
        assert status == 200, raw
        read_size = len(raw)
        script = post_script(Path(tmp), PUSH_BODY)
        if args.trend:
            trend(args, (sim, sim_pid), push_size, script, load_cpu, server_cpu)
            return
        results = {}
        for name, path, size, status_code, lua in (
            ("GET /actions/{id}", f"/actions/{action_id}", read_size, 200, None),
            ("POST /battery/{id}", f"/battery/{DEVICE}", push_size, 202, script),
        ):
            bare_port = free_port()
            bare_argv = [sys.executable, "-m", "bench.bare", str(bare_port), KEY, str(size), str(status_code)]
            with server_process(bare_argv, bare_port, server_cpu) as (bare, bare_pid):
                results[name] = compare(name, (sim, sim_pid), (bare, bare_pid), path, args, lua, load_cpu)
                if lua is not None and args.preload:
                    # Push on (at full speed) until the device's history holds `preload` actions.
                    while (total := actions_on(sim)) < args.preload:
                        wrk(sim + path, args.seconds, args.connections, load_cpu, lua)
                    print(f"  ({total:,} actions on {DEVICE} now)", flush=True)
                    results[name + " after preload"] = compare(name + " (after preload)", (sim, sim_pid), (bare, bare_pid), path, args, lua, load_cpu)
        print(f"actions on {DEVICE} at the end: {actions_on(sim):,}")
        print("summary (median of paired ratios, simulator / bare aiohttp; then bare / simulator server CPU per request):")
        for name, (ratios, cpu_ratios) in results.items():
            print(f"  {name}: {statistics.median(ratios):.2f} (CPU {statistics.median(cpu_ratios):.2f})")


if __name__ == "__main__":
    main()
