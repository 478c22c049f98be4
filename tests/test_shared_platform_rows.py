"""The platform's window rows are one set of row objects for every device running that window;
which action wrote them on a device is that device's scheduler's record. What a device shows,
what the cleanup removes and what a snapshot keeps must stay per device and per action."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from amps_sim.simulator.native_scheduler import SHARED_MARK
from amps_sim.simulator.persistence.snapshot import dump_state, load_state
from amps_sim.simulator.validation import PushRequest
from amps_sim.simulator.world.tenants import TenantSpec, World

START = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)
HOMEOWNER = [{"start": "17:00", "end": "19:59", "workMode": "Backup"}]


def _world(count: int) -> World:
    devices = [
        {"id": f"dev_{i}", "profile": "foxess", "timeZone": "Europe/London", "timeZoneKnown": True,
         "scheduler": {"enabled": True, "groups": HOMEOWNER}}
        for i in range(count)
    ]
    spec = TenantSpec.model_validate({"clock": {"mode": "virtual", "now": "2026-05-08T08:00:00Z"}, "devices": devices})
    return World(spec, api_key="sk_test", seed=3, created_at=START, monotonic=time.monotonic)


def _charge(day: str, start: str = "01:00", end: str = "05:00", on_conflict: str | None = None) -> PushRequest:
    body: dict[str, object] = {
        "action": {"command": "charge", "start": f"{day}T{start}:00+01:00", "end": f"{day}T{end}:00+01:00",
                   "parameters": {"target": {"value": 90, "unit": "percent"}}},
    }
    if on_conflict is not None:
        body["onConflict"] = on_conflict
    return PushRequest.model_validate(body)


def _platform_rows(world: World, device_id: str) -> list[dict[str, object]]:
    groups = world.device_view(device_id)["scheduler"]["groups"]
    return [group for group in groups if group["owner"] == "amps"]


def test_devices_running_one_window_share_its_rows_and_each_shows_its_own_action() -> None:
    world = _world(3)
    request = _charge("2026-05-09")
    actions = {device_id: world.platform.push(device_id, request) for device_id in ("dev_0", "dev_1", "dev_2")}
    world.clock.advance_to(datetime(2026, 5, 9, 1, 0, tzinfo=timezone.utc))  # inside the window
    schedulers = [world.devices[device_id].device.scheduler for device_id in ("dev_0", "dev_1", "dev_2")]
    assert schedulers[0] is not None and schedulers[1] is not None and schedulers[2] is not None
    # One stored tuple and one row object for the window, whatever the number of devices.
    assert schedulers[0].groups is schedulers[1].groups is schedulers[2].groups
    rows = [group for group in schedulers[0].groups if group.action_id is SHARED_MARK]
    assert len(rows) == 1
    for device_id, action in actions.items():
        shown = _platform_rows(world, device_id)
        assert [row["actionId"] for row in shown] == [action.id]
        assert world.platform.actions[action.id].state == "completed"
    # The window's end removes each device's row, and the record of who wrote it.
    world.clock.advance_to(datetime(2026, 5, 9, 5, 0, tzinfo=timezone.utc))
    for scheduler in schedulers:
        assert [group.owner for group in scheduler.groups] == ["homeowner_app"]
        assert scheduler.marked_rows == [] and scheduler.marked == []


def test_back_to_back_windows_each_show_their_own_writer_and_leave_nothing_behind() -> None:
    # dev_0 runs two windows back to back (the second queued after the first), dev_1 only the
    # second: the second's row is one object on both, each showing its own action.
    world = _world(2)
    first = world.platform.push("dev_0", _charge("2026-05-09", "01:00", "03:00"))
    second = world.platform.push("dev_0", _charge("2026-05-09", "03:00", "05:00", "queue_after"))
    other = world.platform.push("dev_1", _charge("2026-05-09", "03:00", "05:00"))
    world.clock.advance_to(datetime(2026, 5, 9, 0, 30, tzinfo=timezone.utc))
    assert [row["actionId"] for row in _platform_rows(world, "dev_0")] == [first.id]
    assert _platform_rows(world, "dev_1") == []
    world.clock.advance_to(datetime(2026, 5, 9, 2, 30, tzinfo=timezone.utc))
    assert [row["actionId"] for row in _platform_rows(world, "dev_0")] == [second.id]
    assert [row["actionId"] for row in _platform_rows(world, "dev_1")] == [other.id]
    rows = [
        [group for group in world.devices[device_id].device.scheduler.groups if group.owner == "amps"]  # type: ignore[union-attr]
        for device_id in ("dev_0", "dev_1")
    ]
    assert len(rows[0]) == 1 and rows[0][0] is rows[1][0]
    world.clock.advance_to(datetime(2026, 5, 9, 4, 0, tzinfo=timezone.utc))
    assert _platform_rows(world, "dev_0") == [] and _platform_rows(world, "dev_1") == []
    for device_id in ("dev_0", "dev_1"):
        scheduler = world.devices[device_id].device.scheduler
        assert scheduler is not None and scheduler.marked_rows == [] and scheduler.marked == []


def test_a_snapshot_taken_inside_a_window_keeps_each_devices_writer_and_cleans_up_after() -> None:
    world = _world(2)
    request = _charge("2026-05-09")
    pushed = {device_id: world.platform.push(device_id, request).id for device_id in ("dev_0", "dev_1")}
    world.clock.advance_to(datetime(2026, 5, 9, 1, 0, tzinfo=timezone.utc))
    restored = load_state(dump_state(world, {}), {})  # as a snapshot stores and restores it
    for device_id, action_id in pushed.items():
        assert [row["actionId"] for row in _platform_rows(restored, device_id)] == [action_id]
    restored.clock.advance_to(restored.clock.now + timedelta(hours=5))
    for device_id in pushed:
        assert _platform_rows(restored, device_id) == []


def test_a_client_row_spelling_the_shared_marker_keeps_it_as_its_own() -> None:
    # The shared marker is one object; a row given the same text through the control API is an
    # ordinary row whose marker is that text.
    spec = TenantSpec.model_validate({
        "clock": {"mode": "virtual", "now": "2026-05-08T08:00:00Z"},
        "devices": [{"id": "dev_0", "profile": "foxess", "timeZone": "Europe/London", "scheduler": {
            "enabled": True,
            "groups": [{"start": "02:00", "end": "03:59", "workMode": "ForceCharge", "owner": "amps", "actionId": "amps:shared"}],
        }}],
    })
    world = World(spec, api_key="sk_test", seed=3, created_at=START, monotonic=time.monotonic)
    scheduler = world.devices["dev_0"].device.scheduler
    assert scheduler is not None
    (row,) = scheduler.groups
    assert row.action_id == SHARED_MARK and row.action_id is not SHARED_MARK
    assert scheduler.action_of(row) == "amps:shared"
    assert [group["actionId"] for group in _platform_rows(world, "dev_0")] == ["amps:shared"]
