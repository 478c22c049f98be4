"""What a reply must show, and the verdict on a reply: the `expect` blocks of a scenario's steps.

Each kind of expectation judges its own kind of reply: :class:`Expect` an Amps API reply
(status, error code, partial body, absent keys, headers), :class:`TruthExpect` the OEM-side
device view (`GET /_sim/devices/{id}`), :class:`NativeExpect` a native cloud envelope.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, StrictInt, field_validator, model_validator

from amps_sim.contracts.fileformat import Strict, check_reply_path
from amps_sim.contracts.matching import MISSING, Mismatch, check_expected_syntax, is_matcher, lookup, match, show
from amps_sim.contracts.variables import Variables


@dataclass
class Verdict:
    """The mismatches of one reply and, when a body was compared, a diff to show."""

    mismatches: list[Mismatch] = field(default_factory=list)
    diff: str | None = None

    @property
    def ok(self) -> bool:
        return not self.mismatches


class Expect(Strict):
    """What a reply must show. Bodies match partially: keys not named are not checked."""

    status: int | list[int] | None = Field(
        default=None, description="The status, or a list of acceptable ones. Unset: any 2xx."
    )
    code: str | None = Field(default=None, description="Shorthand for body.error.code.")
    body: Any = Field(
        default=None,
        description=(
            "A partial match of the JSON body. Matchers: {$any: id|timestamp|string|number|integer|"
            "boolean|array|object|value}, {$regex: RE}, {$range: {min, max}}, {$length: N}, "
            "{$contains: [..]}, {$absent: true}, {$oneOf: [..]}."
        ),
    )
    absent: list[str] = Field(default_factory=list, description="Reply paths that must not exist, e.g. body.start.")
    headers: dict[str, Any] = Field(default_factory=dict, description="Response headers (names case-insensitive).")

    @field_validator("absent")
    @classmethod
    def _paths(cls, paths: list[str]) -> list[str]:
        return [check_reply_path(p) for p in paths]

    @model_validator(mode="after")
    def _matchers(self) -> "Expect":
        check_expected_syntax(self.body, ("body",))
        for name, value in self.headers.items():
            check_expected_syntax(value, ("headers", name))
        return self


class TruthExpect(Strict):
    """The OEM-side truth of one device (`GET /_sim/devices/{id}`)."""

    flag: bool | None = Field(default=None, description="The native scheduler's enable flag.")
    rows: list[dict[str, Any]] | None = Field(
        default=None,
        description=(
            "Every native row, in any order (the device may read them back reordered): matched "
            "after sorting both sides by start time; each entry matches partially."
        ),
    )
    owners: dict[str, int] | None = Field(default=None, description="How many rows each owner holds (exactly).")
    soc: Any = Field(default=None, description="battery.soc: a number or a matcher such as {$range: {min, max}}.")
    mode: str | None = Field(default=None, description="battery.currentMode.")
    battery: dict[str, Any] | None = Field(default=None, description="A partial match of the battery block.")
    warnings: Any = Field(default=None, description="The warnings list (partial match per entry).")
    faults: Any = Field(default=None, description="The pending faults list.")
    body: Any = Field(default=None, description="A partial match of the whole device view.")

    @model_validator(mode="after")
    def _matchers(self) -> "TruthExpect":
        for name in ("rows", "soc", "battery", "warnings", "faults", "body"):
            check_expected_syntax(getattr(self, name), (name,))
        return self



class NativeExpect(Strict):
    """What a native reply must say. It is always HTTP 200 `{errno, msg, result}`; the transport
    checks that shape, this checks the content."""

    errno: StrictInt | dict[str, Any] = Field(
        default=0, description="The errno, or a matcher such as {$oneOf: [41200, 41201]}. Default 0 (success)."
    )
    msg: Any = Field(default=None, description="The message: a string or a matcher such as {$regex: ...}.")
    result: Any = Field(
        default=None,
        description="A partial match of result, with the same matchers as bodies; `result: null` demands null.",
    )

    @model_validator(mode="after")
    def _matchers(self) -> "NativeExpect":
        for name in ("errno", "msg", "result"):
            check_expected_syntax(getattr(self, name), (name,))
        return self



# ---- judging replies ---------------------------------------------------------------------------


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
