"""The two OpenAPI documents: valid 3.1, examples true to their schemas, statuses and codes as agreed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest
from openapi_spec_validator import validate as validate_openapi

from amps_sim.contracts.pointer import escape, follow_refs
from amps_sim.contracts.spec import ResponseValidator, control_spec_path, load_control, load_public, public_spec_path
from amps_sim.simulator.errors import STATUS_BY_CODE

PUBLIC_STATUSES: dict[tuple[str, str], dict[str, set[str]]] = {
    ("GET", "/battery"): {"200": set(), "401": {"UNAUTHORIZED", "INVALID_API_KEY"}},
    ("GET", "/battery/{deviceId}"): {
        "200": set(),
        "401": {"UNAUTHORIZED", "INVALID_API_KEY"},
        "404": {"DEVICE_NOT_FOUND"},
    },
    ("POST", "/battery/{deviceId}"): {
        "202": set(),
        "400": {"INVALID_REQUEST"},
        "401": {"UNAUTHORIZED", "INVALID_API_KEY"},
        "403": {"ACTION_LIMIT_REACHED"},
        "404": {"DEVICE_NOT_FOUND"},
        "409": {"CONFLICT", "SCHEDULER_ACTIVE", "SCHEDULER_FULL"},
        "413": {"PAYLOAD_TOO_LARGE"},
        "415": {"UNSUPPORTED_MEDIA_TYPE"},
        "422": {
            "UNSUPPORTED_MODE",
            "UNSUPPORTED_PARAMETER",
            "UNSUPPORTED_UNIT",
            "PARAMETER_OUT_OF_RANGE",
            "EXECUTION_NOT_SUPPORTED",
            "INVALID_TIME_WINDOW",
            "START_IN_PAST",
            "START_OUT_OF_RANGE",
        },
    },
    ("GET", "/actions"): {
        "200": set(),
        "400": {"INVALID_REQUEST"},
        "401": {"UNAUTHORIZED", "INVALID_API_KEY"},
    },
    ("GET", "/actions/{actionId}"): {
        "200": set(),
        "401": {"UNAUTHORIZED", "INVALID_API_KEY"},
        "404": {"NOT_FOUND"},
    },
    ("POST", "/actions/{actionId}/cancel"): {
        "200": set(),
        "401": {"UNAUTHORIZED", "INVALID_API_KEY"},
        "404": {"NOT_FOUND"},
        "409": {"ACTION_NOT_CANCELLABLE"},
        "413": {"PAYLOAD_TOO_LARGE"},
    },
    ("GET", "/openapi.yaml"): {"200": set()},
}

_AUTH = {"UNAUTHORIZED", "INVALID_API_KEY"}
_BODY_ERRORS = {
    "400": {"INVALID_REQUEST"},
    "413": {"PAYLOAD_TOO_LARGE"},
    "415": {"UNSUPPORTED_MEDIA_TYPE"},
}

CONTROL_STATUSES: dict[tuple[str, str], dict[str, set[str]]] = {
    ("POST", "/_sim/tenants"): {
        "201": set(),
        "401": {"UNAUTHORIZED", "INVALID_API_KEY"},
        "403": {"FORBIDDEN", "DEVICE_LIMIT_REACHED"},
        **_BODY_ERRORS,
        "409": {"DEVICE_EXISTS"},
        "422": {"CLOCK_OUT_OF_RANGE", "UNKNOWN_TIME_ZONE", "SCHEDULE_REJECTED"},
    },
    ("GET", "/_sim/tenants"): {"200": set(), "401": _AUTH},
    ("DELETE", "/_sim/tenant"): {"204": set(), "401": _AUTH, "409": {"TENANT_PINNED"}},
    ("GET", "/_sim/health"): {"200": set()},
    ("GET", "/_sim/clock"): {"200": set(), "401": _AUTH},
    ("POST", "/_sim/clock/advance"): {
        "200": set(),
        "401": _AUTH,
        **_BODY_ERRORS,
        "422": {"CLOCK_BACKWARDS", "CLOCK_OUT_OF_RANGE"},
    },
    ("POST", "/_sim/reset"): {"200": set(), "401": _AUTH},
    ("GET", "/_sim/devices"): {"200": set(), "401": _AUTH},
    ("POST", "/_sim/devices"): {
        "201": set(),
        "401": _AUTH,
        "403": {"DEVICE_LIMIT_REACHED"},
        **_BODY_ERRORS,
        "409": {"DEVICE_EXISTS"},
        "422": {"UNKNOWN_TIME_ZONE", "SCHEDULE_REJECTED"},
    },
    ("GET", "/_sim/devices/{deviceId}"): {"200": set(), "401": _AUTH, "404": {"DEVICE_NOT_FOUND"}},
    ("DELETE", "/_sim/devices/{deviceId}"): {"204": set(), "401": _AUTH, "404": {"DEVICE_NOT_FOUND"}},
    ("PUT", "/_sim/devices/{deviceId}/scheduler"): {
        "200": set(),
        "401": _AUTH,
        "404": {"DEVICE_NOT_FOUND"},
        **_BODY_ERRORS,
        "422": {"SCHEDULE_REJECTED"},
    },
    ("POST", "/_sim/devices/{deviceId}/faults"): {
        "200": set(),
        "401": _AUTH,
        "404": {"DEVICE_NOT_FOUND"},
        **_BODY_ERRORS,
    },
    ("POST", "/_sim/oem-keys"): {
        "201": set(),
        "401": _AUTH,
        "404": {"DEVICE_NOT_FOUND"},
        **_BODY_ERRORS,
        "422": {"NATIVE_API_UNAVAILABLE"},
    },
    ("GET", "/_sim/webhooks"): {"200": set(), "401": _AUTH},
    ("POST", "/_sim/webhooks"): {
        "201": set(),
        "401": _AUTH,
        **_BODY_ERRORS,
        "422": {"WEBHOOK_URL_REFUSED", "WEBHOOK_LIMIT"},
    },
    ("DELETE", "/_sim/webhooks/{webhookId}"): {"204": set(), "401": _AUTH, "404": {"NOT_FOUND"}},
    ("POST", "/_sim/webhooks/{webhookId}/rotate-secret"): {
        "200": set(),
        "401": _AUTH,
        "404": {"NOT_FOUND"},
        **_BODY_ERRORS,
    },
    ("GET", "/_sim/webhooks/{webhookId}/deliveries"): {"200": set(), "401": _AUTH, "404": {"NOT_FOUND"}},
    ("POST", "/_sim/webhooks/{webhookId}/deliveries/{msgId}/replay"): {"200": set(), "401": _AUTH, "404": {"NOT_FOUND"}},
    ("POST", "/_sim/webhooks/{webhookId}/faults"): {
        "200": set(),
        "401": _AUTH,
        "404": {"NOT_FOUND"},
        **_BODY_ERRORS,
    },
    ("GET", "/_sim/webhook-settings"): {"200": set(), "401": _AUTH},
    ("PUT", "/_sim/webhook-settings"): {"200": set(), "401": _AUTH, **_BODY_ERRORS},
}

# A hosted sandbox may limit each tenant's request rate (`serve --rate-limit`): every operation
# that takes a tenant's key may answer 429.
for _statuses in (*PUBLIC_STATUSES.values(), *CONTROL_STATUSES.values()):
    if "401" in _statuses and "UNAUTHORIZED" in _statuses["401"] and _statuses is not CONTROL_STATUSES[("POST", "/_sim/tenants")]:
        _statuses["429"] = {"RATE_LIMIT_EXCEEDED"}

# Behind nginx in front of shards (`amps-sim nginx-conf`), any operation may meet a shard that is
# down: nginx answers 503 SERVICE_UNAVAILABLE in the envelope (the simulator itself never does).
for _statuses in (*PUBLIC_STATUSES.values(), *CONTROL_STATUSES.values()):
    _statuses["503"] = {"SERVICE_UNAVAILABLE"}

OPERATION_IDS = {
    ("GET", "/battery"): "listBatteries",
    ("GET", "/battery/{deviceId}"): "getBattery",
    ("POST", "/battery/{deviceId}"): "pushBatteryAction",
    ("GET", "/actions"): "listActions",
    ("GET", "/actions/{actionId}"): "getAction",
    ("POST", "/actions/{actionId}/cancel"): "cancelAction",
    ("GET", "/openapi.yaml"): "getOpenApi",
    ("POST", "/_sim/tenants"): "createTenant",
    ("GET", "/_sim/tenants"): "listTenants",
    ("DELETE", "/_sim/tenant"): "deleteTenant",
    ("GET", "/_sim/health"): "getHealth",
    ("GET", "/_sim/clock"): "getClock",
    ("POST", "/_sim/clock/advance"): "advanceClock",
    ("POST", "/_sim/reset"): "resetTenant",
    ("GET", "/_sim/devices"): "listSimDevices",
    ("POST", "/_sim/devices"): "createSimDevice",
    ("GET", "/_sim/devices/{deviceId}"): "getSimDevice",
    ("DELETE", "/_sim/devices/{deviceId}"): "deleteSimDevice",
    ("PUT", "/_sim/devices/{deviceId}/scheduler"): "putSimScheduler",
    ("POST", "/_sim/devices/{deviceId}/faults"): "injectFault",
    ("POST", "/_sim/oem-keys"): "createOemKey",
    ("GET", "/_sim/webhooks"): "listWebhooks",
    ("POST", "/_sim/webhooks"): "registerWebhook",
    ("DELETE", "/_sim/webhooks/{webhookId}"): "deleteWebhook",
    ("POST", "/_sim/webhooks/{webhookId}/rotate-secret"): "rotateWebhookSecret",
    ("GET", "/_sim/webhooks/{webhookId}/deliveries"): "listWebhookDeliveries",
    ("POST", "/_sim/webhooks/{webhookId}/deliveries/{msgId}/replay"): "replayWebhookMessage",
    ("POST", "/_sim/webhooks/{webhookId}/faults"): "injectWebhookFault",
    ("GET", "/_sim/webhook-settings"): "getWebhookSettings",
    ("PUT", "/_sim/webhook-settings"): "putWebhookSettings",
}

UNAUTHENTICATED = {("GET", "/openapi.yaml"), ("POST", "/_sim/tenants"), ("GET", "/_sim/health")}

DOCUMENTS = {
    "public": (load_public, PUBLIC_STATUSES),
    "control": (load_control, CONTROL_STATUSES),
}


def _media_objects(spec: ResponseValidator) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(where, pointer to the media type object, media type object) for every body in the document."""
    document = spec.document
    for method, template, operation in spec.operations():
        base = f"/paths/{escape(template)}/{method.lower()}"
        if "requestBody" in operation:
            body, pointer = follow_refs(document, operation["requestBody"], f"{base}/requestBody")
            for media, media_object in body.get("content", {}).items():
                yield f"{method} {template} request", f"{pointer}/content/{escape(media)}", media_object
        for status, response in operation["responses"].items():
            response, pointer = follow_refs(document, response, f"{base}/responses/{status}")
            for media, media_object in (response.get("content") or {}).items():
                yield f"{method} {template} {status}", f"{pointer}/content/{escape(media)}", media_object


def _examples(spec: ResponseValidator) -> Iterator[tuple[str, str, Any]]:
    """(label, schema pointer, example value) for every example attached to a body."""
    for where, pointer, media_object in _media_objects(spec):
        if "example" in media_object:
            yield f"{where} example", f"{pointer}/schema", media_object["example"]
        for name, example in (media_object.get("examples") or {}).items():
            example, _ = follow_refs(spec.document, example, "")
            yield f"{where} examples/{name}", f"{pointer}/schema", example["value"]


def _documented_codes(document: Mapping[str, Any], schema: Any) -> set[str]:
    """The `error.code` values an error schema admits: the enums narrowing the shared envelope."""
    schema, _ = follow_refs(document, schema, "")
    codes: set[str] = set()
    for part in schema.get("allOf", []):
        part, _ = follow_refs(document, part, "")
        code = part.get("properties", {}).get("error", {}).get("properties", {}).get("code", {})
        codes.update(code.get("enum", []))
    return codes


@pytest.mark.parametrize("path", [public_spec_path, control_spec_path], ids=["public", "control"])
def test_document_is_valid_openapi_31(path: Any) -> None:
    spec = ResponseValidator.from_file(path())
    assert spec.document["openapi"] == "3.1.0"
    validate_openapi(spec.document)


def test_packaged_public_document_is_the_top_level_file() -> None:
    """The package ships `openapi.yaml` as a link to the file users read: same bytes, always."""
    top_level = Path(__file__).resolve().parents[1] / "openapi.yaml"
    assert public_spec_path().read_bytes() == top_level.read_bytes()
    assert public_spec_path().parent == control_spec_path().parent
    assert load_public() is load_public()
    assert load_control() is load_control()


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_example_matches_its_schema(name: str) -> None:
    loader, _ = DOCUMENTS[name]
    spec = loader()
    checked = 0
    failures = []
    for label, pointer, value in _examples(spec):
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in spec.schema_validator(pointer).iter_errors(value)]
        if errors:
            failures.append(f"{label}: {errors}")
        checked += 1
    assert not failures, "\n".join(failures)
    assert checked >= 20


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_operation_lists_exactly_the_agreed_statuses_and_codes(name: str) -> None:
    loader, expected = DOCUMENTS[name]
    spec = loader()
    operations = {(method, template): operation for method, template, operation in spec.operations()}
    assert set(operations) == set(expected)
    for key, statuses in expected.items():
        operation = operations[key]
        assert operation["operationId"] == OPERATION_IDS[key]
        assert set(operation["responses"]) == set(statuses), key
        for status, codes in statuses.items():
            if not codes:
                continue
            response, _ = follow_refs(spec.document, operation["responses"][status], "")
            schema = response["content"]["application/json"]["schema"]
            assert _documented_codes(spec.document, schema) == codes, (key, status)
            for code in codes:
                assert STATUS_BY_CODE[code] == int(status), (key, code)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_no_server_errors_or_default_responses_are_documented(name: str) -> None:
    loader, _ = DOCUMENTS[name]
    for method, template, operation in loader().operations():
        for status in operation["responses"]:
            assert status != "default", (method, template)
            # 503 is nginx's answer for a shard that is down (see ShardDown), never the simulator's.
            assert not status.startswith("5") or status == "503", (method, template, status)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_api_key_is_required_except_where_agreed(name: str) -> None:
    loader, _ = DOCUMENTS[name]
    spec = loader()
    scheme = spec.document["components"]["securitySchemes"]["ApiKey"]
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": "x-api-key"}
    assert spec.document["security"] == [{"ApiKey": []}]
    assert spec.document["servers"][0]["url"] == "http://127.0.0.1:8080"
    for method, template, operation in spec.operations():
        if (method, template) in UNAUTHENTICATED:
            assert operation.get("security") == [], (method, template)
        else:
            assert "security" not in operation, (method, template)
            assert "401" in operation["responses"], (method, template)


def test_public_closed_objects_are_closed() -> None:
    schemas = load_public().document["components"]["schemas"]
    for name in (
        "PushRequest",
        "ActionRequest",
        "ActionParametersRequest",
        "PercentQuantity",
        "PowerQuantity",
        "PushAccepted",
        "Action",
        "ActionParameters",
        "ActionResult",
        "ActionPage",
        "DeviceRead",
        "CommandCapability",
        "ParameterCapability",
        "BatteryState",
        "DeviceSettings",
        "LastAction",
        "BatteryList",
        "ErrorEnvelope",
        "ErrorObject",
        "ErrorMeta",
        "OemAttemptsDetails",
        "SchedulerRow",
    ):
        assert schemas[name]["additionalProperties"] is False, name
        assert set(schemas[name].get("required", [])) <= set(schemas[name]["properties"]), name
    # Every `details` object is closed, one schema per error code.
    details = [name for name in schemas if name.endswith("Details") and name != "NoDetails"]
    assert len(details) >= 14
    for name in details:
        assert schemas[name]["additionalProperties"] is False, name
    assert set(schemas["DeviceRead"]["required"]) == set(schemas["DeviceRead"]["properties"])


def test_control_closed_objects_are_closed() -> None:
    schemas = load_control().document["components"]["schemas"]
    for name in (
        "TenantSpec",
        "OemKeyRequest",
        "OemKeyCreated",
        "QuotaSpec",
        "ClockSpec",
        "DeviceSpec",
        "BatterySpec",
        "SchedulerSpec",
        "GroupSpec",
        "AdvanceRequest",
        "SchedulerWrite",
        "FaultRequest",
        "TenantCreated",
        "ClockView",
        "AdvanceResult",
        "DeviceView",
        "BatteryView",
        "SchedulerView",
        "GroupView",
        "DriftWarning",
        "Fault",
        "FaultList",
        "DeviceViewList",
        "ErrorEnvelope",
        "ErrorObject",
        "ErrorMeta",
    ):
        assert schemas[name]["additionalProperties"] is False, name


@pytest.mark.parametrize(
    ("name", "pointer", "value", "valid"),
    [
        ("public", "/components/schemas/PushRequest", {"action": {"command": "charge", "start": "30m"}}, True),
        ("public", "/components/schemas/PushRequest", {"action": {"command": "boost"}}, False),
        ("public", "/components/schemas/PushRequest", {"action": {"command": "charge"}, "onConflict": "wait"}, False),
        ("public", "/components/schemas/PushRequest", {"action": {"command": "charge", "parameters": {"target": 80}}}, False),
        ("public", "/components/schemas/PushRequest", {"action": {"command": "idle"}, "extra": 1}, False),
        ("control", "/components/schemas/AdvanceRequest", {"by": "1.5h"}, True),
        ("control", "/components/schemas/AdvanceRequest", {"to": "2026-05-09T22:00:00Z"}, True),
        ("control", "/components/schemas/AdvanceRequest", {"by": "90m", "to": "2026-05-09T22:00:00Z"}, False),
        ("control", "/components/schemas/AdvanceRequest", {}, False),
        ("control", "/components/schemas/AdvanceRequest", {"by": "soon"}, False),
        ("control", "/components/schemas/GroupSpec", {"start": "24:00", "end": "23:59", "workMode": "SelfUse"}, False),
        ("control", "/components/schemas/FaultRequest", {"kind": "offline", "times": 0}, False),
        ("control", "/components/schemas/DeviceSpec", {"id": "has space"}, False),
        ("control", "/components/schemas/DeviceSpec", {"id": "dev_abc123", "scheduler": None}, True),
    ],
)
def test_request_schemas(name: str, pointer: str, value: Any, valid: bool) -> None:
    loader, _ = DOCUMENTS[name]
    assert loader().schema_validator(pointer).is_valid(value) is valid
