"""Webhook delivery as a partner's receiver sees it, judged by svix's own verifier."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

from aiohttp import web

from amps_sim.contracts.webhooks import WebhookReceiver, body_violations
from tests.conftest import Api, foxess
from tests.webhooks.conftest import Hooked, hook, svix_verifies

LADDER = [timedelta(0), timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
          timedelta(hours=5), timedelta(hours=10), timedelta(hours=10)]
FOREIGN_ROWS = [{"start": "00:30", "end": "04:29", "workMode": "ForceCharge", "fdPwr": 3000, "maxSoc": 95}]


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_push_completed_is_the_action_record_signed_svix_style(hooked: Hooked) -> None:
    api, receiver = hooked.api, hooked.receiver
    pushed = await api.push("dev_fox", "charge", parameters={"target": {"value": 90, "unit": "percent"}})
    assert pushed.status == 202
    done = await api.advance(by="10s")
    assert done["webhookAttempts"] == 1
    [got] = receiver.received
    assert svix_verifies(hooked.secret, got)
    record = await api.action(pushed.body["actionId"])
    assert record["state"] == "completed"
    assert got.payload == {**record, "deviceType": "battery"}
    assert got.event_type == "push.completed" and got.headers["x-amps-event-type"] == "push.completed"
    assert got.msg_id.startswith("msg_") and got.signature_count == 1
    assert body_violations("push.completed", got.payload) == []
    # The attempt goes out the tenant's delivery latency (3 s) after the transition.
    [message] = await hooked.deliveries()
    assert message["state"] == "delivered" and message["msgId"] == got.msg_id
    [attempt] = message["attempts"]
    assert instant(attempt["at"]) - instant(record["completedAt"]) == timedelta(seconds=3)
    assert attempt["statusCode"] == 204 and attempt["trigger"] == "scheduled"


async def test_nothing_is_sent_before_the_terminal_transition(hooked: Hooked) -> None:
    api = hooked.api
    pushed = await api.push("dev_fox", "charge", start="2026-05-08T09:00:00Z", end="2026-05-08T10:00:00Z")
    assert pushed.status == 202
    reply = await api.advance(by="1h0m5s")  # created, scheduled, fired, acknowledged: no event yet
    assert reply["webhookAttempts"] == 0 and hooked.receiver.received == []
    await api.advance(by="1m")
    assert [r.event_type for r in hooked.receiver.received] == ["push.completed"]


async def test_push_failed_carries_scheduler_active_as_the_record_does(sim: Api, receiver: WebhookReceiver) -> None:
    api = await sim.tenant([foxess(enabled=True, groups=FOREIGN_ROWS)])
    hooked = await hook(api, receiver)
    pushed = await api.push("dev_fox", "discharge", parameters={"target": {"value": 40, "unit": "percent"}})
    await api.advance(by="1m")
    [got] = receiver.received
    record = await api.action(pushed.body["actionId"])
    assert record["state"] == "failed" and record["errorCode"] == "SCHEDULER_ACTIVE"
    assert got.event_type == "push.failed" and got.payload == {**record, "deviceType": "battery"}
    assert got.payload["errorMessage"] and svix_verifies(hooked.secret, got)
    assert body_violations("push.failed", got.payload) == []
    # The schema tells the two events apart: a failed body is not a valid push.completed.
    assert body_violations("push.completed", got.payload) != []


async def test_a_cancelled_action_sends_nothing(hooked: Hooked) -> None:
    api = hooked.api
    pushed = await api.push("dev_fox", "charge", start="2026-05-08T09:00:00Z", end="2026-05-08T10:00:00Z")
    assert (await api.cancel(pushed.body["actionId"])).status == 200
    reply = await api.advance(by="1d")
    assert reply["webhookAttempts"] == 0 and hooked.receiver.received == []
    assert await hooked.deliveries() == []


async def test_a_receiver_answering_500_sees_every_retry_with_one_svix_id_at_the_backoff_instants(hooked: Hooked) -> None:
    api, receiver = hooked.api, hooked.receiver
    receiver.status = 500
    pushed = await api.push("dev_fox", "charge")
    reply = await api.advance(by="2d")  # the ladder spans 27 h 35 min 5 s
    assert reply["webhookAttempts"] == 8
    assert len(receiver.received) == 8
    assert len({r.msg_id for r in receiver.received}) == 1
    assert all(svix_verifies(hooked.secret, r) for r in receiver.received)
    assert len({r.body for r in receiver.received}) == 1
    [message] = await hooked.deliveries()
    assert message["state"] == "failed" and message["nextAttemptAt"] is None
    record = await api.action(pushed.body["actionId"])
    first = instant(record["completedAt"]) + timedelta(seconds=3)
    expected, at = [], first
    for wait in LADDER:
        at += wait
        expected.append(at)
    assert [instant(a["at"]) for a in message["attempts"]] == expected
    assert [a["statusCode"] for a in message["attempts"]] == [500] * 8


async def test_a_retry_that_succeeds_ends_the_ladder(hooked: Hooked) -> None:
    api, receiver = hooked.api, hooked.receiver
    receiver.answer = lambda got: 500 if len(receiver.received) < 2 else 200
    await api.push("dev_fox", "charge")
    reply = await api.advance(by="1h")
    assert reply["webhookAttempts"] == 3
    [message] = await hooked.deliveries()
    assert message["state"] == "delivered"
    assert [a["statusCode"] for a in message["attempts"]] == [500, 500, 200]
    steps = [instant(a["at"]) for a in message["attempts"]]
    assert [b - a for a, b in zip(steps, steps[1:], strict=False)] == [timedelta(seconds=5), timedelta(minutes=5)]
    assert (await api.advance(by="2d"))["webhookAttempts"] == 0


async def test_rotation_signs_with_both_secrets_for_the_overlap(hooked: Hooked) -> None:
    api, receiver = hooked.api, hooked.receiver
    old = hooked.secret
    rotated = await api.call("POST", f"/_sim/webhooks/{hooked.endpoint['id']}/rotate-secret")
    assert rotated.status == 200
    new = rotated.body["secret"]
    assert new != old and new.startswith("whsec_")
    await api.push("dev_fox", "charge")
    await api.advance(by="1m")
    [during] = receiver.received
    assert during.signature_count == 2
    assert svix_verifies(old, during) and svix_verifies(new, during)
    # After the overlap (24 h of the tenant's clock) only the new secret signs.
    await api.advance(by="1d")
    await api.push("dev_fox", "idle")
    await api.advance(by="1m")
    after = receiver.received[-1]
    assert after.signature_count == 1
    assert svix_verifies(new, after) and not svix_verifies(old, after)


async def test_a_secret_given_at_registration_and_rotation_is_used(sim: Api, receiver: WebhookReceiver) -> None:
    api = await sim.tenant([foxess()])
    chosen = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    hooked = await hook(api, receiver, secret=chosen)
    assert hooked.secret == chosen
    await api.push("dev_fox", "charge")
    await api.advance(by="1m")
    assert svix_verifies(chosen, receiver.received[-1])


async def test_svix_rejects_the_signature_and_timestamp_faults_and_the_retry_passes(hooked: Hooked) -> None:
    api, receiver = hooked.api, hooked.receiver
    await hooked.fault("bad_signature")
    await hooked.fault("stale_timestamp")
    await api.push("dev_fox", "charge")
    await api.advance(by="10m")  # attempts at 0 s, 5 s and 5 min 5 s
    bad, stale, good = receiver.received
    assert not svix_verifies(hooked.secret, bad) and bad.answered == 401
    assert not svix_verifies(hooked.secret, stale) and stale.answered == 401
    assert int(stale.headers["svix-timestamp"]) < int(good.headers["svix-timestamp"]) - 300
    assert svix_verifies(hooked.secret, good)
    assert bad.msg_id == stale.msg_id == good.msg_id
    [message] = await hooked.deliveries()
    assert [a["fault"] for a in message["attempts"]] == ["bad_signature", "stale_timestamp", None]


async def test_duplicate_sends_the_same_message_twice(hooked: Hooked) -> None:
    api, receiver = hooked.api, hooked.receiver
    await hooked.fault("duplicate")
    await api.push("dev_fox", "charge")
    reply = await api.advance(by="1m")
    assert reply["webhookAttempts"] == 2
    first, second = receiver.received
    assert first.msg_id == second.msg_id and first.body == second.body
    assert svix_verifies(hooked.secret, first) and svix_verifies(hooked.secret, second)


async def test_drop_attempt_is_never_sent_and_is_retried_after_5s(hooked: Hooked) -> None:
    api, receiver = hooked.api, hooked.receiver
    await hooked.fault("drop_attempt")
    await api.push("dev_fox", "charge")
    await api.advance(by="1m")
    [got] = receiver.received
    [message] = await hooked.deliveries()
    dropped, sent = message["attempts"]
    assert dropped["statusCode"] is None and "drop_attempt" in dropped["error"]
    assert instant(sent["at"]) - instant(dropped["at"]) == timedelta(seconds=5)
    assert sent["statusCode"] == 204 and got.msg_id == message["msgId"]


async def test_reorder_swaps_the_next_two_messages(sim: Api, receiver: WebhookReceiver) -> None:
    api = await sim.tenant([foxess("dev_a"), foxess("dev_b")])
    hooked = await hook(api, receiver)
    await hooked.fault("reorder")
    first = await api.push("dev_a", "charge")
    await api.advance(by="10s")
    assert receiver.received == []  # held until the next message
    second = await api.push("dev_b", "charge")
    await api.advance(by="10s")
    assert [r.payload["id"] for r in receiver.received] == [second.body["actionId"], first.body["actionId"]]


async def test_delay_holds_the_first_attempt_back(hooked: Hooked) -> None:
    api, receiver = hooked.api, hooked.receiver
    await hooked.fault("delay", by=600)
    await api.push("dev_fox", "charge")
    await api.advance(by="5m")
    assert receiver.received == []
    await api.advance(by="6m")
    assert len(receiver.received) == 1


async def test_device_events_follow_connectivity(sim: Api, receiver: WebhookReceiver) -> None:
    api = await sim.tenant([foxess()])
    hooked = await hook(api, receiver)
    added = await api.call("POST", "/_sim/devices", json_body=foxess("dev_new"))
    assert added.status == 201
    await api.fault("dev_fox", "offline", times=1)
    await api.advance(by="10s")
    await api.push("dev_fox", "charge")  # its first OEM call finds the device offline, then it is back
    await api.advance(by="1m")
    device_events = [(r.event_type, r.payload["deviceId"]) for r in receiver.received if r.event_type.startswith("device.")]
    assert device_events == [("device.connected", "dev_new"), ("device.disconnected", "dev_fox"),
                             ("device.reconnected", "dev_fox")]
    for got in receiver.received:
        assert svix_verifies(hooked.secret, got) and got.body_problems == []
    disconnected = receiver.received[1].payload
    assert disconnected == {"deviceId": "dev_fox", "deviceType": "battery", "timestamp": "2026-05-08T08:00:00.000Z"}


async def test_events_filter_and_latency_settings(sim: Api, receiver: WebhookReceiver) -> None:
    api = await sim.tenant([foxess(enabled=True, groups=FOREIGN_ROWS), foxess("dev_ok"),
                            foxess("dev_two", enabled=True, groups=FOREIGN_ROWS)])
    hooked = await hook(api, receiver, events=["push.failed"])
    assert hooked.endpoint["events"] == ["push.failed"]
    await hooked.settings(deliveryLatencySeconds=180)
    await api.push("dev_ok", "charge")
    await api.push("dev_fox", "discharge")
    await api.advance(by="2m")
    assert receiver.received == []
    await api.advance(by="2m")
    assert [r.event_type for r in receiver.received] == ["push.failed"]
    [message] = await hooked.deliveries()
    assert instant(message["attempts"][0]["at"]) - instant(message["createdAt"]) == timedelta(minutes=3)
    await hooked.settings(deliveryLatencySeconds=0)
    await api.push("dev_two", "discharge")
    await api.advance(by="1m")
    first, latest = await hooked.deliveries()
    assert latest["attempts"][0]["at"] == latest["createdAt"]


async def test_an_attempt_without_an_answer_times_out_and_is_retried(hooked: Hooked) -> None:
    api = hooked.api
    calls: list[float] = []

    async def slow_then_fine(request: web.Request) -> web.Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            await asyncio.sleep(2)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/slow", slow_then_fine)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/slow"
        reply = await api.call("POST", "/_sim/webhooks", json_body={"url": url, "events": ["push.completed"]})
        await hooked.settings(attemptTimeoutSeconds=0.2)
        await api.push("dev_fox", "charge")
        began = time.monotonic()
        await api.advance(by="1m")
        assert time.monotonic() - began < 1.5  # the advance waited for the timeout, not the answer
        log = await api.call("GET", f"/_sim/webhooks/{reply.body['id']}/deliveries")
        [message] = log.body["deliveries"]
        timed_out, retried = message["attempts"]
        assert timed_out["statusCode"] is None and timed_out["error"] == "no answer within 0.2 s"
        assert retried["statusCode"] == 200 and message["state"] == "delivered"
    finally:
        await runner.cleanup()


async def test_replay_sends_the_same_message_again_now(hooked: Hooked) -> None:
    api, receiver = hooked.api, hooked.receiver
    await api.push("dev_fox", "charge")
    await api.advance(by="1m")
    [message] = await hooked.deliveries()
    reply = await api.call("POST", f"/_sim/webhooks/{hooked.endpoint['id']}/deliveries/{message['msgId']}/replay")
    assert reply.status == 200
    assert [a["trigger"] for a in reply.body["attempts"]] == ["scheduled", "replay"]
    assert len(receiver.received) == 2 and receiver.received[1].msg_id == message["msgId"]
    assert svix_verifies(hooked.secret, receiver.received[1])
