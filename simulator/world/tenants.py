"""A tenant's world: its clock, its devices, its platform, and the control operations on them."""

from __future__ import annotations

import hashlib
import random
import re
import string
import time
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Annotated, Any, Callable, Literal

from pydantic import Field, StrictBool, StrictStr, TypeAdapter, field_validator

from ..clock import Clock
from ..device import Device, DeviceSpec, GroupSpec
from ..errnos import NativeError
from ..errors import ApiError, format_instant
from ..foxess.adapter import FoxessLink
from ..foxess.cloud import NativeCloud, OemKeyRequest, is_foxess_class, new_key
from ..foxess.quotas import QuotaSpec
from ..native_scheduler import Group
from ..oem import DirectLink, FaultKind, FaultPlan, ManagedDevice, OemLink
from ..platform import Platform
from ..validation import ClosedModel, IsoInstant, JsonInt, NotNull, refusal
from ..webhooks.hub import WebhookHub

MAX_TENANTS = 5000
# One part of a clock step, as the control spec's `by` pattern has it: up to five ASCII digits,
# up to two decimals, a unit. A step has one to four parts.
_SPAN_PART = re.compile(r"([0-9]{1,5})(?:\.([0-9]{1,2}))?([dhms])", re.ASCII)
_SPAN_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_SPAN_MAX_PARTS = 4
# How far one advance may move a clock, and the instants a tenant's clock may show at all (far
# enough from datetime's limits that every horizon and window computed from `now` exists).
# Devices integrate their state lazily on the next read, in closed form per span of constant
# drive (docs/performance.md), so one step stays well inside a client's request timeout.
MAX_ADVANCE = timedelta(days=400)
CLOCK_MIN = datetime(2000, 1, 1, tzinfo=timezone.utc)
CLOCK_MAX = datetime(2200, 1, 1, tzinfo=timezone.utc)


def parse_span(text: str) -> timedelta | None:
    """A clock step such as `90m`, `1.5h`, `2d` or a compound `1h30m15s`; None if it is not one.

    Any size the syntax can write is returned; whether the clock may move that far is the
    caller's question.
    """
    position, parts, hundredths = 0, 0, 0
    for match in _SPAN_PART.finditer(text):
        if match.start() != position:
            return None
        whole, frac, unit = match.groups()
        hundredths += (int(whole) * 100 + int((frac or "").ljust(2, "0"))) * _SPAN_UNITS[unit]
        position = match.end()
        parts += 1
    if position == 0 or position != len(text) or parts > _SPAN_MAX_PARTS:
        return None
    # One hundredth of a second is 10,000 microseconds: exact, no float rounding.
    return timedelta(microseconds=hundredths * 10_000)


def in_clock_range(moment: datetime) -> bool:
    """Whether a tenant's clock may show `moment` (see CLOCK_MIN / CLOCK_MAX)."""
    try:
        return CLOCK_MIN <= moment.astimezone(timezone.utc) < CLOCK_MAX
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        return False


def _clock_range_refusal(what: str, moment: datetime) -> ApiError:
    return ApiError(
        "CLOCK_OUT_OF_RANGE",
        f"{what} must lie from {format_instant(CLOCK_MIN)} up to (not including) {format_instant(CLOCK_MAX)}.",
        {"errors": [{"path": what, "message": f"{moment.isoformat()} is outside the simulator's range"}]},
    )


_KEY_ALPHABET = string.ascii_letters + string.digits

# The host's wall clock, as the server reads it by default: a partial of a C function, so a call
# has no Python frame of its own. `Tenants` knows it by identity (see `Tenants.last_used`).
WALL_NOW: Callable[[], datetime] = partial(datetime.now, timezone.utc)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _from_ns(stamp: int) -> datetime:
    """The aware UTC instant of a `time.time_ns()` reading, as `datetime.now(timezone.utc)` would
    have read it (microseconds, rounded down)."""
    return _EPOCH + timedelta(microseconds=stamp // 1000)


class ClockSpec(ClosedModel):
    mode: Literal["virtual", "realtime"] = "virtual"
    now: Annotated[IsoInstant | None, NotNull] = None
    speed: float = Field(default=1.0, gt=0, le=100_000)

    @field_validator("now")
    @classmethod
    def _in_range(cls, value: datetime | None) -> datetime | None:
        if value is not None and not in_clock_range(value):
            raise refusal(
                "CLOCK_OUT_OF_RANGE",
                f"clock.now must lie from {format_instant(CLOCK_MIN)} up to (not including) {format_instant(CLOCK_MAX)}",
            )
        return value


class TenantSpec(ClosedModel):
    clock: Annotated[ClockSpec | None, NotNull] = None
    devices: list[DeviceSpec] = []
    # The FoxESS cloud's call quotas; None: enforced on realtime clocks only (see simulator.foxess.quotas).
    oemQuotas: QuotaSpec | None = None

    @field_validator("devices")
    @classmethod
    def _unique_ids(cls, devices: list[DeviceSpec]) -> list[DeviceSpec]:
        seen: set[str] = set()
        for device in devices:
            if device.id in seen:
                # As when POST /_sim/devices names an id the tenant has: 409 DEVICE_EXISTS.
                raise refusal("DEVICE_EXISTS", f"device id {device.id!r} appears more than once")
            seen.add(device.id)
        return devices


class AdvanceRequest(ClosedModel):
    by: Annotated[StrictStr | None, NotNull] = None
    to: Annotated[IsoInstant | None, NotNull] = None


class SchedulerWrite(ClosedModel):
    enabled: Annotated[StrictBool | None, NotNull] = None
    owner: StrictStr = Field(default="homeowner_app", min_length=1, max_length=64)
    groups: list[GroupSpec]


class FaultRequest(ClosedModel):
    kind: FaultKind
    times: JsonInt = Field(default=1, ge=1, le=1000)


# A tenant's device specs, written to JSON and read back on reset (see World.__init__).
_DEVICE_SPECS: TypeAdapter[list[DeviceSpec]] = TypeAdapter(list[DeviceSpec])


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
        signing_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.api_key = api_key
        # The creation spec, kept for reset: its clock and quota parts as given, its devices as
        # JSON text. One string rather than a dozen models, dicts and sets per device, which every
        # full pass of the garbage collector would scan for the tenant's life. A device spec holds
        # strings, booleans and numbers only, which JSON carries exactly (`exclude_unset`: read
        # back, each model has the same fields set as the one given).
        self._clock_spec = spec.clock
        self._oem_quotas = spec.oemQuotas
        self._device_specs = _DEVICE_SPECS.dump_json(spec.devices, exclude_unset=True)
        self._seed = seed
        self.created_at = created_at
        self._monotonic = monotonic
        self.native_cloud = NativeCloud()  # outlives resets: the OEM keys issued for this tenant stay valid
        # Outlives resets too: endpoints are account settings; the delivery log starts afresh.
        self.webhooks = WebhookHub(random.Random(f"{seed}:webhooks"), signing_clock or (lambda: self.clock.now))
        # Shared by every device (each holds its own id): no link nor closure per device.
        self._foxess_link = FoxessLink(self.native_cloud)
        self._direct_link = DirectLink()
        self._on_connectivity = self.webhooks.on_connectivity
        self._build(spec.devices)

    def _build(self, device_specs: list[DeviceSpec]) -> None:
        clock_spec = self._clock_spec or ClockSpec()
        start = clock_spec.now or self.created_at
        self.clock = Clock(start, clock_spec.mode, monotonic=self._monotonic, speed=clock_spec.speed)
        self.native_cloud.start(self.clock, self._oem_quotas)
        self.rng = random.Random(self._seed)
        self.devices: dict[str, ManagedDevice] = {}
        self.platform = Platform(self.clock, self.rng, self.devices)
        self.webhooks.attach(self.clock)
        self.platform.terminal_observers.append(self.webhooks.on_action_terminal)
        for device_spec in device_specs:
            self._install(device_spec)

    def reset(self) -> None:
        self._build(_DEVICE_SPECS.validate_json(self._device_specs))

    # ------------------------------------------------------------ devices
    def _install(self, spec: DeviceSpec) -> ManagedDevice:
        if spec.id in self.devices:
            raise ApiError("DEVICE_EXISTS", f"Device '{spec.id}' already exists in this tenant.")
        try:
            device = Device(spec, self.clock.now)
        except ValueError as exc:
            cause = exc.__cause__
            errno = cause.errno if isinstance(cause, NativeError) else 40257
            reason = cause.message if isinstance(cause, NativeError) else str(exc)
            raise ApiError("SCHEDULE_REJECTED", f"The device's schedule was refused: {exc}", {"errno": errno, "reason": reason}) from None
        managed = ManagedDevice(device, FaultPlan(spec.id, self._on_connectivity), link=self._oem_link(device))
        self.devices[spec.id] = managed
        return managed

    def _oem_link(self, device: Device) -> OemLink:
        """How the platform reaches `device`: through this tenant's FoxESS cloud when its profile
        says so, else directly."""
        return self._foxess_link if is_foxess_class(device) else self._direct_link

    def add_device(self, spec: DeviceSpec) -> dict[str, Any]:
        self._install(spec)
        self.webhooks.on_device_added(spec.id)
        return self.device_view(spec.id)

    def remove_device(self, device_id: str) -> None:
        self.platform.managed_device(device_id)
        del self.devices[device_id]
        self.platform.forget_device(device_id)

    def device_view(self, device_id: str) -> dict[str, Any]:
        managed = self.platform.managed_device(device_id)
        view = managed.device.view(self.clock.now)
        if managed.faults.offline:
            view["battery"]["status"] = "offline"
        view["warnings"] = list(managed.warnings)
        view["faults"] = managed.faults.view()
        return view

    def device_views(self) -> list[dict[str, Any]]:
        return [self.device_view(device_id) for device_id in self.devices]

    def write_scheduler(self, device_id: str, write: SchedulerWrite) -> dict[str, Any]:
        """A foreign party (the homeowner's app, another optimiser) rewrites the native schedule."""
        managed = self.platform.managed_device(device_id)
        device = managed.device
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
            device.set_scheduler_enabled(write.enabled, now, by=write.owner)
        return self.device_view(device_id)

    def inject_fault(self, device_id: str, request: FaultRequest) -> dict[str, Any]:
        managed = self.platform.managed_device(device_id)
        managed.faults.add(request.kind, request.times)
        return {"deviceId": device_id, "faults": managed.faults.view()}

    # -------------------------------------------------------------- clock
    def clock_view(self) -> dict[str, Any]:
        return {"now": format_instant(self.clock.now), "mode": self.clock.mode}

    def advance(self, request: AdvanceRequest) -> dict[str, Any]:
        """Advance in one go (webhook attempts that fall due wait in the hub's ready queue)."""
        target = self.advance_target(request)
        processed = self.clock.advance_to(target)
        return {"now": format_instant(self.clock.now), "eventsProcessed": processed}

    def advance_target(self, request: AdvanceRequest) -> datetime:
        """The instant an advance request asks for, refused if the clock cannot go there."""
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
                    f"'{request.by}' is not a duration (examples: 45s, 90m, 1.5h, 2d, 1h30m).",
                    {"errors": [{"path": "by", "message": "not a duration"}]},
                )
            if step > MAX_ADVANCE:
                raise self._too_far("by")
            target = self.clock.now + step
        else:
            assert request.to is not None
            target = request.to
            if not in_clock_range(target):
                raise _clock_range_refusal("to", target)
        # A well-formed step the clock cannot take is refused (422), not malformed (400).
        if target > self.clock.now + MAX_ADVANCE:
            raise self._too_far("to" if request.to is not None else "by")
        if not in_clock_range(target):
            raise _clock_range_refusal("to" if request.to is not None else "by", target)
        if target < self.clock.now:
            raise ApiError(
                "CLOCK_BACKWARDS",
                f"clock cannot go backwards (now {self.clock.now.isoformat()}, asked {target.isoformat()})",
                {"now": format_instant(self.clock.now), "requested": format_instant(target)},
            )
        return target

    @staticmethod
    def _too_far(field: str) -> ApiError:
        return ApiError(
            "CLOCK_OUT_OF_RANGE",
            f"A single advance may move the clock at most {MAX_ADVANCE.days} days.",
            {"errors": [{"path": field, "message": f"more than {MAX_ADVANCE.days} days ahead"}]},
        )


class Tenants:
    """Every world the server holds, by API key. The oldest spare tenants are dropped past a cap."""

    def __init__(
        self,
        rng: random.Random,
        monotonic: Callable[[], float],
        wall_clock: Callable[[], datetime],
        signing_clock: Callable[[], datetime] | None = None,
        *,
        shard: str | None = None,
    ) -> None:
        self._rng = rng
        # Minted into every key (`sk_test_<shard>_...`) so a proxy can route a key to its process.
        self._key_prefix = f"sk_test_{shard}_" if shard else "sk_test_"
        # FoxESS keys must stay UUIDs, so they carry the shard as a hex mark instead.
        self._oem_prefix = shard_oem_mark(shard) if shard else ""
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        # The real wall time webhook attempts are stamped with (svix-timestamp); tests may pin
        # `wall_clock` (where new tenants' clocks start) while receivers check this one.
        self._signing_clock = signing_clock or wall_clock
        # Creation order. None marks a dormant tenant: after a durable server's restart a tenant's
        # key, place, last use, pin and OEM keys are known at once, while its world stays on disk
        # until a request needs it (web/durable.py wakes it before any handler runs).
        self._worlds: OrderedDict[str, World | None] = OrderedDict()
        self.pinned: set[str] = set()  # tenants never evicted or expired (the served world file's)
        self._oem_keys: dict[str, str] = {}  # FoxESS cloud key -> the tenant key it belongs to
        # The wall instant of each tenant's last authenticated request (creation counts as use),
        # read through `last_used` / `used_at`. Every request stamps it, so with the host's wall
        # clock (`WALL_NOW`) the stamp is `time.time_ns()`, an int made a datetime only when read:
        # a tenth of the cost. An injected wall clock (tests pin it) is called and kept as given.
        self._used: dict[str, datetime | int] = {}
        self._stamp: Callable[[], datetime | int] = time.time_ns if wall_clock is WALL_NOW else wall_clock

    @property
    def last_used(self) -> dict[str, datetime]:
        """Each tenant's last use, as a new dict (note a use with :meth:`note_used`)."""
        return {key: _from_ns(used) if type(used) is int else used for key, used in self._used.items()}  # type: ignore[misc]

    def used_at(self, api_key: str) -> datetime | None:
        """The tenant's last use; None for a key the registry does not hold."""
        used = self._used.get(api_key)
        return _from_ns(used) if type(used) is int else used  # type: ignore[return-value]

    def note_used(self, api_key: str, at: datetime) -> None:
        """Record a use of the tenant at `at` (a durable replay restores them so)."""
        self._used[api_key] = at

    def create(self, spec: TenantSpec, api_key: str | None = None, *, pinned: bool = False) -> World:
        key = api_key or self._new_key()
        created_at = self._wall_clock()
        world = World(spec, api_key=key, seed=self._rng.getrandbits(64), created_at=created_at,
                      monotonic=self._monotonic, signing_clock=self._signing_clock)
        self._worlds[key] = world
        self._used[key] = created_at
        if pinned:
            self.pinned.add(key)
        while len(self._worlds) > MAX_TENANTS:
            oldest = next((k for k in self._worlds if k not in self.pinned), None)
            if oldest is None:
                break
            self.delete(oldest)
        return world

    def get(self, api_key: str) -> World | None:
        world = self._worlds.get(api_key)
        if world is not None:
            self._used[api_key] = self._stamp()
        return world

    def delete(self, api_key: str) -> bool:
        """Drop a tenant with its OEM keys; False when there is no such tenant."""
        if api_key not in self._worlds:
            return False
        world = self._worlds.pop(api_key)
        if world is not None:
            oem_keys = list(world.native_cloud.keys)
        else:  # dormant: its world is not here to say which keys it issued
            oem_keys = [oem_key for oem_key, owner in self._oem_keys.items() if owner == api_key]
        for oem_key in oem_keys:
            self._oem_keys.pop(oem_key, None)
        self.pinned.discard(api_key)
        self._used.pop(api_key, None)
        return True

    def __len__(self) -> int:
        return len(self._worlds)

    def worlds(self) -> list[World]:
        """Every tenant in memory, oldest first (dormant ones are not: wake them first)."""
        return [world for world in self._worlds.values() if world is not None]

    def tenant_keys(self) -> list[str]:
        """Every tenant's key, dormant ones included, oldest first."""
        return list(self._worlds)

    def loaded(self, api_key: str) -> World | None:
        """The tenant's world if it is in memory, without counting as a use."""
        return self._worlds.get(api_key)

    def is_dormant(self, api_key: str) -> bool:
        return api_key in self._worlds and self._worlds[api_key] is None

    def dormant_keys(self) -> list[str]:
        return [key for key, world in self._worlds.items() if world is None]

    def hold_dormant(self, keys: list[str]) -> None:
        """Know these tenants (in this order, after any others) without their worlds in memory."""
        for key in keys:
            self._worlds[key] = None

    def wake(self, api_key: str, world: World) -> None:
        """Put a dormant tenant's world in memory, keeping its place in the order."""
        if not self.is_dormant(api_key):
            raise KeyError(f"tenant {api_key!r} is not dormant")
        self._worlds[api_key] = world

    def tenant_for_oem_key(self, key: str) -> str | None:
        """The tenant key a FoxESS cloud key belongs to (dormant tenants included)."""
        return self._oem_keys.get(key)

    def issue_oem_key(self, world: World, request: OemKeyRequest) -> dict[str, str]:
        """A FoxESS cloud key for a party, scoped to some of `world`'s devices."""
        key = new_key(self._rng, self._oem_keys, self._oem_prefix)
        world.native_cloud.issue(key, request, world.devices)
        self._oem_keys[key] = world.api_key
        return {"apiKey": key}

    def world_for_oem_key(self, key: str) -> World | None:
        tenant_key = self._oem_keys.get(key)
        return self.get(tenant_key) if tenant_key is not None else None

    def _new_key(self) -> str:
        while True:
            key = self._key_prefix + "".join(self._rng.choice(_KEY_ALPHABET) for _ in range(24))
            if key not in self._worlds:
                return key


def shard_oem_mark(shard: str) -> str:
    """The first 8 hex digits of every FoxESS key a shard mints (a hash of its name)."""
    return hashlib.sha256(shard.encode()).hexdigest()[:8]


class WorldFile(TenantSpec):
    """A world YAML file (`amps-sim serve --world FILE`): a tenant spec plus the key it answers to."""

    apiKey: StrictStr = Field(default="sk_live_abc123xyz", min_length=1)
