"""§3–§4: lifecycle, cancel, and the Amps-tracked conflict engine, through HTTP."""

from __future__ import annotations

from tests.conftest import Api

WINDOW = {"start": "2026-05-09T22:00:00Z", "end": "2026-05-10T05:00:00Z"}
TARGET_100 = {"target": {"value": 100, "unit": "percent"}}
TARGET_30 = {"target": {"value": 30, "unit": "percent"}}


async def test_immediate_push_lifecycle_timings(api: Api) -> None:
    reply = await api.push("dev_fox", "charge", parameters={"target": {"value": 95, "unit": "percent"}})
    assert reply.status == 202
    assert reply.body["state"] == "acknowledged" and reply.body["type"] == "battery:set_operation_mode"
    assert "start" not in reply.body
    action_id = reply.body["actionId"]
    record = await api.action(action_id)
    assert record["parameters"] == {"mode": "charge", "target": {"value": 95, "unit": "percent"}}
    assert record["acknowledgedAt"] is None and record["completedAt"] is None
    await api.advance(by="1s")
    record = await api.action(action_id)
    assert record["state"] == "acknowledged" and record["acknowledgedAt"] == "2026-05-08T08:00:01.000Z"
    await api.advance(by="2s")
    record = await api.action(action_id)
    assert record["state"] == "completed" and record["completedAt"] == "2026-05-08T08:00:03.000Z"
    assert record["result"] is None and record["errorCode"] is None


async def test_scheduled_start_is_normalised_to_utc(api: Api) -> None:
    reply = await api.push("dev_fox", "auto.reserve", start="2026-05-08T10:00:00+01:00")
    assert reply.status == 202 and reply.body["state"] == "scheduled"
    assert reply.body["start"] == "2026-05-08T09:00:00.000Z" and "end" not in reply.body


async def test_scheduled_then_fired_and_completed(api: Api) -> None:
    reply = await api.push("dev_fox", "auto.reserve", start="30m")
    assert reply.body["start"] == "2026-05-08T08:30:00.000Z"
    action_id = reply.body["actionId"]
    await api.advance(by="29m")
    assert (await api.action(action_id))["state"] == "scheduled"
    await api.advance(by="1m")
    record = await api.action(action_id)
    assert record["state"] == "acknowledged"
    await api.advance(by="3s")
    record = await api.action(action_id)
    assert record["state"] == "completed" and record["acknowledgedAt"] == "2026-05-08T08:30:01.000Z"
    assert (await api.device("dev_fox"))["state"]["currentMode"] == "auto.reserve"


async def test_cancel_scheduled_then_not_cancellable(api: Api) -> None:
    accepted = await api.push("dev_fox", "charge", parameters=TARGET_100, **WINDOW)
    assert accepted.status == 202 and accepted.body["state"] == "scheduled"
    assert accepted.body["start"] == "2026-05-09T22:00:00.000Z"
    action_id = accepted.body["actionId"]
    await api.advance(by="3h32m")
    cancelled = await api.cancel(action_id)
    assert cancelled.status == 200
    body = cancelled.body
    assert body["state"] == "cancelled" and body["updatedAt"] == "2026-05-08T11:32:00.000Z"
    assert body["completedAt"] is None and body["acknowledgedAt"] is None
    again = await api.cancel(action_id)
    assert again.status == 409 and again.code == "ACTION_NOT_CANCELLABLE"
    assert again.body["error"]["message"] == "Action in state 'cancelled' cannot be cancelled"
    # It never fires.
    await api.advance(to="2026-05-10T06:00:00Z")
    assert (await api.action(action_id))["state"] == "cancelled"
    assert (await api.truth("dev_fox"))["scheduler"]["groups"] == []


async def test_cancel_in_flight_names_the_state(api: Api) -> None:
    accepted = await api.push("dev_fox", "idle")
    reply = await api.cancel(accepted.body["actionId"])
    assert reply.status == 409 and reply.code == "ACTION_NOT_CANCELLABLE"
    assert reply.body["error"]["message"] == "Action in state 'acknowledged' cannot be cancelled"
    assert "details" not in reply.body["error"]


async def test_conflict_without_strategy_lists_ids_and_strategies(api: Api) -> None:
    first = await api.push("dev_fox", "charge", parameters=TARGET_100, **WINDOW)
    reply = await api.push("dev_fox", "discharge", parameters=TARGET_30)
    assert reply.status == 409 and reply.code == "CONFLICT"
    assert reply.details == {
        "reason": "no_strategy_supplied",
        "conflictingActionIds": [first.body["actionId"]],
        "strategies": ["cancel_and_replace", "queue_after"],
    }


async def test_disjoint_scheduled_actions_still_collide(api: Api) -> None:
    await api.push("dev_fox", "discharge", start="2026-05-08T10:00:00Z", end="2026-05-08T11:00:00Z")
    reply = await api.push("dev_fox", "discharge", start="2026-05-08T20:00:00Z", end="2026-05-08T21:00:00Z")
    assert reply.code == "CONFLICT"


async def test_open_ended_conflict_offers_only_cancel_and_replace(api: Api) -> None:
    await api.push("dev_fox", "auto.balanced", start="1h")
    reply = await api.push("dev_fox", "idle")
    assert reply.details["strategies"] == ["cancel_and_replace"]


async def test_cancel_and_replace_is_atomic(api: Api) -> None:
    first = await api.push("dev_fox", "charge", parameters=TARGET_100, **WINDOW)
    await api.advance(by="1s")
    reply = await api.push("dev_fox", "discharge", parameters=TARGET_30, on_conflict="cancel_and_replace")
    assert reply.status == 202 and reply.body["state"] == "acknowledged"
    old = await api.action(first.body["actionId"])
    assert old["state"] == "cancelled" and old["updatedAt"] == "2026-05-08T08:00:01.000Z"
    assert (await api.action(reply.body["actionId"]))["state"] == "acknowledged"


async def test_cancel_and_replace_refused_while_in_flight(api: Api) -> None:
    first = await api.push("dev_fox", "charge")
    reply = await api.push("dev_fox", "discharge", on_conflict="cancel_and_replace")
    assert reply.status == 409 and reply.code == "CONFLICT"
    assert reply.details == {"reason": "action_in_flight", "conflictingActionIds": [first.body["actionId"]]}
    assert (await api.action(first.body["actionId"]))["state"] == "acknowledged"
    # Without a strategy, nothing would succeed: strategies are omitted.
    plain = await api.push("dev_fox", "discharge")
    assert "strategies" not in plain.details
    await api.advance(by="3s")
    assert (await api.push("dev_fox", "discharge")).status == 202


async def test_queue_after_starts_at_the_conflicts_end(api: Api) -> None:
    await api.push("dev_fox", "charge", parameters=TARGET_100, **WINDOW)
    reply = await api.push("dev_fox", "auto.balanced", on_conflict="queue_after")
    assert reply.status == 202 and reply.body["state"] == "scheduled"
    assert reply.body["start"] == "2026-05-10T05:00:00.000Z"


async def test_queue_after_keeps_a_windows_duration(api: Api) -> None:
    await api.push("dev_fox", "charge", start="2026-05-08T12:00:00Z", end="2026-05-08T14:00:00Z")
    reply = await api.push("dev_fox", "discharge", start="2026-05-08T13:00:00Z", end="2026-05-08T13:30:00Z", on_conflict="queue_after")
    assert reply.status == 202
    assert reply.body["start"] == "2026-05-08T14:00:00.000Z" and reply.body["end"] == "2026-05-08T14:30:00.000Z"


async def test_queue_after_against_open_ended_conflict(api: Api) -> None:
    first = await api.push("dev_fox", "auto.balanced", start="1h")
    reply = await api.push("dev_fox", "charge", on_conflict="queue_after")
    assert reply.status == 409 and reply.code == "CONFLICT"
    assert reply.details == {"reason": "queue_after_requires_end", "conflictingActionIds": [first.body["actionId"]]}


async def test_terminal_actions_never_block(api: Api) -> None:
    first = await api.push("dev_fox", "idle")
    await api.advance(by="3s")
    assert (await api.action(first.body["actionId"]))["state"] == "completed"
    assert (await api.push("dev_fox", "charge")).status == 202


async def test_action_listing_filters_and_pages(api: Api) -> None:
    ids = []
    for _ in range(3):
        reply = await api.push("dev_fox", "idle")
        ids.append(reply.body["actionId"])
        await api.advance(by="5s")
    scheduled = await api.push("dev_fox", "charge", start="1h")
    newest_first = [scheduled.body["actionId"], *reversed(ids)]
    page = await api.call("GET", "/actions?limit=2&offset=1")
    assert page.body["total"] == 4 and [a["id"] for a in page.body["actions"]] == newest_first[1:3]
    everything = await api.call("GET", "/actions")
    assert [a["id"] for a in everything.body["actions"]] == newest_first
    only = await api.call("GET", "/actions?state=scheduled&deviceId=dev_fox")
    assert [a["id"] for a in only.body["actions"]] == [scheduled.body["actionId"]]
    none = await api.call("GET", "/actions?deviceId=dev_other")
    assert none.body == {"actions": [], "total": 0, "limit": 10, "offset": 0}
    device = await api.device("dev_fox")
    assert device["lastAction"]["id"] == scheduled.body["actionId"]


async def test_queue_after_a_window_runs_once_the_windows_rows_are_gone(api: Api) -> None:
    """At the window's end the platform's cleanup must run before the queued action's dispatch,
    or the flag the platform switched on for its own rows would block the queued command."""
    await api.push("dev_fox", "charge", start="2026-05-08T12:00:00Z", end="2026-05-08T13:00:00Z")
    queued = await api.push("dev_fox", "auto.balanced", on_conflict="queue_after")
    assert queued.body["start"] == "2026-05-08T13:00:00.000Z"
    await api.advance(to="2026-05-08T13:01:00Z")
    record = await api.action(queued.body["actionId"])
    assert record["state"] == "completed", record
    truth = await api.truth("dev_fox")
    assert truth["scheduler"] == {"enabled": False, "maxGroupCount": 8, "groups": []}
