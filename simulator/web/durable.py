"""`amps-sim serve --state-dir`: the command journal around the app, and the restart from it.

Every request that may change a tenant (anything but a read of the Amps or control API, and
every native FoxESS call, since those count quotas and consume injected faults) is appended to
the journal with the instant it was handled, and its reply waits until the entry is committed.
A restart loads the latest snapshot written by this code (if any) and replays the entries
after it through the same app, with the request-time source pinned to each entry's instant, so
ids, random draws and clock events come out as they did. Realtime clocks then catch up with
the wall, running every event that fell due while the process was down, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable

from aiohttp import web
from aiohttp.http import HttpVersion11, RawRequestMessage
from aiohttp.streams import StreamReader
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ..errors import ApiError
from ..persistence.snapshot import code_fingerprint, dump_state, load_state
from ..persistence.store import Snapshot, StateStore
from ..webhooks.hub import Outgoing, SendResult
from .app import error_envelope
from .common import LIMITS, TENANTS, WORLD_KEY
from .delivery import DELIVERY
from .expiry import EXPIRY_HOOKS

log = logging.getLogger("amps_sim.durable")
SNAPSHOT_EVERY = 5_000  # journal entries between snapshots (each written by a forked child)
EXPIRE = "EXPIRE"  # a journal method of our own: the TTL sweep deleted a tenant
GENESIS = "GENESIS"  # the served world file's tenant, created once with the directory
SENT = "SENT"  # a webhook attempt's outcome (path: the message's svix-id; body: the result)
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
# Headers that never change what a request does; the rest are kept (keys, signatures, types).
_DROPPED_HEADERS = frozenset({"host", "user-agent", "accept", "accept-encoding", "connection", "content-length", "keep-alive"})
# Refused before any tenant was touched: nothing to replay.
_NOT_JOURNALLED_STATUSES = frozenset({401, 403, 405, 413, 429})
# A read is journalled too when its tenant has had no entry for this long, so that a tenant used
# only for reads keeps a truthful last use (and TTL) across restarts. Replaying a read is harmless.
TOUCH_EVERY_S = 60.0


class RequestTime:
    """The simulator's notion of "now" in durable mode: epoch seconds, never going backwards,
    and one fixed value for the whole of a request, so a replay can give it back exactly."""

    def __init__(self) -> None:
        self.last = 0.0
        self._pinned: contextvars.ContextVar[float | None] = contextvars.ContextVar("request_time", default=None)

    def live(self) -> float:
        self.last = max(self.last, time.time())
        return self.last

    def pin(self, at: float) -> contextvars.Token[float | None]:
        self.last = max(self.last, at)
        return self._pinned.set(at)

    def unpin(self, token: contextvars.Token[float | None]) -> None:
        self._pinned.reset(token)

    def seconds(self) -> float:
        pinned = self._pinned.get()
        return pinned if pinned is not None else self.live()

    def wall(self) -> datetime:
        return datetime.fromtimestamp(self.seconds(), timezone.utc)


@dataclass
class Durability:
    store: StateStore
    clock: RequestTime
    create_default_tenant: Callable[[dict[str, Any]], Any]
    default_tenant_spec: dict[str, Any]
    snapshot_every: int = SNAPSHOT_EVERY
    replaying: bool = False
    snapshot_seq: int = 0
    replayed: int = 0
    snapshot_task: asyncio.Task[None] | None = None
    live: dict[str, Any] = field(default_factory=dict)
    touched: dict[str, float] = field(default_factory=dict)  # tenant key -> its last entry's time
    fingerprint: str = field(default_factory=code_fingerprint)  # of the code that runs
    # Webhook attempt outcomes read from the journal tail, by message id, not yet given back.
    sent: dict[str, deque[SendResult]] = field(default_factory=dict)


DURABILITY: web.AppKey[Durability] = web.AppKey("durability", Durability)


def _journalled(request: web.Request) -> bool:
    return request.method not in _READS or request.path.startswith("/foxess/")


@web.middleware
async def journal(request: web.Request, handler):  # type: ignore[no-untyped-def]
    durability = request.app[DURABILITY]
    if durability.replaying:
        return await handler(request)
    token = durability.clock.pin(durability.clock.live())
    try:
        at = durability.clock.seconds()
        try:
            if _journalled(request) and not request.path.startswith("/foxess/"):
                # Read the body before the handler, so that nothing awaits between the handler's
                # change and its append: the journal's order is the order changes happened in.
                # (The FoxESS handlers read it before they change anything, and answer an
                # oversized body in their own envelope.)
                await request.read()
            response = await handler(request)
        except ApiError as refusal:
            await _record(request, durability, at, refusal.status)
            raise
        except web.HTTPException as exc:
            await _record(request, durability, at, exc.status)
            raise
        await _record(request, durability, at, response.status)
        return response
    finally:
        durability.clock.unpin(token)


async def _record(request: web.Request, durability: Durability, at: float, status: int) -> None:
    if status in _NOT_JOURNALLED_STATUSES:
        return
    world = request.get(WORLD_KEY)
    if status == 404 and world is None and not request.path.startswith("/foxess/"):
        return  # no such route (or no such tenant resource): nothing was touched
    if not _journalled(request):
        if world is None or at - durability.touched.get(world.api_key, 0.0) < TOUCH_EVERY_S:
            return
    if world is not None:
        durability.touched[world.api_key] = at
    # Already read (above, or by the handler) wherever a change could have happened before this.
    body = await request.read() if request.body_exists else b""
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in _DROPPED_HEADERS}
    # The raw path, as sent: the FoxESS signature is checked against it.
    committed = durability.store.append(at, request.method, request.raw_path, headers, body)
    if durability.store.last_seq - durability.snapshot_seq >= durability.snapshot_every and durability.snapshot_task is None:
        durability.snapshot_task = asyncio.get_running_loop().create_task(_snapshot(request.app, durability))
    # The reply goes out only once the effect is on disk.
    await committed


async def _snapshot(app: web.Application, durability: Durability) -> None:
    """Write a snapshot from a forked child (copy-on-write: the child sees the state of this
    instant while the server goes on serving), as Redis's BGSAVE does."""
    try:
        seq = durability.store.last_seq
        pid = os.fork()
        if pid == 0:  # the child: pickle, write, leave without running any parent cleanup
            code = 1
            try:
                _write_snapshot(app, durability, seq)
                code = 0
            finally:
                os._exit(code)
        _, status = await asyncio.get_running_loop().run_in_executor(None, os.waitpid, pid, 0)
        if os.waitstatus_to_exitcode(status) == 0:
            # The snapshot is usable once the entries it covers are committed; only then may
            # the older one go.
            await durability.store.committed()
            durability.snapshot_seq = seq
            durability.store.prune_snapshots(seq)
            log.info("snapshot at journal entry %d", seq)
        else:
            log.error("snapshot at journal entry %d failed (exit status %d)", seq, status)
    finally:
        durability.snapshot_task = None


def _write_snapshot(app: web.Application, durability: Durability, seq: int) -> None:
    data = dump_state(vars(app[TENANTS]), durability.live)
    durability.store.write_snapshot(Snapshot(seq, durability.fingerprint, data))


def _journal_webhook_attempts(app: web.Application, durability: Durability) -> None:
    """Webhook attempts are the one effect that depends on something outside (the receiver's
    answer), so each outcome is journalled, and an attempt the journal already knows is never
    made again: a replay gets the recorded answer, and so does the delivery loop after a restart."""
    delivery = app.get(DELIVERY)
    if delivery is None:
        return
    send = delivery._send

    async def journalled_send(outgoing: Outgoing) -> SendResult:
        message_id = outgoing.headers.get("svix-id", "")
        known = durability.sent.get(message_id)
        if known:
            return known.popleft()
        if durability.replaying:
            # In flight when the process died: its answer was never recorded.
            return SendResult(None, "not sent: amps-sim restarted while this attempt was in flight", 0)
        result = await send(outgoing)
        outcome = {"status": result.status_code, "error": result.error, "ms": result.duration_ms}
        durability.store.append(durability.clock.seconds(), SENT, message_id, {}, json.dumps(outcome).encode())
        return result

    delivery._send = journalled_send  # type: ignore[method-assign]


async def _expired(app: web.Application, key: str) -> None:
    durability = app[DURABILITY]
    await durability.store.append(durability.clock.seconds(), EXPIRE, key, {}, b"")


# ---------------------------------------------------------------------------------- restart
async def _replay_request(app: web.Application, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
    """Run one journalled request through the app, as its HTTP server would, minus the socket."""
    loop = asyncio.get_running_loop()
    protocol = _NullProtocol()
    payload = StreamReader(protocol, 2**16, loop=loop)  # type: ignore[arg-type]
    if body:
        payload.feed_data(body)
    payload.feed_eof()
    multi = CIMultiDictProxy(CIMultiDict(headers))
    raw = tuple((k.encode(), v.encode()) for k, v in headers.items())
    message = RawRequestMessage(method, path, HttpVersion11, multi, raw, False, None, False, False, URL(path))
    request = web.Request(message, payload, protocol, None, None, loop, client_max_size=app._client_max_size)  # type: ignore[arg-type]
    with contextlib.suppress(ApiError, web.HTTPException):  # refused then, refused now: the reply was the effect
        await app._handle(request)


class _NullProtocol:
    """What a replayed request's body stream and the request itself ask of a connection."""

    _reading_paused = False
    transport = None
    writer = None
    peername = None
    sockname = None
    ssl_context = None

    def pause_reading(self) -> None:
        pass

    def resume_reading(self, resume_parser: bool = True) -> None:
        pass


async def restore(app: web.Application) -> None:
    durability = app[DURABILITY]
    store, clock, tenants = durability.store, durability.clock, app[TENANTS]
    started = time.perf_counter()
    snapshot = store.latest_snapshot(durability.fingerprint)
    after = 0
    if snapshot is not None:
        vars(tenants).update(load_state(snapshot.data, durability.live))
        after = durability.snapshot_seq = snapshot.seq
    durability.replaying = True
    limits = app[LIMITS]
    limits.enforced = False  # the journal holds only requests the limits let through then
    for entry in store.entries_after(after):
        if entry.method == SENT:
            outcome = json.loads(entry.body)
            durability.sent.setdefault(entry.path, deque()).append(SendResult(outcome["status"], outcome["error"], outcome["ms"]))
    count = 0
    try:
        for entry in store.entries_after(after):
            if entry.method == SENT:
                continue
            token = clock.pin(entry.at)
            try:
                if entry.method == GENESIS:
                    durability.create_default_tenant(json.loads(entry.body))
                elif entry.method == EXPIRE:
                    tenants.delete(entry.path)
                else:
                    await _replay_request(app, entry.method, entry.path, entry.headers, entry.body)
            finally:
                clock.unpin(token)
            count += 1
    finally:
        durability.replaying = False
        limits.enforced = True
    durability.replayed = count
    if store.last_seq == 0:
        # A new directory: the served world's tenant is its first entry.
        token = clock.pin(clock.live())
        try:
            durability.create_default_tenant(durability.default_tenant_spec)
            store.start_writer()
            await store.append(clock.seconds(), GENESIS, "", {}, json.dumps(durability.default_tenant_spec).encode())
        finally:
            clock.unpin(token)
    else:
        store.start_writer()
    # Realtime clocks treat the downtime as time that passed: events due in it run now, in order.
    for world in tenants.worlds():
        world.clock.sync()
    log.info(
        "restored %d tenants from %s (snapshot at %d, %d entries replayed) in %.2f s",
        len(tenants), store.directory, after, count, time.perf_counter() - started,
    )


def install_durability(app: web.Application, durability: Durability) -> None:
    """Call before the app starts: restore in startup (before the socket opens), journal after."""
    app[DURABILITY] = durability
    durability.live = {"time.seconds": app[TENANTS]._monotonic, "time.wall": app[TENANTS]._wall_clock}
    # Inside the error envelope: refusals arrive here as exceptions and are journalled as such.
    position = next((i + 1 for i, m in enumerate(app.middlewares) if m is error_envelope), 0)
    app.middlewares.insert(position, journal)
    app.setdefault(EXPIRY_HOOKS, []).append(lambda key: _expired(app, key))
    _journal_webhook_attempts(app, durability)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await restore(app)
        yield
        if durability.snapshot_task is not None:
            await durability.snapshot_task
        durability.store.close()  # every entry is committed first
        # A clean stop leaves a snapshot, so the next start replays nothing.
        if durability.store.last_seq > durability.snapshot_seq:
            _write_snapshot(app, durability, durability.store.last_seq)
            durability.store.prune_snapshots(durability.store.last_seq)

    # First: the state is back before anything else starts (the webhook delivery loop included).
    app.cleanup_ctx.insert(0, lifecycle)
