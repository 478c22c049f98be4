"""Action records: what the platform tracks for each push, and how a record reads on the wire."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from .battery import Drive
from .errors import format_instant

ActionState = Literal["scheduled", "acknowledged", "completed", "failed", "cancelled"]
Execution = Literal["immediate", "scheduled", "windowed"]
ACTION_TYPE = "battery:set_operation_mode"
NON_TERMINAL: frozenset[str] = frozenset({"scheduled", "acknowledged"})
ACTION_STATES: tuple[str, ...] = ("scheduled", "acknowledged", "completed", "failed", "cancelled")


# Formatted instants, by instant. Records repeat a few instants many times (every action of a
# fleet's day is created, starts, ends and completes at the same ones), and the text depends on
# nothing but the instant: an aware datetime hashes and compares by its instant, and
# `format_instant` writes it in UTC. Bounded: cleared when full, which only costs a re-format.
_FORMATTED: dict[datetime, str] = {}
_FORMATTED_LIMIT = 4096


def _ts(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    text = _FORMATTED.get(moment)
    if text is None:
        if len(_FORMATTED) >= _FORMATTED_LIMIT:
            _FORMATTED.clear()
        text = _FORMATTED[moment] = format_instant(moment)
    return text


@dataclass(slots=True)
class Action:
    id: str
    device_id: str
    command: str
    parameters: dict[str, Any]
    execution: Execution
    created_at: datetime
    state: ActionState
    on_conflict: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    start_wall: datetime | None = None
    end_wall: datetime | None = None
    updated_at: datetime | None = None
    acknowledged_at: datetime | None = None
    completed_at: datetime | None = None
    result: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 0
    cleanup_scheduled: bool = False
    # The managed device whose rows the window-end cleanup removes, held from the write that
    # scheduled it until it runs (the event's argument is the action itself, so no tuple per
    # window waits in the queue). Not part of the record.
    cleanup_device: object | None = field(default=None, compare=False, repr=False)
    # How many of its lifecycle events wait in the clock's queue (posted with the action as their
    # owner, so they are withdrawn together when it is cancelled), or WITHDRAWN. A count rather
    # than handles: the events allocate nothing that waits with them. Kept by the queue.
    queued: int = field(default=0, compare=False, repr=False)
    seq: int = 0  # creation order within the tenant, set by ActionBook.add
    # The native drive the action runs, once the platform has built it (not part of the record).
    drive: Drive | None = field(default=None, compare=False, repr=False)

    @property
    def terminal(self) -> bool:
        return self.state not in NON_TERMINAL

    def touch(self, now: datetime) -> None:
        self.updated_at = now

    def record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "deviceId": self.device_id,
            "type": ACTION_TYPE,
            "state": self.state,
            "parameters": self.parameters,
            "result": self.result,
            "errorCode": self.error_code,
            "errorMessage": self.error_message,
            "createdAt": _ts(self.created_at),
            "updatedAt": _ts(self.updated_at or self.created_at),
            "acknowledgedAt": _ts(self.acknowledged_at),
            "completedAt": _ts(self.completed_at),
            "start": _ts(self.start),
            "end": _ts(self.end),
        }

    def accepted(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "actionId": self.id,
            "state": self.state,
            "type": ACTION_TYPE,
            "createdAt": _ts(self.created_at),
        }
        if self.start is not None:
            body["start"] = _ts(self.start)
        if self.end is not None:
            body["end"] = _ts(self.end)
        return body

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": ACTION_TYPE,
            "state": self.state,
            "command": self.command,
            "createdAt": _ts(self.created_at),
            "updatedAt": _ts(self.updated_at or self.created_at),
        }


def _seq_of(action: Action | None) -> int:
    assert action is not None  # bisection only probes past the head
    return action.seq


class _SeqList:
    """Actions kept in creation order (by `seq`), for paging without a scan.

    Appends (the common case) are O(1); so is removing the oldest, which is how actions leave
    the `scheduled` and `acknowledged` lists of a busy tenant (they start in the order they were
    pushed): the list keeps a head index instead of moving every pointer after it (the entries
    before it are None), and compacts once the dead head is half the list. Any other insert or
    removal finds its place by bisection (on the actions' own `seq`, so no second list of
    numbers is kept) and moves only the pointers after it, which in practice are the few newest.
    """

    __slots__ = ("items", "head")

    def __init__(self) -> None:
        self.items: list[Action | None] = []
        self.head = 0  # entries before it were removed

    def newest_seq(self) -> int:
        """The seq of the newest live entry; 0 when there is none."""
        items = self.items
        if len(items) == self.head:
            return 0
        last = items[-1]
        assert last is not None
        return last.seq

    def append(self, action: Action) -> None:
        """Add an action newer than every one here."""
        self.items.append(action)

    def add(self, action: Action) -> None:
        seq = action.seq
        items = self.items
        if self.newest_seq() < seq:
            items.append(action)
            return
        items.insert(bisect_left(items, seq, self.head, len(items), key=_seq_of), action)

    def remove(self, action: Action) -> None:
        items, head = self.items, self.head
        if len(items) > head and items[head] is action:
            self.remove_oldest()
            return
        at = bisect_left(items, action.seq, head, len(items), key=_seq_of)
        if at < len(items) and items[at] is action:
            del items[at]

    def remove_oldest(self) -> None:
        """Drop the oldest entry (there is one): the head moves on; no pointer moves."""
        items, head = self.items, self.head
        items[head] = None
        head += 1
        if head == len(items):
            items.clear()
            head = 0
        elif head > 32 and head * 2 > len(items):
            del items[:head]
            head = 0
        self.head = head

    def __len__(self) -> int:
        return len(self.items) - self.head

    def _live(self, start: int, end: int) -> list[Action]:
        return self.items[start:end]  # type: ignore[return-value]  # past the head: never None

    def last(self) -> Action | None:
        return self.items[-1] if len(self.items) > self.head else None

    def page(self, offset: int, limit: int) -> list[Action]:
        """Oldest first: `offset` records skipped, at most `limit` returned; O(limit)."""
        start = self.head + offset
        return self._live(start, start + limit)

    def page_newest_first(self, offset: int, limit: int) -> list[Action]:
        """Newest first, for listings that show the latest activity on top; O(limit)."""
        end = len(self.items) - offset
        if end <= self.head:
            return []
        return self._live(max(self.head, end - limit), end)[::-1]


_NOTHING = _SeqList()  # what a listing of a state a scope never held pages through (never added to)


class _Scope:
    """One listing scope (a tenant, or one device): every action, and the actions in each state
    (a state's list is made when the first action enters it)."""

    __slots__ = ("every", "by_state", "open")

    def __init__(self) -> None:
        self.every = _SeqList()
        self.by_state: dict[str, _SeqList] = {}
        # The non-terminal actions, in creation order: what a push conflicts with.
        self.open: dict[str, Action] = {}

    def listed(self, state: str) -> _SeqList:
        """The state's list, made if this scope never held the state."""
        listed = self.by_state.get(state)
        if listed is None:
            listed = self.by_state[state] = _SeqList()
        return listed


class ActionBook:
    """Every action of one tenant, indexed so push, read, cancel and list never scan history.

    Reads by id are a dict lookup; a device's open actions (the only ones a push conflicts with)
    are kept apart; listings page through creation-ordered lists per scope and per state. State
    changes go through :meth:`set_state`, which moves the action between the state lists.
    """

    def __init__(self) -> None:
        self.by_id: dict[str, Action] = {}
        self.tenant = _Scope()
        self.devices: dict[str, _Scope] = {}
        self._seq = 0

    def __contains__(self, action_id: object) -> bool:
        return action_id in self.by_id

    def __getitem__(self, action_id: str) -> Action:
        return self.by_id[action_id]

    def __len__(self) -> int:
        return len(self.by_id)

    def get(self, action_id: str) -> Action | None:
        return self.by_id.get(action_id)

    def add(self, action: Action) -> None:
        self._seq = action.seq = self._seq + 1
        action_id, device_id, state = action.id, action.device_id, action.state
        self.by_id[action_id] = action
        try:
            scope = self.devices[device_id]
        except KeyError:
            scope = self.devices[device_id] = _Scope()
        is_open = state in NON_TERMINAL
        for where in (self.tenant, scope):
            # The newest action sorts last in every list it joins: appended, no search (and no
            # call: `_SeqList.append` and `_Scope.listed`, inline).
            where.every.items.append(action)
            try:
                listed = where.by_state[state]
            except KeyError:
                listed = where.by_state[state] = _SeqList()
            listed.items.append(action)
            if is_open:
                where.open[action_id] = action

    def set_state(self, action: Action, state: ActionState) -> None:
        old = action.state
        if old == state:
            return
        action.state = state
        closed = state not in NON_TERMINAL
        seq = action.seq
        for where in (self.tenant, self.devices[action.device_id]):
            by_state = where.by_state
            leaving = by_state[old]
            # Actions usually change state in the order they were made: out of the head of one
            # list (the action is in it, so it is not empty) and onto the end of the next,
            # without a search.
            if leaving.items[leaving.head] is action:
                leaving.remove_oldest()
            else:
                leaving.remove(action)
            try:
                joining = by_state[state]
            except KeyError:
                joining = by_state[state] = _SeqList()
            joined = joining.items
            # A list with no live entry is empty (its head is back at 0), so the last entry of a
            # non-empty one is live.
            if not joined or joined[-1].seq < seq:  # type: ignore[union-attr]
                joined.append(action)
            else:
                joining.add(action)
            if closed:
                where.open.pop(action.id, None)

    def has_open(self, device_id: str) -> bool:
        """Whether the device has any non-terminal action (what a push could conflict with)."""
        scope = self.devices.get(device_id)
        return scope is not None and bool(scope.open)

    def open_for(self, device_id: str) -> list[Action]:
        """The device's non-terminal actions, oldest first."""
        scope = self.devices.get(device_id)
        return list(scope.open.values()) if scope is not None else []

    def latest_for(self, device_id: str) -> Action | None:
        scope = self.devices.get(device_id)
        return scope.every.last() if scope is not None else None

    def selection(self, device_id: str | None, state: str | None) -> _SeqList:
        """The creation-ordered list a listing pages through."""
        if device_id is None:
            scope: _Scope | None = self.tenant
        else:
            scope = self.devices.get(device_id)
        if scope is None:
            return _NOTHING
        return scope.every if state is None else scope.by_state.get(state, _NOTHING)
