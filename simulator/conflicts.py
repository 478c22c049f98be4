"""The Amps conflict rules, as pure functions of the facts they judge.

Two sets of rules decide whether a push may go ahead:

- the action policy (:func:`place`): what a new push does about the device's actions that have
  not finished yet, under the push's `onConflict` strategy: refuse (409 `CONFLICT`, with the
  strategies that would work), cancel them (`cancel_and_replace`, only while none has started),
  or start after the last of them ends (`queue_after`, only when each declares an end);
- the device-side merge (:func:`merge_rows`): how the platform's rows join the rows already in a
  device's native scheduler: never over a foreign row unless told to replace it, never on a
  device that can only replace its list whole while it holds foreign rows, never past the slot
  limit, and never pruning anything to make room;
- the imperative block (:func:`refuse_blocking_imperative`): a direct command is refused while
  another party's row runs on a scheduler that blocks direct writes.

Nothing here reads a clock, a device or the OEM: the platform gathers the facts and acts on the
answer, so each rule can be tested on its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple, Sequence
from zoneinfo import ZoneInfo

from .actions import Action, Execution
from .errors import ApiError
from .native_scheduler import Group

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
RECOVER_WITH_MERGE = ["cancel_and_replace", "manual_clear_via_device_app"]
HOMEOWNER = "homeowner_app"


class Placement(NamedTuple):
    """When a new action runs, and which pending actions it displaces (immutable; a tuple, as
    every push builds one)."""

    execution: Execution
    start: datetime | None
    end: datetime | None
    start_wall: datetime | None
    end_wall: datetime | None
    to_cancel: tuple[Action, ...] = ()


# A Placement from a tuple of all its fields, without the generated `__new__`'s Python frame.
_new_placement = tuple.__new__


def place(
    placement: Placement,
    strategy: str | None,
    pending: Sequence[Action],
    *,
    strategies: Sequence[str],
    zone: ZoneInfo,
    zone_known: bool,
) -> Placement:
    """Apply the conflict policy to a new action placed as asked, given the device's unfinished
    actions and the strategies its profile offers. Refusals are 409 `CONFLICT`."""
    if not pending:
        return placement
    if strategy == "cancel_and_replace":
        # The served hot path (a device re-pushed window after window): one pass over the pending
        # actions, and the new placement built whole (`_replace` is a Python method that goes
        # through a dict of the fields).
        for a in pending:
            if a.state != "scheduled":
                in_flight = [a.id for a in pending if a.state != "scheduled"]
                raise ApiError("CONFLICT", MSG_IN_FLIGHT, {"reason": "action_in_flight", "conflictingActionIds": in_flight})
        return _new_placement(Placement, (*placement[:5], tuple(pending)))
    ids = [a.id for a in pending]
    if strategy is None:
        details: dict[str, Any] = {"reason": "no_strategy_supplied", "conflictingActionIds": ids}
        viable = viable_strategies(strategies, pending)
        if viable:
            details["strategies"] = viable
        raise ApiError("CONFLICT", MSG_CONFLICT, details)
    if any(a.end is None for a in pending):
        raise ApiError(
            "CONFLICT",
            "queue_after needs the conflicting action to declare an end; it is open-ended.",
            {"reason": "queue_after_requires_end", "conflictingActionIds": ids},
        )
    anchor = max(a.end for a in pending if a.end is not None)
    start, end, start_wall, end_wall = placement.start, placement.end, placement.start_wall, placement.end_wall
    if start is None:
        return placement._replace(start=anchor, execution="scheduled")
    if start < anchor:
        shift = anchor - start
        start = anchor
        if end is not None:
            end = end + shift
        if start_wall is not None and end_wall is not None:
            start_wall, end_wall = shift_walls(start_wall, end_wall, shift, start, end, zone=zone, zone_known=zone_known)
    return placement._replace(start=start, end=end, start_wall=start_wall, end_wall=end_wall)


def viable_strategies(strategies: Sequence[str], pending: Sequence[Action]) -> list[str]:
    """The profile's strategies that would resolve this conflict, in the profile's order."""
    viable = []
    for name in strategies:
        if name == "cancel_and_replace" and all(a.state == "scheduled" for a in pending):
            viable.append(name)
        if name == "queue_after" and all(a.end is not None for a in pending):
            viable.append(name)
    return viable


def shift_walls(
    start_wall: datetime,
    end_wall: datetime,
    shift: timedelta,
    start: datetime,
    end: datetime | None,
    *,
    zone: ZoneInfo,
    zone_known: bool,
) -> tuple[datetime, datetime]:
    """A queued window's wall clock: read in the plant's zone when it is known, else moved by the
    same span as the instants."""
    if zone_known and end is not None:
        return (
            start.astimezone(zone).replace(tzinfo=None),
            end.astimezone(zone).replace(tzinfo=None),
        )
    return start_wall + shift, end_wall + shift


def merge_rows(
    current: Sequence[Group],
    rows: list[Group],
    *,
    replace_foreign: bool,
    detected_at: str,
    slot_aware: bool,
    limit: int,
) -> list[Group]:
    """The slot-aware merge: the row set to write, or the device-side refusal
    (409 `SCHEDULER_ACTIVE` or `SCHEDULER_FULL`). `detected_at` says when the rows were read
    (`submission_time` or `dispatch_time`)."""
    # One pass sorts the stored rows: the foreign ones (no action marker) the new rows overlap,
    # and the rows that stay (foreign rows clear of the new rows, and the platform's own rows of
    # earlier windows except where the newer intent overlaps them). Every foreign row is looked
    # for again only to refuse a device that replaces its list whole.
    overlapping: list[Group] = []
    kept: list[Group] = []
    for g in current:
        start, end = g.start, g.end
        for r in rows:
            if start <= r.end and r.start <= end:
                action_id = g.action_id
                if action_id is None:
                    overlapping.append(g)
                elif not action_id:
                    kept.append(g)  # an empty marker is not an action's: it stays
                break
        else:
            kept.append(g)
    if not slot_aware:
        foreign = [g for g in current if g.action_id is None]
        if foreign:
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
    if overlapping and not replace_foreign:
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
    merged = kept + rows
    if len(merged) > limit:
        raise ApiError(
            "SCHEDULER_FULL",
            f"The device has {len(current)} of {limit} schedule slots in use; this window needs {len(merged)} in all.",
            {"existingGroupCount": len(current), "maxGroupCount": limit, "requiredGroupCount": len(merged)},
        )
    return merged


def refuse_blocking_imperative(running: list[Group]) -> None:
    """Refuse a direct command (409 `SCHEDULER_ACTIVE`, at submission) while these foreign rows
    run; the homeowner can also clear their own rows in their app."""
    if not running:
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


def _views(groups: list[Group]) -> list[dict[str, Any]]:
    """Rows for an error's details, in time order whatever order the device read them back in."""
    return [g.to_view() for g in sorted(groups, key=lambda g: (g.start, g.end))]
