"""A tenant's webhook hub: endpoints, the message log, and attempts as events on its clock.

The hub never sends anything. When an attempt falls due on the clock it joins the ready queue;
the web layer takes it (:meth:`WebhookHub.take_ready`), asks for the request to make
(:meth:`WebhookHub.prepare`), sends it, and reports what happened (:meth:`WebhookHub.record`),
which schedules the next step of the retry ladder. A virtual clock halts at each ready attempt
(see :meth:`WebhookHub.has_ready` and ``Clock.advance_to``), so retries land in order on virtual time.
"""

from __future__ import annotations

import json
import random
import string
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Callable
from urllib.parse import urlsplit

from pydantic import Field, StrictStr, field_validator

from ..actions import Action
from ..clock import Clock, EventHandle
from ..errors import ApiError, format_instant
from ..validation import ClosedModel, JsonInt, NotNull
from . import signing
from .model import (
    ATTEMPT_FAULTS,
    EVENT_TYPES,
    MESSAGE_FAULTS,
    RETRY_SCHEDULE,
    Attempt,
    Endpoint,
    EventType,
    Message,
    Secret,
    Settings,
    WebhookFault,
    WebhookFaultKind,
)

MAX_ENDPOINTS = 20
# Messages kept per endpoint in the delivery log; the oldest finished ones go first.
LOG_LIMIT = 1000
MAX_URL_LENGTH = 2048
# A `stale_timestamp` fault dates the attempt this far back: twice svix's 5-minute tolerance.
STALE_BY = timedelta(minutes=10)
_ALNUM = string.ascii_letters + string.digits
USER_AGENT = "amps-sim-webhooks/1"


def url_refusal(url: str) -> str | None:
    """Why a webhook URL cannot be delivered to (before any allow-list); None when it can."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"the URL cannot be parsed ({exc})"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "the URL needs an http or https scheme and a host"
    if parts.username is not None or parts.password is not None:
        return "the URL must not carry credentials"
    if port == 0:
        return "port 0 cannot be connected to"
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        return "the URL contains whitespace or control characters"
    return None


def _check_secret(secret: str) -> str:
    signing.secret_key(secret)
    return secret


class EndpointRequest(ClosedModel):
    # Shape only (400 when wrong); whether the URL can be used is `url_refusal`'s question (422).
    url: StrictStr = Field(min_length=1, max_length=MAX_URL_LENGTH, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://")
    events: Annotated[list[EventType] | None, NotNull] = Field(default=None, min_length=1)
    secret: Annotated[StrictStr | None, NotNull] = None

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return _check_secret(value) if value is not None else None


class RotateRequest(ClosedModel):
    secret: Annotated[StrictStr | None, NotNull] = None

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return _check_secret(value) if value is not None else None


class SettingsRequest(ClosedModel):
    deliveryLatencySeconds: Annotated[float | None, NotNull] = Field(default=None, ge=0, le=86400)
    attemptTimeoutSeconds: Annotated[float | None, NotNull] = Field(default=None, ge=0.05, le=120)
    rotationOverlapSeconds: Annotated[float | None, NotNull] = Field(default=None, ge=0, le=7 * 86400)


class WebhookFaultRequest(ClosedModel):
    kind: WebhookFaultKind
    times: JsonInt = Field(default=1, ge=1, le=1000)
    # For `delay`: how many seconds (tenant's clock) the message's first attempt is held back.
    by: Annotated[float | None, NotNull] = Field(default=None, ge=0, le=400 * 86400)


@dataclass(frozen=True)
class Job:
    """An attempt that fell due: which message, why, and the instant it was due."""

    endpoint_id: str
    msg_id: str
    trigger: str
    due: datetime


@dataclass(frozen=True)
class Outgoing:
    """The HTTP request one attempt makes; `copies` is 0 when a fault drops it, 2 for a duplicate."""

    url: str
    body: bytes
    headers: dict[str, str]
    copies: int
    fault: str | None
    timeout_s: float


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookHub:
    """One tenant's webhooks. Endpoints and settings outlive a reset; messages do not."""

    def __init__(self, rng: random.Random, wall: Callable[[], datetime]) -> None:
        self.rng = rng
        self.wall = wall
        self.settings = Settings()
        self.endpoints: dict[str, Endpoint] = {}
        self.log: dict[str, dict[str, Message]] = {}
        self._clock: Clock | None = None
        self._ready: deque[Job] = deque()
        self._handles: dict[str, EventHandle] = {}
        self._held: dict[str, Message] = {}

    # ------------------------------------------------------------ wiring
    @property
    def clock(self) -> Clock:
        assert self._clock is not None, "attach the hub to a clock first"
        return self._clock

    def attach(self, clock: Clock) -> None:
        """Run on this clock from now on; messages and pending attempts of the old one are dropped."""
        self._clock = clock
        self._ready.clear()
        self._handles.clear()
        self._held.clear()
        self.log = {endpoint_id: {} for endpoint_id in self.endpoints}

    @property
    def active(self) -> bool:
        return bool(self.endpoints)

    # --------------------------------------------------------- endpoints
    def register(self, request: EndpointRequest) -> dict[str, Any]:
        if len(self.endpoints) >= MAX_ENDPOINTS:
            raise ApiError(
                "WEBHOOK_LIMIT",
                f"A tenant may have at most {MAX_ENDPOINTS} webhook endpoints; delete one first.",
                {"errors": [{"path": "(body)", "message": f"{len(self.endpoints)} endpoints exist"}]},
            )
        events: list[str] = list(dict.fromkeys(request.events)) if request.events else list(EVENT_TYPES)
        endpoint = Endpoint(
            id=self._new_id("ep_", self.endpoints),
            url=request.url,
            events=events,
            secrets=[Secret(request.secret or signing.new_secret(self.rng))],
            created_at=self.clock.now,
        )
        self.endpoints[endpoint.id] = endpoint
        self.log[endpoint.id] = {}
        return endpoint.view()

    def endpoint(self, endpoint_id: str) -> Endpoint:
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None:
            raise ApiError("NOT_FOUND", f"Webhook endpoint '{endpoint_id}' was not found.")
        return endpoint

    def list_view(self) -> dict[str, Any]:
        return {"webhooks": [e.view() for e in self.endpoints.values()]}

    def remove(self, endpoint_id: str) -> None:
        self.endpoint(endpoint_id)
        for msg_id in self.log.pop(endpoint_id, {}):
            handle = self._handles.pop(msg_id, None)
            if handle is not None:
                handle.cancel()
        self._held.pop(endpoint_id, None)
        del self.endpoints[endpoint_id]

    def rotate(self, endpoint_id: str, request: RotateRequest) -> dict[str, Any]:
        endpoint = self.endpoint(endpoint_id)
        now = self.clock.now
        retires = now + timedelta(seconds=self.settings.rotation_overlap_s)
        kept = [s for s in endpoint.secrets if s.retires_at is None or s.retires_at > now]
        for secret in kept:
            if secret.retires_at is None:
                secret.retires_at = retires
        endpoint.secrets = [Secret(request.secret or signing.new_secret(self.rng)), *kept]
        return endpoint.view()

    def update_settings(self, request: SettingsRequest) -> dict[str, Any]:
        if request.deliveryLatencySeconds is not None:
            self.settings.latency_s = request.deliveryLatencySeconds
        if request.attemptTimeoutSeconds is not None:
            self.settings.attempt_timeout_s = request.attemptTimeoutSeconds
        if request.rotationOverlapSeconds is not None:
            self.settings.rotation_overlap_s = request.rotationOverlapSeconds
        return self.settings.view()

    def add_fault(self, endpoint_id: str, request: WebhookFaultRequest) -> dict[str, Any]:
        endpoint = self.endpoint(endpoint_id)
        if (request.kind == "delay") != (request.by is not None):
            message = "'by' (seconds) is required for a delay" if request.kind == "delay" else "'by' goes only with kind 'delay'"
            raise ApiError("INVALID_REQUEST", f"The webhook fault request is not valid: {message}.",
                           {"errors": [{"path": "by", "message": message}]})
        endpoint.faults.append(WebhookFault(request.kind, request.times, request.by))
        return self.faults_view(endpoint)

    @staticmethod
    def faults_view(endpoint: Endpoint) -> dict[str, Any]:
        return {"endpointId": endpoint.id, "faults": [f.view() for f in endpoint.faults if f.remaining > 0]}

    # --------------------------------------------------------------- log
    def deliveries(self, endpoint_id: str) -> dict[str, Any]:
        self.endpoint(endpoint_id)
        messages = self.log.get(endpoint_id, {})
        return {"endpointId": endpoint_id, "deliveries": [m.view() for m in messages.values()]}

    def message(self, endpoint_id: str, msg_id: str) -> Message:
        self.endpoint(endpoint_id)
        message = self.log.get(endpoint_id, {}).get(msg_id)
        if message is None:
            raise ApiError("NOT_FOUND", f"Message '{msg_id}' was not found for endpoint '{endpoint_id}'.")
        return message

    def replay(self, endpoint_id: str, msg_id: str) -> dict[str, Any]:
        """One more attempt of a message, due now; the retry ladder, if running, is left as it is."""
        message = self.message(endpoint_id, msg_id)
        self.clock.schedule(self.clock.now, lambda: self._fire(endpoint_id, msg_id, "replay"))
        return message.view()

    # ------------------------------------------------------------ events
    def on_action_terminal(self, action: Action) -> None:
        if not self.endpoints:
            return  # nothing would be sent (see emit): the record is not even built
        if action.state in ("completed", "failed"):
            self.emit(f"push.{action.state}", {**action.record(), "deviceType": "battery"})

    def on_device_added(self, device_id: str) -> None:
        self._device_event("device.connected", device_id)

    def on_connectivity(self, device_id: str, offline: bool) -> None:
        self._device_event("device.disconnected" if offline else "device.reconnected", device_id)

    def _device_event(self, event_type: str, device_id: str) -> None:
        self.emit(event_type, {"deviceId": device_id, "deviceType": "battery", "timestamp": format_instant(self.clock.now)})

    def emit(self, event_type: str, payload: dict[str, Any]) -> None:
        """Queue a message to every endpoint that wants this event, at the tenant's current instant."""
        if not self.endpoints:
            return
        now = self.clock.now
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")
        for endpoint in self.endpoints.values():
            if event_type not in endpoint.events:
                continue
            messages = self.log.setdefault(endpoint.id, {})
            message = Message(self._new_id("msg_", messages), endpoint.id, event_type, body, now)
            messages[message.id] = message
            due = now + timedelta(seconds=self.settings.latency_s)
            fault = self._take_fault(endpoint, MESSAGE_FAULTS)
            held = self._held.pop(endpoint.id, None)
            if fault is not None and fault.kind == "delay" and fault.delay_s is not None:
                due += timedelta(seconds=fault.delay_s)
            if fault is not None and fault.kind == "reorder" and held is None:
                message.held = True
                self._held[endpoint.id] = message
            else:
                self._schedule(message, due)
            if held is not None:
                # Released behind the message that came after it: the two arrive swapped.
                held.held = False
                self._schedule(held, due)
            self._trim(messages)

    # ----------------------------------------------------------- attempts
    def has_ready(self) -> bool:
        return bool(self._ready)

    def take_ready(self) -> Job | None:
        return self._ready.popleft() if self._ready else None

    def prepare(self, job: Job) -> Outgoing | None:
        """The request this attempt makes (None if its endpoint or message is gone); takes a fault."""
        endpoint = self.endpoints.get(job.endpoint_id)
        message = self.log.get(job.endpoint_id, {}).get(job.msg_id)
        if endpoint is None or message is None:
            return None
        fault = self._take_fault(endpoint, ATTEMPT_FAULTS)
        kind = fault.kind if fault is not None else None
        moment = self.wall()
        if kind == "stale_timestamp":
            moment -= STALE_BY
        timestamp = int(moment.timestamp())
        if kind == "bad_signature":
            keys = [self.rng.randbytes(signing.SECRET_BYTES)]
        else:
            keys = [signing.secret_key(s) for s in endpoint.signing_secrets(self.clock.now)]
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "svix-id": message.id,
            "svix-timestamp": str(timestamp),
            "svix-signature": signing.signature_header(keys, message.id, timestamp, message.body),
            "x-amps-event-type": message.event_type,
        }
        copies = 0 if kind == "drop_attempt" else 2 if kind == "duplicate" else 1
        return Outgoing(endpoint.url, message.body, headers, copies, kind, self.settings.attempt_timeout_s)

    def record(self, job: Job, outgoing: Outgoing, results: list[SendResult]) -> None:
        """Log what the attempt did and take the next step: done, retry later, or fail."""
        message = self.log.get(job.endpoint_id, {}).get(job.msg_id)
        if message is None:
            return
        if not results:
            results = [SendResult(None, f"not sent ({outgoing.fault} fault)", 0)]
        for result in results:
            message.attempts.append(
                Attempt(len(message.attempts) + 1, job.due, job.trigger, result.status_code, result.error,
                        result.duration_ms, outgoing.fault)
            )
        delivered = any(a.succeeded for a in message.attempts[-len(results):])
        if job.trigger == "scheduled":
            message.ladder_steps += 1
            message.next_attempt_at = None
            self._handles.pop(message.id, None)
        if delivered:
            message.state = "delivered"
            handle = self._handles.pop(message.id, None)
            if handle is not None:
                handle.cancel()
            message.next_attempt_at = None
        elif job.trigger == "scheduled":
            if message.ladder_steps < len(RETRY_SCHEDULE):
                self._schedule(message, job.due + RETRY_SCHEDULE[message.ladder_steps])
            elif message.state == "pending":
                message.state = "failed"

    # ------------------------------------------------------------ helpers
    def _schedule(self, message: Message, due: datetime) -> None:
        endpoint_id, msg_id = message.endpoint_id, message.id
        handle = self.clock.schedule(due, lambda: self._fire(endpoint_id, msg_id, "scheduled"))
        self._handles[msg_id] = handle
        message.next_attempt_at = handle.due

    def _fire(self, endpoint_id: str, msg_id: str, trigger: str) -> None:
        if msg_id not in self.log.get(endpoint_id, {}):
            return
        self._ready.append(Job(endpoint_id, msg_id, trigger, self.clock.now))

    @staticmethod
    def _take_fault(endpoint: Endpoint, kinds: frozenset[str]) -> WebhookFault | None:
        for fault in endpoint.faults:
            if fault.kind in kinds and fault.remaining > 0:
                fault.remaining -= 1
                endpoint.faults = [f for f in endpoint.faults if f.remaining > 0]
                return fault
        return None

    def _trim(self, messages: dict[str, Message]) -> None:
        excess = len(messages) - LOG_LIMIT
        if excess <= 0:
            return
        finished = [m.id for m in messages.values() if m.state != "pending"][:excess]
        for msg_id in finished:
            del messages[msg_id]

    def _new_id(self, prefix: str, taken: dict[str, Any]) -> str:
        while True:
            candidate = prefix + "".join(self.rng.choice(_ALNUM) for _ in range(27))
            if candidate not in taken:
                return candidate
