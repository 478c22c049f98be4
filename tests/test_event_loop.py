"""The clock's event loop takes a bucket's events in turn; what a handler does to the queue while
it runs (withdrawing events, which may sweep the queue, or filing new ones) is seen at once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from amps_sim.simulator.clock import PRIORITY_WINDOW_END, Clock

T0 = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)


class Owner:
    def __init__(self) -> None:
        self.queued = 0


def test_a_sweep_in_a_handler_leaves_the_running_bucket_with_only_its_live_events() -> None:
    clock = Clock(T0)
    at = T0 + timedelta(minutes=1)
    owners = [Owner() for _ in range(300)]
    ran: list[int] = []

    def withdraw_most(i: int) -> None:
        ran.append(i)
        for n, owner in enumerate(owners):
            if n % 3:  # two of every three: enough to sweep the queue
                clock.withdraw(owner)

    clock.post(at, withdraw_most, -1)
    for n, owner in enumerate(owners):
        clock.post(at, ran.append, n, owner=owner)
        clock.post(at + timedelta(seconds=1), ran.append, 1000 + n, owner=owner)
    assert clock.queue.held() == 601
    assert clock.advance_to(at + timedelta(seconds=1)) == 1 + 2 * 100
    kept = [n for n in range(300) if n % 3 == 0]
    assert ran == [-1, *kept, *(1000 + n for n in kept)]
    assert len(clock.queue) == 0 and clock.queue.held() == 0


def test_a_sweep_that_empties_the_running_bucket_goes_on_with_the_next() -> None:
    clock = Clock(T0)
    at = T0 + timedelta(minutes=1)
    owners = [Owner() for _ in range(100)]
    ran: list[object] = []

    def withdraw_all(tag: str) -> None:
        ran.append(tag)
        for owner in owners:
            clock.withdraw(owner)
        ran.append(clock.now)

    clock.post(at, withdraw_all, "first")
    for n, owner in enumerate(owners):
        clock.post(at, ran.append, n, owner=owner)
    clock.post(at + timedelta(seconds=5), ran.append, "later")
    assert clock.advance_to(at + timedelta(minutes=1)) == 2
    assert ran == ["first", at, "later"]
    assert clock.now == at + timedelta(minutes=1) and clock.queue.held() == 0


def test_an_event_filed_ahead_of_the_running_bucket_runs_next() -> None:
    clock = Clock(T0)
    at = T0 + timedelta(minutes=1)
    ran: list[str] = []

    def first(tag: str) -> None:
        ran.append(tag)
        clock.post(at, ran.append, "window end filed while running", PRIORITY_WINDOW_END)
        clock.post(at, ran.append, "filed while running")

    clock.post(at, first, "first")
    clock.post(at, ran.append, "second")
    assert clock.advance_to(at) == 4
    assert ran == ["first", "window end filed while running", "second", "filed while running"]


def test_a_halt_stops_at_the_event_and_the_next_advance_takes_the_rest_of_its_bucket() -> None:
    clock = Clock(T0)
    at = T0 + timedelta(minutes=1)
    ran: list[int] = []
    for n in range(5):
        clock.post(at, ran.append, n)
    assert clock.advance_to(at + timedelta(hours=1), halt=lambda: len(ran) == 2) == 2
    assert ran == [0, 1] and clock.now == at
    assert clock.advance_to(at + timedelta(hours=1)) == 3
    assert ran == [0, 1, 2, 3, 4] and clock.now == at + timedelta(hours=1)
