"""One tenant's FoxESS cloud: the keys issued for it, what each key may touch, and the native
rules every call obeys, whoever makes it.

A :class:`NativeSession` is one caller: a homeowner's app or third-party optimiser holding a key
from ``POST /_sim/oem-keys``, or the platform itself. The HTTP handlers and the platform's
in-process adapter both go through a session, so both meet the same quotas, the same injected
faults and the same device refusals. Each public method of a session is exactly one native call.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Iterable, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from ..battery import Drive
from ..clock import Clock
from ..device import Device
from ..errnos import ERRNO_SCHEDULE_ACTIVE, FAULT_ERRNOS, bad_parameter, refuse
from ..errors import ApiError
from ..native_scheduler import Group, NativeScheduler
from ..oem import DirectLink, OemLink
from ..validation import parse_model
from .adapter import FoxessLink
from .quotas import CallKind, QuotaLedger, QuotaSpec

if TYPE_CHECKING:
    from ..platform import DeviceSlot

PLATFORM_OWNER = "amps"
Party = Literal["homeowner_app", "third_party"]


def is_foxess_class(device: Device) -> bool:
    """Whether the device sits behind the FoxESS cloud (the `foxess*` profiles)."""
    profile = device.profile
    return profile.native_scheduler and profile.name.split("_", 1)[0] == "foxess"


class OemKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    party: Party
    devices: list[StrictStr] = Field(min_length=1, max_length=100)


@dataclass(frozen=True)
class NativeKey:
    key: str
    party: str
    device_ids: tuple[str, ...]


def new_key(rng: random.Random, taken: Iterable[str], prefix: str = "") -> str:
    """A key shaped like the cloud's (a UUID), unique among `taken`, starting with the hex
    `prefix` (a shard's mark, so a proxy can route native calls by their token)."""
    used = set(taken)
    while True:
        digits = prefix + f"{rng.getrandbits(128):032x}"[len(prefix):]
        key = "-".join((digits[:8], digits[8:12], digits[12:16], digits[16:20], digits[20:]))
        if key not in used:
            return key


class NativeCloud:
    """Keys survive a tenant reset (they are credentials, like the tenant's own key); quota
    ledgers do not (they count calls on a clock that went back to its start)."""

    def __init__(self) -> None:
        self.keys: dict[str, NativeKey] = {}
        self.ledgers: dict[str, QuotaLedger] = {}
        self.platform_ledger = QuotaLedger()
        self.quotas = QuotaSpec(enabled=False)
        self._clock: Clock | None = None

    def start(self, clock: Clock, quotas: QuotaSpec | None) -> None:
        """(Re)attach to the tenant's clock, as the world is built or reset."""
        self._clock = clock
        self.quotas = quotas or QuotaSpec.default_for(clock.mode)
        self.ledgers = {key: QuotaLedger() for key in self.keys}
        self.platform_ledger = QuotaLedger()

    @property
    def clock(self) -> Clock:
        if self._clock is None:
            raise RuntimeError("the native cloud is not attached to a clock yet")
        return self._clock

    def issue(self, key: str, body: object, slots: Mapping[str, DeviceSlot]) -> NativeKey:
        request = parse_model(OemKeyRequest, body, "The OEM key request is not valid.")
        for device_id in request.devices:
            slot = slots.get(device_id)
            if slot is None:
                raise ApiError("DEVICE_NOT_FOUND", f"Device '{device_id}' was not found.")
            if not is_foxess_class(slot.device):
                raise ApiError(
                    "NATIVE_API_UNAVAILABLE",
                    f"Device '{device_id}' (profile {slot.device.profile.name}) has no FoxESS cloud API.",
                    {"deviceId": device_id, "profile": slot.device.profile.name},
                )
        record = NativeKey(key, request.party, tuple(dict.fromkeys(request.devices)))
        self.keys[key] = record
        self.ledgers[key] = QuotaLedger()
        return record

    def session(self, key: NativeKey, slots: Mapping[str, DeviceSlot]) -> NativeSession:
        ledger = self.ledgers.setdefault(key.key, QuotaLedger())
        return NativeSession(self, ledger, slots, owner=key.party, device_ids=key.device_ids)

    def platform_session(self, slots: Mapping[str, DeviceSlot]) -> NativeSession:
        return NativeSession(self, self.platform_ledger, slots, owner=PLATFORM_OWNER, device_ids=None)

    def link_for(self, device: Device) -> OemLink:
        """How the platform reaches `device`: through this cloud when it is FoxESS-class."""
        return FoxessLink(self) if is_foxess_class(device) else DirectLink()


class NativeSession:
    def __init__(
        self,
        cloud: NativeCloud,
        ledger: QuotaLedger,
        slots: Mapping[str, DeviceSlot],
        *,
        owner: str,
        device_ids: tuple[str, ...] | None,
    ) -> None:
        self.cloud = cloud
        self.ledger = ledger
        self.slots = slots
        self.owner = owner
        self.device_ids = device_ids  # None: every FoxESS-class device of the tenant

    @property
    def now(self) -> datetime:
        return self.cloud.clock.now

    # ------------------------------------------------------------------ which devices
    def visible(self) -> list[DeviceSlot]:
        ids = self.device_ids if self.device_ids is not None else tuple(self.slots)
        found = (self.slots.get(device_id) for device_id in ids)
        return [slot for slot in found if slot is not None and is_foxess_class(slot.device)]

    def slot_for(self, serial: object) -> DeviceSlot:
        """The visible device with this serial number; an unknown one is a bad parameter."""
        if not isinstance(serial, str) or not serial:
            raise bad_parameter("deviceSN must be a non-empty string")
        for slot in self.visible():
            if slot.device.serial_number == serial:
                return slot
        raise bad_parameter(f"no device {serial!r} on this account")

    # --------------------------------------------------------------------- admission
    def _call(self, kind: CallKind, scope: tuple[str, ...], *targets: DeviceSlot) -> None:
        """Admit one call: quotas first (a refused call never reaches a device), then any fault
        injected for the device, which the call consumes whatever its kind."""
        self.ledger.admit(self.cloud.quotas, kind, scope, self.now)
        for slot in targets:
            kind_of_fault = slot.faults.take_kind()
            if kind_of_fault is not None:
                raise refuse(FAULT_ERRNOS[kind_of_fault], f"injected {kind_of_fault} on {slot.device.serial_number}")

    def access_count(self) -> tuple[int, int]:
        """(total, remaining) today. Asking is free, as it must be to be useful."""
        quotas = self.cloud.quotas
        return quotas.dailyCalls, self.ledger.remaining(quotas, self.now)

    # ---------------------------------------------------------------------- reads
    def list_devices(self) -> list[DeviceSlot]:
        self._call("read", ())
        return self.visible()

    def describe(self, slot: DeviceSlot) -> Device:
        """Detail and generation reads: one call to the device, the device to render."""
        self._call("read", (), slot)
        return slot.device

    def real_time(self, slots: list[DeviceSlot]) -> list[Device]:
        self._call("query", ("real/query",), *slots)
        return [slot.device for slot in slots]

    def read_flag(self, slot: DeviceSlot) -> bool:
        self._call("read", (), slot)
        return self._scheduler(slot).enabled

    def read_schedule(self, slot: DeviceSlot) -> NativeScheduler:
        self._call("read", (), slot)
        return self._scheduler(slot)

    def read_work_mode(self, slot: DeviceSlot) -> str:
        self._call("read", (), slot)
        return slot.device.imperative.work_mode

    # --------------------------------------------------------------------- writes
    def write_schedule(self, slot: DeviceSlot, groups: list[Group], now: datetime | None = None) -> None:
        """Replace the whole group list (40257 or 42023 when a rule fails; nothing changes then)."""
        self._call("write", ("scheduler", slot.device.serial_number), slot)
        self._scheduler(slot)
        slot.device.replace_groups(groups, now or self.now)

    def set_flag(self, slot: DeviceSlot, enabled: bool, now: datetime | None = None) -> None:
        self._call("write", ("flag", slot.device.serial_number), slot)
        self._scheduler(slot)
        slot.device.set_scheduler_enabled(enabled, now or self.now)
        if self.owner != PLATFORM_OWNER:
            slot.platform_enabled_flag = False  # whoever switched it last owns the flag now

    def set_work_mode(self, slot: DeviceSlot, drive: Drive, now: datetime | None = None) -> None:
        """An imperative setting write, refused (44096) while the scheduler runs."""
        self._call("write", ("setting", slot.device.serial_number), slot)
        device = slot.device
        if device.scheduler is not None and device.scheduler.enabled and device.profile.blocks_imperative_while_scheduled:
            raise refuse(ERRNO_SCHEDULE_ACTIVE)
        device.set_imperative(drive, now or self.now)

    @staticmethod
    def _scheduler(slot: DeviceSlot) -> NativeScheduler:
        scheduler = slot.device.scheduler
        if scheduler is None:  # not reachable for the foxess profiles, which all have one
            raise bad_parameter("this device has no scheduler")
        return scheduler
