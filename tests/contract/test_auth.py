"""Keys and tenants, operation by operation, straight from the two specs.

Schemathesis's `ignored_auth` and `object_level_authorization` checks cover the same ground with
generated data (see test_schemathesis.py); these tests pin it down deterministically and cover
what they do not: writes (cancel, push, the control API) attempted across tenants, and every
operation either spec documents, so an operation added later is covered the day it lands.

Every call goes through the real app and every reply is checked against the specs
(tests/conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from amps_sim.contracts.spec import ResponseValidator, load_control, load_public
from tests.conftest import Api, foxess

PUSH_LATER = {"action": {"command": "charge", "start": "2h", "parameters": {"target": {"value": 90, "unit": "percent"}}}}


def _operations() -> list[tuple[str, str, str, dict[str, Any]]]:
    found = []
    for name, loader in (("public", load_public), ("control", load_control)):
        spec: ResponseValidator = loader()
        for method, template, operation in spec.operations():
            found.append((name, method, template, operation))
    return found


OPERATIONS = _operations()
SECURED = [(m, t, op) for _, m, t, op in OPERATIONS if op.get("security", [{"ApiKey": []}]) != []]
OPEN = [(m, t, op) for _, m, t, op in OPERATIONS if op.get("security", [{"ApiKey": []}]) == []]


def _example_body(operation: dict[str, Any]) -> Any:
    """The operation's first documented request example, or None when it takes no body."""
    content = (operation.get("requestBody") or {}).get("content", {}).get("application/json")
    if not content:
        return None
    examples = content.get("examples") or {}
    for example in examples.values():
        if "value" in example:
            return example["value"]
    return {}


# The owner's webhook endpoint and a message in its log, by the owner's action id.
_HOOKS: dict[str, tuple[str, str]] = {}


def _path(template: str, device_id: str, action_id: str) -> str:
    webhook_id, msg_id = _HOOKS.get(action_id, ("ep_none", "msg_none"))
    path = template.replace("{deviceId}", device_id).replace("{actionId}", action_id)
    return path.replace("{webhookId}", webhook_id).replace("{msgId}", msg_id)


async def _owner(sim: Api) -> tuple[Api, str]:
    """A tenant with a device `dev_owned` and a scheduled action on it; the action's id.

    It also has a webhook endpoint with one message queued (a device.connected).
    """
    owner = await sim.tenant([foxess("dev_owned")])
    pushed = await owner.call("POST", "/battery/dev_owned", json_body=PUSH_LATER)
    assert pushed.status == 202, pushed.body
    hook = await owner.call("POST", "/_sim/webhooks", json_body={"url": "http://127.0.0.1:9/hooks"})
    assert hook.status == 201, hook.body
    assert (await owner.call("POST", "/_sim/devices", json_body=foxess("dev_second"))).status == 201
    log = await owner.call("GET", f"/_sim/webhooks/{hook.body['id']}/deliveries")
    _HOOKS[pushed.body["actionId"]] = (hook.body["id"], log.body["deliveries"][0]["msgId"])
    return owner, pushed.body["actionId"]


async def _snapshot(owner: Api, action_id: str) -> tuple[Any, ...]:
    action = await owner.call("GET", f"/actions/{action_id}")
    actions = await owner.call("GET", "/actions")
    devices = await owner.call("GET", "/_sim/devices")
    clock = await owner.call("GET", "/_sim/clock")
    webhooks = await owner.call("GET", "/_sim/webhooks")
    settings = await owner.call("GET", "/_sim/webhook-settings")
    log = await owner.call("GET", f"/_sim/webhooks/{_HOOKS[action_id][0]}/deliveries")
    return action.body, actions.body, devices.body, clock.body, webhooks.body, settings.body, log.body


def test_the_specs_declare_the_key_scheme_everywhere_but_three_operations() -> None:
    assert {(m, t) for m, t, _ in OPEN} == {("GET", "/openapi.yaml"), ("POST", "/_sim/tenants"), ("GET", "/_sim/health")}
    assert len(SECURED) >= 16


@pytest.mark.parametrize(("method", "template", "operation"), SECURED, ids=[f"{m} {t}" for m, t, _ in SECURED])
@pytest.mark.parametrize(
    ("key", "code"),
    [
        (None, "UNAUTHORIZED"),
        ("", "UNAUTHORIZED"),
        ("sk_live_abc123xyz", "INVALID_API_KEY"),  # the docs' key names no tenant on this server
        ("sk_test_wrong", "INVALID_API_KEY"),
    ],
    ids=["missing", "empty", "docs-key-elsewhere", "unknown"],
)
async def test_a_missing_or_wrong_key_is_refused_and_changes_nothing(
    sim: Api, method: str, template: str, operation: dict[str, Any], key: str | None, code: str
) -> None:
    owner, action_id = await _owner(sim)
    before = await _snapshot(owner, action_id)
    # Real ids and a valid body: the refusal can only come from the key.
    reply = await owner.call(method, _path(template, "dev_owned", action_id), json_body=_example_body(operation), key=key)
    assert reply.status == 401 and reply.code == code, (method, template, reply.body)
    assert await _snapshot(owner, action_id) == before


@pytest.mark.parametrize(("method", "template", "operation"), SECURED, ids=[f"{m} {t}" for m, t, _ in SECURED])
async def test_a_key_close_to_a_real_one_is_refused(sim: Api, method: str, template: str, operation: dict[str, Any]) -> None:
    owner, action_id = await _owner(sim)
    path = _path(template, "dev_owned", action_id)
    real = owner.key
    assert real is not None
    for near in (real[:-1], real + "x", real.upper(), real.lower(), real.replace("sk_test_", "sk_live_")):
        if near == real:
            continue
        reply = await owner.call(method, path, json_body=_example_body(operation), key=near)
        assert reply.status == 401 and reply.code == "INVALID_API_KEY", (near, reply.body)


async def test_the_key_travels_only_in_the_header(sim: Api) -> None:
    owner, _ = await _owner(sim)
    assert owner.key is not None
    for attempt in (
        {"path": f"/battery?x-api-key={owner.key}"},
        {"path": f"/battery?api_key={owner.key}"},
        {"path": "/battery", "headers": {"Authorization": f"Bearer {owner.key}"}},
        {"path": "/battery", "headers": {"Cookie": f"x-api-key={owner.key}"}},
    ):
        reply = await owner.call("GET", attempt["path"], headers=attempt.get("headers"), key=None)
        assert reply.status == 401 and reply.code == "UNAUTHORIZED", attempt
    # Header names are case-insensitive (RFC 9110); the value is not.
    reply = await owner.call("GET", "/battery", headers={"X-API-KEY": owner.key}, key=None)
    assert reply.status == 200


@pytest.mark.parametrize(("method", "template", "operation"), OPEN, ids=[f"{m} {t}" for m, t, _ in OPEN])
async def test_the_open_operations_need_no_key(sim: Api, method: str, template: str, operation: dict[str, Any]) -> None:
    reply = await sim.call(method, template, json_body=_example_body(operation), key=None)
    assert 200 <= reply.status < 300, reply.body


# ---- one tenant against another ---------------------------------------------------------------

WITH_IDS = [(m, t, op) for m, t, op in SECURED if "{" in t]


@pytest.mark.parametrize(("method", "template", "operation"), WITH_IDS, ids=[f"{m} {t}" for m, t, _ in WITH_IDS])
async def test_another_tenant_cannot_reach_an_object_by_its_id(
    sim: Api, method: str, template: str, operation: dict[str, Any]
) -> None:
    owner, action_id = await _owner(sim)
    stranger = await sim.tenant([foxess("dev_stranger")])
    before = await _snapshot(owner, action_id)
    reply = await stranger.call(method, _path(template, "dev_owned", action_id), json_body=_example_body(operation))
    # Not found -- not "forbidden", which would confirm that the id exists somewhere.
    expected = "NOT_FOUND" if "{actionId}" in template or "{webhookId}" in template else "DEVICE_NOT_FOUND"
    assert reply.status == 404 and reply.code == expected, (method, template, reply.body)
    assert await _snapshot(owner, action_id) == before


async def test_another_tenant_cannot_cancel_and_the_owner_still_can(sim: Api) -> None:
    owner, action_id = await _owner(sim)
    stranger = await sim.tenant([foxess("dev_owned")])  # even with a device of the same id
    reply = await stranger.call("POST", f"/actions/{action_id}/cancel")
    assert reply.status == 404 and reply.code == "NOT_FOUND"
    assert (await owner.action(action_id))["state"] == "scheduled"
    reply = await owner.call("POST", f"/actions/{action_id}/cancel")
    assert reply.status == 200 and reply.body["state"] == "cancelled"


async def test_another_tenant_lists_nothing_of_the_owner(sim: Api) -> None:
    owner, action_id = await _owner(sim)
    stranger = await sim.tenant([foxess("dev_owned")])
    listed = await stranger.call("GET", "/actions")
    assert listed.status == 200 and listed.body["total"] == 0 and listed.body["actions"] == []
    filtered = await stranger.call("GET", "/actions?deviceId=dev_owned")
    assert filtered.body["total"] == 0
    # Its own device of the same id shows its own (empty) history, not the owner's action.
    device = await stranger.device("dev_owned")
    assert device["lastAction"] is None
    assert (await owner.device("dev_owned"))["lastAction"]["id"] == action_id


async def test_a_push_to_a_device_of_the_same_id_lands_in_the_callers_tenant_only(sim: Api) -> None:
    owner, action_id = await _owner(sim)
    stranger = await sim.tenant([foxess("dev_owned")])
    pushed = await stranger.call("POST", "/battery/dev_owned", json_body=PUSH_LATER)
    assert pushed.status == 202  # its own device holds nothing: no conflict with the owner's action
    assert (await owner.call("GET", f"/actions/{pushed.body['actionId']}")).code == "NOT_FOUND"
    assert (await owner.call("GET", "/actions")).body["total"] == 1
    assert (await owner.action(action_id))["state"] == "scheduled"
