"""Lazy writes: a device that integrates only when read gives what settling at every write gives.

Each scenario drives two devices through the real Device interface with the same writes (rows,
the flag, imperative drives) and reads: `lazy` as the platform does (write, write, ... read),
`eager` settled at the instant of every write first, as the device did before writes were lazy.
Every read must agree to the last bit. The plans repeat daily, with disturbances, across DST
changes, rows that cross midnight and rows that pin the SoC on a limit, so the replay's
skipping of repeated days is exercised (and counted) as well as its walking.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from amps_sim.simulator.battery import Drive
from amps_sim.simulator.device import Device, DeviceSpec, drive_for_command
from amps_sim.simulator.native_scheduler import Group

UTC = timezone.utc


def row(start: str, end: str, mode: str, **params: int) -> dict[str, object]:
    return {"start": start, "end": end, "workMode": mode, **params}


# Row lists a homeowner app or the platform might write: empty, a night charge to a ceiling, a
# morning discharge to a floor and an evening reserve, a charge across midnight (two rows), a
# long discharge held above a reserve, an all-day row.
ROW_SETS: list[list[dict[str, object]]] = [
    [],
    [row("01:00", "04:59", "ForceCharge", maxSoc=90, fdPwr=3000)],
    [row("07:00", "08:59", "ForceDischarge", fdSoc=20, fdPwr=2000), row("17:00", "19:59", "Backup")],
    [row("22:00", "23:59", "ForceCharge", fdPwr=1500), row("00:00", "01:29", "ForceCharge", fdPwr=1500)],
    [row("16:00", "19:59", "ForceDischarge", fdSoc=30, minSocOnGrid=25), row("02:00", "02:59", "Feedin")],
    [row("00:00", "23:59", "SelfUse", minSocOnGrid=40)],
    [row("01:00", "04:59", "ForceCharge", maxSoc=95), row("07:00", "08:59", "ForceDischarge", fdSoc=20, fdPwr=2000)],
]
IMPERATIVES: list[Drive] = [
    Drive("SelfUse"),
    Drive("Backup"),
    Drive("Feedin"),
    drive_for_command("idle", target=None, power_kw=None, reserve=None),
    drive_for_command("charge", target=80, power_kw=2.0, reserve=None),
    drive_for_command("discharge", target=20, power_kw=None, reserve=None),
]
# (zone, a local date a few days before one of its offset changes)
PLACES = [
    ("Europe/London", date(2026, 3, 26)),
    ("Europe/London", date(2026, 10, 22)),
    ("Australia/Sydney", date(2026, 4, 2)),
    ("America/St_Johns", date(2026, 10, 29)),
    ("Asia/Kathmandu", date(2026, 6, 1)),
]


def groups(index: int, action_id: str | None) -> list[Group]:
    """Row set `index`, as a platform write marks its rows (a fresh action id: new objects,
    the same physics) or a homeowner's."""
    owner = "amps" if action_id else "homeowner_app"
    return [Group.from_view({**r, "owner": owner, **({"actionId": action_id} if action_id else {})}) for r in ROW_SETS[index]]


def wall(zone: ZoneInfo, day: date, minute: int) -> datetime:
    return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone).astimezone(UTC)


def random_write(rng: random.Random) -> tuple[str, int]:
    kind = rng.choice(["groups", "groups", "flag", "imperative"])
    return kind, rng.randrange(len(ROW_SETS) if kind == "groups" else 2 if kind == "flag" else len(IMPERATIVES))


def plan(rng: random.Random, zone: ZoneInfo, first: date, days: int) -> list[tuple[datetime, str, int]]:
    """A day's writes repeated for `days` days, on the plant's wall clock or (a client's timer)
    every 24 hours, with disturbed days (another write at the same moment, or one moved) and
    reads at random moments, at a fixed time of day, or days apart."""
    daily = sorted((rng.randrange(24 * 60), *random_write(rng)) for _ in range(rng.randint(1, 4)))
    read_time = rng.randrange(24 * 60) if rng.random() < 0.3 else None
    on_timer = rng.random() < 0.4
    origin = wall(zone, first, 0)

    def moment(n: int, minute: int) -> datetime:
        return origin + timedelta(days=n, minutes=minute) if on_timer else wall(zone, first + timedelta(days=n), minute)

    events: list[tuple[datetime, str, int]] = []
    for n in range(days):
        todays = list(daily)
        if rng.random() < 0.2:
            which = rng.randrange(len(todays))
            minute = todays[which][0] if rng.random() < 0.5 else rng.randrange(24 * 60)
            todays[which] = (minute, *random_write(rng))
        for minute, kind, value in todays:
            events.append((moment(n, minute), kind, value))
        if read_time is not None:
            events.append((moment(n, read_time), "read", 0))
        if rng.random() < 0.12:
            events.append((moment(n, rng.randrange(24 * 60)) + timedelta(seconds=rng.randrange(60)), "read", 0))
    events.sort(key=lambda event: event[0])
    if rng.random() < 0.3 and len(events) > 2:
        # A write stamped before the latest cut: it takes effect from that cut, on either device.
        at, kind, value = events[len(events) // 2]
        events.insert(len(events) // 2 + 1, (at - timedelta(minutes=30), kind, value))
    return events


def apply(device: Device, at: datetime, kind: str, value: int, serial: int) -> None:
    if kind == "groups":
        device.replace_groups(groups(value, f"act_{serial}" if serial % 2 else None), at)
    elif kind == "flag":
        device.set_scheduler_enabled(bool(value), at, by="amps")
    else:
        device.set_imperative(IMPERATIVES[value], at)


def pair(rng: random.Random, zone: str, start: datetime) -> tuple[Device, Device]:
    spec = DeviceSpec.model_validate(
        {
            "id": "dev-1",
            "timeZone": zone,
            "battery": {"capacityKwh": rng.choice([5.0, 10.4, 40.0]), "soc": rng.randint(10, 95),
                        "maxPowerKw": rng.choice([3.0, 5.0])},
            "scheduler": {"enabled": rng.random() < 0.8, "groups": ROW_SETS[rng.randrange(len(ROW_SETS))]},
        }
    )
    return Device(spec, start), Device(spec, start)


def agree(lazy: Device, eager: Device, at: datetime) -> None:
    assert lazy.view(at) == eager.view(at)
    assert (lazy.battery.soc, lazy.battery.updated_at) == (eager.battery.soc, eager.battery.updated_at)


@pytest.mark.parametrize("seed", range(60))
def test_lazy_device_reads_what_settling_at_every_write_reads(seed):
    rng = random.Random(seed)
    zone_name, first = PLACES[seed % len(PLACES)]
    zone = ZoneInfo(zone_name)
    start = wall(zone, first, rng.randrange(24 * 60))
    lazy, eager = pair(rng, zone_name, start)
    events = plan(rng, zone, first, rng.randint(6, 24))
    for serial, (at, kind, value) in enumerate(events):
        if kind == "read":
            agree(lazy, eager, at)
            continue
        eager.settle(at)
        apply(eager, at, kind, value, serial)
        apply(lazy, at, kind, value, serial)
    agree(lazy, eager, events[-1][0] + timedelta(hours=rng.randrange(1, 80)))
    assert lazy.segments_integrated <= eager.segments_integrated


def platform_days(device: Device, zone: ZoneInfo, first: date, days: int, *, eager: bool) -> None:
    """The fleet's device-day: a windowed charge written at 01:00 and removed at 05:00, beside the
    homeowner's rows (a new action, so new row objects, every day)."""
    homeowner = groups(2, None)
    for n in range(days):
        day = first + timedelta(days=n)
        for minute, rows in ((60, homeowner + groups(1, f"act_{n}")), (300, homeowner)):
            at = wall(zone, day, minute)
            if eager:
                device.settle(at)
            device.replace_groups(rows, at)


@pytest.mark.parametrize(("zone_name", "first"), [("Europe/London", date(2026, 5, 8)), ("Europe/London", date(2026, 3, 20))])
def test_repeated_days_of_writes_cost_two_days_and_read_the_same(zone_name, first):
    # The charge pins the SoC at 90 % every morning, so from the second day each day ends where
    # it began: the lazy device walks about two days and skips the rest (across the spring
    # change it walks the days around it again), and reads exactly what the eager one reads.
    zone = ZoneInfo(zone_name)
    spec = DeviceSpec.model_validate(
        {"id": "dev-1", "timeZone": zone_name, "scheduler": {"enabled": True, "groups": ROW_SETS[2]}}
    )
    start = wall(zone, first, 0)
    lazy, eager = Device(spec, start), Device(spec, start)
    platform_days(lazy, zone, first, 30, eager=False)
    platform_days(eager, zone, first, 30, eager=True)
    at = wall(zone, first + timedelta(days=30), 9 * 60)
    agree(lazy, eager, at)
    assert lazy.segments_integrated * 5 < eager.segments_integrated


def test_a_device_never_read_still_integrates_its_writes():
    # Pending writes are bounded: a device written to for months and never read has moved its
    # SoC on by itself, to within a few days of its last write.
    zone = ZoneInfo("Europe/London")
    first = date(2026, 5, 8)
    spec = DeviceSpec.model_validate({"id": "dev-1", "scheduler": {"enabled": True, "groups": ROW_SETS[2]}})
    device = Device(spec, wall(zone, first, 0))
    platform_days(device, zone, first, 90, eager=False)
    last_write = wall(zone, first + timedelta(days=89), 300)
    assert last_write - device.battery.updated_at < timedelta(days=10)


def test_a_day_whose_writes_install_other_rows_is_not_taken_for_a_repeat():
    # Day 20's 01:00 write installs a weaker charge at the usual moment: it no longer fills the
    # battery to 90 %, so the day differs from the one before, which shows at noon.
    zone = ZoneInfo("Europe/London")
    first = date(2026, 5, 8)
    spec = DeviceSpec.model_validate({"id": "dev-1", "scheduler": {"enabled": True, "groups": ROW_SETS[2]}})
    start = wall(zone, first, 0)
    lazy, eager, usual = Device(spec, start), Device(spec, start), Device(spec, start)
    weak = Group.from_view({**row("01:00", "04:59", "ForceCharge", maxSoc=90, fdPwr=500), "owner": "amps"})
    for device, settle in ((lazy, False), (eager, True), (usual, False)):
        for n in range(21):
            day = first + timedelta(days=n)
            charge = [weak] if n == 20 and device is not usual else groups(1, f"act_{n}")
            for minute, rows in ((60, groups(2, None) + charge), (300, groups(2, None))):
                at = wall(zone, day, minute)
                if settle:
                    device.settle(at)
                device.replace_groups(rows, at)
    noon = wall(zone, first + timedelta(days=20), 12 * 60)
    agree(lazy, eager, noon)
    assert lazy.reading(noon)["level"] < usual.reading(noon)["level"]
    assert lazy.segments_integrated * 3 < eager.segments_integrated


def test_after_the_first_days_repeated_days_integrate_nothing():
    # Once the days repeat, every later replay skips all of its days (the history keeps the cut
    # a day before the last skipped day's end, where the next check looks): a device written
    # for 90 days integrates no more spans than one written for 10.
    zone = ZoneInfo("Europe/London")
    first = date(2026, 5, 8)
    spec = DeviceSpec.model_validate({"id": "dev-1", "scheduler": {"enabled": True, "groups": ROW_SETS[2]}})
    counts = []
    for days in (10, 90):
        device = Device(spec, wall(zone, first, 0))
        platform_days(device, zone, first, days, eager=False)
        device.view(wall(zone, first + timedelta(days=days), 0))
        counts.append(device.segments_integrated)
    assert counts[0] == counts[1]


def test_a_day_under_another_imperative_drive_is_not_taken_for_a_repeat():
    # Flag off: each day charges to 80 % from 06:00 and idles from 18:00, so the SoC is 80 % at
    # every cut and the days (18:00 to 06:00, as the replays fall) repeat. One evening
    # discharges instead: the next morning's cut falls at the same instant with the same (no)
    # rows, but another drive ran up to it, which shows at 07:00.
    zone = ZoneInfo("Europe/London")
    first = date(2026, 5, 8)
    spec = DeviceSpec.model_validate({"id": "dev-1", "scheduler": {"enabled": False}})
    start = wall(zone, first, 0)
    lazy, eager = Device(spec, start), Device(spec, start)
    charge, idle, discharge = IMPERATIVES[4], IMPERATIVES[3], IMPERATIVES[5]
    writes = [(wall(zone, first, 3 * 60), idle)]
    for n in range(11):
        day = first + timedelta(days=n)
        writes += [(wall(zone, day, 6 * 60), charge), (wall(zone, day, 18 * 60), discharge if n == 10 else idle)]
    writes.append((wall(zone, first + timedelta(days=11), 6 * 60), charge))
    for at, drive in writes:
        eager.settle(at)
        eager.set_imperative(drive, at)
        lazy.set_imperative(drive, at)
    morning = wall(zone, first + timedelta(days=11), 7 * 60)
    agree(lazy, eager, morning)
    assert lazy.reading(morning)["level"] < 50
