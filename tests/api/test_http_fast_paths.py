"""The HTTP layer's shortcuts answer exactly as the long way would: a push body seen before (the
parsed-body memo), and replies built without aiohttp's constructor."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from pydantic import ValidationError

from amps_sim.simulator.validation import PushRequest
from amps_sim.simulator.web import common, public

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
