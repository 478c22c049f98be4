"""Action records: what the platform tracks for each push, and how a record reads on the wire."""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, Iterator, Literal

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
# Read by subscript, `_FORMATTED[moment]`: a found instant (or None, which is kept reading None)
# costs one lookup in C, no Python call; a new one is formatted by `__missing__`.
_FORMATTED_LIMIT = 4096


class _Formatted(dict):  # type: ignore[type-arg]  # datetime | None -> str | None
    __slots__ = ()

    def __missing__(self, moment: datetime) -> str:
        if len(self) >= _FORMATTED_LIMIT:
            self.clear()
            self[None] = None
        text: str = format_instant(moment)
        self[moment] = text
        return text


_FORMATTED = _Formatted({None: None})


def _ts(moment: datetime | None) -> str | None:
    return _FORMATTED[moment]  # type: ignore[no-any-return]  # the dict's values are str | None


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
        formatted = _FORMATTED
        created = self.created_at
        return {
            "id": self.id,
            "deviceId": self.device_id,
            "type": ACTION_TYPE,
            "state": self.state,
            "parameters": self.parameters,
            "result": self.result,
            "errorCode": self.error_code,
            "errorMessage": self.error_message,
            "createdAt": formatted[created],
            "updatedAt": formatted[self.updated_at or created],
            "acknowledgedAt": formatted[self.acknowledged_at],
            "completedAt": formatted[self.completed_at],
            "start": formatted[self.start],
            "end": formatted[self.end],
        }

    def revision(self) -> tuple[Any, ...]:
        """Everything of the action's own that its record reads: while the revision stays equal,
        so does the record, and a reply may reuse the record's text (`web.common.render_record`)."""
        return (self.state, self.updated_at, self.acknowledged_at, self.completed_at, self.result,
                self.error_code, self.error_message, self.id, self.device_id, self.parameters,
                self.created_at, self.start, self.end)

    def accepted(self) -> dict[str, Any]:
        formatted = _FORMATTED
        body: dict[str, Any] = {
            "actionId": self.id,
            "state": self.state,
            "type": ACTION_TYPE,
            "createdAt": formatted[self.created_at],
        }
        start, end = self.start, self.end
        if start is not None:
            body["start"] = formatted[start]
        if end is not None:
            body["end"] = formatted[end]
        return body

    def summary(self) -> dict[str, Any]:
        formatted = _FORMATTED
        created = self.created_at
        return {
            "id": self.id,
            "type": ACTION_TYPE,
            "state": self.state,
            "command": self.command,
            "createdAt": formatted[created],
            "updatedAt": formatted[self.updated_at or created],
        }


class _SeqList:
    """Actions kept in creation order, as their `seq` numbers, for paging without a scan.

    The lists that keep growing (every action; each terminal state) hold the numbers in an
    `array`: no object per entry, nothing for the garbage collector to visit in a full pass.
    The book's `rows` maps a number to its action. Appends (the common case) are O(1); so is
    removing the oldest, which is how actions leave the `scheduled` and `acknowledged` lists of a
    busy tenant (they start in the order they were pushed): the list keeps a head index instead
    of moving every entry after it, and compacts once the dead head is half the list. Any other
    insert or removal finds its place by bisection and moves only the entries after it, which in
    practice are the few newest.
    """

    __slots__ = ("items", "head", "rows")

    def __init__(self, rows: list[Action], passing: bool = False) -> None:
        # An array ("Q": unsigned, whose item setter takes an int without the argument parser
        # that "q" goes through) for the lists that only grow: every action, and each terminal
        # state. A plain list for a state actions pass through (scheduled, acknowledged): it
        # stays short, and list operations are the interpreter's specialised fast paths.
        self.items: array[int] | list[int] = [] if passing else array("Q")
        self.head = 0  # entries before it were removed
        self.rows = rows  # the book's actions, by seq - 1

    def newest_seq(self) -> int:
        """The seq of the newest live entry; 0 when there is none."""
        items = self.items
        return items[-1] if len(items) > self.head else 0

    def append(self, seq: int) -> None:
        """Add an action newer than every one here."""
        self.items.append(seq)

    def add(self, seq: int) -> None:
        items = self.items
        if self.newest_seq() < seq:
            items.append(seq)
            return
        items.insert(bisect_left(items, seq, self.head, len(items)), seq)

    def remove(self, seq: int) -> None:
        items, head = self.items, self.head
        if len(items) > head and items[head] == seq:
            self.remove_oldest()
            return
        at = bisect_left(items, seq, head, len(items))
        if at < len(items) and items[at] == seq:
            del items[at]

    def remove_oldest(self) -> None:
        """Drop the oldest entry (there is one): the head moves on; no entry moves (nor is it
        cleared: a number holds nothing alive, and nothing reads before the head)."""
        items, head = self.items, self.head
        head += 1
        if head == len(items):
            del items[:]
            head = 0
        elif head > 32 and head * 2 > len(items):
            del items[:head]
            head = 0
        self.head = head

    def __len__(self) -> int:
        return len(self.items) - self.head

    def _live(self, start: int, end: int) -> list[Action]:
        rows = self.rows
        return [rows[seq - 1] for seq in self.items[start:end]]

    def last(self) -> Action | None:
        items = self.items
        if len(items) == self.head:
            return None
        return self.rows[items[-1] - 1]

    def page(self, offset: int, limit: int) -> list[Action]:
        """Oldest first: `offset` records skipped, at most `limit` returned; O(limit)."""
        start = self.head + offset
        return self._live(start, min(start + limit, len(self.items)))

    def page_newest_first(self, offset: int, limit: int) -> list[Action]:
        """Newest first, for listings that show the latest activity on top; O(limit)."""
        end = len(self.items) - offset
        if end <= self.head:
            return []
        return self._live(max(self.head, end - limit), end)[::-1]


class _Passing(_SeqList):
    """The tenant's list of a state its actions pass through (scheduled, acknowledged), in a deque:
    they leave it oldest first (a fleet's actions start and complete in the order they were
    pushed), which is one `popleft`, with no head index to move on and no compaction to watch for.
    It holds only live entries (its `head` stays 0). Any other removal or insert finds its place
    by bisection; a listing pages from the end it reads first, in O(offset + limit)."""

    __slots__ = ()

    def __init__(self, rows: list[Action]) -> None:
        self.items: deque[int] = deque()  # type: ignore[assignment]  # the base's items, as a deque
        self.head = 0
        self.rows = rows

    def remove(self, seq: int) -> None:
        items = self.items
        if items and items[0] == seq:
            items.popleft()  # the oldest, as actions usually leave
            return
        at = bisect_left(items, seq)
        if at < len(items) and items[at] == seq:
            del items[at]

    def remove_oldest(self) -> None:
        self.items.popleft()

    def page(self, offset: int, limit: int) -> list[Action]:
        rows = self.rows
        return [rows[seq - 1] for seq in islice(self.items, offset, offset + limit)]

    def page_newest_first(self, offset: int, limit: int) -> list[Action]:
        rows = self.rows
        return [rows[seq - 1] for seq in islice(reversed(self.items), offset, offset + limit)]


_NOTHING = _SeqList([])  # what a listing of a state a scope never held pages through (never added to)


class _Scope:
    """One listing scope (a tenant, or one device): every action, and the actions in each state
    (a state's list is made when the first action enters it; `completed`'s with the scope). A
    device's scope lists only the terminal states: its actions in a state they pass through are
    its `open` ones, which a listing filters (see `ActionBook.selection`)."""

    __slots__ = ("every", "by_state", "open", "rows", "seqs", "done")

    def __init__(self, rows: list[Action]) -> None:
        self.rows = rows
        self.every = _SeqList(rows)
        self.by_state: dict[str, _SeqList] = {}
        # The non-terminal actions, in creation order: what a push conflicts with (kept for a
        # device's scope only). A list, not a dict by id: a list stays tracked by the collector
        # while it is empty, where a dict emptied at each completion was untracked by a full
        # pass and tracked again, young, by the next push -- one more object per device-day
        # promoted through the generations.
        self.open: list[Action] = []
        # The numbers of `every` and of `completed`, at hand for the book's common moves.
        self.seqs = self.every.items
        self.done = self.listed("completed").items

    def listed(self, state: str) -> _SeqList:
        """The state's list, made if this scope never held the state."""
        listed = self.by_state.get(state)
        if listed is None:
            listed = self.by_state[state] = _SeqList(self.rows, state in NON_TERMINAL)
        return listed


class ActionBook:
    """Every action of one tenant, indexed so push, read, cancel and list never scan history.

    Actions are numbered in creation order (`seq`, from 1) and held once, by number, in `rows`;
    every other index holds numbers: `by_id` maps ids to numbers (a dict of strings and ints,
    which the garbage collector never tracks) and the listings are arrays of numbers (not
    containers it scans). So a full collection visits a retained action once, from `rows`, where
    it visited it from five places (the id map, the tenant's and the device's lists of every
    action and of its state). A device's open actions (the only ones a push conflicts with) are
    kept apart; listings page through creation-ordered lists per scope and per state. State
    changes go through :meth:`set_state`, which moves the action between the state lists.
    """

    def __init__(self) -> None:
        self.by_id: dict[str, int] = {}  # id -> seq
        self.rows: list[Action] = []  # by seq - 1
        self.tenant = tenant = _Scope(self.rows)
        self.devices: dict[str, _Scope] = {}
        self._seq = 0
        # The tenant holds a list for every state from the start: the states its actions pass
        # through in deques (see `_Passing`), the terminal ones in arrays.
        for state in ACTION_STATES:
            if state in NON_TERMINAL:
                tenant.by_state[state] = _Passing(self.rows)
            else:
                tenant.listed(state)
        # The lists a push and the platform's own moves touch, at hand without a lookup.
        self._every = tenant.seqs
        self._scheduled: deque[int] = tenant.by_state["scheduled"].items  # type: ignore[assignment]
        self._acknowledged: deque[int] = tenant.by_state["acknowledged"].items  # type: ignore[assignment]
        self._completed = tenant.done

    def __contains__(self, action_id: object) -> bool:
        return action_id in self.by_id

    def __getitem__(self, action_id: str) -> Action:
        return self.rows[self.by_id[action_id] - 1]

    def __len__(self) -> int:
        return len(self.by_id)

    def __iter__(self) -> Iterator[Action]:
        """Every action, in creation order."""
        return iter(self.rows)

    def get(self, action_id: str) -> Action | None:
        seq = self.by_id.get(action_id)
        return None if seq is None else self.rows[seq - 1]

    def _scope(self, device_id: str) -> _Scope:
        scope = self.devices[device_id] = _Scope(self.rows)
        return scope

    def add(self, action: Action) -> None:
        self._seq = seq = action.seq = self._seq + 1
        self.by_id[action.id] = seq
        self.rows.append(action)
        # The newest action sorts last in every list it joins: appended, no search.
        self._every.append(seq)
        scope = self.devices.get(action.device_id) or self._scope(action.device_id)
        scope.seqs.append(seq)
        state = action.state
        if state == "scheduled":
            self._scheduled.append(seq)
            scope.open.append(action)
            return
        self.tenant.listed(state).items.append(seq)
        if state in NON_TERMINAL:
            scope.open.append(action)
        else:
            scope.listed(state).items.append(seq)

    def set_state(self, action: Action, state: ActionState) -> None:
        old = action.state
        # The platform's two moves of a window, made in the order its actions were pushed: out of
        # the head of one tenant list and onto the end of the next (and, at completion, out of
        # the head of the device's open actions and onto the end of its completed ones). Checked
        # whole before anything changes; any other move takes the general path below.
        if old == "scheduled":
            if state == "acknowledged":
                seq = action.seq
                leaving, joining = self._scheduled, self._acknowledged
                if leaving[0] == seq and (not joining or joining[-1] < seq):
                    action.state = state
                    leaving.popleft()
                    joining.append(seq)
                    return  # still open: the device's open list holds it, whatever the state
        elif old == "acknowledged" and state == "completed":
            seq = action.seq
            scope = self.devices[action.device_id]
            leaving, ended, opened = self._acknowledged, self._completed, scope.open
            # The device's completed actions are among the tenant's: newer than every one of
            # those, the action is newer than every one of the device's, too.
            if leaving[0] == seq and opened[0] is action and (not ended or ended[-1] < seq):
                action.state = state
                leaving.popleft()
                ended.append(seq)
                del opened[0]
                scope.done.append(seq)
                return
        if old == state:
            return
        # Any other move, in any direction (a cancel, a failure, a move out of turn): out of the
        # old state's tenant list (from its head when the action is the oldest there, else found
        # by bisection) and into the new state's (appended when it is the newest there).
        action.state = state
        seq = action.seq
        tenant = self.tenant
        tenant.by_state[old].remove(seq)
        tenant.listed(state).add(seq)
        # The device's scope: its open actions, and a list per terminal state.
        scope = self.devices[action.device_id]
        if old in NON_TERMINAL:
            if state in NON_TERMINAL:
                return  # still open: the open list holds it, whatever the state
            opened = scope.open
            if opened and opened[0] is action:
                del opened[0]
            else:
                opened.remove(action)
        else:  # out of a terminal state (the platform never does this; the book allows it)
            scope.by_state[old].remove(seq)
            if state in NON_TERMINAL:
                opened = scope.open
                at = len(opened)
                while at and opened[at - 1].seq > seq:
                    at -= 1
                opened.insert(at, action)
                return
        # Into a terminal state's list: usually the newest there, so appended.
        scope.listed(state).add(seq)

    def has_open(self, device_id: str) -> bool:
        """Whether the device has any non-terminal action (what a push could conflict with)."""
        scope = self.devices.get(device_id)
        return scope is not None and len(scope.open) > 0  # len(): the interpreter's own fast path, unlike bool()

    def open_for(self, device_id: str) -> list[Action]:
        """The device's non-terminal actions, oldest first."""
        scope = self.devices.get(device_id)
        return list(scope.open) if scope is not None else []

    def latest_for(self, device_id: str) -> Action | None:
        scope = self.devices.get(device_id)
        return scope.every.last() if scope is not None else None

    def selection(self, device_id: str | None, state: str | None) -> _SeqList:
        """The creation-ordered list a listing pages through. A device's actions in a state they
        pass through are picked from its open actions, in O(open actions), as a push's conflict
        check reads them."""
        if device_id is None:
            scope: _Scope | None = self.tenant
        else:
            scope = self.devices.get(device_id)
        if scope is None:
            return _NOTHING
        if state is None:
            return scope.every
        if scope is not self.tenant and state in NON_TERMINAL:
            picked = _SeqList(self.rows, passing=True)
            picked.items = [action.seq for action in scope.open if action.state == state]
            return picked
        return scope.by_state.get(state, _NOTHING)
