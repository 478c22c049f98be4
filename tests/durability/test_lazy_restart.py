"""A restart from a snapshot is ready before any tenant is loaded: each tenant wakes on the first
request that needs it, with the journal entries that were its own replayed first. These tests
hold the lazy path to the same answers an eager restart gives."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.durability.receiver import LoopbackReceiver
from tests.durability.test_crash import START, Server, _devices, call, native_call

WINDOW = {"command": "charge", "start": "2026-06-01T10:00:00Z", "end": "2026-06-01T10:30:00Z",
          "parameters": {"target": {"value": 80, "unit": "percent"}}}
ADMIN = "admin-key-for-tests"


def _tenant(base: str, key: str | None = None) -> str:
    status, created = call(base, "POST", "/_sim/tenants", key, {"clock": {"now": START}, "devices": _devices()})
    assert status == 201, created
    return str(created["apiKey"])


def _fill(base: str, key: str, pushes: int) -> None:
    for _ in range(pushes):
        status, reply = call(base, "POST", "/battery/dir", key, {"action": WINDOW, "onConflict": "queue_after"})
        assert status == 202, reply
    rows = {"groups": [{"start": "01:00", "end": "01:59", "workMode": "ForceCharge", "fdPwr": pushes, "maxSoc": 90}]}
    assert call(base, "PUT", "/_sim/devices/fox/scheduler", key, rows)[0] == 200


def _views(base: str, key: str) -> list[Any]:
    return [call(base, "GET", path, key) for path in ("/actions?limit=50", "/_sim/devices", "/_sim/clock", "/battery")]


def test_a_tenant_left_dormant_across_snapshots_and_kills_keeps_everything(tmp_path: Path) -> None:
    """Tenant B gets pushes after a snapshot, the server is killed, and after the restart only A is
    used (so B stays dormant, its tail entries pending) while new snapshots are written and the
    server is killed again. B still has every acknowledged effect, once each."""
    server = Server(tmp_path / "state", "--snapshot-every", "5")
    server.start()
    try:
        a, b = _tenant(server.base), _tenant(server.base)
        _fill(server.base, a, 3)
        _fill(server.base, b, 3)
        server.stop()  # a clean stop: a snapshot holds both
        server.start()
        _fill(server.base, b, 4)  # B's tail after the snapshot (fewer entries than a snapshot)
        expected_b = _views(server.base, b)
        time.sleep(1)  # a snapshot in progress finishes
        server.kill()
        server.start()
        _fill(server.base, a, 12)  # only A: snapshots are taken while B is dormant
        time.sleep(1)
        server.kill()
        snapshots = list((tmp_path / "state").glob("snapshot-*.pickle"))
        assert snapshots, "no snapshot was written while B was dormant"
        server.start()
        assert _views(server.base, b) == expected_b
        # And B carries on from there: the next push mints a new id, nothing is duplicated.
        _fill(server.base, b, 1)
        listing = call(server.base, "GET", "/actions?limit=50", b)[1]
        assert listing["total"] == 8 and len({x["id"] for x in listing["actions"]}) == 8
    finally:
        server.stop()


def test_a_dormant_realtime_tenant_runs_its_downtime_events_in_order_when_first_used(tmp_path: Path) -> None:
    server = Server(tmp_path / "state")
    server.start()
    try:
        spec = {"clock": {"mode": "realtime", "now": START, "speed": 3600}, "devices": _devices()}
        status, created = call(server.base, "POST", "/_sim/tenants", None, spec)
        key = created["apiKey"]
        began = datetime.fromisoformat(call(server.base, "GET", "/_sim/clock", key)[1]["now"].replace("Z", "+00:00"))
        start, end = began + timedelta(hours=3), began + timedelta(hours=4)
        body = {"action": {"command": "charge", "start": start.isoformat(), "end": end.isoformat(),
                           "parameters": {"target": {"value": 90, "unit": "percent"}}}}
        status, pushed = call(server.base, "POST", "/battery/fox", key, body)
        assert status == 202 and pushed["state"] == "scheduled", pushed
        server.stop()  # a snapshot: the tenant comes back dormant
        time.sleep(4.5)  # 4.5 virtual hours pass while nothing runs
        server.start()
        time.sleep(0.5)  # dormant for a while after the restart: its first request is what wakes it
        status, record = call(server.base, "GET", f"/actions/{pushed['actionId']}", key)
        assert record["state"] == "completed", record
        assert record["createdAt"] < record["acknowledgedAt"] < record["completedAt"]
        assert record["completedAt"].startswith(start.strftime("%Y-%m-%dT%H:%M"))
        status, device = call(server.base, "GET", "/_sim/devices/fox", key)
        assert device["scheduler"]["groups"] == [], "the window's cleanup ran at its end"
    finally:
        server.stop()


def test_the_admin_list_shows_every_tenant_after_a_restart(tmp_path: Path) -> None:
    server = Server(tmp_path / "state", "--admin-key", ADMIN)
    server.start()
    try:
        keys = [_tenant(server.base, ADMIN) for _ in range(3)]
        for count, key in enumerate(keys):
            _fill(server.base, key, count + 1)
        status, before = call(server.base, "GET", "/_sim/tenants", ADMIN)
        assert status == 200 and len(before["tenants"]) == 4  # the served world's tenant too
        server.stop()
        server.start()
        status, after = call(server.base, "GET", "/_sim/tenants", ADMIN)
        assert after == before
        assert [t["actions"] for t in after["tenants"][1:]] == [1, 2, 3]
    finally:
        server.stop()


def test_the_ttl_sweep_sees_dormant_tenants(tmp_path: Path) -> None:
    """A tenant idle past the TTL is deleted after a restart without anyone waking it; one used
    since the restart is kept."""
    server = Server(tmp_path / "state")
    server.start()
    try:
        idle, busy = _tenant(server.base), _tenant(server.base)
        _fill(server.base, idle, 1)
        server.stop()
        server = Server(tmp_path / "state", "--tenant-ttl", "3s", "--admin-key", ADMIN)
        server.start()
        until = time.monotonic() + 4.5
        while time.monotonic() < until:  # nothing touches the idle one (a request would wake it)
            assert call(server.base, "GET", "/_sim/clock", busy)[0] == 200
            time.sleep(0.3)
        status, listing = call(server.base, "GET", "/_sim/tenants", ADMIN)
        listed = {t["apiKey"] for t in listing["tenants"]}
        assert busy in listed and idle not in listed, listed
        assert call(server.base, "GET", "/_sim/clock", idle)[0] == 401
    finally:
        server.stop()


def test_a_dormant_tenant_wakes_for_its_foxess_key(tmp_path: Path) -> None:
    server = Server(tmp_path / "state")
    server.start()
    try:
        key = _tenant(server.base)
        status, issued = call(server.base, "POST", "/_sim/oem-keys", key, {"party": "homeowner_app", "devices": ["fox"]})
        assert status == 201, issued
        serial = call(server.base, "GET", "/_sim/devices/fox", key)[1]["serialNumber"]
        server.stop()
        server.start()
        group = {"enable": 1, "startHour": 2, "startMinute": 0, "endHour": 2, "endMinute": 59, "workMode": "ForceCharge",
                 "fdPwr": 4321, "maxSoc": 90}
        reply = native_call(server.base, "/op/v1/device/scheduler/enable", issued["apiKey"], {"deviceSN": serial, "groups": [group]})
        assert reply["errno"] == 0, reply
        server.stop()
        server.start()
        groups = call(server.base, "GET", "/_sim/devices/fox", key)[1]["scheduler"]["groups"]
        assert [g["fdPwr"] for g in groups] == [4321]
    finally:
        server.stop()


def test_webhook_outcomes_wait_with_their_dormant_tenant_and_nothing_is_sent_twice(tmp_path: Path) -> None:
    """A delivery made after a restart is journalled with its tenant; after kill -9 that tenant
    stays dormant while another one's requests trigger snapshots, and the outcome is carried with
    it: when it wakes, its delivery log is whole and the receiver is not called again."""
    receiver = LoopbackReceiver()
    received = receiver.ids
    server = Server(tmp_path / "state")  # no snapshot but at clean stops, until the last restarts
    server.start()
    try:
        hooked, other = _tenant(server.base), _tenant(server.base)
        url = receiver.url
        status, endpoint = call(server.base, "POST", "/_sim/webhooks", hooked, {"url": url, "events": ["push.completed"]})
        assert status == 201, endpoint
        server.stop()
        server.start()
        charge = {"action": {"command": "charge", "parameters": {"target": {"value": 80, "unit": "percent"}}}}
        assert call(server.base, "POST", "/battery/dir", hooked, charge)[0] == 202
        assert call(server.base, "POST", "/_sim/clock/advance", hooked, {"by": "1m"})[0] == 200
        assert len(received) == 1
        log_before = call(server.base, "GET", f"/_sim/webhooks/{endpoint['id']}/deliveries", hooked)
        server.kill()
        server = Server(tmp_path / "state", "--snapshot-every", "3")
        server.start()
        _fill(server.base, other, 6)  # snapshots while `hooked` is dormant, its outcome pending
        time.sleep(1)
        server.kill()
        server.start()
        assert call(server.base, "GET", f"/_sim/webhooks/{endpoint['id']}/deliveries", hooked) == log_before
        assert call(server.base, "POST", "/_sim/clock/advance", hooked, {"by": "1h"})[0] == 200
        time.sleep(0.5)
        assert len(received) == 1, f"delivered again after the restarts: {received}"
    finally:
        server.stop()
        receiver.close()


def test_a_dormant_realtime_tenant_with_webhooks_delivers_its_downtime_events_unasked(tmp_path: Path) -> None:
    """Nobody calls the tenant after the restart, yet the window that completed during the
    downtime is delivered to its receiver: such tenants are woken in the background."""
    receiver = LoopbackReceiver()
    received = receiver.bodies
    server = Server(tmp_path / "state")
    server.start()
    try:
        spec = {"clock": {"mode": "realtime", "now": START, "speed": 3600}, "devices": _devices()}
        key = call(server.base, "POST", "/_sim/tenants", None, spec)[1]["apiKey"]
        url = receiver.url
        assert call(server.base, "POST", "/_sim/webhooks", key, {"url": url, "events": ["push.completed"]})[0] == 201
        began = datetime.fromisoformat(call(server.base, "GET", "/_sim/clock", key)[1]["now"].replace("Z", "+00:00"))
        body = {"action": {"command": "charge", "start": (began + timedelta(hours=2)).isoformat(),
                           "end": (began + timedelta(hours=3)).isoformat(),
                           "parameters": {"target": {"value": 90, "unit": "percent"}}}}
        status, pushed = call(server.base, "POST", "/battery/fox", key, body)
        assert status == 202, pushed
        server.stop()  # a snapshot: the tenant comes back dormant
        time.sleep(3.5)  # 3.5 virtual hours: the window completes while nothing runs
        assert received == []
        server.start()
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.1)
        assert received and pushed["actionId"].encode() in received[0], received
    finally:
        server.stop()
        receiver.close()
