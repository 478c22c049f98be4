"""A simulated device: a profile, a plant time zone, a battery and (maybe) a native scheduler.

The device is the OEM-side truth. It runs on its own plant-local wall clock: a scheduler group
is evaluated at the local minute of each instant, so DST gaps and folds do to it exactly what
they do to a real inverter. Time only ever arrives as an argument; nothing here reads a clock.
"""

from __future__ import annotations

import hashlib
import math
import re
from bisect import bisect_right
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any, Iterable
from zoneinfo import ZoneInfo, available_timezones

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator

from .battery import Battery, Drive, integrate_span
from .errnos import NativeError
from .native_scheduler import Group, NativeScheduler
from .profiles import DeviceProfile, load_profile, profile_names
from .validation import ClosedModel, JsonInt, refusal

_HHMM_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
# The shape of an IANA zone name (`UTC`, `Europe/London`, `America/Argentina/Buenos_Aires`,
# `Etc/GMT+5`); the same pattern as DeviceSpec.timeZone in contracts/control-openapi.yaml.
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]{0,31}(/[A-Za-z0-9_+-]{1,32}){0,2}", re.ASCII)
# Device._offset_at looks for UTC offset changes a week at a time, up to a horizon.
_OFFSET_PROBE = timedelta(days=7)
_OFFSET_HORIZON = timedelta(days=63)
_DAY = timedelta(days=1)
_NOT_PLACES = frozenset({"localtime", "Factory", "posixrules"})  # files in the tz database that are not zones


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones() - _NOT_PLACES)


class GroupSpec(ClosedModel):
    start: StrictStr = Field(pattern=_HHMM_PATTERN)
    end: StrictStr = Field(pattern=_HHMM_PATTERN)
    workMode: StrictStr
    owner: StrictStr = "homeowner_app"
    fdSoc: JsonInt | None = None
    fdPwr: JsonInt | None = None
    minSocOnGrid: JsonInt | None = None
    maxSoc: JsonInt | None = None
    # Not in the original brief: without it `to_spec` would drop which action owns a platform row.
    actionId: StrictStr | None = None

    def to_group(self) -> Group:
        return Group.from_view(self.model_dump(exclude_none=True))


class SchedulerSpec(ClosedModel):
    enabled: StrictBool = False
    maxGroupCount: JsonInt | None = Field(default=None, ge=1, le=32)  # None: the profile's number
    groups: list[GroupSpec] = Field(default_factory=list)


class BatterySpec(ClosedModel):
    capacityKwh: StrictFloat | StrictInt = Field(default=10.4, gt=0, le=1000)
    soc: StrictFloat | StrictInt = Field(default=50, ge=0, le=100)
    maxPowerKw: StrictFloat | StrictInt = Field(default=5.0, gt=0, le=100)


class DeviceSpec(ClosedModel):
    id: StrictStr = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    profile: StrictStr = "foxess"
    timeZone: StrictStr = "Europe/London"
    timeZoneKnown: StrictBool = False
    battery: BatterySpec = Field(default_factory=BatterySpec)
    scheduler: SchedulerSpec | None = None
    serialNumber: StrictStr | None = None

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if value not in profile_names():
            raise ValueError(f"unknown profile {value!r}; known: {', '.join(profile_names())}")
        return value

    @field_validator("timeZone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        # A name that cannot be one is malformed (400); a well-formed name the tz database does not
        # hold is refused as such (422 UNKNOWN_TIME_ZONE), as the control spec's pattern promises.
        if not _ZONE_NAME.fullmatch(value):
            raise ValueError(f"not an IANA time zone name: {value!r}")
        if value not in _known_zones():
            raise refusal("UNKNOWN_TIME_ZONE", f"no time zone {value!r} in the tz database")
        return value


# --- drives and the public vocabulary -------------------------------------------------------

_AUTO_DRIVES = {"auto.balanced": "SelfUse", "auto.reserve": "Backup", "auto.export": "Feedin"}
_MODE_NAMES = {mode: command for command, mode in _AUTO_DRIVES.items()}


def drive_for_command(command: str, *, target: float | None, power_kw: float | None, reserve: float | None) -> Drive:
    """The native drive that carries out a public battery command (the canonical FoxESS mapping)."""
    if command == "charge":
        return Drive("ForceCharge", max_soc=target, fd_pwr_kw=power_kw, min_soc_on_grid=reserve)
    if command == "discharge":
        return Drive("ForceDischarge", fd_soc=target, fd_pwr_kw=power_kw, min_soc_on_grid=reserve)
    if command == "idle" or command in _AUTO_DRIVES:
        if (target, power_kw, reserve) != (None, None, None):
            raise ValueError(f"command {command!r} takes no parameters")
        # idle has no native mode: a force-discharge at 0 W holds the SoC where it is.
        return Drive("ForceDischarge", fd_pwr_kw=0.0) if command == "idle" else Drive(_AUTO_DRIVES[command])
    raise ValueError(f"unknown battery command {command!r}")


def command_for_drive(drive: Drive) -> str:
    """The public `currentMode` a drive reads back as."""
    if drive.work_mode == "ForceCharge":
        return "charge"
    if drive.work_mode == "ForceDischarge":
        return "idle" if drive.fd_pwr_kw == 0 else "discharge"
    return _MODE_NAMES[drive.work_mode]


def _whole(value: float | None) -> int | None:
    return None if value is None else int(round(value))


def group_for_drive(drive: Drive, start: int, end: int, *, owner: str, action_id: str | None) -> Group:
    """A scheduler row that runs `drive` from `start` to `end` (inclusive minutes of day)."""
    return Group(
        start=start,
        end=end,
        work_mode=drive.work_mode,
        owner=owner,
        action_id=action_id,
        fd_soc=_whole(drive.fd_soc),
        fd_pwr=None if drive.fd_pwr_kw is None else int(round(drive.fd_pwr_kw * 1000)),
        min_soc_on_grid=_whole(drive.min_soc_on_grid),
        max_soc=_whole(drive.max_soc),
    )


def drive_for_group(group: Group) -> Drive:
    return Drive(
        group.work_mode,
        fd_soc=None if group.fd_soc is None else float(group.fd_soc),
        fd_pwr_kw=None if group.fd_pwr is None else group.fd_pwr / 1000.0,
        min_soc_on_grid=None if group.min_soc_on_grid is None else float(group.min_soc_on_grid),
        max_soc=None if group.max_soc is None else float(group.max_soc),
    )


def as_utc(moment: datetime) -> datetime:
    """Instants must be timezone-aware; a naive one would silently mean the host's zone."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"instant must be timezone-aware: {moment!r}")
    return moment.astimezone(timezone.utc)


def serial_for(device_id: str) -> str:
    return "SIM" + hashlib.sha256(device_id.encode("utf-8")).hexdigest()[:10].upper()


# --- the device -----------------------------------------------------------------------------


class Device:
    def __init__(self, spec: DeviceSpec, now: datetime) -> None:
        self.id = spec.id
        self.profile: DeviceProfile = load_profile(spec.profile)
        self.tz = ZoneInfo(spec.timeZone)
        self.tz_known = spec.timeZoneKnown
        self.serial_number = spec.serialNumber or serial_for(spec.id)
        self.battery = Battery(
            capacity_kwh=float(spec.battery.capacityKwh),
            soc=float(spec.battery.soc),
            max_power_kw=float(spec.battery.maxPowerKw),
            updated_at=as_utc(now),
        )
        self.imperative = Drive("SelfUse")
        # Integration segments run so far; tests read it to prove cost is per segment, not per second.
        self.segments_integrated = 0
        self._offset_window: tuple[datetime, datetime, timedelta] | None = None
        self._group_drives: dict[Group, Drive] = {}
        # The platform's capabilities document for this device, built on first use (see Platform).
        self.capabilities_view: dict[str, Any] | None = None
        self.scheduler = self._build_scheduler(spec.scheduler)

    def _build_scheduler(self, spec: SchedulerSpec | None) -> NativeScheduler | None:
        if not self.profile.native_scheduler:
            if spec is not None:
                raise ValueError(f"device {self.id}: profile {self.profile.name!r} has no native scheduler")
            return None
        spec = spec or SchedulerSpec()
        try:
            groups = [g.to_group() for g in spec.groups]
            return NativeScheduler(
                spec.maxGroupCount or self.profile.default_max_group_count,
                self.profile.group_limits,
                self.profile.work_modes,
                enabled=spec.enabled,
                groups=groups,
                readback_reorder=self.profile.readback_reorder,
            )
        except NativeError as exc:
            raise ValueError(f"device {self.id}: scheduler refused the groups (errno {exc.errno}): {exc.message}") from exc

    # --- time ---

    def local_minute(self, t: datetime) -> int:
        local = as_utc(t).astimezone(self.tz)
        return local.hour * 60 + local.minute

    def drive_at(self, t: datetime) -> Drive:
        """What the inverter runs at `t`: the covering group while the flag is on, else the
        imperative drive (also outside every group, where the device falls back to its setting)."""
        return self._drive_at_minute(self.local_minute(t))

    def _drive_at_minute(self, minute: int) -> Drive:
        if self.scheduler is not None and self.scheduler.enabled:
            group = self.scheduler.active_group(minute)
            if group is not None:
                drive = self._group_drives.get(group)
                if drive is None:
                    if len(self._group_drives) > 64:
                        self._group_drives.clear()  # rows come and go; keep only recent ones
                    drive = self._group_drives[group] = drive_for_group(group)
                return drive
        return self.imperative

    def _offset_at(self, cur: datetime) -> tuple[timedelta, datetime]:
        """The plant's UTC offset at `cur` and the instant it next changes (or a horizon). Kept
        per device, so a settle does wall-clock arithmetic without a zone lookup per span."""
        window = self._offset_window
        if window is not None and window[0] <= cur < window[1]:
            return window[2], window[1]
        offset = cur.astimezone(self.tz).utcoffset() or timedelta(0)
        horizon = cur + _OFFSET_HORIZON
        probe, until = cur, horizon
        # Offset changes are looked for a week at a time, so a bisection never has two to choose between.
        while probe < horizon:
            step = min(horizon, probe + _OFFSET_PROBE)
            if step.astimezone(self.tz).utcoffset() != offset:
                until = self._offset_change(probe, step, offset)
                break
            probe = step
        self._offset_window = (cur, until, offset)
        return offset, until

    def _next_change(self, cur: datetime, until: datetime) -> tuple[datetime, int, float]:
        """The end of the span of constant drive and offset that starts at `cur` (at most
        `until`): the next edge of a group while the flag is on, or an offset change. Hour marks
        are not changes: the battery integrates the household's hourly table in closed form.
        Also returns the plant-local minute of day and hour of day (float) at `cur`."""
        offset, offset_until = self._offset_at(cur)
        local = cur + offset  # the wall clock, still labelled UTC: only its fields are read
        into_day = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        end = min(until, offset_until)
        if self.scheduler is not None and self.scheduler.enabled:
            marks = self.scheduler.boundaries()
            if marks:
                if marks[0] != 0:
                    # A group ending 23:59 has its edge at midnight, which boundaries() leaves out.
                    marks = [0, *marks]
                # The first edge later today, else the first edge tomorrow (sorted minutes of day).
                at = bisect_right(marks, into_day / 60)
                ahead = marks[at] * 60 if at < len(marks) else 86400 + marks[0] * 60
                edge = cur + timedelta(seconds=ahead - into_day)
                if edge < end:
                    end = edge
        return end, local.hour * 60 + local.minute, into_day / 3600

    def _offset_change(self, cur: datetime, later: datetime, offset: timedelta | None) -> datetime:
        """Bisect on whole seconds (tz transitions fall on them) for the first instant in
        (cur, later] whose UTC offset differs from `offset`. Spans are at most a week, so at most
        one transition lies inside."""
        low, high = math.floor(cur.timestamp()), math.ceil(later.timestamp())
        while high - low > 1:
            mid = (low + high) // 2
            if datetime.fromtimestamp(mid, self.tz).utcoffset() == offset:
                low = mid
            else:
                high = mid
        return datetime.fromtimestamp(high, timezone.utc)

    def settle(self, now: datetime) -> None:
        """Bring the SoC up to `now`.

        Spans of constant drive and UTC offset are integrated in closed form (see
        `integrate_span`). With the scheduler on, the groups make every plant-local day the same
        sequence of spans, so whole days are taken as units: a day that ends where it began (it
        met a limit and recovered) repeats to the end at no cost, and a day that touched no limit
        repeats as a shift by its net change for as many days as stay clear of every limit. So a
        month costs a few days' spans, not thirty."""
        now = as_utc(now)
        cur = self.battery.updated_at
        if now <= cur:
            return  # the device never runs backwards
        battery = self.battery
        while cur < now:
            offset, offset_until = self._offset_at(cur)
            horizon = min(now, offset_until)
            local = cur + offset
            whole_days = (horizon - cur) // _DAY
            at_midnight = not (local.hour or local.minute or local.second or local.microsecond)
            if self.scheduler is None or not self.scheduler.enabled:
                # One drive throughout: integrate_span takes the whole stretch (and its days) at once.
                self._settle_spans(cur, horizon)
                cur = horizon
                continue
            if not (at_midnight and whole_days >= 2):
                next_midnight = local.replace(hour=0, minute=0, second=0, microsecond=0) + _DAY - offset
                self._settle_spans(cur, min(horizon, next_midnight))
                cur = min(horizon, next_midnight)
                continue
            began = battery.soc
            touched, room_up, room_down = self._settle_spans(cur, cur + _DAY)
            cur += _DAY
            whole_days -= 1
            if battery.soc == began:
                repeat = whole_days  # the day is a fixed point: every later whole day is this day
            elif not touched:
                change = battery.soc - began
                room = room_up if change > 0 else room_down
                # One day fewer than the arithmetic allows, so rounding never skips past a limit.
                repeat = max(0, min(whole_days, int(room / abs(change)) - 1))
                battery.soc += repeat * change
            else:
                repeat = 0
            if repeat:
                cur += repeat * _DAY
                battery.updated_at = cur

    def _settle_spans(self, cur: datetime, until: datetime) -> tuple[bool, float, float]:
        """Integrate span by span up to `until`; whether any span touched a limit, and the least
        room any span left below its ceiling and above its floor."""
        battery = self.battery
        touched, room_up, room_down = False, math.inf, math.inf
        while cur < until:
            end, minute, local_hour = self._next_change(cur, until)
            drive = self._drive_at_minute(minute)
            span = integrate_span(battery, drive, local_hour, (end - cur).total_seconds() / 3600, end)
            self.segments_integrated += span.pieces
            touched = touched or span.touched
            room_up, room_down = min(room_up, span.room_up), min(room_down, span.room_down)
            cur = end
        return touched, room_up, room_down

    # --- writes (each settles first so the past is integrated under the old drive) ---

    def set_imperative(self, drive: Drive, now: datetime) -> None:
        self.settle(now)
        self.imperative = drive

    def replace_groups(self, groups: Iterable[Group], now: datetime) -> None:
        if self.scheduler is None:
            raise ValueError(f"device {self.id} has no native scheduler")
        self.settle(now)
        self.scheduler.replace(groups)

    def set_scheduler_enabled(self, flag: bool, now: datetime, *, by: str | None = None) -> None:
        """Switch the native flag; `by` is who did (the platform's owner name, or a foreign party's)."""
        if self.scheduler is None:
            raise ValueError(f"device {self.id} has no native scheduler")
        self.settle(now)
        self.scheduler.set_enabled(flag)
        self.scheduler.flag_owner = by

    # --- reads ---

    def _present(self, now: datetime) -> tuple[Drive, float]:
        """Settle, then the drive and the power (rounded as reported) at `now`."""
        self.settle(now)
        at = max(as_utc(now), self.battery.updated_at)
        drive = self.drive_at(at)
        power = self.battery.power_kw(drive, at.astimezone(self.tz).hour)
        return drive, round(power, 2) + 0.0  # + 0.0 turns a rounded -0.0 into 0.0

    @staticmethod
    def _status(rate: float) -> str:
        return "charging" if rate > 0 else "discharging" if rate < 0 else "idle"

    def reading(self, now: datetime) -> dict[str, Any]:
        drive, rate = self._present(now)
        return {
            "level": round(self.battery.soc, 1),
            "capacity": self.battery.capacity_kwh,
            "chargeRate": rate,
            "status": self._status(rate),
            "currentMode": command_for_drive(drive),
        }

    def view(self, now: datetime) -> dict[str, Any]:
        drive, rate = self._present(now)
        scheduler = None
        if self.scheduler is not None:
            scheduler = {
                "enabled": self.scheduler.enabled,
                "maxGroupCount": self.scheduler.max_group_count,
                "groups": [g.to_view() for g in self.scheduler.groups],
            }
        return {
            "id": self.id,
            "profile": self.profile.name,
            "serialNumber": self.serial_number,
            "timeZone": self.tz.key,
            "timeZoneKnown": self.tz_known,
            "battery": {
                "capacityKwh": self.battery.capacity_kwh,
                "soc": round(self.battery.soc, 4),
                "maxPowerKw": self.battery.max_power_kw,
                "chargeRateKw": rate,
                "status": self._status(rate),
                "currentMode": command_for_drive(drive),
                "workMode": drive.work_mode,
            },
            "scheduler": scheduler,
        }

    def to_spec(self) -> DeviceSpec:
        """The state as of the last settle, as a spec that rebuilds an equal device. The imperative
        drive is not part of a spec and is not carried."""
        scheduler = None
        if self.scheduler is not None:
            scheduler = SchedulerSpec(
                enabled=self.scheduler.enabled,
                maxGroupCount=self.scheduler.max_group_count,
                groups=[GroupSpec.model_validate(g.to_view()) for g in self.scheduler.groups],
            )
        return DeviceSpec(
            id=self.id,
            profile=self.profile.name,
            timeZone=self.tz.key,
            timeZoneKnown=self.tz_known,
            battery=BatterySpec(
                capacityKwh=self.battery.capacity_kwh, soc=self.battery.soc, maxPowerKw=self.battery.max_power_kw
            ),
            scheduler=scheduler,
            serialNumber=self.serial_number,
        )
