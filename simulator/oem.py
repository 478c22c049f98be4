"""The OEM boundary: how the platform reaches a device.

The platform never touches a device's state directly; it calls an :class:`OemGateway`. Each
gateway method is one OEM call, and every implementation applies the device's own rules (the
native scheduler's errno refusals, the imperative-write block while the scheduler flag is on)
and any injected faults. A managed device holds an :class:`OemLink` that opens its gateway:
:class:`DirectLink` for batteries the platform drives directly, and the FoxESS link
(:mod:`simulator.foxess.adapter`) for FoxESS-class devices, which also obeys the cloud's quotas.
An injected fault is consumed by the next OEM call to the device, whichever it is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Literal, Protocol, Sequence, get_args

from .battery import Drive
from .device import Device
from .errnos import NativeError
from .native_scheduler import PLATFORM_OWNER, Group

FaultKind = Literal["oem_timeout", "oem_reject", "offline", "transient"]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)


class OemFailure(Exception):
    """An OEM call that did not go through. `code` is what lands in an action's errorCode."""

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


class SchedulerBlocked(OemFailure):
    """errno 44096: the device refuses imperative writes while its schedule is active."""

    def __init__(self) -> None:
        super().__init__(
            "SCHEDULER_ACTIVE",
            "Native scheduler is active; clear it before issuing a direct command.",
            retryable=False,
        )


_FAULT_OUTCOMES: dict[str, tuple[str, str, bool]] = {
    "oem_timeout": ("OEM_TIMEOUT", "The OEM cloud did not answer in time.", True),
    "transient": ("OEM_TRANSIENT_FAILURE", "The OEM cloud reported a transient failure (errno 41200).", True),
    "offline": ("DEVICE_OFFLINE", "The device is offline.", True),
    "oem_reject": ("OEM_REJECTED", "The OEM rejected the command.", False),
}
assert set(_FAULT_OUTCOMES) == set(FAULT_KINDS)


@dataclass
class Fault:
    kind: str
    remaining: int

    def view(self) -> dict[str, object]:
        return {"kind": self.kind, "remaining": self.remaining}


class FaultPlan:
    """Faults queued for one device, consumed in order by its OEM calls."""

    def __init__(self, device_id: str = "", on_offline_change: Callable[[str, bool], None] | None = None) -> None:
        # The shared empty tuple until a fault is queued: a fleet's devices mostly never get one,
        # and an empty list per device is one more object for the garbage collector to scan.
        self.faults: list[Fault] | tuple[()] = ()
        self.device_id = device_id
        # Told the device's id and whether it went offline (True) or came back (False); webhooks
        # listen here. One callable serves every device of a tenant (no closure per device).
        self.on_offline_change = on_offline_change

    def add(self, kind: str, times: int) -> None:
        if kind not in _FAULT_OUTCOMES:
            raise ValueError(f"unknown fault kind {kind!r}")
        was_offline = self.offline
        faults = self.faults
        if not isinstance(faults, list):
            faults = self.faults = []
        faults.append(Fault(kind, times))
        self._report_offline(was_offline)

    def take_kind(self) -> str | None:
        """Consume one fault and say which kind it was; None when nothing is queued."""
        faults = self.faults
        if not isinstance(faults, list):
            return None
        while faults and faults[0].remaining <= 0:
            faults.pop(0)
        if not faults:
            return None
        was_offline = self.offline
        fault = faults[0]
        fault.remaining -= 1
        if fault.remaining == 0:
            faults.pop(0)
        self._report_offline(was_offline)
        return fault.kind

    def _report_offline(self, was_offline: bool) -> None:
        if self.on_offline_change is not None and self.offline != was_offline:
            self.on_offline_change(self.device_id, self.offline)

    def take(self) -> OemFailure | None:
        """Consume one fault as the failure a direct OEM call reports."""
        kind = self.take_kind()
        if kind is None:
            return None
        code, message, retryable = _FAULT_OUTCOMES[kind]
        return OemFailure(code, message, retryable=retryable)

    def view(self) -> list[dict[str, object]]:
        return [f.view() for f in self.faults if f.remaining > 0]

    @property
    def offline(self) -> bool:
        """The device's next OEM call will find it offline, so every read reports it offline."""
        pending = [f for f in self.faults if f.remaining > 0]
        return bool(pending) and pending[0].kind == "offline"


class OemGateway(ABC):
    """The adapter interface: the four OEM calls the platform makes. Failures are OemFailure."""

    @abstractmethod
    def read_scheduler(self) -> tuple[bool, Sequence[Group]]:
        """One native read: the flag and the groups, in the order the device returns them. The
        sequence is the caller's to read, never to change (a gateway may hand back the device's
        own immutable rows rather than a copy)."""

    def reads_refused(self) -> bool:
        """True when the OEM is known, without a call, to refuse a read now (a native cloud whose
        day's call quota is spent, which it reports for free). A caller whose read is optional
        then skips it instead of spending a refused call. By default nothing is known."""
        return False

    @abstractmethod
    def write_groups(self, groups: Sequence[Group], now: datetime) -> None:
        """Replace the device's whole group list."""

    @abstractmethod
    def set_scheduler_enabled(self, flag: bool, now: datetime) -> None:
        """Switch the native scheduler flag."""

    @abstractmethod
    def write_mode(self, drive: Drive, now: datetime) -> None:
        """An imperative write of the running mode."""


class OemLink(Protocol):
    """How a managed device reaches its OEM: opens the gateway for one platform operation."""

    def gateway(self, managed: ManagedDevice) -> OemGateway: ...


class DirectGateway(OemGateway):
    """In-process adapter to one simulated device with no OEM cloud in between."""

    def __init__(self, device: Device, faults: FaultPlan) -> None:
        self.device = device
        self.faults = faults

    def _call(self) -> None:
        if not self.faults.faults:
            return  # nothing queued (the common case): no fault to consume
        failure = self.faults.take()
        if failure is not None:
            raise failure

    def read_scheduler(self) -> tuple[bool, Sequence[Group]]:
        self._call()
        scheduler = self.device.scheduler
        if scheduler is None:
            return False, []
        return scheduler.enabled, scheduler.read_back()  # a list of the caller's own

    def write_groups(self, groups: Sequence[Group], now: datetime) -> None:
        self._call()
        try:
            self.device.replace_groups(groups, now)  # the device stores a tuple of them
        except NativeError as exc:
            raise OemFailure("OEM_REJECTED", f"The OEM refused the schedule (errno {exc.errno}): {exc.message}", retryable=False) from exc

    def set_scheduler_enabled(self, flag: bool, now: datetime) -> None:
        self._call()
        self.device.set_scheduler_enabled(flag, now, by=PLATFORM_OWNER)

    def write_mode(self, drive: Drive, now: datetime) -> None:
        self._call()
        scheduler = self.device.scheduler
        if scheduler is not None and scheduler.enabled and self.device.traits.blocks_imperative_while_scheduled:
            raise SchedulerBlocked()
        self.device.set_imperative(drive, now)


class DirectLink:
    """The link of a device the platform drives without an OEM cloud (the `direct` profile)."""

    def gateway(self, managed: ManagedDevice) -> OemGateway:
        return DirectGateway(managed.device, managed.faults)


# What a managed device's gateway is opened from: assigning any of them opens it again.
_GATEWAY_INPUTS = frozenset({"device", "faults", "link"})


@dataclass
class ManagedDevice:
    """A device under the platform's management: the device, how the platform reaches its OEM,
    the faults queued for its next OEM calls, and the warnings the platform noted about it."""

    device: Device
    faults: FaultPlan = field(default_factory=FaultPlan)
    # The shared empty tuple until the platform notes a warning (see :meth:`warn`).
    warnings: list[dict[str, Any]] | tuple[()] = ()
    # How the platform reaches the device's OEM; the world links FoxESS-class devices to their cloud.
    link: OemLink = field(default_factory=DirectLink)

    # The gateway the link opened: a plain attribute, as the platform reads it for every operation
    # (several times a device-day), and a gateway keeps no state beyond what it was opened from.
    # Opened when the link is set, opened again whenever the link, the fault plan or the device
    # is replaced (see `__setattr__`).
    gateway: OemGateway = field(init=False, repr=False, compare=False)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in _GATEWAY_INPUTS:
            # No link yet while `__init__` sets the device and the fault plan: the link comes last.
            link: OemLink | None = getattr(self, "link", None)
            if link is not None:
                object.__setattr__(self, "gateway", link.gateway(self))

    def warn(self, warning: dict[str, Any]) -> None:
        """Note a warning about the device (shown in its view)."""
        warnings = self.warnings
        if not isinstance(warnings, list):
            warnings = self.warnings = []
        warnings.append(warning)

    @property
    def flag_set_by_platform(self) -> bool:
        """Whether the platform was the last to switch the native flag (on or off)."""
        scheduler = self.device.scheduler
        return scheduler is not None and scheduler.flag_owner == PLATFORM_OWNER
