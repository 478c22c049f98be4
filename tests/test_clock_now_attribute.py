"""`Clock.now`: a plain attribute on a virtual clock; on a realtime clock a quiet sync notes the
wall's reading and `now` follows it when read; a snapshot keeps the instant either way."""

from __future__ import annotations

import pickle
import time
from datetime import datetime, timedelta, timezone

from amps_sim.simulator.clock import Clock, RealtimeClock

T0 = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)


def test_a_virtual_clock_keeps_now_as_a_plain_attribute() -> None:
    clock = Clock(T0)
    assert type(clock) is Clock and vars(clock)["now"] == T0
    clock.advance_to(T0 + timedelta(hours=2))
    assert vars(clock)["now"] == T0 + timedelta(hours=2)


def test_a_quiet_realtime_sync_moves_now_to_the_wall() -> None:
    wall = [100.0]
    clock = Clock(T0, "realtime", monotonic=lambda: wall[0], speed=60)
    assert isinstance(clock, RealtimeClock)
    wall[0] += 30
    assert clock.sync() == 0
    assert clock.now == T0 + timedelta(minutes=30)
    wall[0] += 2
    clock.sync()
    wall[0] += 5  # not synced: `now` is where the last sync found the wall
    assert clock.now == T0 + timedelta(minutes=32)


def test_a_snapshot_keeps_the_instant_under_its_old_name() -> None:
    restored = pickle.loads(pickle.dumps(Clock(T0 + timedelta(hours=1))))
    assert restored.now == T0 + timedelta(hours=1) and "_now" not in vars(restored)
    wall = [100.0]
    live = Clock(T0, "realtime", monotonic=lambda: wall[0], speed=60)
    wall[0] += 60
    live.sync()
    state = live.__getstate__()
    assert state["_now"] == T0 + timedelta(hours=1) and "now" not in state and "_pending_m" not in state
    # A snapshot written before `now` was an attribute (a quiet sync's reading already applied).
    fresh = Clock.__new__(Clock)
    fresh.__setstate__({**state, "_pending_m": None})
    assert fresh.now == T0 + timedelta(hours=1) and "_pending_m" not in vars(fresh)
    served = Clock(T0, "realtime", monotonic=time.monotonic)  # a served world's source, which pickles
    served.sync()
    again = pickle.loads(pickle.dumps(served))
    assert type(again) is RealtimeClock and again.now == served.now


def test_a_realtime_clock_ticks_in_whole_milliseconds_one_instant_per_millisecond() -> None:
    from amps_sim.simulator.errors import format_instant

    wall = [100.0]
    clock = Clock(T0, "realtime", monotonic=lambda: wall[0])
    seen = []
    for offset in (0.0123, 0.01234, 0.012999, 0.013, 0.0131, 2.5):
        wall[0] = 100.0 + offset
        clock.sync()
        seen.append(clock.now)
    # Whole milliseconds since the anchor, cut (never rounded up past the wall).
    assert seen == [T0 + timedelta(milliseconds=ms) for ms in (12, 12, 12, 13, 13, 2500)]
    assert seen[0] is seen[1] is seen[2] and seen[3] is seen[4]  # one object per millisecond
    assert format_instant(seen[2]) == "2026-05-08T08:00:00.012Z"
    wall[0] = 100.0 + 1.0  # a reading behind an instant the clock already reached
    clock.sync()
    assert clock.now == seen[-1]
    assert "_tick" not in clock.__getstate__()
    clock.advance_to(T0 + timedelta(hours=1))  # a jump rebases the mapping onto the new instant
    wall[0] += 0.0004
    clock.sync()
    assert clock.now == T0 + timedelta(hours=1)
    wall[0] += 0.0007
    clock.sync()
    assert clock.now == T0 + timedelta(hours=1, milliseconds=1)
