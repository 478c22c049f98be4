"""Rules of the conflict engine and cleanup that a rewrite of platform.py must keep (issue 12,
item 6): each test here failed against a copy of the platform with that one rule broken."""

from __future__ import annotations

import math

from tests.conftest import Api

# The fixture's device is a FoxESS in London (zone known); the clock starts at 08:00Z (09:00 BST).


async def test_a_windows_cleanup_removes_only_its_own_rows(api: Api) -> None:
    """Window A (10:00-11:00Z) completes; window B (10:30-11:30Z), pushed after A completed and so
    not in conflict with it, overlaps A's end. At 11:00 A's cleanup must leave B's row alone."""
    first = await api.push("dev_fox", "charge", start="2026-05-08T10:00:00Z", end="2026-05-08T11:00:00Z")
    await api.advance(to="2026-05-08T10:00:05Z")
    assert (await api.action(first.body["actionId"]))["state"] == "completed"
    second = await api.push("dev_fox", "discharge", start="2026-05-08T10:30:00Z", end="2026-05-08T11:30:00Z")
    assert second.status == 202, second.body
    await api.advance(to="2026-05-08T10:30:05Z")
    assert (await api.action(second.body["actionId"]))["state"] == "completed"
    await api.advance(to="2026-05-08T11:00:01Z")
    groups = (await api.truth("dev_fox"))["scheduler"]["groups"]
    assert [(g["start"], g["end"], g.get("actionId")) for g in groups] == [("11:30", "12:29", second.body["actionId"])]
    await api.advance(to="2026-05-08T11:30:01Z")
    assert (await api.truth("dev_fox"))["scheduler"]["groups"] == []


async def test_queue_after_is_offered_only_when_every_conflict_declares_an_end(api: Api) -> None:
    window = await api.push("dev_fox", "charge", start="2026-05-08T10:00:00Z", end="2026-05-08T11:00:00Z")
    queued = await api.push("dev_fox", "auto.balanced", on_conflict="queue_after")
    assert queued.status == 202 and queued.body["start"] == "2026-05-08T11:00:00.000Z" and "end" not in queued.body
    # Two conflicts, both scheduled: one with an end, the queued auto mode open-ended.
    third = await api.push("dev_fox", "idle")
    assert third.status == 409 and third.code == "CONFLICT"
    assert third.details["conflictingActionIds"] == [window.body["actionId"], queued.body["actionId"]]
    assert third.details["strategies"] == ["cancel_and_replace"]
    refused = await api.push("dev_fox", "idle", on_conflict="queue_after")
    assert refused.status == 409 and refused.details["reason"] == "queue_after_requires_end"


async def test_queue_after_lands_after_the_latest_conflict_end(api: Api) -> None:
    await api.push("dev_fox", "charge", start="2026-05-08T10:00:00Z", end="2026-05-08T11:00:00Z")
    second = await api.push("dev_fox", "discharge", on_conflict="queue_after",
                            start="2026-05-08T10:00:00Z", end="2026-05-08T10:30:00Z")
    assert (second.body["start"], second.body["end"]) == ("2026-05-08T11:00:00.000Z", "2026-05-08T11:30:00.000Z")
    offered = await api.push("dev_fox", "charge", start="2026-05-08T10:00:00Z", end="2026-05-08T10:15:00Z")
    assert offered.details["strategies"] == ["cancel_and_replace", "queue_after"]
    third = await api.push("dev_fox", "charge", on_conflict="queue_after",
                           start="2026-05-08T10:00:00Z", end="2026-05-08T10:15:00Z")
    assert third.status == 202
    assert (third.body["start"], third.body["end"]) == ("2026-05-08T11:30:00.000Z", "2026-05-08T11:45:00.000Z")
    plain = await api.push("dev_fox", "idle", on_conflict="queue_after")
    assert plain.body["start"] == "2026-05-08T11:45:00.000Z"


async def test_each_record_reads_back_its_own_parameter_values_as_written(api: Api) -> None:
    """Records with equal parameters may share storage; 95 and 95.0 (and 0 and -0.0) are not
    equal as written, and each record reads back what its push said."""
    pushed = []
    for value in (95, 95.0, 95, 95.0):
        reply = await api.push("dev_fox", "charge", on_conflict="cancel_and_replace", start="2h", end="3h",
                               parameters={"target": {"value": value, "unit": "percent"}})
        assert reply.status == 202, reply.body
        pushed.append((reply.body["actionId"], value))
    for value in (0.0, -0.0, 0):
        reply = await api.push("dev_fox", "charge", on_conflict="cancel_and_replace", start="2h", end="3h",
                               parameters={"power": {"value": value, "unit": "kw"}})
        assert reply.status == 202, reply.body
        pushed.append((reply.body["actionId"], value))
    for action_id, value in pushed:
        parameters = (await api.action(action_id))["parameters"]
        read = parameters["target" if value == 95 else "power"]["value"]
        assert (type(read), math.copysign(1, read), read) == (type(value), math.copysign(1, value), value), (read, value)
