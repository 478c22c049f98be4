"""A simulator served on a loopback port, and fresh tenants on it, for the schemathesis runs.

The server runs in its own process (`python -m tests.contract.serve_sim`, built like
`amps-sim serve`) so a crash or a hang cannot take pytest with it, and so its log -- where the
traceback of any 500 lands -- can be kept under `reports/`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from amps_sim.cli import load_world_file

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports"
SERVER_SEED = 20260508
# The instant the default world's clock starts at, so the docs' example timestamps are in the future.
WORLD_START = "2026-05-08T08:00:00Z"


@dataclass
class Served:
    base: str
    default_key: str
    log: Path
    process: subprocess.Popen[bytes]

    def call(self, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if key is not None:
            headers["x-api-key"] = key
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        return status, json.loads(raw) if raw else None

    def tenant(self, clock: dict[str, Any], devices: list[dict[str, Any]] | None = None) -> str:
        """A fresh tenant created through the control API; its key."""
        spec = {"clock": clock, "devices": default_fleet() if devices is None else devices}
        status, body = self.call("POST", "/_sim/tenants", spec)
        assert status == 201, body
        return body["apiKey"]

    def server_errors(self) -> list[str]:
        """Lines of the server log that report an unhandled exception."""
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if "unhandled error" in line]


def default_fleet() -> list[dict[str, Any]]:
    """The devices of the embedded default world (`amps-sim serve`), as tenant-spec entries."""
    world = load_world_file(None)
    return [device.model_dump(mode="json", exclude_none=True) for device in world.devices]


def odd_fleet() -> list[dict[str, Any]]:
    """The default fleet plus devices at the edges of what the control API accepts.

    A control-API run against the default tenant (as an independent check may do first) leaves
    devices like these behind for the public API to meet: tiny and huge batteries, powers near
    zero, zones with odd offsets (+14:00, +5:45, +12:45 with DST, 30-minute DST), a whole-replace
    scheduler with every slot taken, a one-slot scheduler, the largest slot limit.
    """
    hours = [(f"{h:02d}:00", f"{h:02d}:59") for h in range(7)]
    return default_fleet() + [
        {"id": "dev_speck", "profile": "foxess", "timeZone": "Pacific/Kiritimati", "timeZoneKnown": True,
         "battery": {"capacityKwh": 1.1754943508222875e-38, "soc": 0, "maxPowerKw": 2.2e-308},
         "scheduler": {"enabled": False, "groups": []}},
        {"id": "dev_vast", "profile": "foxess_legacy", "timeZone": "Pacific/Chatham", "timeZoneKnown": False,
         "battery": {"capacityKwh": 1000, "soc": 100, "maxPowerKw": 100},
         "scheduler": {"enabled": True, "maxGroupCount": 8, "groups": [
             *({"start": start, "end": end, "workMode": mode}
               for (start, end), mode in zip(hours, ["SelfUse", "Backup", "Feedin", "SelfUse", "Backup", "Feedin", "SelfUse"], strict=True)),
             {"start": "07:00", "end": "23:59", "workMode": "ForceCharge", "fdPwr": 10500, "maxSoc": 100}]}},
        {"id": "dev_kathmandu", "profile": "direct", "timeZone": "Asia/Kathmandu", "timeZoneKnown": True,
         "battery": {"capacityKwh": 0.001, "soc": 100, "maxPowerKw": 100}},
        {"id": "dev_lord_howe", "profile": "foxess", "timeZone": "Australia/Lord_Howe", "timeZoneKnown": True,
         "battery": {"capacityKwh": 13.5, "soc": 99.999, "maxPowerKw": 0.001},
         "scheduler": {"enabled": True, "maxGroupCount": 1,
                       "groups": [{"start": "23:59", "end": "23:59", "workMode": "ForceDischarge", "fdSoc": 100, "fdPwr": 1}]}},
        {"id": "dev_wide_slots", "profile": "foxess", "timeZone": "America/St_Johns", "timeZoneKnown": False,
         "battery": {"capacityKwh": 10, "soc": 50, "maxPowerKw": 5}, "scheduler": {"enabled": True, "maxGroupCount": 32, "groups": []}},
        {"id": "dev_gmt_minus_12", "profile": "foxess", "timeZone": "Etc/GMT+12", "timeZoneKnown": True,
         "battery": {"capacityKwh": 999.999, "soc": 0.001, "maxPowerKw": 99.99}},
    ]


@pytest.fixture(scope="session")
def served() -> Iterator[Served]:
    yield from _serve("fuzz-server.log")


@pytest.fixture(scope="session")
def leaky() -> Iterator[Served]:
    """A simulator with a planted cross-tenant leak, for the canary test."""
    yield from _serve("fuzz-server-leaky.log", "--leak-actions")


def _serve(log_name: str, *flags: str) -> Iterator[Served]:
    REPORTS.mkdir(exist_ok=True)
    log = REPORTS / log_name
    err = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.contract.serve_sim", "--seed", str(SERVER_SEED), *flags],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=err,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=10)
        err.close()
        pytest.fail("the simulator did not start:\n" + log.read_text(encoding="utf-8", errors="replace"))
    hello = json.loads(line)
    served = Served(f"http://127.0.0.1:{hello['port']}", hello["key"], log, process)
    deadline = time.monotonic() + 10
    while True:
        try:
            urllib.request.urlopen(served.base + "/openapi.yaml", timeout=1).read()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        process.stdout.close()
        err.close()


@dataclass
class FuzzRun:
    name: str
    seed: int
    cases: int
    seconds: float
    failures: int
    returncode: int
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        verdict = "no findings" if self.returncode == 0 else f"FAILED (exit {self.returncode}, {self.failures} failures)"
        return f"{self.name:<18} seed {self.seed:<10} {self.cases:>6} cases {self.seconds:>7.1f} s  {verdict}"


FUZZ_RUNS: list[FuzzRun] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FUZZ_RUNS:
        return
    terminalreporter.section("schemathesis runs")
    for run in FUZZ_RUNS:
        terminalreporter.write_line(run.line())
    total_cases = sum(run.cases for run in FUZZ_RUNS)
    total_seconds = sum(run.seconds for run in FUZZ_RUNS)
    terminalreporter.write_line(f"{'total':<18} {'':<15} {total_cases:>6} cases {total_seconds:>7.1f} s")
