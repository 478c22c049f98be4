"""The Amps platform: push validation, the conflict engine, dispatch, cleanup and cancel.

One :class:`Platform` serves one tenant. It owns the action records and talks to devices only
through their :class:`~simulator.oem.OemGateway`. Every state change runs either inside a
request (synchronously, so concurrent requests on the event loop cannot interleave within it)
or as an event on the tenant's clock.
"""

from __future__ import annotations

import random
import string
from datetime import datetime, timedelta
from typing import Any, Callable

from .actions import Action, ActionBook
from .battery import Drive
from .clock import PRIORITY_WINDOW_END, Clock
from .device import Device, drive_for_command, group_for_drive
from .errors import ApiError, failure_result, format_instant
from .native_scheduler import PLATFORM_OWNER, Group
from .oem import ManagedDevice, OemFailure, OemGateway, SchedulerBlocked
from .timewindow import resolve_window, wall_rows, wall_to_instant
from .validation import PushRequest

DISPATCH_RETRY_DELAY = timedelta(seconds=10)
DISPATCH_MAX_ATTEMPTS = 3
CLEANUP_RETRY_DELAY = timedelta(seconds=30)
CLEANUP_MAX_ATTEMPTS = 20
RECOVER_WITH_MERGE = ["cancel_and_replace", "manual_clear_via_device_app"]
HOMEOWNER = "homeowner_app"
_ID_ALPHABET = string.ascii_letters + string.digits
# Digits then letters in ASCII order, so a serial written with them sorts as text in issue order.
_SERIAL_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
_SERIAL_WIDTH = 6

MSG_CONFLICT = (
    "A conflicting action is already pending for this device. Provide onConflict to resolve "
    "automatically, or cancel the existing action."
)
MSG_IN_FLIGHT = (
    "The conflicting action is already in progress and cannot be cancelled. Wait for it to complete or fail."
)
MSG_BLOCKING_IMPERATIVE = (
    "The device's native scheduler is running another party's program now, and the OEM refuses direct "
    "commands while it runs."
)


class Platform:
    def __init__(self, clock: Clock, rng: random.Random, devices: dict[str, ManagedDevice]) -> None:
        self.clock = clock
        self.rng = rng
        self.devices = devices
        # Indexed so that push, read, cancel and list cost the same after 100,000 actions as after 10.
        self.actions = ActionBook()
        # Per device, the windowed actions whose rows the platform wrote and has not yet removed.
        self.rows_written: dict[str, set[str]] = {}
        self._serial = 0
        # Called with each action that reaches `completed` or `failed` (webhooks listen here).
        self.terminal_observers: list[Callable[[Action], None]] = []

    # ----------------------------------------------------------------- reads
    def managed_device(self, device_id: str) -> ManagedDevice:
        managed = self.devices.get(device_id)
        if managed is None:
            raise ApiError("DEVICE_NOT_FOUND", f"Device '{device_id}' was not found.")
        return managed

    def action(self, action_id: str) -> Action:
        action = self.actions.get(action_id)
        if action is None:
            raise ApiError("NOT_FOUND", f"Action '{action_id}' was not found.")
        return action

    @staticmethod
    def capabilities(device: Device) -> dict[str, Any]:
        # A device's profile and power never change, so its capabilities are built once.
        if device.capabilities_view is None:
            device.capabilities_view = Platform._build_capabilities(device)
        return device.capabilities_view

    @staticmethod
    def _build_capabilities(device: Device) -> dict[str, Any]:
        commands: dict[str, Any] = {}
        for name, cap in device.profile.commands.items():
            params = {
                pname: {
                    "unit": prange.unit,
                    "min": prange.min,
                    "max": prange.max if prange.max is not None else device.battery.max_power_kw,
                }
                for pname, prange in cap.parameters.items()
            }
            commands[name] = {"parameters": params, "execution": list(cap.execution)}
        return commands

    def device_read(self, device_id: str) -> dict[str, Any]:
        managed = self.managed_device(device_id)
        device = managed.device
        now = self.clock.now
        state = device.reading(now)
        if managed.faults.offline:
            state["status"] = "offline"
        latest = self.actions.latest_for(device_id)
        return {
            "id": device.id,
            "type": "battery",
            "profile": device.profile.name,
            "commands": self.capabilities(device),
            "conflictStrategies": list(device.profile.conflict_strategies),
            "state": state,
            "settings": {
                "scheduler_enabled": bool(device.scheduler and device.scheduler.enabled),
                "timeZone": device.tz.key if device.tz_known else None,
            },
            "lastAction": latest.summary() if latest is not None else None,
        }

    def list_actions(self, device_id: str | None, state: str | None, limit: int, offset: int) -> dict[str, Any]:
        selected = self.actions.selection(device_id, state)
        # Newest first. Creation order is (createdAt, id) order: the clock never runs back and ids
        # carry their issue order (see _new_id), so the index pages backwards without sorting.
        page = selected.page_newest_first(offset, limit)
        return {"actions": [a.record() for a in page], "total": len(selected), "limit": limit, "offset": offset}

    # ------------------------------------------------------------------ push
    def push(self, device_id: str, request: PushRequest) -> Action:
        managed = self.managed_device(device_id)
        device = managed.device
        now = self.clock.now
        command = request.action.command
        caps = self.capabilities(device)
        cap = caps.get(command)
        if cap is None:
            raise ApiError(
                "UNSUPPORTED_MODE",
                f"Command '{command}' is not supported by device '{device_id}'.",
                {"command": command, "deviceCapabilities": caps},
            )
        values = self._validate_parameters(command, cap, request.action.parameters or {})

        start_text, end_text = request.action.start, request.action.end
        # Presence decides the shape: an empty `start` is a malformed time, not an immediate push.
        has_start, has_end = start_text is not None, end_text is not None
        execution = "windowed" if has_start and has_end else "scheduled" if has_start else "immediate"
        profile = device.profile
        wall_clock = profile.native_scheduler and profile.wall_clock_schedule
        if end_text is not None and start_text is None:
            resolve_window(start_text, end_text, now=now, zone=device.tz, zone_known=device.tz_known, wall_clock_device=wall_clock)
        if execution not in cap["execution"]:
            raise ApiError(
                "EXECUTION_NOT_SUPPORTED",
                f"Command '{command}' cannot run {execution} on device '{device_id}'.",
                {"requestedExecution": execution, "supportedExecution": cap["execution"]},
            )
        window = resolve_window(
            start_text, end_text, now=now, zone=device.tz, zone_known=device.tz_known, wall_clock_device=wall_clock
        )
        start, end = window.start, window.end
        start_wall, end_wall = window.start_wall, window.end_wall

        strategy = request.onConflict
        conflicts = self.actions.open_for(device_id)
        to_cancel: list[Action] = []
        if conflicts:
            ids = [a.id for a in conflicts]
            if strategy is None:
                details: dict[str, Any] = {"reason": "no_strategy_supplied", "conflictingActionIds": ids}
                viable = self._viable_strategies(device, conflicts)
                if viable:
                    details["strategies"] = viable
                raise ApiError("CONFLICT", MSG_CONFLICT, details)
            if strategy == "cancel_and_replace":
                in_flight = [a.id for a in conflicts if a.state != "scheduled"]
                if in_flight:
                    raise ApiError("CONFLICT", MSG_IN_FLIGHT, {"reason": "action_in_flight", "conflictingActionIds": in_flight})
                to_cancel = conflicts
            else:
                if any(a.end is None for a in conflicts):
                    raise ApiError(
                        "CONFLICT",
                        "queue_after needs the conflicting action to declare an end; it is open-ended.",
                        {"reason": "queue_after_requires_end", "conflictingActionIds": ids},
                    )
                anchor = max(a.end for a in conflicts if a.end is not None)
                if start is None:
                    start, execution = anchor, "scheduled"
                elif start < anchor:
                    shift = anchor - start
                    start = anchor
                    if end is not None:
                        end = end + shift
                    if start_wall is not None and end_wall is not None:
                        start_wall, end_wall = self._shift_walls(device, start_wall, end_wall, shift, start, end)

        if execution == "immediate" and strategy != "cancel_and_replace":
            self._imperative_preflight(managed)
        drive = drive_for_command(command, target=values.get("target"), power_kw=values.get("power"), reserve=values.get("reserve"))
        if execution == "windowed" and device.scheduler is not None and profile.foreign_state_read:
            assert start_wall is not None and end_wall is not None
            rows = self._rows(drive, start_wall, end_wall, action_id="(candidate)")
            try:
                _, current = managed.gateway.read_scheduler()
            except OemFailure:
                current = None  # unreadable now: the dispatch-time merge still guards the write
            if current is not None:
                self._merge(device, current, rows, strategy == "cancel_and_replace", "submission_time")

        for old in to_cancel:
            self._cancel(old, now)
        action = Action(
            id=self._new_id(),
            device_id=device_id,
            command=command,
            parameters=self._stored_parameters(command, request.action.parameters or {}),
            execution=execution,  # type: ignore[arg-type]
            created_at=now,
            updated_at=now,
            state="acknowledged" if execution == "immediate" else "scheduled",
            on_conflict=strategy,
            start=start,
            end=end,
            start_wall=start_wall,
            end_wall=end_wall,
        )
        self.actions.add(action)
        if execution == "windowed" and wall_clock and not device.tz_known and start_wall is not None and start is not None:
            self._note_drift(managed, action)
        if execution == "immediate":
            self._dispatch(action)
        else:
            assert start is not None
            action.pending.append(self.clock.schedule(start, lambda: self._fire(action)))
        return action

    def _validate_parameters(self, command: str, cap: dict[str, Any], params: dict[str, Any]) -> dict[str, float]:
        allowed = cap["parameters"]
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ApiError(
                "UNSUPPORTED_PARAMETER",
                f"Command '{command}' does not take parameter(s): {', '.join(unknown)}.",
                {"unsupportedParameters": unknown, "deviceCapabilities": {command: cap}},
            )
        values: dict[str, float] = {}
        for name, quantity in params.items():
            spec = allowed[name]
            if quantity.unit != spec["unit"]:
                raise ApiError(
                    "UNSUPPORTED_UNIT",
                    f"Parameter '{name}' is given in '{quantity.unit}'; this device takes '{spec['unit']}'.",
                    {"parameter": name, "providedUnit": quantity.unit, "supportedUnits": [spec["unit"]]},
                )
            if not spec["min"] <= quantity.value <= spec["max"]:
                raise self._out_of_range(name, quantity.value, spec["min"], spec["max"], spec["unit"])
            values[name] = float(quantity.value)
        # The device refuses a discharge floor below the on-grid reserve (minSocOnGrid <= fdSoc).
        if command == "discharge" and "target" in values and "reserve" in values and values["reserve"] > values["target"]:
            spec = allowed["reserve"]
            raise self._out_of_range("reserve", params["reserve"].value, spec["min"], values["target"], spec["unit"])
        return values

    @staticmethod
    def _out_of_range(name: str, value: float, low: float, high: float, unit: str) -> ApiError:
        return ApiError(
            "PARAMETER_OUT_OF_RANGE",
            f"Parameter '{name}' must lie between {low:g} and {high:g} {unit}.",
            {"parameter": name, "value": value, "min": low, "max": high, "unit": unit},
        )

    @staticmethod
    def _stored_parameters(command: str, params: dict[str, Any]) -> dict[str, Any]:
        stored: dict[str, Any] = {"mode": command}
        for name, quantity in params.items():
            stored[name] = {"value": quantity.value, "unit": quantity.unit}
        return stored

    @staticmethod
    def _viable_strategies(device: Device, conflicts: list[Action]) -> list[str]:
        viable = []
        for name in device.profile.conflict_strategies:
            if name == "cancel_and_replace" and all(a.state == "scheduled" for a in conflicts):
                viable.append(name)
            if name == "queue_after" and all(a.end is not None for a in conflicts):
                viable.append(name)
        return viable

    @staticmethod
    def _shift_walls(
        device: Device, start_wall: datetime, end_wall: datetime, shift: timedelta, start: datetime, end: datetime | None
    ) -> tuple[datetime, datetime]:
        if device.tz_known and end is not None:
            return (
                start.astimezone(device.tz).replace(tzinfo=None),
                end.astimezone(device.tz).replace(tzinfo=None),
            )
        return start_wall + shift, end_wall + shift

    def _new_id(self) -> str:
        """`act_` + a 6-character serial + 10 random characters.

        The serial makes ids sort (as text) in the order they were issued, so "newest first by
        createdAt, then id" is also the order of creation when two actions share an instant.
        """
        self._serial += 1
        serial, digits = self._serial, []
        for _ in range(_SERIAL_WIDTH):
            serial, digit = divmod(serial, len(_SERIAL_ALPHABET))
            digits.append(_SERIAL_ALPHABET[digit])
        prefix = "act_" + "".join(reversed(digits))
        while True:
            candidate = prefix + random_text(self.rng, _ID_ALPHABET, 10)
            if candidate not in self.actions:
                return candidate

    def _owns(self, group: Group, device_id: str) -> bool:
        """A row is the platform's when it carries the marker of one of its actions on this device."""
        action = self.actions.get(group.action_id) if group.action_id is not None else None
        return action is not None and action.device_id == device_id

    def _imperative_preflight(self, managed: ManagedDevice) -> None:
        """Refuse a direct command at submission while a foreign row runs on a blocking scheduler.

        Only when the device's reported settings say the scheduler is on (what GET /battery shows)
        does the platform spend an OEM call on the foreign-state read; with the flag off there is
        nothing that could block the write. An unreadable device is let through: the write itself
        still meets the OEM's refusal (seed 002's path).
        """
        device = managed.device
        profile = device.profile
        scheduler = device.scheduler
        if scheduler is None or not scheduler.enabled:
            return
        if not (profile.foreign_state_read and profile.blocks_imperative_while_scheduled):
            return
        try:
            enabled, current = managed.gateway.read_scheduler()
        except OemFailure:
            return
        minute = device.local_minute(self.clock.now)
        running = [g for g in current if g.covers(minute) and not self._owns(g, device.id)]
        if not enabled or not running:
            return
        strategies = ["cancel_and_replace"]
        if any(g.owner == HOMEOWNER for g in running):
            strategies.append("manual_clear_via_device_app")
        raise ApiError(
            "SCHEDULER_ACTIVE",
            MSG_BLOCKING_IMPERATIVE,
            {
                "reason": "foreign_scheduler_blocking_imperative",
                "detectedAt": "submission_time",
                "recoveryStrategies": strategies,
                "foreignGroups": _views(running),
            },
        )

    def _note_drift(self, managed: ManagedDevice, action: Action) -> None:
        assert action.start is not None and action.start_wall is not None
        effective = wall_to_instant(action.start_wall, managed.device.tz)
        drift = effective - action.start
        if drift == timedelta(0):
            return
        minutes = int(drift.total_seconds() // 60)
        managed.warnings.append(
            {
                "kind": "time_drift",
                "actionId": action.id,
                "message": (
                    f"The platform writes wall-clock {action.start_wall:%H:%M} for this window, which the plant in "
                    f"{managed.device.tz.key} reaches at {format_instant(effective)}, {minutes:+d} min from the instant the "
                    "client meant."
                ),
                "intendedStart": format_instant(action.start),
                "effectiveStart": format_instant(effective),
                "driftMinutes": minutes,
            }
        )

    # ------------------------------------------------------------ native rows
    @staticmethod
    def _rows(drive: Drive, start_wall: datetime, end_wall: datetime, *, action_id: str) -> list[Group]:
        return [
            group_for_drive(drive, first, last, owner=PLATFORM_OWNER, action_id=action_id)
            for first, last in wall_rows(start_wall, end_wall)
        ]

    @staticmethod
    def _merge(device: Device, current: list[Group], rows: list[Group], replace: bool, detected_at: str) -> list[Group]:
        """The slot-aware merge: the row set to write, or the device-side refusal."""
        assert device.scheduler is not None
        foreign = [g for g in current if g.action_id is None]
        if foreign and not device.profile.slot_aware_merge:
            raise ApiError(
                "SCHEDULER_ACTIVE",
                "This device's scheduler can only be replaced whole, and it holds rows the platform does not own.",
                {
                    "reason": "foreign_scheduler_groups_present",
                    "detectedAt": detected_at,
                    "recoveryStrategies": ["manual_clear_via_device_app"],
                    "foreignGroups": _views(foreign),
                },
            )
        overlapping = [g for g in foreign if any(g.overlaps(r) for r in rows)]
        if overlapping and not replace:
            raise ApiError(
                "SCHEDULER_ACTIVE",
                "The device's native scheduler holds rows from another party that overlap this window.",
                {
                    "reason": "foreign_scheduler_window_overlap",
                    "detectedAt": detected_at,
                    "recoveryStrategies": list(RECOVER_WITH_MERGE),
                    "foreignGroups": _views(overlapping),
                },
            )
        # Platform rows of earlier windows give way to the newer intent where they overlap it.
        kept = [g for g in current if g not in overlapping and not (g.action_id and any(g.overlaps(r) for r in rows))]
        merged = kept + rows
        limit = device.scheduler.max_group_count
        if len(merged) > limit:
            raise ApiError(
                "SCHEDULER_FULL",
                f"The device has {len(current)} of {limit} schedule slots in use; this window needs {len(merged)} in all.",
                {"existingGroupCount": len(current), "maxGroupCount": limit, "requiredGroupCount": len(merged)},
            )
        return merged

    # ------------------------------------------------------- lifecycle events
    def _at(self, action: Action, delay_s: float, handler: Callable[[], None]) -> None:
        action.pending.append(self.clock.schedule(self.clock.now + timedelta(seconds=delay_s), handler))

    def _fire(self, action: Action) -> None:
        if action.state != "scheduled":
            return
        self.actions.set_state(action, "acknowledged")
        action.touch(self.clock.now)
        self._dispatch(action)

    def _dispatch(self, action: Action) -> None:
        now = self.clock.now
        action.attempts += 1
        managed = self.devices.get(action.device_id)
        if managed is None:
            self._fail(action, "DEVICE_NOT_FOUND", "The device was removed before the action could run.", None)
            return
        latencies = managed.device.profile.latencies
        if action.attempts == 1:
            self._at(action, latencies.acknowledge_s, lambda: self._acknowledge(action))
        drive = drive_for_command(
            action.command,
            target=_value(action.parameters, "target"),
            power_kw=_value(action.parameters, "power"),
            reserve=_value(action.parameters, "reserve"),
        )
        try:
            if action.execution == "windowed" and managed.device.scheduler is not None:
                self._write_window(managed, action, drive, now)
            elif action.execution == "windowed":
                previous = managed.device.imperative
                managed.gateway.write_mode(drive, now)
                assert action.end is not None
                self.clock.schedule(action.end, lambda: self._revert(managed, action, previous, drive, 1), PRIORITY_WINDOW_END)
            else:
                gateway = managed.gateway
                if managed.device.scheduler is not None:
                    self._clear_for_direct(managed, gateway, action, now)
                gateway.write_mode(drive, now)
        except ApiError as refusal:
            code, message, result = refusal.code, refusal.message, failure_result(refusal.code, refusal.message, refusal.details)
            delay = latencies.complete_s
        except SchedulerBlocked as blocked:
            code, message, result, delay = blocked.code, blocked.message, None, latencies.reject_s
        except OemFailure as failure:
            if failure.retryable and action.attempts < DISPATCH_MAX_ATTEMPTS:
                action.pending.append(self.clock.schedule(now + DISPATCH_RETRY_DELAY, lambda: self._dispatch(action)))
                return
            code, message = failure.code, failure.message
            result, delay = failure_result(code, message, {"attempts": action.attempts}), latencies.complete_s
        else:
            self._at(action, latencies.complete_s, lambda: self._complete(action))
            return
        self._at(action, delay, lambda: self._fail(action, code, message, result))

    def _clear_for_direct(self, managed: ManagedDevice, gateway: OemGateway, action: Action, now: datetime) -> None:
        """Before a direct write: remove the platform's own rows left by earlier windows (and the
        flag if the platform set it), so only foreign rows or someone else's flag can block it.
        Under cancel_and_replace the flag goes off whoever set it; foreign rows stay stored."""
        device_id = action.device_id
        replace = action.on_conflict == "cancel_and_replace"
        if not replace and not self.rows_written.get(device_id):
            return
        enabled, current = gateway.read_scheduler()
        remaining = [g for g in current if not self._owns(g, device_id)]
        if len(remaining) != len(current):
            gateway.write_groups(remaining, now)
        self.rows_written.pop(device_id, None)
        if enabled and (replace or managed.flag_set_by_platform):
            gateway.set_scheduler_enabled(False, now)

    def _write_window(self, managed: ManagedDevice, action: Action, drive: Drive, now: datetime) -> None:
        assert action.start_wall is not None and action.end_wall is not None and action.end is not None
        gateway = managed.gateway
        enabled, current = gateway.read_scheduler()
        rows = self._rows(drive, action.start_wall, action.end_wall, action_id=action.id)
        merged = self._merge(managed.device, current, rows, action.on_conflict == "cancel_and_replace", "dispatch_time")
        gateway.write_groups(merged, now)
        self.rows_written.setdefault(action.device_id, set()).add(action.id)
        if not enabled:
            gateway.set_scheduler_enabled(True, now)
        if not action.cleanup_scheduled:
            action.cleanup_scheduled = True
            self.clock.schedule(action.end, lambda: self._cleanup(managed, action, 1), PRIORITY_WINDOW_END)

    def _acknowledge(self, action: Action) -> None:
        if action.acknowledged_at is None:
            action.acknowledged_at = self.clock.now
            action.touch(self.clock.now)

    def _complete(self, action: Action) -> None:
        if action.state != "acknowledged":
            return
        self.actions.set_state(action, "completed")
        action.completed_at = self.clock.now
        action.touch(self.clock.now)
        self._notify_terminal(action)

    def _fail(self, action: Action, code: str, message: str, result: dict[str, Any] | None) -> None:
        if action.terminal:
            return
        now = self.clock.now
        self.actions.set_state(action, "failed")
        action.error_code = code
        action.error_message = message
        action.result = result
        action.completed_at = now
        action.touch(now)
        self._notify_terminal(action)

    def _notify_terminal(self, action: Action) -> None:
        for observer in self.terminal_observers:
            observer(action)

    def _cleanup(self, managed: ManagedDevice, action: Action, attempt: int) -> None:
        """Remove this action's rows at window end; idempotent, retried on OEM failures."""
        if self.devices.get(action.device_id) is not managed:
            return
        now = self.clock.now
        gateway = managed.gateway
        try:
            enabled, current = gateway.read_scheduler()
            remaining = [g for g in current if g.action_id != action.id]
            if len(remaining) != len(current):
                gateway.write_groups(remaining, now)
            self.rows_written.get(action.device_id, set()).discard(action.id)
            if enabled and managed.flag_set_by_platform and not any(g.action_id for g in remaining):
                gateway.set_scheduler_enabled(False, now)
        except OemFailure:
            if attempt < CLEANUP_MAX_ATTEMPTS:
                self.clock.schedule(now + CLEANUP_RETRY_DELAY, lambda: self._cleanup(managed, action, attempt + 1))

    def _revert(self, managed: ManagedDevice, action: Action, previous: Drive, ours: Drive, attempt: int) -> None:
        """End of a window on a device without a native scheduler: restore the earlier mode."""
        if self.devices.get(action.device_id) is not managed or managed.device.imperative != ours:
            return
        now = self.clock.now
        try:
            managed.gateway.write_mode(previous, now)
        except OemFailure:
            if attempt < CLEANUP_MAX_ATTEMPTS:
                self.clock.schedule(now + CLEANUP_RETRY_DELAY, lambda: self._revert(managed, action, previous, ours, attempt + 1))

    # ---------------------------------------------------------------- cancel
    def cancel(self, action_id: str) -> Action:
        action = self.action(action_id)
        if action.state != "scheduled":
            raise ApiError("ACTION_NOT_CANCELLABLE", f"Action in state '{action.state}' cannot be cancelled")
        self._cancel(action, self.clock.now)
        return action

    def _cancel(self, action: Action, now: datetime) -> None:
        self.actions.set_state(action, "cancelled")
        action.touch(now)
        action.drop_pending()

    def forget_device(self, device_id: str) -> None:
        """A device left the world: pending work on it ends."""
        now = self.clock.now
        self.rows_written.pop(device_id, None)
        for action in self.actions.open_for(device_id):
            if action.state == "scheduled":
                self._cancel(action, now)
            elif action.state == "acknowledged":
                action.drop_pending()
                self._fail(action, "DEVICE_NOT_FOUND", "The device was removed while the action was in flight.", None)


def random_text(rng: random.Random, alphabet: str, length: int) -> str:
    """`length` characters drawn as `rng.choice(alphabet)` draws them, in the same sequence (the
    same ids for the same seed), without a method call and a bit count per character.

    `Random.choice` takes `getrandbits(k)` for the alphabet's bit length `k` and draws again
    while the value is out of range; this does the same, inline."""
    size = len(alphabet)
    bits = size.bit_length()
    draw = rng.getrandbits
    out = []
    for _ in range(length):
        value = draw(bits)
        while value >= size:
            value = draw(bits)
        out.append(alphabet[value])
    return "".join(out)


def _views(groups: list[Group]) -> list[dict[str, Any]]:
    """Rows for an error's details, in time order whatever order the device read them back in."""
    return [g.to_view() for g in sorted(groups, key=lambda g: (g.start, g.end))]


def _value(parameters: dict[str, Any], name: str) -> float | None:
    quantity = parameters.get(name)
    return float(quantity["value"]) if isinstance(quantity, dict) else None

