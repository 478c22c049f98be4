"""Serve the simulator on a loopback port the OS picks, and say which port on stdout.

`amps-sim serve` needs a port up front; the fuzz suite wants port 0 so parallel runs never race
for one. This builds the server the same way `amps-sim serve` does (the embedded default world
pinned to the docs' key, the same app factory) and prints one JSON line,
`{"port": N, "key": "sk_live_..."}`, once it listens. It serves until killed.

    python -m tests.contract.serve_sim [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from aiohttp import web

from simulator.cli import load_world_file
from simulator.web.app import create_app
from simulator.web.common import TENANTS
from simulator.world import TenantSpec


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args.seed))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
