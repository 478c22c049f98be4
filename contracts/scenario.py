"""The scenario format: a strict pydantic model of one YAML scenario file.

A scenario is a small, ordered story told through HTTP: the world it starts from (`given`), then
`steps` that call the public or control API and state what must come back. Every model forbids
unknown keys, so a typo is an error at load time rather than a silently skipped check (the
tavern lesson). The JSON Schema that editors use is generated from these models
(`python -m contracts.scenario` rewrites `contracts/scenario.schema.json`); a test keeps the
committed copy equal to the generated one.

Loading (with line numbers) lives in :mod:`contracts.loader`; matching in
:mod:`contracts.matching`; execution in :mod:`contracts.runner`.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from amps_sim.contracts.matching import check_expected_syntax
from amps_sim.contracts.native import CALLS, row_problems

DEFAULT_NOW = "2026-05-08T08:00:00Z"
SCHEMA_PATH = Path(__file__).resolve().parent / "scenario.schema.json"

# `body.actionId`, `body.error.details.conflictingActionIds[0]`, `status`, `headers.Allow`.
_REPLY_PATH = re.compile(r"^(status|body|headers)((\.[A-Za-z0-9_$-]+)|(\[[0-9]+\]))*$")


# A native reply is the cloud's envelope itself: `result.groups[0]`, `errno`, `msg`.
_NATIVE_PATH = re.compile(r"^(errno|msg|result)((\.[A-Za-z0-9_$-]+)|(\[[0-9]+\]))*$")
_CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


def _check_reply_path(path: str) -> str:
    if not _REPLY_PATH.fullmatch(path):
        raise ValueError(
            f"{path!r} is not a reply path: start with status, body or headers, then .key or [index]"
        )
    return path


def _check_native_path(path: str) -> str:
    if not _NATIVE_PATH.fullmatch(path):
        raise ValueError(
            f"{path!r} is not a native reply path: start with errno, msg or result, then .key or [index]"
        )
    return path


def _check_save(save: dict[str, str] | None, check_path: Any) -> dict[str, str] | None:
    if save is None:
        return save
    for name, path in save.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"{name!r} is not a variable name (letters, digits, underscore)")
        check_path(path)
    return save


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- the world a scenario starts from ----------------------------------------------------------
# These mirror the control API's DeviceSpec (contracts/control-openapi.yaml) so editors complete
# them; the simulator still validates the values when the tenant is created. A test holds the
# field names to the control spec.


class GroupGiven(_Strict):
    """One native scheduler row, plant-local wall clock, end inclusive."""

    start: str = Field(description="HH:MM plant-local wall clock")
    end: str = Field(description="HH:MM, inclusive")
    workMode: str
    owner: str | None = None
    fdSoc: int | None = None
    fdPwr: int | None = None
    minSocOnGrid: int | None = None
    maxSoc: int | None = None
    actionId: str | None = Field(default=None, description="The platform action a row belongs to (rebuilding a platform row).")


class SchedulerGiven(_Strict):
    enabled: bool | None = None
    maxGroupCount: int | None = None
    groups: list[GroupGiven] | None = None


class BatteryGiven(_Strict):
    capacityKwh: float | None = None
    soc: float | None = None
    maxPowerKw: float | None = None


class DeviceGiven(_Strict):
    """A simulated device in the control API's device-spec form (unset fields take its defaults)."""

    id: str
    profile: str | None = None
    timeZone: str | None = None
    timeZoneKnown: bool | None = None
    serialNumber: str | None = None
    battery: BatteryGiven | None = None
    scheduler: SchedulerGiven | None = None

    def spec(self) -> dict[str, Any]:
        """The JSON the control API takes: only what the scenario wrote."""
        return self.model_dump(exclude_none=True)


class QuotaGiven(_Strict):
    """The tenant's FoxESS cloud quotas (the control API's `oemQuotas`); unset fields take its defaults."""

    enabled: bool | None = Field(default=None, description="Enforce the quotas (default when given: true).")
    dailyCalls: int | None = Field(default=None, description="Calls a key may make per UTC day (errno 40402 after).")
    queryIntervalS: float | None = Field(default=None, description="Seconds between two calls of one query endpoint (40400).")
    writeIntervalS: float | None = Field(default=None, description="Seconds between two writes of one kind to one device (40400).")


class TenantGiven(_Strict):
    now: str | None = Field(
        default=None,
        description=f"The tenant's virtual clock at the start, ISO 8601 with an offset (default {DEFAULT_NOW}).",
    )
    devices: list[DeviceGiven] = Field(default_factory=list)
    oemQuotas: QuotaGiven | None = Field(
        default=None,
        description="The native API's call quotas. Unset: counted but not enforced (the tenant's clock is virtual).",
    )

    @field_validator("now")
    @classmethod
    def _aware_instant(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 instant") from None
        if moment.tzinfo is None:
            raise ValueError(f"{value!r} has no UTC offset; write Z or +HH:MM")
        return value

    @field_validator("devices")
    @classmethod
    def _unique_ids(cls, devices: list[DeviceGiven]) -> list[DeviceGiven]:
        seen: set[str] = set()
        for device in devices:
            if device.id in seen:
                raise ValueError(f"device id {device.id!r} appears more than once")
            seen.add(device.id)
        return devices

    def tenant_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "clock": {"mode": "virtual", "now": self.now or DEFAULT_NOW},
            "devices": [d.spec() for d in self.devices],
        }
        if self.oemQuotas is not None:
            spec["oemQuotas"] = self.oemQuotas.model_dump(exclude_none=True)
        return spec


WEBHOOK_EVENTS = ("push.completed", "push.failed", "device.connected", "device.disconnected", "device.reconnected")
WebhookEvent = Literal["push.completed", "push.failed", "device.connected", "device.disconnected", "device.reconnected"]


class WebhooksGiven(_Strict):
    """The runner's loopback receiver, registered for the main tenant before the first step."""

    events: list[WebhookEvent] | None = Field(default=None, description="Events to register for (default: all).")
    answer: int = Field(default=204, ge=200, le=599, description="The status the receiver answers verified deliveries with.")
    latency: float | None = Field(default=None, ge=0, description="The tenant's delivery latency in seconds (default: the simulator's).")


class Given(TenantGiven):
    """The main tenant's world, plus any further tenants a step can act as (`auth: {tenant: NAME}`)."""

    tenants: dict[str, TenantGiven] = Field(default_factory=dict)
    webhooks: WebhooksGiven | None = Field(
        default=None,
        description="Receive the tenant's webhooks on loopback (implied by any webhook step). "
        "Variables: ${webhook} (the endpoint id), ${webhook_secret}.",
    )

    @field_validator("tenants")
    @classmethod
    def _not_main(cls, tenants: dict[str, TenantGiven]) -> dict[str, TenantGiven]:
        if "main" in tenants:
            raise ValueError("'main' names the scenario's own tenant; pick another name")
        return tenants


# ---- expectations ------------------------------------------------------------------------------


class Expect(_Strict):
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
        return [_check_reply_path(p) for p in paths]

    @model_validator(mode="after")
    def _matchers(self) -> "Expect":
        check_expected_syntax(self.body, ("body",))
        for name, value in self.headers.items():
            check_expected_syntax(value, ("headers", name))
        return self


class TruthExpect(_Strict):
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


# ---- step bodies -------------------------------------------------------------------------------


class KeyAuth(_Strict):
    key: str = Field(description="Send this literal x-api-key (e.g. a wrong one).")


class TenantAuth(_Strict):
    tenant: str = Field(description="Act as a tenant named under given.tenants.")


Auth = Union[Literal["none"], KeyAuth, TenantAuth]


class PushSpec(_Strict):
    """`POST /battery/{device}`: either the action's fields, or a verbatim `body`."""

    device: str
    command: str | None = None
    parameters: Any = None
    start: str | None = None
    end: str | None = None
    onConflict: str | None = None
    body: Any = Field(default=None, description="Send this JSON as the whole request body instead.")

    @model_validator(mode="after")
    def _one_form(self) -> "PushSpec":
        fields = ("command", "parameters", "start", "end", "onConflict")
        if self.body is not None and any(getattr(self, f) is not None for f in fields):
            raise ValueError("give either body or the action fields (command, parameters, start, end, onConflict)")
        if self.body is None and self.command is None:
            raise ValueError("a push needs a command (or a verbatim body)")
        return self

    def request_body(self) -> Any:
        if self.body is not None:
            return self.body
        action: dict[str, Any] = {"command": self.command}
        for name in ("parameters", "start", "end"):
            value = getattr(self, name)
            if value is not None:
                action[name] = value
        body: dict[str, Any] = {"action": action}
        if self.onConflict is not None:
            body["onConflict"] = self.onConflict
        return body


class RequestSpec(_Strict):
    """Any HTTP request, for what the shorthands do not cover."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    path: str = Field(pattern=r"^/")
    query: dict[str, str | int] | None = None
    body: Any = Field(default=None, description="A JSON body (sent as application/json).")
    raw: str | None = Field(default=None, description="A body sent as-is (set Content-Type in headers).")
    oversizeBytes: int | None = Field(
        default=None, ge=16, le=16 * 1024 * 1024,
        description="Send a JSON object padded to this many bytes, to test body-size limits.",
    )
    headers: dict[str, str] | None = None

    @model_validator(mode="after")
    def _one_body(self) -> "RequestSpec":
        if sum(x is not None for x in (self.body, self.raw, self.oversizeBytes)) > 1:
            raise ValueError("give one of body, raw or oversizeBytes")
        return self


class ListActionsSpec(_Strict):
    deviceId: str | None = None
    state: str | None = None
    limit: int | str | None = None
    offset: int | str | None = None


class AdvanceSpec(_Strict):
    by: str | None = Field(default=None, description="A duration such as 90m, 1h30m, 2d.")
    to: str | None = Field(default=None, description="An ISO 8601 instant.")

    @model_validator(mode="after")
    def _exactly_one(self) -> "AdvanceSpec":
        if (self.by is None) == (self.to is None):
            raise ValueError("give exactly one of by or to")
        return self


class ForeignWriteSpec(_Strict):
    """A foreign party (homeowner app, optimiser) rewrites the native rows: `PUT /_sim/devices/{id}/scheduler`."""

    device: str
    groups: list[dict[str, Any]]
    enabled: bool | None = None
    owner: str | None = None


class FaultSpec(_Strict):
    device: str
    kind: str = Field(description="oem_timeout | oem_reject | offline | transient")
    times: int | None = None


# ---- the device's own cloud (the native API under /foxess) --------------------------------------

NativeCallName = Literal[
    "scheduler.read",
    "scheduler.write",
    "flag.read",
    "flag.set",
    "setting.read",
    "setting.set",
    "device.list",
    "device.detail",
    "access.count",
]
# What each call takes besides device, version, body and signature.
_CALL_FIELDS: dict[str, frozenset[str]] = {
    "scheduler.write": frozenset({"rows"}),
    "flag.set": frozenset({"enable"}),
    "setting.read": frozenset({"setting"}),
    "setting.set": frozenset({"setting", "value"}),
}


class NativeRow(_Strict):
    """One scheduler group in friendly form; the harness spells it in the call's API version."""

    start: str = Field(pattern=_CLOCK, description="HH:MM plant-local wall clock")
    end: str = Field(pattern=_CLOCK, description="HH:MM, inclusive")
    workMode: str
    minSocOnGrid: int | None = None
    fdSoc: int | None = None
    fdPwr: int | None = None
    maxSoc: int | None = Field(default=None, description="v1 and later.")
    isRemainMode: bool | None = Field(default=None, description="v3 only.")


class NativeSpec(_Strict):
    """One signed call to the device's own cloud, as a homeowner's app or another optimiser makes it."""

    party: Literal["homeowner_app", "third_party"] = Field(
        alias="as",
        description=(
            "Who calls: the key is issued once per party (and tenant) per scenario by POST /_sim/oem-keys, "
            "scoped to every device that party's native steps name."
        ),
    )
    device: str | None = Field(
        default=None,
        description="The Amps device id; its serialNumber (GET /_sim/devices/{id}) is sent as deviceSN/sn.",
    )
    call: NativeCallName = Field(
        description=(
            "scheduler.read|write (/op/v{0-3}/device/scheduler/get|enable), flag.read|set "
            "(/op/v{0,1}/device/scheduler/get/flag|set/flag), setting.read|set (/op/v0/device/setting/get|set), "
            "device.list (/op/v0/device/list), device.detail (/op/v1/device/detail), "
            "access.count (/op/v0/user/getAccessCount)."
        )
    )
    version: int | None = Field(
        default=None, ge=0, le=3,
        description="The API version where the call has several: scheduler calls default to 3, flag calls to 1.",
    )
    rows: list[NativeRow] | None = Field(
        default=None,
        description="scheduler.write: the groups in friendly form, converted to the version's native shape.",
    )
    body: dict[str, Any] | None = Field(
        default=None,
        description="A raw native body instead of the friendly fields; the device's serial is added unless it names one.",
    )
    enable: bool | None = Field(default=None, description="flag.set: the scheduler flag to set.")
    setting: str | None = Field(default=None, description="setting.read|set: the setting key (default WorkMode).")
    value: Any = Field(default=None, description="setting.set: the value to write.")
    signature: Literal["wrong", "missing"] | None = Field(
        default=None, description="Sign deliberately wrong, or leave the signature header out (errno 40256)."
    )

    @property
    def api_version(self) -> int:
        return self.version if self.version is not None else CALLS[self.call].default_version

    @model_validator(mode="after")
    def _fits_the_call(self) -> "NativeSpec":
        call = CALLS[self.call]
        if self.version is not None and self.version not in call.versions:
            versions = ", ".join(f"v{v}" for v in call.versions)
            raise ValueError(f"{self.call} exists in {versions}, not v{self.version}")
        if call.needs_device and self.device is None:
            raise ValueError(f"{self.call} needs a device")
        if self.call == "scheduler.write" and "enable" in self.model_fields_set:
            raise ValueError("a native scheduler write leaves the flag alone; set it with a flag.set step")
        extra = sorted({"rows", "enable", "setting", "value"} & self.model_fields_set - _CALL_FIELDS.get(self.call, frozenset()))
        if extra:
            raise ValueError(f"{', '.join(extra)} does not apply to {self.call}")
        if call.method == "GET" and self.body is not None:
            raise ValueError(f"{self.call} is a GET and sends no body")
        if self.call == "scheduler.write" and (self.rows is None) == (self.body is None):
            raise ValueError("scheduler.write takes either rows or a raw body")
        if self.call == "flag.set" and self.enable is None and self.body is None:
            raise ValueError("flag.set needs enable (or a raw body)")
        if self.call == "setting.set" and "value" not in self.model_fields_set and self.body is None:
            raise ValueError("setting.set needs a value (or a raw body)")
        if self.body is not None and self.model_fields_set & {"rows", "enable", "setting", "value"}:
            raise ValueError("give either a raw body or the friendly fields (rows, enable, setting, value)")
        return self

    @field_validator("rows")
    @classmethod
    def _rows_fit_the_version(cls, rows: list[NativeRow] | None, info: ValidationInfo) -> list[NativeRow] | None:
        # Here rather than in the model check, so that the error points at the rows' line.
        call, version = info.data.get("call"), info.data.get("version")
        if rows is None or call not in CALLS:
            return rows
        version = version if version is not None else CALLS[call].default_version
        for index, row in enumerate(rows):
            problems = row_problems(version, row.model_dump())
            if problems:
                raise ValueError(f"rows[{index}]: {'; '.join(problems)} (pick another version, or send a raw body)")
        return rows


class NativeExpect(_Strict):
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


# ---- steps -------------------------------------------------------------------------------------


class _Step(_Strict):
    name: str | None = Field(default=None, description="A label for reports.")
    auth: Auth | None = Field(default=None, description="none | {key: ...} | {tenant: NAME}; default: the main tenant.")


class _HttpStep(_Step):
    expect: Expect | None = None
    save: dict[str, str] | None = Field(
        default=None, description="name: reply path (e.g. first: body.actionId); use later as ${first}."
    )
    undocumented: bool = Field(
        default=False,
        description="The request deliberately targets an operation the spec does not document; every other check still runs.",
    )

    @field_validator("save")
    @classmethod
    def _save_paths(cls, save: dict[str, str] | None) -> dict[str, str] | None:
        return _check_save(save, _check_reply_path)


class PushStep(_HttpStep):
    push: PushSpec


class RequestStep(_HttpStep):
    request: RequestSpec


class ReadActionStep(_HttpStep):
    read_action: str = Field(description="GET /actions/{id}")


class CancelStep(_HttpStep):
    cancel: str = Field(description="POST /actions/{id}/cancel")


class ReadDeviceStep(_HttpStep):
    read_device: str = Field(description="GET /battery/{id}")


class ListActionsStep(_HttpStep):
    list_actions: ListActionsSpec = Field(description="GET /actions with the given query")


class AdvanceStep(_HttpStep):
    advance: str | AdvanceSpec = Field(description="Move the virtual clock: '90m', {by: '1h30m'} or {to: ISO}.")


class ForeignWriteStep(_HttpStep):
    foreign_write: ForeignWriteSpec


class FaultStep(_HttpStep):
    fault: FaultSpec


class WebhookExpect(_Strict):
    """What the runner's receiver must have got: deliveries matching all the filters given."""

    within: str | None = Field(
        default=None,
        description="Advance the clock by this span first ('90s', '2d') and look only at what arrives during it. "
        "Without it the step looks again at the current window (since the last step with `within`).",
    )
    answer: int | None = Field(default=None, ge=200, le=599, description="From now on the receiver answers with this status.")
    event: WebhookEvent | None = None
    body: Any = Field(default=None, description="A partial match of the delivered body (same matchers as replies).")
    count: int | None = Field(default=None, ge=0, description="Exactly this many matching deliveries (0: none). Unset: at least one.")
    attempt: int | None = Field(default=None, ge=1, description="Every matching delivery is the Nth the receiver got of its svix-id.")
    signatures: int | None = Field(
        default=None, ge=1, description="Only deliveries with this many v1 signatures (2 while a rotated-out secret still signs)."
    )
    verified: bool = Field(
        default=True,
        description="Match deliveries that verify (default) or that do not (bad_signature, stale_timestamp faults). "
        "With true, an unverifiable delivery in the window fails the step.",
    )

    @model_validator(mode="after")
    def _matchers(self) -> "WebhookExpect":
        check_expected_syntax(self.body, ("body",))
        return self

    @property
    def expects(self) -> bool:
        return any(v is not None for v in (self.event, self.body, self.count, self.attempt, self.signatures)) or not self.verified


class WebhookStep(_Step):
    webhook: WebhookExpect


class TruthStep(_Step):
    truth: str = Field(description="Read the OEM-side truth of this device (GET /_sim/devices/{id}).")
    expect: TruthExpect


class NativeStep(_Step):
    native: NativeSpec
    expect: NativeExpect | None = Field(default=None, description="Unset: errno must be 0.")
    save: dict[str, str] | None = Field(
        default=None, description="name: native reply path (e.g. groups: result.groups); use later as ${groups}."
    )

    @field_validator("save")
    @classmethod
    def _save_paths(cls, save: dict[str, str] | None) -> dict[str, str] | None:
        return _check_save(save, _check_native_path)

    @field_validator("auth")
    @classmethod
    def _tenant_only(cls, auth: Any) -> Any:
        if auth is not None and not isinstance(auth, TenantAuth):
            raise ValueError("a native step signs with its party's key; auth can only pick the tenant that issues it ({tenant: NAME})")
        return auth


STEP_KINDS: tuple[str, ...] = (
    "push",
    "request",
    "read_action",
    "cancel",
    "read_device",
    "list_actions",
    "advance",
    "foreign_write",
    "fault",
    "truth",
    "native",
    "webhook",
)


def _step_kind(value: Any) -> str | None:
    """Which step a mapping is: the one kind key it holds (None: none or several)."""
    if isinstance(value, dict):
        kinds = [k for k in STEP_KINDS if k in value]
    else:
        kinds = [k for k in STEP_KINDS if getattr(value, k, None) is not None]
    return kinds[0] if len(kinds) == 1 else None


Step = Annotated[
    Union[
        Annotated[PushStep, Tag("push")],
        Annotated[RequestStep, Tag("request")],
        Annotated[ReadActionStep, Tag("read_action")],
        Annotated[CancelStep, Tag("cancel")],
        Annotated[ReadDeviceStep, Tag("read_device")],
        Annotated[ListActionsStep, Tag("list_actions")],
        Annotated[AdvanceStep, Tag("advance")],
        Annotated[ForeignWriteStep, Tag("foreign_write")],
        Annotated[FaultStep, Tag("fault")],
        Annotated[TruthStep, Tag("truth")],
        Annotated[NativeStep, Tag("native")],
        Annotated[WebhookStep, Tag("webhook")],
    ],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step needs exactly one of: " + ", ".join(STEP_KINDS),
    ),
]


def native_tenant(step: NativeStep) -> str:
    """The tenant whose key issues a native step's key: `main` unless `auth: {tenant: NAME}`."""
    return step.auth.tenant if isinstance(step.auth, TenantAuth) else "main"


def step_kind(step: Any) -> str:
    kind = _step_kind(step)
    assert kind is not None
    return kind


class Scenario(_Strict):
    """One scenario file."""

    model_config = ConfigDict(
        extra="forbid",
        title="amps-sim scenario",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    source: str = Field(
        min_length=1, description="What it encodes: a seed document, a public behaviour report, or 'decision: ...'."
    )
    tags: list[str] = Field(default_factory=list)
    given: Given | None = Field(default=None, description="Omit for a scenario that needs no control API.")
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _tenants_named(self) -> "Scenario":
        known = set(self.given.tenants) if self.given else set()
        for index, step in enumerate(self.steps):
            if isinstance(step.auth, TenantAuth) and step.auth.tenant not in known:
                raise ValueError(f"steps[{index}] acts as tenant {step.auth.tenant!r}, which given.tenants does not name")
        for index, step in enumerate(self.steps):
            if isinstance(step, NativeStep) and not self.native_devices(native_tenant(step), step.native.party):
                raise ValueError(
                    f"steps[{index}] calls as {step.native.party}, but no native step of that party names a device: "
                    "name one so its key has a scope"
                )
        return self

    def native_devices(self, tenant: str, party: str) -> list[str]:
        """The devices a party's key is scoped to: every device its native steps (as that tenant) name."""
        found: dict[str, None] = {}
        for step in self.steps:
            if isinstance(step, NativeStep) and step.native.party == party and native_tenant(step) == tenant and step.native.device is not None:
                found[step.native.device] = None
        return list(found)

    @property
    def uses_native(self) -> bool:
        return any(isinstance(step, NativeStep) for step in self.steps)

    @property
    def needs_control(self) -> bool:
        """Whether the scenario needs the `/_sim` control API (a fresh tenant, the clock, the truth)."""
        if self.given is not None:
            return True
        for step in self.steps:
            if isinstance(step, (AdvanceStep, ForeignWriteStep, FaultStep, TruthStep, NativeStep, WebhookStep)):
                return True
            if isinstance(step, RequestStep) and step.request.path.startswith("/_sim"):
                return True
        return False

    @property
    def uses_webhooks(self) -> bool:
        return (self.given is not None and self.given.webhooks is not None) or any(isinstance(s, WebhookStep) for s in self.steps)

    @property
    def devices(self) -> list[DeviceGiven]:
        return list(self.given.devices) if self.given else []


def json_schema() -> dict[str, Any]:
    return Scenario.model_json_schema()


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> None:
    path.write_text(schema_text(), encoding="utf-8")


if __name__ == "__main__":
    write_schema()
    print(f"wrote {SCHEMA_PATH}")
