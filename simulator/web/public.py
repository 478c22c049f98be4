"""The public Amps API: parse, make one domain call, render."""

from __future__ import annotations

import re

from aiohttp import web

from ..actions import ACTION_STATES
from ..errors import ApiError
from ..memo import remember
from ..validation import PushRequest, parse_model
from .common import LIMITS, app_items, body_of, check_json_media, decode_json, plain, render, render_record, tenant
from .specs import PUBLIC_SPEC_PATH

routes = web.RouteTableDef()
_INTEGER = re.compile(r"-?[0-9]+", re.ASCII)
# GET /actions page size, as the public docs' actions list page gives it.
LIST_LIMIT_DEFAULT = 10
LIST_LIMIT_MAX = 50


@routes.get("/battery")
@plain
def list_batteries(request: web.Request) -> web.Response:
    world = tenant(request)
    return render({"devices": [world.platform.device_read(device_id) for device_id in world.devices]})


@routes.get("/battery/{deviceId}")
@plain
def get_battery(request: web.Request) -> web.Response:
    world = tenant(request)
    return render(world.platform.device_read(request.match_info["deviceId"]))


# Push bodies already parsed, by their bytes. A fleet (or one device, window after window) is sent
# the same few bodies over and over, and parsing is a pure function of the bytes: decoding and
# validating one is most of what the HTTP layer spends on a push, while finding it here is one hash
# of the bytes. The models are frozen, so a shared one cannot be changed by whoever holds it. Only
# bodies that parsed are kept, only small ones, and no more than PUSH_MEMO_LIMIT (then it starts
# afresh); a body found here still has its content type checked, as any other.
_PUSH_BODIES: dict[bytes, PushRequest] = {}
PUSH_MEMO_LIMIT = 256
PUSH_MEMO_MAX_BYTES = 4096


def push_body(request: web.Request, raw: bytes) -> PushRequest:
    """The push `raw` (the request's body) asks for, or the refusal of it."""
    known = _PUSH_BODIES.get(raw)
    if known is not None:
        check_json_media(request)
        return known
    parsed = parse_model(PushRequest, decode_json(request, raw))
    if len(raw) <= PUSH_MEMO_MAX_BYTES:
        remember(_PUSH_BODIES, bytes(raw), parsed, PUSH_MEMO_LIMIT)
    return parsed


@routes.post("/battery/{deviceId}")
async def push(request: web.Request) -> web.Response:
    world = tenant(request, sync=False)
    device_id = request.match_info["deviceId"]
    try:
        world.platform.managed_device(device_id)  # an unknown device is 404 whatever the body says
        limits = app_items(request.app)[LIMITS]
        if limits.max_actions is not None:
            limits.check_actions(len(world.platform.actions))
        push_request = push_body(request, await body_of(request))
    finally:
        # The clock is brought up once, after the body arrived (time may have moved meanwhile):
        # the push, or its refusal, is judged and stamped at the instant it is handled. Nothing
        # above reads the time.
        world.clock.sync()
    action = world.platform.push(device_id, push_request)
    return render(action.accepted(), status=202)


def _int_query(request: web.Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    # Plain ASCII digits with an optional minus: int() alone would also take " 5", "+5", "1_0" and
    # non-ASCII digits, none of which the spec's `integer` allows.
    value = int(raw, 10) if _INTEGER.fullmatch(raw) and len(raw) <= 4000 else None
    if value is None or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ApiError(
            "INVALID_REQUEST",
            f"Query parameter '{name}' must be an integer {bound}.",
            {"errors": [{"path": f"query.{name}", "message": f"must be an integer {bound}"}]},
        )
    return value


@routes.get("/actions")
@plain
def list_actions(request: web.Request) -> web.Response:
    world = tenant(request)
    state = request.query.get("state")
    if state is not None and state not in ACTION_STATES:
        raise ApiError(
            "INVALID_REQUEST",
            f"Query parameter 'state' must be one of: {', '.join(ACTION_STATES)}.",
            {"errors": [{"path": "query.state", "message": "unknown state"}]},
        )
    limit = _int_query(request, "limit", LIST_LIMIT_DEFAULT, 1, LIST_LIMIT_MAX)
    offset = _int_query(request, "offset", 0, 0, None)
    return render(world.platform.list_actions(request.query.get("deviceId"), state, limit, offset))


@routes.get("/actions/{actionId}")
@plain
def get_action(request: web.Request) -> web.Response:
    world = tenant(request)
    platform = world.platform
    return render_record(platform.action(request.match_info["actionId"]), platform.record_texts)


@routes.post("/actions/{actionId}/cancel")
async def cancel_action(request: web.Request) -> web.Response:
    world = tenant(request)
    await request.read()
    world.clock.sync()
    return render(world.platform.cancel(request.match_info["actionId"]).record())


@routes.get("/openapi.yaml")
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=PUBLIC_SPEC_PATH.read_bytes(), content_type="application/yaml")
