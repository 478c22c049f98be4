"""Virtual time: a clock per tenant and a discrete-event queue.

Nothing here polls. Events wait in `(due, priority, order scheduled)` order (FIFO buckets per
instant and priority, under a heap of the buckets); advancing the clock takes every event due up
to the target in order, moving `now` to each event's instant before running it so that handlers
see the time they were scheduled for. The realtime clock differs only in how it
learns the target: it maps the host's monotonic clock (passed in) onto virtual time.
"""

from __future__ import annotations

import heapq
import math
from datetime import datetime, timedelta, timezone
from operator import length_hint
from typing import Any, Callable, Iterator, Literal, Protocol

ClockMode = Literal["virtual", "realtime"]


class ClockError(ValueError):
    """Asked to move a clock backwards."""


# At one instant, what ends runs before what starts: a window's cleanup must finish before the
# next action on the same device is dispatched.
PRIORITY_WINDOW_END = 0
PRIORITY_NORMAL = 1

class _NoArg:
    """`EventHandle.arg` when the event's callable takes no argument. The class itself is the
    mark: a class pickles by reference, so a snapshot's events keep it by identity."""


_NO_ARG: Any = _NoArg

# `EventOwner.queued` once its events are withdrawn.
WITHDRAWN = -1


class EventOwner(Protocol):
    """What :meth:`EventQueue.post` can file events under, so they can be withdrawn together.

    `queued` is the queue's to keep: how many of the owner's events wait in it, or WITHDRAWN once
    :meth:`EventQueue.withdraw` has dropped them (events posted for it after that never run)."""

    queued: int


class EventHandle:
    """One scheduled event, returned by :meth:`EventQueue.schedule`; lets the caller withdraw it.

    The queue holds the handle itself (no separate entry object): the callable, its argument
    (when scheduled with :meth:`EventQueue.schedule_call`), and whether it still waits."""

    __slots__ = ("due", "fn", "arg", "cancelled", "queue")

    def __init__(self, due: datetime, fn: Callable[..., None], arg: Any, queue: EventQueue) -> None:
        self.due = due
        self.fn: Callable[..., None] | None = fn
        self.arg = arg
        self.cancelled = False
        self.queue: EventQueue | None = queue  # None once the event has left the queue

    @property
    def live(self) -> bool:
        """Still waiting in the queue (neither run nor cancelled)."""
        return self.queue is not None and not self.cancelled

    def cancel(self) -> None:
        if self.cancelled:
            return
        self.cancelled = True
        self.fn = self.arg = None  # release the callable (and what it holds) at once
        if self.queue is not None:
            self.queue._dropped(1)


def _dead(fn: Any, arg: Any, owner: EventOwner | None) -> bool:
    """Whether a stored event was withdrawn: its handle cancelled, or its owner's events dropped."""
    if fn is None:
        return bool(arg.cancelled)
    return owner is not None and owner.queued < 0


class EventQueue:
    """Events in `(due, priority, order scheduled)` order.

    Events that share an instant and a priority -- a fleet's pushes all start, end and complete
    at the same instants -- share one FIFO bucket, so the heap holds each distinct
    `(due, priority)` once: scheduling into an existing bucket and taking the next event are O(1),
    whatever the number of events at that instant. Cancelled events are counted and swept out
    once they are half of what the queue holds, so a tenant that cancels a lot does not carry its
    cancelled events (amortised O(1) each).

    A bucket is a list storing each event as three consecutive slots, no object per event:
    `fn, arg, owner` for one :meth:`post`-ed (`owner` None, or what it was filed under),
    `None, handle, None` for one with a handle (:meth:`schedule_call`). Posting is for the events
    nobody withdraws one by one: a fleet's lifecycle events wait hours in their thousands, and
    every object that waits that long is one the collector's full passes scan.

    :meth:`Clock.advance_to` takes a bucket's events with an iterator over its list (three slots
    a step) and removes nothing while it runs: the slots it has passed are the bucket's taken
    prefix, settled (off the count, the bucket dropped once wholly taken) when it leaves the
    bucket. Meanwhile `_run` is the bucket, `_taking` the iterator and `_first` where the run
    started, from which what the running bucket has taken is worked out when something asks
    (:meth:`held`, :meth:`peek`, the sweep). A bucket left part-taken (a halt, an event filed
    ahead of it, a handler that raised) keeps its taken prefix until it runs again; `_offsets`
    holds that prefix's length by key.

    `_moved` is set by whatever may change the heap's head (a new bucket, a bucket dropped, a
    sweep): the event loop looks at the head only after an event that set it."""

    __slots__ = ("_keys", "_tiers", "_held", "_cancelled", "_moved", "_run", "_taking", "_first", "_offsets")

    def __init__(self) -> None:
        self._keys: list[tuple[datetime, int]] = []  # a heap of the buckets' keys
        # The buckets by priority, then by instant: `post` finds one with no key tuple to build.
        self._tiers: dict[int, dict[datetime, list[Any]]] = {PRIORITY_WINDOW_END: {}, PRIORITY_NORMAL: {}}
        self._held = 0  # events in the buckets past their taken prefixes, cancelled ones included
        self._cancelled = 0
        self._moved = False
        self._run: list[Any] | None = None
        self._taking: Iterator[Any] = iter(())
        self._first = 0
        self._offsets: dict[tuple[datetime, int], int] = {}

    def __getstate__(self) -> dict[str, Any]:
        # A snapshot holds what waits: each bucket without its taken prefix.
        tiers: dict[int, dict[datetime, list[Any]]] = {}
        for priority, tier in self._tiers.items():
            kept = tiers[priority] = {}
            for due, bucket in tier.items():
                start = self._start((due, priority), bucket)
                kept[due] = bucket[start:] if start else bucket
        return {"_keys": self._keys, "_tiers": tiers, "_held": self.held(), "_cancelled": self._cancelled}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._keys = state["_keys"]
        self._tiers = state["_tiers"]
        self._held = state["_held"]
        self._cancelled = state["_cancelled"]
        self._moved = False
        self._run = None
        self._taking = iter(())
        self._first = 0
        self._offsets = {}

    def _start(self, key: tuple[datetime, int], bucket: list[Any]) -> int:
        """Where the events of `bucket` not yet taken start (slots before it are taken)."""
        if self._run is bucket:
            return len(bucket) - length_hint(self._taking)
        return self._offsets.get(key, 0)

    def schedule(self, due: datetime, action: Callable[[], None], priority: int = PRIORITY_NORMAL) -> EventHandle:
        return self.schedule_call(due, action, _NO_ARG, priority)

    def schedule_call(self, due: datetime, fn: Callable[..., None], arg: Any, priority: int = PRIORITY_NORMAL) -> EventHandle:
        """Schedule `fn(arg)`: one handle, no closure to build."""
        handle = EventHandle(due, fn, arg, self)
        # Filed as the slots `None, handle, None`: `post` stores what it is given, and a callable
        # of None is how the queue tells a handle's slots from a posted event's.
        self.post(due, None, handle, priority)  # type: ignore[arg-type]
        return handle

    def post(self, due: datetime, fn: Callable[..., None], arg: Any, priority: int = PRIORITY_NORMAL, owner: EventOwner | None = None) -> None:
        """Schedule `fn(arg)` with no handle (nothing is allocated for it). With an `owner`, the
        event is withdrawn with the owner's other events by :meth:`withdraw`.

        This is the one place that files an event's three slots in its bucket."""
        if owner is not None:
            queued = owner.queued
            if queued < 0:
                return  # its events are withdrawn: this one would never run
            owner.queued = queued + 1
        try:
            tier = self._tiers[priority]
        except KeyError:
            tier = self._tiers[priority] = {}
        bucket = tier.get(due)
        if bucket is None:
            bucket = tier[due] = []
            heapq.heappush(self._keys, (due, priority))
            self._moved = True
        bucket.append(fn)
        bucket.append(arg)
        bucket.append(owner)
        self._held += 1

    def withdraw(self, owner: EventOwner) -> None:
        """Drop every event posted for `owner` that has not run, and any posted for it later."""
        waiting = owner.queued
        owner.queued = WITHDRAWN
        if waiting > 0:
            self._dropped(waiting)

    def _dropped(self, count: int) -> None:
        self._cancelled += count
        if self._cancelled > 64 and self._cancelled * 2 > self.held():
            for priority, tier in self._tiers.items():
                for due, bucket in list(tier.items()):
                    key = (due, priority)
                    running = self._run is bucket
                    start = self._start(key, bucket)
                    kept: list[Any] = []
                    slots = iter(bucket)
                    slots.__setstate__(start)  # type: ignore[attr-defined]
                    for fn, arg, owner in zip(slots, slots, slots):  # noqa: B905 (one iterator, three slots a step)
                        if _dead(fn, arg, owner):
                            if fn is None:
                                arg.queue = None
                        else:
                            kept += (fn, arg, owner)
                    if running:
                        # The running bucket keeps its taken prefix (`Clock.advance_to` settles it
                        # when it leaves the bucket) and goes on with the live events after it.
                        del bucket[start:]
                        bucket += kept
                        if not kept:
                            del tier[due]
                    elif not kept:
                        del tier[due]
                        self._offsets.pop(key, None)
                    elif len(kept) != len(bucket):
                        bucket[:] = kept
                        self._offsets.pop(key, None)
            tiers = self._tiers
            self._keys[:] = [key for key in self._keys if key[0] in tiers[key[1]]]
            heapq.heapify(self._keys)
            self._held -= self._cancelled
            self._cancelled = 0
            self._moved = True

    def peek(self) -> datetime | None:
        """When the next live event is due (withdrawn ones before it are dropped on the way)."""
        keys, tiers = self._keys, self._tiers
        while keys:
            key = keys[0]
            bucket = tiers[key[1]][key[0]]
            start = self._start(key, bucket) if self._run is bucket or self._offsets else 0
            end = len(bucket)
            if start < end and not _dead(bucket[start], bucket[start + 1], bucket[start + 2]):
                return key[0]  # the common case: the head event is live
            index = start
            while index < end and _dead(bucket[index], bucket[index + 1], bucket[index + 2]):
                if bucket[index] is None:
                    bucket[index + 1].queue = None  # a cancelled handle
                index += 3
            if index > start:
                dropped = (index - start) // 3
                self._held -= dropped
                self._cancelled -= dropped
                if index < end:
                    if self._run is bucket:
                        del bucket[start:index]  # after the running iterator: it reads on from there
                    else:
                        self._offsets[key] = index
            if index < end:
                return key[0]
            del bucket[start:]
            del tiers[key[1]][key[0]]
            heapq.heappop(keys)
            self._offsets.pop(key, None)
            self._moved = True
        return None

    def held(self) -> int:
        """Events the queue still stores, cancelled ones not yet swept out included."""
        bucket = self._run
        if bucket is None:
            return self._held
        return self._held - (len(bucket) - length_hint(self._taking) - self._first) // 3

    def __len__(self) -> int:
        return self.held() - self._cancelled


class Clock:
    """A tenant's time. `now` only changes through :meth:`advance_to` (or the realtime sync).

    `Clock(..., mode="realtime")` makes a :class:`RealtimeClock`, whose `now` follows the wall."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Clock:
        # Unpickling calls this with no arguments and the pickled class: it stays that class.
        mode = kwargs.get("mode", args[1] if len(args) > 1 else "virtual")
        return super().__new__(RealtimeClock if cls is Clock and mode == "realtime" else cls)

    def __init__(
        self,
        start: datetime,
        mode: ClockMode = "virtual",
        *,
        monotonic: Callable[[], float] | None = None,
        speed: float = 1.0,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("clock start must be timezone-aware")
        if mode == "realtime" and monotonic is None:
            raise ValueError("a realtime clock needs a monotonic time source")
        self.mode: ClockMode = mode
        self.speed = speed
        # The present instant: a plain attribute on a virtual clock, as every handler reads it.
        self.now = start.astimezone(timezone.utc)
        self._monotonic = monotonic
        self._anchor_wall = monotonic() if monotonic else 0.0
        self._anchor_virtual = self.now
        self.queue = EventQueue()

    # `now` is a plain attribute, as every handler reads it (a realtime clock makes it a
    # property: see RealtimeClock). `_quiet_due` is the queue's head event's instant (by
    # identity) and `_quiet_until` a monotonic reading safely short of the moment the wall
    # reaches it, under the current anchors: a sync before then has nothing to run without
    # computing the target.
    now: datetime
    _quiet_due: datetime | None = None
    _quiet_until = 0.0

    # The last whole millisecond `_wall_at` mapped: (the anchor it counts from, the count, the
    # instant). Not part of the clock's value; a snapshot leaves it out.
    _tick: tuple[datetime, int, datetime] | None = None

    def _wall_at(self, reading: float) -> datetime:
        """The virtual instant the wall maps to at this monotonic reading, in whole milliseconds
        since the anchor (the resolution of every instant on the wire), never before `now`.

        Readings within one millisecond map to one instant, the same object: a busy server's
        requests in that millisecond share its hash and its text, worked out once."""
        count = math.floor((reading - self._anchor_wall) * self.speed * 1000.0)
        anchor = self._anchor_virtual
        tick = self._tick
        if tick is not None and tick[1] == count and tick[0] is anchor:
            wall = tick[2]
        else:
            wall = anchor + timedelta(milliseconds=count)
            self._tick = (anchor, count, wall)
        now = self.now
        return wall if wall >= now else now

    def __getstate__(self) -> dict[str, Any]:
        # Under the name a snapshot has always used for the instant (`_now`).
        state = dict(self.__dict__)
        state["_now"] = state.pop("now")
        state.pop("_tick", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        now = state.pop("_now")
        state.pop("_pending_m", None)  # always None in a snapshot taken before `now` was an attribute
        self.__dict__.update(state)
        self.now = now

    def target(self) -> datetime:
        """Where time should be: `now` for a virtual clock, the scaled wall time for realtime."""
        if self.mode == "virtual" or self._monotonic is None:
            return self.now
        return self._wall_at(self._monotonic())

    def schedule(self, due: datetime, action: Callable[[], None], priority: int = PRIORITY_NORMAL) -> EventHandle:
        # An event due in the past runs at the next advance, at the current instant.
        return self.schedule_call(due, action, _NO_ARG, priority)

    def schedule_call(self, due: datetime, fn: Callable[..., None], arg: Any, priority: int = PRIORITY_NORMAL) -> EventHandle:
        """Schedule `fn(arg)` (no closure to build per event); otherwise as :meth:`schedule`."""
        now = self.now
        return self.queue.schedule_call(now if due < now else due, fn, arg, priority)

    def post(self, due: datetime, fn: Callable[..., None], arg: Any, priority: int = PRIORITY_NORMAL, owner: EventOwner | None = None) -> None:
        """Schedule `fn(arg)` without a handle (see :meth:`EventQueue.post`); an event due in the
        past runs at the next advance, at the current instant."""
        now = self.now
        self.queue.post(now if due < now else due, fn, arg, priority, owner)

    def withdraw(self, owner: EventOwner) -> None:
        """Drop the events posted for `owner` (:meth:`EventQueue.withdraw`)."""
        self.queue.withdraw(owner)

    def advance_to(self, until: datetime, halt: Callable[[], bool] | None = None) -> int:
        """Run every event due up to `until`, in order; returns how many ran.

        `halt` is asked after each event; when it answers True the clock stops at that event's
        instant (short of `until`) so the caller can do work that must happen there -- a webhook
        attempt whose outcome decides the next events -- and then advance again.
        """
        if until < self.now:
            raise ClockError(f"clock cannot go backwards (now {self.now.isoformat()}, asked {until.isoformat()})")
        queue = self.queue
        if queue._run is not None:
            raise ClockError("advance_to was called from an event handler while the clock is running events")
        keys, tiers, offsets = queue._keys, queue._tiers, queue._offsets
        taken = skipped = 0  # slots passed, events skipped (withdrawn or cancelled)
        stop = False
        # The queue's events are taken here, bucket by bucket (nothing else takes them; `peek`
        # and the sweep only drop withdrawn ones): an iterator reads a bucket's list three slots
        # a step, with no call and no tuple per event and nothing removed or counted per event;
        # the bucket is settled when the loop leaves it. The heap's head is looked at again only
        # after an event that may have moved it (`queue._moved`): a handler may file an event
        # ahead of the bucket (an earlier priority at this instant) or sweep the queue, which
        # drops emptied buckets; either way the loop goes back to the heap's head. With a `halt`
        # the flag stays set, so it is asked after each event.
        while keys:
            key = keys[0]
            due = key[0]
            if due > until:
                break
            bucket = tiers[key[1]][due]
            # Once per bucket, not per event. Were all its events withdrawn, nothing runs at this
            # instant and the next bucket (or `until`) moves `now` on before anything reads it.
            if due > self.now:
                self.now = due
            taking = iter(bucket)
            start = offsets.pop(key, 0) if offsets else 0
            if start:
                taking.__setstate__(start)  # type: ignore[attr-defined]
            queue._run, queue._taking, queue._first = bucket, taking, start
            queue._moved = halt is not None
            end = -1
            try:
                for fn, arg, owner in zip(taking, taking, taking):  # noqa: B905 (one iterator, three slots a step)
                    if owner is not None:
                        queued = owner.queued
                        if queued < 0:
                            queue._cancelled -= 1
                            skipped += 1
                            continue
                        owner.queued = queued - 1
                        fn(arg)
                    elif fn is not None:
                        fn(arg)
                    else:
                        handle: EventHandle = arg
                        handle.queue = None
                        if handle.cancelled:
                            queue._cancelled -= 1
                            skipped += 1
                            continue
                        fired, arg = handle.fn, handle.arg
                        handle.fn = handle.arg = None  # a fired event keeps nothing alive through its handle
                        assert fired is not None  # a handle in the queue has not fired
                        # Only a handle's event can have no argument (see `schedule`); a posted one
                        # always has one.
                        if arg is _NO_ARG:
                            fired()
                        else:
                            fired(arg)
                    if queue._moved:
                        if halt is None:
                            queue._moved = False
                        elif halt():
                            stop = True
                            break
                        if not keys or keys[0] is not key:
                            break
                else:
                    end = len(bucket)  # wholly taken
            finally:
                # Settle the bucket: what the loop passed leaves the count, and the bucket leaves
                # the queue once wholly taken (unless a sweep or `peek` dropped it already);
                # otherwise it keeps its taken prefix until it runs again.
                queue._run = None
                if end < 0:
                    end = len(bucket) - length_hint(taking)
                if end > start:
                    taken += end - start
                    queue._held -= (end - start) // 3
                if end == len(bucket) and keys and keys[0] is key:
                    del tiers[key[1]][due]
                    heapq.heappop(keys)
                elif end and tiers[key[1]].get(due) is bucket:
                    offsets[key] = end
            if stop:
                return taken // 3 - skipped
        self.now = until
        if self.mode == "realtime":
            # A jump in a realtime clock shifts its anchor, so it keeps flowing from here.
            self._rebase()
        return taken // 3 - skipped

    def sync(self) -> int:
        """Bring a realtime clock up to the wall; a no-op for a virtual clock."""
        if self.mode != "realtime" or self._monotonic is None:
            return 0
        reading = self._monotonic()
        due = self.queue.peek()
        if due is None or (due is self._quiet_due and reading < self._quiet_until):
            # Nothing to run (the common case, on every request): the wall is where time is, and
            # the anchors that map it onto virtual time stay as they are.
            self._follow_wall(reading)
            return 0
        target = self._wall_at(reading)
        if due > target:
            self.now = target
            self._quiet_due = due
            speed = self.speed
            # A millisecond short of the instant the wall reaches `due`, so float rounding in the
            # mapping never lets a due event be skipped; a sync in that millisecond takes this path.
            gap = (due - self._anchor_virtual).total_seconds()
            self._quiet_until = self._anchor_wall + gap / speed - 1e-3 if speed > 0 else math.inf
            return 0
        return self.advance_to(target)

    def _follow_wall(self, reading: float) -> None:
        """A quiet sync: `now` moves to where the wall is at this monotonic reading."""
        self.now = self._wall_at(reading)

    def _rebase(self) -> None:
        if self._monotonic is not None:
            self._anchor_wall = self._monotonic()
            self._anchor_virtual = self.now
            self._quiet_due = None


class RealtimeClock(Clock):
    """A realtime clock: `now` follows the wall, scaled by `speed`.

    Every request syncs the clock, and most find nothing due; such a quiet sync only notes the
    monotonic reading, and `now` is worked out from it when it is first read (the same
    arithmetic, so the same instant). A read of a record never reads it. So `now` is a property
    here, where a virtual clock keeps a plain attribute (its handlers read it per event)."""

    _pending_m: float | None = None

    @property
    def now(self) -> datetime:
        if self._pending_m is not None:
            reading = self._pending_m
            self._pending_m = None
            self._now = self._wall_at(reading)
        return self._now

    @now.setter
    def now(self, value: datetime) -> None:
        self._pending_m = None
        self._now = value

    def _follow_wall(self, reading: float) -> None:
        self._pending_m = reading

    def __getstate__(self) -> dict[str, Any]:
        # A snapshot holds the instant itself, never a reading of this process's monotonic clock.
        self.now = self.now
        state = dict(self.__dict__)
        state.pop("_pending_m", None)
        state.pop("_tick", None)
        return state
