"""Every errno the simulated FoxESS cloud answers with, and the text it gives for each.

The scheduler's own refusals (40257, 42023, 44096) are defined beside the rules that raise them
in :mod:`simulator.native_scheduler`; they are re-exported here so this module is the one table.
Codes marked *ours* are not documented anywhere public; they are the simulator's choice.
"""

from __future__ import annotations

from ..native_scheduler import ERRNO_BAD_PARAMETER, ERRNO_SCHEDULE_ACTIVE, ERRNO_TIME_OVERLAP, NativeError

ERRNO_OK = 0
ERRNO_BAD_SIGNATURE = 40256
ERRNO_TOO_FREQUENT = 40400
ERRNO_DAILY_LIMIT = 40402
ERRNO_TRANSIENT = 41200
ERRNO_DEVICE_OFFLINE = 41201
ERRNO_BUSY = 41202  # listed for completeness; no injected fault produces it
ERRNO_DEVICE_TIMEOUT = 41203
ERRNO_BAD_TOKEN = 41809  # ours: the key names no tenant

TRANSIENT_ERRNOS: frozenset[int] = frozenset({ERRNO_TRANSIENT, ERRNO_DEVICE_OFFLINE, ERRNO_BUSY, ERRNO_DEVICE_TIMEOUT})

MESSAGES: dict[int, str] = {
    ERRNO_OK: "success",
    ERRNO_BAD_SIGNATURE: "Illegal signature: headers token, timestamp and signature must be present and match",
    ERRNO_BAD_PARAMETER: "Parameters are missing, invalid or unknown",
    ERRNO_TOO_FREQUENT: "Requests are too frequent, try again later",
    ERRNO_DAILY_LIMIT: "The daily call allowance is used up",
    ERRNO_TRANSIENT: "System busy, please retry",
    ERRNO_DEVICE_OFFLINE: "The device is offline",
    ERRNO_BUSY: "The device is busy, please retry",
    ERRNO_DEVICE_TIMEOUT: "The device did not answer in time",
    ERRNO_BAD_TOKEN: "The token is invalid or has expired",
    ERRNO_TIME_OVERLAP: "Time overlap between groups",
    ERRNO_SCHEDULE_ACTIVE: "Cannot update settings while a schedule is active",
}

# An injected fault (see simulator.oem.FaultPlan) as the cloud reports it to whoever calls next.
# `oem_reject` is the device refusing the command it was given, which the cloud reports as a
# parameter refusal: it is the one non-retryable fault.
FAULT_ERRNOS: dict[str, int] = {
    "transient": ERRNO_TRANSIENT,
    "offline": ERRNO_DEVICE_OFFLINE,
    "oem_timeout": ERRNO_DEVICE_TIMEOUT,
    "oem_reject": ERRNO_BAD_PARAMETER,
}


def refuse(errno: int, detail: str | None = None) -> NativeError:
    """A NativeError whose message is the table's text, plus `detail` when there is one."""
    text = MESSAGES.get(errno, "error")
    return NativeError(errno, f"{text}: {detail}" if detail else text)


def bad_parameter(detail: str) -> NativeError:
    return refuse(ERRNO_BAD_PARAMETER, detail)
