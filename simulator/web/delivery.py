"""Sends webhook attempts over HTTP (aiohttp's client) and drives tenants' clocks around them.

The domain (:mod:`amps_sim.simulator.webhooks`) decides what to send and when; this layer makes
the requests. In a virtual tenant, :meth:`Delivery.run_until` advances the clock and stops at each
attempt that falls due, sends it, and lets the hub schedule the retry before going on, so a whole
retry ladder plays out in order within one advance. Realtime tenants are driven by a background
task that wakes when their next clock event is due.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
import weakref
from contextlib import suppress
from datetime import datetime
from typing import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from ..errors import ApiError
from ..webhooks.allow import DEFAULT_ALLOW, AllowList, IpAddress
from ..webhooks.hub import Outgoing, SendResult, WebhookHub, url_refusal
from ..world.tenants import World

log = logging.getLogger("amps_sim.webhooks")
# How long the background task may sleep before looking at realtime tenants again (new events
# scheduled by requests in between are picked up by then).
REALTIME_POLL_S = 0.5
RESOLVE_TIMEOUT_S = 5.0
MAX_ERROR_TEXT = 300


class Delivery:
    """One per app: the allow-list, the HTTP client session, per-tenant locks, the realtime task."""

    def __init__(self, allow: AllowList | None = None) -> None:
        self.allow = allow or AllowList.parse(DEFAULT_ALLOW)
        self._session: aiohttp.ClientSession | None = None
        self._locks: weakref.WeakKeyDictionary[World, asyncio.Lock] = weakref.WeakKeyDictionary()
        self._watched: weakref.WeakSet[World] = weakref.WeakSet()

    # --------------------------------------------------------- registration
    async def check_url(self, url: str) -> None:
        """Refuse (422 WEBHOOK_URL_REFUSED) a URL that cannot be used or that the allow-list excludes."""
        reason = url_refusal(url)
        if reason is None:
            host = urlsplit(url).hostname or ""
            addresses: list[IpAddress] = []
            if self.allow.needs_addresses(host):
                addresses = await _resolve(host)
            reason = self.allow.refusal(host, addresses)
        if reason is not None:
            raise ApiError(
                "WEBHOOK_URL_REFUSED",
                f"Deliveries may not go to this URL: {reason}.",
                {"errors": [{"path": "url", "message": reason}]},
            )

    def watch(self, world: World) -> None:
        self._watched.add(world)

    # -------------------------------------------------------------- driving
    def lock(self, world: World) -> asyncio.Lock:
        lock = self._locks.get(world)
        if lock is None:
            lock = self._locks[world] = asyncio.Lock()
        return lock

    async def run_until(self, world: World, target: datetime) -> tuple[int, int]:
        """Advance `world`'s clock to `target`, sending each webhook attempt at its instant.

        Returns (events run, attempts made). Hold :meth:`lock` around it.
        """
        hub = world.webhooks
        events = attempts = 0
        while True:
            clock = world.clock
            events += clock.advance_to(max(target, clock.now), halt=hub.has_ready)
            if not hub.has_ready():
                return events, attempts
            attempts += await self.drain(hub)

    async def drain(self, hub: WebhookHub) -> int:
        """Send every attempt that is ready, in order; returns how many HTTP attempts were made."""
        made = 0
        while (job := hub.take_ready()) is not None:
            outgoing = hub.prepare(job)
            if outgoing is None:
                continue
            results = [await self._send(outgoing) for _ in range(outgoing.copies)]
            hub.record(job, outgoing, results)
            made += max(1, len(results))
        return made

    async def _send(self, outgoing: Outgoing) -> SendResult:
        session = self._client()
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            async with session.post(
                outgoing.url,
                data=outgoing.body,
                headers=outgoing.headers,
                timeout=aiohttp.ClientTimeout(total=outgoing.timeout_s),
                allow_redirects=False,  # a redirect is a failed attempt, as with svix
            ) as response:
                await response.read()
                status = response.status
        except asyncio.TimeoutError:
            error = f"no answer within {outgoing.timeout_s:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            error = (f"{type(exc).__name__}: {exc}")[:MAX_ERROR_TEXT]
        duration = round((time.perf_counter() - started) * 1000)
        return SendResult(status, error, duration)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No cookies: one session serves every tenant's endpoints. Names are resolved through
            # the allow-list on every connection, so a name that passed at registration and now
            # points somewhere else (DNS rebinding) is not connected to.
            connector = aiohttp.TCPConnector(resolver=AllowListResolver(self.allow), use_dns_cache=False)
            self._session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False)
        return self._session

    # ------------------------------------------------------------- realtime
    async def _realtime_loop(self) -> None:
        while True:
            pause = REALTIME_POLL_S
            for world in list(self._watched):
                if world.clock.mode != "realtime" or not world.webhooks.active:
                    continue
                try:
                    async with self.lock(world):
                        await self.run_until(world, world.clock.target())
                except Exception:  # one tenant's trouble must not stop the others' deliveries
                    log.exception("webhook delivery failed for a realtime tenant")
                due = world.clock.queue.peek()
                if due is not None:
                    wait = (due - world.clock.now).total_seconds() / world.clock.speed
                    pause = min(pause, max(wait, 0.005))
            await asyncio.sleep(pause)

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """aiohttp cleanup context: the realtime task runs while the app serves."""
        task = asyncio.create_task(self._realtime_loop())
        yield
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        if self._session is not None:
            await self._session.close()


class AllowListResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses the allow-list includes."""

    def __init__(self, allow: AllowList, inner: AbstractResolver | None = None) -> None:
        self._allow = allow
        self._inner = inner or aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if not self._allow.needs_addresses(host):
            return found
        kept = [r for r in found if self._allow.refusal(host, [ipaddress.ip_address(r["host"])]) is None]
        if not kept:
            raise OSError(f"{host} resolves to no address the webhook allow-list includes")
        return kept

    async def close(self) -> None:
        await self._inner.close()


async def _resolve(host: str) -> list[IpAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, None), RESOLVE_TIMEOUT_S)
    except (OSError, asyncio.TimeoutError, UnicodeError):
        return []
    found: list[IpAddress] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]
        with suppress(ValueError):
            found.append(ipaddress.ip_address(text))
    return found


DELIVERY: web.AppKey[Delivery] = web.AppKey("webhook_delivery", Delivery)
