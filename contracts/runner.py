"""The scenario runner: one fresh tenant per scenario, every step judged, every reply spec-checked.

The runner only talks HTTP (through :class:`~contracts.transport.SpecCheckedClient`), so the
same code drives the embedded simulator, a served one, or any deployment of the API. It emits
:mod:`contracts.events` as it goes; reporters listen and never reach into it.

A scenario stops at its first failed expectation (later steps build on earlier replies), but a
spec violation does not stop it: the scenario is failed and the rest still runs, so one report
shows every way the replies break the contract.

A `native` step acts through the device's own cloud API (`/foxess`), as a homeowner's app or a
third-party optimiser would: :class:`NativeAccess` gets its party's key from the control API and
the device's serial number first (setup exchanges filed under the step), then the call is signed
and sent like any other request, and judged by its errno and result.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import quote

from amps_sim.contracts.events import Listener, RunFinished, RunStarted, ScenarioFinished, ScenarioStarted, StepDone
from amps_sim.contracts.exchange import Exchange
from amps_sim.contracts.loader import LoadedScenario
from amps_sim.contracts.matching import lookup
from amps_sim.contracts.recorder import TimelineRecorder
from amps_sim.contracts.results import Failure, RunSummary, ScenarioResult, StepRecord
from amps_sim.contracts.scenario import DEFAULT_NOW, Scenario, TenantGiven
from amps_sim.contracts.steps import KeyAuth, NativeStep, RequestPlan, Step, TenantAuth, WebhookStep, describe, plan_native
from amps_sim.contracts.transport import SpecCheckedClient
from amps_sim.contracts.variables import UnknownVariable, Variables
from amps_sim.contracts.webhook_steps import ScenarioWebhooks


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


class NativeSetupError(Exception):
    """A native step could not get its key or its device's serial number."""

    def __init__(self, message: str, details: list[str]) -> None:
        super().__init__(message)
        self.details = details


class NativeAccess:
    """What a scenario's native steps sign with: one key per (tenant, party), issued at first use
    by `POST /_sim/oem-keys` and kept for the scenario (so quotas count against one key, as for a
    real app), and each device's serial number, read once from `GET /_sim/devices/{id}`.

    A key covers every device its party's native steps name. A device that only a saved variable
    names, unknown when the key was issued, gets a new key covering it too (and a fresh quota).
    """

    def __init__(self, client: SpecCheckedClient, scenario: Scenario, keys: dict[str, str]) -> None:
        self.client = client
        self.scenario = scenario
        self.keys = keys
        self._tokens: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}
        self._serials: dict[tuple[str, str], str] = {}

    async def serial(self, tenant: str, device: str, into: list[Exchange]) -> str:
        cached = self._serials.get((tenant, device))
        if cached is not None:
            return cached
        exchange = await self.client.send(
            "GET", f"/_sim/devices/{quote(device, safe='')}", key=self.keys[tenant], purpose="setup"
        )
        into.append(exchange)
        serial = lookup(exchange.reply_view(), "body.serialNumber")
        if exchange.status != 200 or not isinstance(serial, str):
            raise NativeSetupError(
                f"cannot read the serial number of {device!r}: GET /_sim/devices/{device} {_answered(exchange)}",
                [_short(exchange.body)],
            )
        self._serials[(tenant, device)] = serial
        return serial

    async def token(self, tenant: str, party: str, device: str | None, variables: Variables, into: list[Exchange]) -> str:
        cached = self._tokens.get((tenant, party))
        if cached is not None and (device is None or device in cached[1]):
            return cached[0]
        scope: list[str] = list(cached[1]) if cached else []
        for named in self.scenario.native_devices(tenant, party):
            try:
                scope.append(str(variables.resolve(named)))
            except UnknownVariable:
                continue  # saved by a later step; a key is issued for it when it is reached
        if device is not None:
            scope.append(device)
        devices = tuple(dict.fromkeys(scope))
        exchange = await self.client.send(
            "POST", "/_sim/oem-keys", key=self.keys[tenant], purpose="setup",
            json_body={"party": party, "devices": list(devices)},
        )
        into.append(exchange)
        token = lookup(exchange.reply_view(), "body.apiKey")
        if exchange.status != 201 or not isinstance(token, str):
            raise NativeSetupError(
                f"cannot get a native key for {party} on {', '.join(devices)}: POST /_sim/oem-keys {_answered(exchange)}",
                [_short(exchange.body)],
            )
        self._tokens[(tenant, party)] = (token, devices)
        return token


def _answered(exchange: Exchange) -> str:
    if exchange.error is not None:
        return f"got no reply ({exchange.error})"
    code = lookup(exchange.reply_view(), "body.error.code")
    return f"answered {exchange.status}" + (f" {code}" if isinstance(code, str) else "")


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
        if loaded.scenario.uses_native and not self.target.has_control:
            return (
                "needs the /_sim control API (its native steps get their keys from POST /_sim/oem-keys), "
                f"which {self.target.name} does not serve"
            )
        if loaded.scenario.needs_control and not self.target.has_control:
            return f"needs the /_sim control API, which {self.target.name} does not serve"
        if not loaded.scenario.needs_control and not self.target.has_control and not self.target.api_key:
            return "no control API to create a tenant and no --api-key given"
        return None

    async def _run(self, loaded: LoadedScenario) -> ScenarioResult:
        scenario = loaded.scenario
        result = ScenarioResult(loaded=loaded, status="passed")
        result.steps = [
            StepRecord(index=i, kind=step.kind, label=describe(step), line=loaded.step_line(i))
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
        hooks = None
        if scenario.uses_webhooks:
            hooks = ScenarioWebhooks(self.client, keys["main"], scenario.given.webhooks if scenario.given else None)
            started = await hooks.start(result, variables)
        result.failures.extend(spec_failures(result.setup, None))
        if hooks is not None and not started:
            await hooks.finish(result)
            result.status = "failed"
            return result
        try:
            await self._run_steps(loaded, result, keys, variables, recorder, hooks)
        finally:
            if hooks is not None:
                result.failures.extend(spec_failures(await hooks.finish(result), None))
        if result.failures:
            result.status = "failed"
        return result

    async def _run_steps(
        self,
        loaded: LoadedScenario,
        result: ScenarioResult,
        keys: dict[str, str],
        variables: Variables,
        recorder: TimelineRecorder | None,
        hooks: ScenarioWebhooks | None,
    ) -> None:
        scenario = loaded.scenario
        native = NativeAccess(self.client, scenario, keys)
        stopped = False
        for step, record in zip(scenario.steps, result.steps, strict=True):
            if stopped:
                continue
            step_started = time.perf_counter()
            if isinstance(step, WebhookStep):
                if hooks is not None:
                    await hooks.step(step, record, variables)
            else:
                await self._run_step(step, record, keys, variables, native)
            if hooks is not None:
                hooks.note(record)
            if recorder is not None:
                record.exchanges.extend(await recorder.record(record))
            record.failures.extend(spec_failures(record.exchanges, record, undocumented=getattr(step, "undocumented", False)))
            record.duration_s = time.perf_counter() - step_started
            record.status = "failed" if record.failures else "passed"
            result.failures.extend(record.failures)
            self._emit(StepDone(loaded, record))
            stopped = any(f.kind != "spec" for f in record.failures)

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

    async def _run_step(
        self, step: Step, record: StepRecord, keys: dict[str, str], variables: Variables, native: NativeAccess
    ) -> None:
        def fail(kind: Any, message: str, **more: Any) -> None:
            record.failures.append(Failure(kind, message, step=record.index, line=record.line, **more))

        key: str | None = None
        try:
            if isinstance(step, NativeStep):
                plan = await self._plan_native(step, record, variables, native)
            else:
                plan = step.plan(variables)
                key = self._key_for(step.auth, keys)
        except UnknownVariable as exc:
            fail("expectation", f"${{{exc.args[0]}}} has no value (did the step that saves it fail?)")
            return
        except NativeSetupError as exc:
            fail("setup", str(exc), details=exc.details)
            return
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
            verdict = step.judge(reply, variables)
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
            # Native paths (result.groups) start inside the cloud's envelope, the reply's body.
            source = exchange.body if isinstance(step, NativeStep) and isinstance(exchange.body, dict) else reply
            missing = variables.save_from(source, save)
            if missing:
                fail("expectation", f"cannot save {', '.join(missing)}: not in the reply", details=[_short(exchange.body)])

    @staticmethod
    async def _plan_native(step: NativeStep, record: StepRecord, variables: Variables, native: NativeAccess) -> RequestPlan:
        """Fetch what the call signs with (the party's key, the device's serial), then plan it."""
        spec = step.native
        tenant = step.tenant
        device = str(variables.resolve(spec.device)) if spec.device is not None else None
        serial = await native.serial(tenant, device, record.exchanges) if device is not None else None
        token = await native.token(tenant, spec.party, device, variables, record.exchanges)
        # Epoch milliseconds, as a real client sends; the simulator does not check freshness.
        timestamp = str(time.time_ns() // 1_000_000)
        return plan_native(spec, serial=serial, token=token, timestamp=timestamp, variables=variables)

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
            if not violations and exchange.native:
                message = f"{exchange.method} {exchange.bare_path} is marked undocumented, but /foxess paths are never spec-checked"
                failures.append(Failure("spec", message, step=step, line=line))
                continue
            if not violations:
                message = f"{exchange.method} {exchange.bare_path} is marked undocumented, but the spec documents it"
                failures.append(Failure("spec", message, step=step, line=line))
                continue
        origin = {"step": "", "setup": " (setup)", "record": " (timeline read)"}[exchange.purpose]
        # Native replies are held to the cloud's envelope, not to either OpenAPI document.
        broken = "the native envelope" if exchange.native else "the spec"
        for violation in violations:
            failures.append(
                Failure(
                    "spec",
                    f"{exchange.method} {exchange.bare_path} → {exchange.status}{origin} breaks {broken} at "
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
