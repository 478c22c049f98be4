"""A push's placement: remembered with the window it was made from, never across windows."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from amps_sim.simulator.validation import PushRequest
from amps_sim.simulator.world.tenants import TenantSpec, World

T0 = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)


def _world() -> World:
    spec = TenantSpec.model_validate({
        "clock": {"mode": "virtual", "now": "2026-05-08T08:00:00Z"},
        "devices": [{"id": f"dev_{i}", "profile": "foxess", "timeZone": "Europe/London", "timeZoneKnown": True} for i in range(3)],
    })
    return World(spec, api_key="test", seed=1, created_at=T0, monotonic=time.monotonic)


def _push(world: World, device_id: str, action: dict[str, object]) -> dict[str, object]:
    return world.platform.push(device_id, PushRequest.model_validate({"action": action})).record()


def test_a_relative_window_is_placed_from_each_push_own_now() -> None:
    world = _world()
    first = _push(world, "dev_0", {"command": "charge", "start": "30m", "end": "1h"})
    world.clock.advance_to(T0 + timedelta(minutes=10))
    second = _push(world, "dev_1", {"command": "charge", "start": "30m", "end": "1h"})
    assert (first["start"], first["end"]) == ("2026-05-08T08:30:00.000Z", "2026-05-08T09:30:00.000Z")
    assert (second["start"], second["end"]) == ("2026-05-08T08:40:00.000Z", "2026-05-08T09:40:00.000Z")


def test_a_fixed_window_places_every_push_alike_and_each_shape_keeps_its_execution() -> None:
    world = _world()
    window = {"command": "charge", "start": "2026-05-08T10:00:00Z", "end": "2026-05-08T11:00:00Z"}
    assert _push(world, "dev_0", window)["start"] == _push(world, "dev_1", window)["start"] == "2026-05-08T10:00:00.000Z"
    scheduled = world.platform.push("dev_2", PushRequest.model_validate({"action": {"command": "charge", "start": "2026-05-08T10:00:00Z"}}))
    assert scheduled.execution == "scheduled" and scheduled.end is None
    immediate = world.platform.push("dev_2", PushRequest.model_validate({"action": {"command": "charge"}, "onConflict": "cancel_and_replace"}))
    assert immediate.execution == "immediate" and immediate.start is None
