"""The discrete-event clock: order, no polling, never backwards, realtime mapping."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from amps_sim.simulator.clock import PRIORITY_WINDOW_END, Clock, ClockError

T0 = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)


def test_events_run_in_time_order_at_their_own_instant() -> None:
    clock = Clock(T0)
    seen: list[tuple[str, datetime]] = []
    clock.schedule(T0 + timedelta(minutes=5), lambda: seen.append(("b", clock.now)))
    clock.schedule(T0 + timedelta(minutes=1), lambda: seen.append(("a", clock.now)))
    clock.schedule(T0 + timedelta(minutes=5), lambda: seen.append(("c", clock.now)))
    assert clock.advance_to(T0 + timedelta(minutes=10)) == 3
    assert seen == [("a", T0 + timedelta(minutes=1)), ("b", T0 + timedelta(minutes=5)), ("c", T0 + timedelta(minutes=5))]
    assert clock.now == T0 + timedelta(minutes=10)


def test_events_scheduled_by_events_run_in_the_same_advance() -> None:
    clock = Clock(T0)
    seen: list[datetime] = []

    def chain() -> None:
        seen.append(clock.now)
        if len(seen) < 3:
            clock.schedule(clock.now + timedelta(seconds=10), chain)

    clock.schedule(T0 + timedelta(seconds=10), chain)
    assert clock.advance_to(T0 + timedelta(minutes=1)) == 3
    assert seen == [T0 + timedelta(seconds=s) for s in (10, 20, 30)]


def test_cancelled_events_do_not_run_and_virtual_time_stands_still() -> None:
    clock = Clock(T0)
    handle = clock.schedule(T0 + timedelta(seconds=1), lambda: pytest.fail("cancelled event ran"))
    handle.cancel()
    assert clock.sync() == 0 and clock.now == T0
    assert clock.advance_to(T0 + timedelta(hours=1)) == 0


def test_never_backwards() -> None:
    clock = Clock(T0)
    clock.advance_to(T0 + timedelta(hours=1))
    with pytest.raises(ClockError):
        clock.advance_to(T0)


def test_realtime_follows_the_monotonic_source_with_speed() -> None:
    wall = [100.0]
    clock = Clock(T0, "realtime", monotonic=lambda: wall[0], speed=60)
    fired: list[datetime] = []
    clock.schedule(T0 + timedelta(minutes=30), lambda: fired.append(clock.now))
    wall[0] += 20  # 20 s of wall time at 60x = 20 virtual minutes
    clock.sync()
    assert clock.now == T0 + timedelta(minutes=20) and fired == []
    wall[0] += 20
    assert clock.sync() == 1
    assert fired == [T0 + timedelta(minutes=30)] and clock.now == T0 + timedelta(minutes=40)
    # A manual jump moves the anchor: the clock keeps flowing from the new instant.
    clock.advance_to(T0 + timedelta(hours=5))
    wall[0] += 1
    clock.sync()
    assert clock.now == T0 + timedelta(hours=5, minutes=1)


def test_window_ends_run_before_other_events_at_the_same_instant() -> None:
    from amps_sim.simulator.clock import PRIORITY_WINDOW_END

    clock = Clock(T0)
    seen: list[str] = []
    at = T0 + timedelta(hours=1)
    clock.schedule(at, lambda: seen.append("start of the next"))
    clock.schedule(at, lambda: seen.append("end of the first"), PRIORITY_WINDOW_END)
    clock.advance_to(at)
    assert seen == ["end of the first", "start of the next"]


def test_queue_drops_cancelled_and_fired_events() -> None:
    clock = Clock(datetime(2026, 5, 8, tzinfo=timezone.utc))
    ran: list[int] = []
    handles = [clock.schedule(clock.now + timedelta(minutes=i), lambda i=i: ran.append(i)) for i in range(1000)]
    for handle in handles[:900]:
        handle.cancel()
    assert len(clock.queue) == 100
    # Cancelled events are swept out of the heap, not carried until their time comes.
    assert clock.queue.held() <= 2 * 100 + 64
    assert not handles[0].live and handles[950].live
    clock.advance_to(clock.now + timedelta(days=1))
    assert ran == list(range(900, 1000))
    assert clock.queue.held() == 0 and not handles[950].live


def test_events_at_one_instant_keep_their_order_whatever_is_scheduled_while_they_run() -> None:
    # Many events share an instant in a fleet. They run in the order they were scheduled; one
    # scheduled at that instant while they run goes after them, unless it ends a window, which
    # runs before the events still waiting at that instant.
    clock = Clock(T0)
    at = T0 + timedelta(minutes=1)
    seen: list[str] = []

    def first() -> None:
        seen.append("first")
        clock.schedule(at, lambda: seen.append("scheduled while running"))
        clock.schedule(at, lambda: seen.append("window end scheduled while running"), PRIORITY_WINDOW_END)

    clock.schedule(at, first)
    handles = [clock.schedule(at, lambda i=i: seen.append(f"e{i}")) for i in range(5)]
    handles[2].cancel()
    clock.schedule(at + timedelta(seconds=1), lambda: seen.append("later"))
    assert clock.advance_to(at + timedelta(seconds=1)) == 8
    assert seen == ["first", "window end scheduled while running", "e0", "e1", "e3", "e4", "scheduled while running", "later"]
    assert len(clock.queue) == 0 and clock.queue.held() == 0


def test_schedule_call_runs_the_function_with_its_argument_and_cancels_like_any_event() -> None:
    clock = Clock(T0)
    seen: list[tuple[str, datetime]] = []
    clock.schedule_call(T0 + timedelta(seconds=5), lambda tag: seen.append((tag, clock.now)), "kept")
    dropped = clock.schedule_call(T0 + timedelta(seconds=6), lambda tag: seen.append((tag, clock.now)), "dropped")
    assert dropped.live
    dropped.cancel()
    assert not dropped.live and dropped.arg is None  # its argument is released at once
    assert clock.advance_to(T0 + timedelta(minutes=1)) == 1
    assert seen == [("kept", T0 + timedelta(seconds=5))]


def test_pending_events_of_both_kinds_survive_a_snapshot() -> None:
    # Snapshots pickle a tenant whole, its queue included: an event without an argument must
    # still be called without one after loading, and one with an argument with its own.
    from amps_sim.simulator.persistence.snapshot import dump_state, load_state

    clock = Clock(T0)
    seen: list[object] = []
    clock.schedule(T0 + timedelta(seconds=1), lambda: seen.append("no argument"))
    clock.schedule_call(T0 + timedelta(seconds=2), seen.append, "an argument")
    restored, restored_seen = load_state(dump_state((clock, seen), {}), {})
    assert restored.advance_to(T0 + timedelta(minutes=1)) == 2
    assert restored_seen == ["no argument", "an argument"]


def test_quiet_realtime_syncs_follow_the_wall_and_never_skip_an_event() -> None:
    """A sync with nothing due only notes the wall reading; `now` is the same instant the full
    computation gives, and an event is never skipped: neither one scheduled ahead of the one the
    quiet check remembers, nor the remembered one once the wall reaches it."""
    wall = [100.0]
    clock = Clock(T0, "realtime", monotonic=lambda: wall[0], speed=60)
    fired: list[tuple[str, datetime]] = []
    clock.schedule(T0 + timedelta(minutes=30), lambda: fired.append(("late", clock.now)))
    for step in range(1, 25):
        wall[0] += 1  # one wall second: one virtual minute
        assert clock.sync() == 0
        assert clock.now == T0 + timedelta(minutes=step)
    # Scheduled ahead of the remembered head: the next sync past it must run it.
    clock.schedule(T0 + timedelta(minutes=24, seconds=30), lambda: fired.append(("early", clock.now)))
    wall[0] += 1
    assert clock.sync() == 1 and fired == [("early", T0 + timedelta(minutes=24, seconds=30))]
    assert clock.now == T0 + timedelta(minutes=25)
    # The remembered head itself runs as soon as the wall reaches it, to the microsecond.
    wall[0] += 4.999999
    assert clock.sync() == 0
    wall[0] += 0.000001
    assert clock.sync() == 1 and fired[-1] == ("late", T0 + timedelta(minutes=30))
    # Events scheduled against a `now` a quiet sync left pending use the up-to-date `now`.
    wall[0] += 10
    clock.sync()
    handle = clock.schedule(T0, lambda: None)  # due in the past: runs at the current instant
    assert handle.due == T0 + timedelta(minutes=40)


def test_a_snapshot_of_a_realtime_clock_holds_the_instant_of_its_last_sync() -> None:
    wall = [100.0]
    clock = Clock(T0, "realtime", monotonic=lambda: wall[0], speed=60)
    wall[0] += 30
    clock.sync()
    state = clock.__getstate__()
    assert state["_now"] == T0 + timedelta(minutes=30) and state.get("_pending_m") is None
