"""The one errno table: every errno a FoxESS-class device and its cloud answer with, the text
the cloud gives for each, and :class:`NativeError`, the refusal that carries one.

It sits at the bottom of the simulator because the device's own scheduler raises some of them
(40257, 42023) as well as the cloud. Codes marked *ours* are not documented anywhere public;
they are the simulator's choice.
"""

from __future__ import annotations

ERRNO_OK = 0
ERRNO_BAD_SIGNATURE = 40256
ERRNO_BAD_PARAMETER = 40257
ERRNO_TOO_FREQUENT = 40400
ERRNO_DAILY_LIMIT = 40402
ERRNO_TRANSIENT = 41200
ERRNO_DEVICE_OFFLINE = 41201
ERRNO_BUSY = 41202  # listed for completeness; no injected fault produces it
ERRNO_DEVICE_TIMEOUT = 41203
ERRNO_BAD_TOKEN = 41809  # ours: the key names no tenant
ERRNO_TIME_OVERLAP = 42023
ERRNO_SCHEDULE_ACTIVE = 44096

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


class NativeError(Exception):
    """A refusal from the OEM, carrying the FoxESS errno."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(f"errno {errno}: {message}")
        self.errno = errno
        self.message = message


def refuse(errno: int, detail: str | None = None) -> NativeError:
    """A NativeError whose message is the table's text, plus `detail` when there is one."""
    text = MESSAGES.get(errno, "error")
    return NativeError(errno, f"{text}: {detail}" if detail else text)


def bad_parameter(detail: str) -> NativeError:
    return refuse(ERRNO_BAD_PARAMETER, detail)
