"""Battery physics: a state of charge that integrates piecewise-constant power.

Power depends only on the drive (what the inverter was told), the plant-local hour (the household
profile) and which side of a SoC limit the battery is on. So between hour boundaries, drive changes
and limit hits it is constant, and the device can integrate exactly segment by segment instead of
stepping through time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from typing import Callable, NamedTuple

# A deterministic household, by plant-local hour (kW). No randomness: runs must be reproducible.
SOLAR_KW: tuple[float, ...] = (
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0,  # 00-05 night
    0.1, 0.4, 0.9, 1.5, 2.1, 2.6,  # 06-11 morning rise
    3.0, 3.0, 2.6, 2.1, 1.5, 0.9,  # 12-17 peak at 12-13h, then fall
    0.4, 0.1, 0.0, 0.0, 0.0, 0.0,  # 18-23
)
LOAD_KW: tuple[float, ...] = (
    0.4, 0.4, 0.4, 0.4, 0.4, 0.4,  # 00-05 base load
    0.6, 0.9, 0.7, 0.5, 0.5, 0.5,  # 06-11 breakfast
    0.6, 0.5, 0.5, 0.5, 0.7, 1.5,  # 12-17
    1.8, 2.0, 1.8, 1.5, 0.8, 0.5,  # 18-23 evening peak 17-21h
)
assert len(SOLAR_KW) == 24 and len(LOAD_KW) == 24

DEFAULT_FLOOR = 10.0  # FoxESS's lowest accepted fdSoc / minSocOnGrid
FULL = 100.0
# Below this a SoC difference is float noise: treating it as "at the limit" stops the integrator
# from chasing ever-smaller segments towards a limit it has already reached.
_SOC_EPSILON = 1e-9

# Positions inside a span are float hours; closer than this (well under a microsecond) is the end.
_X_EPSILON = 1e-10
_MANY_DAYS = 1_000_000
_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)

WORK_MODES = ("SelfUse", "Feedin", "Backup", "ForceCharge", "ForceDischarge")


@dataclass(frozen=True)
class Drive:
    """What the inverter is told to do right now, in native terms."""

    work_mode: str
    fd_soc: float | None = None
    fd_pwr_kw: float | None = None
    min_soc_on_grid: float | None = None
    max_soc: float | None = None

    def __post_init__(self) -> None:
        if self.work_mode not in WORK_MODES:
            raise ValueError(f"unknown work mode {self.work_mode!r}")


def _pick(value: float | None, default: float) -> float:
    return default if value is None else value


@dataclass
class Battery:
    capacity_kwh: float
    soc: float  # percent, 0..100
    max_power_kw: float
    updated_at: datetime  # the instant `soc` is true for
    hard_floor: float = 0.0  # the cell protection: no drive can take the SoC below it

    def bounds(self, drive: Drive) -> tuple[float, float]:
        """(floor, ceiling) between which `drive` may move the SoC."""
        mode = drive.work_mode
        if mode == "ForceDischarge":
            floor = max(_pick(drive.fd_soc, DEFAULT_FLOOR), _pick(drive.min_soc_on_grid, DEFAULT_FLOOR))
        else:
            floor = _pick(drive.min_soc_on_grid, DEFAULT_FLOOR)
        ceiling = _pick(drive.max_soc, FULL)
        return max(floor, self.hard_floor, 0.0), min(ceiling, FULL)

    def _wanted_kw(self, drive: Drive, local_hour: int) -> float:
        """Signed power the drive asks for, before SoC limits (+ = charging)."""
        solar, load = SOLAR_KW[local_hour], LOAD_KW[local_hour]
        cap = self.max_power_kw
        mode = drive.work_mode
        if mode == "ForceCharge":
            # fdPwr 0 means 0 kW here, as it does for ForceDischarge (the "hold"): one reading of
            # the parameter for both directions.
            return min(_pick(drive.fd_pwr_kw, cap), cap)
        if mode == "ForceDischarge":
            return -min(_pick(drive.fd_pwr_kw, cap), cap)
        if mode == "SelfUse":
            return max(-cap, min(cap, solar - load))
        if mode == "Backup":
            # Keeps the reserve: fills from surplus solar, never feeds the house.
            return min(cap, max(0.0, solar - load))
        # Feedin: solar is exported first, so the battery meets the house load and never charges.
        return -min(cap, load)

    def power_kw(self, drive: Drive, local_hour: int) -> float:
        """Signed power (+ = charging) at the current SoC."""
        if not 0 <= local_hour <= 23:
            raise ValueError(f"local hour out of range: {local_hour}")
        wanted = self._wanted_kw(drive, local_hour)
        floor, ceiling = self.bounds(drive)
        if wanted > 0 and self.soc >= ceiling - _SOC_EPSILON:
            return 0.0
        if wanted < 0 and self.soc <= floor + _SOC_EPSILON:
            return 0.0
        return wanted

    def limit_ahead(self, drive: Drive, power_kw: float) -> tuple[float, float] | None:
        """(seconds, SoC) until `power_kw` drives the SoC onto the drive's limit; None if never."""
        if power_kw == 0:
            return None
        floor, ceiling = self.bounds(drive)
        limit = ceiling if power_kw > 0 else floor
        energy_kwh = abs(limit - self.soc) / 100.0 * self.capacity_kwh
        return max(0.0, energy_kwh / abs(power_kw) * 3600.0), limit

    def integrate(
        self, power_kw: float, seconds: float, at: datetime, *, limit: float | None = None, reached: bool = False
    ) -> None:
        """Apply `power_kw` for `seconds`, ending at `at`. The SoC never passes `limit` (the drive's
        limit in the direction of travel); `reached` says the segment was cut exactly where the
        limit is hit, so the SoC is set onto it rather than left a float hair short."""
        soc = self.soc + power_kw * seconds / 3600.0 / self.capacity_kwh * 100.0
        if limit is not None:
            if reached:
                soc = limit
            elif power_kw > 0:
                soc = min(soc, limit)
            elif power_kw < 0:
                soc = max(soc, limit)
        self.soc = min(FULL, max(self.hard_floor, 0.0, soc))
        self.updated_at = at


# --- closed-form integration over a span of constant drive -------------------------------------


@dataclass(frozen=True)
class _RateTable:
    """A drive's unclamped SoC rate (percent per hour) for each plant-local hour, with the prefix
    sums that let a span be integrated without stepping through its hours."""

    rate: tuple[float, ...]  # 24 entries, %/h
    prefix: tuple[float, ...]  # 25 entries: rise from local midnight to each hour mark
    day: float  # rise over a whole day
    day_max: float  # highest and lowest point of a day's rise (they lie on hour marks)
    day_min: float
    # Hours from hour h to the next hour mark (inclusive of h itself) whose rate is < 0 / > 0;
    # None when no hour of the day has such a rate.
    to_falling: tuple[int | None, ...]
    to_rising: tuple[int | None, ...]
    constant: float | None  # the rate when it is the same every hour (the forced modes)


def _hours_to(rate: tuple[float, ...], wanted: Callable[[float], bool]) -> tuple[int | None, ...]:
    out: list[int | None] = []
    for h in range(24):
        out.append(next((k for k in range(24) if wanted(rate[(h + k) % 24])), None))
    return tuple(out)


@cache
def _rate_table(battery_key: tuple[float, float], drive: Drive) -> _RateTable:
    capacity, max_power = battery_key
    probe = Battery(capacity_kwh=capacity, soc=50.0, max_power_kw=max_power, updated_at=_EPOCH)
    rate = tuple(probe._wanted_kw(drive, h) / capacity * 100.0 for h in range(24))
    prefix = [0.0]
    for value in rate:
        prefix.append(prefix[-1] + value)
    return _RateTable(
        rate=rate,
        prefix=tuple(prefix),
        day=prefix[-1],
        day_max=max(prefix),
        day_min=min(prefix),
        to_falling=_hours_to(rate, lambda r: r < 0),
        to_rising=_hours_to(rate, lambda r: r > 0),
        constant=rate[0] if all(r == rate[0] for r in rate) else None,
    )


class SpanResult(NamedTuple):
    """What one span's integration did: for the device to count and to see whether a day of spans
    may be repeated by arithmetic. (A tuple: one is made per span, and a frozen dataclass costs a
    guarded attribute write per field.)"""

    pieces: int
    touched: bool  # on or past a limit at some moment
    room_up: float  # how far the highest level stayed below the ceiling (meaningful when not touched)
    room_down: float  # how far the lowest level stayed above the floor


def integrate_span(battery: Battery, drive: Drive, local_hour: float, hours: float, at: datetime) -> SpanResult:
    """Apply `drive` for `hours`, starting `local_hour` hours after a plant-local midnight, with
    the UTC offset constant throughout; leaves the battery at `at`. Returns the pieces computed,
    and whether the SoC touched a limit or stayed free, with its highest and lowest level.

    The household table makes the unclamped rate piecewise constant by hour, so the SoC is a
    running sum clamped at the drive's limits. Whole days that reach neither limit are taken in
    one step (a day adds `day`); a day that does is walked by its hour marks. So the cost grows
    with the limits hit and the spans, not with the hours. Exactly the motion of the hour-by-hour
    integration: move at the hour's rate, stop on the limit in the direction of travel, stay on
    it while the rate pushes into it.
    """
    table = _rate_table((battery.capacity_kwh, battery.max_power_kw), drive)
    low, high = battery.bounds(drive)
    soc = battery.soc
    x, end = local_hour, local_hour + hours
    pieces = 0
    if table.constant is not None:
        return _constant_span(battery, table.constant * hours, low, high, at)
    rate, prefix = table.rate, table.prefix
    day_start: tuple[float, float] | None = None  # (position, SoC) at the last local midnight
    touched = False  # on or past a limit at any moment (then the path is not a shifted copy)
    peak = trough = soc
    while end - x > _X_EPSILON:
        pieces += 1
        if x % 24 == 0 and end - x >= 24:
            if day_start is not None and day_start == (x - 24, soc):
                # A whole day came back to where it began: every later day is the same day
                # (the drive, the table and the limits do not change inside a span).
                x += 24 * int((end - x) // 24)
                continue
            day_start = (x, soc)
        up_blocked = soc >= high - _SOC_EPSILON
        down_blocked = soc <= low + _SOC_EPSILON
        if up_blocked and down_blocked:
            touched = True
            break
        hour_mark = math.floor(x)
        if up_blocked or down_blocked:
            touched = True
            # On (or past) a limit: nothing moves until an hour whose rate leads away from it.
            waits = table.to_falling if up_blocked else table.to_rising
            wait = waits[hour_mark % 24]
            if wait is None:
                break
            if wait > 0:
                x = float(hour_mark + wait)
                hour_mark += wait
                if end - x <= _X_EPSILON:
                    break
            r = rate[hour_mark % 24]
            stop = min(float(hour_mark + 1), end)
            target = low if r < 0 else high
            moved = soc + r * (stop - x)
            if (r < 0 and moved <= target) or (r > 0 and moved >= target):
                x += (target - soc) / r
                soc = target
            else:
                soc, x = moved, stop
            continue
        # Free between the limits: skip whole days that touch neither, then the rest of this
        # day (or of the span) if it touches neither; otherwise walk to the next hour mark.
        hour = hour_mark % 24
        if x == hour_mark and hour == 0 and end - x >= 24:
            days = min(int((end - x) // 24), _free_days(table, soc, low, high))
            if days > 0:
                for first_or_last in (soc, soc + (days - 1) * table.day):
                    peak = max(peak, first_or_last + table.day_max)
                    trough = min(trough, first_or_last + table.day_min)
                soc += days * table.day
                x += 24 * days
                continue
        into = x - hour_mark
        stop = min(x + (24 - hour - into), end)
        here = prefix[hour] + rate[hour] * into
        last = hour + (stop - x) + into  # hours after local midnight, up to 24
        last_mark = min(math.floor(last), 23)
        there = prefix[last_mark] + rate[last_mark] * (last - last_mark)
        knots = prefix[hour + 1 : math.ceil(last)] if math.ceil(last) > hour + 1 else ()
        highest = max(there, *knots) if knots else there
        lowest = min(there, *knots) if knots else there
        top, bottom = high - _SOC_EPSILON, low + _SOC_EPSILON
        if soc + highest - here < top and soc + lowest - here > bottom:
            peak = max(peak, soc + highest - here)
            trough = min(trough, soc + lowest - here)
            soc += there - here
            x = stop
            continue
        # A limit lies ahead today: jump to the hour mark just before it, then walk that hour.
        jump = hour
        for mark in range(hour + 1, hour + 1 + len(knots)):
            level = soc + prefix[mark] - here
            if level >= top or level <= bottom:
                break
            peak, trough = max(peak, level), min(trough, level)
            jump = mark
        if jump > hour:
            soc += prefix[jump] - here
            x = float(hour_mark + jump - hour)
            continue
        r = rate[hour]
        stop = min(float(hour_mark + 1), end)
        moved = soc + r * (stop - x)
        if r > 0 and moved >= high:
            x += (high - soc) / r
            soc, touched = high, True
        elif r < 0 and moved <= low:
            x += (low - soc) / r
            soc, touched = low, True
        else:
            soc, x = moved, stop
            peak, trough = max(peak, soc), min(trough, soc)
    battery.soc = min(FULL, max(battery.hard_floor, 0.0, soc))
    battery.updated_at = at
    if peak >= high - _SOC_EPSILON or trough <= low + _SOC_EPSILON:
        touched = True
    return SpanResult(pieces, touched, (high - _SOC_EPSILON) - peak, trough - (low + _SOC_EPSILON))


def _constant_span(battery: Battery, rise: float, low: float, high: float, at: datetime) -> SpanResult:
    """A span at one rate all along (a forced mode): move by `rise`, stopping on the limit ahead."""
    soc = battery.soc
    top, bottom = high - _SOC_EPSILON, low + _SOC_EPSILON
    touched = soc >= top or soc <= bottom
    if rise > 0 and soc < top:
        end = min(soc + rise, high)
    elif rise < 0 and soc > bottom:
        end = max(soc + rise, low)
    else:
        end = soc  # no rate, or pushing into the limit it sits on
    touched = touched or end >= top or end <= bottom
    battery.soc = min(FULL, max(battery.hard_floor, 0.0, end))
    battery.updated_at = at
    return SpanResult(1, touched, top - max(soc, end), min(soc, end) - bottom)


def _free_days(table: _RateTable, soc: float, low: float, high: float) -> int:
    """How many whole days from local midnight certainly touch neither limit (one fewer than the
    arithmetic allows, so float rounding can never skip past a limit; the walk does the rest)."""
    top, bottom = high - _SOC_EPSILON, low + _SOC_EPSILON
    if soc + table.day_max >= top or soc + table.day_min <= bottom:
        return 0
    day = table.day
    if day > 0:
        room = (top - soc - table.day_max) / day
    elif day < 0:
        room = (soc + table.day_min - bottom) / -day
    else:
        return _MANY_DAYS
    return max(0, min(_MANY_DAYS, int(room) - 1))
