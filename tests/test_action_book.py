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
            expected = [a for a in everything if (device is None or a.device_id == device) and (state is None or a.state == state)]
            selected = book.selection(device, state)
            assert len(selected) == len(expected)
            for offset, limit in ((0, 10), (5, 3), (len(expected) - 2, 50), (len(expected) + 5, 5)):
                assert selected.page(max(offset, 0), limit) == expected[max(offset, 0) : max(offset, 0) + limit]
                newest = list(reversed(expected))
                assert selected.page_newest_first(max(offset, 0), limit) == newest[max(offset, 0) : max(offset, 0) + limit]
    for device in ("dev_0", "dev_1"):
        assert book.open_for(device) == [a for a in everything if a.device_id == device and not a.terminal]
        assert book.latest_for(device) == [a for a in everything if a.device_id == device][-1]


def test_action_ids_are_drawn_as_random_choice_draws_them() -> None:
    # Ids for a seed stay what they were when they came from rng.choice, character by character.
    from amps_sim.simulator.platform import random_text

    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    for seed in range(20):
        fast, slow = random.Random(seed), random.Random(seed)
        for _ in range(50):
            assert random_text(fast, alphabet, 16) == "".join(slow.choice(alphabet) for _ in range(16))
