"""The /_sim/webhooks control API: registration, refusals, the allow-list, resets, realtime tenants."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from amps_sim.contracts.webhooks import WebhookReceiver
from amps_sim.simulator.web.app import create_app
from amps_sim.simulator.webhooks.allow import AllowList
from tests.conftest import WALL, Api, foxess
from tests.webhooks.conftest import hook, svix_verifies


async def test_register_list_delete(sim: Api, receiver: WebhookReceiver) -> None:
    api = await sim.tenant([foxess()])
    hooked = await hook(api, receiver)
    assert hooked.endpoint["id"].startswith("ep_")
    assert hooked.endpoint["events"] == ["push.completed", "push.failed", "device.connected",
                                         "device.disconnected", "device.reconnected"]
    listed = await api.call("GET", "/_sim/webhooks")
    assert listed.body == {"webhooks": [hooked.endpoint]}
    # Another tenant sees none of it.
    other = await sim.tenant([])
    assert (await other.call("GET", "/_sim/webhooks")).body == {"webhooks": []}
    assert (await other.call("DELETE", f"/_sim/webhooks/{hooked.endpoint['id']}")).status == 404
    assert (await api.call("DELETE", f"/_sim/webhooks/{hooked.endpoint['id']}")).status == 204
    assert (await api.call("GET", "/_sim/webhooks")).body == {"webhooks": []}
    await api.push("dev_fox", "charge")
    assert (await api.advance(by="1m"))["webhookAttempts"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"url": "ftp://127.0.0.1/x"},
        {"url": "not a url"},
        {"url": "http://127.0.0.1/x", "events": []},
        {"url": "http://127.0.0.1/x", "events": ["push.created"]},
        {"url": "http://127.0.0.1/x", "secret": "not-a-secret"},
        {"url": "http://127.0.0.1/x", "secret": "whsec_c2hvcnQ="},
        {"url": "http://127.0.0.1/x", "secret": None},
        {"url": "http://127.0.0.1/x", "extra": 1},
    ],
)
async def test_bad_registrations_are_400(api: Api, body: dict[str, Any]) -> None:
    reply = await api.call("POST", "/_sim/webhooks", json_body=body)
    assert reply.status == 400 and reply.code == "INVALID_REQUEST", body


@pytest.mark.parametrize("url", ["http://user:pw@127.0.0.1/x", "http://127.0.0.1:99999/x", "http://", "http://[::1/x",
                                 "http://127.0.0.1:0/x", "http://127.0.0.1/a b"])
async def test_urls_that_cannot_be_used_are_422(api: Api, url: str) -> None:
    reply = await api.call("POST", "/_sim/webhooks", json_body={"url": url})
    assert reply.status == 422 and reply.code == "WEBHOOK_URL_REFUSED", url


async def test_unknown_ids_are_404(api: Api, receiver: WebhookReceiver) -> None:
    for method, path in [("DELETE", "/_sim/webhooks/ep_nope"), ("GET", "/_sim/webhooks/ep_nope/deliveries"),
                         ("POST", "/_sim/webhooks/ep_nope/rotate-secret"),
                         ("POST", "/_sim/webhooks/ep_nope/deliveries/msg_x/replay")]:
        reply = await api.call(method, path)
        assert reply.status == 404 and reply.code == "NOT_FOUND", path
    hooked = await hook(api, receiver)
    reply = await api.call("POST", f"/_sim/webhooks/{hooked.endpoint['id']}/deliveries/msg_nope/replay")
    assert reply.status == 404 and reply.code == "NOT_FOUND"


async def test_fault_and_settings_requests_are_validated(api: Api, receiver: WebhookReceiver) -> None:
    hooked = await hook(api, receiver)
    path = f"/_sim/webhooks/{hooked.endpoint['id']}/faults"
    faults: list[dict[str, object]] = [{"kind": "explode"}, {"kind": "delay"}, {"kind": "duplicate", "by": 5},
                                       {"kind": "duplicate", "times": 0}]
    for body in faults:
        reply = await api.call("POST", path, json_body=body)
        assert reply.status == 400 and reply.code == "INVALID_REQUEST", body
    reply = await api.call("POST", path, json_body={"kind": "delay", "by": 30, "times": 2})
    assert reply.body == {"endpointId": hooked.endpoint["id"], "faults": [{"kind": "delay", "remaining": 2, "by": 30}]}
    settings: list[dict[str, object]] = [{"deliveryLatencySeconds": -1}, {"attemptTimeoutSeconds": 0},
                                         {"rotationOverlapSeconds": "1d"}, {"x": 1}]
    for body in settings:
        reply = await api.call("PUT", "/_sim/webhook-settings", json_body=body)
        assert reply.status == 400 and reply.code == "INVALID_REQUEST", body
    rotate = f"/_sim/webhooks/{hooked.endpoint['id']}/rotate-secret"
    for raw in (b"null", b"[]", b" ", b'{"secret": 5}'):
        reply = await api.call("POST", rotate, data=raw, headers={"Content-Type": "application/json"})
        assert reply.status == 400 and reply.code == "INVALID_REQUEST", raw
    got = await api.call("GET", "/_sim/webhook-settings")
    assert got.body == {"deliveryLatencySeconds": 3.0, "attemptTimeoutSeconds": 30.0, "rotationOverlapSeconds": 86400.0}


async def test_at_most_20_endpoints(api: Api) -> None:
    for n in range(20):
        assert (await api.call("POST", "/_sim/webhooks", json_body={"url": f"http://127.0.0.1:9/{n}"})).status == 201
    reply = await api.call("POST", "/_sim/webhooks", json_body={"url": "http://127.0.0.1:9/x"})
    assert reply.status == 422 and reply.code == "WEBHOOK_LIMIT"


async def test_the_allow_list_refuses_urls_outside_it(aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app(seed=5, wall_clock=lambda: WALL, webhook_allow=AllowList.parse("public,hooks.example.com")))
    api = await Api(client, None).tenant([])
    for url in ("http://127.0.0.1:8080/_sim/reset", "http://localhost/x", "http://10.0.0.8/x", "http://169.254.169.254/latest",
                "http://[::1]/x", "http://[::ffff:127.0.0.1]/x", "http://no-such-host.invalid/x"):
        reply = await api.call("POST", "/_sim/webhooks", json_body={"url": url})
        assert reply.status == 422 and reply.code == "WEBHOOK_URL_REFUSED", url
        assert reply.details["errors"][0]["path"] == "url"
    allowed = await api.call("POST", "/_sim/webhooks", json_body={"url": "https://hooks.example.com/amps"})
    assert allowed.status == 201


async def test_default_allow_list_takes_loopback_and_private_not_public(api: Api) -> None:
    assert (await api.call("POST", "/_sim/webhooks", json_body={"url": "http://127.0.0.1:9/x"})).status == 201
    assert (await api.call("POST", "/_sim/webhooks", json_body={"url": "http://192.168.1.20/x"})).status == 201
    reply = await api.call("POST", "/_sim/webhooks", json_body={"url": "http://8.8.8.8/x"})
    assert reply.status == 422 and "--webhook-allow" in reply.body["error"]["message"]


async def test_reset_keeps_endpoints_and_drops_the_log(api: Api, receiver: WebhookReceiver) -> None:
    hooked = await hook(api, receiver)
    receiver.status = 500
    await api.push("dev_fox", "charge")
    await api.advance(by="1m")
    assert len(await hooked.deliveries()) == 1
    assert (await api.call("POST", "/_sim/reset")).status == 200
    assert await hooked.deliveries() == []
    before = len(receiver.received)
    await api.advance(by="2d")  # the old message's retries went with the old clock
    assert len(receiver.received) == before
    receiver.status = 204
    await api.push("dev_fox", "charge")
    await api.advance(by="1m")
    assert receiver.received[-1].event_type == "push.completed"


async def test_a_realtime_tenant_delivers_in_the_background(sim: Api, receiver: WebhookReceiver) -> None:
    reply = await sim.call("POST", "/_sim/tenants", key=None,
                           json_body={"clock": {"mode": "realtime", "speed": 100}, "devices": [foxess()]})
    api = Api(sim.client, reply.body["apiKey"])
    hooked = await hook(api, receiver)
    await hooked.settings(deliveryLatencySeconds=10)
    await api.push("dev_fox", "charge")
    # Completion after 3 s and delivery 10 s later, at 100x: about 0.13 s of real time; no request needed.
    for _ in range(100):
        if receiver.received:
            break
        await asyncio.sleep(0.05)
    [got] = receiver.received
    assert got.event_type == "push.completed" and svix_verifies(hooked.secret, got)


async def test_concurrent_advances_of_one_tenant_take_turns(api: Api, receiver: WebhookReceiver) -> None:
    hooked = await hook(api, receiver)
    receiver.status = 500
    await api.push("dev_fox", "charge")
    replies = await asyncio.gather(*(api.advance(by="10m") for _ in range(3)))
    # One message: attempts at +6 s, +11 s and +5 min 11 s fall in the first advance, none later.
    assert sorted(r["webhookAttempts"] for r in replies) == [0, 0, 3]
    assert [r["now"] for r in sorted(replies, key=lambda r: r["now"])] == [
        "2026-05-08T08:10:00.000Z", "2026-05-08T08:20:00.000Z", "2026-05-08T08:30:00.000Z"]
    [message] = await hooked.deliveries()
    assert len(message["attempts"]) == 3 and message["state"] == "pending"
