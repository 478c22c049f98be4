"""A tenant's world: its clock, its devices, its platform, and the control operations on them."""

from __future__ import annotations

import random
import re
import string
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any, Callable, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

from .clock import Clock, ClockError
from .device import Device, DeviceSpec, GroupSpec
from .errors import ApiError, format_instant
from .native_scheduler import Group, NativeError
from .oem import FAULT_KINDS
from .platform import DeviceSlot, Platform
from .validation import parse_model

MAX_TENANTS = 5000
_SPAN_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_SPAN_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_span(text: str) -> timedelta | None:
    """A clock step such as `90m`, `1.5h`, `2d` or a compound `1h30m15s`; None if it is not one."""
    position, seconds = 0, 0.0
    for match in _SPAN_PART.finditer(text):
        if match.start() != position:
            return None
        seconds += float(match.group(1)) * _SPAN_UNITS[match.group(2)]
        position = match.end()
    if position == 0 or position != len(text) or seconds > 3660 * 86400:
        return None
    return timedelta(seconds=seconds)
_KEY_ALPHABET = string.ascii_letters + string.digits


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ClockSpec(_Closed):
    mode: Literal["virtual", "realtime"] = "virtual"
    now: AwareDatetime | None = Field(default=None, strict=False)
    speed: float = Field(default=1.0, gt=0, le=100_000)


class TenantSpec(_Closed):
    clock: ClockSpec | None = None
    devices: list[DeviceSpec] = []

    @field_validator("devices")
    @classmethod
    def _unique_ids(cls, devices: list[DeviceSpec]) -> list[DeviceSpec]:
        seen: set[str] = set()
        for device in devices:
            if device.id in seen:
                raise ValueError(f"device id {device.id!r} appears more than once")
            seen.add(device.id)
        return devices


class AdvanceRequest(_Closed):
    by: StrictStr | None = None
    to: AwareDatetime | None = Field(default=None, strict=False)


class SchedulerWrite(_Closed):
    enabled: StrictBool | None = None
    owner: StrictStr = Field(default="homeowner_app", min_length=1, max_length=64)
    groups: list[GroupSpec]


class FaultRequest(_Closed):
    kind: Literal["oem_timeout", "oem_reject", "offline", "transient"]
    times: StrictInt = Field(default=1, ge=1, le=1000)


assert set(FaultRequest.model_fields["kind"].annotation.__args__) == set(FAULT_KINDS)  # type: ignore[union-attr]


class World:
    """One tenant. Rebuilt from its creation spec on reset."""

    def __init__(
        self,
        spec: TenantSpec,
        *,
        api_key: str,
        seed: int,
        created_at: datetime,
        monotonic: Callable[[], float],
    ) -> None:
        self.api_key = api_key
        self.spec = spec
        self._seed = seed
        self._created_at = created_at
        self._monotonic = monotonic
        self._build()

    def _build(self) -> None:
        clock_spec = self.spec.clock or ClockSpec()
        start = clock_spec.now or self._created_at
        self.clock = Clock(start, clock_spec.mode, monotonic=self._monotonic, speed=clock_spec.speed)
        self.rng = random.Random(self._seed)
        self.slots: dict[str, DeviceSlot] = {}
        self.platform = Platform(self.clock, self.rng, self.slots)
        for device_spec in self.spec.devices:
            self._install(device_spec)

    def reset(self) -> None:
        self._build()

    # ------------------------------------------------------------ devices
    def _install(self, spec: DeviceSpec) -> DeviceSlot:
        if spec.id in self.slots:
            raise ApiError("DEVICE_EXISTS", f"Device '{spec.id}' already exists in this tenant.")
        try:
            device = Device(spec, self.clock.now)
        except ValueError as exc:
            cause = exc.__cause__
            errno = cause.errno if isinstance(cause, NativeError) else 40257
            reason = cause.message if isinstance(cause, NativeError) else str(exc)
            raise ApiError("SCHEDULE_REJECTED", f"The device's schedule was refused: {exc}", {"errno": errno, "reason": reason}) from None
        slot = DeviceSlot(device)
        self.slots[spec.id] = slot
        return slot

    def add_device(self, body: object) -> dict[str, Any]:
        spec = parse_model(DeviceSpec, body, "The device spec is not valid.")
        self._install(spec)
        return self.device_view(spec.id)

    def remove_device(self, device_id: str) -> None:
        self.platform.slot(device_id)
        del self.slots[device_id]
        self.platform.forget_device(device_id)

    def device_view(self, device_id: str) -> dict[str, Any]:
        slot = self.platform.slot(device_id)
        view = slot.device.view(self.clock.now)
        if slot.faults.faults and slot.faults.faults[0].kind == "offline":
            view["battery"]["status"] = "offline"
        view["warnings"] = list(slot.warnings)
        view["faults"] = slot.faults.view()
        return view

    def device_views(self) -> list[dict[str, Any]]:
        return [self.device_view(device_id) for device_id in self.slots]

    def write_scheduler(self, device_id: str, body: object) -> dict[str, Any]:
        """A foreign party (the homeowner's app, another optimiser) rewrites the native schedule."""
        slot = self.platform.slot(device_id)
        write = parse_model(SchedulerWrite, body, "The scheduler write is not valid.")
        device = slot.device
        if device.scheduler is None:
            raise ApiError(
                "SCHEDULE_REJECTED",
                f"Device '{device_id}' has no native scheduler.",
                {"errno": 40257, "reason": "no native scheduler on this profile"},
            )
        groups = []
        for spec in write.groups:
            data = spec.model_dump(exclude_none=True)
            if "owner" not in spec.model_fields_set:
                data["owner"] = write.owner
            groups.append(Group.from_view(data))
        now = self.clock.now
        try:
            device.replace_groups(groups, now)
        except NativeError as exc:
            raise ApiError(
                "SCHEDULE_REJECTED", f"The device refused the schedule (errno {exc.errno}): {exc.message}", {"errno": exc.errno, "reason": exc.message}
            ) from None
        if write.enabled is not None:
            device.set_scheduler_enabled(write.enabled, now)
            slot.platform_enabled_flag = False
        return self.device_view(device_id)

    def inject_fault(self, device_id: str, body: object) -> dict[str, Any]:
        slot = self.platform.slot(device_id)
        request = parse_model(FaultRequest, body, "The fault request is not valid.")
        slot.faults.add(request.kind, request.times)
        return {"deviceId": device_id, "faults": slot.faults.view()}

    # -------------------------------------------------------------- clock
    def clock_view(self) -> dict[str, Any]:
        return {"now": format_instant(self.clock.now), "mode": self.clock.mode}

    def advance(self, body: object) -> dict[str, Any]:
        request = parse_model(AdvanceRequest, body, "Give exactly one of 'by' or 'to'.")
        if (request.by is None) == (request.to is None):
            raise ApiError(
                "INVALID_REQUEST",
                "Give exactly one of 'by' (a duration such as 90m) or 'to' (an ISO 8601 instant).",
                {"errors": [{"path": "(body)", "message": "exactly one of 'by' or 'to' is required"}]},
            )
        if request.by is not None:
            step = parse_span(request.by)
            if step is None:
                raise ApiError(
                    "INVALID_REQUEST",
                    f"'{request.by}' is not a duration of at most 3660 days (examples: 45s, 90m, 1.5h, 2d, 1h30m).",
                    {"errors": [{"path": "by", "message": "not a duration"}]},
                )
            target = self.clock.now + step
        else:
            assert request.to is not None
            target = request.to
            if target > self.clock.now + timedelta(days=3660):
                raise ApiError(
                    "INVALID_REQUEST",
                    "A single advance may move the clock at most 3660 days.",
                    {"errors": [{"path": "to", "message": "too far"}]},
                )
        try:
            processed = self.clock.advance_to(target)
        except ClockError as exc:
            raise ApiError(
                "CLOCK_BACKWARDS",
                str(exc),
                {"now": format_instant(self.clock.now), "requested": format_instant(target)},
            ) from None
        return {"now": format_instant(self.clock.now), "eventsProcessed": processed}


class Tenants:
    """Every world the server holds, by API key. The oldest spare tenants are dropped past a cap."""

    def __init__(self, rng: random.Random, monotonic: Callable[[], float], wall_clock: Callable[[], datetime]) -> None:
        self._rng = rng
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._worlds: OrderedDict[str, World] = OrderedDict()
        self._pinned: set[str] = set()

    def create(self, spec: TenantSpec, api_key: str | None = None, *, pinned: bool = False) -> World:
        key = api_key or self._new_key()
        world = World(spec, api_key=key, seed=self._rng.getrandbits(64), created_at=self._wall_clock(), monotonic=self._monotonic)
        self._worlds[key] = world
        if pinned:
            self._pinned.add(key)
        while len(self._worlds) > MAX_TENANTS:
            oldest = next((k for k in self._worlds if k not in self._pinned), None)
            if oldest is None:
                break
            del self._worlds[oldest]
        return world

    def get(self, api_key: str) -> World | None:
        return self._worlds.get(api_key)

    def _new_key(self) -> str:
        while True:
            key = "sk_test_" + "".join(self._rng.choice(_KEY_ALPHABET) for _ in range(24))
            if key not in self._worlds:
                return key


class WorldFile(TenantSpec):
    """A world YAML file (`amps-sim serve --world FILE`): a tenant spec plus the key it answers to."""

    apiKey: StrictStr = Field(default="sk_live_abc123xyz", min_length=1)
