"""Schemathesis against the served simulator: every check, every phase, both specs.

Each run is the `schemathesis run` command line a partner would type, started from the repo
root so it reads `schemathesis.toml` (per-operation expected statuses, checks, phases, reports),
against a simulator served on a loopback port (see conftest.py), in a fresh tenant created
through the control API. A run passes only when schemathesis reports nothing at all.

Targets:
  public           openapi.yaml, a fresh tenant with the default fleet on a virtual clock
                   (nothing moves unless asked: the same answers for the same seed)
  public-realtime  openapi.yaml, a fresh tenant with the default fleet on a realtime clock from
                   2026-05-08T08:00Z: the default tenant of `amps-sim serve`, under another key
  control          contracts/control-openapi.yaml, a fresh tenant with the default fleet

Knobs (environment):
  AMPS_FUZZ_EXAMPLES  examples per operation in the fuzzing and stateful phases (default 25:
                      the CI-sized run inside `make test`)
  AMPS_FUZZ_SEEDS     comma-separated seeds, one run per seed and target (default 20260508)
  AMPS_FUZZ_TARGETS   comma-separated subset of the targets above (default: all)
  AMPS_FUZZ_TIMEOUT   seconds one run may take before it counts as hung (default 1800)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import pytest

from .conftest import FUZZ_RUNS, REPORTS, ROOT, WORLD_START, FuzzRun, Served

pytestmark = pytest.mark.fuzz

DEFAULT_SEED = 20260508
DEFAULT_EXAMPLES = 25


@dataclass(frozen=True)
class Target:
    spec_path: str
    clock: dict[str, Any]


TARGETS = {
    "public": Target("/openapi.yaml", {"mode": "virtual", "now": WORLD_START}),
    "public-realtime": Target("/openapi.yaml", {"mode": "realtime", "now": WORLD_START}),
    "control": Target("/_sim/openapi.yaml", {"mode": "virtual", "now": WORLD_START}),
}


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


_GENERATED = re.compile(r"(\d+) generated")
_FAILURES = re.compile(r"(\d+) failures?")


def schemathesis_command(url: str, key: str, *, seed: int, examples: int, junit: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(ROOT / "schemathesis.toml"),
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
        "--header",
        f"x-api-key: {key}",
        "--report",
        "junit",
        "--report-junit-path",
        junit,
        "--no-color",
    ]


@pytest.mark.parametrize(("target", "seed"), _runs(), ids=lambda value: str(value))
def test_schemathesis_finds_nothing(served: Served, target: str, seed: int) -> None:
    spec = TARGETS[target]
    key = served.tenant(spec.clock)
    junit = str(REPORTS / f"schemathesis-{target}-{seed}.xml")
    command = schemathesis_command(served.base + spec.spec_path, key, seed=seed, examples=_examples(), junit=junit)
    errors_before = len(served.server_errors())
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
    (REPORTS / f"schemathesis-{target}-{seed}.txt").write_text(output, encoding="utf-8")
    cases = int(m.group(1)) if (m := _GENERATED.search(output)) else 0
    failures = int(m.group(1)) if (m := _FAILURES.search(output.rsplit("====", 1)[-1])) else 0
    FUZZ_RUNS.append(FuzzRun(target, seed, cases, seconds, failures, done.returncode))
    new_errors = served.server_errors()[errors_before:]
    assert done.returncode == 0 and cases > 0, (
        f"schemathesis found problems with {target} (seed {seed}); full output in "
        f"reports/schemathesis-{target}-{seed}.txt\n\n{output[-12000:]}"
    )
    assert not new_errors, "the server logged unhandled errors (see reports/fuzz-server.log):\n" + "\n".join(new_errors)
