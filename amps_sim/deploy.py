"""`amps-sim nginx-conf`: the nginx configuration that routes requests to shards by key.

Each `amps-sim serve --shard NAME` process mints tenant keys `sk_test_NAME_...` and FoxESS keys
whose first 8 hex digits are a hash of NAME. nginx maps the `x-api-key` header (Amps and control
APIs) and the `token` header (the FoxESS API) to the shard that minted it; a request with neither
(tenant creation) goes to any shard, round robin, skipping one that is down.
"""

from __future__ import annotations

import argparse
import json

from .simulator.errors import STATUS_BY_CODE
from .simulator.world.tenants import shard_oem_mark

RETRY_AFTER_S = 5  # what a client is told to wait when a shard is down (a restart takes seconds)
SHARD_DOWN = "SERVICE_UNAVAILABLE"


def _shard_address(text: str) -> tuple[str, str]:
    name, sep, address = text.partition("=")
    if not sep or not name or ":" not in address:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=HOST:PORT")
    return name, address


def nginx_conf(listen: str, shards: list[tuple[str, str]], runtime_dir: str | None = None) -> str:
    """A complete nginx.conf; with `runtime_dir`, nginx keeps its pid, logs and temp files there
    (so it runs as any user, e.g. `nginx -p DIR -c DIR/nginx.conf`)."""
    lines = ["# Start nginx with TZ=UTC in its environment: the shard-down envelope's timestamp is",
             "# nginx's local time, and the API's instants are UTC.", "worker_processes 1;"]
    if runtime_dir:
        lines += [f"pid {runtime_dir}/nginx.pid;", f"error_log {runtime_dir}/error.log;"]
    lines += ["events { worker_connections 1024; }", "http {", "    access_log off;"]
    if runtime_dir:
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            lines.append(f"    {kind}_temp_path {runtime_dir}/{kind}_temp;")
    for name, address in shards:
        lines.append(f"    upstream amps_shard_{name} {{ server {address}; keepalive 16; }}")
    servers = " ".join(f"server {address};" for _, address in shards)
    lines.append(f"    upstream amps_any_shard {{ {servers} keepalive 16; }}")
    lines.append("    # Amps and control API keys: sk_test_<shard>_...")
    lines.append("    map $http_x_api_key $amps_by_key {")
    lines.append("        default amps_any_shard;")
    for name, _ in shards:
        lines.append(f"        ~^sk_test_{name}_ amps_shard_{name};")
    lines.append("    }")
    lines.append("    # FoxESS API keys (the token header): the shard's 8-hex-digit mark first")
    lines.append("    map $http_token $amps_upstream {")
    lines.append("        default $amps_by_key;")
    for name, _ in shards:
        lines.append(f"        ~^{shard_oem_mark(name)}- amps_shard_{name};")
    lines.append("    }")
    lines += _shard_down_maps(shards)
    lines += [
        "    server {",
        f"        listen {listen};",
        "        client_max_body_size 1m;",
        "        location / {",
        "            proxy_pass http://$amps_upstream;",
        "            proxy_http_version 1.1;",
        '            proxy_set_header Connection "";',
        "            proxy_set_header Host $host;",
        "            # A shard that is down: tenant creation moves on to the next one.",
        "            proxy_next_upstream error timeout;",
        "            # nginx's own 502/504 (the shard is down or silent), in the Amps error envelope;",
        "            # a shard's own replies pass through untouched (proxy_intercept_errors is off).",
        f"            error_page 502 504 ={STATUS_BY_CODE[SHARD_DOWN]} @amps_shard_down;",
        "        }",
        "        location @amps_shard_down {",
        "            default_type application/json;",
        f"            add_header Retry-After {RETRY_AFTER_S} always;",
        f"            return {STATUS_BY_CODE[SHARD_DOWN]} '{_shard_down_body()}';",
        "        }",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _shard_down_maps(shards: list[tuple[str, str]]) -> list[str]:
    """Variables for the shard-down envelope: message and details by upstream, and a `meta` as
    the simulator writes it (req_ + 8 characters, a UTC instant with milliseconds, the path)."""
    lines = ["    map $amps_upstream $amps_down_message {"]
    lines.append(f'        default "No amps-sim shard is up to serve this request; retry in {RETRY_AFTER_S} s.";')
    for name, _ in shards:
        message = f"The shard '{name}' that holds this tenant is down; retry in {RETRY_AFTER_S} s."
        lines.append(f"        amps_shard_{name} {_nginx_string(json.dumps(message)[1:-1])};")
    lines.append("    }")
    lines.append("    map $amps_upstream $amps_down_details {")
    lines.append(f"        default {_nginx_string(json.dumps({'retryAfterSeconds': RETRY_AFTER_S}, separators=(',', ':')))};")
    for name, _ in shards:
        details = {"retryAfterSeconds": RETRY_AFTER_S, "shard": name}
        lines.append(f"        amps_shard_{name} {_nginx_string(json.dumps(details, separators=(',', ':')))};")
    lines.append("    }")
    lines += [
        "    map $request_id $amps_request_id { \"~^(?<head>[0-9a-f]{8})\" req_$head; default req_00000000; }",
        "    map $time_iso8601 $amps_second { \"~^(?<utc>[0-9T:-]{19})\" $utc; default 1970-01-01T00:00:00; }",
        r'    map $msec $amps_millis { "~\.(?<ms>[0-9]{3})$" $ms; default 000; }',
        "    # The path as sent, when it has nothing a JSON string would need escaped.",
        "    map $request_uri $amps_path { \"~^(?<path>[A-Za-z0-9/_.~%!$&'()*+,;=:@-]*)(\\?|$)\" $path; default /; }",
    ]
    return lines


def _shard_down_body() -> str:
    """The envelope nginx answers with (single-quoted in the config: no single quotes inside)."""
    return (
        '{"success":false,"error":{"code":"' + SHARD_DOWN + '","message":"$amps_down_message",'
        '"details":$amps_down_details},"meta":{"requestId":"$amps_request_id",'
        '"timestamp":"$amps_second.${amps_millis}Z","path":"$amps_path","latencyMs":0}}'
    )


def _nginx_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def add_nginx_conf_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("nginx-conf", help="print the nginx configuration that routes requests to shards by key")
    parser.add_argument("--listen", default="8080", help="what nginx listens on (default 8080)")
    parser.add_argument("--shard", dest="shards", action="append", type=_shard_address, required=True,
                        metavar="NAME=HOST:PORT", help="a shard started with `serve --shard NAME`; repeat for each")
    parser.add_argument("--runtime-dir", help="keep nginx's pid, logs and temp files here (to run it unprivileged)")
    parser.set_defaults(func=lambda args: print(nginx_conf(args.listen, args.shards, args.runtime_dir), end="") or 0)
