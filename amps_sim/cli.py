"""`amps-sim`: serve the simulator, or run scenario suites against it."""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from .deploy import add_nginx_conf_command
from .hosting import add_hosting_options, build_served_app

if TYPE_CHECKING:
    from .simulator.world.tenants import WorldFile


def load_world_file(path: str | None) -> WorldFile:
    from .simulator.validation import parse_model
    from .simulator.world.tenants import WorldFile

    if path is None:
        text = resources.files("amps_sim.simulator").joinpath("worlds/default.yaml").read_text(encoding="utf-8")
        origin = "the embedded default world"
    else:
        text = Path(path).read_text(encoding="utf-8")
        origin = path
    data = yaml.safe_load(text) or {}
    try:
        return parse_model(WorldFile, data, f"{origin} is not a valid world file.")
    except Exception as exc:  # report the field-level errors and stop
        details = getattr(exc, "details", None) or {}
        lines = [f"  {e['path']}: {e['message']}" for e in details.get("errors", [])]
        raise SystemExit(f"{origin} is not a valid world file:\n" + "\n".join(lines)) from None


def _allow_list(text: str):  # type: ignore[no-untyped-def]
    from .simulator.webhooks.allow import AllowList

    try:
        return AllowList.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from .simulator.world.tenants import ClockSpec

    world_file = load_world_file(args.world)
    if args.clock:
        clock = (world_file.clock or ClockSpec()).model_copy(update={"mode": args.clock})
        world_file = world_file.model_copy(update={"clock": clock})
    # A world file is a tenant spec plus the key the tenant answers to; hosting adds the rest.
    app = build_served_app(args, world_file)
    print(
        f"amps-sim serving on http://{args.host}:{args.port} "
        f"(default tenant key {world_file.apiKey}, {len(world_file.devices)} devices, "
        f"clock {(world_file.clock.mode if world_file.clock else 'virtual')}"
        f"{', state in ' + args.state_dir if args.state_dir else ''})",
        flush=True,
    )
    web.run_app(app, host=args.host, port=args.port, print=None)
    return 0


def run(args: argparse.Namespace) -> int:
    from amps_sim.suite import RunOptions
    from amps_sim.suite import main as run_main

    if args.api_key and not args.target:
        raise SystemExit("amps-sim run: --api-key goes with --target")
    options = RunOptions(
        paths=args.paths or ["scenarios"],
        keyword=args.keyword,
        junit=Path(args.junit) if args.junit else None,
        html=Path(args.html) if args.html else None,
        target=args.target,
        api_key=args.api_key,
        record_timeline=True if args.timeline else None,
        jobs=args.jobs,
    )
    return run_main(options)


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of processes: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("the number of processes cannot be negative")
    return value or (os.cpu_count() or 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="amps-sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="serve the public API, the control API and the specs")
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, default=8080)
    p_serve.add_argument("--world", help="a world YAML file for the default tenant (default: the embedded one)")
    p_serve.add_argument("--clock", choices=["virtual", "realtime"], help="override the world's clock mode")
    p_serve.add_argument("--seed", type=int, default=None, help="seed for ids and keys (default: random)")
    p_serve.add_argument(
        "--webhook-allow",
        type=_allow_list,
        default=None,
        metavar="LIST",
        help="hosts or networks webhook deliveries may reach, comma-separated: *, loopback, private, public, "
        "an address or CIDR, a host name or .domain (default: loopback,private; a hosted sandbox: public)",
    )
    add_hosting_options(p_serve)
    p_serve.set_defaults(func=serve)
    p_run = sub.add_parser("run", help="run YAML scenario suites, checking every reply against the spec")
    p_run.add_argument("paths", nargs="*", metavar="PATH", help="scenario files or folders (default: scenarios/)")
    p_run.add_argument("-k", dest="keyword", metavar="EXPR", help="only scenarios whose path, name or tags match EXPR")
    p_run.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    p_run.add_argument("--html", metavar="FILE", help="write a self-contained HTML report with timelines")
    p_run.add_argument("--target", metavar="URL", help="run against a served simulator or deployment instead")
    p_run.add_argument("--api-key", metavar="KEY", help="with --target: the key for scenarios that need no control API")
    p_run.add_argument("--timeline", action="store_true", help="record device timelines even without --html")
    p_run.add_argument("--jobs", "-j", type=_jobs, default=1, metavar="N",
                       help="run scenario files in N processes, one merged report (0: one per CPU)")
    p_run.set_defaults(func=run)
    add_nginx_conf_command(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
