"""The served hot paths' shortcuts read the same as the long way round (stop 17, served2)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from amps_sim.simulator.actions import Action
from amps_sim.simulator.conflicts import Placement, place
from amps_sim.simulator.world.tenants import WALL_NOW, Tenants, TenantSpec

T0 = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)


def _action(action_id: str) -> Action:
    return Action(id=action_id, device_id="d", command="charge", parameters={}, execution="windowed", created_at=T0,
                  state="scheduled", start=T0 + timedelta(hours=1), end=T0 + timedelta(hours=2))


def test_cancel_and_replace_keeps_every_other_field_of_the_placement() -> None:
    start, end = T0 + timedelta(hours=3), T0 + timedelta(hours=4)
    asked = Placement("windowed", start, end, start.replace(tzinfo=None), end.replace(tzinfo=None))
    pending = [_action("a1"), _action("a2")]
    placed = place(asked, "cancel_and_replace", pending, strategies=("cancel_and_replace",), zone=ZoneInfo("UTC"), zone_known=True)
    assert type(placed) is Placement
    assert placed == asked._replace(to_cancel=tuple(pending))
    assert placed.to_cancel == tuple(pending) and type(placed.to_cancel) is tuple
    assert asked.to_cancel == ()  # the placement asked for is not changed


def _tenants(wall_clock: object) -> Tenants:
    import random
    import time

    return Tenants(random.Random(1), time.monotonic, wall_clock)  # type: ignore[arg-type]


def test_a_use_on_the_hosts_wall_clock_reads_back_as_that_instant() -> None:
    tenants = _tenants(WALL_NOW)
    world = tenants.create(TenantSpec())
    before = datetime.now(timezone.utc)
    assert tenants.get(world.api_key) is world
    after = datetime.now(timezone.utc)
    used = tenants.used_at(world.api_key)
    assert used is not None and used.tzinfo is not None and before <= used <= after
    assert tenants.last_used == {world.api_key: used}
    assert tenants.used_at("sk_test_nobody") is None


def test_an_injected_wall_clock_stamps_each_use() -> None:
    moments = iter([T0, T0 + timedelta(minutes=5)])
    tenants = _tenants(lambda: next(moments))
    world = tenants.create(TenantSpec())
    assert tenants.used_at(world.api_key) == T0  # creation counts as use
    tenants.get(world.api_key)
    assert tenants.last_used == {world.api_key: T0 + timedelta(minutes=5)}
    tenants.note_used(world.api_key, T0 + timedelta(hours=1))
    assert tenants.used_at(world.api_key) == T0 + timedelta(hours=1)
    tenants.last_used.clear()  # a copy: the registry's record stays
    assert tenants.used_at(world.api_key) == T0 + timedelta(hours=1)
    tenants.delete(world.api_key)
    assert tenants.last_used == {}


def test_a_record_reads_the_same_after_the_formatted_instants_are_cleared() -> None:
    from amps_sim.simulator import actions
    from amps_sim.simulator.errors import format_instant

    action = _action("a1")
    first = action.record()
    assert first["completedAt"] is None and first["createdAt"] == format_instant(T0)
    for minutes in range(actions._FORMATTED_LIMIT + 1):  # fills the table: it starts afresh
        actions._ts(T0 + timedelta(minutes=minutes, seconds=1))
    assert len(actions._FORMATTED) < actions._FORMATTED_LIMIT
    assert action.record() == first
    assert action.accepted() == {"actionId": "a1", "state": "scheduled", "type": actions.ACTION_TYPE,
                                 "createdAt": first["createdAt"], "start": first["start"], "end": first["end"]}
    assert action.summary()["updatedAt"] == first["createdAt"]
