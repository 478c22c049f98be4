"""ResponseValidator: the seed documents' bodies pass; each kind of departure is named and located."""

from __future__ import annotations

import copy
import json
from typing import Any, Iterator

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from amps_sim.contracts import ResponseValidator, SpecViolation, load_control, load_public
from amps_sim.contracts import spec as spec_module
from amps_sim.contracts.pointer import escape, follow_refs
from amps_sim.simulator.specs import public_spec_path

JSON = "application/json"

# ---- bodies as the seed documents print them -----------------------------------------------------

# seeds 002 and 003: a push without onConflict while a scheduled action exists.
SEED_CONFLICT_PENDING = {
    "success": False,
    "error": {
        "code": "CONFLICT",
        "message": "A conflicting action is already pending for this device. Provide onConflict to resolve "
        "automatically, or cancel the existing action.",
        "details": {
            "conflictingActionIds": ["act_pending_001"],
            "strategies": ["cancel_and_replace", "queue_after"],
        },
    },
    "meta": {
        "requestId": "req_2cB5gNqR",
        "timestamp": "2026-05-08T12:00:00.000Z",
        "path": "/battery/dev_abc123",
        "latencyMs": 14,
    },
}

# seeds 000, 002 and 004: cancel_and_replace against an in-flight action.
SEED_CONFLICT_IN_FLIGHT = {
    "success": False,
    "error": {
        "code": "CONFLICT",
        "message": "The conflicting action is already in progress and cannot be cancelled. Wait for it to "
        "complete or fail.",
        "details": {"conflictingActionIds": ["act_inflight_002"]},
    },
    "meta": {
        "requestId": "req_3dC6hOsT",
        "timestamp": "2026-05-08T12:00:03.000Z",
        "path": "/battery/dev_abc123",
        "latencyMs": 18,
    },
}

# seed 002: the replacing push, and the queued one.
SEED_ACCEPTED_REPLACE = {
    "actionId": "act_inflight_009",
    "state": "acknowledged",
    "type": "battery:set_operation_mode",
    "createdAt": "2026-05-08T12:00:01.000Z",
}
SEED_ACCEPTED_QUEUED = {
    "actionId": "act_pending_010",
    "state": "scheduled",
    "type": "battery:set_operation_mode",
    "createdAt": "2026-05-08T12:00:02.000Z",
    "start": "2026-05-09T22:00:00.000Z",
}

# seed 004: a scheduled charge, and the discharge that replaces it.
SEED_ACCEPTED_SCHEDULED = {
    "actionId": "act_pending_001",
    "state": "scheduled",
    "type": "battery:set_operation_mode",
    "createdAt": "2026-05-08T08:00:00.000Z",
    "start": "2026-05-09T22:00:00.000Z",
}
SEED_ACCEPTED_REPLACING_DISCHARGE = {
    "actionId": "act_pending_002",
    "state": "scheduled",
    "type": "battery:set_operation_mode",
    "createdAt": "2026-05-08T11:32:00.000Z",
    "start": "2026-05-09T22:00:00.000Z",
}

# seed 004: cancel on an acknowledged action.
SEED_NOT_CANCELLABLE = {
    "success": False,
    "error": {
        "code": "ACTION_NOT_CANCELLABLE",
        "message": "Action in state 'acknowledged' cannot be cancelled",
    },
    "meta": {
        "requestId": "req_4nF8bMqE",
        "timestamp": "2026-05-08T11:32:00.000Z",
        "path": "/actions/act_inflight_002/cancel",
        "latencyMs": 8,
    },
}

# seeds 000 and 002: the OEM refused a direct write because its scheduler was on.
SEED_FAILED_ACTION = {
    "id": "act_failed_003",
    "deviceId": "dev_abc123",
    "type": "battery:set_operation_mode",
    "state": "failed",
    "parameters": {"mode": "charge", "target": {"value": 95, "unit": "percent"}},
    "result": None,
    "errorCode": "SCHEDULER_ACTIVE",
    "errorMessage": "Native scheduler is active; clear it before issuing a direct command.",
    "createdAt": "2026-05-08T12:10:00.000Z",
    "updatedAt": "2026-05-08T12:10:32.000Z",
    "acknowledgedAt": "2026-05-08T12:10:01.000Z",
    "completedAt": "2026-05-08T12:10:32.000Z",
}

# seed 004: the cancel reply.
SEED_CANCELLED_ACTION = {
    "id": "act_pending_001",
    "deviceId": "dev_abc123",
    "type": "battery:set_operation_mode",
    "state": "cancelled",
    "parameters": {"mode": "charge", "target": {"value": 100, "unit": "percent"}},
    "result": None,
    "errorCode": None,
    "errorMessage": None,
    "createdAt": "2026-05-08T08:00:00.000Z",
    "updatedAt": "2026-05-08T11:32:00.000Z",
    "acknowledgedAt": None,
    "completedAt": None,
    "start": "2026-05-09T22:00:00.000Z",
}

# seed 002: the follow-up read of the replaced action, as the docs print it.
SEED_CANCELLED_FOLLOW_UP = {"id": "act_pending_001", "state": "cancelled", "updatedAt": "2026-05-08T12:00:01.000Z"}

# What the simulator sends: every field, start and end null when unset.
FULL_FAILED_ACTION = {**SEED_FAILED_ACTION, "start": None, "end": None}
FULL_CANCELLED_ACTION = {**SEED_CANCELLED_ACTION, "end": "2026-05-10T05:00:00.000Z"}

SEED_RESPONSES = [
    ("POST", "/battery/dev_abc123", 409, SEED_CONFLICT_PENDING),
    ("POST", "/battery/dev_abc123", 409, SEED_CONFLICT_IN_FLIGHT),
    ("POST", "/battery/dev_abc123", 202, SEED_ACCEPTED_REPLACE),
    ("POST", "/battery/dev_abc123", 202, SEED_ACCEPTED_QUEUED),
    ("POST", "/battery/dev_abc123", 202, SEED_ACCEPTED_SCHEDULED),
    ("POST", "/battery/dev_abc123", 202, SEED_ACCEPTED_REPLACING_DISCHARGE),
    ("POST", "/actions/act_inflight_002/cancel", 409, SEED_NOT_CANCELLABLE),
    ("GET", "/actions/act_failed_003", 200, SEED_FAILED_ACTION),
    ("POST", "/actions/act_pending_001/cancel", 200, SEED_CANCELLED_ACTION),
    ("GET", "/actions/act_pending_001", 200, SEED_CANCELLED_ACTION),
    ("GET", "/actions/act_pending_001", 200, SEED_CANCELLED_FOLLOW_UP),
    ("GET", "/actions/act_failed_003", 200, FULL_FAILED_ACTION),
    ("POST", "/actions/act_pending_001/cancel", 200, FULL_CANCELLED_ACTION),
]


@pytest.fixture(scope="module")
def public() -> ResponseValidator:
    return load_public()


@pytest.fixture(scope="module")
def control() -> ResponseValidator:
    return load_control()


def _rules(violations: list[SpecViolation]) -> set[tuple[str, str]]:
    return {(v.pointer, v.rule) for v in violations}


@pytest.mark.parametrize(("method", "path", "status", "body"), SEED_RESPONSES)
def test_seed_bodies_conform(public: ResponseValidator, method: str, path: str, status: int, body: Any) -> None:
    assert public.validate(method, path, status, body, JSON) == []
    raw = json.dumps(body).encode()
    assert public.validate(method, path, status, raw, "application/json; charset=utf-8") == []


# ---- finding operations -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "template", "operation_id"),
    [
        ("GET", "/battery", "/battery", "listBatteries"),
        ("get", "/battery/dev_abc123", "/battery/{deviceId}", "getBattery"),
        ("POST", "/battery/dev_abc123", "/battery/{deviceId}", "pushBatteryAction"),
        ("GET", "/actions?deviceId=dev_abc123&limit=5", "/actions", "listActions"),
        ("GET", "/actions/act_pending_001", "/actions/{actionId}", "getAction"),
        ("POST", "/actions/act_pending_001/cancel", "/actions/{actionId}/cancel", "cancelAction"),
        ("GET", "/openapi.yaml", "/openapi.yaml", "getOpenApi"),
    ],
)
def test_find_operation(public: ResponseValidator, method: str, path: str, template: str, operation_id: str) -> None:
    found = public.find_operation(method, path)
    assert found is not None
    assert found[0] == template
    assert found[1]["operationId"] == operation_id


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/batteries"),
        ("DELETE", "/battery/dev_abc123"),
        ("GET", "/battery/dev_abc123/extra"),
        ("GET", "/battery/"),
        ("POST", "/actions/act_pending_001"),
        ("GET", "/actions/act_pending_001/cancel"),
    ],
)
def test_undocumented_operations(public: ResponseValidator, method: str, path: str) -> None:
    assert public.find_operation(method, path) is None
    violations = public.validate(method, path, 200, {}, JSON)
    assert _rules(violations) == {("", "operation-undocumented")}


def test_control_operations_are_found(control: ResponseValidator) -> None:
    assert control.find_operation("POST", "/_sim/clock/advance")[0] == "/_sim/clock/advance"  # type: ignore[index]
    assert control.find_operation("PUT", "/_sim/devices/dev_abc123/scheduler")[0] == (  # type: ignore[index]
        "/_sim/devices/{deviceId}/scheduler"
    )
    assert control.find_operation("GET", "/battery") is None


# ---- each kind of departure ---------------------------------------------------------------------


def test_extra_key(public: ResponseValidator) -> None:
    body = {**SEED_ACCEPTED_REPLACE, "foo": 1}
    violations = public.validate("POST", "/battery/dev_abc123", 202, body, JSON)
    assert _rules(violations) == {("/foo", "additionalProperties")}
    assert "foo" in violations[0].message


def test_extra_key_nested(public: ResponseValidator) -> None:
    body = copy.deepcopy(SEED_NOT_CANCELLABLE)
    body["meta"]["traceId"] = "abc"
    body["error"]["hint"] = "wait"
    violations = public.validate("POST", "/actions/act_inflight_002/cancel", 409, body, JSON)
    assert _rules(violations) == {("/meta/traceId", "additionalProperties"), ("/error/hint", "additionalProperties")}


def test_extra_keys_are_reported_one_by_one(public: ResponseValidator) -> None:
    body = {**FULL_FAILED_ACTION, "a": 1, "b/c": 2}
    violations = public.validate("GET", "/actions/act_failed_003", 200, body, JSON)
    assert _rules(violations) == {("/a", "additionalProperties"), ("/b~1c", "additionalProperties")}


def test_missing_key(public: ResponseValidator) -> None:
    body = {k: v for k, v in FULL_FAILED_ACTION.items() if k != "updatedAt"}
    violations = public.validate("GET", "/actions/act_failed_003", 200, body, JSON)
    assert _rules(violations) == {("/updatedAt", "required")}


def test_missing_key_nested(public: ResponseValidator) -> None:
    body = copy.deepcopy(SEED_CONFLICT_PENDING)
    del body["meta"]["latencyMs"]
    violations = public.validate("POST", "/battery/dev_abc123", 409, body, JSON)
    assert _rules(violations) == {("/meta/latencyMs", "required")}


def test_conflict_without_details(public: ResponseValidator) -> None:
    body = copy.deepcopy(SEED_CONFLICT_PENDING)
    del body["error"]["details"]
    violations = public.validate("POST", "/battery/dev_abc123", 409, body, JSON)
    assert _rules(violations) == {("/error/details", "required")}


def test_scheduler_active_details_are_typed(public: ResponseValidator) -> None:
    body = copy.deepcopy(SEED_CONFLICT_PENDING)
    body["error"] = {
        "code": "SCHEDULER_ACTIVE",
        "message": "Foreign rows overlap the window.",
        "details": {"detectedAt": "later", "recoveryStrategies": ["cancel_and_replace"]},
    }
    violations = public.validate("POST", "/battery/dev_abc123", 409, body, JSON)
    assert _rules(violations) == {("/error/details/reason", "required"), ("/error/details/detectedAt", "enum")}


def test_scheduler_full_details_are_typed(public: ResponseValidator) -> None:
    body = copy.deepcopy(SEED_CONFLICT_PENDING)
    body["error"] = {
        "code": "SCHEDULER_FULL",
        "message": "No room.",
        "details": {"existingGroupCount": 8, "maxGroupCount": "8", "requiredGroupCount": 9},
    }
    violations = public.validate("POST", "/battery/dev_abc123", 409, body, JSON)
    assert _rules(violations) == {("/error/details/maxGroupCount", "type")}


def test_invalid_time_window_reason_is_an_enum(public: ResponseValidator) -> None:
    body = copy.deepcopy(SEED_CONFLICT_PENDING)
    body["error"] = {
        "code": "INVALID_TIME_WINDOW",
        "message": "Bad window.",
        "details": {"reason": "utc", "field": "start"},
    }
    violations = public.validate("POST", "/battery/dev_abc123", 422, body, JSON)
    assert _rules(violations) == {("/error/details/reason", "enum")}


def test_invalid_request_errors_are_closed(public: ResponseValidator) -> None:
    body = copy.deepcopy(SEED_CONFLICT_PENDING)
    body["error"] = {
        "code": "INVALID_REQUEST",
        "message": "The request is malformed.",
        "details": {"errors": [{"path": "/action", "message": "required", "line": 1}]},
    }
    violations = public.validate("POST", "/battery/dev_abc123", 400, body, JSON)
    assert _rules(violations) == {("/error/details/errors/0/line", "additionalProperties")}


def test_empty_details_are_refused(public: ResponseValidator) -> None:
    body = copy.deepcopy(SEED_NOT_CANCELLABLE)
    body["error"]["details"] = {}
    violations = public.validate("POST", "/actions/act_inflight_002/cancel", 409, body, JSON)
    # Empty, and ACTION_NOT_CANCELLABLE carries no details at all.
    assert _rules(violations) == {("/error/details", "minProperties"), ("/error", "not")}


def test_wrong_enum(public: ResponseValidator) -> None:
    body = {**SEED_ACCEPTED_QUEUED, "state": "pending"}
    violations = public.validate("POST", "/battery/dev_abc123", 202, body, JSON)
    assert _rules(violations) == {("/state", "enum")}


def test_code_outside_the_status(public: ResponseValidator) -> None:
    body = copy.deepcopy(SEED_CONFLICT_PENDING)
    body["error"]["code"] = "ACTION_NOT_CANCELLABLE"
    violations = public.validate("POST", "/battery/dev_abc123", 409, body, JSON)
    assert _rules(violations) == {("/error/code", "enum")}


def test_wrong_const(public: ResponseValidator) -> None:
    body = {**SEED_CONFLICT_PENDING, "success": True}
    violations = public.validate("POST", "/battery/dev_abc123", 409, body, JSON)
    assert _rules(violations) == {("/success", "const")}


def test_timestamp_without_milliseconds(public: ResponseValidator) -> None:
    body = {**SEED_ACCEPTED_SCHEDULED, "start": "2026-05-09T22:00:00Z"}
    violations = public.validate("POST", "/battery/dev_abc123", 202, body, JSON)
    assert _rules(violations) == {("/start", "pattern")}


def test_request_id_shape(public: ResponseValidator) -> None:
    body = copy.deepcopy(SEED_CONFLICT_IN_FLIGHT)
    body["meta"]["requestId"] = "req_123"
    violations = public.validate("POST", "/battery/dev_abc123", 409, body, JSON)
    assert _rules(violations) == {("/meta/requestId", "pattern")}


def test_unknown_command_in_capabilities(public: ResponseValidator) -> None:
    device = copy.deepcopy(public.document["components"]["examples"]["DeviceReadValue"]["value"])
    assert public.validate("GET", "/battery/dev_abc123", 200, device, JSON) == []
    device["commands"]["boost"] = {"parameters": {}, "execution": ["immediate"]}
    device["state"]["level"] = 101
    violations = public.validate("GET", "/battery/dev_abc123", 200, device, JSON)
    assert _rules(violations) == {("/commands/boost", "enum"), ("/state/level", "maximum")}


def test_list_items_are_located(public: ResponseValidator) -> None:
    second = {**FULL_CANCELLED_ACTION, "state": "done"}
    page = {"actions": [FULL_FAILED_ACTION, second], "total": 2, "limit": 20, "offset": 0}
    violations = public.validate("GET", "/actions?limit=20", 200, page, JSON)
    assert _rules(violations) == {("/actions/1/state", "enum")}


def test_wrong_status(public: ResponseValidator) -> None:
    violations = public.validate("GET", "/battery/dev_abc123", 409, SEED_CONFLICT_PENDING, JSON)
    assert _rules(violations) == {("", "status-undocumented")}
    violations = public.validate("POST", "/battery/dev_abc123", 500, SEED_CONFLICT_PENDING, JSON)
    assert _rules(violations) == {("", "status-undocumented")}


def test_wrong_content_type(public: ResponseValidator) -> None:
    violations = public.validate("POST", "/battery/dev_abc123", 202, json.dumps(SEED_ACCEPTED_REPLACE), "text/plain")
    assert _rules(violations) == {("", "content-type")}
    violations = public.validate("POST", "/battery/dev_abc123", 202, json.dumps(SEED_ACCEPTED_REPLACE), None)
    assert _rules(violations) == {("", "content-type")}


def test_body_that_is_not_json(public: ResponseValidator) -> None:
    violations = public.validate("POST", "/battery/dev_abc123", 202, b"{not json", JSON)
    assert _rules(violations) == {("", "json")}


def test_missing_body(public: ResponseValidator) -> None:
    violations = public.validate("POST", "/battery/dev_abc123", 202, b"", JSON)
    assert _rules(violations) == {("", "body-missing")}


def test_openapi_document_is_text(public: ResponseValidator) -> None:
    text = b"openapi: 3.1.0\n"
    assert public.validate("GET", "/openapi.yaml", 200, text, "application/yaml") == []
    assert _rules(public.validate("GET", "/openapi.yaml", 200, text, "application/json")) == {("", "content-type")}


def test_no_content_means_no_body(control: ResponseValidator) -> None:
    assert control.validate("DELETE", "/_sim/devices/dev_abc123", 204, None, None) == []
    assert control.validate("DELETE", "/_sim/devices/dev_abc123", 204, b"", None) == []
    violations = control.validate("DELETE", "/_sim/devices/dev_abc123", 204, b"{}", JSON)
    assert _rules(violations) == {("", "body-unexpected")}


def test_control_bodies(control: ResponseValidator) -> None:
    assert control.validate("POST", "/_sim/tenants", 201, {"apiKey": "sk_test_4fG7hJ2kL9mN"}, JSON) == []
    violations = control.validate("POST", "/_sim/tenants", 201, {"apiKey": "sk_live_abc123xyz"}, JSON)
    assert _rules(violations) == {("/apiKey", "pattern")}
    violations = control.validate("POST", "/_sim/clock/advance", 200, {"now": "2026-05-08T13:30:00.000Z", "webhookAttempts": 0}, JSON)
    assert _rules(violations) == {("/eventsProcessed", "required")}
    rejected = {
        "success": False,
        "error": {"code": "SCHEDULE_REJECTED", "message": "time overlap", "details": {"errno": "42023"}},
        "meta": {"requestId": "req_Sch3dR3j", "timestamp": "2026-05-08T12:00:00.000Z", "path": "/_sim/devices", "latencyMs": 0},
    }
    violations = control.validate("POST", "/_sim/devices", 422, rejected, JSON)
    assert _rules(violations) == {("/error/details/errno", "type"), ("/error/details/reason", "required")}


def test_violation_reads_well() -> None:
    assert str(SpecViolation("/state", "enum", "'x' is not one of [...]")) == "/state [enum] 'x' is not one of [...]"
    assert str(SpecViolation("", "status-undocumented", "nope")).startswith("/ [status-undocumented]")


# ---- the fast predicate agrees with jsonschema -----------------------------------------------------


def _media_schemas(spec: ResponseValidator) -> Iterator[tuple[str, Any]]:
    """(schema pointer, example value) for every response example in the document."""
    document = spec.document

    def follow(node: Any, pointer: str) -> tuple[Any, str]:
        return follow_refs(document, node, pointer)

    for method, template, operation in spec.operations():
        escaped = escape(template)
        for status, response in operation["responses"].items():
            response, pointer = follow(response, f"/paths/{escaped}/{method.lower()}/responses/{status}")
            for media, media_object in (response.get("content") or {}).items():
                schema_pointer = f"{pointer}/content/{media.replace('/', '~1')}/schema"
                for example in (media_object.get("examples") or {}).values():
                    example, _ = follow(example, "")
                    yield schema_pointer, example["value"]


_REPLACEMENTS: list[Any] = [None, True, -1, 2.5, "x", [], {}]


def _mutations(value: Any) -> Iterator[Any]:
    """The value with one node dropped, added to, or replaced, for every node."""
    for replacement in _REPLACEMENTS:
        yield replacement
    if isinstance(value, dict):
        yield {**value, "zz_extra": 1}
        for key in value:
            yield {k: v for k, v in value.items() if k != key}
            for inner in _mutations(value[key]):
                yield {**value, key: inner}
    elif isinstance(value, list):
        if value:
            yield value[1:]
            yield value + value[:1]
        for index, item in enumerate(value):
            for inner in _mutations(item):
                yield value[:index] + [inner] + value[index + 1 :]


def _reference_validator(spec: ResponseValidator, pointer: str) -> Draft202012Validator:
    """The Python jsonschema package, as an independent second opinion on every verdict."""
    base = "urn:amps-sim:reference"
    resource = Resource.from_contents(spec.document, default_specification=DRAFT202012)
    return Draft202012Validator({"$ref": f"{base}#{pointer}"}, registry=Registry().with_resource(base, resource))


@pytest.mark.parametrize("loader", [load_public, load_control], ids=["public", "control"])
def test_verdicts_agree_with_jsonschema(loader: Any) -> None:
    spec = loader()
    seen: set[tuple[str, str]] = set()
    compared = 0
    for pointer, example in _media_schemas(spec):
        key = (pointer, json.dumps(example, sort_keys=True))
        if key in seen:
            continue
        seen.add(key)
        ours = spec.schema_validator(pointer)
        reference = _reference_validator(spec, pointer)
        for candidate in _mutations(example):
            assert ours.is_valid(candidate) == reference.is_valid(candidate), (pointer, candidate)
            compared += 1
    assert compared > 1000


def test_each_reply_is_judged_afresh_on_a_path_asked_about_before() -> None:
    # The document's answer for a (method, path, status) is kept; verdicts never are.
    spec = ResponseValidator.from_file(public_spec_path())
    for _ in range(2):
        assert spec.validate("POST", "/battery/dev_abc123", 202, SEED_ACCEPTED_REPLACE, JSON) == []
        assert _rules(spec.validate("POST", "/battery/dev_abc123", 202, {**SEED_ACCEPTED_REPLACE, "foo": 1}, JSON)) == {
            ("/foo", "additionalProperties")}
        assert _rules(spec.validate("POST", "/battery/dev_abc123", 202, b"", JSON)) == {("", "body-missing")}
        assert _rules(spec.validate("POST", "/battery/dev_abc123", 299, SEED_ACCEPTED_REPLACE, JSON)) == {("", "status-undocumented")}
        assert _rules(spec.validate("PATCH", "/battery/dev_abc123", 202, {}, JSON)) == {("", "operation-undocumented")}
        assert _rules(spec.validate("POST", "/battery/dev_abc123", 202, SEED_ACCEPTED_REPLACE, "text/plain")) == {("", "content-type")}
        assert spec.validate("POST", "/battery/dev_abc123", 202, SEED_ACCEPTED_REPLACE, None) == []
        assert _rules(spec.validate("POST", "/battery/dev_abc123", 202, b"[1]", None)) == {("", "content-type")}
    # Bounded: headers that differ in their parameters, and many concrete paths (one per id).
    for n in range(100):
        assert spec.validate("POST", "/battery/dev_abc123", 202, SEED_ACCEPTED_REPLACE, f"application/json; v={n}") == []
    kept = spec._responses[("POST", "/battery/dev_abc123", 202)]
    assert not isinstance(kept, SpecViolation) and len(kept[2]) <= spec_module._MEDIAS_LIMIT
    for n in range(spec_module._RESPONSES_LIMIT + 10):
        spec.validate("GET", f"/actions/act_{n}", 404, b"", JSON)
    assert len(spec._responses) <= spec_module._RESPONSES_LIMIT
