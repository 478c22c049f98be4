"""The simulator app with its own world, as `amps-sim serve` and the pytest plugin run it."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Literal

from aiohttp import web

from amps_sim.simulator.web.app import create_app
from amps_sim.simulator.web.common import TENANTS
from amps_sim.simulator.webhooks.allow import AllowList
from amps_sim.simulator.world.tenants import ClockSpec, WorldFile

ClockMode = Literal["virtual", "realtime"]


def build_app(world: WorldFile, *, seed: int | None = None, clock: ClockMode | None = None,
              webhook_allow: AllowList | None = None) -> web.Application:
    """The app, holding `world` as its pinned default tenant under the world's `apiKey`."""
    if clock is not None:
        clock_spec = (world.clock or ClockSpec()).model_copy(update={"mode": clock})
        world = world.model_copy(update={"clock": clock_spec})
    app = create_app(seed=seed, webhook_allow=webhook_allow)
    app[TENANTS].create(world, world.apiKey, pinned=True)
    return app


class InProcessSimulator:
    """A simulator on 127.0.0.1 and a free port, served by an event loop on a thread of its own.

    The thread keeps the server independent of the caller: synchronous tests, async tests on
    their own loops, and frozen time in the caller's code all leave it serving.
    """

    @classmethod
    def from_world(cls, world: str | Path | None = None, *, seed: int | None = None) -> InProcessSimulator:
        """A simulator holding a world file's tenant (default: the embedded default world), as
        `amps-sim serve --world` would, not yet started. Use it as a context manager:

            with InProcessSimulator.from_world() as url:
                SimClient(url).create_tenant(...)
        """
        from amps_sim.worlds import load_world

        return cls(build_app(load_world(world), seed=seed))

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="amps-sim", daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def start(self, timeout: float = 30) -> str:
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout)
        return self.url

    async def _start(self) -> str:
        self._runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    def stop(self, timeout: float = 30) -> None:
        if not self._thread.is_alive():
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._loop.close()
