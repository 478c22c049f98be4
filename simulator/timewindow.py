"""Time windows of a push: parsing `action.start` / `action.end` into instants and wall clocks.

A push names when it fires (`start`) and, for a windowed push, when it reverts (`end`). Values
are ISO 8601 strings or relative durations (`30m`, `1.5h`). The platform needs two views of a
window: the UTC instants at which it fires and cleans up, and -- for OEM schedulers that read
plant-local wall clock -- the wall-clock times it writes into native rows.

The wall clocks are what the platform *writes*, not what the client meant. When the platform
does not know the plant's zone it writes the client's literal local time (or UTC for a relative
start), so a client offset that disagrees with the plant's real offset makes the device act at a
different instant. That drift is deliberate; the simulator reports it elsewhere. The refusals
here only catch the shapes that would make the drift silent (`Z` for a UK plant in summer).

Nothing here reads the host clock: `now` is passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import NoReturn
from zoneinfo import ZoneInfo

from .actions import Execution
from .errors import ApiError, format_instant
from .memo import remember

DEFAULT_HORIZON = timedelta(days=30)
MAX_WALL_WINDOW = timedelta(hours=24)
MINUTES_PER_DAY = 24 * 60

_DURATION = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<frac>[0-9]{1,2}))?(?P<unit>[smhd])", re.ASCII)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: object) -> timedelta | None:
    """A relative duration such as `30m`, `1.5h`, `0.25h`, `90s` or `1d`; None if `text` is not one.

    The number is positive, written with ASCII digits, at most two decimals, and is followed
    directly by one unit of `s`, `m`, `h` or `d` (no sign, no space, no leading or trailing dot).
    The value is computed in whole microseconds, so `1.55h` is exactly 5580 s. A duration too
    large for :class:`timedelta` is also reported as None: it names no time the platform can use.
    """
    if not isinstance(text, str):
        return None
    match = _DURATION.fullmatch(text)
    if match is None:
        return None
    frac = (match["frac"] or "").ljust(2, "0")
    hundredths = int(match["whole"]) * 100 + int(frac)
    if hundredths == 0:
        return None
    # One hundredth of a second is 10_000 microseconds, so this stays in integers.
    microseconds = hundredths * _UNIT_SECONDS[match["unit"]] * 10_000
    try:
        return timedelta(microseconds=microseconds)
    except OverflowError:
        return None


@dataclass(frozen=True)
class ResolvedWindow:
    """A push's timing, resolved.

    `start` / `end` are UTC-aware instants (None: immediate / open-ended). `start_wall` /
    `end_wall` are the naive plant-local wall-clock times the platform writes into native rows;
    they are set only for a wall-clock device given both start and end. `end_wall` is exclusive.
    """

    start: datetime | None
    end: datetime | None
    start_wall: datetime | None
    end_wall: datetime | None


@dataclass(frozen=True)
class _Parsed:
    """One raw field, parsed but not yet placed in time."""

    field: str
    raw: str
    relative: timedelta | None = None  # set for a relative duration
    moment: datetime | None = None  # set for ISO 8601, aware or naive as written

    @property
    def is_naive(self) -> bool:
        return self.moment is not None and self.moment.tzinfo is None

    @property
    def has_zero_offset(self) -> bool:
        # Equivalent to checking the text for Z, +00:00, -00:00, +0000, -0000, +00 (and
        # +00:00:00): every spelling fromisoformat accepts for a zero offset ends up here.
        return self.moment is not None and self.moment.utcoffset() == timedelta(0)


def execution_for(start: str | None, end: str | None) -> Execution:
    """How a push with these fields runs: presence decides (an empty `start` is a malformed time,
    not an immediate push). An end without a start is refused (INVALID_TIME_WINDOW)."""
    if start is None:
        if end is not None:
            _refuse_end_without_start(end)
        return "immediate"
    return "windowed" if end is not None else "scheduled"


def _refuse_end_without_start(end: str) -> NoReturn:
    _refuse_window("end_without_start", "An end was given without a start.", field="end", value=end)


def resolve_window(
    start: str | None,
    end: str | None,
    now: datetime,
    zone: ZoneInfo,
    zone_known: bool,
    wall_clock_device: bool,
    horizon: timedelta = DEFAULT_HORIZON,
) -> ResolvedWindow:
    """Resolve a push's raw `start` / `end` against `now` (aware) and the plant's `zone`.

    - `start`: a relative duration (from `now`), ISO 8601 with an offset (that instant), or naive
      ISO 8601, read in `zone` only when `zone_known` (refused otherwise).
    - `end`: the same forms; a relative `end` is measured from the resolved start
      (`end = start + duration`), not from `now`.
    - For a windowed push to a wall-clock device whose zone is unknown, a zero UTC offset and a
      relative `end` are refused (reasons `zero_utc_offset`, `relative_end`).
    - Shape refusals (INVALID_TIME_WINDOW) come before START_IN_PAST / START_OUT_OF_RANGE.
    - Wall clocks are computed only for a wall-clock device with both start and end: the
      instants in `zone` when it is known; otherwise the client's literal local time (UTC's for a
      relative start). A window whose wall span is reversed (reason `dst_transition`) or longer
      than 24 h (`window_too_long`) cannot be written as daily rows and is refused.
    """
    if now.tzinfo is not timezone.utc:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        now = now.astimezone(timezone.utc)

    if start is None:
        if end is not None:
            _refuse_end_without_start(end)
        return _IMMEDIATE

    # The window's placement is a pure function of the strings and the plant's zone unless the
    # start is relative (then it counts from `now`): remembered, so a fleet given the same window
    # resolves it once. Only what passed every shape rule is remembered; a refusal is recomputed.
    key = (start, end, zone, zone_known, wall_clock_device)
    window = _PLACED.get(key)
    if window is None:
        window, fixed = _place(start, end, now=now, zone=zone, zone_known=zone_known, wall_clock_device=wall_clock_device)
        if fixed:
            remember(_PLACED, key, window, _PLACED_LIMIT)
    start_at = window.start
    assert start_at is not None
    if start_at <= now:
        raise ApiError(
            "START_IN_PAST",
            "`start` must be in the future.",
            {"start": format_instant(start_at), "now": format_instant(now)},
        )
    max_start = now + horizon
    if start_at > max_start:
        raise ApiError(
            "START_OUT_OF_RANGE",
            f"`start` must be no later than {format_instant(max_start)}.",
            {"start": format_instant(start_at), "maxStart": format_instant(max_start)},
        )
    return window


_IMMEDIATE = ResolvedWindow(None, None, None, None)
_PLACED: dict[tuple[str, str | None, ZoneInfo, bool, bool], ResolvedWindow] = {}
_PLACED_LIMIT = 4096


def _place(
    start: str, end: str | None, *, now: datetime, zone: ZoneInfo, zone_known: bool, wall_clock_device: bool
) -> tuple[ResolvedWindow, bool]:
    """The window's instants and wall clocks, after every shape rule (not yet the rules against
    `now`); and whether it is independent of `now` (its start is not relative)."""
    parsed_start = _parse_field("start", start)
    parsed_end = _parse_field("end", end) if end is not None else None
    if parsed_end is not None and wall_clock_device and not zone_known:
        _refuse_unknown_zone_shapes(parsed_start, parsed_end)

    start_at = _instant(parsed_start, base=now, zone=zone, zone_known=zone_known)
    end_at = None
    if parsed_end is not None:
        end_at = _instant(parsed_end, base=start_at, zone=zone, zone_known=zone_known)
        if end_at <= start_at:
            _refuse_window(
                "end_not_after_start",
                "`end` must be after `start`.",
                start=format_instant(start_at),
                end=format_instant(end_at),
            )
        if wall_clock_device and end_at - start_at > MAX_WALL_WINDOW:
            _refuse_too_long(start_at, end_at)

    start_wall = end_wall = None
    if wall_clock_device and parsed_end is not None and end_at is not None:
        if zone_known:
            start_wall = _naive_in(start_at, zone)
            end_wall = _naive_in(end_at, zone)
        else:
            start_wall = _literal_wall(parsed_start, start_at)
            end_wall = _literal_wall(parsed_end, end_at)
        if end_wall <= start_wall:
            _refuse_window(
                "dst_transition",
                "On the plant's wall clock the window ends before it starts (a UTC-offset change "
                "between start and end); the device's daily slots cannot express it.",
                startWall=start_wall.isoformat(),
                endWall=end_wall.isoformat(),
            )
        if end_wall - start_wall > MAX_WALL_WINDOW:
            # Instants within 24 h can still span more on the wall clock (spring-forward day).
            _refuse_too_long(start_at, end_at)

    return ResolvedWindow(start_at, end_at, start_wall, end_wall), parsed_start.relative is None


def wall_rows(start_wall: datetime, end_wall: datetime) -> list[tuple[int, int]]:
    """Native scheduler rows `(start_minute, end_minute_inclusive)` for the wall window `[start, end)`.

    Minutes count from local midnight. The start is floored to its minute; the inclusive end is
    the minute holding `end_wall - 1 s`. Rows never cross midnight, so a window over midnight
    gives two rows in chronological order (22:00-05:00 -> `[(1320, 1439), (0, 299)]`).

    Rows recur daily on the device, so the rows together never cover more than 1440 minutes:
    when flooring a start that is not on a whole minute would stretch a 24 h window to 1441
    minutes, the last minute is dropped so the two rows do not overlap.

    Raises ValueError if `end_wall <= start_wall` or the window is longer than 24 h.
    """
    if end_wall <= start_wall:
        raise ValueError("end_wall must be after start_wall")
    if end_wall - start_wall > MAX_WALL_WINDOW:
        raise ValueError("a wall-clock window may span at most 24 h")
    first = start_wall.replace(second=0, microsecond=0)
    last = max(end_wall - timedelta(seconds=1), first).replace(second=0, microsecond=0)
    if last - first >= timedelta(minutes=MINUTES_PER_DAY):
        last = first + timedelta(minutes=MINUTES_PER_DAY - 1)
    if first.date() == last.date():
        return [(_minute_of_day(first), _minute_of_day(last))]
    return [(_minute_of_day(first), MINUTES_PER_DAY - 1), (0, _minute_of_day(last))]


def wall_to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant at which a device in `zone` first shows the naive wall time `wall`.

    - An ambiguous wall time (in a fold, when clocks go back) is read with fold=0: its first
      occurrence, at the earlier offset.
    - A wall time inside a DST gap (clocks jump over it) never shows; the device passes it at the
      transition itself, so the answer is the instant right after the gap (the first instant
      whose wall clock is past it). E.g. Europe/London 2026-03-29 01:30 -> 01:00 UTC, when the
      clock jumps from 01:00 GMT to 02:00 BST.
    """
    if wall.tzinfo is not None:
        raise ValueError("wall must be a naive wall-clock time")
    local = wall.replace(tzinfo=zone, fold=0)
    instant = local.astimezone(timezone.utc)
    if _naive_in(instant, zone) == wall:
        return instant
    # In a gap: fold=0 and fold=1 use the offsets either side of the transition, so the two
    # candidate instants bracket it. Bisect to the first instant using the later offset.
    other = wall.replace(tzinfo=zone, fold=1).astimezone(timezone.utc)
    after_offset = wall.replace(tzinfo=zone, fold=1).utcoffset()
    low, high = min(instant, other), max(instant, other)
    while high - low > timedelta(microseconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    return high


# --- helpers ---------------------------------------------------------------------------------


def _parse_field(field: str, raw: str) -> _Parsed:
    if not isinstance(raw, str):
        _refuse_window("invalid_format", f"`{field}` must be a string.", field=field, value=raw)
    duration = parse_duration(raw)
    if duration is not None:
        return _Parsed(field, raw, relative=duration)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        _refuse_window(
            "invalid_format",
            f"`{field}` is neither an ISO 8601 date-time nor a relative duration such as `30m` or `1.5h`.",
            field=field,
            value=raw,
        )
    return _Parsed(field, raw, moment=moment)


def _refuse_unknown_zone_shapes(parsed_start: _Parsed, parsed_end: _Parsed) -> None:
    """Shapes a windowed push may not use while the platform does not know a wall-clock plant's zone."""
    for parsed in (parsed_start, parsed_end):
        if parsed.has_zero_offset:
            _refuse_window(
                "zero_utc_offset",
                f"`{parsed.field}` has a zero UTC offset; the device reads plant-local wall clock "
                "and the platform does not know the plant's time zone. Give the plant's own offset.",
                field=parsed.field,
                value=parsed.raw,
            )
    if parsed_end.relative is not None:
        _refuse_window(
            "relative_end",
            "A relative `end` is not accepted while the platform does not know the plant's time zone.",
            field="end",
            value=parsed_end.raw,
        )


def _instant(parsed: _Parsed, *, base: datetime, zone: ZoneInfo, zone_known: bool) -> datetime:
    """The UTC instant a parsed field names; `base` is what a relative duration counts from."""
    try:
        if parsed.relative is not None:
            return base + parsed.relative
        assert parsed.moment is not None
        if not parsed.is_naive:
            return parsed.moment.astimezone(timezone.utc)
        if not zone_known:
            _refuse_window(
                "naive_time_unknown_zone",
                f"`{parsed.field}` has no UTC offset and the platform does not know the plant's time zone.",
                field=parsed.field,
                value=parsed.raw,
            )
        return _read_local(parsed, zone)
    except OverflowError:
        _refuse_window(
            "invalid_format",
            f"`{parsed.field}` lies outside the range of representable times.",
            field=parsed.field,
            value=parsed.raw,
        )


def _read_local(parsed: _Parsed, zone: ZoneInfo) -> datetime:
    """A naive wall time read in `zone`, refusing one that does not exist or occurs twice."""
    assert parsed.moment is not None
    wall = parsed.moment
    early = wall.replace(tzinfo=zone, fold=0)
    late = wall.replace(tzinfo=zone, fold=1)
    instant = early.astimezone(timezone.utc)
    if _naive_in(instant, zone) != wall:
        _refuse_window(
            "nonexistent_local_time",
            f"`{parsed.field}` does not exist in {zone.key}: the clocks skip it.",
            field=parsed.field,
            value=parsed.raw,
        )
    if early.utcoffset() != late.utcoffset():
        _refuse_window(
            "ambiguous_local_time",
            f"`{parsed.field}` occurs twice in {zone.key}: the clocks go back over it. Give an offset.",
            field=parsed.field,
            value=parsed.raw,
        )
    return instant


def _literal_wall(parsed: _Parsed, instant: datetime) -> datetime:
    """What a platform that does not know the plant's zone writes: the client's own local time."""
    if parsed.moment is not None:
        return parsed.moment.replace(tzinfo=None)
    # A relative time has no local time of its own; the platform assumes UTC.
    return instant.astimezone(timezone.utc).replace(tzinfo=None)


def _naive_in(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _minute_of_day(moment: datetime) -> int:
    return moment.hour * 60 + moment.minute


def _refuse_too_long(start_at: datetime, end_at: datetime) -> NoReturn:
    _refuse_window(
        "window_too_long",
        "The device's daily scheduler slots cannot express a window longer than 24 hours.",
        start=format_instant(start_at),
        end=format_instant(end_at),
    )


def _refuse_window(reason: str, message: str, **details: object) -> NoReturn:
    raise ApiError("INVALID_TIME_WINDOW", message, {"reason": reason, **details})
