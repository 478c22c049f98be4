"""The Amps platform: push validation, the conflict engine, dispatch, cleanup and cancel.

One :class:`Platform` serves one tenant. It owns the action records and talks to devices only
through their :class:`~simulator.oem.OemGateway`. Every state change runs either inside a
request (synchronously, so concurrent requests on the event loop cannot interleave within it)
or as an event on the tenant's clock.
"""

from __future__ import annotations

import math
import random
import string
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Sequence

from . import conflicts
from .actions import Action, ActionBook
from .battery import Drive
from .clock import PRIORITY_NORMAL, PRIORITY_WINDOW_END, Clock
from .device import Device, drive_for_command, group_for_drive
from .errors import ApiError, failure_result, format_instant
from .memo import Unsaved, remember
from .native_scheduler import PLATFORM_OWNER, SHARED_MARK, Group
from .oem import ManagedDevice, OemFailure, OemGateway, SchedulerBlocked
from .timewindow import ResolvedWindow, execution_for, resolve_window, wall_rows, wall_to_instant
from .validation import ActionRequest, PushRequest, Quantity

DISPATCH_RETRY_DELAY = timedelta(seconds=10)
DISPATCH_MAX_ATTEMPTS = 3
CLEANUP_RETRY_DELAY = timedelta(seconds=30)
CLEANUP_MAX_ATTEMPTS = 20
_ID_ALPHABET = string.ascii_letters + string.digits
# Digits then letters in ASCII order, so a serial written with them sorts as text in issue order.
_SERIAL_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
_SERIAL_WIDTH = 6
# The serial's six characters as three pairs, each pair one lookup.
_PAIR_SPAN = len(_SERIAL_ALPHABET) ** 2
_SERIAL_PAIRS = [a + b for a in _SERIAL_ALPHABET for b in _SERIAL_ALPHABET]
_SERIAL_WRAP = _PAIR_SPAN**3  # from here on, serials spell what earlier ones spelled
assert _SERIAL_WIDTH == 6
# How many distinct keys a memo of pure results keeps before it starts again.
_MEMO_LIMIT = 1024
# A submission-time merge that passed: the stored rows read back, replace_foreign, slot_aware, limit.
# The three parameter values a drive is built from: target, power and reserve (None when not given).
DriveArgs = tuple[float | None, float | None, float | None]
# What `Platform._dues` holds before the first dispatch (never used: no instant is None).
_NO_DUE = datetime.min.replace(tzinfo=timezone.utc)
# Capabilities views by (profile name, battery power), with the profile they were built from.
_SHARED_CAPABILITIES: dict[tuple[str, float], tuple[Any, dict[str, Any]]] = {}


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
        # The serial's block (its first four characters change every 3,844 ids) and what it
        # spells, and the draws the ids' random tails come from (see `_new_id`).
        self._block = -1
        self._block_prefix = ""
        self._id_draws = IdDraws(rng)
        # Pure computations the pushes of a fleet repeat, remembered (bounded; see _MEMO_LIMIT).
        self._drives: dict[tuple[str, float | None, float | None, float | None], Drive] = {}
        # The window's drive and candidate rows, with the last submission-time merge they passed.
        self._delays: dict[float, timedelta] = {}
        self._window_rows: dict[tuple[int, datetime, datetime], list[Any]] = {}
        self._windows_pushed: dict[tuple[Any, ...], list[Any]] = {}
        self._checked: dict[tuple[Any, ...], tuple[dict[str, Any], DriveArgs, dict[str, Any]]] = {}
        self._placements: dict[int, tuple[ResolvedWindow, conflicts.Placement]] = {}
        # The acknowledge and complete instants of the last dispatch, with the instant and the
        # profile they were worked out for: the actions a fleet dispatches at one instant share
        # them (one datetime each, its hash computed once for the queue's bucket lookups).
        self._dues: tuple[object, object, datetime, datetime] = (None, None, _NO_DUE, _NO_DUE)
        # Room for the HTTP face: the JSON text of records it read lately, by action id, with the
        # revision each was made from (see `web.common.render_record`). Not in snapshots.
        self.record_texts: Unsaved[str, tuple[tuple[Any, ...], bytes]] = Unsaved()
        # Lifecycle events go to the queue straight (see `_record`, `_dispatch`, `_write_window`).
        self._post = clock.queue.post
        self._withdraw = clock.queue.withdraw
        # The lifecycle handlers, bound once: an event holds one of these and its action, so a
        # fleet's events allocate no method object (nor closure) each; fewer objects live across
        # the hours an event waits, which is what the garbage collector's old generation scans.
        self._on_fire = self._fire
        self._on_acknowledge = self._acknowledge
        self._on_complete = self._complete
        self._on_window_end = self._cleanup
        self._on_dispatch = self._redispatch
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
        # A device's profile and power never change, so its capabilities are built once; devices
        # of one profile and one power share the one view (nothing writes to it), so a fleet does
        # not hold a copy of the same nested dicts per device.
        view = device.capabilities_view
        if view is None:
            key = (device.profile.name, device.battery.max_power_kw)
            shared = _SHARED_CAPABILITIES.get(key)
            if shared is None or shared[0] is not device.profile:
                shared = remember(_SHARED_CAPABILITIES, key, (device.profile, Platform._build_capabilities(device)), _MEMO_LIMIT)
            view = device.capabilities_view = shared[1]
        return view

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
        """Accept a push, refusing it at the first rule it breaks, in this order: the command and
        its parameter values; the window's shape, the device's execution modes, the window itself;
        the conflict policy; the preflight against the device's current native state. Then record
        it and dispatch or schedule it."""
        # A ManagedDevice is always true: `managed_device` is called only to refuse an unknown id.
        managed = self.devices.get(device_id) or self.managed_device(device_id)
        device = managed.device
        now = self.clock.now
        wanted = request.action
        command = wanted.command
        cap, drive_args, stored = self._command_values(device_id, device, command, wanted.parameters)
        placement = self._window(device_id, device, wanted, cap, now)
        on_conflict = request.onConflict
        if self.actions.has_open(device_id):
            placement = conflicts.place(
                placement,
                on_conflict,
                self.actions.open_for(device_id),
                strategies=device.profile.conflict_strategies,
                zone=device.tz,
                zone_known=device.tz_known,
            )
        drive = self._preflight(managed, command, drive_args, placement, replace=on_conflict == "cancel_and_replace")
        return self._record(device_id, managed, command, stored, on_conflict, placement, now, drive)

    def _command_values(
        self, device_id: str, device: Device, command: str, params: dict[str, Quantity] | None
    ) -> tuple[dict[str, Any], DriveArgs, dict[str, Any]]:
        """The command's capability on this device; its parameter values, checked against it (the
        three a drive is built from: target, power, reserve); and the record's `parameters`.

        The last two are pure functions of the capability and the parameters, so they are
        remembered (bounded) by the capability and each parameter's name, unit and value; the key
        carries each value's type and sign, so 95 and 95.0 (or 0.0 and -0.0), which read back
        differently, are kept apart. A fleet pushing the same parameters checks them once, and
        its records share one `parameters` dict (records never change it). Only what passed is
        remembered: a refusal is worked out, and raised, every time."""
        caps = device.capabilities_view or self.capabilities(device)
        cap = caps.get(command)
        if cap is None:
            raise ApiError(
                "UNSUPPORTED_MODE",
                f"Command '{command}' is not supported by device '{device_id}'.",
                {"command": command, "deviceCapabilities": caps},
            )
        parts: list[Any] = [command, id(cap)]
        if params:
            for name, quantity in params.items():
                value = quantity.value
                parts += (name, quantity.unit, type(value), value, math.copysign(1, value))
        key = tuple(parts)
        known = self._checked.get(key)
        if known is None or known[0] is not cap:
            given = params or {}
            values = self._validate_parameters(command, cap, given)
            stored: dict[str, Any] = {"mode": command}
            for name, quantity in given.items():
                stored[name] = {"value": quantity.value, "unit": quantity.unit}
            drive_args = (values.get("target"), values.get("power"), values.get("reserve"))
            known = remember(self._checked, key, (cap, drive_args, stored), _MEMO_LIMIT)
        return known

    def _window(self, device_id: str, device: Device, action: ActionRequest, cap: dict[str, Any], now: datetime) -> conflicts.Placement:
        """When the action asks to run: its execution mode (which the device must support) and its
        resolved window."""
        # Presence decides the shape (an empty `start` is a malformed time, not an immediate push);
        # an end without a start is refused before the device's execution modes are consulted.
        start, end = action.start, action.end
        execution = execution_for(start, end)
        if execution not in cap["execution"]:
            raise ApiError(
                "EXECUTION_NOT_SUPPORTED",
                f"Command '{action.command}' cannot run {execution} on device '{device_id}'.",
                {"requestedExecution": execution, "supportedExecution": cap["execution"]},
            )
        wall_clock = device.traits.wall_clock_rows
        window = resolve_window(start, end, now, device.tz, device.tz_known, wall_clock)  # positional: once per push
        # The placement of a window resolve_window remembered is the same every push (the window
        # decides the execution: both follow from the same `start` and `end`): made once, kept
        # with the window it was made from (bounded).
        placed = self._placements.get(id(window))
        if placed is None or placed[0] is not window:
            placement = conflicts.Placement(execution, window.start, window.end, window.start_wall, window.end_wall)
            placed = remember(self._placements, id(window), (window, placement), _MEMO_LIMIT)
        return placed[1]

    def _preflight(
        self, managed: ManagedDevice, command: str, drive_args: DriveArgs, placement: conflicts.Placement, *, replace: bool
    ) -> Drive | None:
        """What the device's native state rules out now is refused now, at submission, rather than
        failing at dispatch: a direct command while a foreign row runs (unless it replaces), a
        window its rows could not be merged into. Returns the window's drive when it built it."""
        execution = placement.execution
        if execution == "immediate" and not replace:
            self._imperative_preflight(managed)
        device = managed.device
        scheduler = device.scheduler
        if execution != "windowed" or scheduler is None or not device.traits.foreign_state_read:
            return None
        start_wall, end_wall = placement.start_wall, placement.end_wall
        assert start_wall is not None and end_wall is not None
        # The window's entry (its drive, rows and last merge), found by the push's own values:
        # the same entry the dispatch finds by the drive.
        key = (command, drive_args, start_wall, end_wall)
        window = self._windows_pushed.get(key)
        if window is None:
            window = self._window_rows_of(self._drive(command, *drive_args), start_wall, end_wall)
            if drive_args[1] != 0:  # a zero power is not remembered (see `_drive`)
                remember(self._windows_pushed, key, window, _MEMO_LIMIT)
        drive: Drive = window[2]
        read = self._optional_read(managed)
        if read is None:
            return drive  # unreadable now: the dispatch-time merge still guards the write
        current = read[1]
        slot_aware, limit = device.traits.slot_aware_merge, scheduler.max_group_count
        last = window[1]  # the window's last merge (see `_merge`)
        if last is None or last[0] is not current or last[1] != replace or last[2] != slot_aware or last[3] != limit:
            self._merge(window, current, replace, slot_aware, limit, "submission_time")
        return drive

    def _drive(self, command: str, target: float | None, power_kw: float | None, reserve: float | None) -> Drive:
        """`drive_for_command`, remembered: a Drive is immutable and a pure function of these four.
        A zero power is not remembered: 0.0 and -0.0 are equal as keys but not as written."""
        if power_kw == 0:
            return drive_for_command(command, target=target, power_kw=power_kw, reserve=reserve)
        key = (command, target, power_kw, reserve)
        drive = self._drives.get(key)
        if drive is None:
            drive = remember(self._drives, key, drive_for_command(command, target=target, power_kw=power_kw, reserve=reserve), _MEMO_LIMIT)
        return drive

    def _record(
        self,
        device_id: str,
        managed: ManagedDevice,
        command: str,
        parameters: dict[str, Any],
        on_conflict: str | None,
        placement: conflicts.Placement,
        now: datetime,
        drive: Drive | None,
    ) -> Action:
        """Cancel what the push displaces, store the action, and dispatch it now or at its start."""
        execution, start, end, start_wall, end_wall, to_cancel = placement
        for old in to_cancel:
            self._cancel(old, now)
        action = Action(
            self._new_id(),
            device_id,
            command,
            parameters,
            execution,
            now,
            "acknowledged" if execution == "immediate" else "scheduled",
            on_conflict,
            start,
            end,
            start_wall,
            end_wall,
            now,
        )
        # Set after, not passed as `drive=`: a keyword in the call costs a dict (about 1,200
        # instructions a push on Python 3.11).
        action.drive = drive
        self.actions.add(action)
        device = managed.device
        if execution == "windowed" and not device.tz_known and device.traits.wall_clock_rows and start_wall is not None and start is not None:
            self._note_drift(managed, action)
        if execution == "immediate":
            self._dispatch(action, now)
        else:
            assert start is not None
            # A start is never before `now` (resolve_window refuses one), so the event goes to the
            # queue straight rather than through `Clock.post`, whose one extra is moving a past
            # instant up to `now`.
            self._post(start, self._on_fire, action, PRIORITY_NORMAL, action)
        return action

    def _validate_parameters(self, command: str, cap: dict[str, Any], params: dict[str, Any]) -> dict[str, float]:
        allowed = cap["parameters"]
        unknown = sorted(set(params) - set(allowed)) if not params.keys() <= allowed.keys() else None
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

    def _new_id(self) -> str:
        """`act_` + a 6-character serial + 10 random characters.

        The serial makes ids sort (as text) in the order they were issued, so "newest first by
        createdAt, then id" is also the order of creation when two actions share an instant.
        """
        serial = self._serial = self._serial + 1
        block, low = divmod(serial, _PAIR_SPAN)
        if block != self._block:
            high, middle = divmod(block, _PAIR_SPAN)
            self._block_prefix = "act_" + _SERIAL_PAIRS[high % _PAIR_SPAN] + _SERIAL_PAIRS[middle]
            self._block = block
        prefix = self._block_prefix + _SERIAL_PAIRS[low]
        draws = self._id_draws
        candidate = prefix + draws.text(10)
        if serial < _SERIAL_WRAP:
            return candidate  # the serial alone tells it from every id issued before
        taken = self.actions.by_id
        while candidate in taken:  # past the wrap, a serial repeats: the random tail must differ
            candidate = prefix + draws.text(10)
        return candidate

    @staticmethod
    def _optional_read(managed: ManagedDevice) -> tuple[bool, Sequence[Group]] | None:
        """The scheduler read of a check that can do without it (the submission-time checks):
        None when the OEM refuses it, or is known to refuse it without a call being spent
        (`OemGateway.reads_refused`)."""
        gateway = managed.gateway
        if gateway.reads_refused():
            return None
        try:
            return gateway.read_scheduler()
        except OemFailure:
            return None

    def _owns(self, group: Group, device_id: str) -> bool:
        """A row is the platform's when it carries the marker of one of its actions on this device."""
        managed = self.devices.get(device_id)
        scheduler = managed.device.scheduler if managed is not None else None
        marker = scheduler.action_of(group) if scheduler is not None else group.action_id
        action = self.actions.get(marker) if marker is not None else None
        return action is not None and action.device_id == device_id

    def _imperative_preflight(self, managed: ManagedDevice) -> None:
        """Refuse a direct command at submission while a foreign row runs on a blocking scheduler.

        Only when the device's reported settings say the scheduler is on (what GET /battery shows)
        does the platform spend an OEM call on the foreign-state read; with the flag off there is
        nothing that could block the write. An unreadable device is let through: the write itself
        still meets the OEM's refusal (seed 002's path).
        """
        device = managed.device
        traits = device.traits
        scheduler = device.scheduler
        if scheduler is None or not scheduler.enabled:
            return
        if not (traits.foreign_state_read and traits.blocks_imperative_while_scheduled):
            return
        read = self._optional_read(managed)
        if read is None:
            return
        enabled, current = read
        if not enabled:
            return
        minute = device.local_minute(self.clock.now)
        conflicts.refuse_blocking_imperative([g for g in current if g.covers(minute) and not self._owns(g, device.id)])

    def _note_drift(self, managed: ManagedDevice, action: Action) -> None:
        assert action.start is not None and action.start_wall is not None
        effective = wall_to_instant(action.start_wall, managed.device.tz)
        drift = effective - action.start
        if drift == timedelta(0):
            return
        minutes = int(drift.total_seconds() // 60)
        managed.warn(
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
    def _window_rows_of(self, drive: Drive, start_wall: datetime, end_wall: datetime) -> list[Any]:
        """`[rows, last, drive]` for a drive and window (remembered, bounded): the rows it writes, marked
        `SHARED_MARK` (one set of row objects for every device and action with this drive and
        window; which action wrote them on a device is its scheduler's record,
        `NativeScheduler.mark`), and the last merge they passed (see `_merge`)."""
        # By the drive's identity (`_drive` hands out one object per drive; a Drive's own hash is
        # a Python call): the entry holds the drive, so the id is not reused while it is kept.
        key = (id(drive), start_wall, end_wall)
        entry = self._window_rows.get(key)
        if entry is None or entry[2] is not drive:
            spans = wall_rows(start_wall, end_wall)  # one row, or two across midnight
            rows = tuple(group_for_drive(drive, first, last, owner=PLATFORM_OWNER, action_id=SHARED_MARK) for first, last in spans)
            entry = remember(self._window_rows, key, [rows, None, drive], _MEMO_LIMIT)
        return entry

    @staticmethod
    def _merge(
        window: list[Any], current: Sequence[Group], replace: bool, slot_aware: bool, limit: int, detected_at: str
    ) -> tuple[Group, ...]:
        """The row set a window's rows merge into `current` with (`conflicts.merge_rows`), or its
        refusal; the window keeps it as its last merge, `window[1]`. The merge is a pure function
        of the stored rows (immutable; a fleet's devices read back one stored tuple, see
        `foxess.adapter.read_order`), the window's rows and three flags, so the window keeps the
        last one that passed, holding the stored tuple so that its identity names it: the
        submission-time check and the dispatch then cost one merge for a fleet, whose devices
        store the one merged tuple. The two callers look at the kept merge first, inline (once
        a push and once a dispatch): `last[0] is current` and the three flags equal, then
        `last[4]` is the merge. `detected_at` only words a refusal, and a refusal is worked out,
        and raised, every time."""
        merged = tuple(
            conflicts.merge_rows(
                current, list(window[0]), replace_foreign=replace, detected_at=detected_at, slot_aware=slot_aware, limit=limit
            )
        )
        window[1] = (current, replace, slot_aware, limit, merged)
        return merged

    # ------------------------------------------------------- lifecycle events
    def _at(self, action: Action, now: datetime, delay_s: float, handler: Callable[[Action], None]) -> None:
        """Run `handler(action)` `delay_s` after `now`, withdrawn with the action's other events."""
        delay = self._delays.get(delay_s)
        if delay is None:
            delay = self._delays[delay_s] = timedelta(seconds=delay_s)
        self.clock.post(now + delay, handler, action, owner=action)

    def _fire(self, action: Action) -> None:
        if action.state != "scheduled":
            return
        now = self.clock.now
        self.actions.set_state(action, "acknowledged")
        action.updated_at = now
        self._dispatch(action, now)

    def _redispatch(self, action: Action) -> None:
        """A dispatch retried after a retryable OEM failure."""
        self._dispatch(action, self.clock.now)

    def _dispatch(self, action: Action, now: datetime) -> None:
        action.attempts += 1
        managed = self.devices.get(action.device_id)
        if managed is None:
            self._fail(action, "DEVICE_NOT_FOUND", "The device was removed before the action could run.", None)
            return
        device = managed.device
        profile = device.profile
        # `_at` for the acknowledgement and the completion, written out: both instants are
        # worked out once per dispatch instant and profile, and the events go to the queue
        # straight (they are never due before `now`: latencies are not negative).
        dues = self._dues
        if dues[0] is not now or dues[1] is not profile:
            latencies = profile.latencies
            dues = self._dues = (
                now,
                profile,
                now + timedelta(seconds=latencies.acknowledge_s),
                now + timedelta(seconds=latencies.complete_s),
            )
        if action.attempts == 1:
            self._post(dues[2], self._on_acknowledge, action, PRIORITY_NORMAL, action)
        drive = action.drive
        if drive is None:
            parameters = action.parameters
            drive = action.drive = self._drive(
                action.command, _value(parameters, "target"), _value(parameters, "power"), _value(parameters, "reserve")
            )
        try:
            if action.execution == "windowed" and device.scheduler is not None:
                self._write_window(managed, action, drive, now)
            elif action.execution == "windowed":
                previous = device.imperative
                managed.gateway.write_mode(drive, now)
                assert action.end is not None
                self.clock.schedule(action.end, lambda: self._revert(managed, action, previous, drive, 1), PRIORITY_WINDOW_END)
            else:
                gateway = managed.gateway
                if device.scheduler is not None:
                    self._clear_for_direct(managed, gateway, action, now)
                gateway.write_mode(drive, now)
        except ApiError as refusal:
            code, message, result = refusal.code, refusal.message, failure_result(refusal.code, refusal.message, refusal.details)
            delay = profile.latencies.complete_s
        except SchedulerBlocked as blocked:
            code, message, result, delay = blocked.code, blocked.message, None, profile.latencies.reject_s
        except OemFailure as failure:
            if failure.retryable and action.attempts < DISPATCH_MAX_ATTEMPTS:
                self.clock.post(now + DISPATCH_RETRY_DELAY, self._on_dispatch, action, owner=action)
                return
            code, message = failure.code, failure.message
            result, delay = failure_result(code, message, {"attempts": action.attempts}), profile.latencies.complete_s
        else:
            self._post(dues[3], self._on_complete, action, PRIORITY_NORMAL, action)
            return
        self._at(action, now, delay, lambda failed: self._fail(failed, code, message, result))

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
        start_wall, end_wall, end = action.start_wall, action.end_wall, action.end
        assert start_wall is not None and end_wall is not None and end is not None
        device = managed.device
        scheduler = device.scheduler
        assert scheduler is not None
        gateway = managed.gateway
        enabled, current = gateway.read_scheduler()
        window = self._window_rows_of(drive, start_wall, end_wall)
        replace = action.on_conflict == "cancel_and_replace"
        slot_aware, limit = device.traits.slot_aware_merge, scheduler.max_group_count
        last = window[1]  # the window's last merge (see `_merge`)
        if last is not None and last[0] is current and last[1] == replace and last[2] == slot_aware and last[3] == limit:
            merged: tuple[Group, ...] = last[4]
        else:
            merged = self._merge(window, current, replace, slot_aware, limit, "dispatch_time")
        gateway.write_groups(merged, now)
        scheduler.mark(window[0], action.id)
        written = self.rows_written.get(action.device_id)
        if written is None:
            written = self.rows_written[action.device_id] = set()
        written.add(action.id)
        if not enabled:
            gateway.set_scheduler_enabled(True, now)
        if not action.cleanup_scheduled:
            action.cleanup_scheduled = True
            action.cleanup_device = managed
            # Not filed under the action: the cleanup runs even if the action ends otherwise. A
            # retried dispatch may come after the window's end: then it runs at once (as
            # `Clock.post` would file it).
            self._post(end if end > now else now, self._on_window_end, action, PRIORITY_WINDOW_END, None)

    def _acknowledge(self, action: Action) -> None:
        if action.acknowledged_at is None:
            action.acknowledged_at = action.updated_at = self.clock.now

    def _complete(self, action: Action) -> None:
        if action.state != "acknowledged":
            return
        now = self.clock.now
        self.actions.set_state(action, "completed")
        action.completed_at = action.updated_at = now
        for observer in self.terminal_observers:  # `_notify_terminal`, inline: once a device-day
            observer(action)

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

    def _cleanup(self, action: Action, managed: ManagedDevice | None = None, attempt: int = 1) -> None:
        """Remove this action's rows at window end; idempotent, retried on OEM failures.

        The window-end event passes the action alone: the device rides on it until then."""
        if managed is None:
            riding = action.cleanup_device
            action.cleanup_device = None  # a retained record holds no device
            assert isinstance(riding, ManagedDevice)
            managed = riding
        device_id, action_id = action.device_id, action.id
        if self.devices.get(device_id) is not managed:
            return
        now = self.clock.now
        gateway = managed.gateway
        try:
            enabled, current = gateway.read_scheduler()
            scheduler = managed.device.scheduler
            assert scheduler is not None  # a window's cleanup runs only where its rows were written
            remaining = scheduler.rows_without(current, action_id)
            if len(remaining) != len(current):
                gateway.write_groups(remaining, now)
            written = self.rows_written.get(device_id)
            if written is not None:
                written.discard(action_id)
            # (`managed.flag_set_by_platform`, with the scheduler in hand.)
            if enabled and scheduler.flag_owner == PLATFORM_OWNER and not any(g.action_id for g in remaining):
                gateway.set_scheduler_enabled(False, now)
        except OemFailure:
            if attempt < CLEANUP_MAX_ATTEMPTS:
                self.clock.schedule(now + CLEANUP_RETRY_DELAY, lambda: self._cleanup(action, managed, attempt + 1))

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
        self._withdraw(action)

    def forget_device(self, device_id: str) -> None:
        """A device left the world: pending work on it ends."""
        now = self.clock.now
        self.rows_written.pop(device_id, None)
        for action in self.actions.open_for(device_id):
            if action.state == "scheduled":
                self._cancel(action, now)
            elif action.state == "acknowledged":
                self.clock.withdraw(action)
                self._fail(action, "DEVICE_NOT_FOUND", "The device was removed while the action was in flight.", None)


# Random characters come from the top byte of each 32-bit word the generator gives: its top six
# bits are what `getrandbits(6)` returns for that word, so what `Random.choice` draws from a
# 62-character alphabet. Values 62 and 63 (top bytes 248-255) are out of range: `choice` draws
# again from the next word, so those bytes are deleted from the draws, and what is left is the
# characters `choice` would return, in its order.
_ID_BYTES = bytes(ord(_ID_ALPHABET[b >> 2]) if b >> 2 < len(_ID_ALPHABET) else 0 for b in range(256))
_ID_REDRAWN = bytes(range(62 << 2, 256))
assert len(_ID_ALPHABET) == 62
_ID_WORDS = 640  # words drawn at once: about 62 ids' worth


class IdDraws:
    """Characters of `_ID_ALPHABET` drawn as `rng.choice` draws them, one 32-bit word per draw,
    in the same sequence (so the same ids for the same seed), taken from the generator
    `_ID_WORDS` words at a time. `getrandbits(32 * n)` consumes the generator's next n words,
    the first in the lowest bits: the top byte of word i is byte 4i+3 of its little-endian bytes.

    The pool holds the batch's characters with the redrawn words already dropped, so an id is
    one slice of it. The generator runs ahead of the ids issued by up to one batch; a snapshot
    holds the batch with the generator, so a restored platform continues the same sequence."""

    __slots__ = ("rng", "pool", "at")

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.pool = ""  # the batch's characters not yet issued start at `at`
        self.at = 0

    def __getstate__(self) -> tuple[random.Random, str, int]:
        return self.rng, self.pool, self.at

    def __setstate__(self, state: tuple[random.Random, str, int]) -> None:
        self.rng, self.pool, self.at = state

    def text(self, length: int) -> str:
        at = self.at
        end = at + length
        pool = self.pool
        if end <= len(pool):
            self.at = end
            return pool[at:end]
        kept = pool[at:]
        while True:
            words = _ID_WORDS
            drawn = self.rng.getrandbits(32 * words).to_bytes(4 * words, "little")[3::4]
            pool = self.pool = drawn.translate(_ID_BYTES, _ID_REDRAWN).decode("ascii")
            need = length - len(kept)
            if need <= len(pool):
                self.at = need
                return kept + pool[:need]
            kept += pool


def _value(parameters: dict[str, Any], name: str) -> float | None:
    quantity = parameters.get(name)
    return float(quantity["value"]) if isinstance(quantity, dict) else None

