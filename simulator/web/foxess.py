"""The FoxESS Open API over HTTP: a sub-app mounted at ``/foxess`` on the simulator's port.

Thin on purpose: each handler parses, makes one session call, and renders with
:mod:`.shapes`. Every reply is HTTP 200 with ``{"errno", "msg", "result"}``, refusals included,
as the real cloud answers; the sub-app's own middleware owns that envelope, so the Amps error
envelope never appears under ``/foxess``.

Signatures are computed over the path as the client wrote it after the prefix, so a client
needs nothing but its base URL set to ``http://HOST:PORT/foxess``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Mapping

from aiohttp import web

from ..battery import Drive
from ..errnos import (
    ERRNO_BAD_PARAMETER,
    ERRNO_BAD_SIGNATURE,
    ERRNO_BAD_TOKEN,
    ERRNO_OK,
    ERRNO_TRANSIENT,
    MESSAGES,
    NativeError,
    bad_parameter,
    refuse,
)
from ..foxess import shapes
from ..foxess.cloud import NativeSession
from ..foxess.signature import signature_matches
from .common import TENANTS, render

PREFIX = "/foxess"
log = logging.getLogger("amps_sim.foxess")
_DIGITS = re.compile(r"[0-9]{1,16}")
SETTABLE_WORK_MODES = ("SelfUse", "Feedin", "Backup")


@dataclass
class NativeRequest:
    """One signed call, parsed as far as routing needs: the caller's session, body and query."""

    session: NativeSession
    body: dict[str, Any]
    query: Mapping[str, str]


Handler = Callable[[NativeRequest], Any]


@dataclass(frozen=True)
class Route:
    method: str
    handler: Handler | None  # None: the unsigned error-message table


ROUTES: dict[str, Route] = {}


def _route(method: str, *paths: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for path in paths:
            ROUTES[path] = Route(method, handler)
        return handler

    return register


# ------------------------------------------------------------------------------ parsing
def _fields(body: Mapping[str, Any], required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    missing = [key for key in required if key not in body]
    if missing:
        raise bad_parameter(f"missing {', '.join(missing)}")
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        raise bad_parameter(f"unknown parameter(s) {', '.join(unknown)}")


def _flag(value: Any, name: str) -> int:
    if isinstance(value, bool) or value not in (0, 1):
        raise bad_parameter(f"{name} must be 0 or 1, got {value!r}")
    return int(value)


def _page(body: Mapping[str, Any], name: str, default: int, high: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise bad_parameter(f"{name} must be an integer 1..{high}")
    return value


def _sn_query(call: NativeRequest) -> str:
    unknown = sorted(set(call.query) - {"sn"})
    if unknown:
        raise bad_parameter(f"unknown query parameter(s) {', '.join(unknown)}")
    return call.query.get("sn", "")


# ----------------------------------------------------------------------------- handlers
@_route("GET", "/op/v0/user/getAccessCount")
def access_count(call: NativeRequest) -> dict[str, Any]:
    total, remaining = call.session.access_count()
    return {"total": total, "remaining": remaining}


@_route("POST", "/op/v0/device/list")
def device_list(call: NativeRequest) -> dict[str, Any]:
    _fields(call.body, (), ("pageSize", "currentPage", "deviceType"))
    size = _page(call.body, "pageSize", 10, 100)
    page = _page(call.body, "currentPage", 1, 10_000)
    devices = call.session.list_devices()
    rows = [shapes.device_summary(s.device, s.faults.offline) for s in devices]
    return {"currentPage": page, "pageSize": size, "total": len(rows), "data": rows[(page - 1) * size : page * size]}


@_route("GET", "/op/v1/device/detail")
def device_detail(call: NativeRequest) -> dict[str, Any]:
    managed = call.session.managed_for(_sn_query(call))
    offline = managed.faults.offline
    return shapes.device_detail(call.session.describe(managed), offline)


@_route("GET", "/op/v0/device/generation")
def device_generation(call: NativeRequest) -> dict[str, Any]:
    managed = call.session.managed_for(_sn_query(call))
    return shapes.generation(call.session.describe(managed), call.session.now)


@_route("POST", "/op/v1/device/real/query")
def real_query(call: NativeRequest) -> list[dict[str, Any]]:
    _fields(call.body, ("sns",), ("variables",))
    sns, variables = call.body["sns"], call.body.get("variables")
    if not isinstance(sns, list) or not sns:
        raise bad_parameter("sns must be a non-empty list of serial numbers")
    if variables is not None:
        if not isinstance(variables, list) or not all(isinstance(v, str) for v in variables):
            raise bad_parameter("variables must be a list of names")
        unknown = sorted(set(variables) - set(shapes.REAL_VARIABLES))
        if unknown:
            raise bad_parameter(f"unknown variable(s) {', '.join(unknown)}")
    devices = [call.session.managed_for(sn) for sn in dict.fromkeys(sns)]
    now = call.session.now
    return [shapes.real_row(device, now, variables) for device in call.session.real_time(devices)]


@_route("POST", "/op/v0/device/scheduler/get/flag", "/op/v1/device/scheduler/get/flag")
def get_flag(call: NativeRequest) -> dict[str, Any]:
    _fields(call.body, ("deviceSN",))
    managed = call.session.managed_for(call.body["deviceSN"])
    return {"enable": int(call.session.read_flag(managed)), "support": True}


@_route("POST", "/op/v0/device/scheduler/set/flag", "/op/v1/device/scheduler/set/flag")
def set_flag(call: NativeRequest) -> None:
    _fields(call.body, ("deviceSN", "enable"))
    enable = _flag(call.body["enable"], "enable")
    managed = call.session.managed_for(call.body["deviceSN"])
    call.session.set_flag(managed, bool(enable))


def get_schedule(call: NativeRequest, version: int) -> dict[str, Any]:
    _fields(call.body, ("deviceSN",))
    managed = call.session.managed_for(call.body["deviceSN"])
    scheduler = call.session.read_schedule(managed)
    return shapes.render_schedule(version, scheduler, managed.device)


def write_schedule(call: NativeRequest, version: int) -> None:
    _fields(call.body, ("deviceSN", "groups"), ("isDefault",) if version == 3 else ())
    if "isDefault" in call.body and not isinstance(call.body["isDefault"], bool):
        raise bad_parameter("isDefault must be true or false")
    managed = call.session.managed_for(call.body["deviceSN"])
    groups = shapes.parse_groups(version, call.body["groups"], call.session.owner)
    call.session.write_schedule(managed, groups)


for _v in shapes.VERSIONS:
    ROUTES[f"/op/v{_v}/device/scheduler/get"] = Route("POST", partial(get_schedule, version=_v))
    ROUTES[f"/op/v{_v}/device/scheduler/enable"] = Route("POST", partial(write_schedule, version=_v))


@_route("POST", "/op/v0/device/setting/get")
def get_setting(call: NativeRequest) -> dict[str, Any]:
    _fields(call.body, ("sn", "key"))
    if call.body["key"] != "WorkMode":
        raise bad_parameter(f"setting {call.body['key']!r} is not simulated; WorkMode is")
    managed = call.session.managed_for(call.body["sn"])
    return {"value": call.session.read_work_mode(managed), "unit": "", "precision": 1.0, "range": None}


@_route("POST", "/op/v0/device/setting/set")
def set_setting(call: NativeRequest) -> None:
    _fields(call.body, ("sn", "key", "value"))
    if call.body["key"] != "WorkMode":
        raise bad_parameter(f"setting {call.body['key']!r} is not simulated; WorkMode is")
    value = call.body["value"]
    if value not in SETTABLE_WORK_MODES:
        raise bad_parameter(f"WorkMode must be one of {', '.join(SETTABLE_WORK_MODES)}")
    managed = call.session.managed_for(call.body["sn"])
    call.session.set_work_mode(managed, Drive(value))


ERROR_MESSAGES_PATH = "/c/v0/errors/message"
ROUTES[ERROR_MESSAGES_PATH] = Route("GET", None)


def error_messages() -> dict[str, Any]:
    table = {str(errno): text for errno, text in MESSAGES.items() if errno != ERRNO_OK}
    return {"messages": {"en": table}}


# ------------------------------------------------------------------------------ plumbing
def _envelope(errno: int, message: str, result: Any = None) -> web.Response:
    return render({"errno": errno, "msg": message, "result": result})


async def native_envelope(request: web.Request) -> web.Response:
    """Every FoxESS request, answered in the cloud's envelope whatever goes wrong. A wrapper of
    the one route, not a middleware: a middleware anywhere makes aiohttp run its middleware
    machinery for every request of the whole app (see app.enveloped)."""
    try:
        return await dispatch(request)
    except NativeError as exc:
        return _envelope(exc.errno, exc.message)
    except web.HTTPException as exc:  # e.g. a body over the size limit
        return _envelope(ERRNO_BAD_PARAMETER, f"{MESSAGES[ERRNO_BAD_PARAMETER]}: {exc.reason}")
    except Exception:  # a simulator bug; still answer the way the cloud does, but say so
        log.exception("unhandled error on native %s %s", request.method, request.path)
        return _envelope(ERRNO_TRANSIENT, "simulator internal error (a bug in amps-sim)")


def _token(request: web.Request, path: str) -> str:
    """The caller's key, once its signature checks out (names are case-insensitive)."""
    headers = request.headers
    token, timestamp, signature = headers.get("token"), headers.get("timestamp"), headers.get("signature")
    if not token or not timestamp or not signature:
        raise refuse(ERRNO_BAD_SIGNATURE, "headers token, timestamp and signature are required")
    if _DIGITS.fullmatch(timestamp) is None:
        raise refuse(ERRNO_BAD_SIGNATURE, "timestamp must be epoch milliseconds")
    if not signature_matches(path, token, timestamp, signature):
        raise refuse(ERRNO_BAD_SIGNATURE)
    return token


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if request.method != "POST":
        return {}
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad_parameter("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_parameter("the body must be a JSON object")
    return body


async def dispatch(request: web.Request) -> web.Response:
    raw_path = request.rel_url.raw_path
    path = raw_path[len(PREFIX) :] if raw_path.startswith(PREFIX) else raw_path
    if not path:  # the prefix alone: not a path of the API at all
        raise web.HTTPNotFound()
    route = ROUTES.get(path)
    if route is None:
        raise bad_parameter(f"unknown path {path}")
    if request.method != route.method:
        raise bad_parameter(f"{path} takes {route.method}, not {request.method}")
    if route.handler is None:
        await request.read()
        return _envelope(ERRNO_OK, MESSAGES[ERRNO_OK], error_messages())
    token = _token(request, path)
    world = request.config_dict[TENANTS].world_for_oem_key(token)
    key = world.native_cloud.keys.get(token) if world is not None else None
    if world is None or key is None:
        raise refuse(ERRNO_BAD_TOKEN)
    body = await _body(request)
    world.clock.sync()
    call = NativeRequest(world.native_cloud.session(key, world.devices), body, request.query)
    result = route.handler(call)
    return _envelope(ERRNO_OK, MESSAGES[ERRNO_OK], result)


def create_native_app() -> web.Application:
    """The sub-app; mount it with ``app.add_subapp(PREFIX, create_native_app())``."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", native_envelope)
    app.router.add_route("*", "", native_envelope)  # the prefix alone, which `/{tail}` does not take
    return app
