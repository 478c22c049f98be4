"""Webhooks in scenarios: the runner's loopback receiver and the `webhook` step.

When a scenario uses webhooks, :class:`ScenarioWebhooks` starts a :class:`WebhookReceiver`,
registers it for the main tenant (`${webhook}`, `${webhook_secret}`), follows secret rotations
made by the scenario's own requests, judges `webhook` steps, and at the end holds every delivery
to its signature (unless a step expected it unverified) and to the spec's body schema. The
deliveries also go onto the report's timeline, read from the tenant's delivery log.
"""

from __future__ import annotations

import re
from typing import Any

from amps_sim.contracts.exchange import Exchange
from amps_sim.contracts.matching import lookup, match
from amps_sim.contracts.results import Failure, ScenarioResult, StepRecord
from amps_sim.contracts.scenario import WebhooksGiven
from amps_sim.contracts.steps import WebhookStep
from amps_sim.contracts.timeline import Marker, parse_instant
from amps_sim.contracts.transport import SpecCheckedClient
from amps_sim.contracts.variables import Variables
from amps_sim.contracts.webhooks import Received, WebhookReceiver

_ROTATE = re.compile(r"^/_sim/webhooks/[^/]+/rotate-secret$")


def _show(got: Received, nth: int) -> str:
    who = got.payload.get("id") or got.payload.get("deviceId") if isinstance(got.payload, dict) else None
    verdict = "verified" if got.verified else f"NOT verified ({got.signature_problem})"
    return (f"{got.event_type} {who or ''} {got.msg_id} attempt {nth}, {got.signature_count} signature(s), "
            f"answered {got.answered}, {verdict}")


class ScenarioWebhooks:
    def __init__(self, client: SpecCheckedClient, key: str, given: WebhooksGiven | None) -> None:
        self.client = client
        self.key = key
        self.given = given or WebhooksGiven()
        self.receiver = WebhookReceiver(status=self.given.answer)
        self.endpoint_id = ""
        self._window = 0
        self._accepted_unverified: set[int] = set()

    async def start(self, result: ScenarioResult, variables: Variables) -> bool:
        await self.receiver.start()
        body: dict[str, Any] = {"url": self.receiver.url}
        if self.given.events is not None:
            body["events"] = list(self.given.events)
        exchange = await self.client.send("POST", "/_sim/webhooks", key=self.key, purpose="setup", json_body=body)
        result.setup.append(exchange)
        endpoint_id, secret = lookup(exchange.reply_view(), "body.id"), lookup(exchange.reply_view(), "body.secret")
        if exchange.status != 201 or not isinstance(endpoint_id, str) or not isinstance(secret, str):
            result.failures.append(Failure("setup", f"could not register the scenario's webhook receiver: POST /_sim/webhooks answered {exchange.status}"))
            return False
        if self.given.latency is not None:
            settings = await self.client.send("PUT", "/_sim/webhook-settings", key=self.key, purpose="setup",
                                              json_body={"deliveryLatencySeconds": self.given.latency})
            result.setup.append(settings)
            if settings.status != 200:
                result.failures.append(Failure("setup", f"could not set the webhook latency: answered {settings.status}"))
                return False
        self.endpoint_id = endpoint_id
        self.receiver.secrets.append(secret)
        variables.values["webhook"] = endpoint_id
        variables.values["webhook_secret"] = secret
        return True

    def note(self, record: StepRecord) -> None:
        """A rotation made by the scenario's own request: the receiver verifies with the new secret too."""
        for exchange in record.exchanges:
            if exchange.method == "POST" and exchange.status == 200 and _ROTATE.fullmatch(exchange.bare_path):
                secret = lookup(exchange.reply_view(), "body.secret")
                if isinstance(secret, str):
                    self.receiver.secrets.insert(0, secret)

    def _nth(self, index: int) -> int:
        msg_id = self.receiver.received[index].msg_id
        return sum(1 for got in self.receiver.received[: index + 1] if got.msg_id == msg_id)

    async def step(self, step: WebhookStep, record: StepRecord, variables: Variables) -> None:
        spec = step.webhook

        def fail(message: str, details: list[str] | None = None) -> None:
            record.failures.append(Failure("expectation", message, step=record.index, line=record.line, details=details or []))

        if spec.answer is not None:
            self.receiver.status = spec.answer
        if spec.within is not None:
            self._window = len(self.receiver.received)
            exchange = await self.client.send("POST", "/_sim/clock/advance", key=self.key, purpose="step",
                                              json_body={"by": str(variables.resolve(spec.within))})
            record.exchanges.append(exchange)
            if exchange.error is not None or exchange.status != 200:
                fail(f"POST /_sim/clock/advance by {spec.within} answered {exchange.status or exchange.error}")
                return
        indices = list(range(self._window, len(self.receiver.received)))
        shown = [_show(self.receiver.received[i], self._nth(i)) for i in indices] or ["(nothing received)"]
        unverified = [i for i in indices if not self.receiver.received[i].verified]
        if spec.verified and unverified:
            got = self.receiver.received[unverified[0]]
            fail(f"a delivery did not verify: {got.signature_problem}", shown)
            return
        if not spec.verified:
            self._accepted_unverified.update(unverified)
        if not spec.expects:
            return
        expected_body = variables.resolve(spec.body) if spec.body is not None else None
        matched = []
        for i in indices:
            got = self.receiver.received[i]
            if got.verified != spec.verified or (spec.event is not None and got.event_type != spec.event):
                continue
            if spec.signatures is not None and got.signature_count != spec.signatures:
                continue
            if expected_body is not None and match(expected_body, got.payload, "body"):
                continue
            matched.append(i)
        what = " ".join(x for x in (spec.event or "delivery", "matching the body" if spec.body is not None else "") if x)
        if spec.count is not None and len(matched) != spec.count:
            fail(f"expected {spec.count} × {what}, received {len(matched)}", shown)
            return
        if spec.count is None and not matched:
            fail(f"expected a {what}, received none", shown)
            return
        if spec.attempt is not None:
            wrong = [i for i in matched if self._nth(i) != spec.attempt]
            if wrong:
                fail(f"expected attempt {spec.attempt} of its message, got attempt {self._nth(wrong[0])}", shown)

    async def finish(self, result: ScenarioResult) -> list[Exchange]:
        """Hold every delivery to its signature and the spec; put the deliveries on the timeline.

        Returns the exchanges it made, for the runner to hold to the spec.
        """
        try:
            for index, got in enumerate(self.receiver.received):
                if got.body_problems:
                    result.failures.append(Failure("spec", f"a {got.event_type or 'webhook'} delivery breaks the spec's webhooks section: "
                                                   f"{got.body_problems[0]}", details=got.body_problems))
                if not got.verified and index not in self._accepted_unverified:
                    result.failures.append(Failure("expectation", f"a {got.event_type} delivery ({got.msg_id}) did not verify: "
                                                   f"{got.signature_problem}"))
            if result.timeline is not None and self.endpoint_id:
                return await self._timeline(result)
            return []
        finally:
            await self.receiver.close()

    async def _timeline(self, result: ScenarioResult) -> list[Exchange]:
        assert result.timeline is not None
        exchange = await self.client.send("GET", f"/_sim/webhooks/{self.endpoint_id}/deliveries", key=self.key, purpose="record")
        result.setup.append(exchange)
        log = lookup(exchange.reply_view(), "body.deliveries")
        if not isinstance(log, list):
            return [exchange]
        for message in log:
            body = message.get("body") if isinstance(message, dict) else None
            device_id = body.get("deviceId") if isinstance(body, dict) else None
            lane = result.timeline.devices.get(device_id) if isinstance(device_id, str) else None
            if lane is None:
                continue
            for attempt in message.get("attempts", []):
                at = parse_instant(attempt.get("at"))
                if at is None:
                    continue
                outcome = attempt.get("statusCode") or "no answer"
                lane.markers.append(Marker(at, "webhook", f"{message.get('eventType')} #{attempt.get('attempt')} → {outcome}"))
        return [exchange]
