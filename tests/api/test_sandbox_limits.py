"""A hosted sandbox's limits (`serve --admin-key/--tenant-ttl/--max-*/--rate-limit`), through HTTP.

Every reply goes through the spec-checking client, so each refusal is also shown to be documented.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from amps_sim.simulator.lifecycle import TenantLimits
from amps_sim.simulator.web.app import create_app
from amps_sim.simulator.web.expiry import expire_idle_tenants
from tests.conftest import NOW, Api, direct, foxess

ADMIN = "admin-secret-1"


class WallClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


async def _sandbox(aiohttp_client: Any, wall: WallClock | None = None, **limits: Any) -> tuple[Api, Any]:
    app = create_app(seed=7, wall_clock=wall or WallClock(), limits=TenantLimits(**limits))
    client = await aiohttp_client(app)
    return Api(client, None), app


async def _create(sim: Api, key: str | None, devices: list[dict[str, Any]] | None = None) -> Any:
    return await sim.call("POST", "/_sim/tenants", key=key, json_body={"clock": {"now": NOW}, "devices": devices or []})


async def test_only_the_admin_key_creates_tenants(aiohttp_client: Any) -> None:
    sim, _ = await _sandbox(aiohttp_client, admin_key=ADMIN)
    assert (await _create(sim, None)).code == "UNAUTHORIZED"
    created = await _create(sim, ADMIN)
    assert created.status == 201
    tenant_key = created.body["apiKey"]
    refused = await _create(sim, tenant_key)
    assert (refused.status, refused.code) == (403, "FORBIDDEN")
    # The admin key is no tenant: it opens neither API.
    assert (await sim.call("GET", "/battery", key=ADMIN)).code == "INVALID_API_KEY"
    # The tenant's own key works as ever.
    assert (await sim.call("GET", "/battery", key=tenant_key)).status == 200


async def test_without_an_admin_key_anyone_creates_tenants(aiohttp_client: Any) -> None:
    sim, _ = await _sandbox(aiohttp_client)
    assert (await _create(sim, None)).status == 201
    assert (await _create(sim, "whatever")).status == 201


async def test_the_control_api_shows_each_tenants_last_use(aiohttp_client: Any) -> None:
    wall = WallClock()
    sim, _ = await _sandbox(aiohttp_client, wall, admin_key=ADMIN, tenant_ttl=timedelta(hours=1))
    first = (await _create(sim, ADMIN)).body["apiKey"]
    wall.now += timedelta(minutes=5)
    second = (await _create(sim, ADMIN)).body["apiKey"]
    wall.now += timedelta(minutes=5)
    await sim.call("GET", "/battery", key=first)
    listing = await sim.call("GET", "/_sim/tenants", key=ADMIN)
    assert listing.status == 200
    views = {view["apiKey"]: view for view in listing.body["tenants"]}
    assert set(views) == {first, second}
    assert views[first]["createdAt"] == "2026-05-08T08:00:00.000Z"
    assert views[first]["lastUsedAt"] == "2026-05-08T08:10:00.000Z"
    assert views[first]["expiresAt"] == "2026-05-08T09:10:00.000Z"
    assert views[second]["lastUsedAt"] == "2026-05-08T08:05:00.000Z"
    # A tenant's key sees only its own tenant.
    own = await sim.call("GET", "/_sim/tenants", key=second)
    assert [view["apiKey"] for view in own.body["tenants"]] == [second]
    assert (await sim.call("GET", "/_sim/tenants", key=None)).code == "UNAUTHORIZED"


async def test_idle_tenants_expire_after_the_ttl(aiohttp_client: Any) -> None:
    wall = WallClock()
    sim, app = await _sandbox(aiohttp_client, wall, tenant_ttl=timedelta(minutes=30))
    idle = (await _create(sim, None, [direct()])).body["apiKey"]
    busy = (await _create(sim, None, [direct()])).body["apiKey"]
    for _ in range(3):
        wall.now += timedelta(minutes=20)
        assert (await sim.call("GET", "/battery", key=busy)).status == 200
        await expire_idle_tenants(app)
    assert (await sim.call("GET", "/battery", key=idle)).code == "INVALID_API_KEY"
    assert (await sim.call("GET", "/battery", key=busy)).status == 200


async def test_without_a_ttl_nothing_expires(aiohttp_client: Any) -> None:
    wall = WallClock()
    sim, app = await _sandbox(aiohttp_client, wall)
    key = (await _create(sim, None)).body["apiKey"]
    wall.now += timedelta(days=365)
    assert await expire_idle_tenants(app) == []
    assert (await sim.call("GET", "/battery", key=key)).status == 200


async def test_device_limit_refuses_the_device_that_crosses_it(aiohttp_client: Any) -> None:
    sim, _ = await _sandbox(aiohttp_client, max_devices=2)
    too_many = await _create(sim, None, [direct("a"), direct("b"), direct("c")])
    assert (too_many.status, too_many.code) == (403, "DEVICE_LIMIT_REACHED")
    assert too_many.details == {"limit": 2, "requested": 3}
    tenant = Api(sim.client, (await _create(sim, None, [direct("a")])).body["apiKey"])
    assert (await tenant.call("POST", "/_sim/devices", json_body=direct("b"))).status == 201
    third = await tenant.call("POST", "/_sim/devices", json_body=direct("c"))
    assert third.code == "DEVICE_LIMIT_REACHED"
    devices = await tenant.call("GET", "/_sim/devices")
    assert [d["id"] for d in devices.body["devices"]] == ["a", "b"]


async def test_action_limit_refuses_pushes_and_drops_nothing(aiohttp_client: Any) -> None:
    sim, _ = await _sandbox(aiohttp_client, max_actions=3)
    tenant = Api(sim.client, (await _create(sim, None, [foxess()])).body["apiKey"])
    accepted = []
    for hour in range(3):
        reply = await tenant.push("dev_fox", "charge", start=f"2026-05-08T1{hour}:00:00Z", on_conflict="queue_after",
                                  end=f"2026-05-08T1{hour}:30:00Z", parameters={"target": {"value": 80, "unit": "percent"}})
        assert reply.status == 202, reply.body
        accepted.append(reply.body["actionId"])
    refused = await tenant.push("dev_fox", "charge", on_conflict="queue_after", start="2026-05-08T18:00:00Z",
                                end="2026-05-08T18:30:00Z", parameters={"target": {"value": 80, "unit": "percent"}})
    assert (refused.status, refused.code) == (403, "ACTION_LIMIT_REACHED")
    listing = await tenant.call("GET", "/actions")
    assert sorted(a["id"] for a in listing.body["actions"]) == sorted(accepted)
    # A reset empties the tenant's history, so it may push again.
    assert (await tenant.call("POST", "/_sim/reset")).status == 200
    again = await tenant.push("dev_fox", "charge", parameters={"target": {"value": 80, "unit": "percent"}})
    assert again.status == 202, again.body


async def test_rate_limit_answers_429_with_retry_after(aiohttp_client: Any) -> None:
    sim, _ = await _sandbox(aiohttp_client, requests_per_second=0.5, burst=2)
    key = (await _create(sim, None)).body["apiKey"]
    other = (await _create(sim, None)).body["apiKey"]
    assert (await sim.call("GET", "/battery", key=key)).status == 200
    assert (await sim.call("GET", "/_sim/clock", key=key)).status == 200
    limited = await sim.call("POST", "/_sim/clock/advance", key=key, json_body={"by": "1h"})
    assert (limited.status, limited.code) == (429, "RATE_LIMIT_EXCEEDED")
    retry = int(limited.headers["Retry-After"])
    assert retry == limited.details["retryAfterSeconds"] and 1 <= retry <= 2
    # Refused at the door: the clock did not move. Another tenant has its own allowance.
    clock = await sim.call("GET", "/_sim/clock", key=other)
    assert clock.status == 200


@pytest.mark.parametrize("limits", [{}, {"max_devices": 1000, "max_actions": 1000}])
async def test_limits_off_or_roomy_change_nothing(aiohttp_client: Any, limits: dict[str, Any]) -> None:
    sim, _ = await _sandbox(aiohttp_client, **limits)
    tenant = Api(sim.client, (await _create(sim, None, [foxess()])).body["apiKey"])
    for _ in range(30):
        assert (await tenant.call("GET", "/battery")).status == 200
    assert (await tenant.push("dev_fox", "charge", parameters={"target": {"value": 80, "unit": "percent"}})).status == 202
