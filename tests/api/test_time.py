"""§6: time parsing, INVALID_TIME_WINDOW reasons, DST and the drift warning, through HTTP."""

from __future__ import annotations

import pytest

from tests.conftest import Api, foxess


@pytest.fixture
async def unknown(sim: Api) -> Api:
    return await sim.tenant([foxess(known=False)], now="2026-01-08T08:00:00Z")


@pytest.mark.parametrize(
    "start,end,reason",
    [
        ("2026-01-09T22:00:00Z", "2026-01-10T05:00:00Z", "zero_utc_offset"),
        ("2026-01-09T22:00:00+00:00", "2026-01-10T05:00:00+00:00", "zero_utc_offset"),
        ("2026-01-09T22:00:00-00:00", "2026-01-10T05:00:00-00:00", "zero_utc_offset"),
        ("2026-01-09T22:00:00+01:00", "3h", "relative_end"),
        ("2026-01-09T22:00:00", "2026-01-10T05:00:00", "naive_time_unknown_zone"),
        ("2026-01-09T22:00:00+01:00", "2026-01-09T21:00:00+01:00", "end_not_after_start"),
        ("2026-01-09T22:00:00+01:00", "2026-01-11T05:00:00+01:00", "window_too_long"),
        ("tomorrow", "2026-01-10T05:00:00+01:00", "invalid_format"),
    ],
)
async def test_invalid_time_window_reasons_for_unknown_zone(unknown: Api, start: str, end: str, reason: str) -> None:
    reply = await unknown.push("dev_fox", "charge", start=start, end=end)
    assert reply.status == 422 and reply.code == "INVALID_TIME_WINDOW"
    assert reply.details["reason"] == reason


async def test_end_without_start(api: Api) -> None:
    reply = await api.push("dev_fox", "charge", end="2026-05-08T12:00:00Z")
    assert reply.code == "INVALID_TIME_WINDOW" and reply.details["reason"] == "end_without_start"


async def test_explicit_offset_and_scheduled_z_are_accepted_for_unknown_zone(unknown: Api) -> None:
    ok = await unknown.push("dev_fox", "charge", start="2026-01-09T22:00:00+01:00", end="2026-01-10T05:00:00+01:00")
    assert ok.status == 202 and ok.body["start"] == "2026-01-09T21:00:00.000Z"
    await unknown.cancel(ok.body["actionId"])
    scheduled = await unknown.push("dev_fox", "idle", start="2026-01-09T22:00:00Z")
    assert scheduled.status == 202


async def test_known_zone_lifts_the_constraint(api: Api) -> None:
    reply = await api.push("dev_fox", "charge", start="2026-05-09T22:00:00Z", end="3h")
    assert reply.status == 202 and reply.body["end"] == "2026-05-10T01:00:00.000Z"
    await api.advance(to="2026-05-09T22:00:05Z")
    rows = sorted((g["start"], g["end"]) for g in (await api.truth("dev_fox"))["scheduler"]["groups"])
    assert rows == [("00:00", "01:59"), ("23:00", "23:59")]


async def test_naive_time_read_in_plant_zone(api: Api) -> None:
    reply = await api.push("dev_fox", "discharge", start="2026-05-08T18:00:00", end="2026-05-08T19:00:00")
    assert reply.status == 202 and reply.body["start"] == "2026-05-08T17:00:00.000Z"


@pytest.mark.parametrize(
    "zone,now,start,reason",
    [
        ("Europe/London", "2026-03-28T08:00:00Z", "2026-03-29T01:30:00", "nonexistent_local_time"),
        ("Europe/London", "2026-10-24T08:00:00Z", "2026-10-25T01:30:00", "ambiguous_local_time"),
        ("Australia/Sydney", "2026-10-03T00:00:00Z", "2026-10-04T02:30:00", "nonexistent_local_time"),
        ("Australia/Sydney", "2026-04-04T00:00:00Z", "2026-04-05T02:30:00", "ambiguous_local_time"),
    ],
)
async def test_dst_gaps_and_folds_are_refused(sim: Api, zone: str, now: str, start: str, reason: str) -> None:
    api = await sim.tenant([foxess(zone=zone)], now=now)
    reply = await api.push("dev_fox", "charge", start=start, end="1h")
    assert reply.code == "INVALID_TIME_WINDOW" and reply.details["reason"] == reason


async def test_window_across_fall_back_runs_on_plant_wall_clock(sim: Api) -> None:
    """Sydney falls back at 03:00 AEDT on 2026-04-05: a 00:00-06:00 AEDT window is 7 h of wall clock."""
    api = await sim.tenant([foxess(zone="Australia/Sydney")], now="2026-04-04T00:00:00Z")
    reply = await api.push("dev_fox", "charge", start="2026-04-05T00:00:00+11:00", end="2026-04-05T06:00:00+10:00")
    assert reply.status == 202
    await api.advance(to="2026-04-04T13:00:05Z")
    rows = [(g["start"], g["end"]) for g in (await api.truth("dev_fox"))["scheduler"]["groups"]]
    assert rows == [("00:00", "05:59")]


async def test_start_in_past_and_out_of_range(api: Api) -> None:
    past = await api.push("dev_fox", "idle", start="2026-05-08T07:59:00Z")
    assert past.status == 422 and past.code == "START_IN_PAST"
    now = await api.push("dev_fox", "idle", start="2026-05-08T08:00:00Z")
    assert now.code == "START_IN_PAST"
    far = await api.push("dev_fox", "idle", start="30d")
    assert far.status == 202
    await api.cancel(far.body["actionId"])
    too_far = await api.push("dev_fox", "idle", start="2026-06-07T08:01:00Z")
    assert too_far.code == "START_OUT_OF_RANGE"


@pytest.mark.parametrize("text,expected", [("30m", "2026-05-08T08:30:00.000Z"), ("1.5h", "2026-05-08T09:30:00.000Z"),
                                           ("2h", "2026-05-08T10:00:00.000Z"), ("0.25h", "2026-05-08T08:15:00.000Z")])
async def test_relative_starts(api: Api, text: str, expected: str) -> None:
    reply = await api.push("dev_fox", "idle", start=text)
    assert reply.body["start"] == expected


async def test_drift_warning_when_client_offset_disagrees_with_plant(unknown: Api) -> None:
    """London is on GMT in January; a client writing +01:00 means 21:00Z, the plant acts at 22:00Z."""
    reply = await unknown.push("dev_fox", "charge", start="2026-01-09T22:00:00+01:00", end="2026-01-10T05:00:00+01:00")
    truth = await unknown.truth("dev_fox")
    assert truth["warnings"] == [
        {
            "kind": "time_drift",
            "actionId": reply.body["actionId"],
            "message": truth["warnings"][0]["message"],
            "intendedStart": "2026-01-09T21:00:00.000Z",
            "effectiveStart": "2026-01-09T22:00:00.000Z",
            "driftMinutes": 60,
        }
    ]
    await unknown.advance(to="2026-01-09T21:00:05Z")
    truth = await unknown.truth("dev_fox")
    assert sorted((g["start"], g["end"]) for g in truth["scheduler"]["groups"]) == [("00:00", "04:59"), ("22:00", "23:59")]
    # At 21:30Z the client expected charging; the plant's wall clock says 21:30, outside the row.
    await unknown.advance(to="2026-01-09T21:30:00Z")
    assert (await unknown.device("dev_fox"))["state"]["currentMode"] != "charge"
    await unknown.advance(to="2026-01-09T22:30:00Z")
    assert (await unknown.device("dev_fox"))["state"]["currentMode"] == "charge"


async def test_no_drift_when_offsets_agree(unknown: Api) -> None:
    await unknown.push("dev_fox", "charge", start="2026-01-09T22:00:00+00:30", end="2026-01-10T05:00:00+00:30")
    assert (await unknown.truth("dev_fox"))["warnings"] != []
    other = await unknown.tenant([foxess(known=False)], now="2026-07-08T08:00:00Z")
    await other.push("dev_fox", "charge", start="2026-07-09T22:00:00+01:00", end="2026-07-10T05:00:00+01:00")
    assert (await other.truth("dev_fox"))["warnings"] == []
