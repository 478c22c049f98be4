"""The `native` step: rows spelled in each API version's shape, signed calls, envelope checks,
readable failures, and malformed steps refused with their line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from amps_sim.contracts.loader import ScenarioFileError, load_scenario
from amps_sim.contracts.native import envelope_violations, is_native_path, row_problems, row_to_group, sign
from amps_sim.contracts.reporting.html import render_html
from amps_sim.contracts.steps import NativeSpec, NativeStep, describe, native_body, plan_native
from amps_sim.contracts.transport import SpecCheckedClient
from amps_sim.contracts.variables import Variables
from amps_sim.simulator.foxess import shapes
from amps_sim.simulator.foxess.signature import sign as simulator_sign
from amps_sim.simulator.web.app import create_app
from tests.harness.helpers import FOX, run_folder, write

HEADER = "name: n\ndescription: d\nsource: s\n"
NIGHT = {"start": "00:30", "end": "04:29", "workMode": "ForceCharge", "fdPwr": 3000, "fdSoc": 20, "minSocOnGrid": 15}


def spec(**fields: Any) -> NativeSpec:
    return NativeSpec.model_validate({"as": "homeowner_app", "device": "dev_fox", **fields})


# ---------------------------------------------------------------------------- rows to groups
def test_rows_become_each_versions_group_shape() -> None:
    times = {"startHour": 0, "startMinute": 30, "endHour": 4, "endMinute": 29, "workMode": "ForceCharge"}
    flat = {"minSocOnGrid": 15, "fdSoc": 20, "fdPwr": 3000}
    assert row_to_group(0, NIGHT) == {"enable": 1, **times, **flat}
    assert row_to_group(1, {**NIGHT, "maxSoc": 95}) == {"enable": 1, **times, **flat, "maxSoc": 95}
    assert row_to_group(2, {**NIGHT, "maxSoc": 95}) == {**times, "extraParam": {**flat, "maxSoc": 95}}
    assert row_to_group(3, {**NIGHT, "isRemainMode": False}) == {**times, "isRemainMode": False, "extraParam": flat}
    # No parameters: no extraParam at all, as the reference client writes a bare period.
    assert row_to_group(3, {"start": "17:00", "end": "19:59", "workMode": "SelfUse"}) == {
        "startHour": 17, "startMinute": 0, "endHour": 19, "endMinute": 59, "workMode": "SelfUse",
    }


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_converted_rows_are_what_the_simulator_accepts_and_mean(version: int) -> None:
    row = dict(NIGHT, **({"maxSoc": 95} if version else {}), **({"isRemainMode": False} if version == 3 else {}))
    (group,) = shapes.parse_groups(version, [row_to_group(version, row)], "homeowner_app")
    assert (group.start, group.end, group.work_mode) == (30, 4 * 60 + 29, "ForceCharge")
    assert (group.fd_pwr, group.fd_soc, group.min_soc_on_grid) == (3000, 20, 15)
    assert group.max_soc == (95 if version else None)


def test_rows_a_version_cannot_say_are_named() -> None:
    assert row_problems(0, {"maxSoc": 90}) == ["v0 groups have no maxSoc"]
    assert row_problems(2, {"isRemainMode": True}) == ["isRemainMode exists only in v3 groups, not v2"]
    assert row_problems(3, {**NIGHT, "maxSoc": 90, "isRemainMode": True}) == []
    with pytest.raises(ValueError, match="v0 groups have no maxSoc"):
        row_to_group(0, {**NIGHT, "maxSoc": 90})


def test_bodies_carry_the_serial_where_each_call_wants_it() -> None:
    variables = Variables({"sn": "SN_FROM_VAR"})
    write_rows = spec(call="scheduler.write", version=1, rows=[{"start": "17:00", "end": "19:59", "workMode": "SelfUse"}])
    assert native_body(write_rows, "SN1", variables) == {
        "deviceSN": "SN1",
        "groups": [{"enable": 1, "startHour": 17, "startMinute": 0, "endHour": 19, "endMinute": 59, "workMode": "SelfUse"}],
    }
    assert native_body(spec(call="flag.set", enable=False), "SN1", variables) == {"deviceSN": "SN1", "enable": 0}
    assert native_body(spec(call="setting.set", value="Feedin"), "SN1", variables) == {"sn": "SN1", "key": "WorkMode", "value": "Feedin"}
    # A raw body keeps what it says, serial included, and is interpolated.
    raw = spec(call="scheduler.read", body={"deviceSN": "${sn}"})
    assert native_body(raw, "SN1", variables) == {"deviceSN": "SN_FROM_VAR"}
    assert native_body(spec(call="device.detail"), "SN1", variables) is None


def test_plans_are_signed_over_the_path_after_the_prefix() -> None:
    variables = Variables()
    plan = plan_native(spec(call="scheduler.read", version=2), serial="SN1", token="tok", timestamp="1778227200000", variables=variables)
    assert (plan.method, plan.path) == ("POST", "/foxess/op/v2/device/scheduler/get")
    assert plan.headers["signature"] == simulator_sign("/op/v2/device/scheduler/get", "tok", "1778227200000")
    assert sign("/op/v0/user/getAccessCount", "k", "1") == simulator_sign("/op/v0/user/getAccessCount", "k", "1")
    detail = plan_native(spec(call="device.detail"), serial="SN1", token="tok", timestamp="1", variables=variables)
    assert (detail.method, detail.path, detail.query, detail.json_body) == ("GET", "/foxess/op/v1/device/detail", {"sn": "SN1"}, None)
    wrong = plan_native(spec(call="flag.read", signature="wrong"), serial="SN1", token="tok", timestamp="5", variables=variables)
    assert wrong.headers["signature"] != simulator_sign("/op/v1/device/scheduler/get/flag", "tok", "5")
    assert len(wrong.headers["signature"]) == 32  # well-formed, just wrong
    missing = plan_native(spec(call="flag.read", signature="missing"), serial="SN1", token="tok", timestamp="5", variables=variables)
    assert "signature" not in missing.headers and missing.headers["token"] == "tok"


def test_labels_read_like_the_file() -> None:
    step = NativeStep.model_validate({"native": {"as": "third_party", "device": "dev_fox", "call": "scheduler.write",
                                                 "version": 2, "rows": [NIGHT]}})
    assert describe(step) == "native scheduler.write v2 by third_party: 1 row(s) → dev_fox"
    flag = NativeStep.model_validate({"native": {"as": "homeowner_app", "device": "d", "call": "flag.set", "enable": True,
                                                 "signature": "wrong"}})
    assert describe(flag) == "native flag.set v1 by homeowner_app: on [wrong signature] → d"


# ------------------------------------------------------------------------------- envelopes
def test_the_native_envelope_is_checked_not_the_specs() -> None:
    ok = json.dumps({"errno": 0, "msg": "success", "result": None}).encode()
    assert envelope_violations(200, ok, "application/json") == []
    assert [v.rule for v in envelope_violations(500, ok, "application/json")] == ["native-status"]
    assert [v.rule for v in envelope_violations(200, b"<html>", "text/html")] == ["content-type"]
    broken = envelope_violations(200, json.dumps({"errno": "0", "msg": 3}).encode(), "application/json")
    assert sorted((v.pointer, v.rule) for v in broken) == [("", "required"), ("/errno", "type"), ("/msg", "type")]
    assert is_native_path("/foxess/op/v0/device/list?x=1") and is_native_path("/foxess")
    assert not is_native_path("/foxessx/op") and not is_native_path("/battery/foxess")


def test_the_transport_skips_spec_validation_for_foxess_paths_only() -> None:
    client = SpecCheckedClient(None, "http://unused")  # type: ignore[arg-type]
    ok = json.dumps({"errno": 40256, "msg": "Illegal signature", "result": None}).encode()
    assert client.check("POST", "/foxess/op/v0/device/list", 200, ok, "application/json") == []
    assert [v.rule for v in client.check("POST", "/foxess/op/v0/device/list", 404, ok, "application/json")] == ["native-status"]
    assert [v.rule for v in client.check("POST", "/foxessy/op", 200, ok, "application/json")] == ["operation-undocumented"]


NATIVE_OK = f"""
name: The homeowner writes natively and reads it back
description: A native write, then a native read through a saved value.
source: decision (harness test)
given:
  devices: [{FOX}]
steps:
  - native:
      as: homeowner_app
      device: dev_fox
      call: scheduler.write
      rows: [{{start: "17:00", end: "19:59", workMode: SelfUse}}]
  - native: {{as: homeowner_app, device: dev_fox, call: scheduler.read}}
    save: {{first: "result.groups[0]"}}
  - native: {{as: third_party, device: dev_fox, call: scheduler.read}}
    expect: {{result: {{groups: ["${{first}}"]}}}}
"""


async def test_keys_and_serials_are_fetched_once_per_party_and_device(tmp_path: Path) -> None:
    write(tmp_path, "ok.yaml", NATIVE_OK)
    summary = await run_folder(tmp_path, record_timeline=False)
    result = summary.results[0]
    assert result.status == "passed", [f.headline() for f in result.failures]
    setup = [(e.method, e.bare_path) for step in result.steps for e in step.exchanges if e.purpose == "setup"]
    assert setup == [("GET", "/_sim/devices/dev_fox"), ("POST", "/_sim/oem-keys"),  # step 1
                     ("POST", "/_sim/oem-keys")]  # step 3: the third party's own key; the serial is cached
    keys = [e for step in result.steps for e in step.exchanges if e.bare_path == "/_sim/oem-keys"]
    assert [e.request_body for e in keys] == [{"party": "homeowner_app", "devices": ["dev_fox"]},
                                              {"party": "third_party", "devices": ["dev_fox"]}]
    natives = [e for step in result.steps for e in step.own_exchanges]
    assert all(e.native and e.violations == [] for e in natives)
    # Reports show only the shape of the token, like the tenant key.
    assert all("…" in e.request_headers["token"] for e in natives)


async def test_a_wrong_errno_expectation_fails_readably_and_stops(tmp_path: Path) -> None:
    write(tmp_path, "wrong.yaml", f"""
        name: Expects a write that overlaps to pass
        description: The groups overlap; the scenario claims success.
        source: decision (harness test)
        given:
          devices: [{FOX}]
        steps:
          - native:
              as: third_party
              device: dev_fox
              call: scheduler.write
              rows:
                - {{start: "01:00", end: "02:59", workMode: ForceCharge}}
                - {{start: "02:00", end: "03:59", workMode: SelfUse}}
          - truth: dev_fox
            expect: {{rows: []}}
        """)
    summary = await run_folder(tmp_path, record_timeline=False)
    result = summary.results[0]
    (failure,) = result.failures
    assert failure.kind == "expectation" and failure.step == 0 and failure.line == 7
    assert failure.message.startswith("POST /foxess/op/v3/device/scheduler/enable → 200: ")
    assert 'errno: expected 0, got 42023 ("time overlap: 01:00-02:59 ForceCharge and 02:00-03:59 SelfUse")' in failure.message
    assert [s.status for s in result.steps] == ["failed", "not_run"]


async def test_a_wrong_result_expectation_shows_a_diff(tmp_path: Path) -> None:
    write(tmp_path, "wrong.yaml", f"""
        name: Expects the flag on
        description: Nobody switched it on.
        source: decision (harness test)
        given:
          devices: [{FOX}]
        steps:
          - native: {{as: homeowner_app, device: dev_fox, call: flag.read}}
            expect: {{result: {{enable: 1}}}}
        """)
    summary = await run_folder(tmp_path, record_timeline=False)
    (failure,) = summary.results[0].failures
    assert "result.enable: expected 1, got 0" in failure.message
    assert failure.diff is not None and '-  "enable": 1' in failure.diff and '+  "enable": 0' in failure.diff


async def test_a_key_that_cannot_be_issued_is_a_setup_failure_of_the_step(tmp_path: Path) -> None:
    write(tmp_path, "direct.yaml", """
        name: A direct device has no cloud
        description: The key request is refused.
        source: decision (harness test)
        given:
          devices: [{id: dev_direct, profile: direct}]
        steps:
          - native: {as: homeowner_app, device: dev_direct, call: flag.read}
        """)
    summary = await run_folder(tmp_path, record_timeline=False)
    (failure,) = summary.results[0].failures
    assert failure.kind == "setup" and failure.step == 0
    assert "cannot get a native key for homeowner_app on dev_direct: POST /_sim/oem-keys answered 422 NATIVE_API_UNAVAILABLE" in failure.message


def _break_native_envelopes(app: web.Application) -> web.Application:
    """Wrap the app so that native replies lose their `msg`."""

    @web.middleware
    async def drop_msg(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if request.path.startswith("/foxess/") and isinstance(response, web.Response):
            body = json.loads(response.body)  # type: ignore[arg-type]
            body.pop("msg", None)
            return web.json_response(body, status=response.status)
        return response

    app.middlewares.append(drop_msg)
    return app


async def test_a_broken_native_envelope_fails_the_scenario(tmp_path: Path) -> None:
    write(tmp_path, "ok.yaml", NATIVE_OK)
    summary = await run_folder(tmp_path, app=_break_native_envelopes(create_app(seed=4)), record_timeline=False)
    result = summary.results[0]
    assert result.status == "failed" and {f.kind for f in result.failures} == {"spec"}
    assert len(result.failures) == 3  # one per native call; expectations still held, so every step ran
    assert "POST /foxess/op/v3/device/scheduler/enable → 200 breaks the native envelope at / [required]: the envelope has no 'msg'" in result.failures[0].message


async def test_native_calls_appear_in_the_html_transcript(tmp_path: Path) -> None:
    write(tmp_path, "ok.yaml", NATIVE_OK)
    summary = await run_folder(tmp_path)
    html = render_html(summary)
    assert "POST /foxess/op/v3/device/scheduler/enable → " in html
    assert " · native · token " in html and " · errno 0 · " in html and "envelope checked in" in html
    assert "POST /_sim/oem-keys → " in html  # the key it signed with, issued in the step
    assert "native scheduler.write v3 by homeowner_app: 1 row(s) → dev_fox" in html


async def test_native_scenarios_are_skipped_without_the_control_api(tmp_path: Path) -> None:
    from tests.harness.test_runner import _deployment_without_control_api

    write(tmp_path, "native.yaml", NATIVE_OK)
    summary = await run_folder(tmp_path, app=_deployment_without_control_api("sk_live_partner"), api_key="sk_live_partner")
    (result,) = summary.results
    assert result.status == "skipped" and summary.ok
    assert "native steps get their keys from POST /_sim/oem-keys" in (result.skip_reason or "")


# ------------------------------------------------------------------------ malformed steps
def problems(tmp_path: Path, text: str) -> ScenarioFileError:
    path = write(tmp_path, "bad.yaml", HEADER + text)
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario(path)
    return caught.value


def test_a_version_the_endpoint_lacks_is_refused_with_its_line(tmp_path: Path) -> None:
    error = problems(tmp_path, "steps:\n  - advance: 1h\n  - native: {as: homeowner_app, device: d, call: flag.set, enable: true, version: 3}\n")
    assert error.line == 6 and "steps[1].native: flag.set exists in v0, v1, not v3" in str(error)


def test_a_row_the_version_cannot_say_is_refused(tmp_path: Path) -> None:
    text = (
        "steps:\n  - native:\n      as: homeowner_app\n      device: d\n      call: scheduler.write\n      version: 0\n"
        "      rows: [{start: '01:00', end: '01:59', workMode: ForceCharge, maxSoc: 90}]\n"
    )
    error = problems(tmp_path, text)
    assert error.line == 10 and error.problems[0].where == "steps[0].native.rows"
    assert "rows[0]: v0 groups have no maxSoc (pick another version, or send a raw body)" in str(error)


def test_unknown_keys_and_bad_times_in_rows_name_their_line(tmp_path: Path) -> None:
    text = (
        "steps:\n  - native:\n      as: homeowner_app\n      device: d\n      call: scheduler.write\n      rows:\n"
        "        - {start: '1:00', end: '01:59', workMode: SelfUse}\n"
        "        - {start: '02:00', end: '02:59', workMode: SelfUse, fdpwr: 3}\n"
    )
    error = problems(tmp_path, text)
    found = {(p.line, p.where) for p in error.problems}
    assert (10, "steps[0].native.rows[0].start") in found
    assert (11, "steps[0].native.rows[1].fdpwr") in found
    assert "unknown key 'fdpwr' (did you mean 'fdPwr'?)" in str(error)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("{device: d, call: flag.read}", "steps[0].native.as: missing required key 'as'"),
        ("{as: homeowner, device: d, call: flag.read}", "Input should be 'homeowner_app' or 'third_party'"),
        ("{as: homeowner_app, device: d, call: scheduler.delete}", "steps[0].native.call: Input should be"),
        ("{as: homeowner_app, call: flag.read}", "flag.read needs a device"),
        ("{as: homeowner_app, device: d, call: flag.read, rows: []}", "rows does not apply to flag.read"),
        ("{as: homeowner_app, device: d, call: scheduler.write}", "scheduler.write takes either rows or a raw body"),
        ("{as: homeowner_app, device: d, call: scheduler.write, rows: [], enable: true}", "a native scheduler write leaves the flag alone"),
        ("{as: homeowner_app, device: d, call: flag.set}", "flag.set needs enable (or a raw body)"),
        ("{as: homeowner_app, device: d, call: device.detail, body: {sn: x}}", "device.detail is a GET and sends no body"),
        ("{as: homeowner_app, device: d, call: flag.read, signature: bad}", "Input should be 'wrong' or 'missing'"),
    ],
)
def test_malformed_native_steps_are_refused_with_their_line(tmp_path: Path, step: str, message: str) -> None:
    error = problems(tmp_path, f"steps:\n  - native: {step}\n")
    assert error.line == 5, str(error)
    assert message in str(error), str(error)


def test_native_expectations_and_saves_are_checked(tmp_path: Path) -> None:
    base = "steps:\n  - native: {as: homeowner_app, device: d, call: flag.read}\n"
    error = problems(tmp_path, base + "    save: {x: body.result}\n")
    assert error.line == 6 and "'body.result' is not a native reply path: start with errno, msg or result" in str(error)
    error = problems(tmp_path, base + "    expect: {status: 200}\n")
    assert error.line == 6 and "unknown key 'status'" in str(error)
    error = problems(tmp_path, base + "    expect: {result: {enable: {$range: 3}}}\n")
    assert error.line == 6 and "$range takes {min: N, max: N}" in str(error)
    error = problems(tmp_path, base + "    auth: none\n")
    assert error.line == 6 and "auth can only pick the tenant that issues it" in str(error)


def test_a_party_needs_a_device_somewhere_to_scope_its_key(tmp_path: Path) -> None:
    error = problems(tmp_path, "steps:\n  - native: {as: third_party, call: access.count}\n")
    assert "steps[0] calls as third_party, but no native step of that party names a device" in str(error)
    ok = write(tmp_path, "ok.yaml", HEADER + "steps:\n  - native: {as: third_party, call: access.count}\n"
                                             "  - native: {as: third_party, device: d, call: flag.read}\n")
    scenario = load_scenario(ok).scenario
    assert scenario.needs_control and scenario.uses_native
    assert scenario.native_devices("main", "third_party") == ["d"]
    assert scenario.native_devices("main", "homeowner_app") == []


def test_given_quotas_reach_the_tenant_spec(tmp_path: Path) -> None:
    path = write(tmp_path, "q.yaml", HEADER + "given:\n  oemQuotas: {enabled: true, dailyCalls: 5}\nsteps:\n  - advance: 1s\n")
    given = load_scenario(path).scenario.given
    assert given is not None and given.tenant_spec()["oemQuotas"] == {"enabled": True, "dailyCalls": 5}
    error = problems(tmp_path, "given:\n  oemQuotas: {daily: 5}\nsteps:\n  - advance: 1s\n")
    assert error.line == 5 and "unknown key 'daily'" in str(error)
