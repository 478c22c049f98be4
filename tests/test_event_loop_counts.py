"""What the queue reports while its events run and between advances: `len()`, `held()`, `peek()`
and the count `advance_to` returns stay exact whatever a handler does (reads the counts, peeks,
raises, sweeps), after a halt in the middle of an instant's events, and across a snapshot."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone

import pytest

from amps_sim.simulator.clock import PRIORITY_WINDOW_END, Clock

T0 = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)
AT = T0 + timedelta(minutes=1)


class Owner:
    def __init__(self) -> None:
        self.queued = 0


def test_a_handler_reads_the_counts_of_what_still_waits() -> None:
    clock = Clock(T0)
    queue = clock.queue
    seen: list[tuple[int, int]] = []

    def look(_: object) -> None:
        seen.append((len(queue), queue.held()))

    owners = [Owner() for _ in range(4)]
    for owner in owners:
        clock.post(AT, look, None, owner=owner)
    handle = clock.schedule_call(AT, look, None)
    clock.post(AT + timedelta(seconds=1), look, None)
    clock.withdraw(owners[2])  # waits, dead, until its turn (no sweep for one event)
    handle.cancel()
    assert (len(queue), queue.held()) == (4, 6)
    assert clock.advance_to(AT + timedelta(seconds=1)) == 4
    # Each handler runs once its own event has left the queue; the withdrawn owner's event and
    # the cancelled handle leave it (uncounted) when their turn comes.
    assert seen == [(3, 5), (2, 4), (1, 2), (0, 0)]
    assert (len(queue), queue.held()) == (0, 0)


def test_the_count_returned_leaves_out_withdrawn_and_cancelled_events() -> None:
    clock = Clock(T0)
    ran: list[int] = []
    owners = [Owner() for _ in range(10)]
    for n, owner in enumerate(owners):
        clock.post(AT, ran.append, n, owner=owner)
    handles = [clock.schedule_call(AT, ran.append, 100 + n) for n in range(3)]
    for owner in owners[::3]:
        clock.withdraw(owner)
    handles[1].cancel()
    assert clock.advance_to(AT, halt=lambda: len(ran) == 3) == 3
    assert clock.advance_to(AT + timedelta(hours=1)) == 5
    assert ran == [1, 2, 4, 5, 7, 8, 100, 102]


def test_a_handler_that_raises_has_been_taken_and_the_rest_wait_in_order() -> None:
    clock = Clock(T0)
    ran: list[int] = []

    def boom(n: int) -> None:
        ran.append(n)
        raise RuntimeError("handler failed")

    clock.post(AT, ran.append, 0)
    clock.post(AT, boom, 1)
    clock.post(AT, ran.append, 2)
    clock.post(AT, boom, 3)
    with pytest.raises(RuntimeError):
        clock.advance_to(AT)
    assert ran == [0, 1] and len(clock.queue) == 2 and clock.queue.held() == 2
    assert clock.queue.peek() == AT
    with pytest.raises(RuntimeError):
        clock.advance_to(AT)
    assert ran == [0, 1, 2, 3] and len(clock.queue) == 0 and clock.queue.peek() is None
    assert clock.advance_to(AT + timedelta(seconds=1)) == 0 and ran == [0, 1, 2, 3]


def test_peek_in_a_handler_sees_the_next_live_event() -> None:
    clock = Clock(T0)
    queue = clock.queue
    seen: list[object] = []
    owners = [Owner() for _ in range(3)]

    def first(_: object) -> None:
        for owner in owners:
            clock.withdraw(owner)
        seen.append(queue.peek())  # the rest of this instant is withdrawn: the next instant
        seen.append((len(queue), queue.held()))

    def later(tag: object) -> None:
        seen.append(tag)
        seen.append(queue.peek())

    clock.post(AT, first, None)
    for owner in owners:
        clock.post(AT, seen.append, "withdrawn", owner=owner)
    clock.post(AT + timedelta(seconds=1), later, "later")
    clock.post(AT + timedelta(seconds=1), later, "last")
    assert clock.advance_to(AT + timedelta(seconds=1)) == 3
    assert seen == [AT + timedelta(seconds=1), (2, 2), "later", AT + timedelta(seconds=1), "last", None]
    assert clock.queue.held() == 0


def test_halts_inside_one_instant_take_each_event_once_whatever_is_filed_between() -> None:
    clock = Clock(T0)
    ran: list[str] = []
    for n in range(6):
        clock.post(AT, ran.append, f"e{n}")
    counts = []
    target = AT + timedelta(hours=1)
    counts.append(clock.advance_to(target, halt=lambda: len(ran) == 1))
    # Between advances: an event ahead of the rest of the instant, and one after it.
    clock.post(AT, ran.append, "window end", PRIORITY_WINDOW_END)
    clock.post(AT, ran.append, "after")
    assert clock.queue.peek() == AT and (len(clock.queue), clock.queue.held()) == (7, 7)
    counts.append(clock.advance_to(target, halt=lambda: len(ran) == 4))
    counts.append(clock.advance_to(target, halt=lambda: len(ran) == 5))
    counts.append(clock.advance_to(target))
    assert ran == ["e0", "window end", "e1", "e2", "e3", "e4", "e5", "after"]
    assert counts == [1, 3, 1, 3] and clock.queue.held() == 0


def test_a_snapshot_taken_after_a_halt_runs_the_rest_of_the_instant_once() -> None:
    from amps_sim.simulator.persistence.snapshot import dump_state, load_state

    clock = Clock(T0)
    ran: list[int] = []
    owners = [Owner() for _ in range(5)]
    for n, owner in enumerate(owners):
        clock.post(AT, ran.append, n, owner=owner)
    assert clock.advance_to(AT, halt=lambda: len(ran) == 2) == 2
    restored, restored_ran, restored_owners = load_state(dump_state((clock, ran, owners), {}), {})
    assert (len(restored.queue), restored.queue.held()) == (3, 3)
    assert pickle.loads(pickle.dumps(restored.queue)).held() == 3
    restored.withdraw(restored_owners[3])
    assert restored.advance_to(AT + timedelta(seconds=1)) == 2
    assert restored_ran == [0, 1, 2, 4] and restored.queue.held() == 0
    # The original is untouched by its snapshot.
    assert clock.advance_to(AT + timedelta(seconds=1)) == 3 and ran == [0, 1, 2, 3, 4]


def test_a_sweep_between_halts_keeps_the_events_not_yet_taken() -> None:
    clock = Clock(T0)
    ran: list[int] = []
    owners = [Owner() for _ in range(300)]
    for n, owner in enumerate(owners):
        clock.post(AT, ran.append, n, owner=owner)
    assert clock.advance_to(AT, halt=lambda: len(ran) == 10) == 10
    for owner in owners[10:200]:
        clock.withdraw(owner)  # enough to sweep
    # The sweep ran once the withdrawn were half the queue; those withdrawn after it wait, counted.
    assert (len(clock.queue), clock.queue.held()) == (100, 144)
    assert clock.queue.peek() == AT and clock.queue.held() == 100
    assert clock.advance_to(AT + timedelta(seconds=1)) == 100
    assert ran == [*range(10), *range(200, 300)] and clock.queue.held() == 0


def test_peek_after_a_halt_drops_the_withdrawn_events_at_the_head() -> None:
    clock = Clock(T0)
    ran: list[int] = []
    owners = [Owner() for _ in range(6)]
    for n, owner in enumerate(owners):
        clock.post(AT, ran.append, n, owner=owner)
    clock.post(AT + timedelta(seconds=1), ran.append, 99)
    assert clock.advance_to(AT, halt=lambda: len(ran) == 2) == 2
    clock.withdraw(owners[2])
    clock.withdraw(owners[3])
    assert (len(clock.queue), clock.queue.held()) == (3, 5)
    assert clock.queue.peek() == AT and clock.queue.held() == 3
    for owner in owners[4:]:
        clock.withdraw(owner)
    assert clock.queue.peek() == AT + timedelta(seconds=1) and clock.queue.held() == 1
    assert clock.advance_to(AT + timedelta(seconds=1)) == 1 and ran == [0, 1, 99]


def test_peek_in_a_handler_drops_withdrawn_events_of_the_running_instant_once() -> None:
    clock = Clock(T0)
    queue = clock.queue
    seen: list[object] = []
    owners = [Owner() for _ in range(4)]

    def first(_: object) -> None:
        clock.withdraw(owners[0])
        clock.withdraw(owners[1])
        seen.append((queue.peek(), len(queue), queue.held()))

    clock.post(AT, first, None)
    for n, owner in enumerate(owners):
        clock.post(AT, seen.append, n, owner=owner)
    assert clock.advance_to(AT) == 3
    assert seen == [(AT, 2, 2), 2, 3]
    assert (len(queue), queue.held(), queue.peek()) == (0, 0, None)


def test_a_sweep_in_a_handler_weighs_only_what_still_waits() -> None:
    # The events the running instant has already run are out of the count the sweep weighs the
    # withdrawn against: the 65th withdrawn of 100 waiting sweeps, however many ran before.
    clock = Clock(T0)
    queue = clock.queue
    owners = [Owner() for _ in range(100)]
    seen: list[object] = []

    def withdraw_most(_: object) -> None:
        for owner in owners[:70]:
            clock.withdraw(owner)
        seen.append((len(queue), queue.held()))

    for n in range(150):
        clock.post(AT, seen.append, n)
    clock.post(AT, withdraw_most, None)
    for n, owner in enumerate(owners):
        clock.post(AT + timedelta(seconds=1), seen.append, 1000 + n, owner=owner)
    assert clock.advance_to(AT + timedelta(seconds=1)) == 181
    assert seen == [*range(150), (30, 35), *range(1070, 1100)]


def test_a_handler_cannot_advance_the_clock_that_runs_it() -> None:
    from amps_sim.simulator.clock import ClockError

    clock = Clock(T0)
    ran: list[int] = []

    def nested(_: object) -> None:
        ran.append(0)
        clock.advance_to(AT + timedelta(seconds=1))

    clock.post(AT, nested, None)
    clock.post(AT, ran.append, 1)
    with pytest.raises(ClockError):
        clock.advance_to(AT)
    assert clock.advance_to(AT) == 1 and ran == [0, 1]
