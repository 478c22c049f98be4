"""`amps-sim`: serve the simulator, or run scenario suites against it.

A user's mistake (a port in use, a host that does not resolve, a world file that does not
parse, a target that does not answer, a report path that is a folder) is one line on stderr and
a non-zero exit, never a traceback: each is detected up front by the command that owns it.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from pathlib import Path
from typing import Any, NoReturn, Sequence

from amps_sim import __version__
from amps_sim.deploy import add_nginx_conf_command
from amps_sim.hosting import add_hosting_options, build_served_app
from amps_sim.simulator.world.tenants import ClockSpec, WorldFile

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
LOG_LEVELS = ("debug", "info", "warning", "error")


class UserError(Exception):
    """A mistake of the user's: printed as `amps-sim COMMAND: MESSAGE`, then exit `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def load_world_file(path: str | None) -> WorldFile:
    """A world file, or the embedded default world for None; a bad file is a UserError naming its lines."""
    from amps_sim.worlds import WorldFileError, load_world

    try:
        return load_world(path)
    except WorldFileError as exc:
        raise UserError(str(exc)) from None


# ---- serve -------------------------------------------------------------------------------------


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is announced; refusals are UserErrors."""
    if not 0 <= port <= 65535:
        raise UserError(f"port {port} is out of range (0-65535; 0 picks a free port)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise UserError(f"cannot use host {host!r}: {getattr(exc, 'strerror', None) or exc}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            reason = "the address is already in use (another server on that port?)"
        elif exc.errno == errno.EADDRNOTAVAIL:
            reason = "that address is not one of this machine's"
        elif exc.errno == errno.EACCES:
            reason = "permission denied (ports below 1024 need privileges)"
        else:
            reason = exc.strerror or str(exc)
        raise UserError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.setblocking(False)
    return sock


def serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from amps_sim.simulator.errors import ApiError
    from amps_sim.weblog import RequestLog, configure_logging

    world_file = load_world_file(args.world)
    if args.clock:
        clock = (world_file.clock or ClockSpec()).model_copy(update={"mode": args.clock})
        world_file = world_file.model_copy(update={"clock": clock})
    if args.state_dir and Path(args.state_dir).exists() and not Path(args.state_dir).is_dir():
        raise UserError(f"--state-dir {args.state_dir} is a file, not a folder")
    sock = bind(args.host, args.port)
    configure_logging(args.log_level, args.log_format)
    try:
        # A world file is a tenant spec plus the key the tenant answers to; hosting adds the rest.
        app = build_served_app(args, world_file)
    except ApiError as exc:  # a world the simulator refuses beyond what the file check sees
        sock.close()
        raise UserError(f"{args.world or 'the default world'}: {exc.message}") from None
    except SystemExit:  # build_served_app's own one-line refusals (a state directory it cannot use)
        sock.close()
        raise
    except OSError as exc:  # e.g. --state-dir names a file, or a folder we may not write
        sock.close()
        where = f" --state-dir {args.state_dir}" if args.state_dir else ""
        raise UserError(f"cannot use{where}: {exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")) from None
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    mode = world_file.clock.mode if world_file.clock else "virtual"
    print(
        f"amps-sim serving on http://{shown}:{port} "
        f"(default tenant key {world_file.apiKey}, {len(world_file.devices)} devices, clock {mode}"
        f"{', state in ' + args.state_dir if args.state_dir else ''})",
        flush=True,
    )
    web.run_app(app, sock=sock, print=None, access_log_class=RequestLog, handle_signals=True)
    return 0


# ---- run ---------------------------------------------------------------------------------------


def check_target_url(url: str) -> str:
    """The target's base URL, if it is one (http or https, a host, a valid port)."""
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"cannot reach {url}: it is not a URL (expected http://HOST[:PORT])", EXIT_USAGE)
    try:
        parts.port  # noqa: B018 -- raises on a port that is not a number or out of range
    except ValueError as exc:
        raise UserError(f"cannot reach {url}: it is not a URL ({exc})", EXIT_USAGE) from None
    return url.rstrip("/")


def check_target_answers(base: str) -> None:
    """Something answers HTTP at the target; otherwise a usage error (never a run of skips)."""
    import urllib.error
    import urllib.request

    url = base
    try:
        with urllib.request.urlopen(base + "/openapi.yaml", timeout=10):
            pass
    except urllib.error.HTTPError:
        pass  # it answered: what it serves is the run's business (no /_sim: those scenarios skip)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise UserError(f"cannot reach {url}: {reason}", EXIT_USAGE) from None


def check_report_path(option: str, value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value)
    if path.is_dir() or value.endswith(("/", "\\")):
        raise UserError(f"{option} {value} is a folder; give a file name, e.g. {path / ('junit.xml' if option == '--junit' else 'index.html')}", EXIT_USAGE)
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise UserError(f"{option} {value}: {parent} is a file, not a folder", EXIT_USAGE)
    return path


def run(args: argparse.Namespace) -> int:
    from amps_sim.suite import RunOptions
    from amps_sim.suite import main as run_main

    if args.api_key and not args.target:
        raise UserError("--api-key goes with --target", EXIT_USAGE)
    target = check_target_url(args.target) if args.target else None
    junit = check_report_path("--junit", args.junit)
    html = check_report_path("--html", args.html)
    paths = args.paths
    if not paths:
        if not Path("scenarios").is_dir():
            raise UserError("no scenarios/ folder here; name scenario files or folders (amps-sim run PATH ...)", EXIT_USAGE)
        paths = ["scenarios"]
    if target is not None:
        check_target_answers(target)
    options = RunOptions(
        paths=paths,
        keyword=args.keyword,
        junit=junit,
        html=html,
        target=target,
        api_key=args.api_key,
        record_timeline=True if args.timeline else None,
        jobs=args.jobs,
    )
    return run_main(options)


# ---- the parser --------------------------------------------------------------------------------


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option shows its default: the value, or the words of its help text."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default" in text or action.default is argparse.SUPPRESS or not action.option_strings:
            return text
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            return f"{text} (default: off)" if action.default is False else f"{text} (default: on)"
        if action.default is None:
            return f"{text} (default: none)"
        return f"{text} (default: %(default)s)"


def _allow_list(text: str) -> Any:
    from amps_sim.simulator.webhooks.allow import AllowList

    try:
        return AllowList.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of processes: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("the number of processes cannot be negative")
    return value or (os.cpu_count() or 1)


def _port(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    """Every `serve` option, in one place."""
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    parser.add_argument("--port", type=_port, default=8080, help="the port to listen on; 0 picks a free one (printed)")
    parser.add_argument("--world", metavar="FILE", help="a world YAML file for the default tenant (default: the embedded default world)")
    parser.add_argument("--clock", choices=["virtual", "realtime"], help="override the world's clock mode (default: the world's)")
    parser.add_argument("--seed", type=int, help="seed for ids and keys (default: random)")
    parser.add_argument(
        "--webhook-allow",
        type=_allow_list,
        default=None,
        metavar="LIST",
        help="hosts or networks webhook deliveries may reach, comma-separated: *, loopback, private, public, "
        "an address or CIDR, a host name or .domain (default: loopback,private; a hosted sandbox: public)",
    )
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="the least severe log lines shown; info shows one line per request")
    parser.add_argument("--log-format", choices=["text", "json"], default="text", help="log lines as text or one JSON object per line")
    add_hosting_options(parser)  # --state-dir, --admin-key, limits, shard (amps_sim/hosting.py)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="scenario files or folders (default: scenarios/)")
    parser.add_argument("-k", dest="keyword", metavar="EXPR", help="only scenarios whose path, name or tags match EXPR (default: all)")
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML report (default: none)")
    parser.add_argument("--html", metavar="FILE", help="write a self-contained HTML report with timelines (default: none)")
    parser.add_argument("--target", metavar="URL", help="run against a served simulator or deployment (default: an in-process simulator)")
    parser.add_argument("--api-key", metavar="KEY", help="with --target: the key for scenarios that need no control API (default: none)")
    parser.add_argument("--timeline", action="store_true", help="record device timelines even without --html")
    parser.add_argument("--jobs", "-j", type=_jobs, default=1, metavar="N",
                        help="run scenario files in N processes, one merged report (0: one per CPU)")


class _Parser(argparse.ArgumentParser):
    """Usage mistakes in one line (`amps-sim serve: argument --port: ...`), exit 2, like every other refusal."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="amps-sim", description=__doc__.split("\n\n")[0], formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"amps-sim {__version__}", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    p_serve = sub.add_parser("serve", help="serve the public API, the control API and the specs", formatter_class=_HelpFormatter,
                             description="Serve the public API, the /_sim control API, the FoxESS native API and both specs.")
    add_serve_options(p_serve)
    p_serve.set_defaults(func=serve)
    p_run = sub.add_parser("run", help="run YAML scenario suites, checking every reply against the spec", formatter_class=_HelpFormatter,
                           description="Run YAML scenarios, each in a fresh tenant; exit 0 when all pass, 1 on a failure, 2 on a usage error, 130 on Ctrl-C.")
    add_run_options(p_run)
    p_run.set_defaults(func=run)
    add_nginx_conf_command(sub)
    return parser


def _fail(command: str, error: UserError) -> NoReturn:
    lines = str(error).splitlines() or [""]
    print(f"amps-sim {command}: {lines[0]}", file=sys.stderr)
    for line in lines[1:]:  # a world file with several problems: one line each
        print(f"amps-sim {command}: {line}", file=sys.stderr)
    raise SystemExit(error.code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        _fail(args.command, error)
    except KeyboardInterrupt:
        print(f"amps-sim {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
