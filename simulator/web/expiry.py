"""`serve --tenant-ttl`: a background sweep that deletes tenants idle for longer than the TTL.

Idleness is measured on the server's wall clock from each tenant's last authenticated request
(`Tenants.last_used`). Whoever must know about an expiry (the state journal) registers a hook,
which runs after the tenant is gone from memory.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import AsyncIterator, Awaitable, Callable

from aiohttp import web

from ..lifecycle import idle_tenants
from .app import WALL_CLOCK
from .common import LIMITS, RATES, TENANTS

log = logging.getLogger("amps_sim.expiry")
ExpiryHook = Callable[[str], Awaitable[None]]
EXPIRY_HOOKS: web.AppKey[list[ExpiryHook]] = web.AppKey("expiry_hooks", list)
MAX_SWEEP_INTERVAL = timedelta(seconds=60)


async def expire_idle_tenants(app: web.Application) -> list[str]:
    """Delete every tenant idle past the TTL now; returns their keys."""
    ttl = app[LIMITS].tenant_ttl
    if ttl is None:
        return []
    tenants = app[TENANTS]
    expired = idle_tenants(tenants.last_used, ttl, app[WALL_CLOCK](), tenants.pinned)
    for key in expired:
        tenants.delete(key)
        app[RATES].forget(key)
        for hook in app.get(EXPIRY_HOOKS, []):
            await hook(key)
    if expired:
        log.info("expired %d idle tenant(s)", len(expired))
    return expired


def install_tenant_expiry(app: web.Application) -> None:
    """Sweep every quarter of the TTL (at most every minute) while the app runs."""
    ttl = app[LIMITS].tenant_ttl
    if ttl is None:
        return
    app.setdefault(EXPIRY_HOOKS, [])
    interval = max(0.2, min(ttl, MAX_SWEEP_INTERVAL * 4).total_seconds() / 4)

    async def sweep_forever() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await expire_idle_tenants(app)
            except Exception:  # a sweep that fails must not stop the next one
                log.exception("tenant expiry sweep failed")

    async def run(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(sweep_forever())
        yield
        task.cancel()

    app.cleanup_ctx.append(run)
