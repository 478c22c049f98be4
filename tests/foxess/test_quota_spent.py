"""`QuotaLedger.spent` says what `admit` would do about the day's count, without counting; the
platform asks it (through `OemGateway.reads_refused`) before an optional read, so a push made
while the day's calls are used up spends no refused call and meets no injected fault, and is
accepted, as it was when the read was tried and refused."""

from __future__ import annotations

import copy
import itertools
from datetime import datetime, timedelta, timezone

from amps_sim.simulator.errnos import ERRNO_DAILY_LIMIT, NativeError
from amps_sim.simulator.foxess.quotas import QuotaLedger, QuotaSpec
from amps_sim.simulator.validation import PushRequest
from amps_sim.simulator.world.tenants import TenantSpec, World

START = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)


def _refused_for_the_day(ledger: QuotaLedger, spec: QuotaSpec, now: datetime) -> bool:
    try:
        copy.deepcopy(ledger).admit(spec, "read", (), now)
    except NativeError as exc:
        return exc.errno == ERRNO_DAILY_LIMIT
    return False


def test_spent_is_admits_verdict_on_the_days_count_and_counts_nothing() -> None:
    instants = [START, START + timedelta(hours=15, minutes=59, seconds=59), START + timedelta(hours=16), START + timedelta(days=3)]
    cases = 0
    for enabled, daily, used, counted_at, now in itertools.product(
        (True, False), (1, 3), (0, 2, 3, 4), instants[:2], instants
    ):
        if now < counted_at:
            continue
        spec = QuotaSpec(enabled=enabled, dailyCalls=daily)
        ledger = QuotaLedger()
        ledger._roll(counted_at)  # the day the calls were counted on
        ledger.used = used
        expected = _refused_for_the_day(ledger, spec, now)
        before = copy.deepcopy(ledger)
        assert ledger.spent(spec, now) is expected, (enabled, daily, used, counted_at, now)
        assert ledger.used in (before.used, 0) and ledger.last == before.last  # a new day may reset; nothing is counted
        cases += 1
    assert cases > 40


def _world() -> World:
    spec = {
        "clock": {"mode": "virtual", "now": "2026-05-08T08:00:00Z"},
        "oemQuotas": {"enabled": True, "dailyCalls": 2, "writeIntervalS": 0},
        "devices": [{"id": "fox", "profile": "foxess", "timeZone": "UTC", "timeZoneKnown": True, "scheduler": {"enabled": True, "groups": []}}],
    }
    return World(TenantSpec.model_validate(spec), api_key="k", seed=1, created_at=START, monotonic=lambda: 0.0)


def _push(world: World, start: str, end: str) -> str:
    body = {"action": {"command": "charge", "start": start, "end": end}, "onConflict": "cancel_and_replace"}
    return world.platform.push("fox", PushRequest.model_validate(body)).state


def test_a_push_while_the_days_calls_are_spent_is_accepted_without_a_call() -> None:
    world = _world()
    managed = world.devices["fox"]
    ledger = world.native_cloud.platform_ledger
    managed.gateway.read_scheduler()
    managed.gateway.read_scheduler()
    assert ledger.used == 2 and managed.gateway.reads_refused()
    managed.faults.add("transient", 1)
    assert _push(world, "2026-05-08T10:00:00Z", "2026-05-08T11:00:00Z") == "scheduled"
    assert _push(world, "2026-05-08T12:00:00Z", "2026-05-08T13:00:00Z") == "scheduled"
    assert ledger.used == 2 and managed.faults.faults  # no call went out, so the fault still waits
    world.clock.advance_to(datetime(2026, 5, 9, 0, 0, 1, tzinfo=timezone.utc))
    assert not managed.gateway.reads_refused()  # a new UTC day: the allowance refilled
