"""The OpenAPI links the stateful phase walks, followed by hand against the real app.

Schemathesis's stateful phase chains operations through the `links` of openapi.yaml: push ->
read the action -> cancel it, and list the batteries -> read one -> push to it. These tests hold
the links to the flows they promise by resolving each link's runtime expressions the way a
client would and making the next call with the result.
"""

from __future__ import annotations

from typing import Any

import pytest

from amps_sim.contracts.pointer import resolve
from amps_sim.contracts.spec import load_control, load_public
from tests.conftest import Api, foxess

PUSH_LATER = {"action": {"command": "charge", "start": "2h", "parameters": {"target": {"value": 90, "unit": "percent"}}}}


def _operation(document: dict[str, Any], operation_id: str) -> tuple[str, str, dict[str, Any]]:
    for template, item in document["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                return method.upper(), template, operation
    raise KeyError(operation_id)


def _link(document: dict[str, Any], source: str, status: str, target: str) -> dict[str, Any]:
    _, _, operation = _operation(document, source)
    links = operation["responses"][status].get("links", {})
    found = [link for link in links.values() if link["operationId"] == target]
    assert found, f"{source} {status} has no link to {target}"
    return found[0]


def _pointer(body: Any, pointer: str) -> Any:
    return resolve(body, pointer)


def _evaluate(expression: str, *, request_path: dict[str, str], response: Any) -> Any:
    if expression.startswith("$response.body#"):
        return _pointer(response, expression.split("#", 1)[1])
    if expression.startswith("$request.path."):
        return request_path[expression.removeprefix("$request.path.")]
    raise AssertionError(f"unexpected runtime expression {expression}")


async def _follow(api: Api, document: dict[str, Any], link: dict[str, Any], *, request_path: dict[str, str],
                  response: Any, body: Any = None) -> tuple[Any, dict[str, str]]:
    method, template, _ = _operation(document, link["operationId"])
    path_values: dict[str, str] = {}
    query: list[str] = []
    for name, expression in link["parameters"].items():
        value = _evaluate(expression, request_path=request_path, response=response)
        location, _, bare = name.rpartition(".")
        if location == "query":
            query.append(f"{bare}={value}")
        else:
            path_values[bare] = value
            template = template.replace("{" + bare + "}", value)
    path = template + ("?" + "&".join(query) if query else "")
    reply = await api.call(method, path, json_body=body)
    return reply, path_values


async def test_push_then_read_then_cancel(api: Api) -> None:
    document = load_public().document
    pushed = await api.call("POST", "/battery/dev_fox", json_body=PUSH_LATER)
    assert pushed.status == 202
    read, _ = await _follow(api, document, _link(document, "pushBatteryAction", "202", "getAction"),
                            request_path={"deviceId": "dev_fox"}, response=pushed.body)
    assert read.status == 200 and read.body["state"] == "scheduled"
    cancelled, _ = await _follow(api, document, _link(document, "getAction", "200", "cancelAction"),
                                 request_path={"actionId": read.body["id"]}, response=read.body)
    assert cancelled.status == 200 and cancelled.body["state"] == "cancelled"
    again, _ = await _follow(api, document, _link(document, "cancelAction", "200", "getAction"),
                             request_path={"actionId": read.body["id"]}, response=cancelled.body)
    assert again.status == 200 and again.body["state"] == "cancelled"
    direct, _ = await _follow(api, document, _link(document, "pushBatteryAction", "202", "cancelAction"),
                              request_path={"deviceId": "dev_fox"}, response=pushed.body)
    assert direct.status == 409 and direct.code == "ACTION_NOT_CANCELLABLE"  # already cancelled


async def test_list_then_read_then_push(sim: Api) -> None:
    tenant = await sim.tenant([foxess("dev_first"), foxess("dev_second")])
    document = load_public().document
    listed = await tenant.call("GET", "/battery")
    read, values = await _follow(tenant, document, _link(document, "listBatteries", "200", "getBattery"),
                                 request_path={}, response=listed.body)
    assert read.status == 200 and read.body["id"] == values["deviceId"] == "dev_first"
    pushed, _ = await _follow(tenant, document, _link(document, "getBattery", "200", "pushBatteryAction"),
                              request_path=values, response=read.body, body=PUSH_LATER)
    assert pushed.status == 202
    history, _ = await _follow(tenant, document, _link(document, "getBattery", "200", "listActions"),
                               request_path=values, response=read.body)
    assert [a["id"] for a in history.body["actions"]] == [pushed.body["actionId"]]
    target, _ = await _follow(tenant, document, _link(document, "pushBatteryAction", "202", "getBattery"),
                              request_path=values, response=pushed.body)
    assert target.body["lastAction"]["id"] == pushed.body["actionId"]


@pytest.mark.parametrize("target", ["getSimDevice", "putSimScheduler", "injectFault", "deleteSimDevice"])
async def test_control_device_links_reach_the_created_device(api: Api, target: str) -> None:
    document = load_control().document
    created = await api.call("POST", "/_sim/devices", json_body={"id": "dev_linked"})
    assert created.status == 201
    body = {"getSimDevice": None, "putSimScheduler": {"groups": []}, "injectFault": {"kind": "transient"},
            "deleteSimDevice": None}[target]
    reply, values = await _follow(api, document, _link(document, "createSimDevice", "201", target),
                                  request_path={}, response=created.body, body=body)
    assert values == {"deviceId": "dev_linked"} and reply.status in (200, 204)
