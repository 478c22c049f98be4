"""ActionBook: the indexed listings agree with a plain filter over every action, whatever the
order in which actions change state."""

from __future__ import annotations

import random
from datetime import datetime, timezone

from amps_sim.simulator.actions import ACTION_STATES, Action, ActionBook

T0 = datetime(2026, 5, 8, tzinfo=timezone.utc)
NEXT = {"scheduled": ["acknowledged", "cancelled"], "acknowledged": ["completed", "failed"]}


def _action(i: int, device: str) -> Action:
    return Action(id=f"act_{i}", device_id=device, command="charge", parameters={}, execution="scheduled",
                  created_at=T0, state="scheduled")


def _filtered(everything: list[Action], device: str | None, state: str | None) -> list[Action]:
    """What a listing of `device` and `state` (None: any) must hold: a plain filter, in creation order."""
    return [a for a in everything if (device is None or a.device_id == device) and (state is None or a.state == state)]


def test_listings_match_a_plain_filter_after_random_transitions() -> None:
    rng = random.Random(7)
    book = ActionBook()
    everything: list[Action] = []
    for i in range(600):
        action = _action(i, f"dev_{rng.randrange(4)}")
        book.add(action)
        everything.append(action)
        for _ in range(2):
            moving = rng.choice(everything)
            if moving.state in NEXT:
                book.set_state(moving, rng.choice(NEXT[moving.state]))
    for device in (None, "dev_0", "dev_3", "dev_unknown"):
        for state in (None, *ACTION_STATES):
            expected = _filtered(everything, device, state)
            selected = book.selection(device, state)
            assert len(selected) == len(expected)
            for offset, limit in ((0, 10), (5, 3), (len(expected) - 2, 50), (len(expected) + 5, 5)):
                assert selected.page(max(offset, 0), limit) == expected[max(offset, 0) : max(offset, 0) + limit]
                newest = list(reversed(expected))
                assert selected.page_newest_first(max(offset, 0), limit) == newest[max(offset, 0) : max(offset, 0) + limit]
    for device in ("dev_0", "dev_1"):
        assert book.open_for(device) == [a for a in everything if a.device_id == device and not a.terminal]
        assert book.latest_for(device) == [a for a in everything if a.device_id == device][-1]


def test_listings_stay_true_when_actions_leave_their_state_oldest_first() -> None:
    # A fleet's actions fire and complete in the order they were pushed, so they leave the
    # scheduled and acknowledged lists from the front; the listings must still match a filter.
    rng = random.Random(11)
    book = ActionBook()
    everything = [_action(i, f"dev_{i % 3}") for i in range(300)]
    for action in everything:
        book.add(action)
    for step, action in enumerate(everything):
        book.set_state(action, "acknowledged")
        if step % 7 == 3:  # now and then one finishes out of turn
            finishing = rng.choice(everything[: step + 1])
            if finishing.state == "acknowledged":
                book.set_state(finishing, "completed")
        if step % 40 == 39:
            for device in (None, "dev_1"):
                for state in (None, *ACTION_STATES):
                    expected = _filtered(everything, device, state)
                    selected = book.selection(device, state)
                    assert len(selected) == len(expected)
                    assert selected.page(0, 400) == expected
                    assert selected.page(3, 5) == expected[3:8]
                    assert selected.page_newest_first(2, 6) == list(reversed(expected))[2:8]
    for action in everything:
        if action.state == "acknowledged":
            book.set_state(action, "completed")
    assert len(book.selection(None, "acknowledged")) == 0 and book.selection(None, "acknowledged").page(0, 10) == []
    assert book.selection(None, "completed").page(0, 1000) == everything


def test_action_id_tails_match_random_choice_including_redraws_and_snapshots() -> None:
    # Ids for a seed stay what they were when they came from rng.choice, character by character:
    # the draws are taken in batches, a draw out of the alphabet's range (62 or 63) must be
    # redrawn exactly as Random.choice redraws it, and a snapshot taken mid-batch continues it.
    import pickle

    from amps_sim.simulator.platform import _ID_ALPHABET, IdDraws

    redrawn = 0
    for seed in range(120):
        draws, slow = IdDraws(random.Random(seed)), random.Random(seed)
        for n in range(150):
            probe = random.Random()
            probe.setstate(slow.getstate())
            redrawn += any(probe.getrandbits(6) >= 62 for _ in range(10))
            assert draws.text(10) == "".join(slow.choice(_ID_ALPHABET) for _ in range(10))
            if n == 70:
                draws = pickle.loads(pickle.dumps(draws))
    assert redrawn > 1000  # the redraw path was exercised, across batch ends too, not only the fast one


def test_action_ids_carry_their_serial_in_issue_order_across_serial_blocks() -> None:
    # The serial's first four characters are kept between ids and change every 3,844 ids; each
    # id still spells its own serial, so ids sort as text in the order they were issued.
    from amps_sim.simulator.clock import Clock
    from amps_sim.simulator.platform import _SERIAL_ALPHABET, Platform

    platform = Platform(Clock(datetime(2026, 5, 8, tzinfo=timezone.utc)), random.Random(5), {})
    platform._serial = 3844 * 3 - 20
    ids = [platform._new_id() for _ in range(3844 + 40)]
    base = len(_SERIAL_ALPHABET)
    for n, action_id in enumerate(ids, start=3844 * 3 - 19):
        digits = "".join(_SERIAL_ALPHABET[n // base**p % base] for p in range(5, -1, -1))
        assert action_id[:10] == "act_" + digits, (n, action_id)
    assert ids == sorted(ids)


def test_past_the_serial_wrap_an_id_already_issued_is_drawn_again() -> None:
    # Serials repeat after 62**6 ids; only then can a new id meet an old one, and then the
    # random tail is drawn again until the id is new.
    import pickle

    from amps_sim.simulator.actions import Action
    from amps_sim.simulator.clock import Clock
    from amps_sim.simulator.platform import _SERIAL_WRAP, Platform

    now = datetime(2026, 5, 8, tzinfo=timezone.utc)
    platform = Platform(Clock(now), random.Random(9), {})
    platform._serial = _SERIAL_WRAP + 40
    ahead = pickle.loads(pickle.dumps(platform))
    first = ahead._new_id()
    taken = Action(first, "dev_0", "charge", {}, "immediate", now, "completed", None, None, None, None, None, now)
    platform.actions.add(taken)
    issued = platform._new_id()
    assert issued != first and issued[:10] == first[:10]  # the same serial, a fresh tail
    platform._serial = _SERIAL_WRAP - 1
    assert platform._new_id()[4:10] == "000000"  # the serial wrapped round


def test_listings_match_a_plain_filter_when_states_change_in_any_direction() -> None:
    # The platform only moves actions forward, but the book takes any move: out of a terminal
    # state and back into one a device's open actions are kept in, too.
    rng = random.Random(23)
    book = ActionBook()
    everything = [_action(i, f"dev_{i % 3}") for i in range(120)]
    for action in everything:
        book.add(action)
    for _ in range(900):
        book.set_state(rng.choice(everything), rng.choice(ACTION_STATES))  # type: ignore[arg-type]
    for device in (None, "dev_0", "dev_2"):
        for state in (None, *ACTION_STATES):
            expected = _filtered(everything, device, state)
            selected = book.selection(device, state)
            assert len(selected) == len(expected)
            assert selected.page(0, 200) == expected
            assert selected.page_newest_first(1, 4) == list(reversed(expected))[1:5]
    for device in ("dev_0", "dev_1", "dev_2"):
        assert book.open_for(device) == [a for a in everything if a.device_id == device and not a.terminal]


def test_a_state_actions_pass_through_keeps_no_dead_entries() -> None:
    # A busy tenant's actions leave `scheduled` and `acknowledged` oldest first; those lists must
    # let go of the numbers they no longer list (emptied, or compacted once half are dead), or
    # a soak test's lists would grow with every action ever pushed.
    book = ActionBook()
    for day in range(5):
        actions = [_action(day * 500 + i, f"dev_{i % 7}") for i in range(500)]
        for action in actions:
            book.add(action)
        for step, action in enumerate(actions):
            book.set_state(action, "acknowledged")
            if step >= 100:
                book.set_state(actions[step - 100], "completed")
            for state in ("scheduled", "acknowledged"):
                listed = book.tenant.by_state[state]
                assert len(listed.items) <= max(64, 2 * len(listed)), (state, len(listed.items), len(listed))
        for action in actions[-100:]:
            book.set_state(action, "completed")
        assert [len(book.tenant.by_state[state].items) for state in ("scheduled", "acknowledged")] == [0, 0]
