"""The `/_sim` control API: shape a tenant's world. Scoped to the caller's key."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from aiohttp import web

from ..device import DeviceSpec
from ..errors import ApiError, format_instant
from ..foxess.cloud import OemKeyRequest
from ..validation import parse_model
from ..world.tenants import AdvanceRequest, FaultRequest, SchedulerWrite, TenantSpec, World
from .common import LIMITS, RATES, TENANTS, json_body, render, tenant
from .delivery import DELIVERY
from .specs import CONTROL_SPEC_PATH

routes = web.RouteTableDef()


@routes.post("/_sim/tenants")
async def create_tenant(request: web.Request) -> web.Response:
    # No body at all means the defaults. A body that is there but is not a JSON object -- `null`,
    # or only whitespace, which is not JSON -- is a malformed spec, not an absent one.
    limits = request.app[LIMITS]
    limits.check_admin(request.headers.get("x-api-key"))
    absent = not await request.read()
    body = await json_body(request, required=False)
    spec = parse_model(TenantSpec, {} if absent else body, "The tenant spec is not valid.")
    limits.check_devices(len(spec.devices))
    world = request.app[TENANTS].create(spec)
    return render({"apiKey": world.api_key}, status=201)


@routes.get("/_sim/tenants")
async def list_tenants(request: web.Request) -> web.Response:
    """The admin key sees every tenant; a tenant's key sees its own. Shows each one's last use."""
    tenants = request.app[TENANTS]
    limits = request.app[LIMITS]
    worlds = tenants.worlds() if limits.is_admin(request.headers.get("x-api-key")) else [tenant(request)]
    return render({"tenants": [_tenant_view(request, world) for world in worlds]})


def _tenant_view(request: web.Request, world: World) -> dict[str, Any]:
    tenants, ttl = request.app[TENANTS], request.app[LIMITS].tenant_ttl
    last_used = tenants.used_at(world.api_key) or world.created_at
    pinned = world.api_key in tenants.pinned
    return {
        "apiKey": world.api_key,
        "createdAt": format_instant(world.created_at),
        "lastUsedAt": format_instant(last_used),
        "expiresAt": format_instant(last_used + ttl) if ttl is not None and not pinned else None,
        "clock": world.clock_view(),
        "devices": len(world.devices),
        "actions": len(world.platform.actions),
    }


@routes.delete("/_sim/tenant")
async def delete_tenant(request: web.Request) -> web.Response:
    """The caller's own tenant goes, with its devices, actions and FoxESS keys; the key stops working."""
    world = tenant(request)
    await request.read()
    tenants = request.app[TENANTS]
    if world.api_key in tenants.pinned:
        # The world the server was started with, shared by everyone who knows its key, stays.
        raise ApiError("TENANT_PINNED", "This tenant is the server's own world and cannot be deleted; reset it instead.")
    tenants.delete(world.api_key)
    request.app[RATES].forget(world.api_key)
    return web.Response(status=204)


@routes.get("/_sim/health")
async def health(request: web.Request) -> web.Response:
    """200 while the server answers: what a readiness probe or the pytest plugin waits for."""
    return render({"status": "ok", "version": _version()})


def _version() -> str:
    try:
        return metadata.version("amps-sim")
    except metadata.PackageNotFoundError:  # imported from a checkout that was never installed
        return "0+unknown"


@routes.post("/_sim/oem-keys")
async def create_oem_key(request: web.Request) -> web.Response:
    """A FoxESS cloud key for the homeowner's app or a third party, scoped to some devices."""
    world = tenant(request)
    key_request = parse_model(OemKeyRequest, await json_body(request), "The OEM key request is not valid.")
    return render(request.app[TENANTS].issue_oem_key(world, key_request), status=201)


@routes.get("/_sim/clock")
async def get_clock(request: web.Request) -> web.Response:
    return render(tenant(request).clock_view())


@routes.post("/_sim/clock/advance")
async def advance_clock(request: web.Request) -> web.Response:
    world = tenant(request)
    advance = parse_model(AdvanceRequest, await json_body(request), "Give exactly one of 'by' or 'to'.")
    delivery = request.app[DELIVERY]
    async with delivery.lock(world):
        world.clock.sync()
        target = world.advance_target(advance)
        # Webhook attempts due on the way are sent at their instants before the reply.
        events, attempts = await delivery.run_until(world, target)
    return render({"now": format_instant(world.clock.now), "eventsProcessed": events, "webhookAttempts": attempts})


@routes.post("/_sim/reset")
async def reset(request: web.Request) -> web.Response:
    world = tenant(request)
    await request.read()
    world.reset()
    return render(world.clock_view())


@routes.get("/_sim/devices")
async def list_devices(request: web.Request) -> web.Response:
    return render({"devices": tenant(request).device_views()})


@routes.post("/_sim/devices")
async def create_device(request: web.Request) -> web.Response:
    world = tenant(request)
    request.app[LIMITS].check_devices(len(world.devices) + 1)
    spec = parse_model(DeviceSpec, await json_body(request), "The device spec is not valid.")
    return render(world.add_device(spec), status=201)


@routes.get("/_sim/devices/{deviceId}")
async def get_device(request: web.Request) -> web.Response:
    return render(tenant(request).device_view(request.match_info["deviceId"]))


@routes.delete("/_sim/devices/{deviceId}")
async def delete_device(request: web.Request) -> web.Response:
    tenant(request).remove_device(request.match_info["deviceId"])
    return web.Response(status=204)


@routes.put("/_sim/devices/{deviceId}/scheduler")
async def put_scheduler(request: web.Request) -> web.Response:
    world = tenant(request)
    device_id = request.match_info["deviceId"]
    world.platform.managed_device(device_id)  # an unknown device is 404 whatever the body says
    write = parse_model(SchedulerWrite, await json_body(request), "The scheduler write is not valid.")
    world.clock.sync()
    return render(world.write_scheduler(device_id, write))


@routes.post("/_sim/devices/{deviceId}/faults")
async def inject_fault(request: web.Request) -> web.Response:
    world = tenant(request)
    device_id = request.match_info["deviceId"]
    world.platform.managed_device(device_id)  # an unknown device is 404 whatever the body says
    fault = parse_model(FaultRequest, await json_body(request), "The fault request is not valid.")
    return render(world.inject_fault(device_id, fault))


@routes.get("/_sim/openapi.yaml")
async def control_openapi(request: web.Request) -> web.Response:
    return web.Response(body=CONTROL_SPEC_PATH.read_bytes(), content_type="application/yaml")

