"""What each step kind sends, how it is labelled, and how its reply is judged.

A step becomes a :class:`RequestPlan` (method, path, body) after `${...}` interpolation; its
reply is judged by :func:`judge_reply` (status, error code, partial body, absent keys, headers)
or, for a `truth` step, by :func:`judge_truth` against the OEM-side device view. A `native`
step needs its party's key and the device's serial number first, which the runner fetches; it
then becomes a signed plan through :func:`plan_native` and is judged by :func:`judge_native`.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from amps_sim.contracts.matching import MISSING, Mismatch, is_matcher, lookup, match, show
from amps_sim.contracts.native import CALLS, PREFIX, rows_to_groups, signed_headers
from amps_sim.contracts.scenario import (
    AdvanceSpec,
    Expect,
    NativeExpect,
    NativeSpec,
    TruthExpect,
    step_kind,
)
from amps_sim.contracts.variables import Variables


@dataclass
class RequestPlan:
    method: str
    path: str
    json_body: Any = None
    raw: str | None = None
    query: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _segment(value: Any) -> str:
    # Ids go into the path as one segment, whatever a scenario puts in them.
    return quote(str(value), safe="")


def plan_request(step: Any, variables: Variables) -> RequestPlan:
    kind = step_kind(step)
    resolve = variables.resolve
    if kind == "push":
        spec = step.push
        return RequestPlan("POST", f"/battery/{_segment(resolve(spec.device))}", json_body=resolve(spec.request_body()))
    if kind == "request":
        spec = step.request
        headers = resolve(spec.headers or {})
        raw = resolve(spec.raw)
        if spec.oversizeBytes is not None:
            raw = '{"pad": "' + "x" * (spec.oversizeBytes - 11) + '"}'  # exactly oversizeBytes long
            headers.setdefault("Content-Type", "application/json")
        return RequestPlan(
            spec.method,
            resolve(spec.path),
            json_body=resolve(spec.body),
            raw=raw,
            query=resolve(spec.query),
            headers=headers,
        )
    if kind == "read_action":
        return RequestPlan("GET", f"/actions/{_segment(resolve(step.read_action))}")
    if kind == "cancel":
        return RequestPlan("POST", f"/actions/{_segment(resolve(step.cancel))}/cancel")
    if kind == "read_device":
        return RequestPlan("GET", f"/battery/{_segment(resolve(step.read_device))}")
    if kind == "list_actions":
        query = dict(resolve(step.list_actions.model_dump(exclude_none=True)))
        return RequestPlan("GET", "/actions", query=query or None)
    if kind == "advance":
        advance = step.advance
        body = {"by": advance} if isinstance(advance, str) else advance.model_dump(exclude_none=True)
        return RequestPlan("POST", "/_sim/clock/advance", json_body=resolve(body))
    if kind == "foreign_write":
        spec = step.foreign_write
        body = spec.model_dump(exclude_none=True, exclude={"device"})
        return RequestPlan("PUT", f"/_sim/devices/{_segment(resolve(spec.device))}/scheduler", json_body=resolve(body))
    if kind == "fault":
        spec = step.fault
        body = spec.model_dump(exclude_none=True, exclude={"device"})
        return RequestPlan("POST", f"/_sim/devices/{_segment(resolve(spec.device))}/faults", json_body=resolve(body))
    if kind == "truth":
        return RequestPlan("GET", f"/_sim/devices/{_segment(resolve(step.truth))}")
    if kind == "native":
        raise AssertionError("a native step is planned by plan_native, once its key and serial are known")
    raise AssertionError(f"unhandled step kind {kind}")


def native_body(spec: NativeSpec, serial: str | None, variables: Variables) -> dict[str, Any] | None:
    """The JSON body of a native call (None for a GET): the friendly fields in the version's
    shape, or the raw body with the device's serial added unless the body names its own."""
    call = CALLS[spec.call]
    if call.method == "GET":
        return None
    resolve = variables.resolve
    body: dict[str, Any] = {}
    if call.serial_field is not None and serial is not None:
        body[call.serial_field] = serial
    if spec.body is not None:
        body.update(resolve(spec.body))
        return body
    if spec.call == "scheduler.write":
        rows = [row.model_dump(exclude_none=True) for row in spec.rows or []]
        body["groups"] = rows_to_groups(spec.api_version, resolve(rows))
    elif spec.call == "flag.set":
        body["enable"] = 1 if spec.enable else 0
    elif spec.call in ("setting.read", "setting.set"):
        body["key"] = resolve(spec.setting) if spec.setting is not None else "WorkMode"
        if spec.call == "setting.set":
            body["value"] = resolve(spec.value)
    return body


def plan_native(spec: NativeSpec, *, serial: str | None, token: str, timestamp: str, variables: Variables) -> RequestPlan:
    """A signed native call; `path` includes the `/foxess` prefix, the signature covers what follows it."""
    call = CALLS[spec.call]
    path = call.path(spec.api_version)
    query = {call.serial_field: serial} if call.method == "GET" and call.serial_field and serial is not None else None
    return RequestPlan(
        call.method,
        PREFIX + path,
        json_body=native_body(spec, serial, variables),
        query=query,
        headers=signed_headers(path, token, timestamp, spec.signature),
    )


def describe(step: Any) -> str:
    """A short label for reports (before interpolation, so it reads like the file)."""
    if step.name:
        return str(step.name)
    kind = step_kind(step)
    if kind == "push":
        spec = step.push
        if spec.body is not None:
            return f"push (verbatim body) → {spec.device}"
        shape = "windowed" if spec.start and spec.end else "scheduled" if spec.start else "immediate"
        strategy = f" [{spec.onConflict}]" if spec.onConflict else ""
        return f"push {spec.command} {shape}{strategy} → {spec.device}"
    if kind == "request":
        return f"{step.request.method} {step.request.path}"
    if kind == "advance":
        advance = step.advance
        if isinstance(advance, AdvanceSpec):
            return f"advance clock {'by ' + advance.by if advance.by else 'to ' + str(advance.to)}"
        return f"advance clock by {advance}"
    if kind == "foreign_write":
        spec = step.foreign_write
        who = spec.owner or "homeowner_app"
        return f"foreign write by {who}: {len(spec.groups)} row(s) → {spec.device}"
    if kind == "fault":
        spec = step.fault
        return f"inject {spec.kind} ×{spec.times or 1} → {spec.device}"
    if kind == "truth":
        return f"check OEM truth of {step.truth}"
    if kind == "webhook":
        spec = step.webhook
        parts = [f"within {spec.within}" if spec.within else "so far"]
        if spec.event:
            parts.append(spec.event)
        if spec.count is not None:
            parts.append(f"×{spec.count}")
        if spec.attempt is not None:
            parts.append(f"attempt {spec.attempt}")
        if not spec.verified:
            parts.append("unverified")
        if spec.answer is not None:
            parts.insert(0, f"receiver answers {spec.answer};")
        return "webhooks " + " ".join(parts)
    if kind == "native":
        spec = step.native
        versions = CALLS[spec.call].versions
        version = f" v{spec.api_version}" if len(versions) > 1 else ""
        what = f": {len(spec.rows)} row(s)" if spec.rows is not None else " (raw body)" if spec.body is not None else ""
        if spec.enable is not None:
            what = f": {'on' if spec.enable else 'off'}"
        if spec.call == "setting.set" and spec.body is None:
            what = f": {spec.setting or 'WorkMode'} = {spec.value}"
        signature = f" [{spec.signature} signature]" if spec.signature else ""
        target = f" → {spec.device}" if spec.device else ""
        return f"native {spec.call}{version} by {spec.party}{what}{signature}{target}"
    if kind == "list_actions":
        return "list actions"
    return f"{kind.replace('_', ' ')} {getattr(step, kind)}"


# ---- judging replies ---------------------------------------------------------------------------


@dataclass
class Verdict:
    """The mismatches of one reply and, when a body was compared, a diff to show."""

    mismatches: list[Mismatch] = field(default_factory=list)
    diff: str | None = None

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _status_ok(expected: int | list[int] | None, status: int) -> bool:
    if expected is None:
        return 200 <= status < 300
    if isinstance(expected, list):
        return status in expected
    return status == expected


def judge_reply(expect: Expect | None, reply: dict[str, Any], variables: Variables) -> Verdict:
    verdict = Verdict()
    status = reply["status"]
    wanted = expect.status if expect else None
    if not _status_ok(wanted, status):
        want_text = "a 2xx" if wanted is None else " or ".join(map(str, wanted)) if isinstance(wanted, list) else str(wanted)
        code = lookup(reply, "body.error.code")
        shown = f" ({code})" if isinstance(code, str) else ""
        verdict.mismatches.append(Mismatch("status", f"expected {want_text}, got {status}{shown}"))
    if expect is None:
        return verdict
    if expect.code is not None:
        verdict.mismatches.extend(match(variables.resolve(expect.code), lookup(reply, "body.error.code"), "body.error.code"))
    if "body" in expect.model_fields_set:
        expected_body = variables.resolve(expect.body)
        found = match(expected_body, reply["body"], "body")
        verdict.mismatches.extend(found)
        if found:
            verdict.diff = body_diff(expected_body, reply["body"])
    for path in expect.absent:
        value = lookup(reply, variables.resolve(path))
        if value is not MISSING:
            verdict.mismatches.append(Mismatch(path, f"expected absent, got {show(value)}"))
    for name, wanted_header in expect.headers.items():
        verdict.mismatches.extend(match(variables.resolve(wanted_header), lookup(reply, f"headers.{name}"), f"headers.{name}"))
    return verdict


def judge_native(expect: NativeExpect | None, reply: dict[str, Any], variables: Variables) -> Verdict:
    """A native reply against its expectation. `reply` is the exchange's reply view; the
    envelope (its body) is what `errno`, `msg` and `result` are read from."""
    verdict = Verdict()
    envelope = reply["body"]
    if reply["status"] != 200 or not isinstance(envelope, dict):
        verdict.mismatches.append(
            Mismatch("status", f"expected HTTP 200 with the {{errno, msg, result}} envelope, got {reply['status']}: {show(envelope)}")
        )
        return verdict
    wanted_errno = variables.resolve(expect.errno) if expect is not None else 0
    errno = envelope.get("errno", MISSING)
    found = match(wanted_errno, errno, "errno")
    if found:
        # The message says why the cloud refused (or that it did not): show it beside the number.
        said = envelope.get("msg")
        verdict.mismatches.append(Mismatch("errno", f"expected {show(wanted_errno)}, got {show(errno)} ({show(said)})"))
    if expect is None:
        return verdict
    if "msg" in expect.model_fields_set:
        verdict.mismatches.extend(match(variables.resolve(expect.msg), envelope.get("msg", MISSING), "msg"))
    if "result" in expect.model_fields_set:
        wanted = variables.resolve(expect.result)
        result = envelope.get("result", MISSING)
        mismatches = match(wanted, result, "result")
        verdict.mismatches.extend(mismatches)
        if mismatches:
            verdict.diff = body_diff(wanted, None if result is MISSING else result)
    return verdict


def _row_key(row: Any) -> tuple[str, str]:
    if isinstance(row, dict):
        start, end = row.get("start"), row.get("end")
        return (start if isinstance(start, str) else "~", end if isinstance(end, str) else "~")
    return ("~", "~")


def judge_truth(expect: TruthExpect, reply: dict[str, Any], variables: Variables) -> Verdict:
    verdict = Verdict()
    view = reply["body"]
    if reply["status"] != 200:
        code = lookup(reply, "body.error.code")
        shown = f" ({code})" if isinstance(code, str) else ""
        verdict.mismatches.append(Mismatch("status", f"expected 200, got {reply['status']}{shown}"))
        return verdict
    if not isinstance(view, dict):
        verdict.mismatches.append(Mismatch("body", f"expected a device view, got {show(view)}"))
        return verdict
    scheduler: dict[str, Any] | None = view["scheduler"] if isinstance(view.get("scheduler"), dict) else None
    groups: list[Any] = scheduler.get("groups", []) if scheduler else []
    battery: dict[str, Any] = view["battery"] if isinstance(view.get("battery"), dict) else {}
    expected_shown: dict[str, Any] = {}
    actual_shown: dict[str, Any] = {}

    def check(name: str, expected: Any, actual: Any, path: str) -> None:
        found = match(expected, actual, path)
        verdict.mismatches.extend(found)
        if found:
            expected_shown[name] = expected
            actual_shown[name] = None if actual is MISSING else actual

    if expect.flag is not None:
        check("flag", expect.flag, scheduler.get("enabled", MISSING) if scheduler else MISSING, "scheduler.enabled")
    if expect.rows is not None:
        # Devices may read rows back in another slot order: compare by time, not by index.
        wanted = sorted(variables.resolve(expect.rows), key=_row_key)
        check("rows", wanted, sorted(groups, key=_row_key), "scheduler.groups")
    if expect.owners is not None:
        counts: dict[str, int] = {}
        for group in groups:
            counts[str(group.get("owner"))] = counts.get(str(group.get("owner")), 0) + 1
        if counts != expect.owners:
            verdict.mismatches.append(Mismatch("scheduler.groups[*].owner", f"expected {show(expect.owners)}, got {show(counts)}"))
    if expect.soc is not None:
        check("soc", variables.resolve(expect.soc), battery.get("soc", MISSING), "battery.soc")
    if expect.mode is not None:
        check("mode", variables.resolve(expect.mode), battery.get("currentMode", MISSING), "battery.currentMode")
    if expect.battery is not None:
        check("battery", variables.resolve(expect.battery), battery, "battery")
    if expect.warnings is not None:
        check("warnings", variables.resolve(expect.warnings), view.get("warnings", MISSING), "warnings")
    if expect.faults is not None:
        check("faults", variables.resolve(expect.faults), view.get("faults", MISSING), "faults")
    if expect.body is not None:
        check("body", variables.resolve(expect.body), view, "body")
    if verdict.mismatches and expected_shown:
        verdict.diff = body_diff(expected_shown, actual_shown)
    return verdict


# ---- diffs -------------------------------------------------------------------------------------


def _prune(expected: Any, actual: Any) -> Any:
    """The part of `actual` that `expected` talks about, so a diff shows only what was compared."""
    if is_matcher(expected) or not isinstance(expected, dict) or not isinstance(actual, dict):
        if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
            return [_prune(e, a) for e, a in zip(expected, actual, strict=True)]
        return actual
    return {key: _prune(value, actual[key]) for key, value in expected.items() if key in actual}


def _reconcile(expected: Any, actual: Any) -> Any:
    """`expected` with every part that matched replaced by the actual value, so that a diff
    shows only real differences (a matched `{$any: string}` is not one)."""
    if is_matcher(expected):
        return actual if not match(expected, actual) else expected
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {k: _reconcile(v, actual[k]) if k in actual else v for k, v in expected.items()}
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [_reconcile(e, a) for e, a in zip(expected, actual, strict=True)]
    return expected


def _dump(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False, default=str).splitlines()


def body_diff(expected: Any, actual: Any) -> str:
    """A unified diff of the expected value and the matching part of the actual one."""
    lines = difflib.unified_diff(
        _dump(_reconcile(expected, actual)), _dump(_prune(expected, actual)), fromfile="expected", tofile="actual",
        lineterm="", n=3,
    )
    return "\n".join(lines)
