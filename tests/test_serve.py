"""`amps-sim serve` as a user starts it: a real process, real sockets, the docs' curl flows."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.api.test_seed_flows import SEED_002_PLAIN, SEED_004_SCHEDULE
from tests.conftest import spec_violations

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def amps_sim_serve(*args: str) -> Iterator[str]:
    """`amps-sim serve ARGS` on a free port; yields its base URL and stops it afterwards."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "amps_sim.cli", "serve", "--port", str(port), *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail("amps-sim serve exited: " + proc.stdout.read().decode())
            try:
                urllib.request.urlopen(base + "/openapi.yaml", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("amps-sim serve did not come up: " + proc.stdout.read().decode())
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    with amps_sim_serve("--seed", "3") as base:
        yield base


def call(base: str, method: str, path: str, body: str | None = None, key: str | None = "sk_live_abc123xyz"):
    headers = {"Content-Type": "application/json"} if body else {}
    if key:
        headers["x-api-key"] = key
    request = urllib.request.Request(base + path, data=body.encode() if body else None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            status, raw, ctype = resp.status, resp.read(), resp.headers.get("Content-Type")
    except urllib.error.HTTPError as err:
        status, raw, ctype = err.code, err.read(), err.headers.get("Content-Type")
    assert not spec_violations(method, path.split("?")[0], status, raw, ctype)
    return status, json.loads(raw) if raw and "json" in (ctype or "") else None


def test_default_world_answers_the_docs_key_in_realtime(served: str) -> None:
    status, clock = call(served, "GET", "/_sim/clock")
    assert status == 200 and clock["mode"] == "realtime" and clock["now"].startswith("2026-05-08T08:0")
    status, device = call(served, "GET", "/battery/dev_abc123")
    assert status == 200 and device["settings"]["scheduler_enabled"] is False
    assert call(served, "GET", "/battery", key=None)[0] == 401


def test_seed_004_curl_flow_verbatim(served: str) -> None:
    status, scheduled = call(served, "POST", "/battery/dev_abc123", SEED_004_SCHEDULE)
    assert status == 202 and scheduled["state"] == "scheduled" and scheduled["start"] == "2026-05-09T22:00:00.000Z"
    status, conflict = call(served, "POST", "/battery/dev_abc123", SEED_002_PLAIN)
    assert status == 409 and conflict["error"]["details"]["strategies"] == ["cancel_and_replace", "queue_after"]
    status, cancelled = call(served, "POST", f"/actions/{scheduled['actionId']}/cancel")
    assert status == 200 and cancelled["state"] == "cancelled"


def test_clock_flag_overrides_a_world_file_without_a_clock(tmp_path: Path) -> None:
    world = tmp_path / "world.yaml"
    world.write_text("apiKey: sk_test_flagged\ndevices:\n  - {id: dev_1}\n", encoding="utf-8")
    with amps_sim_serve("--world", str(world), "--clock", "virtual") as base:
        status, clock = call(base, "GET", "/_sim/clock", key="sk_test_flagged")
        assert status == 200 and clock["mode"] == "virtual"
        status, device = call(base, "GET", "/battery/dev_1", key="sk_test_flagged")
        assert status == 200


def test_webhook_allow_flag_limits_where_deliveries_may_go() -> None:
    body = '{"url": "http://127.0.0.1:9/hooks"}'
    with amps_sim_serve("--webhook-allow", "public") as base:
        status, refused = call(base, "POST", "/_sim/webhooks", body)
        assert status == 422 and refused["error"]["code"] == "WEBHOOK_URL_REFUSED"
        assert "127.0.0.1" in refused["error"]["message"]
    with amps_sim_serve() as base:  # the default suits a developer's machine: loopback is fine
        status, endpoint = call(base, "POST", "/_sim/webhooks", body)
        assert status == 201 and endpoint["secret"].startswith("whsec_")


def test_served_realtime_tenant_delivers_svix_signed_webhooks_in_the_background() -> None:
    import http.server
    import threading

    from svix.webhooks import Webhook

    received: list[tuple[bytes, dict[str, str]]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, {k.lower(): v for k, v in self.headers.items()}))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with amps_sim_serve("--seed", "4") as base:  # the default world: a realtime clock
            url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
            status, endpoint = call(base, "POST", "/_sim/webhooks", json.dumps({"url": url, "events": ["push.completed"]}))
            assert status == 201
            status, pushed = call(base, "POST", "/battery/dev_abc123", json.dumps({"action": {"command": "charge"}}))
            assert status == 202
            deadline = time.monotonic() + 20  # completes after 3 s, delivered 3 s later, with no request in between
            while not received and time.monotonic() < deadline:
                time.sleep(0.1)
            [(body, headers)] = received
            payload = Webhook(endpoint["secret"]).verify(body, headers)
            assert payload is None or isinstance(payload, dict)
            assert json.loads(body)["id"] == pushed["actionId"] and headers["x-amps-event-type"] == "push.completed"
    finally:
        server.shutdown()
        server.server_close()
