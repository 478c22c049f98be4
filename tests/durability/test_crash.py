"""`amps-sim serve --state-dir` killed with SIGKILL at random moments, restarted, and audited.

Several clients, each with its own tenant, push, cancel, write native rows (through the control
API and through the FoxESS API) and advance the clock as fast as the server answers. Each client keeps what was acknowledged; the one request
in flight when the server died may or may not have happened, but never half. After every
restart each tenant must show every acknowledged effect exactly once.

`make test` runs a few rounds; `make crash-loop` runs many (AMPS_CRASH_ROUNDS).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import spec_violations
from tests.durability.receiver import LoopbackReceiver
from tests.test_serve import ROOT, _free_port

ROUNDS = int(os.environ.get("AMPS_CRASH_ROUNDS", "3"))
CLIENTS = 4
START = "2026-05-08T08:00:00Z"


class Down(Exception):
    """The server is gone (killed): the request's fate is unknown."""


def call(base: str, method: str, path: str, key: str | None, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data else {}
    if key:
        headers["x-api-key"] = key
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            status, raw, ctype = resp.status, resp.read(), resp.headers.get("Content-Type")
    except urllib.error.HTTPError as err:
        status, raw, ctype = err.code, err.read(), err.headers.get("Content-Type")
    except (OSError, urllib.error.URLError) as exc:
        raise Down(str(exc)) from None
    problems = spec_violations(method, path.split("?")[0], status, raw, ctype)
    assert not problems, f"{method} {path} -> {status}: {problems}"
    return status, json.loads(raw) if raw and "json" in (ctype or "") else None


def native_call(base: str, path: str, token: str, body: Any) -> Any:
    """A FoxESS Open API call (signed; always HTTP 200 with `errno`), as the cloud's clients make it."""
    from amps_sim.simulator.foxess.signature import sign

    stamp = str(int(time.time() * 1000))
    headers = {"token": token, "timestamp": stamp, "signature": sign(path, token, stamp), "Content-Type": "application/json"}
    request = urllib.request.Request(base + "/foxess" + path, data=json.dumps(body).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status == 200
            return json.loads(resp.read())
    except (OSError, urllib.error.URLError) as exc:
        raise Down(str(exc)) from None


class Server:
    """`amps-sim serve --state-dir` as a subprocess. Without `port`, each start takes a free port
    (a restart must not depend on the old socket being released); with it, the port is fixed, as
    a proxy in front of the server needs."""

    def __init__(self, state_dir: Path, *extra: str, port: int | None = None) -> None:
        self.state_dir = state_dir
        self.extra = extra
        self.fixed_port = port
        self.port = port or 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = ""

    def start(self) -> None:
        self.port = self.fixed_port or _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "amps_sim.cli", "serve", "--port", str(self.port), "--state-dir", str(self.state_dir), *self.extra],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("serve exited: " + (self.proc.stderr.read().decode() if self.proc.stderr else ""))
            try:
                urllib.request.urlopen(self.base + "/openapi.yaml", timeout=1).read()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail("serve did not come up")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        if self.proc.stderr:
            self.proc.stderr.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()


@dataclass
class Tenant:
    """What one client knows was acknowledged, and the request it had in flight."""

    key: str
    actions: dict[str, str] = field(default_factory=dict)  # id -> state we know it must have
    cancelled: set[str] = field(default_factory=set)
    rows_marker: int | None = None
    clock_now: str = START
    in_flight: tuple[str, Any] | None = None
    marker: int = 0
    token: str = ""  # a FoxESS key for the homeowner's app on device "fox"
    serial: str = ""


def _devices() -> list[dict[str, Any]]:
    return [
        {"id": "fox", "profile": "foxess", "timeZone": "Europe/London", "timeZoneKnown": True,
         "scheduler": {"enabled": False, "groups": []}},
        {"id": "dir", "profile": "direct", "timeZone": "Europe/London", "timeZoneKnown": True},
    ]


def _one_step(base: str, tenant: Tenant, rng: random.Random) -> None:
    choice = rng.random()
    if choice < 0.45:
        body = {"action": {"command": "charge", "start": "2026-06-01T10:00:00Z", "end": "2026-06-01T10:30:00Z",
                           "parameters": {"target": {"value": 80, "unit": "percent"}}}, "onConflict": "queue_after"}
        tenant.in_flight = ("push", None)
        status, reply = call(base, "POST", "/battery/dir", tenant.key, body)
        assert status == 202, reply
        assert reply["actionId"] not in tenant.actions, "an acknowledged push minted a known id"
        tenant.actions[reply["actionId"]] = "scheduled"
    elif choice < 0.65:
        scheduled = [a for a, state in tenant.actions.items() if state == "scheduled" and a not in tenant.cancelled]
        if not scheduled:
            return
        target = rng.choice(scheduled)
        tenant.in_flight = ("cancel", target)
        status, reply = call(base, "POST", f"/actions/{target}/cancel", tenant.key)
        assert status == 200 and reply["state"] == "cancelled", reply
        tenant.cancelled.add(target)
    elif choice < 0.75 and tenant.token:
        tenant.marker += 1
        marker = 1000 + tenant.marker
        group = {"enable": 1, "startHour": 1, "startMinute": 0, "endHour": 1, "endMinute": 59, "workMode": "ForceCharge",
                 "fdPwr": marker, "maxSoc": 90}
        tenant.in_flight = ("rows", marker)
        reply = native_call(base, "/op/v1/device/scheduler/enable", tenant.token, {"deviceSN": tenant.serial, "groups": [group]})
        assert reply["errno"] == 0, reply
        tenant.rows_marker = marker
    elif choice < 0.85:
        tenant.marker += 1
        marker = 1000 + tenant.marker
        rows = {"groups": [{"start": "01:00", "end": "01:59", "workMode": "ForceCharge", "fdPwr": marker, "maxSoc": 90}]}
        tenant.in_flight = ("rows", marker)
        status, reply = call(base, "PUT", "/_sim/devices/fox/scheduler", tenant.key, rows)
        assert status == 200, reply
        tenant.rows_marker = marker
    else:
        tenant.in_flight = ("advance", tenant.clock_now)
        status, reply = call(base, "POST", "/_sim/clock/advance", tenant.key, {"by": "10m"})
        assert status == 200, reply
        tenant.clock_now = reply["now"]
    tenant.in_flight = None


def _client(base: str, tenant: Tenant, seed: int, stop: threading.Event, errors: list[BaseException]) -> None:
    rng = random.Random(seed)
    try:
        while not stop.is_set():
            _one_step(base, tenant, rng)
    except Down:
        pass
    except BaseException as exc:  # an assertion in a client thread fails the test
        errors.append(exc)


def _audit(base: str, tenant: Tenant) -> None:
    records: list[dict[str, Any]] = []
    while True:
        status, listing = call(base, "GET", f"/actions?limit=50&offset={len(records)}", tenant.key)
        assert status == 200, f"tenant {tenant.key} lost: {listing}"
        records += listing["actions"]
        if len(records) >= listing["total"] or not listing["actions"]:
            break
    present = {a["id"]: a for a in records}
    assert len(present) == len(records) == listing["total"], "duplicated action records"
    missing = set(tenant.actions) - set(present)
    assert not missing, f"acknowledged pushes lost: {missing}"
    extra = set(present) - set(tenant.actions)
    flight = tenant.in_flight[0] if tenant.in_flight else None
    assert len(extra) <= (1 if flight == "push" else 0), f"unacknowledged actions appeared: {extra}"
    for action_id in tenant.cancelled:
        assert present[action_id]["state"] == "cancelled", present[action_id]
    for action_id, record in present.items():
        if action_id not in tenant.cancelled:
            in_flight_cancel = tenant.in_flight == ("cancel", action_id)
            allowed = {"scheduled", "cancelled"} if in_flight_cancel else {"scheduled"}
            assert record["state"] in allowed, record
        tenant.actions[action_id] = "scheduled"
        if record["state"] == "cancelled":
            tenant.cancelled.add(action_id)
    status, device = call(base, "GET", "/_sim/devices/fox", tenant.key)
    groups = device["scheduler"]["groups"]
    markers = {g["fdPwr"] for g in groups}
    allowed_markers = {tenant.rows_marker} if tenant.rows_marker is not None else {None}
    if flight == "rows":
        allowed_markers.add(tenant.in_flight[1])  # type: ignore[index]
    observed = markers.pop() if groups else None
    assert len(groups) <= 1 and observed in allowed_markers, (groups, allowed_markers)
    tenant.rows_marker = observed
    status, clock = call(base, "GET", "/_sim/clock", tenant.key)
    allowed_now = {tenant.clock_now}
    if flight == "advance":
        allowed_now.add(_plus_ten_minutes(tenant.clock_now))
    assert clock["now"] in allowed_now, (clock, allowed_now)
    tenant.clock_now = clock["now"]
    tenant.in_flight = None


def _plus_ten_minutes(instant: str) -> str:
    moment = datetime.fromisoformat(instant.replace("Z", "+00:00")) + timedelta(minutes=10)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def test_kill_9_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("AMPS_CRASH_SEED", "13")))
    # Frequent snapshots, so kills also land while one is written and restarts use snapshot + tail.
    server = Server(tmp_path / "state", "--snapshot-every", "97")
    server.start()
    try:
        tenants = []
        for _ in range(CLIENTS):
            status, created = call(server.base, "POST", "/_sim/tenants", None, {"clock": {"now": START}, "devices": _devices()})
            assert status == 201
            tenant = Tenant(created["apiKey"])
            status, issued = call(server.base, "POST", "/_sim/oem-keys", tenant.key, {"party": "homeowner_app", "devices": ["fox"]})
            assert status == 201, issued
            tenant.token = issued["apiKey"]
            tenant.serial = call(server.base, "GET", "/_sim/devices/fox", tenant.key)[1]["serialNumber"]
            tenants.append(tenant)
        snapshots = audited = 0
        for _round in range(ROUNDS):
            stop = threading.Event()
            errors: list[BaseException] = []
            threads = [
                threading.Thread(target=_client, args=(server.base, t, rng.getrandbits(32), stop, errors)) for t in tenants
            ]
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(0.3, 1.5))
            server.kill()
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            assert not errors, errors
            server.start()
            for tenant in tenants:
                _audit(server.base, tenant)
            snapshots += len(list((tmp_path / "state").glob("snapshot-*.pickle")))
            audited += sum(len(t.actions) for t in tenants)
            # Keep audits quick: retire a busy tenant's history with a reset.
            for tenant in tenants:
                if len(tenant.actions) > 300:
                    status, _ = call(server.base, "POST", "/_sim/reset", tenant.key)
                    assert status == 200
                    tenant.actions.clear()
                    tenant.cancelled.clear()
                    tenant.rows_marker, tenant.clock_now = None, START
        assert audited > 0, "no push was ever acknowledged: the audit checked nothing"
        assert snapshots > 0, "no restart used a snapshot"
    finally:
        server.stop()


def test_a_torn_last_write_leaves_a_consistent_prefix(tmp_path: Path) -> None:
    """Chop the write-ahead log mid-frame after a kill, as a write cut short by a crash would
    leave it: the server starts on the intact prefix of the journal and carries on from there.
    (A torn write can only hit a commit whose fsync had not returned, i.e. one not yet
    acknowledged; cutting 1500 bytes may also drop a few acknowledged ones, which is harsher.)"""
    server = Server(tmp_path / "state")
    server.start()
    status, created = call(server.base, "POST", "/_sim/tenants", None, {"clock": {"now": START}, "devices": _devices()})
    tenant = Tenant(created["apiKey"])
    rng = random.Random(5)
    for _ in range(40):
        _one_step(server.base, tenant, rng)
    server.kill()
    wal = tmp_path / "state" / "amps-sim-state.sqlite3-wal"
    assert wal.exists() and wal.stat().st_size > 4096
    with wal.open("r+b") as handle:
        handle.truncate(wal.stat().st_size - 1500)  # the last frame(s) half written
    server.start()
    try:
        status, listing = call(server.base, "GET", "/actions?limit=50", tenant.key)
        assert status == 200
        ids = [a["id"] for a in reversed(listing["actions"])]  # the listing is newest first
        assert len(ids) == len(set(ids))
        # A prefix of what was acknowledged: whatever survived is exactly what was sent, in order.
        known = list(tenant.actions)
        assert ids == known[: len(ids)]
        # And the server keeps going on that prefix: the next push mints the next id in line.
        tenant.actions = dict.fromkeys(ids, "scheduled")
        tenant.cancelled &= set(ids)
        for _ in range(5):
            _one_step(server.base, tenant, rng)
    finally:
        server.stop()
    with sqlite3.connect(tmp_path / "state" / "amps-sim-state.sqlite3") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_newer_state_format_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    server = Server(tmp_path / "state")
    server.start()
    server.stop()
    with sqlite3.connect(tmp_path / "state" / "amps-sim-state.sqlite3") as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'format_version'")
    result = subprocess.run(
        [sys.executable, "-m", "amps_sim.cli", "serve", "--port", str(_free_port()), "--state-dir", str(tmp_path / "state")],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode != 0
    assert "state format 99" in result.stderr and "this amps-sim reads format 1" in result.stderr


def test_a_realtime_clock_counts_the_downtime_and_runs_its_events_in_order(tmp_path: Path) -> None:
    """At 3600x, a second of downtime is an hour: a window due while the server was down has
    run, in order (dispatched, acknowledged, completed, rows cleaned up), when it is back."""
    server = Server(tmp_path / "state")
    server.start()
    try:
        spec = {"clock": {"mode": "realtime", "now": START, "speed": 3600}, "devices": _devices()}
        status, created = call(server.base, "POST", "/_sim/tenants", None, spec)
        key = created["apiKey"]
        status, clock = call(server.base, "GET", "/_sim/clock", key)
        began = datetime.fromisoformat(clock["now"].replace("Z", "+00:00"))
        start, end = began + timedelta(hours=3), began + timedelta(hours=4)
        body = {"action": {"command": "charge", "start": start.isoformat(), "end": end.isoformat(),
                           "parameters": {"target": {"value": 90, "unit": "percent"}}}}
        status, pushed = call(server.base, "POST", "/battery/fox", key, body)
        assert status == 202 and pushed["state"] == "scheduled", pushed
        server.kill()
        time.sleep(4.5)  # 4.5 virtual hours pass while nothing runs
        server.start()
        status, record = call(server.base, "GET", f"/actions/{pushed['actionId']}", key)
        assert record["state"] == "completed", record
        assert record["acknowledgedAt"] is not None and record["acknowledgedAt"] < record["completedAt"]
        assert record["completedAt"].startswith(start.strftime("%Y-%m-%dT%H:%M"))
        status, device = call(server.base, "GET", "/_sim/devices/fox", key)
        assert device["scheduler"]["groups"] == [], "the window's cleanup ran at its end"
        status, clock = call(server.base, "GET", "/_sim/clock", key)
        assert datetime.fromisoformat(clock["now"].replace("Z", "+00:00")) >= began + timedelta(hours=4)
    finally:
        server.stop()



def _views(base: str, key: str) -> list[Any]:
    return [call(base, "GET", path, key) for path in ("/actions?limit=50", "/_sim/devices", "/_sim/clock", "/battery")]


def test_restarts_from_a_snapshot_or_from_the_journal_alone_give_the_same_tenant(tmp_path: Path) -> None:
    """A clean stop leaves a snapshot (pending clock events included); a snapshot from other code
    is ignored and the journal replayed instead; both restore exactly the state that was served."""
    state = tmp_path / "state"
    server = Server(state)
    server.start()
    try:
        status, created = call(server.base, "POST", "/_sim/tenants", None, {"clock": {"now": START}, "devices": _devices()})
        tenant = Tenant(created["apiKey"])
        rng = random.Random(11)
        for _ in range(30):
            _one_step(server.base, tenant, rng)
        window = {"action": {"command": "charge", "start": "2026-05-08T20:00:00Z", "end": "2026-05-08T21:00:00Z",
                             "parameters": {"target": {"value": 70, "unit": "percent"}}}}
        status, pending = call(server.base, "POST", "/battery/fox", tenant.key, window)
        assert status == 202, pending
        before = _views(server.base, tenant.key)
        server.stop()
        with sqlite3.connect(state / "amps-sim-state.sqlite3") as conn:
            (last_seq,) = conn.execute("SELECT MAX(seq) FROM journal").fetchone()
        snapshots = sorted(path.name for path in state.glob("snapshot-*"))
        assert len(snapshots) == 1 and snapshots[0].startswith(f"snapshot-{last_seq}-"), (snapshots, last_seq)
        server.start()
        assert _views(server.base, tenant.key) == before
        server.stop()
        # As if other code had written it: the name carries the code's fingerprint.
        (snapshot,) = state.glob("snapshot-*")
        snapshot.rename(state / f"snapshot-{last_seq}-writtenbyothercode.pickle")
        server.start()
        assert _views(server.base, tenant.key) == before
        # The restored clock events still fire: the window dispatches, writes its row, completes.
        status, _ = call(server.base, "POST", "/_sim/clock/advance", tenant.key, {"to": "2026-05-08T20:30:00Z"})
        status, record = call(server.base, "GET", f"/actions/{pending['actionId']}", tenant.key)
        assert record["state"] == "completed", record
        rows = call(server.base, "GET", "/_sim/devices/fox", tenant.key)[1]["scheduler"]["groups"]
        assert any(row.get("actionId") == pending["actionId"] for row in rows), rows
    finally:
        server.stop()


def test_webhook_attempts_are_journalled_and_never_made_twice(tmp_path: Path) -> None:
    """A delivery made before kill -9 is in the delivery log after the restart and is not sent
    again; deliveries after the restart go out as usual."""
    receiver = LoopbackReceiver()
    received = receiver.ids
    server = Server(tmp_path / "state")
    server.start()
    try:
        status, created = call(server.base, "POST", "/_sim/tenants", None, {"clock": {"now": START}, "devices": _devices()})
        key = created["apiKey"]
        url = receiver.url
        status, endpoint = call(server.base, "POST", "/_sim/webhooks", key, {"url": url, "events": ["push.completed"]})
        assert status == 201, endpoint
        charge = {"action": {"command": "charge", "parameters": {"target": {"value": 80, "unit": "percent"}}}}
        assert call(server.base, "POST", "/battery/dir", key, charge)[0] == 202
        assert call(server.base, "POST", "/_sim/clock/advance", key, {"by": "1m"})[0] == 200
        assert len(received) == 1
        log_before = call(server.base, "GET", f"/_sim/webhooks/{endpoint['id']}/deliveries", key)
        server.kill()
        server.start()
        assert call(server.base, "GET", f"/_sim/webhooks/{endpoint['id']}/deliveries", key) == log_before
        assert call(server.base, "POST", "/_sim/clock/advance", key, {"by": "1h"})[0] == 200
        time.sleep(0.5)
        assert len(received) == 1, f"delivered again after the restart: {received}"
        assert call(server.base, "POST", "/battery/dir", key, charge)[0] == 202
        assert call(server.base, "POST", "/_sim/clock/advance", key, {"by": "1m"})[0] == 200
        assert len(received) == 2 and len(set(received)) == 2, received
    finally:
        server.stop()
        receiver.close()
