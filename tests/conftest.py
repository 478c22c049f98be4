"""Shared fixtures: the real app factory behind a real HTTP client, every reply checked against the spec."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pytest

from amps_sim.contracts.spec import load_control, load_public
from amps_sim.simulator.web.app import create_app

WALL = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)
NOW = "2026-05-08T08:00:00Z"


def spec_violations(method: str, path: str, status: int, raw: bytes, content_type: str | None) -> list[Any]:
    validator = load_control() if path.startswith("/_sim") else load_public()
    return validator.validate(method, path, status, raw, content_type)


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any

    @property
    def code(self) -> str | None:
        return self.body.get("error", {}).get("code") if isinstance(self.body, dict) else None

    @property
    def details(self) -> dict[str, Any]:
        return self.body.get("error", {}).get("details", {}) if isinstance(self.body, dict) else {}


class Api:
    """A tenant-scoped client. Every reply is validated against openapi.yaml or the control spec."""

    def __init__(self, client: Any, key: str | None) -> None:
        self.client = client
        self.key = key

    async def call(self, method: str, path: str, *, json_body: Any = None, data: Any = None,
                   headers: dict[str, str] | None = None, key: Any = "default", check_spec: bool = True) -> Reply:
        sent = dict(headers or {})
        use_key = self.key if key == "default" else key
        if use_key is not None:
            sent["x-api-key"] = use_key
        if json_body is not None:
            data = json.dumps(json_body)
            sent.setdefault("Content-Type", "application/json")
        async with self.client.request(method, path, data=data, headers=sent) as resp:
            raw = await resp.read()
            content_type = resp.headers.get("Content-Type")
            assert resp.status < 500, f"{method} {path} answered {resp.status}: {raw[:500]!r}"
            if check_spec:
                problems = spec_violations(method, path.split("?", 1)[0], resp.status, raw, content_type)
                assert not problems, f"{method} {path} -> {resp.status} breaks the spec: {problems}\n{raw[:800]!r}"
            body: Any = None
            if raw and content_type and "json" in content_type:
                body = json.loads(raw)
            return Reply(resp.status, body, resp.headers)

    async def tenant(self, devices: list[dict[str, Any]] | None = None, now: str = NOW, mode: str = "virtual") -> "Api":
        reply = await self.call("POST", "/_sim/tenants", key=None,
                                json_body={"clock": {"mode": mode, "now": now}, "devices": devices or []})
        assert reply.status == 201, reply.body
        return Api(self.client, reply.body["apiKey"])

    async def push(self, device_id: str, command: str, *, on_conflict: str | None = None, **action: Any) -> Reply:
        body: dict[str, Any] = {"action": {"command": command, **action}}
        if on_conflict is not None:
            body["onConflict"] = on_conflict
        return await self.call("POST", f"/battery/{device_id}", json_body=body)

    async def action(self, action_id: str) -> dict[str, Any]:
        reply = await self.call("GET", f"/actions/{action_id}")
        assert reply.status == 200, reply.body
        return reply.body

    async def cancel(self, action_id: str) -> Reply:
        return await self.call("POST", f"/actions/{action_id}/cancel")

    async def advance(self, by: str | None = None, to: str | None = None) -> dict[str, Any]:
        reply = await self.call("POST", "/_sim/clock/advance", json_body={"by": by} if by else {"to": to})
        assert reply.status == 200, reply.body
        return reply.body

    async def device(self, device_id: str) -> dict[str, Any]:
        reply = await self.call("GET", f"/battery/{device_id}")
        assert reply.status == 200, reply.body
        return reply.body

    async def truth(self, device_id: str) -> dict[str, Any]:
        reply = await self.call("GET", f"/_sim/devices/{device_id}")
        assert reply.status == 200, reply.body
        return reply.body

    async def write_rows(self, device_id: str, groups: list[dict[str, Any]], enabled: bool | None = None,
                         owner: str | None = None) -> Reply:
        body: dict[str, Any] = {"groups": groups}
        if enabled is not None:
            body["enabled"] = enabled
        if owner is not None:
            body["owner"] = owner
        return await self.call("PUT", f"/_sim/devices/{device_id}/scheduler", json_body=body)

    async def fault(self, device_id: str, kind: str, times: int = 1) -> Reply:
        return await self.call("POST", f"/_sim/devices/{device_id}/faults", json_body={"kind": kind, "times": times})


def foxess(device_id: str = "dev_fox", *, zone: str = "Europe/London", known: bool = True, enabled: bool = False,
           groups: list[dict[str, Any]] | None = None, soc: float = 50, max_groups: int | None = None,
           profile: str = "foxess") -> dict[str, Any]:
    scheduler: dict[str, Any] = {"enabled": enabled, "groups": groups or []}
    if max_groups is not None:
        scheduler["maxGroupCount"] = max_groups
    return {"id": device_id, "profile": profile, "timeZone": zone, "timeZoneKnown": known,
            "battery": {"capacityKwh": 10.0, "soc": soc, "maxPowerKw": 5.0}, "scheduler": scheduler}


def direct(device_id: str = "dev_direct", *, zone: str = "Europe/Berlin", soc: float = 50) -> dict[str, Any]:
    return {"id": device_id, "profile": "direct", "timeZone": zone, "timeZoneKnown": True,
            "battery": {"capacityKwh": 10.0, "soc": soc, "maxPowerKw": 5.0}}


@pytest.fixture
async def sim(aiohttp_client: Any) -> Api:
    """A bare server (no default tenant); tests create their own tenants through the control API."""
    app = create_app(seed=1234, wall_clock=lambda: WALL)
    client = await aiohttp_client(app)
    return Api(client, None)


@pytest.fixture
async def api(sim: Api) -> Api:
    """A fresh virtual-clock tenant at 2026-05-08T08:00Z with one FoxESS device (London, zone known)."""
    return await sim.tenant([foxess()])
