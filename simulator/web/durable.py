"""`amps-sim serve --state-dir`: the command journal around the app, and the restart from it.

Every request that may change a tenant (anything but a read of the Amps or control API, and
every native FoxESS call, since those count quotas and consume injected faults) is appended to
the journal with the instant it was handled, and its reply waits until the entry is committed.
A restart reads the latest snapshot written by this code (if any): one blob per tenant, so the
server is ready once the registry (keys, order, last use, OEM keys) is back, and each tenant is
loaded on the first request that needs it ("woken"). Journal entries after the snapshot are
sorted by tenant: those of a dormant tenant wait and are replayed, in order, when it wakes;
those that touch the registry itself (tenant creation, OEM keys, expiry) run at once. Replays
go through the same app with the request-time source pinned to each entry's instant, so ids,
random draws and clock events come out as they did. A realtime clock catches up with the wall
on the tenant's first request, running every event that fell due while the process was down,
in order; realtime tenants with webhook endpoints are woken in the background at once, so
their deliveries are not held back until someone calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ctypes
import json
import logging
import os
import signal
import time
import weakref
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, AsyncIterator, BinaryIO, Callable

from aiohttp import web
from aiohttp.http import HttpVersion11, RawRequestMessage
from aiohttp.streams import StreamReader
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ..errors import ApiError
from ..lifecycle import LIMITS_SUSPENDED
from ..persistence.snapshot import code_fingerprint, dump_state, load_state
from ..persistence.snapshot_file import SnapshotFile, TenantRecord, write_snapshot_file
from ..persistence.store import JournalEntry, StateStore
from ..webhooks.hub import Outgoing, SendResult
from ..world.tenants import Tenants, World
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
# True in a context that replays journal entries (a restart, or a tenant waking): the journal
# middleware lets such requests through untouched. A context variable, because a tenant wakes
# while other tenants' live requests are served.
_REPLAYING: contextvars.ContextVar[bool] = contextvars.ContextVar("amps_sim_replaying", default=False)
# The tenant whose webhook attempts are being sent in this context (so each outcome is its own).
_DELIVERING_FOR: contextvars.ContextVar[str | None] = contextvars.ContextVar("amps_sim_delivering_for", default=None)


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


@dataclass(frozen=True)
class StoredTenant:
    """A tenant's blob in the current snapshot file and the journal entries to replay on top of
    it: together, its state as it is in memory (or would be, for a dormant tenant)."""

    file: SnapshotFile
    record: TenantRecord
    pending: tuple[int, ...]


@dataclass
class Durability:
    store: StateStore
    clock: RequestTime
    create_default_tenant: Callable[[dict[str, Any]], Any]
    default_tenant_spec: dict[str, Any]
    snapshot_every: int = SNAPSHOT_EVERY
    snapshot_seq: int = 0
    replayed: int = 0
    snapshot_task: asyncio.Task[None] | None = None
    live: dict[str, Any] = field(default_factory=dict)
    touched: dict[str, float] = field(default_factory=dict)  # tenant key -> its last entry's time
    fingerprint: str = field(default_factory=code_fingerprint)  # of the code that runs
    # Webhook attempt outcomes read from the journal tail, by message id, not yet given back.
    sent: dict[str, deque[SendResult]] = field(default_factory=dict)
    # Tenants whose state is still their blob (+ pending entries) in the snapshot file: dormant
    # ones, and woken ones with no entry since. The next snapshot copies these blobs as they are.
    stored: dict[str, StoredTenant] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)  # tenant key -> its last entry's seq
    waking: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    webhook_hints: set[str] = field(default_factory=set)  # dormant tenants with webhook calls pending
    files: list[SnapshotFile] = field(default_factory=list)  # open snapshot files, newest last
    background: asyncio.Task[None] | None = None
    # Per tenant: held around a change and its journal append (see _apply_lock). Weak values:
    # a lock nobody holds or awaits goes away, so the map does not grow with every tenant ever seen.
    apply_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = field(default_factory=weakref.WeakValueDictionary)

    @property
    def replaying(self) -> bool:
        return _REPLAYING.get()


DURABILITY: web.AppKey[Durability] = web.AppKey("durability", Durability)


def _journalled(request: web.Request) -> bool:
    return request.method not in _READS or request.path.startswith("/foxess/")


@web.middleware
async def journal(request: web.Request, handler):  # type: ignore[no-untyped-def]
    durability = request.app[DURABILITY]
    if _REPLAYING.get():
        return await handler(request)
    token = durability.clock.pin(durability.clock.live())
    try:
        at = durability.clock.seconds()
        # A dormant tenant is loaded (and its pending entries replayed) before anything sees it.
        for key in _tenants_needed(request):
            await ensure_awake(request.app, key)
        committed: asyncio.Future[None] | None = None
        async with _apply_lock(request, durability):
            # The request's instant is when it applies (it may have waited for the lock): the
            # journal's instants then rise in journal order, as a replay pins them.
            durability.clock.unpin(token)
            token = durability.clock.pin(durability.clock.live())
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
                committed = await _record(request, durability, at, refusal.status)
                raise
            except web.HTTPException as exc:
                committed = await _record(request, durability, at, exc.status)
                raise
            finally:
                if committed is not None:
                    await committed
            committed = await _record(request, durability, at, response.status)
        # The reply goes out only once the effect is on disk (outside the tenant's lock: the
        # next change of the tenant may apply meanwhile, its entry comes after this one).
        if committed is not None:
            await committed
        return response
    finally:
        durability.clock.unpin(token)


def _apply_lock(request: web.Request, durability: Durability) -> contextlib.AbstractAsyncContextManager[Any]:
    """A change of a tenant and its journal append happen under that tenant's lock, so a change
    that arrives while another is awaiting (an advance sending webhook attempts over HTTP) waits
    and is journalled where it took effect. Reads, and requests of no tenant, never wait."""
    if not _journalled(request):
        return contextlib.nullcontext()
    key = _tenant_of(request.app[TENANTS], request.method, request.path, request.headers)
    if key is None:
        return contextlib.nullcontext()
    lock = durability.apply_locks.get(key)
    if lock is None:
        lock = durability.apply_locks[key] = asyncio.Lock()
    return lock


async def _record(request: web.Request, durability: Durability, at: float, status: int) -> asyncio.Future[None] | None:
    """Append the request to the journal; returns the future of its commit (None: not journalled)."""
    if status in _NOT_JOURNALLED_STATUSES:
        return None
    world = request.get(WORLD_KEY)
    if status == 404 and world is None and not request.path.startswith("/foxess/"):
        return None  # no such route (or no such tenant resource): nothing was touched
    if not _journalled(request):
        if world is None or at - durability.touched.get(world.api_key, 0.0) < TOUCH_EVERY_S:
            return None
    key = world.api_key if world is not None else _tenant_of(request.app[TENANTS], request.method, request.path, request.headers)
    if world is not None:
        durability.touched[world.api_key] = at
    # Already read (above, or by the handler) wherever a change could have happened before this.
    body = await request.read() if request.body_exists else b""
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in _DROPPED_HEADERS}
    # The raw path, as sent: the FoxESS signature is checked against it.
    committed = durability.store.append(at, request.method, request.raw_path, headers, body)
    if key is not None:
        _changed(durability, key)
    if durability.store.last_seq - durability.snapshot_seq >= durability.snapshot_every and durability.snapshot_task is None:
        durability.snapshot_task = asyncio.get_running_loop().create_task(_snapshot(request.app, durability))
    return committed


async def _snapshot(app: web.Application, durability: Durability) -> None:
    """Write a snapshot from a forked child (copy-on-write: the child sees the state of this
    instant while the server goes on serving), as Redis's BGSAVE does."""
    try:
        seq = durability.store.last_seq
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: pickle, write, leave without running any parent cleanup
            code = 1
            try:
                _die_with(parent)
                _write_snapshot(app, durability, seq)
                code = 0
            finally:
                os._exit(code)
        _, status = await asyncio.get_running_loop().run_in_executor(None, os.waitpid, pid, 0)
        if os.waitstatus_to_exitcode(status) == 0:
            # The snapshot is usable once the entries it covers are committed; only then may
            # the older one go.
            await durability.store.committed()
            _adopt_snapshot(app, durability, seq)
            log.info("snapshot at journal entry %d", seq)
        else:
            log.error("snapshot at journal entry %d failed (exit status %d)", seq, status)
    finally:
        durability.snapshot_task = None


def _die_with(parent: int) -> None:
    """A snapshot child stops when the server dies (kill -9 included): the snapshot is only a
    cache, and a restart should not share the CPU with an orphan pickling a dead server's state.
    Linux only (prctl PR_SET_PDEATHSIG); elsewhere the child finishes on its own."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the server died before the line above
        os._exit(1)


def _changed(durability: Durability, key: str) -> None:
    """A journal entry changed this tenant: its stored blob no longer holds its state."""
    durability.changed[key] = durability.store.last_seq
    durability.stored.pop(key, None)


def _write_snapshot(app: web.Application, durability: Durability, seq: int) -> None:
    """One blob per tenant: a stored one copied as it is (dormant tenants, and tenants with no
    entry since it was written), any other pickled now."""
    tenants = app[TENANTS]
    shared = {name: value for name, value in vars(tenants).items() if name != "_worlds"}
    blobs: list[tuple[str, bytes, tuple[int, ...], bool, bool]] = []
    for key in tenants.tenant_keys():
        stored = durability.stored.get(key)
        if stored is not None:
            webhooks = stored.record.webhooks or key in durability.webhook_hints
            blobs.append((key, stored.file.blob(stored.record), stored.pending, stored.record.realtime, webhooks))
            continue
        world = tenants.loaded(key)
        if world is None:
            raise RuntimeError(f"tenant {key} is dormant with no stored state")
        blobs.append((key, dump_state(world, durability.live), (), world.clock.mode == "realtime", world.webhooks.active))

    def write(handle: BinaryIO) -> None:
        write_snapshot_file(handle, seq, shared, blobs, durability.live)

    durability.store.write_snapshot(seq, durability.fingerprint, write)


def _adopt_snapshot(app: web.Application, durability: Durability, seq: int) -> None:
    """Point every tenant unchanged since `seq` at its blob in the new file; drop older files."""
    new = SnapshotFile.open(durability.store.snapshot_path(seq, durability.fingerprint), durability.live)
    tenants = app[TENANTS]
    for key, record in new.header.tenants.items():
        unchanged_since = durability.changed.get(key, 0) <= seq
        if unchanged_since and (tenants.is_dormant(key) or tenants.loaded(key) is not None):
            durability.stored[key] = StoredTenant(new, record, record.pending)
    durability.webhook_hints.clear()
    for old in durability.files:
        old.close()
    durability.files = [new]
    durability.snapshot_seq = seq
    durability.store.prune_snapshots(seq)


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
        if _REPLAYING.get():
            # In flight when the process died: its answer was never recorded.
            return SendResult(None, "not sent: amps-sim restarted while this attempt was in flight", 0)
        result = await send(outgoing)
        outcome = {"status": result.status_code, "error": result.error, "ms": result.duration_ms}
        tenant = _DELIVERING_FOR.get()
        # The tenant's key goes with the outcome, so a dormant tenant's outcomes wait with it.
        headers = {"tenant": tenant} if tenant is not None else {}
        durability.store.append(durability.clock.seconds(), SENT, message_id, headers, json.dumps(outcome).encode())
        if tenant is not None:
            _changed(durability, tenant)
        return result

    run_until = delivery.run_until

    async def run_until_for(world: World, target: datetime) -> tuple[int, int]:
        token = _DELIVERING_FOR.set(world.api_key)
        try:
            return await run_until(world, target)
        finally:
            _DELIVERING_FOR.reset(token)

    delivery._send = journalled_send  # type: ignore[method-assign]
    delivery.run_until = run_until_for  # type: ignore[method-assign]


async def _expired(app: web.Application, key: str) -> None:
    durability = app[DURABILITY]
    durability.stored.pop(key, None)
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


def _tenant_of(tenants: Tenants, method: str, path: str, headers: Any) -> str | None:
    """The one tenant a journalled request acts on, or None when it acts on the registry
    (tenant creation) or on no tenant at all. `headers` is any case-insensitive mapping or the
    journal's lowercased dict."""
    if method == SENT:
        tenant: str | None = headers.get("tenant")
        return tenant
    if path.startswith("/foxess/"):
        token = headers.get("token")
        return tenants.tenant_for_oem_key(token) if token else None
    if path.split("?", 1)[0] == "/_sim/tenants":
        return None
    key = headers.get("x-api-key")
    if not key or (tenants.loaded(key) is None and not tenants.is_dormant(key)):
        return None
    return str(key)


def _needs_registry(entry: JournalEntry) -> bool:
    """Entries that draw from the registry's own generator (an OEM key) must run in journal order
    with every other such draw, so they are not left waiting with a dormant tenant."""
    return entry.method == "POST" and entry.path.split("?", 1)[0] == "/_sim/oem-keys"


def _tenants_needed(request: web.Request) -> list[str]:
    """The dormant tenants a live request may look at, to wake before it is handled."""
    app = request.app
    tenants, durability = app[TENANTS], app[DURABILITY]
    key = request.headers.get("x-api-key")
    if request.path.startswith("/foxess/"):
        token = request.headers.get("token")
        key = tenants.tenant_for_oem_key(token) if token else None
    elif request.path == "/_sim/tenants" and request.method == "GET" and app[LIMITS].is_admin(key):
        return tenants.dormant_keys() + list(durability.waking)  # the admin list shows everyone
    if key and (key in durability.waking or tenants.is_dormant(key)):
        return [key]
    return []


async def ensure_awake(app: web.Application, key: str) -> None:
    """Load a dormant tenant (once, however many requests ask at the same time)."""
    durability, tenants = app[DURABILITY], app[TENANTS]
    task = durability.waking.get(key)
    if task is None:
        if not tenants.is_dormant(key):
            return
        task = asyncio.get_running_loop().create_task(_wake_in_own_context(app, key))
        durability.waking[key] = task
        task.add_done_callback(lambda _: durability.waking.pop(key, None))
    await asyncio.shield(task)


async def _wake_in_own_context(app: web.Application, key: str) -> None:
    # A task has its own copy of the context: these flags do not reach live requests.
    _REPLAYING.set(True)
    LIMITS_SUSPENDED.set(True)
    await _wake(app, key, ())


async def _wake(app: web.Application, key: str, more: tuple[int, ...]) -> None:
    """Unpickle a dormant tenant's blob and replay its pending entries on it, in order."""
    durability, tenants = app[DURABILITY], app[TENANTS]
    stored = durability.stored[key]
    if more:
        stored = durability.stored[key] = replace(stored, pending=stored.pending + more)
    world = load_state(stored.file.blob(stored.record), durability.live)
    if not isinstance(world, World):
        raise RuntimeError(f"the snapshot's blob for tenant {key} is not a tenant")
    tenants.wake(key, world)
    entries = durability.store.entries(stored.pending)
    for entry in entries:
        if entry.method == SENT:
            _remember_sent(durability, entry)
    for entry in entries:
        if entry.method != SENT:
            await _replay_entry(app, entry)
    if world.webhooks.active:
        delivery = app.get(DELIVERY)
        if delivery is not None:
            delivery.watch(world)


def _remember_sent(durability: Durability, entry: JournalEntry) -> None:
    outcome = json.loads(entry.body)
    durability.sent.setdefault(entry.path, deque()).append(SendResult(outcome["status"], outcome["error"], outcome["ms"]))


async def _replay_entry(app: web.Application, entry: JournalEntry) -> None:
    durability, tenants = app[DURABILITY], app[TENANTS]
    token = durability.clock.pin(entry.at)
    try:
        if entry.method == GENESIS:
            durability.create_default_tenant(json.loads(entry.body))
        elif entry.method == EXPIRE:
            tenants.delete(entry.path)
        else:
            await _replay_request(app, entry.method, entry.path, entry.headers, entry.body)
    finally:
        durability.clock.unpin(token)


async def _restore_entry(app: web.Application, entry: JournalEntry, tail: dict[str, list[int]]) -> None:
    """One journal entry after the snapshot: run it now, or leave it with its dormant tenant."""
    durability, tenants = app[DURABILITY], app[TENANTS]
    if entry.method == EXPIRE:
        durability.stored.pop(entry.path, None)
        tail.pop(entry.path, None)
        await _replay_entry(app, entry)
        return
    key = None if entry.method == GENESIS else _tenant_of(tenants, entry.method, entry.path, entry.headers)
    if key is not None and tenants.is_dormant(key):
        if entry.method == SENT or not _needs_registry(entry):
            tail.setdefault(key, []).append(entry.seq)
            if entry.method != SENT:
                # What the replay's tenant lookup would record: the registry knows each
                # tenant's last use (and the TTL sweep sees it) without waking anyone.
                tenants.note_used(key, datetime.fromtimestamp(entry.at, timezone.utc))
                if entry.path.startswith("/_sim/webhooks"):
                    durability.webhook_hints.add(key)
            return
        await _wake(app, key, tuple(tail.pop(key, [])))
    if entry.method == SENT:
        _remember_sent(durability, entry)
        return
    await _replay_entry(app, entry)
    if key is not None:
        durability.changed[key] = entry.seq
        durability.stored.pop(key, None)


async def restore(app: web.Application) -> None:
    durability = app[DURABILITY]
    store, clock, tenants = durability.store, durability.clock, app[TENANTS]
    started = time.perf_counter()
    found = store.latest_snapshot(durability.fingerprint)
    after = 0
    if found is not None:
        after, path = found
        snapshot = SnapshotFile.open(path, durability.live)
        durability.files.append(snapshot)
        vars(tenants).update(snapshot.header.shared)
        tenants.hold_dormant(snapshot.header.order)
        for key, record in snapshot.header.tenants.items():
            durability.stored[key] = StoredTenant(snapshot, record, record.pending)
        durability.snapshot_seq = after
    tail: dict[str, list[int]] = {}
    replaying, suspended = _REPLAYING.set(True), LIMITS_SUSPENDED.set(True)
    count = 0
    try:
        for entry in store.entries_after(after):
            await _restore_entry(app, entry, tail)
            count += 1
    finally:
        _REPLAYING.reset(replaying)
        LIMITS_SUSPENDED.reset(suspended)
    for key, seqs in tail.items():
        if tenants.is_dormant(key):
            stored = durability.stored[key]
            durability.stored[key] = replace(stored, pending=stored.pending + tuple(seqs))
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
    # Realtime clocks treat the downtime as time that passed: events due in it run now, in order
    # (a dormant tenant's run on its first request, before the request sees anything).
    for world in tenants.worlds():
        world.clock.sync()
    log.info(
        "restored %d tenants (%d in memory) from %s (snapshot at %d, %d entries read) in %.2f s",
        len(tenants), len(tenants.worlds()), store.directory, after, count, time.perf_counter() - started,
    )


async def _wake_realtime_webhook_tenants(app: web.Application) -> None:
    """Realtime tenants with webhook endpoints owe deliveries that no request would trigger:
    wake them in the background, so the delivery loop sends what fell due in the downtime."""
    durability, tenants = app[DURABILITY], app[TENANTS]
    for key in tenants.dormant_keys():
        stored = durability.stored.get(key)
        if stored is None or not stored.record.realtime:
            continue
        if stored.record.webhooks or key in durability.webhook_hints:
            try:
                await ensure_awake(app, key)
            except Exception:
                log.exception("waking realtime tenant %s failed", key)
            await asyncio.sleep(0)


def install_durability(app: web.Application, durability: Durability) -> None:
    """Call before the app starts: restore in startup (before the socket opens), journal after."""
    app[DURABILITY] = durability
    durability.live = {"time.seconds": app[TENANTS]._monotonic, "time.wall": app[TENANTS]._wall_clock}
    # Inside the error envelope: refusals arrive here as exceptions and are journalled as such.
    # The journal wraps every request; what it raises itself (a body over the limit) is answered
    # in the envelope around it (each route's handler answers its own refusals).
    position = next((i + 1 for i, m in enumerate(app.middlewares) if m is error_envelope), None)
    if position is None:
        app.middlewares.insert(0, error_envelope)
        position = 1
    app.middlewares.insert(position, journal)
    app.setdefault(EXPIRY_HOOKS, []).append(lambda key: _expired(app, key))
    _journal_webhook_attempts(app, durability)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await restore(app)
        durability.background = asyncio.get_running_loop().create_task(_wake_realtime_webhook_tenants(app))
        yield
        if not durability.background.done():
            durability.background.cancel()
        for task in list(durability.waking.values()):
            await asyncio.gather(task, return_exceptions=True)
        if durability.snapshot_task is not None:
            await durability.snapshot_task
        durability.store.close()  # every entry is committed first
        # A clean stop leaves a snapshot, so the next start replays nothing.
        if durability.store.last_seq > durability.snapshot_seq:
            _write_snapshot(app, durability, durability.store.last_seq)
            durability.store.prune_snapshots(durability.store.last_seq)
        for snapshot in durability.files:
            snapshot.close()

    # First: the state is back before anything else starts (the webhook delivery loop included).
    app.cleanup_ctx.insert(0, lifecycle)
