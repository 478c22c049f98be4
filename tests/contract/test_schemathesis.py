"""Schemathesis against the served simulator: every check, every phase, both specs.

Each run is the `schemathesis run` command line a partner would type -- `--checks all`, the
phases examples, coverage, fuzzing and stateful, a fixed seed -- started from the repo root with
`schemathesis.toml` (per-operation expected statuses, JUnit report) against a simulator served on
a loopback port (see conftest.py), in fresh tenants created through the control API. A run
passes only when schemathesis reports nothing at all and the server logged no unhandled error.

Targets:
  public           openapi.yaml as two tenants, alice and bob, each created by schemathesis
                   itself through `POST /_sim/tenants` (a Web Fuzzing Commons login, see
                   `_peers_config`): the default fleet on a virtual clock. Fuzzing runs as alice;
                   `object_level_authorization` replays alice's reads of her own objects as bob.
  public-realtime  openapi.yaml with `-H x-api-key: <fresh key>`: the default fleet on a
                   realtime clock from 2026-05-08T08:00Z, i.e. the default tenant of
                   `amps-sim serve` (what an independent run meets) under another key.
  public-wide      as `public-realtime` on a virtual clock, and the fuzzing phase draws every
                   value at random instead of reusing ids and values from earlier responses:
                   fewer real ids, many more distinct bodies (schemathesis stops drawing early
                   when most values come from a small pool of earlier responses).
  public-odd       openapi.yaml, random values, on the default fleet plus devices at the edges
                   of what the control API accepts (conftest.odd_fleet), on a realtime clock
                   running an hour per second across a DST change.
  control          simulator/specs/control-openapi.yaml with a fresh tenant's key.
  control-wide     the same, fuzzing with random values only.

Knobs (environment):
  AMPS_FUZZ_EXAMPLES  examples per operation in the fuzzing and stateful phases (default 50:
                      the CI-sized run inside `make test`)
  AMPS_FUZZ_SEEDS     comma-separated seeds, one run per seed and target (default 20260508)
  AMPS_FUZZ_TARGETS   comma-separated subset of the targets above (default: all)
  AMPS_FUZZ_TIMEOUT   seconds one run may take before it counts as hung (default 1800)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import FUZZ_RUNS, REPORTS, ROOT, WORLD_START, FuzzRun, Served, default_fleet, odd_fleet

pytestmark = pytest.mark.fuzz

DEFAULT_SEED = 20260508
DEFAULT_EXAMPLES = 50
CONFIG = ROOT / "schemathesis.toml"
VIRTUAL = {"mode": "virtual", "now": WORLD_START}
REALTIME = {"mode": "realtime", "now": WORLD_START}
# An hour per second from the eve of Europe's spring-forward night: lifecycles, windows and cleanups
# run during the run, and the plants' clocks jump under it.
FAST_OVER_DST = {"mode": "realtime", "now": "2026-03-28T20:00:00Z", "speed": 3600}


@dataclass(frozen=True)
class Target:
    spec_path: str
    clock: dict[str, Any]
    peers: bool = False  # tenants alice and bob via a WFC login instead of one -H key
    wide: bool = False  # fuzzing draws every value at random
    odd: bool = False  # the odd fleet instead of the default one


TARGETS = {
    "public": Target("/openapi.yaml", VIRTUAL, peers=True),
    "public-realtime": Target("/openapi.yaml", REALTIME),
    "public-wide": Target("/openapi.yaml", VIRTUAL, wide=True),
    "public-odd": Target("/openapi.yaml", FAST_OVER_DST, wide=True, odd=True),
    "control": Target("/_sim/openapi.yaml", VIRTUAL),
    "control-wide": Target("/_sim/openapi.yaml", VIRTUAL, wide=True),
}

# Appended to schemathesis.toml for the `wide` targets (TOML headers are absolute, so a table
# after the [[project]] arrays is still a top-level one).
WIDE = """
[phases.fuzzing.extra-data-sources]
responses = false
"""


def _env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name, "").strip()
    return [item.strip() for item in raw.split(",") if item.strip()] if raw else default


def _runs() -> list[tuple[str, int]]:
    targets = _env_list("AMPS_FUZZ_TARGETS", list(TARGETS))
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        raise pytest.UsageError(f"AMPS_FUZZ_TARGETS names unknown targets: {', '.join(unknown)}")
    seeds = [int(seed) for seed in _env_list("AMPS_FUZZ_SEEDS", [str(DEFAULT_SEED)])]
    return [(target, seed) for seed in seeds for target in targets]


def _examples() -> int:
    return int(os.environ.get("AMPS_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))


def _peers_config(name: str, clock: dict[str, Any], extra: str) -> tuple[Path, list[str]]:
    """A config whose auth is two fresh tenants, logged in through `POST /_sim/tenants`.

    Schemathesis creates both tenants itself: the WFC "login" posts the tenant spec and takes the
    key from `/apiKey` of the reply. `peers` makes `object_level_authorization` replay one
    tenant's reads as the other, which must not see them.
    """
    payload = json.dumps({"clock": clock, "devices": default_fleet()})
    login = {
        "endpoint": "/_sim/tenants",
        "verb": "POST",
        "contentType": "application/json",
        "payloadRaw": payload,
        "token": {"extractFrom": "body", "extractSelector": "/apiKey", "sendIn": "header", "sendName": "x-api-key"},
    }
    wfc = REPORTS / f"schemathesis-{name}.wfc.yaml"
    wfc.write_text(
        yaml.safe_dump({"schemaVersion": "0.2.0", "auth": [{"name": user, "loginEndpointAuth": login} for user in ("alice", "bob")]}),
        encoding="utf-8",
    )
    auth = f"""
[auth.wfc]
path = {json.dumps(str(wfc))}
user = "alice"
peers = ["alice", "bob"]
# One login per identity for the whole run: a second one would be a new, empty tenant.
refresh_interval = 86400
"""
    return _derived_config(name, extra + auth), []


def _derived_config(name: str, extra: str) -> Path:
    path = REPORTS / f"schemathesis-{name}.toml"
    path.write_text(CONFIG.read_text(encoding="utf-8") + "\n# ---- added for this run ----\n" + extra, encoding="utf-8")
    return path


def schemathesis_command(
    url: str, *, config: Path, seed: int, examples: int, junit: Path, extra: list[str]
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        url,
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--seed",
        str(seed),
        "--max-examples",
        str(examples),
        "--generation-database",
        "none",
        "--report",
        "junit",
        "--report-junit-path",
        str(junit),
        "--no-color",
        *extra,
    ]


_GENERATED = re.compile(r"(\d+) generated")
_FAILURES = re.compile(r"(\d+) (?:unique )?failures?\b")


def _summary_failures(output: str) -> int:
    tail = output.rsplit("SUMMARY", 1)[-1]
    found = [int(n) for n in _FAILURES.findall(tail)]
    return max(found) if found else 0


@dataclass
class Outcome:
    returncode: int
    output: str
    cases: int
    seconds: float


def run_schemathesis(served: Served, target: str, *, seed: int, examples: int, name: str) -> Outcome:
    """One `schemathesis run` of `target` against `served`; its output is kept in reports/."""
    spec = TARGETS[target]
    extra_toml = WIDE if spec.wide else ""
    if spec.peers:
        config, extra_args = _peers_config(name, spec.clock, extra_toml)
    else:
        config = _derived_config(name, extra_toml) if extra_toml else CONFIG
        fleet = odd_fleet() if spec.odd else None
        extra_args = ["--header", f"x-api-key: {served.tenant(spec.clock, fleet)}"]
    junit = REPORTS / f"schemathesis-{name}.xml"
    command = schemathesis_command(
        served.base + spec.spec_path, config=config, seed=seed, examples=examples, junit=junit, extra=extra_args
    )
    started = time.monotonic()
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=float(os.environ.get("AMPS_FUZZ_TIMEOUT", 1800)),
        env={**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"},
    )
    seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    (REPORTS / f"schemathesis-{name}.txt").write_text(output, encoding="utf-8")
    generated = _GENERATED.search(output.rsplit("SUMMARY", 1)[-1])
    return Outcome(done.returncode, output, int(generated.group(1)) if generated else 0, seconds)


@pytest.mark.parametrize(("target", "seed"), _runs(), ids=lambda value: str(value))
def test_schemathesis_finds_nothing(served: Served, target: str, seed: int) -> None:
    name = f"{target}-{seed}"
    errors_before = len(served.server_errors())
    outcome = run_schemathesis(served, target, seed=seed, examples=_examples(), name=name)
    FUZZ_RUNS.append(
        FuzzRun(target, seed, outcome.cases, outcome.seconds, _summary_failures(outcome.output), outcome.returncode)
    )
    new_errors = served.server_errors()[errors_before:]
    assert outcome.returncode == 0 and outcome.cases > 0, (
        f"schemathesis found problems with {target} (seed {seed}); the full output is in "
        f"reports/schemathesis-{name}.txt, the server's log in reports/fuzz-server.log\n\n{outcome.output[-12000:]}"
    )
    assert not new_errors, "the server logged unhandled errors (see reports/fuzz-server.log):\n" + "\n".join(new_errors)


def test_canary_the_peer_check_catches_a_planted_cross_tenant_leak(leaky: Served) -> None:
    """The `public` target's tenant check is armed: against a server that lets one tenant read
    another's action by id, the same run must fail with an object-level authorization bypass."""
    outcome = run_schemathesis(leaky, "public", seed=DEFAULT_SEED, examples=25, name=f"canary-{DEFAULT_SEED}")
    assert outcome.returncode != 0, outcome.output[-6000:]
    assert "Object-level authorization bypass" in outcome.output, outcome.output[-6000:]
    assert "`bob` received the `Action` that `alice` owns" in outcome.output
