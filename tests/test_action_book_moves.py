"""ActionBook.set_state: the platform's two moves (scheduled -> acknowledged at a window's start,
acknowledged -> completed after it) take a short path when the action is the oldest in its
state; each case where that path must not apply still leaves every listing true."""

from __future__ import annotations

import pickle
from datetime import datetime, timezone

from amps_sim.simulator.actions import ACTION_STATES, Action, ActionBook

T0 = datetime(2026, 5, 8, tzinfo=timezone.utc)


def _action(i: int, device: str) -> Action:
    return Action(id=f"act_{i:03d}", device_id=device, command="charge", parameters={}, execution="scheduled",
                  created_at=T0, state="scheduled")


def _book(devices: list[str]) -> tuple[ActionBook, list[Action]]:
    book = ActionBook()
    actions = [_action(i, device) for i, device in enumerate(devices)]
    for action in actions:
        book.add(action)
    return book, actions


def _assert_listings(book: ActionBook, everything: list[Action]) -> None:
    """Every listing (tenant and each device, any state) is a plain filter, in creation order."""
    for device in (None, *sorted({a.device_id for a in everything})):
        for state in (None, *ACTION_STATES):
            expected = [a for a in everything if (device is None or a.device_id == device) and (state is None or a.state == state)]
            selected = book.selection(device, state)
            assert len(selected) == len(expected), (device, state)
            assert selected.page(0, 1000) == expected, (device, state)
            assert selected.page_newest_first(0, 1000) == expected[::-1], (device, state)
            assert selected.page(1, 2) == expected[1:3] and selected.page_newest_first(1, 2) == expected[::-1][1:3]
    for device in {a.device_id for a in everything}:
        assert book.open_for(device) == [a for a in everything if a.device_id == device and not a.terminal]


def test_a_start_out_of_turn_sorts_before_a_newer_acknowledged_action() -> None:
    # The oldest scheduled action starts after a newer one: it heads the scheduled list, but the
    # acknowledged list already ends with a newer number, so it is inserted, not appended.
    book, actions = _book(["dev_a", "dev_b", "dev_c"])
    book.set_state(actions[1], "acknowledged")
    book.set_state(actions[0], "acknowledged")
    assert book.selection(None, "acknowledged").page(0, 10) == [actions[0], actions[1]]
    _assert_listings(book, actions)


def test_a_completion_out_of_turn_sorts_before_a_newer_completed_action() -> None:
    book, actions = _book(["dev_a", "dev_b", "dev_a"])
    for action in actions:
        book.set_state(action, "acknowledged")
    book.set_state(actions[1], "completed")  # not the oldest acknowledged
    book.set_state(actions[2], "completed")  # not the oldest either
    book.set_state(actions[0], "completed")  # the oldest, but older than the completed ones
    assert book.selection(None, "completed").page(0, 10) == actions
    assert book.selection("dev_a", "completed").page(0, 10) == [actions[0], actions[2]]
    _assert_listings(book, actions)


def test_a_completion_behind_an_older_open_action_of_its_device_keeps_that_one_open() -> None:
    # dev_a's oldest open action is still scheduled (a later window) when its newer one, the
    # oldest acknowledged of the tenant, completes: the device's open list keeps the older one.
    book, actions = _book(["dev_a", "dev_a", "dev_b"])
    book.set_state(actions[1], "acknowledged")
    book.set_state(actions[1], "completed")
    assert book.open_for("dev_a") == [actions[0]] and book.has_open("dev_a")
    assert book.selection("dev_a", "completed").page(0, 10) == [actions[1]]
    _assert_listings(book, actions)
    book.set_state(actions[0], "acknowledged")
    book.set_state(actions[2], "acknowledged")
    book.set_state(actions[0], "completed")
    book.set_state(actions[2], "completed")
    _assert_listings(book, actions)
    assert not book.has_open("dev_a") and not book.has_open("dev_b")


def test_a_move_into_the_same_state_changes_nothing() -> None:
    book, actions = _book(["dev_a", "dev_a"])
    book.set_state(actions[0], "scheduled")
    book.set_state(actions[1], "acknowledged")
    book.set_state(actions[1], "acknowledged")
    book.set_state(actions[1], "completed")
    book.set_state(actions[1], "completed")
    _assert_listings(book, actions)
    assert len(book.selection("dev_a", "completed")) == 1 and len(book.selection(None, "scheduled")) == 1


def test_a_fleet_day_in_push_order_keeps_every_listing_true() -> None:
    # The platform's own order, day after day: every move takes the short path.
    book = ActionBook()
    everything: list[Action] = []
    for day in range(3):
        actions = [_action(day * 40 + i, f"dev_{i % 8}") for i in range(40)]
        for action in actions:
            book.add(action)
        everything += actions
        for action in actions:
            book.set_state(action, "acknowledged")
            if action is actions[20]:
                _assert_listings(book, everything)
        for action in actions:
            book.set_state(action, "completed")
        _assert_listings(book, everything)


def test_a_pickled_book_moves_its_own_listings() -> None:
    # The short path reaches the tenant's lists through attributes of the book: a copy must
    # share them with its own listings (not with the original's, nor hold detached copies).
    book, actions = _book(["dev_a", "dev_b", "dev_a", "dev_b", "dev_a"])
    book.set_state(actions[0], "acknowledged")
    copy = pickle.loads(pickle.dumps(book))
    moved = [copy.get(a.id) for a in actions]
    assert all(a is not None for a in moved)
    copied: list[Action] = [a for a in moved if a is not None]
    copy.set_state(copied[1], "cancelled")  # the oldest scheduled, by the general path
    _assert_listings(copy, copied)
    for action in copied[2:]:
        copy.set_state(action, "acknowledged")
    copy.set_state(copied[0], "failed")  # the oldest acknowledged, by the general path
    for action in copied[2:]:
        copy.set_state(action, "completed")
    _assert_listings(copy, copied)
    _assert_listings(book, actions)  # the original did not move
    assert [a.state for a in actions] == ["acknowledged", "scheduled", "scheduled", "scheduled", "scheduled"]


def test_a_busy_listing_pages_from_either_end_of_a_state_actions_pass_through() -> None:
    book, actions = _book([f"dev_{i % 5}" for i in range(300)])
    for action in actions[:120]:
        book.set_state(action, "acknowledged")
    scheduled = book.selection(None, "scheduled")
    assert scheduled.page(0, 3) == actions[120:123] and scheduled.page(170, 50) == actions[290:]
    assert scheduled.page_newest_first(0, 3) == actions[:-4:-1] and scheduled.page_newest_first(178, 5) == actions[121:119:-1]
    assert scheduled.page(180, 5) == [] and scheduled.page_newest_first(180, 5) == []
    acknowledged = book.selection(None, "acknowledged")
    assert acknowledged.page_newest_first(10, 2) == [actions[109], actions[108]]
    _assert_listings(book, actions)
