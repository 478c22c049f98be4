"""What a fleet keeps per device: a scheduler written back the rows it held before stores that
row set again (the same tuple and the same physics key, so a device's repeated day is still
recognised), devices built with equal rows share them, and a device with pending writes survives
a pickle round trip reading what it would have read."""

from __future__ import annotations

import pickle
import weakref
from datetime import datetime, timedelta, timezone

import pytest

from amps_sim.simulator.device import Device, DeviceSpec
from amps_sim.simulator.errnos import NativeError
from amps_sim.simulator.native_scheduler import Group, NativeScheduler
from amps_sim.simulator.profiles import load_profile

START = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)
HOMEOWNER = [
    {"start": "07:00", "end": "08:59", "workMode": "ForceDischarge", "fdSoc": 20, "fdPwr": 2000},
    {"start": "17:00", "end": "19:59", "workMode": "Backup"},
]


def _scheduler(groups: list[Group]) -> NativeScheduler:
    profile = load_profile("foxess")
    return NativeScheduler(profile.default_max_group_count, profile.group_limits, profile.work_modes, groups=groups)


def _device(device_id: str) -> Device:
    spec = DeviceSpec.model_validate(
        {"id": device_id, "timeZone": "Europe/London", "scheduler": {"enabled": True, "groups": HOMEOWNER}}
    )
    return Device(spec, START)


def _window(action_id: str) -> Group:
    return Group(60, 299, "ForceCharge", "amps", action_id, max_soc=95)


def test_writing_back_the_rows_held_before_stores_that_set_again() -> None:
    home = [Group(420, 539, "Backup", "homeowner_app"), Group(1020, 1199, "SelfUse", "homeowner_app")]
    scheduler = _scheduler(home)
    stored, key = scheduler.groups, scheduler.physics_key()
    scheduler.replace([*reversed(stored), _window("act_1")])
    assert len(scheduler.groups) == 3
    scheduler.replace(list(stored))
    assert scheduler.groups is stored and scheduler.physics_key() is key
    # Equal rows that are other objects are a new set, stored and keyed by value as before.
    again = [Group(420, 539, "Backup", "homeowner_app"), Group(1020, 1199, "SelfUse", "homeowner_app")]
    scheduler.replace([*again, _window("act_2")])
    scheduler.replace(again)
    assert scheduler.groups == stored and scheduler.groups is not stored
    assert scheduler.physics_key() == key


def test_a_refused_write_changes_nothing_and_the_previous_set_still_serves() -> None:
    scheduler = _scheduler([Group(420, 539, "Backup", "homeowner_app")])
    home = scheduler.groups
    scheduler.replace([*home, _window("act_1")])
    with_window = scheduler.groups
    with pytest.raises(NativeError):
        scheduler.replace([*home, Group(400, 450, "Backup", "amps", "act_2")])  # overlaps the homeowner row
    assert scheduler.groups is with_window
    scheduler.replace(list(home))
    assert scheduler.groups is home


def test_rows_no_longer_stored_are_not_kept_for_a_later_write() -> None:
    window = _window("act_1")
    scheduler = _scheduler([Group(420, 539, "Backup", "homeowner_app"), window])
    gone = weakref.ref(window)
    del window
    scheduler.replace([scheduler.groups[0]])  # the window's cleanup
    assert gone() is None


def test_devices_built_with_equal_rows_share_them() -> None:
    first, second = _device("dev_a"), _device("dev_b")
    assert first.scheduler is not None and second.scheduler is not None
    assert first.scheduler.groups is second.scheduler.groups
    # Sharing is invisible to a device's own writes: the other keeps its rows.
    first.replace_groups([], START + timedelta(hours=1))
    assert first.scheduler.groups == () and len(second.scheduler.groups) == 2


def test_a_device_with_pending_writes_reads_the_same_after_a_pickle_round_trip() -> None:
    device = _device("dev_a")
    assert device.scheduler is not None
    home = list(device.scheduler.groups)
    at = START
    for day in range(5):
        at = START + timedelta(days=day, hours=16)
        device.replace_groups([*home, _window(f"act_{day}")], at)
        device.replace_groups(home, at + timedelta(hours=4))
    copy = pickle.loads(pickle.dumps(device))
    later = at + timedelta(days=3)
    assert copy.reading(later) == device.reading(later)
    assert copy.battery.soc == device.battery.soc
