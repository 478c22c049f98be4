"""Virtual time: a clock per tenant and a discrete-event queue.

Nothing here polls. Events sit in a heap keyed by `(due, priority, seq)`; advancing the clock pops every
event due up to the target in order, moving `now` to each event's instant before running it so
that handlers see the time they were scheduled for. The realtime clock differs only in how it
learns the target: it maps the host's monotonic clock (passed in) onto virtual time.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta, timezone
from typing import Callable, Literal

ClockMode = Literal["virtual", "realtime"]


class ClockError(ValueError):
    """Asked to move a clock backwards."""


# At one instant, what ends runs before what starts: a window's cleanup must finish before the
# next action on the same device is dispatched.
PRIORITY_WINDOW_END = 0
PRIORITY_NORMAL = 1


class _Entry:
    """One scheduled event. The heap holds `(due, priority, seq, entry)` tuples, compared in C."""

    __slots__ = ("due", "action", "cancelled", "queue")

    def __init__(self, due: datetime, action: Callable[[], None] | None, queue: EventQueue) -> None:
        self.due = due
        self.action = action
        self.cancelled = False
        self.queue: EventQueue | None = queue  # None once the event has left the queue


class EventHandle:
    """Returned by :meth:`EventQueue.schedule`; lets the caller withdraw the event."""

    __slots__ = ("_entry",)

    def __init__(self, entry: _Entry) -> None:
        self._entry = entry

    @property
    def due(self) -> datetime:
        return self._entry.due

    @property
    def live(self) -> bool:
        """Still waiting in the queue (neither run nor cancelled)."""
        return self._entry.queue is not None and not self._entry.cancelled

    def cancel(self) -> None:
        entry = self._entry
        if entry.cancelled:
            return
        entry.cancelled = True
        entry.action = None  # release the closure (and what it holds) at once
        if entry.queue is not None:
            entry.queue._dropped()


class EventQueue:
    """A heap of events. Cancelled events are counted and swept out once they are half the heap,
    so a tenant that cancels a lot does not carry its cancelled events (amortised O(1) each)."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, int, _Entry]] = []
        self._seq = 0
        self._cancelled = 0

    def schedule(self, due: datetime, action: Callable[[], None], priority: int = PRIORITY_NORMAL) -> EventHandle:
        self._seq += 1
        entry = _Entry(due, action, self)
        heapq.heappush(self._heap, (due, priority, self._seq, entry))
        return EventHandle(entry)

    def _dropped(self) -> None:
        self._cancelled += 1
        if self._cancelled > 64 and self._cancelled * 2 > len(self._heap):
            kept = []
            for item in self._heap:
                if item[3].cancelled:
                    item[3].queue = None
                else:
                    kept.append(item)
            heapq.heapify(kept)
            self._heap = kept
            self._cancelled = 0

    def peek(self) -> datetime | None:
        heap = self._heap
        while heap and heap[0][3].cancelled:
            heapq.heappop(heap)[3].queue = None
            self._cancelled -= 1
        return heap[0][0] if heap else None

    def pop_due(self, until: datetime) -> _Entry | None:
        due = self.peek()
        if due is None or due > until:
            return None
        entry = heapq.heappop(self._heap)[3]
        entry.queue = None
        return entry

    def __len__(self) -> int:
        return len(self._heap) - self._cancelled


class Clock:
    """A tenant's time. `now` only changes through :meth:`advance_to` (or the realtime sync)."""

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
        self._now = start.astimezone(timezone.utc)
        self._monotonic = monotonic
        self._anchor_wall = monotonic() if monotonic else 0.0
        self._anchor_virtual = self._now
        self.queue = EventQueue()

    @property
    def now(self) -> datetime:
        return self._now

    def target(self) -> datetime:
        """Where time should be: `now` for a virtual clock, the scaled wall time for realtime."""
        if self.mode == "virtual" or self._monotonic is None:
            return self._now
        elapsed = (self._monotonic() - self._anchor_wall) * self.speed
        wall = self._anchor_virtual + timedelta(seconds=elapsed)
        return max(wall, self._now)

    def schedule(self, due: datetime, action: Callable[[], None], priority: int = PRIORITY_NORMAL) -> EventHandle:
        # An event due in the past runs at the next advance, at the current instant.
        return self.queue.schedule(max(due, self._now), action, priority)

    def advance_to(self, until: datetime, halt: Callable[[], bool] | None = None) -> int:
        """Run every event due up to `until`, in order; returns how many ran.

        `halt` is asked after each event; when it answers True the clock stops at that event's
        instant (short of `until`) so the caller can do work that must happen there -- a webhook
        attempt whose outcome decides the next events -- and then advance again.
        """
        if until < self._now:
            raise ClockError(f"clock cannot go backwards (now {self._now.isoformat()}, asked {until.isoformat()})")
        processed = 0
        while (entry := self.queue.pop_due(until)) is not None:
            action = entry.action
            if action is None:
                continue
            entry.action = None  # a fired event keeps nothing alive through the handles that name it
            if entry.due > self._now:
                self._now = entry.due
            action()
            processed += 1
            if halt is not None and halt():
                return processed
        self._now = until
        if self.mode == "realtime":
            # A jump in a realtime clock shifts its anchor, so it keeps flowing from here.
            self._rebase()
        return processed

    def sync(self) -> int:
        """Bring a realtime clock up to the wall; a no-op for a virtual clock."""
        if self.mode != "realtime":
            return 0
        target = self.target()
        due = self.queue.peek()
        if due is None or due > target:
            # Nothing to run (the common case, on every request): the wall is where time is, and
            # the anchors that map it onto virtual time stay as they are.
            if target > self._now:
                self._now = target
            return 0
        return self.advance_to(target)

    def _rebase(self) -> None:
        if self._monotonic is not None:
            self._anchor_wall = self._monotonic()
            self._anchor_virtual = self._now
