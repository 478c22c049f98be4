"""The simulator served in-process on 127.0.0.1 and an ephemeral port, for one run or session."""

from __future__ import annotations

from typing import Callable

from aiohttp import web

AppFactory = Callable[[], web.Application]


def default_app() -> web.Application:
    from amps_sim.simulator.web.app import create_app

    # A fixed seed keeps ids and keys the same from run to run, so reports can be compared.
    return create_app(seed=20260508)


class EmbeddedSimulator:
    """`async with EmbeddedSimulator() as base_url:` serves an app until the block ends.

    Pass `app` to serve a particular application (the harness tests serve a deliberately broken one).
    """

    def __init__(self, app: web.Application | None = None, *, factory: AppFactory = default_app) -> None:
        self._app = app
        self._factory = factory
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> str:
        app = self._app if self._app is not None else self._factory()
        # No access log: thousands of lines per run would drown the report.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> str:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
