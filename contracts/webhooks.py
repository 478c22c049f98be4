"""A webhook receiver for the harness: a loopback HTTP server that checks what it receives.

Every delivery is verified the way a partner's receiver does it (svix's scheme: HMAC-SHA256 over
`{svix-id}.{svix-timestamp}.{body}` with any of the endpoint's secrets, timestamp within 5
minutes of the receiver's clock) and its body is checked against the public spec's `webhooks`
section. The harness knows the simulator only over HTTP, so this is written against the wire
format, not the simulator's code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

from .spec import load_public

TOLERANCE_S = 5 * 60


def body_violations(event_type: str, body: Any) -> list[str]:
    """Where a delivered body breaks the public spec's schema for its event (empty when it fits)."""
    spec = load_public()
    if event_type not in (spec.document.get("webhooks") or {}):
        return [f"{event_type!r} is not an event the spec's webhooks section describes"]
    pointer = f"/webhooks/{event_type}/post/requestBody/content/application~1json/schema"
    problems = []
    for error in spec.schema_validator(pointer).iter_errors(body):
        # jsonschema names the place `absolute_path`, jsonschema-rs `instance_path`.
        where: Any = getattr(error, "absolute_path", None)
        if where is None:
            where = getattr(error, "instance_path", ())
        problems.append(f"{'/'.join(map(str, where)) or '(body)'}: {error.message}")
    return problems


def signature_problem(secrets: list[str], headers: dict[str, str], body: bytes, now: float) -> str | None:
    """Why a delivery does not verify against any of `secrets`; None when it does."""
    msg_id, stamp, signatures = headers.get("svix-id"), headers.get("svix-timestamp"), headers.get("svix-signature")
    if not (msg_id and stamp and signatures):
        return "svix-id, svix-timestamp and svix-signature are all required"
    if not stamp.isdigit():
        return f"svix-timestamp {stamp!r} is not unix seconds"
    if abs(int(stamp) - now) > TOLERANCE_S:
        return f"svix-timestamp {stamp} is {int(stamp) - now:+.0f} s from this receiver's clock (tolerance 300 s)"
    signed = f"{msg_id}.{stamp}.".encode() + body
    offered = []
    for entry in signatures.split(" "):
        version, _, value = entry.partition(",")
        if version == "v1":
            try:
                offered.append(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                continue
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        expected = hmac.new(key, signed, hashlib.sha256).digest()
        if any(hmac.compare_digest(expected, sig) for sig in offered):
            return None
    return "no v1 signature matches the endpoint's secret"


@dataclass
class Received:
    """One HTTP request the receiver got, and what it made of it."""

    event_type: str
    msg_id: str
    headers: dict[str, str]
    body: bytes
    payload: Any
    answered: int
    signature_problem: str | None
    body_problems: list[str]
    wall: float

    @property
    def verified(self) -> bool:
        return self.signature_problem is None

    @property
    def signature_count(self) -> int:
        return len(self.headers.get("svix-signature", "").split())


@dataclass
class WebhookReceiver:
    """Serves `POST /hooks` on loopback; answers `status` (or what `answer` decides) and records all."""

    status: int = 204
    secrets: list[str] = field(default_factory=list)
    answer: Callable[["Received"], int] | None = None
    clock: Callable[[], float] = time.time
    received: list[Received] = field(default_factory=list)
    # Called (on the receiver's loop) with each delivery once it is recorded, before it is answered.
    on_received: Callable[["Received"], None] | None = None
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self, host: str = "127.0.0.1") -> str:
        app = web.Application()
        app.router.add_post("/hooks", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{host}:{port}/hooks"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        event_type = headers.get("x-amps-event-type", "")
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = None
        problems = body_violations(event_type, payload) if payload is not None else ["body is not JSON"]
        record = Received(
            event_type=event_type,
            msg_id=headers.get("svix-id", ""),
            headers=headers,
            body=body,
            payload=payload,
            answered=self.status,
            signature_problem=signature_problem(self.secrets, headers, body, self.clock()),
            body_problems=problems,
            wall=self.clock(),
        )
        if self.answer is not None:
            record.answered = self.answer(record)
        elif not record.verified:
            record.answered = 401  # what a careful receiver does with a delivery it cannot verify
        self.received.append(record)
        if self.on_received is not None:
            self.on_received(record)
        return web.Response(status=record.answered)
