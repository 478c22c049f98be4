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
from typing import Iterable, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from ..battery import Drive
from ..clock import Clock
from ..device import Device
from ..errnos import ERRNO_SCHEDULE_ACTIVE, FAULT_ERRNOS, bad_parameter, refuse
from ..errors import ApiError
from ..native_scheduler import PLATFORM_OWNER, Group, NativeScheduler
from ..oem import ManagedDevice
from .quotas import CallKind, QuotaLedger, QuotaSpec

Party = Literal["homeowner_app", "third_party"]


def is_foxess_class(device: Device) -> bool:
    """Whether the device sits behind the FoxESS cloud (its profile says `oem_cloud: foxess`)."""
    return device.profile.oem_cloud == "foxess"


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
        self._platform_session: NativeSession | None = None

    def start(self, clock: Clock, quotas: QuotaSpec | None) -> None:
        """(Re)attach to the tenant's clock, as the world is built or reset."""
        self._clock = clock
        self.quotas = quotas or QuotaSpec.default_for(clock.mode)
        self.ledgers = {key: QuotaLedger() for key in self.keys}
        self.platform_ledger = QuotaLedger()
        self._platform_session = None

    @property
    def clock(self) -> Clock:
        if self._clock is None:
            raise RuntimeError("the native cloud is not attached to a clock yet")
        return self._clock

    def issue(self, key: str, request: OemKeyRequest, devices: Mapping[str, ManagedDevice]) -> NativeKey:
        for device_id in request.devices:
            managed = devices.get(device_id)
            if managed is None:
                raise ApiError("DEVICE_NOT_FOUND", f"Device '{device_id}' was not found.")
            if not is_foxess_class(managed.device):
                raise ApiError(
                    "NATIVE_API_UNAVAILABLE",
                    f"Device '{device_id}' (profile {managed.device.profile.name}) has no FoxESS cloud API.",
                    {"deviceId": device_id, "profile": managed.device.profile.name},
                )
        record = NativeKey(key, request.party, tuple(dict.fromkeys(request.devices)))
        self.keys[key] = record
        self.ledgers[key] = QuotaLedger()
        return record

    def session(self, key: NativeKey, devices: Mapping[str, ManagedDevice]) -> NativeSession:
        ledger = self.ledgers.setdefault(key.key, QuotaLedger())
        return NativeSession(self, ledger, devices, owner=key.party, device_ids=key.device_ids)

    def platform_session(self) -> NativeSession:
        """The platform's own session, on the platform's ledger. The platform names the device in
        every call (it never lists devices or looks one up by serial), so one session serves all
        of them; it is made again when the ledger is (a reset)."""
        session = self._platform_session
        if session is None or session.ledger is not self.platform_ledger:
            session = NativeSession(self, self.platform_ledger, {}, owner=PLATFORM_OWNER, device_ids=())
            self._platform_session = session
        return session


class NativeSession:
    def __init__(
        self,
        cloud: NativeCloud,
        ledger: QuotaLedger,
        devices: Mapping[str, ManagedDevice],
        *,
        owner: str,
        device_ids: tuple[str, ...] | None,
    ) -> None:
        self.cloud = cloud
        self.ledger = ledger
        self.devices = devices
        self.owner = owner
        self.device_ids = device_ids  # None: every FoxESS-class device of the tenant

    @property
    def now(self) -> datetime:
        return self.cloud.clock.now

    # ------------------------------------------------------------------ which devices
    def visible(self) -> list[ManagedDevice]:
        ids = self.device_ids if self.device_ids is not None else tuple(self.devices)
        found = (self.devices.get(device_id) for device_id in ids)
        return [managed for managed in found if managed is not None and is_foxess_class(managed.device)]

    def managed_for(self, serial: object) -> ManagedDevice:
        """The visible device with this serial number; an unknown one is a bad parameter."""
        if not isinstance(serial, str) or not serial:
            raise bad_parameter("deviceSN must be a non-empty string")
        for managed in self.visible():
            if managed.device.serial_number == serial:
                return managed
        raise bad_parameter(f"no device {serial!r} on this account")

    # --------------------------------------------------------------------- admission
    def _call(self, kind: CallKind, scope: tuple[str, ...], *targets: ManagedDevice) -> None:
        """Admit one call: quotas first (a refused call never reaches a device), then any fault
        injected for the device, which the call consumes whatever its kind."""
        self.ledger.admit(self.cloud.quotas, kind, scope, self.cloud.clock.now)
        for managed in targets:
            self.fault(managed)

    def _call_one(self, kind: CallKind, scope: tuple[str, ...], managed: ManagedDevice) -> None:
        """:meth:`_call` for one device (every call the platform makes)."""
        cloud = self.cloud
        self.ledger.admit(cloud.quotas, kind, scope, (cloud._clock or cloud.clock).now)
        if managed.faults.faults:
            self.fault(managed)

    @staticmethod
    def fault(managed: ManagedDevice) -> None:
        """Consume the next fault injected for the device, refusing the call with its errno."""
        kind_of_fault = managed.faults.take_kind()
        if kind_of_fault is not None:
            raise refuse(FAULT_ERRNOS[kind_of_fault], f"injected {kind_of_fault} on {managed.device.serial_number}")

    def access_count(self) -> tuple[int, int]:
        """(total, remaining) today. Asking is free, as it must be to be useful."""
        quotas = self.cloud.quotas
        return quotas.dailyCalls, self.ledger.remaining(quotas, self.now)

    # ---------------------------------------------------------------------- reads
    def list_devices(self) -> list[ManagedDevice]:
        self._call("read", ())
        return self.visible()

    def describe(self, managed: ManagedDevice) -> Device:
        """Detail and generation reads: one call to the device, the device to render."""
        self._call("read", (), managed)
        return managed.device

    def real_time(self, devices: list[ManagedDevice]) -> list[Device]:
        self._call("query", ("real/query",), *devices)
        return [managed.device for managed in devices]

    def read_flag(self, managed: ManagedDevice) -> bool:
        self._call("read", (), managed)
        return self.scheduler_of(managed).enabled

    def read_schedule(self, managed: ManagedDevice) -> NativeScheduler:
        self._call_one("read", (), managed)
        return self.scheduler_of(managed)

    def read_work_mode(self, managed: ManagedDevice) -> str:
        self._call("read", (), managed)
        return managed.device.imperative.work_mode

    # --------------------------------------------------------------------- writes
    def write_schedule(self, managed: ManagedDevice, groups: list[Group], now: datetime | None = None) -> None:
        """Replace the whole group list (40257 or 42023 when a rule fails; nothing changes then)."""
        self._call_one("write", ("scheduler", managed.device.serial_number), managed)
        self.scheduler_of(managed)
        managed.device.replace_groups(groups, now or self.now)

    def set_flag(self, managed: ManagedDevice, enabled: bool, now: datetime | None = None) -> None:
        self._call_one("write", ("flag", managed.device.serial_number), managed)
        self.scheduler_of(managed)
        managed.device.set_scheduler_enabled(enabled, now or self.now, by=self.owner)

    def set_work_mode(self, managed: ManagedDevice, drive: Drive, now: datetime | None = None) -> None:
        """An imperative setting write, refused (44096) while the scheduler runs."""
        self._call_one("write", ("setting", managed.device.serial_number), managed)
        device = managed.device
        if device.scheduler is not None and device.scheduler.enabled and device.traits.blocks_imperative_while_scheduled:
            raise refuse(ERRNO_SCHEDULE_ACTIVE)
        device.set_imperative(drive, now or self.now)

    @staticmethod
    def scheduler_of(managed: ManagedDevice) -> NativeScheduler:
        scheduler = managed.device.scheduler
        if scheduler is None:  # not reachable for the foxess profiles, which all have one
            raise bad_parameter("this device has no scheduler")
        return scheduler
