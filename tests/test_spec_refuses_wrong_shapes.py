"""Item 2 of issue 12: the spec refuses the shapes the API never sends (and requests it never takes).

Each case starts from a body the spec accepts (checked first, so a case cannot pass by starting
from an already broken body) and changes one thing.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from amps_sim.contracts.spec import load_public

JSON = "application/json"
PUSH = ("POST", "/battery/dev_abc123")
RECORD = ("GET", "/actions/act_x")
META = {"requestId": "req_2cB5gNqR", "timestamp": "2026-05-08T12:00:00.000Z", "path": "/battery/dev_abc123", "latencyMs": 14}


def envelope(code: str, details: dict[str, Any] | None, message: str = "refused") -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"success": False, "error": error, "meta": dict(META)}


FAILED = {
    "id": "act_failed_003", "deviceId": "dev_abc123", "type": "battery:set_operation_mode", "state": "failed",
    "parameters": {"mode": "charge", "target": {"value": 95, "unit": "percent"}}, "result": None,
    "errorCode": "SCHEDULER_ACTIVE", "errorMessage": "Native scheduler is active; clear it before issuing a direct command.",
    "createdAt": "2026-05-08T12:10:00.000Z", "updatedAt": "2026-05-08T12:10:32.000Z",
    "acknowledgedAt": "2026-05-08T12:10:01.000Z", "completedAt": "2026-05-08T12:10:32.000Z", "start": None, "end": None,
}
COMPLETED = {
    **FAILED, "state": "completed", "errorCode": None, "errorMessage": None,
    "parameters": {"mode": "auto.balanced"}, "completedAt": "2026-05-08T12:10:03.000Z",
}
CANCELLED = {
    **FAILED, "state": "cancelled", "errorCode": None, "errorMessage": None, "acknowledgedAt": None, "completedAt": None,
    "start": "2026-05-09T22:00:00.000Z", "end": "2026-05-10T05:00:00.000Z",
}
DISPATCH_FAILURE = {
    **FAILED, "errorCode": "OEM_TIMEOUT", "errorMessage": "The OEM cloud did not answer in time.",
    "result": {"success": False, "error": {"code": "OEM_TIMEOUT", "message": "The OEM cloud did not answer in time.",
                                           "details": {"attempts": 3}}},
}
SCHEDULED_REPLY = {"actionId": "act_pending_001", "state": "scheduled", "type": "battery:set_operation_mode",
                   "createdAt": "2026-05-08T08:00:00.000Z", "start": "2026-05-09T22:00:00.000Z"}
ACKNOWLEDGED_REPLY = {"actionId": "act_inflight_009", "state": "acknowledged", "type": "battery:set_operation_mode",
                      "createdAt": "2026-05-08T12:00:01.000Z"}
IN_FLIGHT = envelope("CONFLICT", {"conflictingActionIds": ["act_inflight_002"], "reason": "action_in_flight"})
# seeds 000, 002 and 004 print the in-flight refusal without `reason`.
SEED_IN_FLIGHT = envelope("CONFLICT", {"conflictingActionIds": ["act_inflight_002"]},
                          "The conflicting action is already in progress and cannot be cancelled. "
                          "Wait for it to complete or fail.")
PENDING = envelope("CONFLICT", {"conflictingActionIds": ["act_pending_001"], "reason": "no_strategy_supplied",
                                "strategies": ["cancel_and_replace", "queue_after"]})
BLOCKING = envelope("SCHEDULER_ACTIVE", {
    "reason": "foreign_scheduler_blocking_imperative", "detectedAt": "submission_time",
    "recoveryStrategies": ["cancel_and_replace", "manual_clear_via_device_app"],
    "foreignGroups": [{"start": "08:00", "end": "10:59", "workMode": "SelfUse", "owner": "homeowner_app"}],
})
FULL = envelope("SCHEDULER_FULL", {"existingGroupCount": 8, "maxGroupCount": 8})

# 422 refusals of a push: each code with the details the simulator sends.
REFUSALS_422: dict[str, dict[str, Any]] = {
    "UNSUPPORTED_MODE": {"command": "boost", "deviceCapabilities": {"idle": {"parameters": {}, "execution": ["immediate"]}}},
    "UNSUPPORTED_PARAMETER": {"unsupportedParameters": ["target"],
                              "deviceCapabilities": {"idle": {"parameters": {}, "execution": ["immediate"]}}},
    "UNSUPPORTED_UNIT": {"parameter": "power", "providedUnit": "w", "supportedUnits": ["kw"]},
    "PARAMETER_OUT_OF_RANGE": {"parameter": "target", "value": 5, "min": 10, "max": 100, "unit": "percent"},
    "EXECUTION_NOT_SUPPORTED": {"requestedExecution": "windowed", "supportedExecution": ["immediate", "scheduled"]},
    "INVALID_TIME_WINDOW": {"reason": "zero_utc_offset", "field": "start", "value": "2026-05-09T22:00:00Z"},
    "START_IN_PAST": {"start": "2026-05-08T07:00:00.000Z", "now": "2026-05-08T08:00:00.000Z"},
    "START_OUT_OF_RANGE": {"start": "2026-07-08T08:00:00.000Z", "maxStart": "2026-06-07T08:00:00.000Z"},
}


def changed(body: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    copied = copy.deepcopy(body)
    change(copied)
    return copied


def _parent(body: Any, path: str) -> tuple[Any, str]:
    *parents, last = path.split("/")
    for key in parents:
        body = body[int(key)] if isinstance(body, list) else body[key]
    return body, last


def set_at(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        node, last = _parent(body, path)
        node[last] = value
    return change


def drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        node, last = _parent(body, path)
        del node[last]
    return change


RESPONSE_CASES = [
    # errorCode is one of the documented codes, set exactly when the action failed.
    ("free-text errorCode", RECORD, 200, FAILED, set_at("errorCode", "SOMETHING_BROKE")),
    ("failed without errorCode", RECORD, 200, FAILED, set_at("errorCode", None)),
    ("failed without errorMessage", RECORD, 200, FAILED, set_at("errorMessage", None)),
    ("failed with errorCode missing", RECORD, 200, FAILED, drop("errorCode")),
    ("failed without completedAt", RECORD, 200, FAILED, set_at("completedAt", None)),
    ("the imperative block with another message", RECORD, 200, FAILED, set_at("errorMessage", "Scheduler on.")),
    ("completed with an errorCode", RECORD, 200, COMPLETED, set_at("errorCode", "SCHEDULER_ACTIVE")),
    ("completed with an errorMessage", RECORD, 200, COMPLETED, set_at("errorMessage", "odd")),
    ("completed with a result", RECORD, 200, COMPLETED, set_at("result", DISPATCH_FAILURE["result"])),
    ("completed never acknowledged", RECORD, 200, COMPLETED, set_at("acknowledgedAt", None)),
    ("cancelled with completedAt", RECORD, 200, CANCELLED, set_at("completedAt", "2026-05-08T11:32:00.000Z")),
    ("cancelled with acknowledgedAt", RECORD, 200, CANCELLED, set_at("acknowledgedAt", "2026-05-08T11:32:00.000Z")),
    ("cancelled with an errorCode", RECORD, 200, CANCELLED, set_at("errorCode", "SCHEDULER_ACTIVE")),
    ("end without start", RECORD, 200, CANCELLED, set_at("start", None)),
    ("auto.balanced carrying a target", RECORD, 200, COMPLETED, set_at("parameters/target", {"value": 80, "unit": "percent"})),
    ("idle carrying a power", RECORD, 200, COMPLETED, set_at("parameters", {"mode": "idle", "power": {"value": 1, "unit": "kw"}})),
    ("target in the wrong unit", RECORD, 200, FAILED, set_at("parameters/target/unit", "kw")),
    ("result code not an action error", RECORD, 200, DISPATCH_FAILURE, set_at("result/error/code", "WHATEVER")),
    ("result details open", RECORD, 200, DISPATCH_FAILURE, set_at("result/error/details/extra", 1)),
    ("result without details", RECORD, 200, DISPATCH_FAILURE, drop("result/error/details")),
    # push replies
    ("scheduled reply without start", PUSH, 202, SCHEDULED_REPLY, drop("start")),
    ("acknowledged reply with start", PUSH, 202, ACKNOWLEDGED_REPLY, set_at("start", "2026-05-09T22:00:00.000Z")),
    ("reply with end but no start", PUSH, 202, ACKNOWLEDGED_REPLY, set_at("end", "2026-05-09T22:00:00.000Z")),
    # 409s: closed details, one schema per code
    ("in-flight CONFLICT offering strategies", PUSH, 409, IN_FLIGHT, set_at("error/details/strategies", ["queue_after"])),
    ("the docs' in-flight CONFLICT offering strategies", PUSH, 409, SEED_IN_FLIGHT,
     set_at("error/details/strategies", ["cancel_and_replace"])),
    ("CONFLICT details open", PUSH, 409, PENDING, set_at("error/details/hint", "wait")),
    ("CONFLICT without details", PUSH, 409, PENDING, drop("error/details")),
    ("CONFLICT with an unknown reason", PUSH, 409, PENDING, set_at("error/details/reason", "busy")),
    ("SCHEDULER_ACTIVE details open", PUSH, 409, BLOCKING, set_at("error/details/owner", "homeowner_app")),
    ("SCHEDULER_ACTIVE row open", PUSH, 409, BLOCKING, set_at("error/details/foreignGroups/0/colour", "red")),
    ("SCHEDULER_ACTIVE without recoveryStrategies", PUSH, 409, BLOCKING, drop("error/details/recoveryStrategies")),
    ("SCHEDULER_FULL details open", PUSH, 409, FULL, set_at("error/details/freeGroupCount", 0)),
    ("SCHEDULER_FULL with SCHEDULER_ACTIVE details", PUSH, 409, BLOCKING, set_at("error/code", "SCHEDULER_FULL")),
    ("ACTION_NOT_CANCELLABLE with details", ("POST", "/actions/act_x/cancel"), 409,
     envelope("ACTION_NOT_CANCELLABLE", None, "Action in state 'acknowledged' cannot be cancelled"),
     set_at("error/details", {"state": "acknowledged"})),
    ("DEVICE_NOT_FOUND with details", ("GET", "/battery/dev_x"), 404, envelope("DEVICE_NOT_FOUND", None),
     set_at("error/details", {"deviceId": "dev_x"})),
    ("INVALID_REQUEST error entry open", PUSH, 400,
     envelope("INVALID_REQUEST", {"errors": [{"path": "action", "message": "required"}]}),
     set_at("error/details/errors/0/line", 1)),
    *[
        (f"{code} details open", PUSH, 422, envelope(code, details), set_at("error/details/extra", True))
        for code, details in REFUSALS_422.items()
    ],
    *[
        (f"{code} without details", PUSH, 422, envelope(code, details), drop("error/details"))
        for code, details in REFUSALS_422.items()
    ],
]


@pytest.mark.parametrize(("name", "where", "status", "base", "change"), RESPONSE_CASES, ids=[c[0] for c in RESPONSE_CASES])
def test_the_spec_refuses_a_wrong_response(
    name: str, where: tuple[str, str], status: int, base: dict[str, Any], change: Callable[[dict[str, Any]], None]
) -> None:
    spec = load_public()
    method, path = where
    assert spec.validate(method, path, status, base, JSON) == [], f"the base body of {name!r} must pass"
    assert spec.validate(method, path, status, changed(base, change), JSON) != [], name


GOOD_REQUESTS = [
    {"action": {"command": "charge", "parameters": {"target": {"value": 100, "unit": "percent"}}}},
    {"action": {"command": "discharge", "start": "1h", "end": "2h",
                "parameters": {"target": {"value": 20, "unit": "percent"}, "power": {"value": 3.5, "unit": "kw"},
                               "reserve": {"value": 10, "unit": "percent"}}}},
    {"action": {"command": "idle", "start": "30m"}},
    {"action": {"command": "idle", "parameters": {}}},
    {"action": {"command": "auto.balanced"}, "onConflict": "queue_after"},
]
BAD_REQUESTS = [
    ("idle with a target", {"action": {"command": "idle", "parameters": {"target": {"value": 50, "unit": "percent"}}}}),
    ("auto.balanced with a power", {"action": {"command": "auto.balanced", "parameters": {"power": {"value": 1, "unit": "kw"}}}}),
    ("auto.export windowed", {"action": {"command": "auto.export", "start": "1h", "end": "2h"}}),
    ("end without start", {"action": {"command": "charge", "end": "2h"}}),
    ("power in watts", {"action": {"command": "charge", "parameters": {"power": {"value": 3000, "unit": "w"}}}}),
    ("target above 100 percent", {"action": {"command": "charge", "parameters": {"target": {"value": 101, "unit": "percent"}}}}),
    ("negative power", {"action": {"command": "charge", "parameters": {"power": {"value": -1, "unit": "kw"}}}}),
    ("reserve in kw", {"action": {"command": "discharge", "parameters": {"reserve": {"value": 1, "unit": "kw"}}}}),
]


@pytest.mark.parametrize("body", GOOD_REQUESTS)
def test_the_request_schema_takes_what_the_api_accepts(body: dict[str, Any]) -> None:
    assert load_public().schema_validator("/components/schemas/PushRequest").is_valid(body)


@pytest.mark.parametrize(("name", "body"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_the_request_schema_carries_the_static_rules(name: str, body: dict[str, Any]) -> None:
    assert not load_public().schema_validator("/components/schemas/PushRequest").is_valid(body), name
