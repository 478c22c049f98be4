"""What the plugin needs from the control API: `DELETE /_sim/tenant` and `GET /_sim/health`.
Every reply is checked against the control spec (tests/conftest.py)."""

from __future__ import annotations

from typing import Any

from amps_sim.simulator.web.app import create_app
from amps_sim.simulator.web.common import TENANTS
from amps_sim.simulator.world.tenants import TenantSpec
from tests.conftest import WALL, Api, foxess


async def test_health_answers_without_a_key(sim: Api) -> None:
    reply = await sim.call("GET", "/_sim/health", key=None)
    assert reply.status == 200
    assert reply.body["status"] == "ok" and reply.body["version"]


async def test_a_tenant_deletes_itself_and_its_key_stops_working(sim: Api) -> None:
    gone = await sim.tenant([foxess("dev_a")])
    kept = await sim.tenant([foxess("dev_a")])
    pushed = await gone.push("dev_a", "charge", start="2h")
    assert pushed.status == 202, pushed.body
    oem = await gone.call("POST", "/_sim/oem-keys", json_body={"party": "homeowner_app", "devices": ["dev_a"]})
    assert oem.status == 201

    reply = await gone.call("DELETE", "/_sim/tenant")
    assert reply.status == 204

    for method, path in (("GET", "/_sim/clock"), ("GET", "/battery"), ("GET", "/_sim/devices/dev_a"), ("DELETE", "/_sim/tenant")):
        after = await gone.call(method, path)
        assert (after.status, after.code) == (401, "INVALID_API_KEY"), (method, path, after.body)
    # Its FoxESS cloud key went with it (nothing of a deleted tenant stays in memory).
    tenants = sim.client.server.app[TENANTS]
    assert tenants.world_for_oem_key(oem.body["apiKey"]) is None
    assert oem.body["apiKey"] not in tenants._oem_keys
    # Another tenant is untouched.
    assert (await kept.call("GET", "/_sim/devices/dev_a")).status == 200


async def test_deleting_needs_a_key(sim: Api) -> None:
    for key in (None, "", "sk_test_nobody"):
        reply = await sim.call("DELETE", "/_sim/tenant", key=key)
        assert reply.status == 401, (key, reply.body)


async def test_the_servers_own_world_cannot_be_deleted(aiohttp_client: Any) -> None:
    app = create_app(seed=1, wall_clock=lambda: WALL)
    app[TENANTS].create(TenantSpec(), "sk_live_abc123xyz", pinned=True)
    pinned = Api(await aiohttp_client(app), "sk_live_abc123xyz")
    reply = await pinned.call("DELETE", "/_sim/tenant")
    assert (reply.status, reply.code) == (409, "TENANT_PINNED")
    assert (await pinned.call("GET", "/_sim/clock")).status == 200
