"""The harness can fail: a wrong expectation, a reply that breaks the spec, a missing control API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from amps_sim.contracts.embedded import EmbeddedSimulator
from amps_sim.contracts.events import RunFinished, RunStarted, ScenarioFinished, ScenarioStarted, StepDone
from amps_sim.contracts.loader import load_suite
from amps_sim.contracts.runner import ScenarioRunner, Target, probe_control
from amps_sim.contracts.transport import SpecCheckedClient
from amps_sim.simulator.web.app import create_app
from amps_sim.simulator.web.common import TENANTS
from amps_sim.simulator.world.tenants import TenantSpec
from amps_sim.suite import run_scenarios
from tests.harness.helpers import FOX, PASSING, WRONG_EXPECTATION, run_folder, write


async def test_a_passing_scenario_passes(tmp_path: Path) -> None:
    write(tmp_path, "ok.yaml", PASSING)
    summary = await run_folder(tmp_path)
    assert summary.ok and summary.count("passed") == 1
    assert summary.responses > 4 and summary.validation_s > 0


async def test_a_wrong_expectation_fails_with_the_mismatch_and_stops(tmp_path: Path) -> None:
    write(tmp_path, "wrong.yaml", WRONG_EXPECTATION)
    summary = await run_folder(tmp_path)
    result = summary.results[0]
    assert result.status == "failed" and not summary.ok
    (failure,) = result.failures
    assert failure.kind == "expectation" and failure.step == 0 and failure.line == 7
    assert 'body.state: expected "acknowledged", got "scheduled"' in failure.message
    assert failure.diff is not None and '-  "state": "acknowledged"' in failure.diff
    assert [s.status for s in result.steps] == ["failed", "not_run"]


def _add_a_key_to_action_reads(app: web.Application) -> web.Application:
    """Wrap the app so that `GET /actions/{id}` grows a key the spec does not allow."""

    @web.middleware
    async def surprise(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if request.method == "GET" and request.path.startswith("/actions/") and isinstance(response, web.Response):
            body = json.loads(response.body)  # type: ignore[arg-type]
            body["surprise"] = True
            return web.json_response(body, status=response.status)
        return response

    app.middlewares.append(surprise)
    return app


async def test_a_reply_that_breaks_the_spec_fails_even_when_expectations_match(tmp_path: Path) -> None:
    write(tmp_path, "ok.yaml", PASSING)
    summary = await run_folder(tmp_path, app=_add_a_key_to_action_reads(create_app(seed=1)))
    result = summary.results[0]
    assert result.status == "failed"
    assert [f.kind for f in result.failures] == ["spec"]
    (failure,) = result.failures
    assert failure.step == 1
    assert "GET /actions/act_" in failure.message
    assert "breaks the spec at /surprise [additionalProperties]" in failure.message
    # The scenario's own expectations held: the step's verdict is only the spec's.
    assert result.steps[1].status == "failed" and all(f.kind == "spec" for f in result.steps[1].failures)


async def test_spec_failures_in_the_runners_own_reads_fail_too(tmp_path: Path) -> None:
    write(tmp_path, "ok.yaml", PASSING.replace("  - read_action: ${act}\n    expect: {body: {id: \"${act}\", state: scheduled}}\n", ""))
    app = create_app(seed=2)

    @web.middleware
    async def bad_clock(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if request.path == "/_sim/clock":
            return web.json_response({"now": "yesterday", "mode": "virtual"})
        return response

    app.middlewares.append(bad_clock)
    summary = await run_folder(tmp_path, app=app)
    messages = [f.message for f in summary.results[0].failures]
    assert messages and all("GET /_sim/clock → 200 (timeline read) breaks the spec at /now [pattern]" in m for m in messages)


async def test_undocumented_steps_must_really_be_undocumented(tmp_path: Path) -> None:
    write(tmp_path, "u.yaml", f"""
        name: u
        description: u
        source: decision (harness test)
        given: {{devices: [{FOX}]}}
        steps:
          - request: {{method: GET, path: /nothing}}
            undocumented: true
            expect: {{status: 404}}
          - request: {{method: GET, path: /battery/dev_fox}}
            undocumented: true
        """)
    summary = await run_folder(tmp_path)
    (failure,) = summary.results[0].failures
    assert failure.step == 1 and "marked undocumented, but the spec documents it" in failure.message


def _deployment_without_control_api(key: str) -> web.Application:
    """The public API only, as a real deployment would serve it: /_sim answers a plain-text 404."""
    app = create_app(seed=3)
    app[TENANTS].create(TenantSpec.model_validate({"devices": [{"id": "dev_fox"}]}), key, pinned=True)

    @web.middleware
    async def no_control(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/_sim"):
            return web.Response(status=404, text="404: Not Found")
        return await handler(request)

    app.middlewares.insert(0, no_control)
    return app


async def test_a_target_without_control_api_skips_what_needs_it(tmp_path: Path) -> None:
    write(tmp_path, "needs_control.yaml", PASSING)
    write(tmp_path, "portable.yaml", """
        name: p
        description: p
        source: decision (harness test)
        steps:
          - request: {method: GET, path: /battery}
            expect: {body: {devices: [{id: dev_fox}]}}
          - request: {method: GET, path: /battery}
            auth: none
            expect: {status: 401, code: UNAUTHORIZED}
        """)
    summary = await run_folder(tmp_path, app=_deployment_without_control_api("sk_live_partner"), api_key="sk_live_partner")
    by_file = {r.loaded.relative: r for r in summary.results}
    assert by_file["needs_control.yaml"].status == "skipped"
    assert "needs the /_sim control API" in (by_file["needs_control.yaml"].skip_reason or "")
    assert by_file["portable.yaml"].status == "passed"
    assert summary.ok


async def test_probe_finds_the_control_api_of_a_served_simulator() -> None:
    async with EmbeddedSimulator() as base_url, aiohttp.ClientSession() as session:
        assert await probe_control(SpecCheckedClient(session, base_url))
    async with EmbeddedSimulator(_deployment_without_control_api("k")) as base_url, aiohttp.ClientSession() as session:
        assert not await probe_control(SpecCheckedClient(session, base_url))


async def test_the_runner_emits_typed_events_in_order(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", PASSING)
    write(tmp_path, "b.yaml", WRONG_EXPECTATION)
    scenarios, _ = load_suite([tmp_path])
    seen: list[str] = []
    async with EmbeddedSimulator() as base_url, aiohttp.ClientSession() as session:
        client = SpecCheckedClient(session, base_url)
        runner = ScenarioRunner(client, Target(base_url), listeners=[lambda e: seen.append(type(e).__name__)])
        summary = await runner.run_all(scenarios)
    assert seen == [
        RunStarted.__name__,
        ScenarioStarted.__name__, StepDone.__name__, StepDone.__name__, ScenarioFinished.__name__,
        ScenarioStarted.__name__, StepDone.__name__, ScenarioFinished.__name__,
        RunFinished.__name__,
    ]
    assert [r.status for r in summary.results] == ["passed", "failed"]


async def test_each_scenario_gets_its_own_tenant(tmp_path: Path) -> None:
    # The same scenario twice: the second would conflict with the first's booking in a shared tenant.
    write(tmp_path, "one.yaml", PASSING)
    write(tmp_path, "two.yaml", PASSING)
    summary = await run_folder(tmp_path, record_timeline=False)
    assert [r.status for r in summary.results] == ["passed", "passed"]
    keys = {r.setup[0].body["apiKey"] for r in summary.results}
    assert len(keys) == 2


async def test_timeline_is_recorded_per_device_and_step(tmp_path: Path) -> None:
    write(tmp_path, "ok.yaml", PASSING)
    summary = await run_folder(tmp_path)
    timeline = summary.results[0].timeline
    assert timeline is not None and [step for step, _ in timeline.clock] == [-1, 0, 1]
    lane = timeline.devices["dev_fox"]
    assert lane.time_zone == "Europe/London" and len(lane.samples) == 3
    assert [a["state"] for a in lane.actions.values()] == ["scheduled"]


async def test_run_against_served_url_uses_the_same_path(tmp_path: Path) -> None:
    write(tmp_path, "ok.yaml", PASSING)
    scenarios, _ = load_suite([tmp_path])
    async with EmbeddedSimulator() as base_url:
        summary = await run_scenarios(scenarios, base_url=base_url, label="served")
    assert summary.target == "served" and summary.ok
