from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from amps_sim.simulator.battery import LOAD_KW, SOLAR_KW, Drive
from amps_sim.simulator.device import Device, DeviceSpec, drive_for_command, group_for_drive
from amps_sim.simulator.errnos import NativeError
from amps_sim.simulator.native_scheduler import Group

UTC = timezone.utc
T0 = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)  # 01:00 BST


def make(now: datetime = T0, **spec) -> Device:
    spec.setdefault("id", "dev-1")
    return Device(DeviceSpec.model_validate(spec), now)


def local_midnight(zone: str, y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=ZoneInfo(zone)).astimezone(UTC)


# --- spec ---------------------------------------------------------------------------------


def test_spec_defaults():
    spec = DeviceSpec.model_validate({"id": "a"})
    assert spec.profile == "foxess" and spec.timeZone == "Europe/London" and spec.timeZoneKnown is False
    assert (spec.battery.capacityKwh, spec.battery.soc, spec.battery.maxPowerKw) == (10.4, 50, 5.0)
    assert spec.scheduler is None and spec.serialNumber is None


@pytest.mark.parametrize(
    "data",
    [
        {"id": "a", "colour": "red"},
        {"id": "a", "battery": {"soc": 50, "voltage": 48}},
        {"id": "a", "scheduler": {"enabled": True, "slots": 8}},
        {"id": "a", "scheduler": {"groups": [{"start": "01:00", "end": "02:00", "workMode": "SelfUse", "enable": 1}]}},
    ],
)
def test_spec_rejects_unknown_fields(data):
    with pytest.raises(ValidationError):
        DeviceSpec.model_validate(data)


@pytest.mark.parametrize(
    "data",
    [
        {"id": "a", "battery": {"soc": "50"}},
        {"id": "a", "battery": {"soc": True}},
        {"id": "a", "scheduler": {"enabled": "yes"}},
        {"id": "a", "timeZoneKnown": 1},
        {"id": 7},
        {"id": "a", "scheduler": {"groups": [{"start": "01:00", "end": "02:00", "workMode": "SelfUse", "fdSoc": "20"}]}},
        {"id": "a", "scheduler": {"groups": [{"start": "1:00", "end": "02:00", "workMode": "SelfUse"}]}},
        {"id": "a", "scheduler": {"groups": [{"start": "01:00", "end": "24:00", "workMode": "SelfUse"}]}},
        {"id": "a", "scheduler": {"maxGroupCount": 0}},
        {"id": "a", "scheduler": {"maxGroupCount": 33}},
        {"id": "a", "battery": {"soc": 100.5}},
        {"id": "a", "battery": {"capacityKwh": 0}},
        {"id": "a", "battery": {"maxPowerKw": 101}},
        {"id": "a b"},
        {"id": ""},
        {"id": "x" * 65},
        {"id": "a", "profile": "tesla"},
    ],
)
def test_spec_rejects_wrong_types_and_ranges(data):
    with pytest.raises(ValidationError):
        DeviceSpec.model_validate(data)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "europe/london", "localtime", "../etc/passwd", "/usr/share/zoneinfo/UTC", "", "BST"])
def test_spec_rejects_bad_zone_names(zone):
    with pytest.raises(ValidationError):
        DeviceSpec.model_validate({"id": "a", "timeZone": zone})


def test_spec_accepts_ints_for_floats_and_real_zones():
    spec = DeviceSpec.model_validate({"id": "a", "timeZone": "Australia/Sydney", "battery": {"capacityKwh": 13, "soc": 80}})
    assert spec.battery.capacityKwh == 13


# --- construction -----------------------------------------------------------------------------


def test_bad_groups_in_spec_raise_value_error_with_errno():
    groups = [{"start": "01:00", "end": "03:00", "workMode": "SelfUse"}, {"start": "02:00", "end": "04:00", "workMode": "SelfUse"}]
    with pytest.raises(ValueError, match="42023"):
        make(scheduler={"groups": groups})
    with pytest.raises(ValueError, match="40257"):
        make(scheduler={"groups": [{"start": "05:00", "end": "01:00", "workMode": "SelfUse"}]})
    with pytest.raises(ValueError, match="40257"):
        make(scheduler={"maxGroupCount": 1, "groups": [{"start": "05:00", "end": "06:00", "workMode": "SelfUse"}] * 2})


def test_scheduler_spec_on_profile_without_scheduler_is_refused():
    with pytest.raises(ValueError, match="no native scheduler"):
        make(profile="direct", scheduler={"enabled": False})
    assert make(profile="direct").scheduler is None


def test_foxess_gets_a_default_scheduler_and_serial_is_deterministic():
    d = make()
    assert d.scheduler is not None and d.scheduler.max_group_count == 8 and not d.scheduler.enabled
    assert d.scheduler.readback_reorder
    assert d.serial_number == make().serial_number != make(id="dev-2").serial_number
    assert d.serial_number.startswith("SIM") and len(d.serial_number) == 13
    assert d.serial_number[3:] == d.serial_number[3:].upper()
    assert make(serialNumber="60BH1234").serial_number == "60BH1234"
    assert make(scheduler={"maxGroupCount": 3}).scheduler.max_group_count == 3


def test_naive_instants_are_refused():
    with pytest.raises(ValueError):
        make(now=datetime(2026, 5, 1))


# --- physics through the device ---------------------------------------------------------------


def charging_device(soc: float = 50, **drive) -> Device:
    d = make(battery={"capacityKwh": 10, "soc": soc, "maxPowerKw": 5})
    d.set_imperative(Drive("ForceCharge", fd_pwr_kw=5.0, **drive), T0)
    return d


def test_force_charge_for_an_hour_fills_and_clamps():
    d = charging_device()
    d.settle(T0 + timedelta(minutes=30))
    assert d.battery.soc == pytest.approx(75)
    d.settle(T0 + timedelta(hours=1))
    assert d.battery.soc == pytest.approx(100)
    d.settle(T0 + timedelta(hours=3))
    assert d.battery.soc == 100
    assert d.reading(T0 + timedelta(hours=3))["status"] == "idle"


def test_force_charge_stops_at_max_soc():
    d = charging_device(max_soc=80)
    d.settle(T0 + timedelta(hours=2))
    assert d.battery.soc == 80


def test_discharge_floor_is_respected():
    d = make(battery={"capacityKwh": 10, "soc": 50, "maxPowerKw": 5})
    d.set_imperative(drive_for_command("discharge", target=20, power_kw=2.5, reserve=None), T0)
    reading = d.reading(T0 + timedelta(minutes=30))
    assert reading["chargeRate"] == -2.5 and reading["status"] == "discharging" and reading["currentMode"] == "discharge"
    assert reading["level"] == pytest.approx(37.5)
    d.settle(T0 + timedelta(days=1))
    assert d.battery.soc == 20
    d.set_imperative(drive_for_command("discharge", target=None, power_kw=None, reserve=None), T0 + timedelta(days=1))
    d.settle(T0 + timedelta(days=2))
    assert d.battery.soc == 10  # the default floor


def reference_self_use(soc: float, hours: int, capacity: float, cap: float) -> list[float]:
    """An independent hour-by-hour model starting at local midnight: inside one hour the power is
    constant until a limit, so clamping once per hour is exact. Returns the SoC after each hour."""
    path = []
    for i in range(hours):
        h = i % 24
        power = max(-cap, min(cap, SOLAR_KW[h] - LOAD_KW[h]))
        soc = min(100.0, max(10.0, soc + power / capacity * 100))
        path.append(soc)
    return path


@pytest.mark.parametrize("zone", ["Europe/London", "Asia/Kathmandu", "America/St_Johns"])
def test_self_use_daily_cycle_is_deterministic_and_exact(zone):
    start = local_midnight(zone, 2026, 6, 1)
    hours = 3 * 24 + 19  # end in the evening drain, away from either limit
    spec = {"timeZone": zone, "battery": {"capacityKwh": 10, "soc": 30, "maxPowerKw": 5}}
    one, two = make(start, **spec), make(start, **spec)
    one.settle(start + timedelta(hours=hours))
    for step in range(1, hours * 4 + 1):  # the same span in 15-minute pieces
        two.settle(start + timedelta(minutes=15 * step))
    path = reference_self_use(30, hours, 10, 5)
    assert min(path) == 10 and max(path) == 100  # both limits are really exercised
    assert 10 < path[-1] < 100
    assert one.battery.soc == pytest.approx(path[-1], abs=1e-9)
    assert two.battery.soc == pytest.approx(path[-1], abs=1e-9)
    again = make(start, **spec)
    again.settle(start + timedelta(hours=hours))
    assert again.battery.soc == one.battery.soc


def test_settle_never_goes_backwards():
    d = charging_device()
    d.settle(T0 + timedelta(minutes=30))
    before = (d.battery.soc, d.battery.updated_at)
    d.settle(T0 + timedelta(minutes=10))
    assert (d.battery.soc, d.battery.updated_at) == before


def test_settle_cost_is_per_segment_not_per_second():
    groups = [
        {"start": "01:00", "end": "04:59", "workMode": "ForceCharge", "fdPwr": 2000},
        {"start": "17:30", "end": "19:44", "workMode": "ForceDischarge", "fdPwr": 3000, "fdSoc": 20},
    ]
    d = make(scheduler={"enabled": True, "groups": groups})
    d.settle(T0 + timedelta(days=7))
    # Five spans a day (four group edges and local midnight) and a limit hit or two per span; the
    # household's hourly table is integrated in closed form, so hour marks cost nothing.
    assert d.segments_integrated <= 7 * 5 * 3
    assert d.segments_integrated < 7 * 24


def test_settle_cost_grows_with_limits_not_hours():
    # A year of the imperative drive alone, on a big battery that drifts up for weeks and then
    # hits its ceiling every day: whole days that touch no limit are one step each, and once a
    # day comes back to where it began the rest are taken at once. Still exact to the hour model.
    zone = "Asia/Kathmandu"
    start = local_midnight(zone, 2026, 6, 1)
    spec = {"timeZone": zone, "battery": {"capacityKwh": 200, "soc": 50, "maxPowerKw": 5}}
    d = make(start, **spec)
    d.settle(start + timedelta(days=365))
    path = reference_self_use(50, 365 * 24, 200, 5)
    assert max(path) == 100
    assert d.battery.soc == pytest.approx(path[-1], abs=1e-6)
    assert d.segments_integrated < 100  # against 8,760 hours


# --- scheduler and wall clock -----------------------------------------------------------------


def test_drive_at_uses_groups_only_while_flag_is_on():
    groups = [{"start": "02:00", "end": "02:59", "workMode": "ForceCharge", "fdPwr": 1500, "maxSoc": 90}]
    d = make(scheduler={"groups": groups})
    inside = datetime(2026, 5, 4, 1, 30, tzinfo=UTC)  # 02:30 BST
    assert d.drive_at(inside).work_mode == "SelfUse"
    d.set_scheduler_enabled(True, T0)
    assert d.drive_at(inside) == Drive("ForceCharge", fd_pwr_kw=1.5, max_soc=90.0)
    assert d.drive_at(inside + timedelta(hours=1)) == d.imperative  # outside every group
    d.set_scheduler_enabled(False, T0)
    assert d.drive_at(inside).work_mode == "SelfUse"


def test_group_runs_on_plant_wall_clock_not_utc():
    groups = [{"start": "02:00", "end": "02:59", "workMode": "ForceCharge"}]
    d = make(timeZone="Australia/Sydney", scheduler={"enabled": True, "groups": groups})
    assert d.drive_at(datetime(2026, 5, 4, 16, 30, tzinfo=UTC)).work_mode == "ForceCharge"  # 02:30 AEST
    assert d.drive_at(datetime(2026, 5, 4, 2, 30, tzinfo=UTC)).work_mode == "SelfUse"


def hold_then_group(zone: str, start: datetime, group_start: str, group_end: str) -> Device:
    """Imperative hold (SoC frozen) plus a 1 kW ForceCharge group: each run adds 10 % per hour."""
    group = {"start": group_start, "end": group_end, "workMode": "ForceCharge", "fdPwr": 1000}
    d = make(start, timeZone=zone, battery={"capacityKwh": 10, "soc": 20, "maxPowerKw": 5},
             scheduler={"enabled": True, "groups": [group]})
    d.imperative = drive_for_command("idle", target=None, power_kw=None, reserve=None)
    return d


@pytest.mark.parametrize(
    ("zone", "day", "group", "runs"),
    [
        ("Europe/London", (2026, 3, 28), ("01:00", "01:59"), 1),  # ordinary day
        ("Europe/London", (2026, 3, 29), ("01:00", "01:59"), 0),  # spring forward: 01:xx never exists
        ("Europe/London", (2026, 10, 25), ("01:00", "01:59"), 2),  # fall back: 01:xx twice
        ("Australia/Sydney", (2026, 4, 5), ("02:00", "02:59"), 2),  # fall back
        ("Australia/Sydney", (2026, 10, 4), ("02:00", "02:59"), 0),  # spring forward
        ("Australia/Sydney", (2026, 10, 5), ("02:00", "02:59"), 1),
    ],
)
def test_dst_gap_never_runs_and_fold_runs_twice(zone, day, group, runs):
    start = local_midnight(zone, *day)
    # next local midnight: aware-datetime arithmetic is wall-clock arithmetic, so this is 23/24/25 h on
    end = (datetime(*day, tzinfo=ZoneInfo(zone)) + timedelta(days=1)).astimezone(UTC)
    d = hold_then_group(zone, start, *group)
    d.settle(end)
    assert d.battery.soc == pytest.approx(20 + 10 * runs)
    # the same count, minute by minute, from drive_at alone
    minutes = int((end - start).total_seconds() // 60)
    charging = sum(d.drive_at(start + timedelta(minutes=i)).work_mode == "ForceCharge" for i in range(minutes))
    assert charging == 60 * runs


def test_fold_settles_in_pieces_the_same_as_in_one_go():
    start = local_midnight("Europe/London", 2026, 10, 25)
    whole, pieces = (hold_then_group("Europe/London", start, "01:00", "01:29") for _ in range(2))
    whole.settle(start + timedelta(hours=4))
    for i in range(1, 4 * 60 // 7 + 2):
        pieces.settle(start + timedelta(minutes=7 * i))
    assert whole.battery.soc == pytest.approx(30)
    assert pieces.battery.soc == pytest.approx(30)


# --- writes, reads, views -----------------------------------------------------------------------


def test_replace_groups_settles_first_and_propagates_native_errors():
    d = charging_device()
    bad = [Group(60, 120, "SelfUse", "homeowner_app"), Group(90, 200, "SelfUse", "homeowner_app")]
    with pytest.raises(NativeError) as info:
        d.replace_groups(bad, T0 + timedelta(minutes=6))
    assert info.value.errno == 42023
    assert d.battery.soc == pytest.approx(55) and d.scheduler.groups == ()
    with pytest.raises(ValueError):
        make(profile="direct").replace_groups([], T0)


def test_reading_reports_modes_and_signs():
    d = make(battery={"capacityKwh": 10, "soc": 50, "maxPowerKw": 5})
    cases = {
        ("charge", 90, 3.0, None): ("charge", 3.0, "charging"),
        ("discharge", 20, 2.0, None): ("discharge", -2.0, "discharging"),
        ("idle", None, None, None): ("idle", 0.0, "idle"),
        ("auto.reserve", None, None, None): ("auto.reserve", 0.0, "idle"),  # 01:00 BST: no solar
        ("auto.export", None, None, None): ("auto.export", -LOAD_KW[1], "discharging"),
        ("auto.balanced", None, None, None): ("auto.balanced", -LOAD_KW[1], "discharging"),
    }
    for (command, target, power, reserve), (mode, rate, status) in cases.items():
        d.set_imperative(drive_for_command(command, target=target, power_kw=power, reserve=reserve), T0)
        reading = d.reading(T0)
        assert (reading["currentMode"], reading["chargeRate"], reading["status"]) == (mode, rate, status)
        assert reading["capacity"] == 10 and reading["level"] == 50.0


def test_drive_for_command_mapping():
    assert drive_for_command("charge", target=90, power_kw=3, reserve=20) == Drive("ForceCharge", max_soc=90, fd_pwr_kw=3, min_soc_on_grid=20)
    assert drive_for_command("discharge", target=30, power_kw=None, reserve=None) == Drive("ForceDischarge", fd_soc=30)
    assert drive_for_command("idle", target=None, power_kw=None, reserve=None) == Drive("ForceDischarge", fd_pwr_kw=0)
    assert drive_for_command("auto.balanced", target=None, power_kw=None, reserve=None).work_mode == "SelfUse"
    assert drive_for_command("auto.reserve", target=None, power_kw=None, reserve=None).work_mode == "Backup"
    assert drive_for_command("auto.export", target=None, power_kw=None, reserve=None).work_mode == "Feedin"
    with pytest.raises(ValueError):
        drive_for_command("boost", target=None, power_kw=None, reserve=None)


def test_group_for_drive_uses_watts_and_whole_percents():
    drive = Drive("ForceCharge", max_soc=90.4, fd_pwr_kw=3.25, min_soc_on_grid=15.0)
    group = group_for_drive(drive, 1320, 1439, owner="amps", action_id="act_9")
    assert group == Group(1320, 1439, "ForceCharge", "amps", action_id="act_9", fd_pwr=3250, max_soc=90, min_soc_on_grid=15)
    assert all(isinstance(v, int) for v in (group.fd_pwr, group.max_soc, group.min_soc_on_grid))


def test_view_and_to_spec_round_trip():
    groups = [
        {"start": "01:00", "end": "01:59", "workMode": "ForceCharge", "owner": "amps", "actionId": "act_1", "fdPwr": 2000},
        {"start": "18:00", "end": "20:59", "workMode": "ForceDischarge", "fdSoc": 30},
    ]
    d = make(timeZoneKnown=True, scheduler={"enabled": True, "groups": groups})
    view = d.view(T0)
    assert view["id"] == "dev-1" and view["profile"] == "foxess" and view["timeZone"] == "Europe/London"
    assert view["timeZoneKnown"] is True and view["serialNumber"] == d.serial_number
    assert view["battery"]["workMode"] == "ForceCharge" and view["battery"]["currentMode"] == "charge"
    assert view["battery"]["chargeRateKw"] == 2.0 and view["battery"]["status"] == "charging"
    assert view["scheduler"] == {
        "enabled": True, "maxGroupCount": 8,
        "groups": [{**groups[0]}, {**groups[1], "owner": "homeowner_app"}],
    }
    rebuilt = Device(d.to_spec(), T0)
    assert rebuilt.view(T0) == view
    assert make(profile="direct").view(T0)["scheduler"] is None


@pytest.mark.parametrize(
    ("capacity", "days"),
    [(10.0, 45), (200.0, 12)],  # limits met every day; a slow drift that meets none in the run
)
@pytest.mark.parametrize("zone", ["Europe/London", "Asia/Kathmandu"])
def test_whole_days_taken_at_once_match_small_steps(zone, capacity, days):
    # Taking whole days as units (a repeating day, or a free day's shift) gives the SoC that
    # settling in small steps does: they never see a whole day, so they walk every span.
    groups = [
        {"start": "02:00", "end": "04:59", "workMode": "ForceCharge", "fdPwr": 1500, "maxSoc": 90},
        {"start": "17:00", "end": "19:29", "workMode": "ForceDischarge", "fdSoc": 20, "fdPwr": 2000},
    ]
    start = local_midnight(zone, 2026, 3, 1)  # London crosses its spring change inside the run
    spec = {"timeZone": zone, "battery": {"capacityKwh": capacity, "soc": 40, "maxPowerKw": 5},
            "scheduler": {"enabled": True, "groups": groups}}
    at_once, stepped = make(start, **spec), make(start, **spec)
    end = start + timedelta(days=days, hours=7)
    at_once.settle(end)
    moment = start
    while moment < end:
        moment = min(end, moment + timedelta(minutes=37))
        stepped.settle(moment)
    assert at_once.battery.soc == pytest.approx(stepped.battery.soc, abs=1e-9)
    assert at_once.segments_integrated < stepped.segments_integrated / 5
    if capacity == 200.0:
        assert 50 < at_once.battery.soc < 85  # still drifting: the shift arithmetic decided it
