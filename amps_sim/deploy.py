"""`amps-sim nginx-conf`: the nginx configuration that routes requests to shards by key.

Each `amps-sim serve --shard NAME` process mints tenant keys `sk_test_NAME_...` and FoxESS keys
whose first 8 hex digits are a hash of NAME. nginx maps the `x-api-key` header (Amps and control
APIs) and the `token` header (the FoxESS API) to the shard that minted it; a request with neither
(tenant creation) goes to any shard, round robin, skipping one that is down.
"""

from __future__ import annotations

import argparse

from .simulator.world.tenants import shard_oem_mark


def _shard_address(text: str) -> tuple[str, str]:
    name, sep, address = text.partition("=")
    if not sep or not name or ":" not in address:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=HOST:PORT")
    return name, address


def nginx_conf(listen: str, shards: list[tuple[str, str]], runtime_dir: str | None = None) -> str:
    """A complete nginx.conf; with `runtime_dir`, nginx keeps its pid, logs and temp files there
    (so it runs as any user, e.g. `nginx -p DIR -c DIR/nginx.conf`)."""
    lines = ["worker_processes 1;"]
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
        "        }",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def add_nginx_conf_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("nginx-conf", help="print the nginx configuration that routes requests to shards by key")
    parser.add_argument("--listen", default="8080", help="what nginx listens on (default 8080)")
    parser.add_argument("--shard", dest="shards", action="append", type=_shard_address, required=True,
                        metavar="NAME=HOST:PORT", help="a shard started with `serve --shard NAME`; repeat for each")
    parser.add_argument("--runtime-dir", help="keep nginx's pid, logs and temp files here (to run it unprivileged)")
    parser.set_defaults(func=lambda args: print(nginx_conf(args.listen, args.shards, args.runtime_dir), end="") or 0)
