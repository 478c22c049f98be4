"""The platform's FoxESS gateway counts each scheduler read, scheduler write and flag write on the
platform's ledger as the ledger's own rule does (`QuotaLedger.count_free`, else `admit`): counted
on the short path within the UTC day, admitted (and refused) by the session otherwise, and an
injected fault met in order either way."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from amps_sim.simulator.native_scheduler import Group
from amps_sim.simulator.oem import OemFailure
from amps_sim.simulator.world.tenants import TenantSpec, World

START = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)
ROWS = [{"start": "07:00", "end": "08:59", "workMode": "Backup"}]


def _world(quotas: dict[str, object] | None = None) -> World:
    spec: dict[str, object] = {
        "clock": {"mode": "virtual", "now": "2026-05-08T08:00:00Z"},
        "devices": [{"id": "fox", "profile": "foxess", "scheduler": {"enabled": True, "groups": ROWS}}],
    }
    if quotas is not None:
        spec["oemQuotas"] = quotas
    return World(TenantSpec.model_validate(spec), api_key="k", seed=1, created_at=START, monotonic=lambda: 0.0)


def test_reads_and_writes_count_on_the_ledger_and_a_new_day_starts_afresh() -> None:
    world = _world()
    managed = world.devices["fox"]
    gateway, ledger, serial = managed.gateway, world.native_cloud.platform_ledger, managed.device.serial_number
    enabled, rows = gateway.read_scheduler()  # the day's first call: admitted, which rolls the day
    assert enabled and [g.start for g in rows] == [7 * 60] and ledger.used == 1
    mine = Group(600, 659, "ForceCharge", "amps", "act_1", max_soc=90)
    gateway.write_groups([*rows, mine], world.clock.now)
    gateway.set_scheduler_enabled(True, world.clock.now)
    enabled, rows = gateway.read_scheduler()
    assert list(rows) == [mine, Group(420, 539, "Backup", "homeowner_app")]  # read back last slot first
    assert ledger.used == 4
    assert ledger.last == {("scheduler", serial): world.clock.now, ("flag", serial): world.clock.now}
    world.clock.advance_to(datetime(2026, 5, 9, 0, 0, 1, tzinfo=timezone.utc))
    gateway.read_scheduler()
    assert ledger.used == 1  # a new UTC day: the allowance refilled
    gateway.write_groups([], world.clock.now)
    assert ledger.used == 2 and ledger.last[("scheduler", serial)] == world.clock.now
    assert managed.device.scheduler is not None and managed.device.scheduler.groups == ()


def test_an_injected_fault_is_met_by_the_next_call_and_counted() -> None:
    world = _world()
    managed = world.devices["fox"]
    gateway, ledger = managed.gateway, world.native_cloud.platform_ledger
    gateway.read_scheduler()
    managed.faults.add("transient", 2)
    with pytest.raises(OemFailure) as read:
        gateway.read_scheduler()
    with pytest.raises(OemFailure) as write:
        gateway.write_groups([], world.clock.now)
    assert read.value.code == write.value.code == "OEM_TRANSIENT_FAILURE" and read.value.retryable
    assert ledger.used == 3 and not managed.faults.faults
    assert managed.device.scheduler is not None and len(managed.device.scheduler.groups) == 1  # nothing written


def test_enforced_quotas_refuse_through_the_session() -> None:
    world = _world({"enabled": True, "dailyCalls": 3, "writeIntervalS": 2})
    managed = world.devices["fox"]
    gateway, ledger = managed.gateway, world.native_cloud.platform_ledger
    gateway.read_scheduler()
    gateway.write_groups([], world.clock.now)
    with pytest.raises(OemFailure) as paced:
        gateway.write_groups([], world.clock.now)  # the same device's scheduler again within 2 s
    assert paced.value.code == "OEM_RATE_LIMITED" and ledger.used == 2
    gateway.read_scheduler()
    with pytest.raises(OemFailure) as spent:
        gateway.read_scheduler()
    assert spent.value.code == "OEM_QUOTA_EXHAUSTED" and not spent.value.retryable and ledger.used == 3
