"""`/_sim/webhooks...`: a tenant's webhook endpoints, their delivery log, replays and faults."""

from __future__ import annotations

from aiohttp import web

from ..validation import parse_model
from ..webhooks.hub import EndpointRequest, RotateRequest, SettingsRequest, WebhookFaultRequest
from .common import json_body, render, tenant
from .delivery import DELIVERY

routes = web.RouteTableDef()


@routes.post("/_sim/webhooks")
async def register(request: web.Request) -> web.Response:
    world = tenant(request)
    body = await json_body(request)
    wanted = parse_model(EndpointRequest, body, "The webhook endpoint is not valid.")
    delivery = request.app[DELIVERY]
    await delivery.check_url(wanted.url)
    view = world.webhooks.register(wanted)
    delivery.watch(world)
    return render(view, status=201)


@routes.get("/_sim/webhooks")
async def list_endpoints(request: web.Request) -> web.Response:
    return render(tenant(request).webhooks.list_view())


@routes.delete("/_sim/webhooks/{webhookId}")
async def delete_endpoint(request: web.Request) -> web.Response:
    tenant(request).webhooks.remove(request.match_info["webhookId"])
    return web.Response(status=204)


@routes.post("/_sim/webhooks/{webhookId}/rotate-secret")
async def rotate_secret(request: web.Request) -> web.Response:
    world = tenant(request)
    world.webhooks.endpoint(request.match_info["webhookId"])
    # No body means a fresh secret; a body that is there must be a JSON object (`null` is not).
    absent = not await request.read()
    body = await json_body(request, required=False)
    rotation = parse_model(RotateRequest, {} if absent else body, "The rotation request is not valid.")
    return render(world.webhooks.rotate(request.match_info["webhookId"], rotation))


@routes.get("/_sim/webhooks/{webhookId}/deliveries")
async def deliveries(request: web.Request) -> web.Response:
    return render(tenant(request).webhooks.deliveries(request.match_info["webhookId"]))


@routes.post("/_sim/webhooks/{webhookId}/deliveries/{msgId}/replay")
async def replay(request: web.Request) -> web.Response:
    world = tenant(request)
    endpoint_id, msg_id = request.match_info["webhookId"], request.match_info["msgId"]
    world.webhooks.message(endpoint_id, msg_id)
    await request.read()
    delivery = request.app[DELIVERY]
    async with delivery.lock(world):
        world.webhooks.replay(endpoint_id, msg_id)
        # The replay is due now: send it before answering, on either kind of clock.
        await delivery.run_until(world, world.clock.now)
    return render(world.webhooks.message(endpoint_id, msg_id).view())


@routes.post("/_sim/webhooks/{webhookId}/faults")
async def inject_fault(request: web.Request) -> web.Response:
    world = tenant(request)
    world.webhooks.endpoint(request.match_info["webhookId"])
    fault = parse_model(WebhookFaultRequest, await json_body(request), "The webhook fault request is not valid.")
    return render(world.webhooks.add_fault(request.match_info["webhookId"], fault))


@routes.get("/_sim/webhook-settings")
async def get_settings(request: web.Request) -> web.Response:
    return render(tenant(request).webhooks.settings.view())


@routes.put("/_sim/webhook-settings")
async def put_settings(request: web.Request) -> web.Response:
    world = tenant(request)
    settings = parse_model(SettingsRequest, await json_body(request), "The webhook settings are not valid.")
    return render(world.webhooks.update_settings(settings))
