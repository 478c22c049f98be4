"""The one place that knows which error code maps to which HTTP status and how an envelope looks.

Domain code raises :class:`ApiError` (or a subclass) with a code from :data:`STATUS_BY_CODE`;
the HTTP layer turns it into the wire envelope with :func:`envelope`. Nothing else builds
error bodies.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

STATUS_BY_CODE: dict[str, int] = {
    "INVALID_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "INVALID_API_KEY": 401,
    "FORBIDDEN": 403,
    "DEVICE_LIMIT_REACHED": 403,
    "ACTION_LIMIT_REACHED": 403,
    "DEVICE_NOT_FOUND": 404,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "CONFLICT": 409,
    "SCHEDULER_ACTIVE": 409,
    "SCHEDULER_FULL": 409,
    "ACTION_NOT_CANCELLABLE": 409,
    "DEVICE_EXISTS": 409,
    "TENANT_PINNED": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "UNSUPPORTED_MODE": 422,
    "UNSUPPORTED_PARAMETER": 422,
    "UNSUPPORTED_UNIT": 422,
    "PARAMETER_OUT_OF_RANGE": 422,
    "EXECUTION_NOT_SUPPORTED": 422,
    "INVALID_TIME_WINDOW": 422,
    "START_IN_PAST": 422,
    "START_OUT_OF_RANGE": 422,
    "CLOCK_BACKWARDS": 422,
    "CLOCK_OUT_OF_RANGE": 422,
    "UNKNOWN_TIME_ZONE": 422,
    "SCHEDULE_REJECTED": 422,
    "NATIVE_API_UNAVAILABLE": 422,
    "WEBHOOK_URL_REFUSED": 422,
    "WEBHOOK_LIMIT": 422,
    "RATE_LIMIT_EXCEEDED": 429,
    "INTERNAL_ERROR": 500,
    # Answered by the nginx in front of shards (amps_sim/deploy.py) when a tenant's shard is down.
    "SERVICE_UNAVAILABLE": 503,
}


class ApiError(Exception):
    """A refusal the API reports to its caller in the error envelope."""

    def __init__(
        self, code: str, message: str, details: dict[str, Any] | None = None, *, headers: dict[str, str] | None = None
    ) -> None:
        if code not in STATUS_BY_CODE:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or None
        # HTTP headers the refusal needs besides the envelope (e.g. Retry-After on a 429).
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return STATUS_BY_CODE[self.code]

    def error_object(self) -> dict[str, Any]:
        """The `{code, message, details?}` object, as stored in an action's `result` too."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


def invalid_request(errors: list[dict[str, str]], message: str = "The request is malformed.") -> ApiError:
    return ApiError("INVALID_REQUEST", message, {"errors": errors})


@lru_cache(maxsize=4096)
def format_instant(moment: datetime) -> str:
    """UTC, millisecond precision, `Z` suffix: the only timestamp form on the wire.

    Every reply carries several; records repeat the same few instants, so they are cached (an
    aware datetime hashes by its instant, and the text depends on nothing else)."""
    utc = moment if moment.tzinfo is timezone.utc else moment.astimezone(timezone.utc)
    if utc.year >= 1000:
        # Milliseconds cut, not rounded. One %-format of seven integers: `isoformat` spends most
        # of its time formatting the `+00:00` offset this would then cut off again.
        return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
            utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond // 1000,
        )
    # The year unpadded, as strftime's %Y prints it on glibc.
    return (
        f"{utc.year}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}."
        f"{utc.microsecond // 1000:03d}Z"
    )


def envelope(error: ApiError, *, request_id: str, timestamp: datetime, path: str, latency_ms: int) -> dict[str, Any]:
    return {
        "success": False,
        "error": error.error_object(),
        "meta": {
            "requestId": request_id,
            "timestamp": format_instant(timestamp),
            "path": path,
            "latencyMs": max(0, int(latency_ms)),
        },
    }


def failure_result(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """An action's `result` after a failure the platform detected (e.g. at dispatch time)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"success": False, "error": error}
