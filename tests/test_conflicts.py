"""The conflict rules on their own: the action policy and the device-side merge, no platform."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from amps_sim.simulator.actions import Action, ActionState
from amps_sim.simulator.conflicts import Placement, merge_rows, place, refuse_blocking_imperative, viable_strategies
from amps_sim.simulator.errors import ApiError
from amps_sim.simulator.native_scheduler import Group

T0 = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)
LONDON = ZoneInfo("Europe/London")
BOTH = ("cancel_and_replace", "queue_after")


def _action(action_id: str, state: ActionState = "scheduled", end: datetime | None = T0 + timedelta(hours=2)) -> Action:
    return Action(id=action_id, device_id="d", command="charge", parameters={}, execution="windowed", created_at=T0,
                  state=state, start=T0 + timedelta(hours=1), end=end)


def _window(start_h: float = 1, end_h: float = 2) -> Placement:
    start, end = T0 + timedelta(hours=start_h), T0 + timedelta(hours=end_h)
    return Placement("windowed", start, end, start.replace(tzinfo=None), end.replace(tzinfo=None))


def _refusal(call: object) -> ApiError:
    assert callable(call)
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value


def _place(placement: Placement, strategy: str | None, pending: list[Action], zone_known: bool = False) -> Placement:
    return place(placement, strategy, pending, strategies=BOTH, zone=LONDON, zone_known=zone_known)


# ---- the action policy --------------------------------------------------------------------------


def test_nothing_pending_leaves_the_placement_alone() -> None:
    asked = _window()
    assert _place(asked, None, []) is asked


def test_no_strategy_is_a_conflict_naming_what_would_work() -> None:
    error = _refusal(lambda: _place(_window(), None, [_action("a1")]))
    assert (error.code, error.status) == ("CONFLICT", 409)
    assert error.details == {"reason": "no_strategy_supplied", "conflictingActionIds": ["a1"], "strategies": list(BOTH)}
    # An open-ended action that has started: neither strategy would work, so none is offered.
    error = _refusal(lambda: _place(_window(), None, [_action("a2", "acknowledged", end=None)]))
    assert error.details == {"reason": "no_strategy_supplied", "conflictingActionIds": ["a2"]}


def test_viable_strategies_keep_the_profiles_order() -> None:
    assert viable_strategies(("queue_after", "cancel_and_replace"), [_action("a")]) == ["queue_after", "cancel_and_replace"]
    assert viable_strategies(BOTH, [_action("a", "acknowledged")]) == ["queue_after"]


def test_cancel_and_replace_displaces_only_actions_that_have_not_started() -> None:
    waiting = [_action("a1"), _action("a2")]
    assert _place(_window(), "cancel_and_replace", waiting).to_cancel == tuple(waiting)
    error = _refusal(lambda: _place(_window(), "cancel_and_replace", [_action("a1"), _action("a2", "acknowledged")]))
    assert error.details == {"reason": "action_in_flight", "conflictingActionIds": ["a2"]}


def test_queue_after_needs_every_pending_action_to_end() -> None:
    error = _refusal(lambda: _place(_window(), "queue_after", [_action("a1"), _action("a2", end=None)]))
    assert error.details == {"reason": "queue_after_requires_end", "conflictingActionIds": ["a1", "a2"]}


def test_queue_after_moves_a_window_to_the_last_end_keeping_its_length() -> None:
    pending = [_action("a1", end=T0 + timedelta(hours=3)), _action("a2", end=T0 + timedelta(hours=4))]
    placed = _place(_window(1, 2), "queue_after", pending)
    assert (placed.start, placed.end) == (T0 + timedelta(hours=4), T0 + timedelta(hours=5))
    # An unknown zone: the wall clock moves by the same span as the instants.
    assert (placed.start_wall, placed.end_wall) == (datetime(2026, 5, 8, 12, 0), datetime(2026, 5, 8, 13, 0))
    assert placed.to_cancel == ()


def test_queue_after_reads_the_wall_clock_in_a_known_zone() -> None:
    placed = _place(_window(1, 2), "queue_after", [_action("a1", end=T0 + timedelta(hours=3))], zone_known=True)
    assert (placed.start_wall, placed.end_wall) == (datetime(2026, 5, 8, 12, 0), datetime(2026, 5, 8, 13, 0))  # BST


def test_queue_after_schedules_an_immediate_push_at_the_last_end() -> None:
    placed = _place(Placement("immediate", None, None, None, None), "queue_after", [_action("a1")])
    assert (placed.execution, placed.start, placed.end) == ("scheduled", T0 + timedelta(hours=2), None)


def test_queue_after_leaves_a_window_that_already_starts_later() -> None:
    asked = _window(5, 6)
    assert _place(asked, "queue_after", [_action("a1")]) == asked


# ---- the device-side merge ----------------------------------------------------------------------


def _row(start_h: int, end_h: int, owner: str = "homeowner_app", action_id: str | None = None) -> Group:
    return Group(start=start_h * 60, end=end_h * 60 - 1, work_mode="ForceCharge", owner=owner, action_id=action_id)


def _merge(current: list[Group], rows: list[Group], *, replace: bool = False, slot_aware: bool = True, limit: int = 8) -> list[Group]:
    return merge_rows(current, rows, replace_foreign=replace, detected_at="dispatch_time", slot_aware=slot_aware, limit=limit)


def test_rows_beside_foreign_rows_are_added_and_nothing_is_pruned() -> None:
    foreign, ours = _row(1, 2), _row(3, 4, "amps", "act")
    assert _merge([foreign], [ours]) == [foreign, ours]


def test_a_foreign_row_in_the_way_is_refused_unless_replacing() -> None:
    foreign, ours = _row(1, 3), _row(2, 4, "amps", "act")
    error = _refusal(lambda: _merge([foreign], [ours]))
    assert (error.code, error.details and error.details["reason"]) == ("SCHEDULER_ACTIVE", "foreign_scheduler_window_overlap")
    assert error.details and error.details["recoveryStrategies"] == ["cancel_and_replace", "manual_clear_via_device_app"]
    assert _merge([foreign], [ours], replace=True) == [ours]


def test_a_whole_list_device_refuses_while_it_holds_foreign_rows() -> None:
    error = _refusal(lambda: _merge([_row(1, 2)], [_row(5, 6, "amps", "act")], slot_aware=False))
    assert error.details and error.details["reason"] == "foreign_scheduler_groups_present"
    assert _merge([_row(1, 2, "amps", "old")], [_row(5, 6, "amps", "act")], slot_aware=False) == [
        _row(1, 2, "amps", "old"), _row(5, 6, "amps", "act")]


def test_earlier_platform_rows_give_way_to_a_newer_overlapping_window() -> None:
    older, newer = _row(1, 3, "amps", "old"), _row(2, 4, "amps", "new")
    assert _merge([older], [newer]) == [newer]


def test_the_slot_limit_is_never_exceeded() -> None:
    current = [_row(h, h + 1) for h in range(0, 8, 2)]
    error = _refusal(lambda: _merge(current, [_row(20, 21, "amps", "act")], limit=4))
    assert (error.code, error.details) == ("SCHEDULER_FULL", {"existingGroupCount": 4, "maxGroupCount": 4, "requiredGroupCount": 5})


# ---- the imperative block -----------------------------------------------------------------------


def test_a_running_foreign_row_blocks_a_direct_command() -> None:
    refuse_blocking_imperative([])  # nothing running: no refusal
    error = _refusal(lambda: refuse_blocking_imperative([_row(7, 9, "octopus_optimiser")]))
    assert (error.code, error.details and error.details["reason"]) == ("SCHEDULER_ACTIVE", "foreign_scheduler_blocking_imperative")
    assert error.details and error.details["recoveryStrategies"] == ["cancel_and_replace"]
    # The homeowner can also clear their own rows in their app.
    error = _refusal(lambda: refuse_blocking_imperative([_row(9, 10), _row(7, 9, "octopus_optimiser")]))
    assert error.details and error.details["recoveryStrategies"] == ["cancel_and_replace", "manual_clear_via_device_app"]
    assert [g["start"] for g in error.details["foreignGroups"]] == ["07:00", "09:00"]  # in time order
