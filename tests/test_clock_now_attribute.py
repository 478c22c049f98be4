"""`Clock.now` is a plain attribute, absent while a realtime clock's quiet sync waits to be read."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone

import pytest

from amps_sim.simulator.clock import Clock

T0 = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)


def test_a_quiet_sync_is_worked_out_when_now_is_next_read_and_then_stays() -> None:
    wall = [100.0]
    clock = Clock(T0, "realtime", monotonic=lambda: wall[0], speed=60)
    wall[0] += 30
    assert clock.sync() == 0
    assert "now" not in vars(clock)  # nothing worked out yet
    assert clock.now == T0 + timedelta(minutes=30)
    assert vars(clock)["now"] == T0 + timedelta(minutes=30)  # a plain attribute again
    wall[0] += 1
    clock.sync()
    clock.sync()  # a second quiet sync before a read: the later reading wins
    wall[0] += 1
    clock.sync()
    assert clock.now == T0 + timedelta(minutes=32)


def test_a_pickled_clock_keeps_the_instant_a_waiting_reading_gives() -> None:
    wall = [100.0]
    restored = pickle.loads(pickle.dumps(Clock(T0)))
    assert restored.now == T0 and "_now" not in vars(restored)
    live = Clock(T0, "realtime", monotonic=lambda: wall[0], speed=60)
    wall[0] += 60
    live.sync()
    state = live.__getstate__()
    assert state["_now"] == T0 + timedelta(hours=1) and "now" not in state and "_settled" not in state
    fresh = Clock.__new__(Clock)
    fresh.__setstate__(state)
    assert fresh.now == T0 + timedelta(hours=1)


def test_an_unknown_attribute_is_still_an_attribute_error() -> None:
    clock = Clock(T0)
    with pytest.raises(AttributeError):
        clock.nwo  # noqa: B018
    wall = [0.0]
    realtime = Clock(T0, "realtime", monotonic=lambda: wall[0])
    realtime.sync()
    with pytest.raises(AttributeError):
        realtime.nwo  # noqa: B018
