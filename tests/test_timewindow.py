"""Tests for simulator.timewindow: parsing and resolving a push's start/end (amps-api §6)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from amps_sim.simulator.errors import ApiError
from amps_sim.simulator.timewindow import ResolvedWindow, parse_duration, resolve_window, wall_rows, wall_to_instant

LONDON = ZoneInfo("Europe/London")
SYDNEY = ZoneInfo("Australia/Sydney")
UTC = timezone.utc

# A winter and a summer "now" for London (GMT +00:00 / BST +01:00).
WINTER_NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
SUMMER_NOW = datetime(2026, 7, 10, 12, 0, tzinfo=UTC)


def resolve(
    start: str | None,
    end: str | None = None,
    *,
    now: datetime = WINTER_NOW,
    zone: ZoneInfo = LONDON,
    zone_known: bool = False,
    wall_clock_device: bool = True,
    **kwargs: object,
) -> ResolvedWindow:
    return resolve_window(
        start, end, now=now, zone=zone, zone_known=zone_known, wall_clock_device=wall_clock_device, **kwargs
    )


def refusal(start: str | None, end: str | None = None, **kwargs: object) -> ApiError:
    with pytest.raises(ApiError) as caught:
        resolve(start, end, **kwargs)
    return caught.value


def reason_of(start: str | None, end: str | None = None, **kwargs: object) -> str:
    error = refusal(start, end, **kwargs)
    assert error.code == "INVALID_TIME_WINDOW"
    assert error.status == 422
    assert error.details is not None
    return error.details["reason"]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- parse_duration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", timedelta(hours=2)),
        ("30m", timedelta(minutes=30)),
        ("1.5h", timedelta(minutes=90)),
        ("0.25h", timedelta(minutes=15)),
        ("1.55h", timedelta(seconds=5580)),
        ("90s", timedelta(seconds=90)),
        ("0.01s", timedelta(milliseconds=10)),
        ("1d", timedelta(days=1)),
        ("007m", timedelta(minutes=7)),
    ],
)
def test_parse_duration_accepts_up_to_two_decimals(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["1.555h", "-1h", "+1h", "h", "1 h", " 1h", "1h ", "1h\n", "1", "1.h", ".5h", "1H", "1w", "0m", "0.00h", "1h30m", "١h", ""],
)
def test_parse_duration_rejects_non_durations(text: str) -> None:
    assert parse_duration(text) is None


def test_parse_duration_too_large_for_timedelta_is_none() -> None:
    assert parse_duration("9999999999999d") is None


# --- start only --------------------------------------------------------------------------------


def test_no_start_no_end_is_immediate() -> None:
    assert resolve(None, None) == ResolvedWindow(None, None, None, None)


def test_relative_start_counts_from_now() -> None:
    window = resolve("1.5h")
    assert window.start == utc(2026, 1, 10, 13, 30)
    assert window.start.tzinfo is UTC
    assert window.end is None and window.start_wall is None and window.end_wall is None


def test_start_with_offset_is_that_instant_in_utc() -> None:
    window = resolve("2026-01-10T22:00:00+01:00")
    assert window.start == utc(2026, 1, 10, 21, 0)
    assert window.start.tzinfo is UTC


@pytest.mark.parametrize("value", ["2026-01-10T22:00:00Z", "2026-01-10T22:00:00+00:00", "2026-01-10T22:00:00-00:00"])
def test_scheduled_push_with_zero_offset_is_fine_for_unknown_zone(value: str) -> None:
    assert resolve(value).start == utc(2026, 1, 10, 22, 0)


@pytest.mark.parametrize("value", ["tomorrow", "2026-01-10T22:00:00z", "2026-01-10T24:00", "1.555h", "-1h", "1 h"])
def test_unparseable_start_is_invalid_format(value: str) -> None:
    error = refusal(value)
    assert error.details == {"reason": "invalid_format", "field": "start", "value": value}


def test_unparseable_end_is_invalid_format() -> None:
    error = refusal("1h", "later")
    assert error.details == {"reason": "invalid_format", "field": "end", "value": "later"}


def test_unrepresentable_instant_is_invalid_format() -> None:
    assert reason_of("0001-01-01T00:00:00+01:00") == "invalid_format"


def test_end_without_start() -> None:
    error = refusal(None, "2h")
    assert error.details is not None
    assert error.details["reason"] == "end_without_start"
    assert error.details["field"] == "end"


# --- naive times -------------------------------------------------------------------------------


def test_naive_start_refused_when_zone_unknown() -> None:
    error = refusal("2026-01-10T22:00:00", wall_clock_device=False)
    assert error.details == {"reason": "naive_time_unknown_zone", "field": "start", "value": "2026-01-10T22:00:00"}


def test_naive_end_refused_when_zone_unknown() -> None:
    error = refusal("2026-01-10T22:00:00+01:00", "2026-01-10T23:00:00")
    assert error.details is not None
    assert error.details["reason"] == "naive_time_unknown_zone"
    assert error.details["field"] == "end"


def test_naive_start_read_in_known_zone() -> None:
    # 22:00 BST is 21:00 UTC.
    window = resolve("2026-07-10T22:00:00", now=SUMMER_NOW, zone_known=True)
    assert window.start == utc(2026, 7, 10, 21, 0)


@pytest.mark.parametrize(
    ("zone", "value", "reason"),
    [
        (LONDON, "2026-03-29T01:30", "nonexistent_local_time"),
        (LONDON, "2026-10-25T01:30", "ambiguous_local_time"),
        (SYDNEY, "2026-10-04T02:30", "nonexistent_local_time"),
        (SYDNEY, "2026-04-05T02:30", "ambiguous_local_time"),
    ],
)
def test_naive_time_across_dst_change_is_refused(zone: ZoneInfo, value: str, reason: str) -> None:
    now = datetime(2026, 3, 20, tzinfo=UTC) if value.startswith(("2026-03", "2026-04")) else datetime(2026, 9, 28, tzinfo=UTC)
    error = refusal(value, now=now, zone=zone, zone_known=True)
    assert error.details == {"reason": reason, "field": "start", "value": value}


def test_naive_time_beside_dst_change_is_fine() -> None:
    now = datetime(2026, 3, 20, tzinfo=UTC)
    assert resolve("2026-03-29T02:00", now=now, zone_known=True).start == utc(2026, 3, 29, 1, 0)
    assert resolve("2026-03-29T00:59", now=now, zone_known=True).start == utc(2026, 3, 29, 0, 59)


# --- windowed pushes to wall-clock devices with an unknown zone --------------------------------


@pytest.mark.parametrize("offset", ["Z", "+00:00", "-00:00", "+0000", "-0000", "+00"])
def test_zero_offset_in_start_refused_for_windowed_unknown_zone(offset: str) -> None:
    value = f"2026-07-10T22:00:00{offset}"
    error = refusal(value, "2026-07-11T05:00:00+01:00", now=SUMMER_NOW)
    assert error.details == {"reason": "zero_utc_offset", "field": "start", "value": value}


def test_zero_offset_in_end_refused_for_windowed_unknown_zone() -> None:
    error = refusal("2026-07-10T22:00:00+01:00", "2026-07-11T04:00:00Z", now=SUMMER_NOW)
    assert error.details == {"reason": "zero_utc_offset", "field": "end", "value": "2026-07-11T04:00:00Z"}


def test_zero_offset_refused_with_relative_start() -> None:
    assert reason_of("1h", "2026-01-10T15:00:00Z") == "zero_utc_offset"


@pytest.mark.parametrize("value", ["2026-07-10T22:00:00Z", "2026-07-10T22:00:00+00:00", "2026-07-10T22:00:00-00:00"])
def test_zero_offset_accepted_for_zone_known_device(value: str) -> None:
    window = resolve(value, "2026-07-10T23:00:00+00:00", now=SUMMER_NOW, zone_known=True)
    assert (window.start, window.end) == (utc(2026, 7, 10, 22, 0), utc(2026, 7, 10, 23, 0))
    # The platform writes London's wall clock (BST) into the rows.
    assert (window.start_wall, window.end_wall) == (datetime(2026, 7, 10, 23, 0), datetime(2026, 7, 11, 0, 0))


def test_zero_offset_accepted_for_non_wall_clock_device() -> None:
    window = resolve("2026-07-10T22:00:00Z", "2026-07-10T23:00:00Z", now=SUMMER_NOW, wall_clock_device=False)
    assert window == ResolvedWindow(utc(2026, 7, 10, 22, 0), utc(2026, 7, 10, 23, 0), None, None)


def test_non_zero_offset_accepted_for_unknown_zone() -> None:
    window = resolve("2026-07-10T22:00:00+01:00", "2026-07-11T05:00:00+01:00", now=SUMMER_NOW)
    assert (window.start, window.end) == (utc(2026, 7, 10, 21, 0), utc(2026, 7, 11, 4, 0))
    assert (window.start_wall, window.end_wall) == (datetime(2026, 7, 10, 22, 0), datetime(2026, 7, 11, 5, 0))


def test_relative_end_refused_for_unknown_zone() -> None:
    error = refusal("2026-07-10T22:00:00+01:00", "2h", now=SUMMER_NOW)
    assert error.details == {"reason": "relative_end", "field": "end", "value": "2h"}


def test_relative_end_measured_from_start_for_known_zone() -> None:
    window = resolve("2026-07-10T22:00:00+01:00", "1.5h", now=SUMMER_NOW, zone_known=True)
    assert (window.start, window.end) == (utc(2026, 7, 10, 21, 0), utc(2026, 7, 10, 22, 30))
    assert (window.start_wall, window.end_wall) == (datetime(2026, 7, 10, 22, 0), datetime(2026, 7, 10, 23, 30))


def test_relative_start_and_end_for_non_wall_clock_device() -> None:
    window = resolve("30m", "2h", wall_clock_device=False)
    assert (window.start, window.end) == (utc(2026, 1, 10, 12, 30), utc(2026, 1, 10, 14, 30))


# --- window shape ------------------------------------------------------------------------------


@pytest.mark.parametrize("end", ["2026-01-10T22:00:00+01:00", "2026-01-10T21:00:00+01:00"])
def test_end_not_after_start(end: str) -> None:
    assert reason_of("2026-01-10T22:00:00+01:00", end) == "end_not_after_start"


def test_window_too_long_for_wall_clock_device() -> None:
    start = "2026-01-10T22:00:00+01:00"
    assert resolve(start, "2026-01-11T22:00:00+01:00").end == utc(2026, 1, 11, 21, 0)
    assert reason_of(start, "2026-01-11T22:01:00+01:00") == "window_too_long"


def test_long_window_fine_for_non_wall_clock_device() -> None:
    window = resolve("2026-01-10T22:00:00+01:00", "2026-01-13T22:00:00+01:00", wall_clock_device=False)
    assert window.end == utc(2026, 1, 13, 21, 0)


def test_window_over_24h_of_wall_clock_on_spring_forward_day_is_too_long() -> None:
    # 23.5 h of real time, but 24.5 h on London's wall clock: no daily rows can hold it.
    now = datetime(2026, 3, 20, tzinfo=UTC)
    start, end = "2026-03-28T23:00:00+00:00", "2026-03-29T22:30:00+00:00"
    assert reason_of(start, end, now=now, zone_known=True) == "window_too_long"


def test_window_over_24h_of_real_time_on_fall_back_day_is_too_long() -> None:
    # 24.5 h of real time fits in 23.5 h of London's wall clock, but the window still outlasts
    # one daily cycle of the device's rows.
    now = datetime(2026, 10, 20, tzinfo=UTC)
    start, end = "2026-10-24T22:00:00Z", "2026-10-25T22:30:00Z"
    assert reason_of(start, end, now=now, zone_known=True) == "window_too_long"


def test_window_reversed_on_wall_clock_across_fold_is_dst_transition() -> None:
    # 01:50 BST (00:50Z) to 01:10 GMT (01:10Z): 20 real minutes, but the wall clock goes back.
    now = datetime(2026, 10, 20, tzinfo=UTC)
    error = refusal("2026-10-25T00:50:00Z", "2026-10-25T01:10:00Z", now=now, zone_known=True)
    assert error.details is not None
    assert error.details["reason"] == "dst_transition"
    # A device that is not wall-clock driven has no such problem.
    window = resolve("2026-10-25T00:50:00Z", "2026-10-25T01:10:00Z", now=now, zone_known=True, wall_clock_device=False)
    assert window.end == utc(2026, 10, 25, 1, 10)


def test_client_literal_walls_reversed_is_dst_transition() -> None:
    # The client changes offset between start and end: 21:30Z to 21:50Z, but the literal walls
    # the platform would write run backwards (22:30 -> 22:20).
    assert reason_of("2026-01-10T22:30:00+01:00", "2026-01-10T22:20:00+00:30") == "dst_transition"


# --- start in the past / out of range ----------------------------------------------------------


def test_start_equal_to_now_is_in_the_past() -> None:
    error = refusal("2026-01-10T12:00:00+00:00")
    assert error.code == "START_IN_PAST"
    assert error.details == {"start": "2026-01-10T12:00:00.000Z", "now": "2026-01-10T12:00:00.000Z"}


def test_start_before_now_is_in_the_past() -> None:
    assert refusal("2026-01-10T11:59:59+00:00").code == "START_IN_PAST"


def test_start_just_after_now_is_fine() -> None:
    assert resolve("2026-01-10T12:00:00.001+00:00").start == utc(2026, 1, 10, 12, 0, 0, 1000)


def test_start_exactly_at_horizon_is_fine() -> None:
    assert resolve("30d").start == WINTER_NOW + timedelta(days=30)
    assert resolve("2026-02-09T12:00:00Z").start == utc(2026, 2, 9, 12, 0)


def test_start_past_horizon_is_out_of_range() -> None:
    error = refusal("2026-02-09T12:01:00Z")
    assert error.code == "START_OUT_OF_RANGE"
    assert error.status == 422
    assert error.details == {"start": "2026-02-09T12:01:00.000Z", "maxStart": "2026-02-09T12:00:00.000Z"}


def test_horizon_is_a_parameter() -> None:
    assert refusal("2h", horizon=timedelta(hours=1)).code == "START_OUT_OF_RANGE"


def test_shape_refusals_come_before_start_in_past() -> None:
    assert reason_of("2020-01-10T22:00:00Z", "2020-01-10T23:00:00Z") == "zero_utc_offset"
    assert reason_of("2020-01-10T22:00:00+01:00", "2020-01-10T21:00:00+01:00") == "end_not_after_start"


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError):
        resolve_window("1h", None, now=datetime(2026, 1, 10), zone=LONDON, zone_known=True, wall_clock_device=True)


# --- wall clocks -------------------------------------------------------------------------------


def test_client_wall_kept_literally_for_unknown_zone() -> None:
    # London is at +00:00 in January; the platform still writes the client's 22:00.
    window = resolve("2026-01-10T22:00:00+01:00", "2026-01-11T05:00:00+01:00")
    assert (window.start, window.end) == (utc(2026, 1, 10, 21, 0), utc(2026, 1, 11, 4, 0))
    assert (window.start_wall, window.end_wall) == (datetime(2026, 1, 10, 22, 0), datetime(2026, 1, 11, 5, 0))


def test_zone_known_walls_use_plant_offset() -> None:
    window = resolve("2026-01-10T22:00:00+01:00", "2026-01-11T05:00:00+01:00", zone_known=True)
    assert (window.start_wall, window.end_wall) == (datetime(2026, 1, 10, 21, 0), datetime(2026, 1, 11, 4, 0))


def test_relative_start_with_unknown_zone_uses_utc_wall() -> None:
    window = resolve("1h", "2026-07-10T15:00:00+01:00", now=SUMMER_NOW)
    assert window.start_wall == datetime(2026, 7, 10, 13, 0)
    assert window.end_wall == datetime(2026, 7, 10, 15, 0)


def test_no_walls_without_end() -> None:
    window = resolve("2026-01-10T22:00:00+01:00")
    assert window.start_wall is None and window.end_wall is None


# --- wall_rows ---------------------------------------------------------------------------------


def wall(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, second)


def test_wall_rows_inclusive_end() -> None:
    assert wall_rows(wall(10, 5), wall(10, 7)) == [(300, 419)]


def test_wall_rows_split_at_midnight() -> None:
    assert wall_rows(wall(10, 22), wall(11, 5)) == [(1320, 1439), (0, 299)]


def test_wall_rows_ending_at_midnight() -> None:
    assert wall_rows(wall(10, 22), wall(11, 0)) == [(1320, 1439)]


def test_wall_rows_full_day_from_midnight() -> None:
    assert wall_rows(wall(10, 0), wall(11, 0)) == [(0, 1439)]


def test_wall_rows_full_day_from_evening() -> None:
    assert wall_rows(wall(10, 22), wall(11, 22)) == [(1320, 1439), (0, 1319)]


def test_wall_rows_floor_start_and_partial_end_minute() -> None:
    assert wall_rows(wall(10, 5, 0, 30), wall(10, 6, 0, 30)) == [(300, 360)]


def test_wall_rows_full_day_off_the_minute_does_not_overlap_itself() -> None:
    assert wall_rows(wall(10, 22, 0, 30), wall(11, 22, 0, 30)) == [(1320, 1439), (0, 1319)]


def test_wall_rows_sub_second_window_takes_its_minute() -> None:
    assert wall_rows(datetime(2026, 1, 10, 5, 0), datetime(2026, 1, 10, 5, 0, 0, 500_000)) == [(300, 300)]


@pytest.mark.parametrize(("start", "end"), [(wall(10, 5), wall(10, 5)), (wall(10, 6), wall(10, 5)), (wall(10, 5), wall(11, 5, 1))])
def test_wall_rows_refuses_empty_reversed_or_too_long(start: datetime, end: datetime) -> None:
    with pytest.raises(ValueError):
        wall_rows(start, end)


# --- wall_to_instant ---------------------------------------------------------------------------


def test_wall_to_instant_plain() -> None:
    assert wall_to_instant(datetime(2026, 7, 10, 22, 0), LONDON) == utc(2026, 7, 10, 21, 0)


def test_wall_to_instant_in_fold_takes_first_occurrence() -> None:
    assert wall_to_instant(datetime(2026, 10, 25, 1, 30), LONDON) == utc(2026, 10, 25, 0, 30)
    assert wall_to_instant(datetime(2026, 4, 5, 2, 30), SYDNEY) == utc(2026, 4, 4, 15, 30)


def test_wall_to_instant_in_gap_is_the_instant_after_the_gap() -> None:
    # London jumps from 01:00 GMT to 02:00 BST at 01:00 UTC.
    assert wall_to_instant(datetime(2026, 3, 29, 1, 30), LONDON) == utc(2026, 3, 29, 1, 0)
    # Sydney jumps from 02:00 AEST to 03:00 AEDT at 16:00 UTC the day before.
    assert wall_to_instant(datetime(2026, 10, 4, 2, 30), SYDNEY) == utc(2026, 10, 3, 16, 0)


def test_wall_to_instant_rejects_aware_input() -> None:
    with pytest.raises(ValueError):
        wall_to_instant(datetime(2026, 7, 10, 22, 0, tzinfo=UTC), LONDON)


# --- the same window resolved again (a fleet resolves one window for every device) ------------


def test_a_window_resolved_before_is_judged_against_the_new_now() -> None:
    # The placement of an absolute window does not depend on `now`, but the rules against `now`
    # do: resolved once in time, the same strings are refused once the start has passed or lies
    # beyond the horizon.
    start, end = "2026-01-11T09:00:00+00:00", "2026-01-11T10:00:00+00:00"
    first = resolve(start, end, zone_known=True)
    assert resolve(start, end, zone_known=True) == first
    assert refusal(start, end, zone_known=True, now=datetime(2026, 1, 11, 9, 0, tzinfo=UTC)).code == "START_IN_PAST"
    assert refusal(start, end, zone_known=True, now=datetime(2025, 12, 1, tzinfo=UTC)).code == "START_OUT_OF_RANGE"


def test_a_relative_window_moves_with_now_each_time() -> None:
    later = WINTER_NOW + timedelta(hours=3)
    assert resolve("30m", "1h", zone_known=True).start == WINTER_NOW + timedelta(minutes=30)
    again = resolve("30m", "1h", zone_known=True, now=later)
    assert (again.start, again.end) == (later + timedelta(minutes=30), later + timedelta(hours=1, minutes=30))
    assert again.start_wall == datetime(2026, 1, 10, 15, 30)


def test_the_same_strings_resolve_per_zone_and_per_zone_knowledge() -> None:
    start, end = "2026-07-11T01:00:00", "2026-07-11T05:00:00"
    london = resolve(start, end, now=SUMMER_NOW, zone_known=True)
    sydney = resolve(start, end, now=SUMMER_NOW, zone=SYDNEY, zone_known=True)
    assert london.start == datetime(2026, 7, 11, 0, 0, tzinfo=UTC)
    assert sydney.start == datetime(2026, 7, 10, 15, 0, tzinfo=UTC)
    assert refusal(start, end, now=SUMMER_NOW, zone_known=False).details["reason"] == "naive_time_unknown_zone"
