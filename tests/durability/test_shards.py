"""Two `amps-sim serve --shard` processes behind nginx (Debian's package), configured by
`amps-sim nginx-conf`: tenants land on both, every later request reaches the shard that holds
the tenant, and `kill -9` of one shard loses nothing while the other keeps serving."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import spec_violations
from tests.durability.test_crash import START, Server, call
from tests.test_serve import ROOT, _free_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (.ci/run installs Debian's package)")


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args} exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{url} did not come up")


class Shard(Server):
    """One shard: a durable server on a port fixed before nginx's configuration is written."""

    def __init__(self, name: str, state_dir: Path) -> None:
        super().__init__(state_dir, "--shard", name, port=_free_port())
        self.name = name


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, dict[str, Shard]]]:
    shards = {name: Shard(name, tmp_path / f"state-{name}") for name in ("a", "b")}
    runtime = tmp_path / "nginx"
    runtime.mkdir()
    proxy_port = _free_port()
    conf = subprocess.run(
        [sys.executable, "-m", "amps_sim.cli", "nginx-conf", "--listen", f"127.0.0.1:{proxy_port}", "--runtime-dir", str(runtime),
         *(arg for s in shards.values() for arg in ("--shard", f"{s.name}=127.0.0.1:{s.port}"))],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    (runtime / "nginx.conf").write_text(conf)
    for shard in shards.values():
        shard.start()
    assert NGINX is not None
    nginx = subprocess.Popen([NGINX, "-p", str(runtime), "-c", str(runtime / "nginx.conf"), "-g", "daemon off;"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "TZ": "UTC"})
    base = f"http://127.0.0.1:{proxy_port}"
    try:
        _wait(base + "/openapi.yaml", nginx)
        yield base, shards
    finally:
        nginx.send_signal(signal.SIGTERM)
        nginx.wait(timeout=10)
        if nginx.stderr:
            nginx.stderr.close()
        for shard in shards.values():
            shard.stop()


FOX = {"id": "fox", "profile": "foxess", "timeZone": "Europe/London", "timeZoneKnown": True,
       "scheduler": {"enabled": False, "groups": []}}
PUSH = {"action": {"command": "charge", "start": "2026-05-08T10:00:00Z", "end": "2026-05-08T11:00:00Z",
                   "parameters": {"target": {"value": 80, "unit": "percent"}}}}


def _shard_of(key: str) -> str:
    return key.split("_")[2]


def test_tenants_spread_over_shards_and_survive_a_shard_kill(cluster: tuple[str, dict[str, Shard]]) -> None:
    base, shards = cluster
    tenants: dict[str, str] = {}  # key -> its action id
    for _ in range(8):
        status, created = call(base, "POST", "/_sim/tenants", None, {"clock": {"now": START}, "devices": [FOX]})
        assert status == 201, created
        key = created["apiKey"]
        status, pushed = call(base, "POST", "/battery/fox", key, PUSH)
        assert status == 202, pushed
        tenants[key] = pushed["actionId"]
    landed = {_shard_of(key) for key in tenants}
    assert landed == {"a", "b"}, f"all tenants landed on {landed}"
    # Every key reaches the shard that minted it: straight to that shard's port, the same answer.
    for key, action_id in tenants.items():
        status, via_proxy = call(base, "GET", f"/actions/{action_id}", key)
        assert status == 200, via_proxy
        direct = f"http://127.0.0.1:{shards[_shard_of(key)].port}"
        assert call(direct, "GET", f"/actions/{action_id}", key) == (status, via_proxy)
        status, clock = call(base, "POST", "/_sim/clock/advance", key, {"by": "1h5m"})
        assert status == 200 and clock["now"] == "2026-05-08T09:05:00.000Z"

    shards["a"].kill()
    # The killed shard's tenants get the Amps error envelope from nginx, not its HTML 502 page.
    for key, action_id in tenants.items():
        if _shard_of(key) == "a":
            _assert_shard_down(base, "GET", f"/actions/{action_id}", key, "a")
            _assert_shard_down(base, "POST", "/battery/fox", key, "a", PUSH)
            _assert_shard_down(base, "POST", "/_sim/clock/advance", key, "a", {"by": "1h"})
    survivors = [key for key in tenants if _shard_of(key) == "b"]
    for key in survivors:
        status, record = call(base, "GET", f"/actions/{tenants[key]}", key)
        assert status == 200 and record["state"] == "scheduled"
    # New tenants still get created: on the shard that is up.
    status, created = call(base, "POST", "/_sim/tenants", None, {"clock": {"now": START}})
    assert status == 201 and _shard_of(created["apiKey"]) == "b"

    shards["a"].start()
    for key, action_id in tenants.items():
        status, record = call(base, "GET", f"/actions/{action_id}", key)
        assert status == 200, (key, record)
        assert record["state"] == "scheduled"
        status, clock = call(base, "GET", "/_sim/clock", key)
        assert clock["now"] == "2026-05-08T09:05:00.000Z"
        status, fired = call(base, "POST", "/_sim/clock/advance", key, {"by": "1h"})
        assert status == 200
        assert call(base, "GET", f"/actions/{action_id}", key)[1]["state"] == "completed"


def _assert_shard_down(base: str, method: str, path: str, key: str, shard: str, body: Any = None) -> None:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"x-api-key": key, **({"Content-Type": "application/json"} if data else {})}
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    reply = caught.value
    raw, ctype = reply.read(), reply.headers.get("Content-Type")
    assert reply.code == 503, (reply.code, raw[:200])
    assert not spec_violations(method, path, reply.code, raw, ctype), spec_violations(method, path, reply.code, raw, ctype)
    envelope = json.loads(raw)
    assert envelope["success"] is False and envelope["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert f"shard {shard!r}" in envelope["error"]["message"], envelope
    assert envelope["meta"]["path"] == path
    stamped = datetime.fromisoformat(envelope["meta"]["timestamp"].replace("Z", "+00:00"))
    assert abs((stamped - datetime.now(timezone.utc)).total_seconds()) < 60, envelope["meta"]
    assert int(reply.headers["Retry-After"]) >= 1


def test_native_keys_route_to_their_shard(cluster: tuple[str, dict[str, Shard]]) -> None:
    """FoxESS keys stay UUIDs but carry their shard's mark, so the proxy routes `token` too."""
    from amps_sim.simulator.world.tenants import shard_oem_mark

    base, _ = cluster
    for _ in range(4):
        status, created = call(base, "POST", "/_sim/tenants", None, {"clock": {"now": START}, "devices": [FOX]})
        key = created["apiKey"]
        status, issued = call(base, "POST", "/_sim/oem-keys", key, {"party": "homeowner_app", "devices": ["fox"]})
        assert status == 201
        token = issued["apiKey"]
        assert token.startswith(shard_oem_mark(_shard_of(key)) + "-")
        path = "/op/v0/device/list"
        from amps_sim.simulator.foxess.signature import sign

        stamp = str(int(time.time() * 1000))
        request = urllib.request.Request(
            base + "/foxess" + path, data=b"{}", method="POST",
            headers={"token": token, "timestamp": stamp, "signature": sign(path, token, stamp), "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            import json

            body = json.loads(resp.read())
        assert body["errno"] == 0, body
        assert [d["deviceSN"] for d in body["result"]["data"]] != []
