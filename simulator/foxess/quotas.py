"""Call quotas of the FoxESS cloud, counted per API key on the tenant's clock.

Three limits, each from public client behaviour: a daily allowance (about 1440 calls), at least
one second between two calls of the same *query* endpoint (the real-time and history queries,
which the reference client paces per path), and at least two seconds between two setting
writes of the same kind to the same device (which the reference client paces per device).
Scheduler and flag reads are not paced: the reference client issues them back to back.

The day is the UTC calendar day of the tenant's clock, so a virtual clock advanced past
midnight refills the allowance. Counting always happens, so the access-count endpoint is
truthful; enforcing is the policy's choice (see :func:`QuotaSpec.enforced`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from ..errnos import ERRNO_DAILY_LIMIT, ERRNO_TOO_FREQUENT, refuse
from ..validation import JsonInt

CallKind = Literal["read", "query", "write"]
_UTC = timezone.utc
DEFAULT_DAILY_CALLS = 1440


class QuotaSpec(BaseModel):
    """A tenant's `oemQuotas`: whether the native limits are enforced, and how tight they are."""

    # Frozen: a ledger may remember a spec it found unenforced (see QuotaLedger.count_free).
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    enabled: StrictBool = True
    dailyCalls: JsonInt = Field(default=DEFAULT_DAILY_CALLS, ge=1, le=1_000_000)  # 5.0 is the integer 5
    queryIntervalS: StrictFloat | StrictInt = Field(default=1, ge=0, le=3600)
    writeIntervalS: StrictFloat | StrictInt = Field(default=2, ge=0, le=3600)

    @classmethod
    def default_for(cls, clock_mode: str) -> "QuotaSpec":
        # A virtual clock stands still between calls, so pacing rules would refuse every fast
        # test; a realtime tenant behaves like the real cloud unless its spec says otherwise.
        return cls(enabled=clock_mode == "realtime")


@dataclass
class QuotaLedger:
    """The calls one key has made: today's count and when each paced call last went through."""

    day: date | None = None
    used: int = 0
    last: dict[tuple[str, ...], datetime] = field(default_factory=dict)
    # The UTC instants `day` spans, [day_from, day_until), set by `_roll` when it sees a UTC
    # instant: a caller holding a UTC `now` inside them knows `now.date()` is `day` without
    # building the date (see :meth:`count_free`). Class-level defaults, so a ledger restored from
    # an older snapshot reads None and takes the slow path once.
    day_from: datetime | None = None
    day_until: datetime | None = None
    # The spec `count_free` last found unenforced (specs are frozen): it is not read again, as a
    # model's field costs more to read than a plain attribute. Not part of the ledger's value.
    free_spec: QuotaSpec | None = field(default=None, compare=False, repr=False)
    # The instant `count_free` last counted (a UTC instant inside `day_from`..`day_until`): a
    # call at that very object is inside the day with nothing to compare, as a fleet's calls at
    # one event's instant are (the platform passes the clock's `now`). Forgotten whenever `_roll`
    # moves the day's span. Not part of the ledger's value; a ledger from an older snapshot
    # reads None (the class default) and compares once.
    free_now: datetime | None = field(default=None, compare=False, repr=False)

    def _roll(self, now: datetime) -> None:
        today = now.date()
        if today != self.day:
            self.day, self.used = today, 0
        if now.tzinfo is timezone.utc:
            if self.day_from is None or self.day_from.date() != today:
                self.day_from = datetime.combine(today, time(), timezone.utc)
                self.day_until = self.day_from + timedelta(days=1)
                self.free_now = None
        else:
            self.day_from = self.day_until = self.free_now = None

    def count_free(self, spec: QuotaSpec, now: datetime, scope: str | None, serial: str) -> bool:
        """Count a call with no quota check to make, when that is all `admit` would do: the spec
        is not enforced and `now` (UTC) is inside the day already counted; a write (`scope`
        given) also records its instant under `(scope, serial)`, as `admit` does. Returns False
        (and counts nothing) otherwise; the caller then goes through :meth:`admit`. The
        in-process platform's calls take this path: one call instead of three and a date."""
        if spec is not self.free_spec:
            if spec.enabled:
                return False
            self.free_spec = spec
        if now is not self.free_now:
            day_from = self.day_from
            if day_from is None or now.tzinfo is not _UTC or not day_from <= now < self.day_until:  # type: ignore[operator]
                return False
            self.free_now = now
        self.used += 1
        if scope is not None:
            self.last[(scope, serial)] = now
        return True

    def spent(self, spec: QuotaSpec, now: datetime) -> bool:
        """Whether :meth:`admit` would refuse any call at `now` because the day's calls are used
        up (errno 40402), as the free access count tells (see `NativeSession.access_count`).
        Counts nothing; rolls the day over as `admit` would."""
        if spec is self.free_spec or self.used < spec.dailyCalls or not spec.enabled:
            return False  # (`free_spec` is a spec found unenforced: its fields are not read again)
        self._roll(now)
        return self.used >= spec.dailyCalls

    def remaining(self, spec: QuotaSpec, now: datetime) -> int:
        self._roll(now)
        return max(0, spec.dailyCalls - self.used)

    def admit(self, spec: QuotaSpec, kind: CallKind, scope: tuple[str, ...], now: datetime) -> None:
        """Count one call, or refuse it (errno 40402, then 40400) when the spec is enforced.
        A refused call is not counted: the cloud turned it away at the door."""
        self._roll(now)
        if spec.enabled:
            if self.used >= spec.dailyCalls:
                raise refuse(ERRNO_DAILY_LIMIT, f"{spec.dailyCalls} calls a day")
            if kind != "read":
                interval = timedelta(seconds=spec.queryIntervalS if kind == "query" else spec.writeIntervalS)
                previous = self.last.get(scope)
                if previous is not None and now - previous < interval:
                    wait = (interval - (now - previous)).total_seconds()
                    raise refuse(ERRNO_TOO_FREQUENT, f"wait {wait:g} s more")
        self.used += 1
        if kind != "read":
            self.last[scope] = now
