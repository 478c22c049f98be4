"""Limits for a shared, hosted sandbox: who may create tenants, how much a tenant may hold and
how fast it may call, and when an idle tenant is dropped.

Every limit is off unless `amps-sim serve` is told otherwise, so local use, tests and benchmarks
never meet one. A limit never drops anything quietly: it refuses the request that would cross
it, in the error envelope, and the caller decides what to do.

Nothing here reads a clock of its own: the caller passes the wall instant (for idleness) or a
monotonic reading in seconds (for rates).
"""

from __future__ import annotations

import math
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .errors import ApiError

# Set while the state journal is replayed: it holds only requests the limits admitted then. A
# context variable, not a flag on the limits, because one tenant's replay (on its first request
# after a restart) may run while other tenants' live requests are served.
LIMITS_SUSPENDED: ContextVar[bool] = ContextVar("amps_sim_limits_suspended", default=False)


@dataclass
class TenantLimits:
    """What `amps-sim serve` was told; None everywhere means no limit at all."""

    admin_key: str | None = None
    tenant_ttl: timedelta | None = None
    max_devices: int | None = None
    max_actions: int | None = None
    requests_per_second: float | None = None
    # How many requests may arrive at once before the rate applies (a token bucket's size).
    burst: int | None = None
    @property
    def enforced(self) -> bool:
        """False while the state journal is replayed in this context (see LIMITS_SUSPENDED)."""
        return not LIMITS_SUSPENDED.get()

    def check_admin(self, presented: str | None) -> None:
        """Tenant creation: with an admin key configured, only that key may create tenants."""
        if self.admin_key is None or not self.enforced:
            return
        if not presented:
            raise ApiError("UNAUTHORIZED", "Creating a tenant on this sandbox needs the admin key in the x-api-key header.")
        if presented != self.admin_key:
            raise ApiError("FORBIDDEN", "Only the sandbox's admin key may create tenants.")

    def is_admin(self, presented: str | None) -> bool:
        return self.admin_key is not None and presented == self.admin_key

    def check_devices(self, count_after: int) -> None:
        """Refuse a request that would leave the tenant with more devices than allowed."""
        if self.enforced and self.max_devices is not None and count_after > self.max_devices:
            raise ApiError(
                "DEVICE_LIMIT_REACHED",
                f"A tenant on this sandbox may hold at most {self.max_devices} devices.",
                {"limit": self.max_devices, "requested": count_after},
            )

    def check_actions(self, retained: int) -> None:
        """Refuse a push once the tenant retains as many actions as allowed (nothing is pruned)."""
        if self.enforced and self.max_actions is not None and retained >= self.max_actions:
            raise ApiError(
                "ACTION_LIMIT_REACHED",
                f"A tenant on this sandbox may retain at most {self.max_actions} actions; "
                "reset the tenant or create a new one.",
                {"limit": self.max_actions, "retained": retained},
            )


@dataclass
class RateBucket:
    """A token bucket: `capacity` requests at once, refilled at `rate` per second."""

    rate: float
    capacity: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Admit one request (returns 0) or say how many seconds until one would be admitted."""
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@dataclass
class RateLimiter:
    """Per-tenant request rates. Kept in memory only: a restart forgives a burst, nothing more."""

    limits: TenantLimits
    buckets: dict[str, RateBucket] = field(default_factory=dict)

    def admit(self, tenant_key: str, now: float) -> None:
        rate = self.limits.requests_per_second
        if rate is None or not self.limits.enforced:
            return
        bucket = self.buckets.get(tenant_key)
        if bucket is None:
            capacity = float(self.limits.burst or max(1, math.ceil(rate)))
            bucket = self.buckets[tenant_key] = RateBucket(rate, capacity, capacity, now)
        wait = bucket.take(now)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise ApiError(
                "RATE_LIMIT_EXCEEDED",
                f"This tenant may make {rate:g} requests per second; retry in {retry_after} s.",
                {"limit": rate, "retryAfterSeconds": retry_after},
                headers={"Retry-After": str(retry_after)},
            )

    def forget(self, tenant_key: str) -> None:
        self.buckets.pop(tenant_key, None)


def idle_tenants(last_used: dict[str, datetime], ttl: timedelta, now: datetime, pinned: set[str]) -> list[str]:
    """The tenants (except pinned ones) not used for longer than `ttl`, oldest use first."""
    cutoff = now - ttl
    idle = [(used, key) for key, used in last_used.items() if used < cutoff and key not in pinned]
    return [key for _, key in sorted(idle)]
