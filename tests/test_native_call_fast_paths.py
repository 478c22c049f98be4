"""The short paths of the platform's native calls answer as the long ones do.

The FoxESS gateway counts a call at the instant the platform ledger last counted free under the
spec it found unenforced without asking `QuotaLedger.count_free`, and compares a read with the
read-back order's last answer; a scheduler stores the row set it (or one of its rules) last
validated by identity; a scheduler with one marked row forgets it as one with several does; a
device's row write records its cut as `_record` does. Each test below holds one of these to
the rule it shortens."""

from __future__ import annotations

import pickle
import time
from datetime import datetime, timedelta, timezone

import pytest

from amps_sim.simulator.device import Device, DeviceSpec
from amps_sim.simulator.foxess import adapter
from amps_sim.simulator.foxess.quotas import QuotaLedger, QuotaSpec
from amps_sim.simulator.native_scheduler import SHARED_MARK, Group, NativeError, NativeScheduler
from amps_sim.simulator.oem import OemFailure
from amps_sim.simulator.persistence.snapshot import dump_state, load_state
from amps_sim.simulator.profiles import GroupLimits
from amps_sim.simulator.world.tenants import TenantSpec, World

START = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)
MODES = ["SelfUse", "Feedin", "Backup", "ForceCharge", "ForceDischarge"]
ROWS = [{"start": "07:00", "end": "08:59", "workMode": "Backup"}, {"start": "17:00", "end": "19:59", "workMode": "Backup"}]


def _world(count: int = 1) -> World:
    devices = [
        {"id": f"fox_{i}", "profile": "foxess", "scheduler": {"enabled": True, "groups": ROWS}} for i in range(count)
    ]
    spec = TenantSpec.model_validate({"clock": {"mode": "virtual", "now": "2026-05-08T08:00:00Z"}, "devices": devices})
    return World(spec, api_key="k", seed=1, created_at=START, monotonic=time.monotonic)


# --- the ledger's instant counted free ---------------------------------------------------------


def test_the_instant_counted_free_is_forgotten_when_the_day_moves() -> None:
    spec, ledger = QuotaSpec(enabled=False), QuotaLedger()
    noon = datetime(2026, 5, 8, 12, 0, tzinfo=timezone.utc)
    ledger.admit(spec, "read", (), noon)
    assert ledger.count_free(spec, noon, None, "SN1") and ledger.free_now is noon
    assert ledger.count_free(spec, noon, "scheduler", "SN1") and ledger.used == 3
    ledger.admit(spec, "read", (), noon + timedelta(days=1))  # the next UTC day: rolled, refilled
    assert ledger.used == 1 and ledger.free_now is None
    # The very object counted yesterday is outside the day now counted: admit must decide.
    assert not ledger.count_free(spec, noon, None, "SN1") and ledger.used == 1
    # A non-UTC instant rolls the day by its own date, and forgets the span and the instant.
    ledger.count_free(spec, noon + timedelta(days=1), None, "SN1")
    ledger.admit(spec, "read", (), noon.astimezone(timezone(timedelta(hours=14))))
    assert ledger.day_from is None and ledger.free_now is None


def test_the_gateway_counts_at_one_instant_as_the_ledger_does_and_meets_a_new_spec() -> None:
    world = _world()
    managed = world.devices["fox_0"]
    gateway, cloud = managed.gateway, world.native_cloud
    ledger, serial = cloud.platform_ledger, managed.device.serial_number
    now = world.clock.now
    gateway.read_scheduler()  # admitted: rolls the day
    gateway.read_scheduler()  # counted free at `now`
    assert ledger.free_now is now and ledger.used == 2
    gateway.write_groups([], now)  # the short path: counted and its instant recorded
    assert ledger.used == 3 and ledger.last == {("scheduler", serial): now}
    assert not gateway.reads_refused()
    # A spec put in place of the one found unenforced is asked again, even at the same instant:
    # an enforced allowance of three calls is spent, so the read is refused and not counted.
    cloud.quotas = QuotaSpec(enabled=True, dailyCalls=3)
    assert gateway.reads_refused()
    with pytest.raises(OemFailure) as spent:
        gateway.read_scheduler()
    with pytest.raises(OemFailure) as spent_write:
        gateway.write_groups([], now)
    assert spent.value.code == spent_write.value.code == "OEM_QUOTA_EXHAUSTED" and ledger.used == 3


def test_a_fault_is_met_after_the_short_count_in_order() -> None:
    world = _world()
    managed = world.devices["fox_0"]
    gateway, ledger = managed.gateway, world.native_cloud.platform_ledger
    gateway.read_scheduler()
    gateway.read_scheduler()
    assert ledger.free_now is world.clock.now
    managed.faults.add("transient", 1)
    managed.faults.add("offline", 1)
    with pytest.raises(OemFailure) as first:
        gateway.read_scheduler()
    with pytest.raises(OemFailure) as second:
        gateway.write_groups([], world.clock.now)
    assert (first.value.code, second.value.code) == ("OEM_TRANSIENT_FAILURE", "DEVICE_OFFLINE")
    assert ledger.used == 4 and managed.device.scheduler is not None and len(managed.device.scheduler.groups) == 2


def test_a_ledger_stored_before_the_instant_was_kept_loads_and_counts() -> None:
    spec, ledger = QuotaSpec(enabled=False), QuotaLedger()
    noon = datetime(2026, 5, 8, 12, 0, tzinfo=timezone.utc)
    ledger.admit(spec, "read", (), noon)
    del ledger.__dict__["free_now"]  # as an older snapshot holds it
    restored = pickle.loads(pickle.dumps(ledger))
    assert restored.free_now is None and restored.count_free(spec, noon, None, "SN1") and restored.used == 2


def test_a_restored_world_counts_and_reads_as_the_one_it_was_taken_from() -> None:
    world = _world(2)
    for managed in world.devices.values():
        managed.gateway.read_scheduler()
        managed.gateway.read_scheduler()
    restored = load_state(dump_state(world, {}), {})
    for source in (world, restored):
        for managed in source.devices.values():
            enabled, rows = managed.gateway.read_scheduler()
            assert enabled and [row.start for row in rows] == [17 * 60, 7 * 60]
        assert source.native_cloud.platform_ledger.used == 6


# --- the read-back order's last answer ---------------------------------------------------------


def test_reads_of_one_shared_set_answer_one_tuple_and_a_device_own_set_is_not_held() -> None:
    world = _world(2)
    first, second = (world.devices[f"fox_{i}"] for i in range(2))
    assert first.device.scheduler is not None and second.device.scheduler is not None
    assert first.device.scheduler.groups is second.device.scheduler.groups  # built with equal rows
    _, read_first = first.gateway.read_scheduler()
    _, read_second = second.gateway.read_scheduler()
    assert read_second is read_first and list(read_first) == list(first.device.scheduler.groups[::-1])
    # A set with a row marked with its own action is one device's: read back afresh each time,
    # and not held as the last answer.
    own = Group(600, 659, "ForceCharge", "amps", "act_1", max_soc=90)
    second.gateway.write_groups([*read_second, own], world.clock.now)
    stored = second.device.scheduler.groups
    _, once = second.gateway.read_scheduler()
    _, again = second.gateway.read_scheduler()
    assert once == again == stored[::-1] and once is not again
    assert adapter._last_read[0] is not stored
    _, back = first.gateway.read_scheduler()
    assert back is read_first


# --- the row set validated last ----------------------------------------------------------------


def _sched(slots: int = 8) -> NativeScheduler:
    return NativeScheduler(slots, GroupLimits(), MODES)


def test_the_set_validated_last_serves_only_schedulers_of_its_rules() -> None:
    rows = (
        Group(60, 119, "ForceCharge", "amps", SHARED_MARK, max_soc=90),
        Group(420, 539, "Backup", "homeowner_app"),
        Group(1020, 1199, "Backup", "homeowner_app"),
    )
    wide, other_wide = _sched(8), _sched(8)
    wide.replace(rows)
    other_wide.replace(rows)  # the same tuple, the same rules: stored as it is
    assert other_wide.groups is rows and other_wide.physics == wide.physics
    with pytest.raises(NativeError) as refused:
        _sched(2).replace(rows)  # the same tuple under two slots: checked, and refused
    assert refused.value.errno == 40257


# --- marks ----------------------------------------------------------------------------------------


def test_marks_go_with_their_rows_whether_one_or_several() -> None:
    home = Group(420, 539, "Backup", "homeowner_app")
    night = Group(60, 119, "ForceCharge", "amps", SHARED_MARK, max_soc=90)
    noon = Group(720, 779, "ForceDischarge", "amps", SHARED_MARK, fd_soc=30)
    scheduler = _sched()
    scheduler.replace([home, night])
    scheduler.mark([night], "act_1")
    scheduler.replace([night, home])  # one mark, its row still stored: kept
    assert scheduler.action_of(night) == "act_1" and scheduler.action_of(home) is None
    scheduler.replace([home, night, noon])
    scheduler.mark([noon], "act_2")
    scheduler.mark([night], "act_3")  # marked again: the record is replaced, not added
    assert scheduler.marked_rows == [night, noon] and scheduler.marked == ["act_3", "act_2"]
    assert [scheduler.action_of(row) for row in (home, night, noon)] == [None, "act_3", "act_2"]
    scheduler.replace([home, noon])  # two marks: the one whose row went is dropped
    assert scheduler.marked_rows == [noon] and scheduler.marked == ["act_2"]
    assert scheduler.action_of(night) is None and scheduler.action_of(noon) == "act_2"
    scheduler.replace([home])  # one mark whose row went
    assert scheduler.marked_rows == [] and scheduler.marked == [] and scheduler.action_of(noon) is None


def test_boundaries_follow_the_rows_stored() -> None:
    scheduler = _sched()
    assert scheduler.boundaries() == []
    scheduler.replace([Group(60, 119, "ForceCharge", "amps"), Group(1320, 1439, "Backup", "homeowner_app")])
    assert scheduler.boundaries() == [60, 120, 1320]
    scheduler.replace([Group(420, 539, "Backup", "homeowner_app")])
    assert scheduler.boundaries() == [420, 540]
    scheduler.groups = (Group(0, 29, "Backup", "homeowner_app"),)  # set without `replace`
    assert scheduler.boundaries() == [0, 30]


def test_rows_without_an_action_are_those_action_of_does_not_name_it_for() -> None:
    home = Group(420, 539, "Backup", "homeowner_app")
    night = Group(60, 119, "ForceCharge", "amps", SHARED_MARK, max_soc=90)
    noon = Group(720, 779, "ForceDischarge", "amps", SHARED_MARK, fd_soc=30)
    own = Group(1200, 1259, "Feedin", "amps", "act_1")
    lookalike = Group(1300, 1319, "Feedin", "partner", "amps:shared")  # a client's text, not the marker
    scheduler = _sched()
    scheduler.replace([home, night, noon, own, lookalike])
    scheduler.mark([night], "act_1")
    scheduler.mark([noon], "act_2")
    for action_id in ("act_1", "act_2", "act_3", "amps:shared"):
        expected = [g for g in scheduler.groups if scheduler.action_of(g) != action_id]
        assert scheduler.rows_without(reversed(scheduler.groups), action_id) == expected[::-1]
    assert scheduler.rows_without(scheduler.groups, "act_1") == [home, noon, lookalike]
    assert scheduler.rows_without(scheduler.groups, "amps:shared") == [home, night, noon, own]


# --- the cut a row write records ---------------------------------------------------------------


def test_a_row_write_cuts_the_timeline_with_the_settings_before_it() -> None:
    spec = DeviceSpec.model_validate({"id": "d", "scheduler": {"enabled": False, "groups": ROWS}})
    device = Device(spec, START)
    scheduler = device.scheduler
    assert scheduler is not None
    row = Group(60, 119, "ForceCharge", "amps", "act_1", max_soc=90)
    first = START + timedelta(hours=1)
    device.replace_groups([row], first.astimezone(timezone(timedelta(hours=2))))  # not UTC: converted
    assert device._cuts == [first, device.imperative, None]  # the flag was off: no rows in effect
    device.replace_groups([row], first)  # at the cut already made: nothing ran in between
    assert len(device._cuts) == 3
    device.set_scheduler_enabled(True, first + timedelta(hours=1))
    device.replace_groups(list(ROW_GROUPS), first + timedelta(hours=2))
    assert device._cuts[-3:] == [first + timedelta(hours=2), device.imperative, ((60, 119, "ForceCharge", None, None, None, 90),)]
    with pytest.raises(NativeError):
        device.replace_groups([row, row], first + timedelta(hours=3))  # refused: settled to it, nothing stored
    assert device._cuts == [] and device.battery.updated_at == first + timedelta(hours=3)
    assert scheduler.groups == ROW_GROUPS


ROW_GROUPS = tuple(Group.from_view(view) for view in ROWS)
