"""The seed documents' curl flows, verbatim, against the embedded default world.

The default tenant answers to `sk_live_abc123xyz` and its clock starts at 2026-05-08T08:00Z, the
era of the docs' examples. Here it runs on a virtual clock so time moves only when a flow says so.
"""

from __future__ import annotations

from typing import Any

import pytest

from amps_sim.cli import load_world_file
from amps_sim.simulator.web.app import create_app
from amps_sim.simulator.web.common import TENANTS
from amps_sim.simulator.world.tenants import TenantSpec
from tests.conftest import WALL, Api

# The bodies exactly as the docs' curl commands send them.
SEED_004_SCHEDULE = """{
    "action": {
      "command": "charge",
      "start": "2026-05-09T22:00:00Z",
      "end": "2026-05-10T05:00:00Z",
      "parameters": {
        "target": { "value": 100, "unit": "percent" }
      }
    }
  }"""
SEED_004_REPLACE = """{
    "action": {
      "command": "discharge",
      "start": "2026-05-09T22:00:00Z",
      "end": "2026-05-10T05:00:00Z",
      "parameters": {
        "target": { "value": 30, "unit": "percent" }
      }
    },
    "onConflict": "cancel_and_replace"
  }"""
SEED_002_PLAIN = """{
    "action": {
      "command": "discharge",
      "parameters": {
        "target": { "value": 30, "unit": "percent" }
      }
    }
  }"""
SEED_002_REPLACE = """{
    "action": {
      "command": "discharge",
      "parameters": {
        "target": { "value": 30, "unit": "percent" }
      }
    },
    "onConflict": "cancel_and_replace"
  }"""
SEED_002_QUEUE = """{
    "action": {
      "command": "auto.balanced"
    },
    "onConflict": "queue_after"
  }"""
HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
async def docs(aiohttp_client: Any) -> Api:
    world = load_world_file(None)
    spec = TenantSpec.model_validate({**world.model_dump(exclude={"apiKey"}), "clock": {"mode": "virtual", "now": world.clock.now}})
    app = create_app(seed=7, wall_clock=lambda: WALL)
    app[TENANTS].create(spec, world.apiKey, pinned=True)
    return Api(await aiohttp_client(app), "sk_live_abc123xyz")


async def post(api: Api, path: str, raw: str | None = None) -> Any:
    return await api.call("POST", path, data=raw, headers=HEADERS if raw else None)


async def test_default_world_shows_each_interesting_state(docs: Api) -> None:
    listed = await docs.call("GET", "/battery")
    by_id = {d["id"]: d for d in listed.body["devices"]}
    assert by_id["dev_abc123"]["profile"] == "foxess" and by_id["dev_abc123"]["settings"]["scheduler_enabled"] is False
    assert by_id["dev_abc123"]["settings"]["timeZone"] == "Europe/London"
    assert by_id["dev_foreign_rows"]["settings"]["scheduler_enabled"] is True
    assert by_id["dev_direct"]["profile"] == "direct"
    assert len((await docs.truth("dev_full"))["scheduler"]["groups"]) == 8
    assert by_id["dev_zone_unknown"]["settings"]["timeZone"] is None


async def test_seed_004_cancel_flow(docs: Api) -> None:
    scheduled = await post(docs, "/battery/dev_abc123", SEED_004_SCHEDULE)
    assert scheduled.status == 202
    assert scheduled.body["state"] == "scheduled" and scheduled.body["start"] == "2026-05-09T22:00:00.000Z"
    assert scheduled.body["createdAt"] == "2026-05-08T08:00:00.000Z"
    first = scheduled.body["actionId"]
    await docs.advance(to="2026-05-08T11:32:00Z")
    cancelled = await post(docs, f"/actions/{first}/cancel")
    assert cancelled.status == 200
    assert {k: cancelled.body[k] for k in ("state", "result", "errorCode", "errorMessage", "acknowledgedAt", "completedAt")} == {
        "state": "cancelled", "result": None, "errorCode": None, "errorMessage": None, "acknowledgedAt": None, "completedAt": None}
    assert cancelled.body["updatedAt"] == "2026-05-08T11:32:00.000Z"
    assert cancelled.body["parameters"] == {"mode": "charge", "target": {"value": 100, "unit": "percent"}}

    # Pattern B: schedule again, then replace it in one push.
    again = await post(docs, "/battery/dev_abc123", SEED_004_SCHEDULE)
    replaced = await post(docs, "/battery/dev_abc123", SEED_004_REPLACE)
    assert replaced.status == 202 and replaced.body["state"] == "scheduled"
    assert replaced.body["start"] == "2026-05-09T22:00:00.000Z"
    assert (await docs.action(again.body["actionId"]))["state"] == "cancelled"

    # Once it is in flight, neither cancel nor cancel_and_replace can touch it.
    await docs.advance(to="2026-05-09T22:00:00Z")
    in_flight = await post(docs, f"/actions/{replaced.body['actionId']}/cancel")
    assert in_flight.status == 409 and in_flight.code == "ACTION_NOT_CANCELLABLE"
    assert in_flight.body["error"]["message"] == "Action in state 'acknowledged' cannot be cancelled"
    refused = await post(docs, "/battery/dev_abc123", SEED_002_REPLACE)
    assert refused.status == 409 and refused.code == "CONFLICT"
    assert refused.details["conflictingActionIds"] == [replaced.body["actionId"]] and "strategies" not in refused.details
    await docs.advance(by="3s")
    assert (await docs.action(replaced.body["actionId"]))["state"] == "completed"


async def test_seed_002_conflict_flow(docs: Api) -> None:
    booked = await post(docs, "/battery/dev_abc123", SEED_004_SCHEDULE)
    conflict = await post(docs, "/battery/dev_abc123", SEED_002_PLAIN)
    assert conflict.status == 409 and conflict.code == "CONFLICT"
    assert conflict.details["conflictingActionIds"] == [booked.body["actionId"]]
    assert conflict.details["strategies"] == ["cancel_and_replace", "queue_after"]

    # queue_after: deferred to the booked window's end.
    queued = await post(docs, "/battery/dev_abc123", SEED_002_QUEUE)
    assert queued.status == 202 and queued.body["state"] == "scheduled"
    assert queued.body["start"] == "2026-05-10T05:00:00.000Z"
    await post(docs, f"/actions/{queued.body['actionId']}/cancel")

    await docs.advance(by="1s")
    replaced = await post(docs, "/battery/dev_abc123", SEED_002_REPLACE)
    assert replaced.status == 202 and replaced.body["state"] == "acknowledged"
    follow_up = await docs.action(booked.body["actionId"])
    assert follow_up["state"] == "cancelled" and follow_up["updatedAt"] == "2026-05-08T08:00:01.000Z"


async def test_seed_002_scheduler_active_flow(docs: Api) -> None:
    body = '{"action": {"command": "charge", "parameters": {"target": {"value": 95, "unit": "percent"}}}}'
    await docs.advance(to="2026-05-08T12:10:00Z")
    pushed = await post(docs, "/battery/dev_foreign_rows", body)
    assert pushed.status == 202
    await docs.advance(by="32s")
    failed = await docs.action(pushed.body["actionId"])
    assert {k: failed[k] for k in ("state", "result", "errorCode", "errorMessage", "createdAt", "updatedAt", "acknowledgedAt", "completedAt")} == {
        "state": "failed", "result": None, "errorCode": "SCHEDULER_ACTIVE",
        "errorMessage": "Native scheduler is active; clear it before issuing a direct command.",
        "createdAt": "2026-05-08T12:10:00.000Z", "updatedAt": "2026-05-08T12:10:32.000Z",
        "acknowledgedAt": "2026-05-08T12:10:01.000Z", "completedAt": "2026-05-08T12:10:32.000Z"}
    again = await post(docs, "/battery/dev_foreign_rows", body[:-1] + ', "onConflict": "cancel_and_replace"}')
    assert again.status == 202
    await docs.advance(by="3s")
    assert (await docs.action(again.body["actionId"]))["state"] == "completed"
    assert (await docs.device("dev_foreign_rows"))["settings"]["scheduler_enabled"] is False


async def test_unknown_zone_device_refuses_docs_z_window(docs: Api) -> None:
    reply = await post(docs, "/battery/dev_zone_unknown", SEED_004_SCHEDULE)
    assert reply.status == 422 and reply.code == "INVALID_TIME_WINDOW" and reply.details["reason"] == "zero_utc_offset"


async def test_full_device(docs: Api) -> None:
    # The docs' overnight window overlaps three foreign rows: refused as such, merged under cancel_and_replace.
    overlap = await post(docs, "/battery/dev_full", SEED_004_SCHEDULE)
    assert overlap.status == 409 and overlap.code == "SCHEDULER_ACTIVE"
    assert [g["start"] for g in overlap.details["foreignGroups"]] == ["00:00", "02:00", "04:00"]
    # A free afternoon hour still needs a ninth slot.
    full = await docs.push("dev_full", "charge", start="2026-05-09T15:00:00Z", end="2026-05-09T16:00:00Z")
    assert full.status == 409 and full.code == "SCHEDULER_FULL"
    assert full.details == {"existingGroupCount": 8, "maxGroupCount": 8, "requiredGroupCount": 9}
