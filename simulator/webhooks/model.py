"""Webhook state as plain data: endpoints, their secrets and faults, messages and attempts.

Everything here is a dataclass of strings, numbers and instants, so it can be stored and read
back; the clock handles that bring attempts due live in the hub, beside this data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from ..errors import format_instant

EventType = Literal["push.completed", "push.failed", "device.connected", "device.disconnected", "device.reconnected"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
MessageState = Literal["pending", "delivered", "failed"]
WebhookFaultKind = Literal["duplicate", "delay", "reorder", "drop_attempt", "bad_signature", "stale_timestamp"]
# Faults taken when a message is created (they move or hold it) and faults taken by one attempt.
MESSAGE_FAULTS: frozenset[str] = frozenset({"delay", "reorder"})
ATTEMPT_FAULTS: frozenset[str] = frozenset({"duplicate", "drop_attempt", "bad_signature", "stale_timestamp"})
assert set(get_args(WebhookFaultKind)) == MESSAGE_FAULTS | ATTEMPT_FAULTS

# svix's published schedule: the wait before each attempt, counted from the attempt before it.
# Eight attempts in all (27 h 35 min 5 s from the first to the last); then the message fails.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)


def _ts(moment: datetime | None) -> str | None:
    return format_instant(moment) if moment is not None else None


@dataclass
class Settings:
    """A tenant's delivery settings (seconds)."""

    # How long after the event the first attempt goes out: a few seconds, like the live platform.
    latency_s: float = 3.0
    attempt_timeout_s: float = 30.0
    # How long a rotated-out secret keeps signing beside the new one (svix keeps it 24 h).
    rotation_overlap_s: float = 86400.0

    def view(self) -> dict[str, Any]:
        return {
            "deliveryLatencySeconds": self.latency_s,
            "attemptTimeoutSeconds": self.attempt_timeout_s,
            "rotationOverlapSeconds": self.rotation_overlap_s,
        }


@dataclass
class Secret:
    value: str
    # None for the current secret; a rotated-out one signs until this instant (tenant's clock).
    retires_at: datetime | None = None


@dataclass
class WebhookFault:
    kind: str
    remaining: int
    delay_s: float | None = None

    def view(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": self.kind, "remaining": self.remaining}
        if self.delay_s is not None:
            body["by"] = self.delay_s
        return body


@dataclass
class Endpoint:
    id: str
    url: str
    events: list[str]
    secrets: list[Secret]
    created_at: datetime
    faults: list[WebhookFault] = field(default_factory=list)

    @property
    def secret(self) -> str:
        return self.secrets[0].value

    def signing_secrets(self, now: datetime) -> list[str]:
        return [s.value for s in self.secrets if s.retires_at is None or s.retires_at > now]

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "secret": self.secret,
            "createdAt": format_instant(self.created_at),
        }


@dataclass
class Attempt:
    number: int
    at: datetime
    # "scheduled" for the retry ladder, "replay" for a replay asked through the control API.
    trigger: str
    status_code: int | None = None
    error: str | None = None
    duration_ms: int = 0
    fault: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def view(self) -> dict[str, Any]:
        return {
            "attempt": self.number,
            "at": format_instant(self.at),
            "trigger": self.trigger,
            "statusCode": self.status_code,
            "error": self.error,
            "durationMs": self.duration_ms,
            "fault": self.fault,
        }


@dataclass
class Message:
    id: str
    endpoint_id: str
    event_type: str
    body: bytes
    created_at: datetime
    state: MessageState = "pending"
    attempts: list[Attempt] = field(default_factory=list)
    # How many steps of the retry ladder have been taken (a duplicate send is one step).
    ladder_steps: int = 0
    next_attempt_at: datetime | None = None
    # Held back by a `reorder` fault until the next message to the endpoint is queued.
    held: bool = False

    def view(self) -> dict[str, Any]:
        return {
            "msgId": self.id,
            "eventType": self.event_type,
            "createdAt": format_instant(self.created_at),
            "state": self.state,
            "held": self.held,
            "nextAttemptAt": _ts(self.next_attempt_at),
            "attempts": [a.view() for a in self.attempts],
            "body": json.loads(self.body),
        }
