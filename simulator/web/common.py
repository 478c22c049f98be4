"""What every handler shares: the tenant lookup, JSON bodies, and rendering."""

from __future__ import annotations

import json
import time
from operator import attrgetter
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web
from multidict import CIMultiDict

from ..actions import Action
from ..errors import ApiError, invalid_request
from ..lifecycle import RateLimiter, TenantLimits
from ..memo import remember
from ..world.tenants import Tenants, World

TENANTS: web.AppKey[Tenants] = web.AppKey("tenants", Tenants)
LIMITS: web.AppKey[TenantLimits] = web.AppKey("limits", TenantLimits)
RATES: web.AppKey[RateLimiter] = web.AppKey("rates", RateLimiter)
WORLD_KEY: web.RequestKey[World] = web.RequestKey("world", World)
MAX_BODY_BYTES = 1024 * 1024


def _items_of(holder: Any, key: Any) -> Callable[[Any], Any]:
    """How to reach the dict behind an aiohttp app's (or request's) `[...]`: its `_state`, read
    without the Python frame `__getitem__` / `__setitem__` cost (0.7k and 1.4k instructions a
    call), if a probe shows that it is the same dict; else the object itself, which an aiohttp
    that keeps its items elsewhere still answers correctly."""
    holder[key] = probe = object()
    state = getattr(holder, "_state", None)
    if isinstance(state, dict) and state.get(key) is probe:
        return attrgetter("_state")
    return lambda item: item


def _probe_request() -> web.Request:
    from aiohttp.test_utils import make_mocked_request

    return make_mocked_request("GET", "/")


app_items = _items_of(web.Application(), web.AppKey("probe", object))
request_items = _items_of(_probe_request(), web.RequestKey("probe", object))


def tenant(request: web.Request, *, sync: bool = True) -> World:
    """The caller's world, brought up to date with its clock (`sync=False`: the caller syncs it
    before anything that reads the time, see :func:`synced_after`)."""
    key = request.headers.get("x-api-key")
    if not key:
        raise ApiError("UNAUTHORIZED", "Missing API key: send it in the x-api-key header.")
    items = app_items(request.app)
    tenants: Tenants = items[TENANTS]
    world = tenants.get(key)
    if world is None:
        raise ApiError("INVALID_API_KEY", "The API key is not valid.")
    request_items(request)[WORLD_KEY] = world
    rates: RateLimiter = items[RATES]
    if rates.limits.requests_per_second is not None:  # without a rate there is nothing to admit
        rates.admit(key, time.monotonic())
    if sync:
        world.clock.sync()
    return world


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def body_of(request: web.Request) -> bytes:
    """The request's body, as `request.read()` returns it.

    A small body usually arrives with its headers, so the parser already holds all of it (the
    stream is at its end) before the handler runs: then it is taken as it lies, without
    `read()`'s two awaits and two copies. Otherwise -- a body still arriving, or one something
    read already (the durable journal reads every change's body before its handler, and `read()`
    keeps it) -- `read()` gives it, with its size limit."""
    content = request.content
    if content.is_eof():
        raw = content.read_nowait()
        if raw:
            if len(raw) > MAX_BODY_BYTES:
                raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY_BYTES, actual_size=len(raw))
            return raw
    return await request.read()


async def json_body(request: web.Request, *, required: bool = True) -> Any:
    """The request's JSON document; None when absent and not required."""
    return decode_json(request, await request.read(), required=required)


def check_json_media(request: web.Request) -> None:
    """Refuse a body not sent as JSON (`application/json` or a `+json` type)."""
    content_type = request.headers.get("Content-Type", "")
    if content_type == "application/json":
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise ApiError(
            "UNSUPPORTED_MEDIA_TYPE",
            f"Send the body as application/json (got '{media or 'no content type'}').",
            {"contentType": media or None} if media else None,
        )


def decode_json(request: web.Request, raw: bytes, *, required: bool = True) -> Any:
    """`raw`, the request's body as read, as a JSON document (see `json_body`)."""
    if not raw or raw.isspace():
        if required:
            raise invalid_request([{"path": "(body)", "message": "a JSON body is required"}], "The request body is missing.")
        return None
    check_json_media(request)
    try:
        # orjson takes strict JSON (no NaN/Infinity, valid UTF-8) several times faster; whatever it
        # refuses goes through the standard library, which accepts exactly what it accepted
        # before (e.g. big integers, lone surrogate escapes) and words the refusal as before.
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        text = raw.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        message = str(exc) if not isinstance(exc, RecursionError) else "nested too deeply"
        raise invalid_request([{"path": "(body)", "message": message[:200]}], "The request body is not valid JSON.") from None


_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


# What `web.Response(body=..., status=..., headers=_JSON_HEADERS)` leaves on a new response, in
# the order it sets it: five values of the reply's own, then three that are the same on every one.
_FRESH = ("_state", "_headers", "_status", "_reason", "_body")
_SHARED = ("_compressed_body", "_zlib_executor_size", "_zlib_executor")


def _lean_response_parts() -> tuple[int, bool]:
    """Whether `json_response` may build a reply by setting what aiohttp's constructor sets (its
    checks and branches for arguments these replies never use are most of its cost): only if the
    constructor sets exactly those attributes, the shared three holding no per-reply value. Also
    the zlib executor size it sets."""
    probe = web.Response(body=b"{}", status=200, headers=_JSON_HEADERS)
    attributes = vars(probe)
    if tuple(attributes) != _FRESH + _SHARED:
        return 0, False
    size = attributes["_zlib_executor_size"]
    lean = attributes["_compressed_body"] is None and attributes["_zlib_executor"] is None and type(size) is int
    return size, lean


_ZLIB_EXECUTOR_SIZE, _LEAN_RESPONSES = _lean_response_parts()
_REASONS: dict[int, str] = {}
_JSON_HEADER_ITEMS = CIMultiDict(_JSON_HEADERS)


def json_response(data: bytes, status: int = 200) -> web.Response:
    """A response carrying `data` (JSON text), the same as aiohttp's constructor would build.

    Each attribute is set as the constructor sets it, by name, never through the instance's
    `__dict__`: asking for that builds a real dict for an object that otherwise keeps its
    attributes in a compact array, which measured dearer per reply than the constructor itself
    (`docs/decisions.md`)."""
    if not _LEAN_RESPONSES:
        return web.Response(body=data, status=status, headers=_JSON_HEADERS)
    reason = _REASONS.get(status)
    if reason is None:
        reason = _REASONS[status] = web.Response(status=status).reason
    response: web.Response = object.__new__(web.Response)
    response._state = {}
    response._headers = _JSON_HEADER_ITEMS.copy()
    response._status = status
    response._reason = reason
    response._body = data
    response._compressed_body = None
    response._zlib_executor_size = _ZLIB_EXECUTOR_SIZE
    response._zlib_executor = None
    return response


def encode(body: Any) -> bytes:
    """`body` as compact JSON text."""
    try:
        # orjson writes the same compact JSON as json.dumps(separators=(",", ":")) several times
        # faster, which is a large share of a small reply's cost. What it refuses (integers past
        # 64 bits, non-string keys) goes through the standard library as before.
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")


def render(body: Any, status: int = 200) -> web.Response:
    # The header given whole: aiohttp's content_type/charset arguments parse and rebuild it on
    # every response, three times the cost of the rest of building one.
    return json_response(encode(body), status)


RECORD_TEXT_LIMIT = 64


def render_record(action: Action, texts: dict[str, tuple[tuple[Any, ...], bytes]]) -> web.Response:
    """`render(action.record())`, reusing the text `texts` (its platform's `record_texts`) kept
    for the action while its revision holds.

    A poller reads one action over and over while it stays as it is, and the record's text is
    most of such a read's own cost. The text is kept with the revision it was made from; the
    revision holds every value the record reads (the id among them), so an equal one means the
    same text. `texts` is bounded (`remember`)."""
    revision = action.revision()
    kept = texts.get(action.id)
    if kept is not None and kept[0] == revision:
        return json_response(kept[1])
    data = encode(action.record())
    remember(texts, action.id, (revision, data), RECORD_TEXT_LIMIT)
    return json_response(data)


PlainHandler = Callable[[web.Request], web.StreamResponse]
_PLAIN = "_amps_plain"


def plain(handler: PlainHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """`handler`, which never awaits, as the coroutine function aiohttp's route tables take. The
    app's error envelope (`app.enveloped`) calls the function itself instead, which saves a
    coroutine per request."""

    async def awaitable(request: web.Request) -> web.StreamResponse:
        return handler(request)

    setattr(awaitable, _PLAIN, handler)
    return awaitable


def plain_function(handler: object) -> PlainHandler | None:
    """The function `plain` marked `handler` as wrapping, or None."""
    function: PlainHandler | None = getattr(handler, _PLAIN, None)
    return function
