"""A managed device keeps the gateway its link opened until the link, the fault plan or the device
is replaced; then its gateway is the one opened from what it has now."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from amps_sim.simulator.foxess.adapter import FoxessGateway
from amps_sim.simulator.oem import DirectGateway, DirectLink, FaultPlan, OemFailure
from amps_sim.simulator.world.tenants import TenantSpec, World

START = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)
ROWS = [{"start": "07:00", "end": "08:59", "workMode": "Backup"}]


def _world() -> World:
    spec = {
        "clock": {"mode": "virtual", "now": "2026-05-08T08:00:00Z"},
        "devices": [
            {"id": "fox", "profile": "foxess", "scheduler": {"enabled": True, "groups": ROWS}},
            {"id": "plain", "profile": "direct"},
        ],
    }
    return World(TenantSpec.model_validate(spec), api_key="k", seed=1, created_at=START, monotonic=lambda: 0.0)


def test_the_gateway_is_kept_while_nothing_it_was_opened_from_changes() -> None:
    managed = _world().devices["fox"]
    gateway = managed.gateway
    assert isinstance(gateway, FoxessGateway)
    managed.warn({"code": "NOTED"})
    assert managed.gateway is gateway


def test_a_new_link_opens_its_own_gateway() -> None:
    managed = _world().devices["fox"]
    assert isinstance(managed.gateway, FoxessGateway)
    managed.link = DirectLink()
    assert isinstance(managed.gateway, DirectGateway)


def test_a_new_fault_plan_is_met_by_the_next_call() -> None:
    world = _world()
    managed = world.devices["plain"]
    managed.gateway.write_mode(managed.device.imperative, world.clock.now)  # nothing queued
    managed.faults = FaultPlan("plain")
    managed.faults.add("oem_reject", 1)
    with pytest.raises(OemFailure) as refused:
        managed.gateway.write_mode(managed.device.imperative, world.clock.now)
    assert refused.value.code == "OEM_REJECTED"


def test_a_new_device_is_the_one_the_gateway_reaches() -> None:
    world = _world()
    managed, other = world.devices["plain"], world.devices["fox"]
    assert managed.gateway.read_scheduler() == (False, [])  # a direct device has no scheduler
    managed.device = other.device
    enabled, rows = managed.gateway.read_scheduler()  # the FoxESS device's scheduler, through a direct link
    assert enabled and [(g.start, g.end) for g in rows] == [(7 * 60, 8 * 60 + 59)]
