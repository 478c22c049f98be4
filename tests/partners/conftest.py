"""A simulator served in-process whose every reply is checked against the two specs, for the
client and plugin tests (which talk to it over real sockets, from this process or another)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import pytest
from aiohttp import web

from amps_sim.server import InProcessSimulator, build_app
from amps_sim.worlds import load_world
from tests.conftest import spec_violations

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class CheckedSimulator:
    def __init__(self) -> None:
        self.violations: list[str] = []
        self.requests = 0
        app = build_app(load_world(None), seed=7)
        app.middlewares.append(self._check)
        self._server = InProcessSimulator(app)
        self.url = self._server.start()
        self.root_key = "sk_live_abc123xyz"

    @web.middleware
    async def _check(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
        response = await handler(request)
        self.requests += 1
        if request.path.startswith("/foxess") or request.path.endswith("openapi.yaml"):
            return response  # the native cloud has its own envelope, checked by its own tests
        body = response.body if isinstance(response, web.Response) else b""
        raw = body if isinstance(body, bytes) else b""
        problems = spec_violations(request.method, request.path, response.status, raw, response.headers.get("Content-Type"))
        if problems:
            self.violations.append(f"{request.method} {request.path} -> {response.status}: {problems}")
        return response

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture(scope="session")
def checked_sim() -> Iterator[CheckedSimulator]:
    sim = CheckedSimulator()
    yield sim
    sim.stop()


@pytest.fixture
def no_spec_violations(checked_sim: CheckedSimulator) -> Iterator[CheckedSimulator]:
    before = len(checked_sim.violations)
    yield checked_sim
    assert checked_sim.violations[before:] == []


def amps_sim_command() -> list[str]:
    """The installed `amps-sim` console script beside this interpreter."""
    script = BIN / "amps-sim"
    assert script.exists(), f"{script} is missing: install the project (make .venv/.installed)"
    return [str(script)]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMPS_SIM_", "PYTEST_"))}
    env.update(extra)
    return env
