"""The HTTP layer's shortcuts answer exactly as the long way would: a push body seen before (the
parsed-body memo), and replies built without aiohttp's constructor."""

from __future__ import annotations

import dataclasses
import json
import pickle
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp import web
from pydantic import ValidationError

from amps_sim.simulator.actions import Action
from amps_sim.simulator.memo import Unsaved
from amps_sim.simulator.validation import PushRequest
from amps_sim.simulator.web import common, public
from amps_sim.simulator.web.public import LIST_LIMIT_MAX

from ..conftest import Api

WINDOW = {"command": "charge", "start": "2026-05-08T10:00:00Z", "end": "2026-05-08T11:00:00Z",
          "parameters": {"target": {"value": 90, "unit": "percent"}}}


@pytest.mark.parametrize("status", [200, 201, 202, 400, 404, 409, 415, 422, 429])
def test_json_response_is_what_aiohttp_builds(status: int) -> None:
    made = common.json_response(b'{"a":1}', status)
    reference = web.Response(body=b'{"a":1}', status=status, headers=common._JSON_HEADERS)
    assert type(made) is web.Response
    assert vars(made) == vars(reference)
    assert made.reason == reference.reason and made.content_type == "application/json" and made.charset == "utf-8"
    # Each reply has headers of its own: a refusal adds to them (Retry-After, Allow).
    made.headers["Retry-After"] = "1"
    assert "Retry-After" not in common.json_response(b"{}", status).headers


def test_push_models_are_frozen() -> None:
    parsed = PushRequest.model_validate({"action": WINDOW})
    with pytest.raises(ValidationError):
        parsed.onConflict = "queue_after"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        parsed.action.command = "discharge"  # type: ignore[misc]


async def test_a_repeated_push_body_is_parsed_once_and_answers_the_same(api: Api) -> None:
    public._PUSH_BODIES.clear()
    body = {"action": WINDOW, "onConflict": "cancel_and_replace"}
    first = await api.call("POST", "/battery/dev_fox", json_body=body)
    assert first.status == 202, first.body
    raw = json.dumps(body).encode()
    assert raw in public._PUSH_BODIES
    second = await api.call("POST", "/battery/dev_fox", json_body=body)
    assert second.status == 202, second.body
    assert second.body["actionId"] != first.body["actionId"]
    assert (await api.action(first.body["actionId"]))["state"] == "cancelled"
    assert {k: v for k, v in second.body.items() if k != "actionId"} == {k: v for k, v in first.body.items() if k != "actionId"}


async def test_a_remembered_body_still_needs_json_as_its_content_type(api: Api) -> None:
    public._PUSH_BODIES.clear()
    raw = json.dumps({"action": WINDOW, "onConflict": "cancel_and_replace"}).encode()
    assert (await api.call("POST", "/battery/dev_fox", data=raw, headers={"Content-Type": "application/json"})).status == 202
    assert raw in public._PUSH_BODIES
    refused = await api.call("POST", "/battery/dev_fox", data=raw, headers={"Content-Type": "text/plain"})
    assert refused.status == 415 and refused.code == "UNSUPPORTED_MEDIA_TYPE"
    vendor = await api.call("POST", "/battery/dev_fox", data=raw, headers={"Content-Type": "application/vnd.x+json; charset=utf-8"})
    assert vendor.status == 202, vendor.body


async def test_a_remembered_body_is_still_judged_per_device(api: Api) -> None:
    public._PUSH_BODIES.clear()
    body = {"action": WINDOW}
    assert (await api.push("dev_fox", **WINDOW)).status == 202
    missing = await api.call("POST", "/battery/dev_nope", json_body=body)
    assert missing.status == 404 and missing.code == "DEVICE_NOT_FOUND"


async def test_refused_bodies_are_not_remembered(api: Api) -> None:
    public._PUSH_BODIES.clear()
    for body in ({"action": {**WINDOW, "extra": 1}}, {"action": {**WINDOW, "start": None}}):
        for _ in range(2):
            reply = await api.call("POST", "/battery/dev_fox", json_body=body)
            assert reply.status == 400 and reply.code == "INVALID_REQUEST", reply.body
    assert not public._PUSH_BODIES


async def test_the_memo_is_bounded(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    public._PUSH_BODIES.clear()
    monkeypatch.setattr(public, "PUSH_MEMO_LIMIT", 3)
    for hour in range(10, 16):
        window = {**WINDOW, "start": f"2026-05-08T{hour}:00:00Z", "end": f"2026-05-08T{hour}:30:00Z"}
        assert (await api.call("POST", "/battery/dev_fox", json_body={"action": window, "onConflict": "cancel_and_replace"})).status == 202
        assert len(public._PUSH_BODIES) <= 3
    big = {"action": WINDOW, "onConflict": "cancel_and_replace"}
    raw = json.dumps(big).encode() + b" " * public.PUSH_MEMO_MAX_BYTES
    public._PUSH_BODIES.clear()
    assert (await api.call("POST", "/battery/dev_fox", data=raw, headers={"Content-Type": "application/json"})).status == 202
    assert not public._PUSH_BODIES


# ---- a read reuses the record's text while the action stays as it is ------------------------------

async def _read_matches_listing(api: Api, action_id: str) -> dict[str, Any]:
    """Two reads of the action (the second may come from the kept text) against its record as
    the listing builds it, afresh."""
    first, second = await api.action(action_id), await api.action(action_id)
    listing = await api.call("GET", f"/actions?deviceId=dev_fox&limit={LIST_LIMIT_MAX}")
    listed = next(item for item in listing.body["actions"] if item["id"] == action_id)
    assert first == second == listed
    return first


async def test_a_read_follows_every_change_of_the_action(api: Api) -> None:
    windowed = await api.push("dev_fox", **WINDOW)
    assert (await _read_matches_listing(api, windowed.body["actionId"]))["state"] == "scheduled"
    await api.advance(to="2026-05-08T10:00:01Z")  # dispatched at its start
    assert (await _read_matches_listing(api, windowed.body["actionId"]))["state"] == "acknowledged"
    await api.advance(to="2026-05-08T10:00:10Z")
    record = await _read_matches_listing(api, windowed.body["actionId"])
    assert record["state"] == "completed" and record["completedAt"] is not None

    cancelled = await api.push("dev_fox", **{**WINDOW, "start": "2026-05-09T10:00:00Z", "end": "2026-05-09T11:00:00Z"})
    await _read_matches_listing(api, cancelled.body["actionId"])
    assert (await api.cancel(cancelled.body["actionId"])).status == 200
    assert (await _read_matches_listing(api, cancelled.body["actionId"]))["state"] == "cancelled"

    await api.fault("dev_fox", "oem_timeout", 5)
    failing = await api.push("dev_fox", "charge")
    await _read_matches_listing(api, failing.body["actionId"])
    for step in ("1s", "1s", "1m"):  # through its retries to the failure
        await api.advance(by=step)
        await _read_matches_listing(api, failing.body["actionId"])
    record = await _read_matches_listing(api, failing.body["actionId"])
    assert record["state"] == "failed" and record["errorCode"] == "OEM_TIMEOUT" and record["result"] is not None


async def test_a_reset_tenant_reads_its_new_actions_and_snapshots_keep_no_texts(api: Api) -> None:
    # A reset tenant starts from its seed again, so its next push has the id the first one had.
    one = await api.push("dev_fox", **WINDOW)
    assert (await api.action(one.body["actionId"]))["parameters"]["target"]["value"] == 90
    assert (await api.call("POST", "/_sim/reset")).status == 200
    other = await api.push("dev_fox", **{**WINDOW, "parameters": {"target": {"value": 40, "unit": "percent"}}})
    assert other.body["actionId"] == one.body["actionId"]
    assert (await api.action(other.body["actionId"]))["parameters"]["target"]["value"] == 40
    texts = Unsaved({"act_x": ((), b"{}")})
    assert pickle.loads(pickle.dumps(texts)) == {} and type(pickle.loads(pickle.dumps(texts))) is Unsaved


def _changed(value: Any) -> Any:
    if isinstance(value, datetime):
        return value + timedelta(seconds=1)
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, dict):
        return {**value, "other": 1}
    return {"other": 1}  # None, or an object the record does not read


def test_every_change_the_record_shows_changes_the_revision() -> None:
    at = datetime(2026, 5, 8, 10, tzinfo=timezone.utc)
    base = Action(id="act_1", device_id="dev_1", command="charge", parameters={"mode": "charge"}, execution="windowed",
                  created_at=at, state="failed", start=at, end=at + timedelta(hours=1), updated_at=at,
                  acknowledged_at=at, completed_at=at, result={"r": 1}, error_code="E", error_message="m")
    shown = 0
    for field in dataclasses.fields(Action):
        changed = dataclasses.replace(base)
        try:
            setattr(changed, field.name, _changed(getattr(base, field.name)))
            record = changed.record()
        except (TypeError, AttributeError):
            continue  # not a value the record could read as it is
        if record != base.record():
            shown += 1
            assert changed.revision() != base.revision(), f"{field.name} changes the record, not the revision"
    assert shown >= 12  # every field the record shows was tried
