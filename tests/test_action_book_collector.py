"""ActionBook and the garbage collector: the book's indexes hold numbers, not actions, so a full
collection visits a retained action once (from `rows`), and reads hand back the very Action."""

from __future__ import annotations

import gc
import pickle
import types
from datetime import datetime, timezone

from amps_sim.simulator.actions import Action, ActionBook

T0 = datetime(2026, 5, 8, tzinfo=timezone.utc)


def _action(i: int, device: str, state: str = "scheduled") -> Action:
    return Action(id=f"act_{i:04d}", device_id=device, command="charge", parameters={"mode": "charge"},
                  execution="scheduled", created_at=T0, state=state)  # type: ignore[arg-type]


def _fleet_day(book: ActionBook, count: int, first: int) -> list[Action]:
    actions = [_action(first + i, f"dev_{i % 5}") for i in range(count)]
    for action in actions:
        book.add(action)
    for action in actions:
        book.set_state(action, "acknowledged")
    for action in actions:
        book.set_state(action, "completed")
    return actions


def _holders(action: Action, *known: object) -> list[object]:
    """What refers to `action`, apart from the test's own `known` containers and frames."""
    skip = {id(holder) for holder in known}
    return [holder for holder in gc.get_referrers(action) if id(holder) not in skip and not isinstance(holder, types.FrameType)]


def test_a_retained_action_is_referenced_by_the_book_once() -> None:
    book = ActionBook()
    actions = _fleet_day(book, 40, 0)
    for at in (0, 17, 39):
        held = _holders(actions[at], actions)
        assert len(held) == 1 and held[0] is book.rows
    # The id map holds numbers: a dict of strings and ints, which the collector never tracks.
    assert not gc.is_tracked(book.by_id)
    # A growing list holds numbers in an array: the collector visits none of its entries (at
    # most the array's type).
    for items in (book.tenant.every.items, book.tenant.by_state["completed"].items, book.devices["dev_1"].every.items):
        assert len(items) >= 8 and all(isinstance(referent, type) for referent in gc.get_referents(items))


def test_an_open_action_is_also_held_by_its_device_open_list_until_it_ends() -> None:
    book = ActionBook()
    action = _action(1, "dev_a")
    book.add(action)
    assert book.open_for("dev_a") == [action] and book.has_open("dev_a")
    held = _holders(action)
    assert len(held) == 2 and {id(holder) for holder in held} == {id(book.rows), id(book.devices["dev_a"].open)}
    book.set_state(action, "acknowledged")
    assert book.open_for("dev_a") == [action]
    book.set_state(action, "completed")
    assert book.open_for("dev_a") == [] and not book.has_open("dev_a")
    assert _holders(action) == [book.rows]


def test_open_actions_leave_in_any_order() -> None:
    book = ActionBook()
    first, second, third = (_action(i, "dev_a") for i in range(3))
    for action in (first, second, third):
        book.add(action)
    book.set_state(second, "cancelled")
    assert book.open_for("dev_a") == [first, third]
    book.set_state(third, "acknowledged")
    book.set_state(third, "failed")
    assert book.open_for("dev_a") == [first]
    book.set_state(first, "cancelled")
    assert book.open_for("dev_a") == [] and not book.has_open("dev_a")


def test_reads_hand_back_the_same_action_objects() -> None:
    book = ActionBook()
    actions = _fleet_day(book, 12, 0)
    for action in actions:
        assert book.get(action.id) is action and book[action.id] is action and action.id in book
    assert book.get("act_missing") is None and "act_missing" not in book
    assert list(book) == actions and len(book) == 12
    page = book.selection(None, "completed").page_newest_first(0, 5)
    assert all(a is b for a, b in zip(page, reversed(actions[-5:]), strict=True))
    latest = book.latest_for("dev_4")
    assert latest is actions[-1 - (11 - 9)]  # dev_4 holds actions 4 and 9; 9 is the newest


def test_a_book_survives_pickling_with_its_listings() -> None:
    book = ActionBook()
    _fleet_day(book, 30, 0)
    more = [_action(100 + i, f"dev_{i % 3}") for i in range(6)]
    for action in more:
        book.add(action)
    book.set_state(more[2], "acknowledged")
    copy = pickle.loads(pickle.dumps(book))
    for device in (None, "dev_0", "dev_2"):
        for state in (None, "scheduled", "acknowledged", "completed"):
            original = [a.record() for a in book.selection(device, state).page(0, 100)]
            assert [a.record() for a in copy.selection(device, state).page(0, 100)] == original
    assert [a.id for a in copy.open_for("dev_2")] == [a.id for a in book.open_for("dev_2")]
    # The copy's listings resolve to the copy's own actions.
    assert copy.get(more[0].id) is copy.selection(None, "scheduled").page(0, 1)[0]
