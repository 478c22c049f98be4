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
from operator import attrgetter, itemgetter
from typing import Any, Iterable
from zoneinfo import ZoneInfo, available_timezones

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator

from .battery import Battery, Drive, integrate_span
from .errnos import NativeError
from .memo import remember
from .native_scheduler import MINUTES_PER_DAY, Group, NativeScheduler, Physics, plain_physics, row_of, shared_rows
from .profiles import DeviceProfile, Traits, load_profile, profile_names, profile_traits
from .validation import ClosedModel, JsonInt, refusal

_HHMM_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
# The shape of an IANA zone name (`UTC`, `Europe/London`, `America/Argentina/Buenos_Aires`,
# `Etc/GMT+5`); the same pattern as DeviceSpec.timeZone in contracts/control-openapi.yaml.
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]{0,31}(/[A-Za-z0-9_+-]{1,32}){0,2}", re.ASCII)
# Device._offset_at looks for UTC offset changes a week at a time, at least this far ahead.
_OFFSET_PROBE = timedelta(days=7)
_OFFSET_HORIZON = timedelta(days=63)
_DAY = timedelta(days=1)
# Whole days, by count: the shifts from an integrated day to the pending days compared with it
# (more than a full pending timeline holds; `Device._repeat_days`).
_SHIFTS = tuple(timedelta(days=n) for n in range(64))
# The imperative drive a device starts with; a Drive is immutable, so every device shares it.
_SELF_USE = Drive("SelfUse")
_UTC = timezone.utc
# A device never read integrates its writes once this many are pending.
_PENDING_KEPT = 16
_PENDING_VALUES = 3 * _PENDING_KEPT  # three values a cut (see Device._cuts)
# The integrated cuts kept to recognise a repeating day (at most a day's worth, and at most this many).
_HISTORY_KEPT = 64
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


def group_for_drive(drive: Drive, start: int, end: int, *, owner: str, action_id: str | None) -> Group:
    """A scheduler row that runs `drive` from `start` to `end` (inclusive minutes of day).

    The platform makes one per action, for few distinct windows: the rows of one drive and span
    share one physics tuple (see `_row_physics`), so only the row itself is new."""
    physics, plain = _row_physics(drive, start, end)
    return row_of(physics, plain, owner, action_id)


# (id of the drive, start, end) -> (the drive, the physics, plain_physics of it). The entry keeps
# its drive alive, so the id names that drive and no other while the entry lives.
_ROW_PHYSICS: dict[tuple[int, int, int], tuple[Drive, Physics, Physics | None]] = {}
_ROW_PHYSICS_KEPT = 4096


def _row_physics(drive: Drive, start: int, end: int) -> tuple[Physics, Physics | None]:
    """The physics of a row running `drive` from `start` to `end`, whole numbers rounded as
    written, and whether it is plain; one tuple per drive object and span."""
    key = (id(drive), start, end)
    known = _ROW_PHYSICS.get(key)
    if known is not None:
        return known[1], known[2]
    fd_soc, fd_pwr_kw, min_soc_on_grid, max_soc = drive.fd_soc, drive.fd_pwr_kw, drive.min_soc_on_grid, drive.max_soc
    physics: Physics = (
        start,
        end,
        drive.work_mode,
        None if fd_soc is None else int(round(fd_soc)),
        None if fd_pwr_kw is None else int(round(fd_pwr_kw * 1000)),
        None if min_soc_on_grid is None else int(round(min_soc_on_grid)),
        None if max_soc is None else int(round(max_soc)),
    )
    plain = plain_physics(physics)
    remember(_ROW_PHYSICS, key, (drive, physics, plain), _ROW_PHYSICS_KEPT)
    return physics, plain


# A group's physics: what it runs and when, without who wrote it (owner, actionId).
_Row = tuple[int, int, str, int | None, int | None, int | None, int | None]


def _drive_for_row(row: _Row) -> Drive:
    work_mode, fd_soc, fd_pwr, min_soc_on_grid, max_soc = row[2:]
    return Drive(
        work_mode,
        fd_soc=None if fd_soc is None else float(fd_soc),
        fd_pwr_kw=None if fd_pwr is None else fd_pwr / 1000.0,
        min_soc_on_grid=None if min_soc_on_grid is None else float(min_soc_on_grid),
        max_soc=None if max_soc is None else float(max_soc),
    )


_ROW = attrgetter("physics")
_FIRST = itemgetter(0)


def drive_for_group(group: Group) -> Drive:
    return _drive_for_row(group.physics)


def as_utc(moment: datetime) -> datetime:
    """Instants must be timezone-aware; a naive one would silently mean the host's zone."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"instant must be timezone-aware: {moment!r}")
    return moment.astimezone(timezone.utc)


def serial_for(device_id: str) -> str:
    return "SIM" + hashlib.sha256(device_id.encode("utf-8")).hexdigest()[:10].upper()


# --- regimes: what decides the drive over a stretch of time -----------------------------------


class Regime:
    """The imperative drive and, while the scheduler's flag is on, the rows' physics (start, end,
    drive; not who wrote them). Equal regimes are one object (`regime_for`), so a device's
    timeline compares them by identity."""

    __slots__ = ("imperative", "key", "rows", "marks")

    def __init__(self, imperative: Drive, rows: tuple[_Row, ...] | None) -> None:
        self.imperative = imperative
        self.key = rows  # the rows' physics it was made from
        # (start, end, drive) by start; None while the flag is off (or there is no scheduler).
        self.rows = None if rows is None else tuple((r[0], r[1], _drive_for_row(r)) for r in rows)
        marks: list[int] = []
        if rows:
            marks = sorted({r[0] for r in rows} | {r[1] + 1 for r in rows if r[1] + 1 < MINUTES_PER_DAY})
            if marks[0] != 0:
                # A group ending 23:59 has its edge at midnight.
                marks = [0, *marks]
        self.marks = marks  # minutes of day at which the covering row may change

    def drive_at_minute(self, minute: int) -> Drive:
        """The covering row's drive, else the imperative drive (also outside every row)."""
        rows = self.rows
        if rows is not None:
            for start, end, drive in rows:
                if start <= minute <= end:
                    return drive
        return self.imperative


# Per imperative drive, the regimes by rows. Two levels, so a device whose imperative drive has
# not changed finds its table without hashing the drive (see Device._live).
_REGIMES: dict[Drive, dict[tuple[_Row, ...] | None, Regime]] = {}
_REGIMES_KEPT = 4096


def regime_for(imperative: Drive, groups: Iterable[Group] | None) -> Regime:
    """The one Regime for this imperative drive and these rows (None: the flag is off)."""
    return _regime_in(_regimes_of(imperative), imperative, groups)


def _regimes_of(imperative: Drive) -> dict[tuple[_Row, ...] | None, Regime]:
    table = _REGIMES.get(imperative)
    if table is None:
        # When full it starts afresh: equal regimes made after that are new objects, so a repeat
        # is missed, never wrong.
        table = remember(_REGIMES, imperative, {}, 64)
    return table


def _regime_in(table: dict[tuple[_Row, ...] | None, Regime], imperative: Drive, groups: Iterable[Group] | None) -> Regime:
    # Rows do not overlap (the scheduler refuses that), so ordering them by start loses nothing.
    rows = None if groups is None else tuple(sorted(map(_ROW, groups), key=_FIRST))
    regime = table.get(rows)
    return _new_regime(table, imperative, rows) if regime is None else regime


def _new_regime(table: dict[tuple[_Row, ...] | None, Regime], imperative: Drive, rows: tuple[_Row, ...] | None) -> Regime:
    return remember(table, rows, Regime(imperative, rows), _REGIMES_KEPT)


# --- the device -----------------------------------------------------------------------------


class Device:
    def __init__(self, spec: DeviceSpec, now: datetime) -> None:
        self.id = spec.id
        self.profile: DeviceProfile = load_profile(spec.profile)
        self.traits: Traits = profile_traits(spec.profile)  # the flags read per push, as plain attributes
        self.tz = ZoneInfo(spec.timeZone)
        self.tz_known = spec.timeZoneKnown
        self.serial_number = spec.serialNumber or serial_for(spec.id)
        self.battery = Battery(
            capacity_kwh=float(spec.battery.capacityKwh),
            soc=float(spec.battery.soc),
            max_power_kw=float(spec.battery.maxPowerKw),
            updated_at=as_utc(now),
        )
        self.imperative = _SELF_USE
        # Integration segments run so far; tests read it to prove cost is per segment, not per second.
        self.segments_integrated = 0
        # (start, until, offset, final): the plant's UTC offset from `start` to `until`, which is
        # the next change when `final`, else only how far it has been looked at.
        self._offset_window: tuple[datetime, datetime, timedelta, bool] | None = None
        # Changes not integrated yet, three entries each in one flat list (no object made per
        # write, and one list to keep rather than three): the instant, rising and all after
        # `battery.updated_at`, and what was in effect up to it: the imperative drive and the
        # rows' physics (the scheduler's sorted key; None while the flag is off). Their regime
        # is looked up only if the stretch is integrated. The live settings run after the last.
        self._cuts: list[Any] = []
        # The integrated cuts of about the last day, flat too, four entries each: instant,
        # drive and rows up to it, SoC at it; the last is at `battery.updated_at`. A day of
        # pending changes equal to it repeats.
        self._history: list[Any] = []
        # The regime of the live settings, and what it was made from (see `_live`).
        self._live_imperative: Drive | None = None
        self._live_groups: tuple[Group, ...] | None = None
        self._live_regime: Regime | None = None
        # The regimes of one imperative drive (see `_regime`), and that drive.
        self._table_drive: Drive | None = None
        self._table: dict[Any, Regime] = {}
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
            # Devices built with equal rows share them (see shared_rows).
            groups = shared_rows(g.to_group() for g in spec.groups)
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

    def _live(self) -> Regime:
        """The regime the device's present settings make (read from them, so a test that sets
        `imperative` or the scheduler directly is seen too)."""
        scheduler = self.scheduler
        groups = scheduler.groups if scheduler is not None and scheduler.enabled else None
        imperative = self.imperative
        if imperative is self._live_imperative and groups is self._live_groups and self._live_regime is not None:
            return self._live_regime
        rows = None if scheduler is None or groups is None else scheduler.physics_key()
        regime = self._regime(imperative, rows)
        self._live_imperative, self._live_groups, self._live_regime = imperative, groups, regime
        return regime

    def _regime(self, imperative: Drive, rows: tuple[_Row, ...] | None) -> Regime:
        """The one Regime of this drive and these rows (the drive's table kept for the next call)."""
        if imperative is self._table_drive:
            table = self._table
        else:
            table = self._table = _regimes_of(imperative)
            self._table_drive = imperative
        regime = table.get(rows)
        return _new_regime(table, imperative, rows) if regime is None else regime

    def drive_at(self, t: datetime) -> Drive:
        """What the inverter runs at `t` under its present settings: the covering group while the
        flag is on, else the imperative drive (also outside every group, where the device falls
        back to its setting)."""
        return self._live().drive_at_minute(self.local_minute(t))

    def _offset_at(self, cur: datetime, need: datetime) -> tuple[timedelta, datetime]:
        """The plant's UTC offset at `cur` and the instant it next changes, or an instant no
        earlier than `need` when it does not change before that. Kept per device, so a settle
        does wall-clock arithmetic without a zone lookup per span. A window with no change in it
        is extended rather than cut, so where spans end never depends on when the device was read."""
        window = self._offset_window
        if window is not None and window[0] <= cur:
            start, until, offset, final = window
            if cur < until and (final or need <= until):
                return offset, until
            if not final:
                until, final = self._look_ahead(until, offset, max(need, cur))
                if cur < until:
                    self._offset_window = (start, until, offset, final)
                    return offset, until
        offset = cur.astimezone(self.tz).utcoffset() or timedelta(0)
        until, final = self._look_ahead(cur, offset, max(need, cur + _OFFSET_HORIZON))
        self._offset_window = (cur, until, offset, final)
        return offset, until

    def _look_ahead(self, probe: datetime, offset: timedelta, need: datetime) -> tuple[datetime, bool]:
        """The first offset change after `probe` and True, or a probe at or after `need` and False.
        Changes are looked for a week at a time, so a bisection never has two to choose between."""
        while True:
            step = probe + _OFFSET_PROBE
            if (step.astimezone(self.tz).utcoffset() or timedelta(0)) != offset:
                return self._offset_change(probe, step, offset), True
            probe = step
            if probe >= need:
                return probe, False

    def _next_change(self, regime: Regime, cur: datetime, until: datetime) -> tuple[datetime, int, float]:
        """The end of the span of constant drive and offset that starts at `cur` (at most
        `until`): the next edge of a row while the flag is on, or an offset change. Hour marks
        are not changes: the battery integrates the household's hourly table in closed form.
        Also returns the plant-local minute of day and hour of day (float) at `cur`."""
        offset, offset_until = self._offset_at(cur, until)
        local = cur + offset  # the wall clock, still labelled UTC: only its fields are read
        into_day = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        end = min(until, offset_until)
        marks = regime.marks
        if marks:
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

    # --- settling: bringing the SoC up to an instant ---

    def settle(self, now: datetime) -> None:
        """Bring the SoC up to `now`, or to the last recorded change if that is later (the device
        never runs backwards).

        Writes do not integrate (see `_record`): each leaves a cut on the pending timeline, and
        this replays them, each stretch under the regime that was in effect, then the live
        settings up to `now`. The replay does what settling at every write would have done, to
        the last bit, except that it does not redo a day it has just done: when the pending
        changes of the next 24 hours are the integrated day's (same instants of day, same
        regimes, one UTC offset throughout) and that day ended at the SoC it began with, the
        next day is the same function of the same SoC, so it is skipped. Within a stretch,
        spans of constant drive and offset are integrated in closed form (`integrate_span`),
        and whole days of one scheduled regime are units (see `_advance`)."""
        now = as_utc(now)
        if self._cuts:
            self._replay()
        if now > self.battery.updated_at:
            regime = self._live()
            self._advance(regime, now)
            history = self._history
            history.append(now)
            history.append(self.imperative)
            history.append(regime.key)
            history.append(self.battery.soc)
            self._trim_history()

    def _record(self, now: datetime) -> None:
        """A write at `now`: cut the timeline there, the present settings ending at it. Nothing is
        integrated until something reads the SoC, or the pending timeline is long."""
        if now.tzinfo is not _UTC:
            now = as_utc(now)
        cuts = self._cuts
        if now <= (cuts[-3] if cuts else self.battery.updated_at):
            return  # the write takes effect from a cut already made: nothing ran in between
        scheduler = self.scheduler
        # The scheduler's key of its rows, as `_live` takes it (inlined: this runs at every write).
        if scheduler is None or not scheduler.enabled:
            cuts += (now, self.imperative, None)
        else:
            cuts += (now, self.imperative, scheduler.physics if scheduler.physics_of is scheduler.groups else scheduler.physics_key())
        if len(cuts) >= _PENDING_VALUES:
            self._replay()

    def _replay(self) -> None:
        """Integrate every pending change (see `settle`)."""
        cuts, history, battery = self._cuts, self._history, self.battery
        # Positions in the flat lists step by three values a cut in `cuts`, four in `history`.
        i, count = 0, len(cuts)
        while i < count:
            if history:
                skipped = self._repeat_days(i)
                if skipped:
                    i += skipped
                    continue
            at, drive, rows = cuts[i], cuts[i + 1], cuts[i + 2]
            self._advance(self._regime(drive, rows), at)
            history.append(at)
            history.append(drive)
            history.append(rows)
            history.append(battery.soc)
            i += 3
        cuts.clear()
        self._trim_history()

    def _repeat_days(self, i: int) -> int:
        """How many values of the pending cuts from position `i` were skipped as repeats of the
        integrated day before them (three a cut)."""
        history = self._history
        anchor, soc = history[-4], history[-1]
        day_before = anchor - _DAY
        k = len(history) - 8  # positions step by four values a cut
        while k >= 0 and history[k] > day_before:
            k -= 4
        if k < 0 or history[k] != day_before or history[k + 3] != soc:
            return 0  # no cut a day earlier, or the day did not return to its SoC
        k += 4  # the day's cuts are history's from position k, the last at the anchor
        size = (len(history) - k) // 4 * 3  # the day's cuts, as values in `cuts`
        cuts = self._cuts
        count = len(cuts) - i
        if count < size:
            return 0
        # One UTC offset from the day before to the last pending change: the wall clock repeats.
        _, until = self._offset_at(anchor, cuts[-3])
        window = self._offset_window
        assert window is not None
        if window[0] > day_before:
            return 0
        # Equal drives and equal rows make the same regime (it is made from their values alone);
        # the scheduler hands out one key object per row set, so rows compare by identity.
        drives, rows = history[k + 1 :: 4], history[k + 2 :: 4]
        skipped = 0
        shift = _DAY  # from the integrated day to the one being compared
        # The common case first, compared whole: every whole pending day inside the offset's span
        # repeats the integrated one. Otherwise day by day, for the repeats before the first
        # day that differs.
        days = min(count // size, (until - anchor) // _DAY, len(_SHIFTS) - 1)
        if days:
            end = i + days * size
            if (
                cuts[i + 2 : end : 3] == rows * days
                and cuts[i + 1 : end : 3] == drives * days
                and cuts[i:end:3] == [at + moved for moved in _SHIFTS[1 : days + 1] for at in history[k::4]]
            ):
                skipped = days * size
                shift = _SHIFTS[days] + _DAY
        while skipped + size <= count and anchor + shift <= until:
            first = i + skipped  # where the compared day's cuts begin
            end = first + size
            if cuts[first + 2 : end : 3] != rows or cuts[first + 1 : end : 3] != drives:
                break
            h = k
            for j in range(first, end, 3):
                if cuts[j] - shift != history[h]:
                    break
                h += 4
            else:
                skipped += size
                shift += _DAY
                continue
            break
        if skipped:
            # The SoC is where every one of these days began and ended. The history keeps the
            # last of them, and the cut a day before its end, which the next check looks for.
            socs = history[k + 3 :: 4]
            last = i + skipped
            back = size + 3 if skipped > size else size
            kept_socs = socs[-1:] + socs if back > size else socs
            for j, kept_soc in zip(range(last - back, last, 3), kept_socs, strict=True):
                history.extend(cuts[j : j + 3])
                history.append(kept_soc)
            self.battery.updated_at = cuts[last - 3]
        return skipped

    def _trim_history(self) -> None:
        """Keep the cuts of the last day (the one a day earlier included), at most _HISTORY_KEPT."""
        history = self._history
        if not history:
            return
        # The first cut no more than a day before the last; a few cuts a day, so looked for in turn.
        since, first = history[-4] - _DAY, 0
        while history[first] < since:
            first += 4
        first = max(first, len(history) - 4 * _HISTORY_KEPT)
        if first:
            del history[:first]

    def _advance(self, regime: Regime, now: datetime) -> None:
        """Integrate from the battery's instant to `now` under one regime.

        With the scheduler on, the rows make every plant-local day the same sequence of spans,
        so whole days are taken as units: a day that ends where it began (it met a limit and
        recovered) repeats to the end at no cost, and a day that touched no limit repeats as a
        shift by its net change for as many days as stay clear of every limit. So a month costs
        a few days' spans, not thirty."""
        battery = self.battery
        cur = battery.updated_at
        while cur < now:
            offset, offset_until = self._offset_at(cur, now)
            horizon = min(now, offset_until)
            local = cur + offset
            whole_days = (horizon - cur) // _DAY
            at_midnight = not (local.hour or local.minute or local.second or local.microsecond)
            if regime.rows is None:
                # One drive throughout: integrate_span takes the whole stretch (and its days) at once.
                self._settle_spans(regime, cur, horizon)
                cur = horizon
                continue
            if not (at_midnight and whole_days >= 2):
                next_midnight = local.replace(hour=0, minute=0, second=0, microsecond=0) + _DAY - offset
                self._settle_spans(regime, cur, min(horizon, next_midnight))
                cur = min(horizon, next_midnight)
                continue
            began = battery.soc
            touched, room_up, room_down = self._settle_spans(regime, cur, cur + _DAY)
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

    def _settle_spans(self, regime: Regime, cur: datetime, until: datetime) -> tuple[bool, float, float]:
        """Integrate span by span up to `until`; whether any span touched a limit, and the least
        room any span left below its ceiling and above its floor."""
        battery = self.battery
        touched, room_up, room_down = False, math.inf, math.inf
        while cur < until:
            end, minute, local_hour = self._next_change(regime, cur, until)
            drive = regime.drive_at_minute(minute)
            span = integrate_span(battery, drive, local_hour, (end - cur).total_seconds() / 3600, end)
            self.segments_integrated += span.pieces
            touched = touched or span.touched
            room_up, room_down = min(room_up, span.room_up), min(room_down, span.room_down)
            cur = end
        return touched, room_up, room_down

    # --- writes (each cuts the timeline; the past is integrated under the old regime when read) ---

    def set_imperative(self, drive: Drive, now: datetime) -> None:
        self._record(now)
        self.imperative = drive

    def replace_groups(self, groups: Iterable[Group], now: datetime) -> None:
        scheduler = self.scheduler
        if scheduler is None:
            raise ValueError(f"device {self.id} has no native scheduler")
        # `_record(now)`, written out: the platform writes rows twice a device-day.
        if now.tzinfo is not _UTC:
            now = as_utc(now)
        cuts = self._cuts
        if now > (cuts[-3] if cuts else self.battery.updated_at):
            if scheduler.enabled:
                cuts += (now, self.imperative, scheduler.physics if scheduler.physics_of is scheduler.groups else scheduler.physics_key())
            else:
                cuts += (now, self.imperative, None)
            if len(cuts) >= _PENDING_VALUES:
                self._replay()
        try:
            scheduler.replace(groups)
        except NativeError:
            # Nothing changed; a refusal is rare, so the device settles to it as it did before
            # writes were lazy (a caller inspecting the refusal sees the SoC at the write).
            self.settle(now)
            raise

    def set_scheduler_enabled(self, flag: bool, now: datetime, *, by: str | None = None) -> None:
        """Switch the native flag; `by` is who did (the platform's owner name, or a foreign party's)."""
        if self.scheduler is None:
            raise ValueError(f"device {self.id} has no native scheduler")
        self._record(now)
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
                "groups": self.scheduler.row_views(),
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
        """The settings now and the SoC as of the last settle (writes since are integrated when
        the device is next read), as a spec that rebuilds an equal device. The imperative drive is
        not part of a spec and is not carried."""
        scheduler = None
        if self.scheduler is not None:
            scheduler = SchedulerSpec(
                enabled=self.scheduler.enabled,
                maxGroupCount=self.scheduler.max_group_count,
                groups=[GroupSpec.model_validate(view) for view in self.scheduler.row_views()],
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
