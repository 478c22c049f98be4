"""`amps-sim serve` options for a hosted sandbox: limits, durable state, shard name.

Kept apart from cli.py so the CLI only wires them: `add_hosting_options(parser)` declares them,
`limits_from(args)` turns them into :class:`TenantLimits`. Every one is off by default.
"""

from __future__ import annotations

import argparse
import random
import re
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from .simulator.lifecycle import TenantLimits
from .simulator.validation import parse_model
from .simulator.world.tenants import WorldFile, parse_span

if TYPE_CHECKING:
    from .simulator.persistence.store import StateStore

_SHARD_NAME = re.compile(r"[a-z0-9]{1,16}")


def _duration(text: str) -> timedelta:
    span = parse_span(text)
    if span is None or span <= timedelta(0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 30m, 12h or 7d")
    return span


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _shard(text: str) -> str:
    if _SHARD_NAME.fullmatch(text) is None:
        raise argparse.ArgumentTypeError("a shard name is 1-16 lowercase letters or digits")
    return text


def add_hosting_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hosted sandbox (all off by default)")
    group.add_argument("--state-dir", metavar="DIR", help="keep every tenant in DIR (SQLite) so it survives restarts and kill -9")
    group.add_argument("--snapshot-every", type=_positive_int, default=None, metavar="N",
                       help="with --state-dir: write a snapshot every N journal entries (default 5000)")
    group.add_argument("--shard", type=_shard, metavar="NAME", help="this process's shard name, minted into every tenant key")
    group.add_argument("--admin-key", metavar="KEY", help="only this key may create tenants (and list them all)")
    group.add_argument("--tenant-ttl", type=_duration, metavar="SPAN", help="delete tenants idle longer than SPAN (e.g. 7d)")
    group.add_argument("--max-devices", type=_positive_int, metavar="N", help="devices a tenant may hold")
    group.add_argument("--max-actions", type=_positive_int, metavar="N", help="actions a tenant may retain")
    group.add_argument("--rate-limit", type=_positive_float, metavar="PER_S", help="requests per second per tenant (429 beyond)")
    group.add_argument("--rate-burst", type=_positive_int, metavar="N", help="requests a tenant may make at once (default: the rate)")


def limits_from(args: argparse.Namespace) -> TenantLimits:
    return TenantLimits(
        admin_key=args.admin_key,
        tenant_ttl=args.tenant_ttl,
        max_devices=args.max_devices,
        max_actions=args.max_actions,
        requests_per_second=args.rate_limit,
        burst=args.rate_burst,
    )


def build_served_app(args: argparse.Namespace, world_file: WorldFile) -> web.Application:
    """The app `amps-sim serve` runs: limits, tenant expiry and, with --state-dir, the journal.

    Raises SystemExit with a clear message when the state directory cannot be used.
    """
    from .simulator.web.app import create_app
    from .simulator.web.common import TENANTS
    from .simulator.web.expiry import install_tenant_expiry

    limits = limits_from(args)
    if args.state_dir is None:
        app = create_app(seed=args.seed, limits=limits, shard=args.shard, webhook_allow=args.webhook_allow)
        app[TENANTS].create(world_file, world_file.apiKey, pinned=True)
        install_tenant_expiry(app)
        return app

    from .simulator.persistence.store import StateDirError, StateStore
    from .simulator.web.durable import Durability, RequestTime, install_durability

    try:
        store = StateStore(Path(args.state_dir))
    except StateDirError as exc:
        raise SystemExit(f"amps-sim serve: {exc}") from None
    # The seed and the shard belong to the directory: replaying its journal needs the same ones.
    seed = _pinned_setting(store, "seed", None if args.seed is None else str(args.seed), str(random.getrandbits(63)))
    shard = _pinned_setting(store, "shard", args.shard, "")
    clock = RequestTime()
    app = create_app(seed=int(seed), limits=limits, shard=shard or None, wall_clock=clock.wall, monotonic=clock.seconds,
                     webhook_allow=args.webhook_allow)

    def create_default_tenant(data: dict[str, object]) -> object:
        spec = parse_model(WorldFile, data, "The state directory's world file is not valid.")
        return app[TENANTS].create(spec, spec.apiKey, pinned=True)

    default_spec = world_file.model_dump(mode="json", exclude_unset=True)
    durability = Durability(store, clock, create_default_tenant, default_spec)
    if args.snapshot_every is not None:
        durability.snapshot_every = args.snapshot_every
    install_durability(app, durability)
    install_tenant_expiry(app)
    return app


def _pinned_setting(store: StateStore, name: str, given: str | None, fresh: str) -> str:
    kept = store.meta(name)
    if kept is None:
        value = given if given is not None else fresh
        store.set_meta(name, value)
        return value
    if given is not None and given != kept:
        raise SystemExit(f"amps-sim serve: {store.directory} was created with --{name} {kept or '(none)'}; start it with that, or omit --{name}")
    return kept
