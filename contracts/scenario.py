"""The scenario format: a strict pydantic model of one YAML scenario file.

A scenario is a small, ordered story told through HTTP: the world it starts from (`given`), then
`steps` that call the public or control API and state what must come back. Every model forbids
unknown keys (:mod:`contracts.fileformat`), so a typo is an error at load time. The steps are
:mod:`contracts.steps`, their expectations :mod:`contracts.expectations`. The JSON Schema that editors use is generated from these models
(`python -m amps_sim.contracts.scenario` rewrites `contracts/scenario.schema.json`); a test keeps the
committed copy equal to the generated one.

Loading (with line numbers) lives in :mod:`contracts.loader`; matching in
:mod:`contracts.matching`; execution in :mod:`contracts.runner`.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from amps_sim.contracts.fileformat import Strict
from amps_sim.contracts.steps import NativeStep, Step, TenantAuth, WebhookEvent, WebhookStep

DEFAULT_NOW = "2026-05-08T08:00:00Z"
SCHEMA_PATH = Path(__file__).resolve().parent / "scenario.schema.json"


# ---- the world a scenario starts from ----------------------------------------------------------
# These mirror the control API's DeviceSpec (contracts/control-openapi.yaml) so editors complete
# them; the simulator still validates the values when the tenant is created. A test holds the
# field names to the control spec.


class GroupGiven(Strict):
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


class SchedulerGiven(Strict):
    enabled: bool | None = None
    maxGroupCount: int | None = None
    groups: list[GroupGiven] | None = None


class BatteryGiven(Strict):
    capacityKwh: float | None = None
    soc: float | None = None
    maxPowerKw: float | None = None


class DeviceGiven(Strict):
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


class QuotaGiven(Strict):
    """The tenant's FoxESS cloud quotas (the control API's `oemQuotas`); unset fields take its defaults."""

    enabled: bool | None = Field(default=None, description="Enforce the quotas (default when given: true).")
    dailyCalls: int | None = Field(default=None, description="Calls a key may make per UTC day (errno 40402 after).")
    queryIntervalS: float | None = Field(default=None, description="Seconds between two calls of one query endpoint (40400).")
    writeIntervalS: float | None = Field(default=None, description="Seconds between two writes of one kind to one device (40400).")


class TenantGiven(Strict):
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


class WebhooksGiven(Strict):
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



class Scenario(Strict):
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
            if isinstance(step, NativeStep) and not self.native_devices(step.tenant, step.native.party):
                raise ValueError(
                    f"steps[{index}] calls as {step.native.party}, but no native step of that party names a device: "
                    "name one so its key has a scope"
                )
        return self

    def native_devices(self, tenant: str, party: str) -> list[str]:
        """The devices a party's key is scoped to: every device its native steps (as that tenant) name."""
        found: dict[str, None] = {}
        for step in self.steps:
            if isinstance(step, NativeStep) and step.native.party == party and step.tenant == tenant and step.native.device is not None:
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
        return any(step.needs_control() for step in self.steps)

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

