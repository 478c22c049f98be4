"""The app factory and the one error middleware that turns every refusal into the envelope."""

from __future__ import annotations

import logging
import math
import random
import string
import time
from datetime import datetime, timezone
from typing import Awaitable, Callable

from aiohttp import web

from ..errors import ApiError, envelope
from ..lifecycle import RateLimiter, TenantLimits
from ..webhooks.allow import AllowList
from ..world.tenants import WALL_NOW, Tenants
from . import control, public, webhooks
from .common import LIMITS, MAX_BODY_BYTES, RATES, TENANTS, WORLD_KEY, plain_function, render
from .delivery import DELIVERY, Delivery
from .foxess import PREFIX as FOXESS_PREFIX
from .foxess import create_native_app

log = logging.getLogger("amps_sim.web")
REQUEST_IDS: web.AppKey[random.Random] = web.AppKey("request_ids", random.Random)
WALL_CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("wall_clock", object)  # type: ignore[arg-type]
_ALNUM = string.ascii_letters + string.digits
MAX_HEADER_BYTES = 64 * 1024


def _http_error(exc: web.HTTPException) -> ApiError:
    if exc.status == 405:
        return ApiError("METHOD_NOT_ALLOWED", "This method is not allowed on this path.")
    if exc.status == 413:
        return ApiError("PAYLOAD_TOO_LARGE", f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    if exc.status == 404:
        return ApiError("NOT_FOUND", "No such resource.")
    return ApiError("INVALID_REQUEST", exc.reason or "The request could not be handled.")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def enveloped(handler: Handler) -> Handler:
    """`handler`, answering every refusal it raises in the one error envelope.

    Every route's handler is wrapped at registration rather than by a middleware: an app (or
    sub-app) with any middleware makes aiohttp build a chain and set `current_app` around every
    request, about 5 % of a small request's instructions. Requests no route takes (404, 405) are
    answered by routes too (`_answer_misses`), so every answer still comes from here. A handler
    marked `plain` (it never awaits) is called directly, without a coroutine of its own.
    """
    direct = plain_function(handler)
    if direct is not None:
        call = direct

        async def answer_plain(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            try:
                return call(request)
            except Exception as exc:
                return _refusal(request, exc, started)

        return answer_plain

    async def answer(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            return await handler(request)
        except Exception as exc:
            return _refusal(request, exc, started)

    return answer


def _refusal(request: web.Request, exc: Exception, started: float) -> web.Response:
    """The envelope for what a handler raised (called inside the `except` that caught it); an
    HTTP exception below 400 (a redirect) is raised on, as aiohttp answers it."""
    if isinstance(exc, ApiError):
        error, headers = exc, dict(exc.headers)
    elif isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        error = _http_error(exc)
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
    else:  # a real bug: answer in the envelope and keep serving
        log.exception("unhandled error on %s %s", request.method, request.path)
        error, headers = ApiError("INTERNAL_ERROR", "The simulator hit an internal error."), {}
    world = request.get(WORLD_KEY)
    moment = world.clock.now if world is not None else request.app[WALL_CLOCK]()
    rid = "req_" + "".join(request.app[REQUEST_IDS].choice(_ALNUM) for _ in range(8))
    body = envelope(
        error,
        request_id=rid,
        timestamp=moment,
        path=request.path,
        # Whole milliseconds begun: sub-millisecond handling reads 1, never a made-up 0.
        latency_ms=math.ceil((time.perf_counter() - started) * 1000),
    )
    response = render(body, status=error.status)
    response.headers.update(headers)
    return response


@web.middleware
async def error_envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The envelope around middlewares an app adds (the durable journal), for what they raise."""
    return await enveloped(handler)(request)


def _enveloped_routes(table: web.RouteTableDef) -> list[web.RouteDef]:
    return [web.RouteDef(d.method, d.path, enveloped(d.handler), d.kwargs) for d in table if isinstance(d, web.RouteDef)]


async def _not_found(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound()


def _answer_misses(app: web.Application) -> None:
    """Routes for what no route takes: a known path with another method is 405 with the path's
    methods in `Allow` (as aiohttp words it), any other path 404 -- both in the envelope. No two
    resources here match one path, so the first that matches the path knows every method."""
    for resource in list(app.router.resources()):
        if not isinstance(resource, web.Resource):
            continue  # the FoxESS sub-app answers its whole prefix in its own envelope
        methods = {route.method for route in resource}

        async def not_allowed(request: web.Request, methods: set[str] = methods) -> web.StreamResponse:
            raise web.HTTPMethodNotAllowed(request.method, methods)

        resource.add_route("*", enveloped(not_allowed))
    app.router.add_route("*", "/{tail:.*}", enveloped(_not_found))


def create_app(
    tenants: Tenants | None = None,
    *,
    seed: int | None = None,
    wall_clock: Callable[[], datetime] | None = None,
    monotonic: Callable[[], float] | None = None,
    webhook_allow: AllowList | None = None,
    signing_clock: Callable[[], datetime] | None = None,
    limits: TenantLimits | None = None,
    shard: str | None = None,
) -> web.Application:
    """Build the simulator's HTTP app. Pass `tenants` to share a registry with the caller.

    `webhook_allow` limits where webhook deliveries may go (default: loopback and private
    networks); `signing_clock` is the real wall time stamped on attempts (default: the host's).
    `limits` are a hosted sandbox's (none by default); `shard` is minted into tenant keys.
    """
    rng = random.Random(seed)
    # The host's clock by default, which `Tenants` recognises and stamps each request's use with
    # more cheaply (see `Tenants.last_used`).
    wall = wall_clock or WALL_NOW
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        # aiohttp's HTTP parser refuses a request line or header line over 8190 bytes before any
        # middleware runs, with a text/plain 400 outside the envelope. A long query string (many
        # repeated parameters) is still a request to answer in the envelope, so the parser takes
        # lines as long as the body limit; a single header may be 64 KiB.
        handler_args={"max_line_size": MAX_BODY_BYTES, "max_field_size": MAX_HEADER_BYTES},
    )
    app[TENANTS] = tenants or Tenants(
        random.Random(rng.getrandbits(64)),
        monotonic or time.monotonic,
        wall,
        signing_clock or (lambda: datetime.now(timezone.utc)),
        shard=shard,
    )
    app[REQUEST_IDS] = random.Random(rng.getrandbits(64))
    app[WALL_CLOCK] = wall
    app[LIMITS] = limits or TenantLimits()
    app[RATES] = RateLimiter(app[LIMITS])
    defs: list[web.RouteDef] = [d for table in (public.routes, control.routes, webhooks.routes) for d in _enveloped_routes(table)]
    # aiohttp tries the resources that share a path's fixed prefix in the order they were added:
    # the ones with a variable part first, so `/actions/{actionId}` and `/battery/{deviceId}` (the
    # busy ones) are found without trying `/actions` and `/battery` first. A variable segment is
    # never empty, so none of them can take a plain path's request (a test checks every one).
    variable_first = sorted(defs, key=lambda d: "{" not in d.path)
    app.add_routes(variable_first)
    delivery = Delivery(webhook_allow)
    app[DELIVERY] = delivery
    app.cleanup_ctx.append(delivery.lifecycle)
    # The FoxESS cloud's Open API, with its own always-200 errno envelope.
    app.add_subapp(FOXESS_PREFIX, create_native_app())
    _answer_misses(app)
    return app

