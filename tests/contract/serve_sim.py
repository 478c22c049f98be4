"""Serve the simulator on a loopback port the OS picks, and say which port on stdout.

`amps-sim serve` needs a port up front; the fuzz suite wants port 0 so parallel runs never race
for one. This builds the server the same way `amps-sim serve` does (the embedded default world
pinned to the docs' key, the same app factory) and prints one JSON line,
`{"port": N, "key": "sk_live_..."}`, once it listens. It serves until killed.

    python -m tests.contract.serve_sim [--seed N] [--leak-actions]

`--leak-actions` plants a bug for the canary test: an action id the caller's tenant does not hold
is looked up in every tenant, so one tenant can read (and cancel) another's actions by id.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys

from aiohttp import web

from amps_sim.cli import load_world_file
from amps_sim.simulator.web.app import create_app
from amps_sim.simulator.web.common import TENANTS
from amps_sim.simulator.world.tenants import TenantSpec


async def _serve(seed: int | None) -> None:
    world_file = load_world_file(None)
    app = create_app(seed=seed)
    spec = TenantSpec.model_validate(world_file.model_dump(exclude={"apiKey"}))
    app[TENANTS].create(spec, world_file.apiKey, pinned=True)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(json.dumps({"port": port, "key": world_file.apiKey}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _plant_action_leak() -> None:
    from amps_sim.simulator.platform import Platform

    platforms: list[Platform] = []
    original_init, original_action = Platform.__init__, Platform.action

    def init(self: Platform, *args: object, **kwargs: object) -> None:
        original_init(self, *args, **kwargs)  # type: ignore[arg-type]
        platforms.append(self)

    def action(self: Platform, action_id: str):  # type: ignore[no-untyped-def]
        for platform in (self, *platforms):
            if action_id in platform.actions:
                return platform.actions[action_id]
        return original_action(self, action_id)

    Platform.__init__ = init  # type: ignore[method-assign]
    Platform.action = action  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--leak-actions", action="store_true", help="plant a cross-tenant leak (canary test)")
    args = parser.parse_args(argv)
    if args.leak_actions:
        _plant_action_leak()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
