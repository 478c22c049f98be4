"""§1: auth, the envelope, and hostile input at the HTTP boundary."""

from __future__ import annotations

import asyncio
import io
import json
import re
from typing import Any

import pytest

from amps_sim.contracts.spec import load_public
from tests.conftest import Api, foxess

PUSH = {"action": {"command": "charge", "parameters": {"target": {"value": 90, "unit": "percent"}}}}


async def test_missing_key_is_unauthorized(api: Api) -> None:
    reply = await api.call("GET", "/battery", key=None)
    assert reply.status == 401 and reply.code == "UNAUTHORIZED"


async def test_unknown_key_is_invalid(api: Api) -> None:
    reply = await api.call("GET", "/battery/dev_fox", key="sk_live_nope")
    assert reply.status == 401 and reply.code == "INVALID_API_KEY"


@pytest.mark.parametrize(
    "method,path",
    [("GET", "/battery"), ("GET", "/battery/dev_fox"), ("POST", "/battery/dev_fox"), ("GET", "/actions"),
     ("GET", "/actions/act_x"), ("POST", "/actions/act_x/cancel")],
)
async def test_every_public_operation_refuses_without_key(api: Api, method: str, path: str) -> None:
    reply = await api.call(method, path, key=None, json_body=PUSH if method == "POST" else None)
    assert reply.status == 401 and reply.code == "UNAUTHORIZED"
    reply = await api.call(method, path, key="sk_test_wrong", json_body=PUSH if method == "POST" else None)
    assert reply.status == 401 and reply.code == "INVALID_API_KEY"


async def test_envelope_meta(api: Api) -> None:
    reply = await api.call("GET", "/battery/dev_missing")
    assert reply.status == 404 and reply.code == "DEVICE_NOT_FOUND"
    meta = reply.body["meta"]
    assert re.fullmatch(r"req_[A-Za-z0-9]{8}", meta["requestId"])
    assert meta["timestamp"] == "2026-05-08T08:00:00.000Z"  # the tenant's virtual now
    assert meta["path"] == "/battery/dev_missing"
    assert isinstance(meta["latencyMs"], int)
    assert reply.body["success"] is False
    assert "details" not in reply.body["error"]


async def test_tenants_are_isolated(sim: Api) -> None:
    first = await sim.tenant([foxess("dev_a")])
    second = await sim.tenant([foxess("dev_b")])
    accepted = await first.push("dev_a", "charge", start="1h")
    action_id = accepted.body["actionId"]
    assert (await second.call("GET", f"/actions/{action_id}")).code == "NOT_FOUND"
    assert (await second.call("POST", f"/actions/{action_id}/cancel")).code == "NOT_FOUND"
    assert (await second.call("GET", "/battery/dev_a")).code == "DEVICE_NOT_FOUND"
    assert (await second.push("dev_a", "idle")).code == "DEVICE_NOT_FOUND"
    listed = await second.call("GET", "/actions")
    assert listed.body["total"] == 0
    assert (await first.action(action_id))["state"] == "scheduled"


async def test_unknown_route_and_method(api: Api) -> None:
    # No operation documents these, so their bodies are held to the spec's envelope schema.
    envelope = load_public().schema_validator("/components/schemas/ErrorEnvelope")
    missing = await api.call("GET", "/nothing/here", check_spec=False)
    assert missing.status == 404 and missing.code == "NOT_FOUND"
    wrong = await api.call("DELETE", "/battery/dev_fox", check_spec=False)
    assert wrong.status == 405 and wrong.code == "METHOD_NOT_ALLOWED"
    assert "POST" in wrong.headers["Allow"]
    for reply in (missing, wrong):
        assert not list(envelope.iter_errors(reply.body)), reply.body


async def test_two_mebibyte_body_is_413(api: Api) -> None:
    big = io.BytesIO(b'{"action": {"command": "idle", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}}')
    reply = await api.call("POST", "/battery/dev_fox", data=big, headers={"Content-Type": "application/json"})
    assert reply.status == 413 and reply.code == "PAYLOAD_TOO_LARGE"
    # The server keeps serving.
    assert (await api.call("GET", "/battery/dev_fox")).status == 200


async def test_wrong_media_type_is_415(api: Api) -> None:
    reply = await api.call("POST", "/battery/dev_fox", data="command=idle", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 415 and reply.code == "UNSUPPORTED_MEDIA_TYPE"


@pytest.mark.parametrize(
    "raw",
    [b"{", b"[]", b"null", b'"text"', b'{"action": NaN}', b'{"action": {"command": "idle", "parameters": {"target": {"value": Infinity, "unit": "percent"}}}}',
     b"\xff\xfe", b'{"action": {}}', b'{"onConflict": "cancel_and_replace"}', b'{"action": {"command": 5}}',
     b'{"action": {"command": "idle"}, "extra": 1}', b'{"action": {"command": "idle", "priority": 1}}',
     b'{"action": {"command": "charge", "parameters": {"target": 90}}}',
     b'{"action": {"command": "charge", "parameters": {"target": {"value": "90", "unit": "percent"}}}}',
     b'{"action": {"command": "charge", "parameters": {"target": {"value": true, "unit": "percent"}}}}',
     b'{"action": {"command": "idle"}, "onConflict": "overwrite"}', b"[" * 5000 + b"]" * 5000, b""],
)
async def test_malformed_bodies_are_400_and_lose_nothing(api: Api, raw: bytes) -> None:
    reply = await api.call("POST", "/battery/dev_fox", data=raw, headers={"Content-Type": "application/json"})
    assert reply.status == 400, reply.body
    assert reply.code == "INVALID_REQUEST"
    assert reply.details["errors"] and all({"path", "message"} == set(e) for e in reply.details["errors"])
    listed = await api.call("GET", "/actions")
    assert listed.body["total"] == 0


async def test_bad_query_parameters(api: Api) -> None:
    for query in ("state=done", "limit=0", "limit=51", "limit=abc", "offset=-1"):
        reply = await api.call("GET", f"/actions?{query}")
        assert reply.status == 400 and reply.code == "INVALID_REQUEST", query


async def test_hundred_concurrent_pushes_accept_exactly_one(api: Api) -> None:
    replies = await asyncio.gather(*(api.push("dev_fox", "discharge", start="2h") for _ in range(100)))
    statuses = sorted(r.status for r in replies)
    assert statuses.count(202) == 1 and statuses.count(409) == 99
    winner = next(r for r in replies if r.status == 202).body["actionId"]
    assert all(r.details["conflictingActionIds"] == [winner] for r in replies if r.status == 409)
    listed = await api.call("GET", "/actions?limit=50")
    assert listed.body["total"] == 1 and listed.body["actions"][0]["id"] == winner


async def test_openapi_is_served(api: Api) -> None:
    async with api.client.get("/openapi.yaml") as resp:
        assert resp.status == 200
        assert (await resp.text()).startswith("openapi: 3.1")


@pytest.mark.parametrize(
    "number,echoed",
    # Past 64 bits the number is read as a float (as the decoder always read it), within them as an integer.
    [(b"100000000000000000000", 1e20), (b"9223372036854775807", 9223372036854775807)],
)
async def test_push_numbers_are_read_as_before(api: Api, number: bytes, echoed: float) -> None:
    raw = b'{"action": {"command": "charge", "parameters": {"target": {"value": ' + number + b', "unit": "percent"}}}}'
    reply = await api.call("POST", "/battery/dev_fox", data=raw, headers={"Content-Type": "application/json"})
    assert reply.status == 422 and reply.code == "PARAMETER_OUT_OF_RANGE"
    assert type(reply.details["value"]) is type(echoed) and reply.details["value"] == echoed


async def test_push_command_with_a_lone_surrogate_escape_is_read(api: Api) -> None:
    # The standard decoder takes a lone surrogate escape; the command is then unknown, not malformed.
    reply = await api.call("POST", "/battery/dev_fox", data=b'{"action": {"command": "\\ude00"}}', headers={"Content-Type": "application/json"})
    assert reply.status == 422 and reply.code == "UNSUPPORTED_MODE"
    assert reply.details["command"] == "\ude00"


async def test_a_push_reads_the_same_body_whole_or_arriving_after_its_headers(api: Api) -> None:
    # A small body is usually in hand (the stream at its end) when the handler starts and is taken
    # as it lies; one that is still arriving is awaited. Both are the same push.
    window = {"start": "2026-05-08T13:00:00+01:00", "end": "2026-05-08T14:00:00+01:00"}
    body = json.dumps({"action": {**PUSH["action"], **window}, "onConflict": "cancel_and_replace"}).encode()

    async def in_pieces() -> Any:
        yield body[:17]
        await asyncio.sleep(0.05)
        yield body[17:]

    records = []
    for data in (body, in_pieces()):
        reply = await api.call("POST", "/battery/dev_fox", data=data, headers={"Content-Type": "application/json"})
        assert reply.status == 202, reply.body
        records.append(await api.action(reply.body["actionId"]))
    assert [r["parameters"] for r in records] == [{"mode": "charge", "target": {"value": 90, "unit": "percent"}}] * 2
    chunked_big = io.BytesIO(b'{"action": {"command": "idle", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}}')
    reply = await api.call("POST", "/battery/dev_fox", data=chunked_big, headers={"Content-Type": "application/json"})
    assert reply.status == 413 and reply.code == "PAYLOAD_TOO_LARGE"
