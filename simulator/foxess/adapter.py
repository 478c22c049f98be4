"""The platform's FoxESS adapter: the OEM gateway of a FoxESS-class device.

It makes the same native calls a production integration would make through the cloud, in
process, through the tenant's :class:`~simulator.foxess.cloud.NativeSession` for the platform's
own key. So the platform meets exactly the quotas, injected faults and device refusals a
third-party client meets over HTTP, and turns each native errno into the failure the Amps API
reports: transient errnos and "too frequent" are retried by the platform, a spent daily allowance
or a refused write fails the action at once, 44096 is the imperative-write block.

Rows the platform writes keep their ownership marker (owner ``amps`` and the action id); that
marker is the simulator's bookkeeping, which native reads by clients never show.
"""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from ..battery import Drive
from ..errnos import (
    ERRNO_BUSY,
    ERRNO_DAILY_LIMIT,
    ERRNO_DEVICE_OFFLINE,
    ERRNO_DEVICE_TIMEOUT,
    ERRNO_SCHEDULE_ACTIVE,
    ERRNO_TOO_FREQUENT,
    ERRNO_TRANSIENT,
    NativeError,
)
from ..memo import remember
from ..native_scheduler import PLATFORM_OWNER, SHARED_MARK, Group
from ..oem import ManagedDevice, OemFailure, OemGateway, SchedulerBlocked
from .cloud import NativeCloud, NativeSession

# errno → (errorCode, message, retryable) for the failures that are not a refusal of the request.
_FAILURES: dict[int, tuple[str, str, bool]] = {
    ERRNO_TRANSIENT: ("OEM_TRANSIENT_FAILURE", "The OEM cloud reported a transient failure (errno 41200).", True),
    ERRNO_BUSY: ("OEM_TRANSIENT_FAILURE", "The OEM cloud reported the device busy (errno 41202).", True),
    ERRNO_DEVICE_OFFLINE: ("DEVICE_OFFLINE", "The device is offline.", True),
    ERRNO_DEVICE_TIMEOUT: ("OEM_TIMEOUT", "The OEM cloud did not answer in time.", True),
    ERRNO_TOO_FREQUENT: (
        "OEM_RATE_LIMITED",
        "The OEM cloud refused the call as too frequent for the platform's key (errno 40400).",
        True,
    ),
    ERRNO_DAILY_LIMIT: (
        "OEM_QUOTA_EXHAUSTED",
        "The OEM cloud's daily call allowance for the platform's key is used up (errno 40402).",
        False,
    ),
}


def failure_for(exc: NativeError, what: str) -> OemFailure:
    """The platform-side failure for a native refusal of `what` (e.g. "schedule")."""
    if exc.errno == ERRNO_SCHEDULE_ACTIVE:
        return SchedulerBlocked()
    known = _FAILURES.get(exc.errno)
    if known is not None:
        code, message, retryable = known
        return OemFailure(code, message, retryable=retryable)
    return OemFailure("OEM_REJECTED", f"The OEM refused the {what} (errno {exc.errno}): {exc.message}", retryable=False)


# Stored row tuples (by identity) -> the tuple itself and its rows in read-back order, bounded.
_READ_ORDERS: dict[int, tuple[tuple[Group, ...], tuple[Group, ...]]] = {}
_READ_ORDERS_KEPT = 1024
# The entry `read_order` last answered from (or made), one pair replaced whole: a fleet's devices
# read one stored tuple after another (every push's preflight, every dispatch, every cleanup), so
# the gateway compares with it before calling `read_order`.
_last_read: tuple[tuple[Group, ...], tuple[Group, ...]] = ((), ())


def read_order(groups: tuple[Group, ...]) -> tuple[Group, ...]:
    """`groups` reversed, as a reordering device reads them back: one tuple per stored tuple, so
    devices holding one shared row set (see `native_scheduler.shared_rows`) read back one tuple,
    which the platform recognises by identity (see `Platform._preflight`). Only sets with no row
    marked with its own action are remembered (those are what devices share, the platform's
    `SHARED_MARK` rows included; a row marked with an action id is one device's). The entry holds
    the stored tuple, so its id is not reused while it is remembered."""
    global _last_read
    known = _READ_ORDERS.get(id(groups))
    if known is not None and known[0] is groups:
        _last_read = known
        return known[1]
    reordered = groups[::-1]
    for group in reordered:  # the platform's rows come last in the stored order: first here
        marker = group.action_id
        if marker is not None and marker is not SHARED_MARK:
            return reordered  # a row marked with its own action is one device's: not shared, not kept
    _last_read = remember(_READ_ORDERS, id(groups), (groups, reordered), _READ_ORDERS_KEPT)
    return reordered


class FoxessGateway(OemGateway):
    # Kept by its managed device across operations (see ManagedDevice.gateway), so it holds no
    # session: each call takes the cloud's platform session, which a reset makes anew with its
    # ledger. Each call is a plain try rather than a closure.
    #
    # The platform's calls are most of a fleet's work, so the common case is flattened: when the
    # ledger can count the call with nothing to check (quotas not enforced, same UTC day;
    # `QuotaLedger.count_free`), the gateway counts it, consumes an injected fault and reaches
    # the device itself, exactly as `NativeSession` would in this order (admission, fault,
    # scheduler check, device). Otherwise the call goes through the platform session, which
    # admits it (and refuses it) under the quotas.
    __slots__ = ("managed_device", "cloud")

    def __init__(self, cloud: NativeCloud, managed: ManagedDevice) -> None:
        self.managed_device = managed
        self.cloud = cloud

    @property
    def session(self) -> NativeSession:
        return self.cloud.platform_session()

    def _counted(self, scope: str | None, now: datetime) -> bool:
        """Count a platform call made at `now` (the clock's present instant, as the platform
        passes it) that `QuotaLedger.count_free` admits (a paced write's instant recorded under
        `scope`); False when the session must admit it. `tests/foxess/test_gateway_counting.py`
        holds the gateway's calls to the ledger's rule."""
        cloud = self.cloud
        return cloud._clock is not None and cloud.platform_ledger.count_free(
            cloud.quotas, now, scope, self.managed_device.device.serial_number
        )

    def read_scheduler(self) -> tuple[bool, Sequence[Group]]:
        # One v3 scheduler read carries the flag too, so this is one call, not two. The platform
        # reads three times a device-day, so the fast path is written out here:
        # `NativeSession.scheduler_of` and `NativeScheduler.read_back`, with the ledger's own
        # `count_free` deciding whether the session must admit the call; its shortest path (the
        # instant it last counted, under the spec it found unenforced) is inlined first.
        managed = self.managed_device
        scheduler = managed.device.scheduler
        cloud = self.cloud
        clock = cloud._clock
        ledger = cloud.platform_ledger
        try:
            if scheduler is not None and clock is not None and clock.now is ledger.free_now and cloud.quotas is ledger.free_spec:
                ledger.used += 1
            elif (
                scheduler is None
                or clock is None
                or not ledger.count_free(cloud.quotas, clock.now, None, managed.device.serial_number)
            ):
                return self._read_admitted()
            if managed.faults.faults:
                NativeSession.fault(managed)
        except NativeError as exc:
            raise failure_for(exc, "read") from exc
        groups = scheduler.groups
        # The device's read-back order (see NativeScheduler.read_back), as an immutable tuple: the
        # stored one itself, or its reversed copy (see `read_order`, whose last answer is
        # compared first); the caller only reads it (see OemGateway).
        if scheduler.readback_reorder:
            last = _last_read
            groups = last[1] if last[0] is groups else read_order(groups)
        return scheduler.enabled, groups

    def _read_admitted(self) -> tuple[bool, Sequence[Group]]:
        """`read_scheduler` through the platform session, which admits (or refuses) the call."""
        try:
            scheduler = self.cloud.platform_session().read_schedule(self.managed_device)
        except NativeError as exc:
            raise failure_for(exc, "read") from exc
        groups = scheduler.groups
        return scheduler.enabled, read_order(groups) if scheduler.readback_reorder else groups

    def reads_refused(self) -> bool:
        # The ledger's own rule, asked as the platform session's admission would ask it (its first
        # test, a spec found unenforced, made here without reading the clock's instant).
        cloud = self.cloud
        ledger = cloud.platform_ledger
        if cloud.quotas is ledger.free_spec and cloud._clock is not None:
            return False
        return ledger.spent(cloud.quotas, (cloud._clock or cloud.clock).now)

    def write_groups(self, groups: Sequence[Group], now: datetime) -> None:
        managed = self.managed_device
        device = managed.device
        cloud = self.cloud
        ledger = cloud.platform_ledger
        try:
            # The platform passes the clock's present instant as `now`, so the clock is not read
            # again. `count_free`'s shortest path first, inlined (see `read_scheduler`).
            if now is ledger.free_now and cloud.quotas is ledger.free_spec and device.scheduler is not None and cloud._clock is not None:
                ledger.used += 1
                ledger.last[("scheduler", device.serial_number)] = now
            elif device.scheduler is None or cloud._clock is None or not ledger.count_free(
                cloud.quotas, now, "scheduler", device.serial_number
            ):
                cloud.platform_session().write_schedule(managed, list(groups), now)
                return
            if managed.faults.faults:
                NativeSession.fault(managed)
            # The device stores a tuple of what it is given, so the caller's list is not copied.
            device.replace_groups(groups, now)
        except NativeError as exc:
            raise failure_for(exc, "schedule") from exc

    def set_scheduler_enabled(self, flag: bool, now: datetime) -> None:
        managed = self.managed_device
        try:
            if not self._counted("flag", now):
                self.cloud.platform_session().set_flag(managed, flag, now)
                return
            if managed.faults.faults:
                NativeSession.fault(managed)
            if managed.device.scheduler is None:
                NativeSession.scheduler_of(managed)
            managed.device.set_scheduler_enabled(flag, now, by=PLATFORM_OWNER)
        except NativeError as exc:
            raise failure_for(exc, "scheduler flag") from exc

    def write_mode(self, drive: Drive, now: datetime) -> None:
        try:
            self.cloud.platform_session().set_work_mode(self.managed_device, drive, now)
        except NativeError as exc:
            raise failure_for(exc, "command") from exc


class FoxessLink:
    """The link of a FoxESS-class device: its gateway goes through the tenant's cloud."""

    def __init__(self, cloud: NativeCloud) -> None:
        self.cloud = cloud

    def gateway(self, managed: ManagedDevice) -> OemGateway:
        return FoxessGateway(self.cloud, managed)
