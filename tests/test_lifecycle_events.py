"""Lifecycle events posted without handles: withdrawn together with their action, counted only
while they can still run, and never run once withdrawn."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from amps_sim.simulator.clock import Clock
from amps_sim.simulator.validation import PushRequest
from amps_sim.simulator.world.tenants import TenantSpec, World

T0 = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)


class Owner:
    def __init__(self) -> None:
        self.queued = 0


def test_withdrawing_an_owner_drops_its_events_and_keeps_the_rest_in_order() -> None:
    clock = Clock(T0)
    seen: list[str] = []
    first, second = Owner(), Owner()
    for i in range(3):
        clock.post(T0 + timedelta(seconds=i), seen.append, f"first {i}", owner=first)
        clock.post(T0 + timedelta(seconds=i), seen.append, f"second {i}", owner=second)
        clock.post(T0 + timedelta(seconds=i), seen.append, f"free {i}")
    assert len(clock.queue) == 9 and first.queued == 3
    clock.withdraw(first)
    assert len(clock.queue) == 6
    clock.post(T0 + timedelta(seconds=1), seen.append, "first, after its withdrawal", owner=first)
    assert len(clock.queue) == 6
    assert clock.advance_to(T0 + timedelta(minutes=1)) == 6
    assert seen == ["second 0", "free 0", "second 1", "free 1", "second 2", "free 2"]
    assert second.queued == 0 and len(clock.queue) == 0 and clock.queue.held() == 0


def test_withdrawn_events_are_swept_rather_than_carried() -> None:
    clock = Clock(T0)
    owners = [Owner() for _ in range(1000)]
    ran: list[int] = []
    for i, owner in enumerate(owners):
        clock.post(T0 + timedelta(minutes=i), ran.append, i, owner=owner)
        clock.post(T0 + timedelta(minutes=i, seconds=1), ran.append, -i, owner=owner)
    for owner in owners[:900]:
        clock.withdraw(owner)
    assert len(clock.queue) == 200
    assert clock.queue.held() <= 2 * 200 + 64
    assert clock.queue.peek() == T0 + timedelta(minutes=900)
    clock.advance_to(T0 + timedelta(days=1))
    assert ran == [n for i in range(900, 1000) for n in (i, -i)]
    assert clock.queue.held() == 0


def test_handles_and_posted_events_share_an_instant_in_the_order_scheduled() -> None:
    clock = Clock(T0)
    seen: list[str] = []
    at = T0 + timedelta(minutes=5)
    clock.post(at, seen.append, "posted")
    handle = clock.schedule_call(at, seen.append, "cancelled handle")
    clock.schedule(at, lambda: seen.append("handle"))
    clock.post(at - timedelta(hours=1), seen.append, "due in the past: runs at once")
    handle.cancel()
    assert len(clock.queue) == 3
    assert clock.advance_to(at) == 3
    assert seen == ["due in the past: runs at once", "posted", "handle"]


def _world() -> World:
    spec = TenantSpec.model_validate({
        "clock": {"mode": "virtual", "now": "2026-05-08T08:00:00Z"},
        "devices": [{"id": f"dev_{i}", "profile": "foxess", "timeZone": "Europe/London", "timeZoneKnown": True} for i in range(2)],
    })
    return World(spec, api_key="test", seed=1, created_at=T0, monotonic=time.monotonic)


def _push(world: World, device_id: str, action: dict[str, object]) -> str:
    return world.platform.push(device_id, PushRequest.model_validate({"action": action})).id


def test_a_cancelled_push_leaves_no_event_behind() -> None:
    world = _world()
    before = len(world.clock.queue)
    action_id = _push(world, "dev_0", {"command": "charge", "start": "2026-05-08T10:00:00Z", "end": "2026-05-08T11:00:00Z"})
    assert len(world.clock.queue) == before + 1
    world.platform.cancel(action_id)
    assert len(world.clock.queue) == before
    assert world.clock.advance_to(T0 + timedelta(hours=4)) == before
    record = world.platform.action(action_id).record()
    assert record["state"] == "cancelled" and record["acknowledgedAt"] is None


def test_removing_a_device_withdraws_its_in_flight_action_events() -> None:
    world = _world()
    before = len(world.clock.queue)
    kept = _push(world, "dev_1", {"command": "charge"})
    gone = _push(world, "dev_0", {"command": "charge"})
    in_flight = len(world.clock.queue)
    assert in_flight > before
    world.remove_device("dev_0")
    assert len(world.clock.queue) == before + (in_flight - before) // 2
    world.clock.advance_to(T0 + timedelta(minutes=5))
    failed = world.platform.action(gone).record()
    assert failed["state"] == "failed" and failed["errorCode"] == "DEVICE_NOT_FOUND" and failed["acknowledgedAt"] is None
    done = world.platform.action(kept).record()
    assert done["state"] == "completed" and done["acknowledgedAt"] is not None
    assert world.platform.action(gone).queued < 0 and world.platform.action(kept).queued == 0


def test_reset_rebuilds_every_device_as_its_spec_gave_it() -> None:
    # The world keeps its device specs as JSON text for reset: what it rebuilds must be what a
    # fresh world built from the same spec holds, every field given or left to its default.
    devices = [
        {"id": "dev_full", "profile": "foxess", "timeZone": "Europe/Berlin", "timeZoneKnown": True,
         "serialNumber": "SN-1", "battery": {"capacityKwh": 13.5, "soc": 42, "maxPowerKw": 7},
         "scheduler": {"enabled": True, "maxGroupCount": 6, "groups": [
             {"start": "07:00", "end": "08:59", "workMode": "ForceDischarge", "fdSoc": 20, "fdPwr": 2000},
             {"start": "17:00", "end": "19:59", "workMode": "Backup", "owner": "installer"}]}},
        {"id": "dev_plain"},
        {"id": "dev_direct", "profile": "direct", "battery": {"soc": 61.5}},
    ]
    spec = {"clock": {"mode": "virtual", "now": "2026-05-08T08:00:00+02:00"}, "devices": devices}

    def world() -> World:
        return World(TenantSpec.model_validate(spec), api_key="test", seed=3, created_at=T0, monotonic=time.monotonic)

    used, fresh = world(), world()
    _push(used, "dev_full", {"command": "charge", "start": "2026-05-08T10:00:00Z", "end": "2026-05-08T11:00:00Z"})
    used.clock.advance_to(T0 + timedelta(days=2))
    used.reset()
    assert used.clock.now == fresh.clock.now
    assert [used.device_view(d["id"]) for d in devices] == [fresh.device_view(d["id"]) for d in devices]
