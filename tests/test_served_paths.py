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


def test_the_tenant_helper_reads_and_writes_the_items_aiohttp_reads() -> None:
    from aiohttp.test_utils import make_mocked_request

    from amps_sim.simulator.web import common
    from amps_sim.simulator.web.app import create_app

    app = create_app(seed=1)
    world = app[common.TENANTS].create(TenantSpec())
    assert common.app_items(app)[common.TENANTS] is app[common.TENANTS]
    request = make_mocked_request("GET", "/battery", headers={"x-api-key": world.api_key}, app=app)
    assert common.tenant(request) is world
    assert request.get(common.WORLD_KEY) is world  # where the error envelope finds its clock


def test_items_kept_elsewhere_are_reached_through_the_mapping_itself() -> None:
    from amps_sim.simulator.web.common import _items_of

    class Elsewhere(dict):  # type: ignore[type-arg]
        _state: dict[object, object] = {}

    holder = Elsewhere()
    assert _items_of(holder, "k")(holder) is holder


def test_format_instant_writes_what_the_field_by_field_form_wrote() -> None:
    import random

    from amps_sim.simulator.errors import format_instant

    def by_fields(moment: datetime) -> str:
        utc = moment.astimezone(timezone.utc)
        return (f"{utc.year}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}."
                f"{utc.microsecond // 1000:03d}Z")

    rng = random.Random(7)
    zones = [timezone.utc, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)), ZoneInfo("Europe/London")]
    moments = [datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
               datetime(999, 3, 4, 5, 6, 7, 8000, tzinfo=timezone.utc), datetime(1000, 1, 1, 0, 0, 0, 999, tzinfo=timezone.utc)]
    for _ in range(2000):
        seconds = rng.uniform(0, 200 * 365 * 86400)
        moments.append(datetime(2000, 1, 1, tzinfo=timezone.utc).astimezone(rng.choice(zones))
                       + timedelta(seconds=seconds, microseconds=rng.randrange(1_000_000)))
    for moment in moments:
        assert format_instant(moment) == by_fields(moment), moment
