"""The steps of a scenario: each kind declared once, as one model that says what it is.

A step model carries its `kind` (the key that names it in the file), whether it needs the `/_sim`
control API, the request it sends (:meth:`Step.plan`, after `${...}` interpolation), the label
reports show (:meth:`Step.describe`) and how its reply is judged (:meth:`Step.judge`, with
:mod:`contracts.expectations`). The runner and the loader dispatch on the model's type, so a new
kind of step is one new class here.

A `native` step needs its party's key and the device's serial number first, which the runner
fetches; it then becomes a signed plan through :func:`plan_native`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union
from urllib.parse import quote

from pydantic import Discriminator, Field, Tag, ValidationInfo, field_validator, model_validator

from amps_sim.contracts.expectations import Expect, NativeExpect, TruthExpect, Verdict, judge_native, judge_reply, judge_truth
from amps_sim.contracts.fileformat import CLOCK_PATTERN, Strict, check_native_path, check_reply_path, check_save
from amps_sim.contracts.matching import check_expected_syntax
from amps_sim.contracts.native import CALLS, PREFIX, row_problems, rows_to_groups, signed_headers
from amps_sim.contracts.variables import Variables


@dataclass
class RequestPlan:
    """What a step sends."""

    method: str
    path: str
    json_body: Any = None
    raw: str | None = None
    query: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _segment(value: Any) -> str:
    # Ids go into the path as one segment, whatever a scenario puts in them.
    return quote(str(value), safe="")


# ---- what steps name ---------------------------------------------------------------------------


class KeyAuth(Strict):
    key: str = Field(description="Send this literal x-api-key (e.g. a wrong one).")


class TenantAuth(Strict):
    tenant: str = Field(description="Act as a tenant named under given.tenants.")


Auth = Union[Literal["none"], KeyAuth, TenantAuth]


class PushSpec(Strict):
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


class RequestSpec(Strict):
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


class ListActionsSpec(Strict):
    deviceId: str | None = None
    state: str | None = None
    limit: int | str | None = None
    offset: int | str | None = None


class AdvanceSpec(Strict):
    by: str | None = Field(default=None, description="A duration such as 90m, 1h30m, 2d.")
    to: str | None = Field(default=None, description="An ISO 8601 instant.")

    @model_validator(mode="after")
    def _exactly_one(self) -> "AdvanceSpec":
        if (self.by is None) == (self.to is None):
            raise ValueError("give exactly one of by or to")
        return self


class ForeignWriteSpec(Strict):
    """A foreign party (homeowner app, optimiser) rewrites the native rows: `PUT /_sim/devices/{id}/scheduler`."""

    device: str
    groups: list[dict[str, Any]]
    enabled: bool | None = None
    owner: str | None = None


class FaultSpec(Strict):
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


class NativeRow(Strict):
    """One scheduler group in friendly form; the harness spells it in the call's API version."""

    start: str = Field(pattern=CLOCK_PATTERN, description="HH:MM plant-local wall clock")
    end: str = Field(pattern=CLOCK_PATTERN, description="HH:MM, inclusive")
    workMode: str
    minSocOnGrid: int | None = None
    fdSoc: int | None = None
    fdPwr: int | None = None
    maxSoc: int | None = Field(default=None, description="v1 and later.")
    isRemainMode: bool | None = Field(default=None, description="v3 only.")


class NativeSpec(Strict):
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


# ---- steps -------------------------------------------------------------------------------------

_STEP_TYPES: list[type[_Step]] = []


class _Step(Strict):
    # Every step. A concrete kind sets `kind` (its key in the file, also the field that holds
    # what it does) and registers itself by doing so; `control_api` says whether it needs `/_sim`.
    kind: ClassVar[str]
    control_api: ClassVar[bool] = False

    name: str | None = Field(default=None, description="A label for reports.")
    auth: Auth | None = Field(default=None, description="none | {key: ...} | {tenant: NAME}; default: the main tenant.")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            if cls.kind not in cls.model_fields:
                raise TypeError(f"{cls.__name__}: a step of kind {cls.kind!r} holds what it does in a field named {cls.kind!r}")
            _STEP_TYPES.append(cls)

    def needs_control(self) -> bool:
        """Whether this step needs the `/_sim` control API (a fresh tenant, the clock, the truth)."""
        return self.control_api

    def plan(self, variables: Variables) -> RequestPlan:
        raise NotImplementedError(f"{type(self).__name__} plans no plain request")

    def describe(self) -> str:
        """A short label for reports (before interpolation, so it reads like the file)."""
        return f"{self.kind.replace('_', ' ')} {getattr(self, self.kind)}"

    def judge(self, reply: dict[str, Any], variables: Variables) -> Verdict:
        raise NotImplementedError


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
        return check_save(save, check_reply_path)

    def judge(self, reply: dict[str, Any], variables: Variables) -> Verdict:
        return judge_reply(self.expect, reply, variables)


class PushStep(_HttpStep):
    kind = "push"
    push: PushSpec

    def plan(self, variables: Variables) -> RequestPlan:
        resolve = variables.resolve
        spec = self.push
        return RequestPlan("POST", f"/battery/{_segment(resolve(spec.device))}", json_body=resolve(spec.request_body()))

    def describe(self) -> str:
        spec = self.push
        if spec.body is not None:
            return f"push (verbatim body) → {spec.device}"
        shape = "windowed" if spec.start and spec.end else "scheduled" if spec.start else "immediate"
        strategy = f" [{spec.onConflict}]" if spec.onConflict else ""
        return f"push {spec.command} {shape}{strategy} → {spec.device}"


class RequestStep(_HttpStep):
    kind = "request"
    request: RequestSpec

    def needs_control(self) -> bool:
        return self.request.path.startswith("/_sim")

    def plan(self, variables: Variables) -> RequestPlan:
        resolve = variables.resolve
        spec = self.request
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

    def describe(self) -> str:
        return f"{self.request.method} {self.request.path}"


class ReadActionStep(_HttpStep):
    kind = "read_action"
    read_action: str = Field(description="GET /actions/{id}")

    def plan(self, variables: Variables) -> RequestPlan:
        return RequestPlan("GET", f"/actions/{_segment(variables.resolve(self.read_action))}")


class CancelStep(_HttpStep):
    kind = "cancel"
    cancel: str = Field(description="POST /actions/{id}/cancel")

    def plan(self, variables: Variables) -> RequestPlan:
        return RequestPlan("POST", f"/actions/{_segment(variables.resolve(self.cancel))}/cancel")


class ReadDeviceStep(_HttpStep):
    kind = "read_device"
    read_device: str = Field(description="GET /battery/{id}")

    def plan(self, variables: Variables) -> RequestPlan:
        return RequestPlan("GET", f"/battery/{_segment(variables.resolve(self.read_device))}")


class ListActionsStep(_HttpStep):
    kind = "list_actions"
    list_actions: ListActionsSpec = Field(description="GET /actions with the given query")

    def plan(self, variables: Variables) -> RequestPlan:
        query = dict(variables.resolve(self.list_actions.model_dump(exclude_none=True)))
        return RequestPlan("GET", "/actions", query=query or None)

    def describe(self) -> str:
        return "list actions"


class AdvanceStep(_HttpStep):
    kind = "advance"
    control_api = True
    advance: str | AdvanceSpec = Field(description="Move the virtual clock: '90m', {by: '1h30m'} or {to: ISO}.")

    def plan(self, variables: Variables) -> RequestPlan:
        advance = self.advance
        body = {"by": advance} if isinstance(advance, str) else advance.model_dump(exclude_none=True)
        return RequestPlan("POST", "/_sim/clock/advance", json_body=variables.resolve(body))

    def describe(self) -> str:
        advance = self.advance
        if isinstance(advance, AdvanceSpec):
            return f"advance clock {'by ' + advance.by if advance.by else 'to ' + str(advance.to)}"
        return f"advance clock by {advance}"


class ForeignWriteStep(_HttpStep):
    kind = "foreign_write"
    control_api = True
    foreign_write: ForeignWriteSpec

    def plan(self, variables: Variables) -> RequestPlan:
        spec = self.foreign_write
        body = spec.model_dump(exclude_none=True, exclude={"device"})
        path = f"/_sim/devices/{_segment(variables.resolve(spec.device))}/scheduler"
        return RequestPlan("PUT", path, json_body=variables.resolve(body))

    def describe(self) -> str:
        spec = self.foreign_write
        who = spec.owner or "homeowner_app"
        return f"foreign write by {who}: {len(spec.groups)} row(s) → {spec.device}"


class FaultStep(_HttpStep):
    kind = "fault"
    control_api = True
    fault: FaultSpec

    def plan(self, variables: Variables) -> RequestPlan:
        spec = self.fault
        body = spec.model_dump(exclude_none=True, exclude={"device"})
        return RequestPlan("POST", f"/_sim/devices/{_segment(variables.resolve(spec.device))}/faults", json_body=variables.resolve(body))

    def describe(self) -> str:
        spec = self.fault
        return f"inject {spec.kind} ×{spec.times or 1} → {spec.device}"


WebhookEvent = Literal["push.completed", "push.failed", "device.connected", "device.disconnected", "device.reconnected"]


class WebhookExpect(Strict):
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


class TruthStep(_Step):
    kind = "truth"
    control_api = True
    truth: str = Field(description="Read the OEM-side truth of this device (GET /_sim/devices/{id}).")
    expect: TruthExpect

    def plan(self, variables: Variables) -> RequestPlan:
        return RequestPlan("GET", f"/_sim/devices/{_segment(variables.resolve(self.truth))}")

    def describe(self) -> str:
        return f"check OEM truth of {self.truth}"

    def judge(self, reply: dict[str, Any], variables: Variables) -> Verdict:
        return judge_truth(self.expect, reply, variables)


class NativeStep(_Step):
    # A call to the device's own cloud. Its plan needs the party's key and the device's serial
    # first, which the runner fetches (through the control API): see plan_native.
    kind = "native"
    control_api = True
    native: NativeSpec
    expect: NativeExpect | None = Field(default=None, description="Unset: errno must be 0.")
    save: dict[str, str] | None = Field(
        default=None, description="name: native reply path (e.g. groups: result.groups); use later as ${groups}."
    )

    @field_validator("save")
    @classmethod
    def _save_paths(cls, save: dict[str, str] | None) -> dict[str, str] | None:
        return check_save(save, check_native_path)

    @field_validator("auth")
    @classmethod
    def _tenant_only(cls, auth: Any) -> Any:
        if auth is not None and not isinstance(auth, TenantAuth):
            raise ValueError("a native step signs with its party's key; auth can only pick the tenant that issues it ({tenant: NAME})")
        return auth

    @property
    def tenant(self) -> str:
        """The tenant whose key issues this step's key: `main` unless `auth: {tenant: NAME}`."""
        return self.auth.tenant if isinstance(self.auth, TenantAuth) else "main"

    def describe(self) -> str:
        spec = self.native
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

    def judge(self, reply: dict[str, Any], variables: Variables) -> Verdict:
        return judge_native(self.expect, reply, variables)


class WebhookStep(_Step):
    # Judged by the runner's webhook receiver (contracts.webhook_steps), not by a request of its own.
    kind = "webhook"
    control_api = True
    webhook: WebhookExpect

    def describe(self) -> str:
        spec = self.webhook
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


# ---- the union of every kind --------------------------------------------------------------------

STEP_KINDS: tuple[str, ...] = tuple(step_type.kind for step_type in _STEP_TYPES)


def _step_kind(value: Any) -> str | None:
    """Which step a mapping is: the one kind key it holds (None: none or several)."""
    if isinstance(value, dict):
        kinds = [k for k in STEP_KINDS if k in value]
    else:
        kinds = [k for k in STEP_KINDS if getattr(value, k, None) is not None]
    return kinds[0] if len(kinds) == 1 else None


if TYPE_CHECKING:
    Step = _Step
else:
    Step = Annotated[
        Union[tuple(Annotated[step_type, Tag(step_type.kind)] for step_type in _STEP_TYPES)],
        Discriminator(
            _step_kind,
            custom_error_type="step_kind",
            custom_error_message="a step needs exactly one of: " + ", ".join(STEP_KINDS),
        ),
    ]


def native_tenant(step: NativeStep) -> str:
    """The tenant whose key issues a native step's key: `main` unless `auth: {tenant: NAME}`."""
    return step.tenant


def describe(step: _Step) -> str:
    """A step's label for reports: its name, else what its kind says it does."""
    return step.name or step.describe()


# ---- native calls ------------------------------------------------------------------------------


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
