"""The scenario runner: one fresh tenant per scenario, every step judged, every reply spec-checked.

The runner only talks HTTP (through :class:`~contracts.transport.SpecCheckedClient`), so the
same code drives the embedded simulator, a served one, or any deployment of the API. It emits
:mod:`contracts.events` as it goes; reporters listen and never reach into it.

A scenario stops at its first failed expectation (later steps build on earlier replies), but a
spec violation does not stop it: the scenario is failed and the rest still runs, so one report
shows every way the replies break the contract.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Iterable

from contracts.events import Listener, RunFinished, RunStarted, ScenarioFinished, ScenarioStarted, StepDone
from contracts.loader import LoadedScenario
from contracts.matching import lookup
from contracts.results import Failure, RunSummary, ScenarioResult, StepRecord
from contracts.scenario import DEFAULT_NOW, KeyAuth, TenantAuth, TenantGiven, step_kind
from contracts.steps import describe, judge_reply, judge_truth, plan_request
from contracts.timeline import TimelineRecorder
from contracts.transport import Exchange, SpecCheckedClient
from contracts.variables import UnknownVariable, Variables


@dataclass(frozen=True)
class Target:
    """Where scenarios run. `api_key` is used only for scenarios that need no control API."""

    base_url: str
    has_control: bool = True
    api_key: str | None = None
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.base_url


async def probe_control(client: SpecCheckedClient) -> bool:
    """Whether the target serves the `/_sim` control API: it answers `GET /_sim/clock` with JSON.

    Without a key the simulator says 401 in its JSON envelope; a deployment without the control
    API says 404 or serves something that is not JSON.
    """
    exchange = await client.send("GET", "/_sim/clock", key=None, purpose="setup")
    return exchange.error is None and exchange.status != 404 and isinstance(exchange.body, dict)


class ScenarioRunner:
    def __init__(
        self,
        client: SpecCheckedClient,
        target: Target,
        *,
        listeners: Iterable[Listener] = (),
        record_timeline: bool = True,
    ) -> None:
        self.client = client
        self.target = target
        self.listeners = list(listeners)
        self.record_timeline = record_timeline

    def _emit(self, event: Any) -> None:
        for listener in self.listeners:
            listener(event)

    async def run_all(self, scenarios: list[LoadedScenario], broken_files: list[str] | None = None) -> RunSummary:
        started = time.perf_counter()
        self._emit(RunStarted(total=len(scenarios), target=self.target.name))
        results = []
        for index, loaded in enumerate(scenarios, start=1):
            results.append(await self.run(loaded, index, len(scenarios)))
        summary = RunSummary(results, time.perf_counter() - started, self.target.name, list(broken_files or []))
        self._emit(RunFinished(summary))
        return summary

    async def run(self, loaded: LoadedScenario, index: int = 1, total: int = 1) -> ScenarioResult:
        self._emit(ScenarioStarted(loaded, index, total))
        started = time.perf_counter()
        result = await self._run(loaded)
        result.duration_s = time.perf_counter() - started
        self._emit(ScenarioFinished(result, index, total))
        return result

    # ---- one scenario ----------------------------------------------------------------------

    def _skip_reason(self, loaded: LoadedScenario) -> str | None:
        if loaded.scenario.needs_control and not self.target.has_control:
            return f"needs the /_sim control API, which {self.target.name} does not serve"
        if not loaded.scenario.needs_control and not self.target.has_control and not self.target.api_key:
            return "no control API to create a tenant and no --api-key given"
        return None

    async def _run(self, loaded: LoadedScenario) -> ScenarioResult:
        scenario = loaded.scenario
        result = ScenarioResult(loaded=loaded, status="passed")
        result.steps = [
            StepRecord(index=i, kind=step_kind(step), label=describe(step), line=loaded.step_line(i))
            for i, step in enumerate(scenario.steps)
        ]
        reason = self._skip_reason(loaded)
        if reason is not None:
            result.status, result.skip_reason = "skipped", reason
            return result

        keys = await self._tenants(loaded, result)
        if keys is None:
            result.status = "failed"
            return result
        given_now = scenario.given.now if scenario.given and scenario.given.now else DEFAULT_NOW
        variables = Variables({"key": keys["main"], "now": given_now})

        recorder = None
        if self.record_timeline and self.target.has_control and scenario.devices:
            recorder = TimelineRecorder(self.client, keys["main"], [d.id for d in scenario.devices])
            result.setup.extend(await recorder.record(None))
            result.timeline = recorder.timeline
        result.failures.extend(spec_failures(result.setup, None))

        stopped = False
        for step, record in zip(scenario.steps, result.steps):
            if stopped:
                continue
            step_started = time.perf_counter()
            await self._run_step(step, record, keys, variables)
            if recorder is not None:
                record.exchanges.extend(await recorder.record(record))
            record.failures.extend(spec_failures(record.exchanges, record, undocumented=getattr(step, "undocumented", False)))
            record.duration_s = time.perf_counter() - step_started
            record.status = "failed" if record.failures else "passed"
            result.failures.extend(record.failures)
            self._emit(StepDone(loaded, record))
            stopped = any(f.kind != "spec" for f in record.failures)
        if result.failures:
            result.status = "failed"
        return result

    async def _tenants(self, loaded: LoadedScenario, result: ScenarioResult) -> dict[str, str] | None:
        """Create the scenario's tenants (main first); their keys by name, or None on failure."""
        scenario = loaded.scenario
        if not scenario.needs_control and not self.target.has_control:
            assert self.target.api_key is not None
            return {"main": self.target.api_key}
        wanted: dict[str, TenantGiven] = {"main": scenario.given or TenantGiven()}
        if scenario.given:
            wanted.update(scenario.given.tenants)
        keys: dict[str, str] = {}
        for name, given in wanted.items():
            exchange = await self.client.send(
                "POST", "/_sim/tenants", key=None, purpose="setup", json_body=given.tenant_spec()
            )
            result.setup.append(exchange)
            key = lookup(exchange.reply_view(), "body.apiKey")
            if exchange.status != 201 or not isinstance(key, str):
                message = exchange.error or f"POST /_sim/tenants answered {exchange.status}"
                details = [_short(exchange.body)]
                result.failures.append(Failure("setup", f"could not create tenant {name!r}: {message}", details=details))
                return None
            keys[name] = key
        return keys

    async def _run_step(self, step: Any, record: StepRecord, keys: dict[str, str], variables: Variables) -> None:
        def fail(kind: Any, message: str, **more: Any) -> None:
            record.failures.append(Failure(kind, message, step=record.index, line=record.line, **more))

        try:
            plan = plan_request(step, variables)
        except UnknownVariable as exc:
            fail("expectation", f"${{{exc.args[0]}}} has no value (did the step that saves it fail?)")
            return
        key = self._key_for(step.auth, keys)
        exchange = await self.client.send(
            plan.method,
            plan.path,
            key=key,
            purpose="step",
            json_body=plan.json_body,
            raw=plan.raw,
            query=plan.query,
            headers=plan.headers,
        )
        record.exchanges.append(exchange)
        if exchange.error is not None:
            fail("transport", f"{plan.method} {plan.path} got no reply: {exchange.error}")
            return
        reply = exchange.reply_view()
        try:
            if record.kind == "truth":
                verdict = judge_truth(step.expect, reply, variables)
            else:
                verdict = judge_reply(step.expect, reply, variables)
        except UnknownVariable as exc:
            fail("expectation", f"${{{exc.args[0]}}} has no value (did the step that saves it fail?)")
            return
        if not verdict.ok:
            first = verdict.mismatches[0]
            summary = f"{plan.method} {exchange.path} → {exchange.status}: {first}"
            if len(verdict.mismatches) > 1:
                summary += f" (+{len(verdict.mismatches) - 1} more)"
            fail("expectation", summary, details=[str(m) for m in verdict.mismatches], diff=verdict.diff)
            return
        save = getattr(step, "save", None)
        if save:
            missing = variables.save_from(reply, save)
            if missing:
                fail("expectation", f"cannot save {', '.join(missing)}: not in the reply", details=[_short(exchange.body)])

    @staticmethod
    def _key_for(auth: Any, keys: dict[str, str]) -> str | None:
        if auth is None:
            return keys["main"]
        if auth == "none":
            return None
        if isinstance(auth, KeyAuth):
            return auth.key
        if isinstance(auth, TenantAuth):
            return keys[auth.tenant]
        raise AssertionError(f"unhandled auth {auth!r}")


def spec_failures(exchanges: list[Exchange], record: StepRecord | None, *, undocumented: bool = False) -> list[Failure]:
    """Every spec violation in these exchanges as a failure of the step (or of the setup).

    A step marked `undocumented` expects exactly one violation, `operation-undocumented`, from
    its own request; that one is not a failure, and its absence is.
    """
    step = record.index if record else None
    line = record.line if record else None
    failures: list[Failure] = []
    for exchange in exchanges:
        violations = exchange.violations
        if undocumented and exchange.purpose == "step":
            if [v.rule for v in violations] == ["operation-undocumented"]:
                continue
            if not violations:
                message = f"{exchange.method} {exchange.bare_path} is marked undocumented, but the spec documents it"
                failures.append(Failure("spec", message, step=step, line=line))
                continue
        origin = {"step": "", "setup": " (setup)", "record": " (timeline read)"}[exchange.purpose]
        for violation in violations:
            failures.append(
                Failure(
                    "spec",
                    f"{exchange.method} {exchange.bare_path} → {exchange.status}{origin} breaks the spec at "
                    f"{violation.pointer or '/'} [{violation.rule}]: {violation.message}",
                    step=step,
                    line=line,
                    details=[_short(exchange.body)],
                )
            )
    return failures


def _short(body: Any, limit: int = 600) -> str:
    try:
        text = json.dumps(body, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(body)
    return text if len(text) <= limit else text[: limit - 3] + "..."
