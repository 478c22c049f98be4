"""The device-side Mode Scheduler of a FoxESS-class inverter.

Groups are plant-local wall-clock minutes with no date and no zone: a group recurs every day and
the device alone decides which instant that is. The validation reproduces the OEM's errno
refusals so the platform meets the same failures it would meet on real hardware.
"""

from __future__ import annotations

import re
from dataclasses import FrozenInstanceError
from operator import attrgetter, is_, itemgetter
from typing import Any, Iterable

from .errnos import ERRNO_BAD_PARAMETER, ERRNO_TIME_OVERLAP, NativeError
from .memo import remember
from .profiles import GroupLimits

# The owner of the rows (and of the flag) the Amps platform writes; anything else is a foreign party.
PLATFORM_OWNER = "amps"
# The action marker of a platform row shared by every device that stores it: which action wrote
# the row on a device is that device's scheduler's record (`NativeScheduler.mark`), so a fleet's
# devices running the same window store one row object, not one per action.


class _SharedMark(str):
    """The marker's type: one object, pickled by its name, so `is` tells it from any string a
    client may send as a row's `actionId` (which stays that row's own marker)."""

    __slots__ = ()

    def __reduce__(self) -> str:
        return "SHARED_MARK"


SHARED_MARK: str = _SharedMark("amps:shared")
MINUTES_PER_DAY = 24 * 60
LAST_MINUTE = MINUTES_PER_DAY - 1
_PLAIN = frozenset({int, str, type(None)})
# What a row does, without who wrote it: start, end, work mode, fdSoc, fdPwr, minSocOnGrid, maxSoc.
Physics = tuple[int, int, str, int | None, int | None, int | None, int | None]


_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def format_minute(minute: int) -> str:
    """Minute of day → "HH:MM"."""
    if not 0 <= minute <= LAST_MINUTE:
        raise ValueError(f"minute of day out of range: {minute}")
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_minute(text: str) -> int:
    """ "HH:MM" (00:00..23:59, two digits each) → minute of day. Anything looser is a ValueError,
    because a lenient parse ("7:5", "24:00") would hide a client bug the real device rejects."""
    match = _HHMM.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not a wall-clock time HH:MM between 00:00 and 23:59: {text!r}")
    return int(match.group(1)) * 60 + int(match.group(2))


# view key ↔ Group attribute for the optional numeric parameters.
_PARAM_KEYS: dict[str, str] = {
    "fdSoc": "fd_soc",
    "fdPwr": "fd_pwr",
    "minSocOnGrid": "min_soc_on_grid",
    "maxSoc": "max_soc",
}
_VIEW_KEYS = frozenset({"start", "end", "workMode", "owner", "actionId", *_PARAM_KEYS})


_FIELDS = ("start", "end", "work_mode", "owner", "action_id", "fd_soc", "fd_pwr", "min_soc_on_grid", "max_soc")
_new_object = object.__new__
_set_attribute = object.__setattr__


class _Row:
    """The storage of a :class:`Group`: its slots, with nothing refusing writes. Only
    `row_of` makes one, fills it and turns it into the Group."""

    __slots__ = (*_FIELDS, "physics", "plain", "__weakref__")

    start: int  # minute of day, plant-local wall clock
    end: int  # minute of day, inclusive (FoxESS writes 06:59 for "until 07:00")
    work_mode: str
    owner: str  # "amps" marks platform rows; anything else is a foreign party
    action_id: str | None  # the writing action; SHARED_MARK on a platform row devices share (see `NativeScheduler.mark`)
    fd_soc: int | None
    fd_pwr: int | None  # watts
    min_soc_on_grid: int | None
    max_soc: int | None
    # What the row does, without who wrote it: start, end, work mode and parameters. Built with
    # the row (rows are immutable and come back on every write), so once per row object.
    physics: Physics
    # `physics` when every value in it is a plain int, str or None, else None: only such rows
    # are looked up by value (True == 1, so a bool would pass for an int).
    plain: Physics | None


class Group(_Row):
    """One scheduler row: immutable, equal and hashed by its nine fields (`physics` and `plain`
    follow from them), as the frozen dataclass it replaced was.

    Slots rather than a dict, so a row is one object for the collector to visit (a fleet keeps
    every device's rows and the platform makes a row per action). A frozen class refuses
    `self.x = ...`, which would leave only one `object.__setattr__` call per field to fill
    it; instead `row_of` fills a plain `_Row`, whose slot stores are direct, and then makes it
    a Group (same slots, so the layout allows the class change)."""

    __slots__ = ()

    def __new__(
        cls,
        start: int,
        end: int,
        work_mode: str,
        owner: str,
        action_id: str | None = None,
        fd_soc: int | None = None,
        fd_pwr: int | None = None,
        min_soc_on_grid: int | None = None,
        max_soc: int | None = None,
    ) -> Group:
        physics = (start, end, work_mode, fd_soc, fd_pwr, min_soc_on_grid, max_soc)
        return row_of(physics, plain_physics(physics), owner, action_id, cls)

    def _fields(self) -> tuple[Any, ...]:
        return (self.start, self.end, self.work_mode, self.owner, self.action_id, *self.physics[3:])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Group)
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[type[Group], tuple[Any, ...]]:
        # Pickled (and copied) as the call that makes it; `physics` and `plain` are made again.
        return (self.__class__, self._fields())

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}" for name, value in zip(_FIELDS, self._fields(), strict=True))
        return f"{self.__class__.__qualname__}({inner})"

    @property
    def all_day(self) -> bool:
        return self.start == 0 and self.end == LAST_MINUTE

    def overlaps(self, other: Group) -> bool:
        return self.start <= other.end and other.start <= self.end

    def covers(self, minute: int) -> bool:
        return self.start <= minute <= self.end

    def to_view(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "start": format_minute(self.start),
            "end": format_minute(self.end),
            "workMode": self.work_mode,
            "owner": self.owner,
        }
        for key, attr in _PARAM_KEYS.items():
            value = getattr(self, attr)
            if value is not None:
                view[key] = value
        if self.action_id is not None:
            view["actionId"] = self.action_id
        return view

    @classmethod
    def from_view(cls, data: dict[str, Any]) -> Group:
        """Inverse of :meth:`to_view`. Unknown keys and wrong types are ValueErrors, as the real
        device refuses keys it does not know rather than ignoring them."""
        unknown = set(data) - _VIEW_KEYS
        if unknown:
            raise ValueError(f"unknown group keys: {sorted(unknown)}")
        for key in ("start", "end", "workMode"):
            if key not in data:
                raise ValueError(f"group is missing {key!r}")
        work_mode, owner = data["workMode"], data.get("owner", "homeowner_app")
        action_id = data.get("actionId")
        if not isinstance(work_mode, str) or not isinstance(owner, str):
            raise ValueError("workMode and owner must be strings")
        if action_id is not None and not isinstance(action_id, str):
            raise ValueError("actionId must be a string")
        params: dict[str, int | None] = {}
        for key, attr in _PARAM_KEYS.items():
            value = data.get(key)
            # bool is an int subclass; a true/false here is a client bug, not 1/0.
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{key} must be an integer")
            params[attr] = value
        return cls(
            start=parse_minute(data["start"]),
            end=parse_minute(data["end"]),
            work_mode=work_mode,
            owner=owner,
            action_id=action_id,
            **params,
        )


def plain_physics(physics: Physics) -> Physics | None:
    """`physics` when every value in it is a plain int, str or None (see `_Row.plain`), else None."""
    return physics if _PLAIN.issuperset(map(type, physics)) else None


def row_of(
    physics: Physics, plain: Physics | None, owner: str, action_id: str | None, cls: type[Group] = Group
) -> Group:
    """The row with this physics (a tuple it keeps, so rows made from one tuple share it), owner
    and action id; `plain` is `plain_physics(physics)`, which a caller making many rows of one
    physics works out once (see `device.group_for_drive`)."""
    row = _new_object(_Row)
    row.start, row.end, row.work_mode, row.fd_soc, row.fd_pwr, row.min_soc_on_grid, row.max_soc = physics
    row.owner = owner
    row.action_id = action_id
    row.physics = physics
    row.plain = plain
    _set_attribute(row, "__class__", cls)
    return row  # type: ignore[return-value]  # a Group now


def _overlap(groups: list[Group]) -> NativeError:
    """The refusal for rows of which two overlap (an all-day row beside others, first)."""
    if any(group.all_day for group in groups):
        return NativeError(ERRNO_TIME_OVERLAP, "time overlap: an all-day group cannot sit beside other groups")
    first, second = next((a, b) for i, a in enumerate(groups) for b in groups[i + 1 :] if a.overlaps(b))
    return NativeError(ERRNO_TIME_OVERLAP, f"time overlap: {_describe(first)} and {_describe(second)}")


_START = attrgetter("start")
_FIRST = itemgetter(0)
_PLAIN_ROW = attrgetter("plain")


_PHYSICS = attrgetter("physics")
# Row sets that passed validation, per set of rules (slot count, limits, work modes): the rows'
# plain physics in slot order -> the same sorted by start. Shared by the schedulers of one
# profile, so a fleet validates each distinct daily row set once, and no row object is kept.
_ValidSets = dict[tuple[Physics | None, ...], tuple[Physics, ...]]
_VALID_SETS: dict[tuple[Any, ...], _ValidSets] = {}
_SETS_KEPT = 4096


def _valid_sets_for(max_group_count: int, limits: GroupLimits, work_modes: tuple[str, ...]) -> _ValidSets:
    rules = (max_group_count, limits, work_modes)
    table = _VALID_SETS.get(rules)
    if table is None:
        # When full it starts afresh: schedulers keep their tables; new ones start empty.
        table = remember(_VALID_SETS, rules, {}, 64)
    return table


# Row sets as devices were built with them -> one tuple of them, shared: a fleet built from one
# spec holds its homeowner rows once rather than once per device (rows are immutable, and a
# device never changes the tuple it stores, only replaces it).
_SHARED_SETS: dict[tuple[Group, ...], tuple[Group, ...]] = {}


def shared_rows(groups: Iterable[Group]) -> tuple[Group, ...]:
    """An equal row set (same fields in the same order), made of rows other callers may share."""
    groups = tuple(groups)
    shared = _SHARED_SETS.get(groups)
    if shared is None:
        shared = remember(_SHARED_SETS, groups, groups, _SETS_KEPT)  # when full, shared afresh
    return shared


# The row set a scheduler stored last after validating it (or finding it validated), its rules'
# table and its physics, replaced whole: the platform writes one merged tuple to a fleet's devices
# in a row (`Platform._merged`), so each device after the first stores it with no lookup by value.
# The tuple is held, so its identity names it; only a set devices may share is held (no row in it
# marked with its own action: see `_shareable`), so no scheduler keeps a row of its own alive.
_last_valid: tuple[tuple[Group, ...], _ValidSets | None, tuple[Physics, ...]] = ((), None, ())


def _shareable(groups: tuple[Group, ...]) -> bool:
    """Whether no row of `groups` carries its own action's marker (a row marked with one is one
    device's; unmarked rows and the platform's `SHARED_MARK` rows are what devices share)."""
    for group in groups:
        marker = group.action_id
        if marker is not None and marker is not SHARED_MARK:
            return False
    return True


def _sorted_physics(groups: tuple[Group, ...]) -> tuple[Physics, ...]:
    return tuple(sorted(map(_PHYSICS, groups), key=_FIRST))


def _describe(group: Group) -> str:
    return f"{format_minute(group.start)}-{format_minute(group.end)} {group.work_mode}"


class NativeScheduler:
    """The flag plus the stored group list, in slot order."""

    # The physics key `boundaries()` last made its list from: None until asked (and in a scheduler
    # restored from a snapshot taken before it was kept), so the list is made then.
    _boundaries_of: tuple[Physics, ...] | None = None

    def __init__(
        self,
        max_group_count: int,
        limits: GroupLimits,
        work_modes: list[str],
        *,
        enabled: bool = False,
        groups: Iterable[Group] = (),
        readback_reorder: bool = False,
    ) -> None:
        if max_group_count < 1:
            raise ValueError("a native scheduler needs at least one slot")
        self.max_group_count = max_group_count
        self.limits = limits
        self.work_modes = tuple(work_modes)
        self.readback_reorder = readback_reorder
        self.enabled = enabled
        # Who last switched the flag, as rows carry who wrote them (None: as the device was built).
        self.flag_owner: str | None = None
        self.groups: tuple[Group, ...] = ()
        # `boundaries()` once asked for (None before: no list per scheduler until then), made
        # from the physics key `_boundaries_of` (a class-level None until then).
        self._boundaries: list[int] | None = None
        # The stored rows' physics sorted by start, and the `groups` it was made from (a device
        # makes its regime from it; see `physics_key`).
        self.physics: tuple[Physics, ...] = ()
        self.physics_of: tuple[Group, ...] = ()
        # The row set stored before the present one, and its physics, kept while the present
        # set is larger, else (). A platform window writes its row beside the homeowner's rows
        # and its cleanup writes those rows back, the very objects: then that set is stored
        # again, as it was. A write that drops rows thus releases them at once; a write that
        # adds rows keeps the set it replaced, whose rows it usually holds too (any it dropped
        # stay alive until the next write).
        self._previous: tuple[Group, ...] = ()
        self._previous_physics: tuple[Physics, ...] = ()
        self._valid_sets = _valid_sets_for(max_group_count, limits, self.work_modes)
        # The action that wrote each stored shared platform row (`SHARED_MARK`) on this device:
        # `marked[i]` wrote `marked_rows[i]`. Set by the platform after its write (`mark`); an
        # entry goes when its row is no longer stored. Two lists for the scheduler's life,
        # changed in place (a device holds a row or two of the platform's at a time).
        self.marked_rows: list[Group] = []
        self.marked: list[str] = []
        self.replace(groups)

    def validate(self, groups: Iterable[Group]) -> tuple[Physics, ...]:
        """Refuse `groups` (a NativeError) unless the device would store them; else their physics
        sorted by start. A row set of plain values that passed before under the same rules (the
        platform rewrites the same rows every day, as new objects) is recognised by value."""
        groups = tuple(groups)
        written = tuple(map(_PLAIN_ROW, groups))
        known = self._valid_sets.get(written)
        if known is not None:
            return known
        if len(groups) > self.max_group_count:
            raise NativeError(
                ERRNO_BAD_PARAMETER,
                f"too many groups: {len(groups)} given, the device has {self.max_group_count} slots",
            )
        for group in groups:
            self._validate_one(group)
        if len(groups) > 1:
            # By start, rows clear of each other have each end before the next start; any overlap
            # (an all-day row overlaps everything) shows between neighbours. The refusal itself
            # names the first offending pair in slot order, as the device reports it.
            previous_end = -1
            for group in sorted(groups, key=_START):
                if group.start <= previous_end:
                    raise _overlap(list(groups))
                previous_end = group.end
        key = _sorted_physics(groups)
        if None not in written:
            # When full it starts afresh: a set validated again costs a full check, nothing more.
            remember(self._valid_sets, written, key, _SETS_KEPT)
        return key

    def _validate_one(self, group: Group) -> None:
        def refuse(reason: str) -> NativeError:
            return NativeError(ERRNO_BAD_PARAMETER, f"{reason} (group {group.start}-{group.end})")

        for name in ("start", "end"):
            value = getattr(group, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= LAST_MINUTE:
                raise refuse(f"{name} is not a minute of day: {value!r}")
        if group.start > group.end:
            # The device has no notion of a group crossing midnight; it takes two groups.
            raise refuse(f"start {format_minute(group.start)} is after end {format_minute(group.end)}")
        if group.work_mode not in self.work_modes:
            raise refuse(f"unknown work mode {group.work_mode!r}")
        ranges = {
            "fdSoc": (group.fd_soc, self.limits.fd_soc),
            "minSocOnGrid": (group.min_soc_on_grid, self.limits.min_soc_on_grid),
            "maxSoc": (group.max_soc, self.limits.max_soc),
            "fdPwr": (group.fd_pwr, (0, self.limits.fd_pwr_max_w)),
        }
        for key, (value, (low, high)) in ranges.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise refuse(f"{key} {value!r} outside {low}..{high}")
        if group.min_soc_on_grid is not None and group.fd_soc is not None and group.min_soc_on_grid > group.fd_soc:
            raise refuse(f"minSocOnGrid {group.min_soc_on_grid} is above fdSoc {group.fd_soc}")

    def replace(self, groups: Iterable[Group]) -> None:
        """Store `groups` as the whole list, or nothing at all when any rule fails."""
        global _last_valid
        stored = tuple(groups)
        previous = self._previous
        if len(stored) == len(previous) and all(map(is_, stored, previous)):
            # The row set stored before this one, the same objects in the same slots: it passed
            # the same rules then, and rows are immutable. Its tuple and physics serve again.
            stored, physics = previous, self._previous_physics
        else:
            last = _last_valid
            if last[0] is stored and last[1] is self._valid_sets:
                physics = last[2]  # the tuple a scheduler of these rules stored last (see `_last_valid`)
            else:
                known = self._valid_sets.get(tuple(map(_PLAIN_ROW, stored)))  # validate's first step, inlined
                physics = self.validate(stored) if known is None else known
                if _shareable(stored):
                    _last_valid = (stored, self._valid_sets, physics)
        marked_rows = self.marked_rows
        if not marked_rows:
            pass
        elif len(marked_rows) == 1:
            # One marked row, as a device holding one window's row has (its cleanup drops it).
            row = marked_rows[0]
            for group in stored:
                if group is row:
                    break
            else:
                marked_rows.clear()
                self.marked.clear()
        else:
            for at in range(len(marked_rows) - 1, -1, -1):
                row = marked_rows[at]
                for group in stored:
                    if group is row:
                        break
                else:
                    del marked_rows[at], self.marked[at]
        current = self.groups
        if len(stored) > len(current):  # see `_previous`
            self._previous = current
            self._previous_physics = self.physics if self.physics_of is current else self.physics_key()
        elif previous:
            self._previous = self._previous_physics = ()
        self.groups = self.physics_of = stored
        self.physics = physics

    def mark(self, rows: Iterable[Group], action_id: str) -> None:
        """Record that `action_id` wrote these stored shared rows on this device."""
        marked_rows, marked = self.marked_rows, self.marked
        for row in rows:
            if marked_rows:
                for at, held in enumerate(marked_rows):
                    if held is row:
                        marked[at] = action_id
                        break
                else:
                    marked_rows.append(row)
                    marked.append(action_id)
            else:  # none held, as a window's dispatch finds (its cleanup dropped the last): no walk
                marked_rows.append(row)
                marked.append(action_id)

    def action_of(self, group: Group) -> str | None:
        """The action marker of a stored row: its own, or for a shared platform row the action
        that wrote it on this device."""
        marker = group.action_id
        if marker is not SHARED_MARK:
            return marker
        marked_rows = self.marked_rows
        if marked_rows:
            if marked_rows[0] is group:  # the one row a device running one window has marked
                return self.marked[0]
            for at, row in enumerate(marked_rows):
                if row is group:
                    return self.marked[at]
        return None

    def rows_without(self, rows: Iterable[Group], action_id: str) -> list[Group]:
        """The rows whose action marker (`action_of`) is not `action_id`, in their order: what a
        window's cleanup writes back, in one call rather than one `action_of` call a row."""
        kept = []
        for group in rows:
            marker = group.action_id
            if marker is SHARED_MARK:
                marker = self.action_of(group)
            if marker != action_id:
                kept.append(group)
        return kept

    def row_views(self) -> list[dict[str, Any]]:
        """The stored rows as the simulator shows them, each with the action that wrote it."""
        views = []
        for group in self.groups:
            view = group.to_view()
            if group.action_id is SHARED_MARK:
                marker = self.action_of(group)
                if marker is None:
                    del view["actionId"]
                else:
                    view["actionId"] = marker
            views.append(view)
        return views

    def physics_key(self) -> tuple[Physics, ...]:
        """The stored rows' physics sorted by start: what a device's regime is made from."""
        groups = self.groups
        if self.physics_of is not groups:  # `groups` was set without `replace`
            self.physics, self.physics_of = _sorted_physics(groups), groups
        return self.physics

    def set_enabled(self, flag: bool) -> None:
        self.enabled = bool(flag)

    def read_back(self) -> list[Group]:
        # Reported on hardware: a row written to slot 1 comes back in the last used slot.
        # Reversing the stored order reproduces that, so index-matching clients break here too.
        return list(reversed(self.groups)) if self.readback_reorder else list(self.groups)

    def active_group(self, minute: int) -> Group | None:
        for group in self.groups:
            if group.covers(minute):
                return group
        return None

    def boundaries(self) -> list[int]:
        """Minutes of day at which the covering group may change."""
        # Made from the rows' physics (their starts and ends) and kept with the key it was made
        # from, so a write has nothing to forget, and no row is held by it.
        physics = self.physics_key()
        boundaries = self._boundaries
        if boundaries is None or self._boundaries_of is not physics:
            marks = {p[0] for p in physics} | {p[1] + 1 for p in physics if p[1] + 1 < MINUTES_PER_DAY}
            boundaries = self._boundaries = sorted(marks)
            self._boundaries_of = physics
        return boundaries
