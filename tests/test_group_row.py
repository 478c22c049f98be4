"""A scheduler row (Group) keeps the behaviour of the frozen dataclass it was: equal and hashed by
its nine fields, immutable, picklable and copyable with its physics, and carrying no instance dict."""

from __future__ import annotations

import copy
import pickle
import weakref

import pytest

from amps_sim.simulator.native_scheduler import Group, NativeScheduler
from amps_sim.simulator.profiles import load_profile


def _row(**changes: object) -> Group:
    fields: dict[str, object] = {
        "start": 60,
        "end": 299,
        "work_mode": "ForceDischarge",
        "owner": "amps",
        "action_id": "act_1",
        "fd_soc": 20,
        "fd_pwr": 2000,
        "min_soc_on_grid": 10,
        "max_soc": None,
    }
    fields.update(changes)
    return Group(**fields)  # type: ignore[arg-type]


def test_equal_and_hashed_by_its_nine_fields() -> None:
    row = _row()
    assert row == _row() and hash(row) == hash(_row())
    assert hash(row) == hash((60, 299, "ForceDischarge", "amps", "act_1", 20, 2000, 10, None))
    for name, other in [("start", 61), ("owner", "homeowner_app"), ("action_id", None), ("max_soc", 90)]:
        assert row != _row(**{name: other})
    # Only a Group equals a Group, whatever the values.
    assert row != (60, 299, "ForceDischarge", "amps", "act_1", 20, 2000, 10, None)
    assert row != row.physics
    assert len({row, _row(), _row(start=0)}) == 2


def test_no_field_and_no_new_attribute_can_be_set() -> None:
    row = _row()
    for name in ("start", "owner", "physics", "plain", "anything"):
        with pytest.raises(AttributeError):
            setattr(row, name, 0)
    with pytest.raises(AttributeError):
        del row.start
    assert not hasattr(row, "__dict__")
    assert row.start == 60


def test_pickle_and_copies_make_an_equal_row_with_its_physics() -> None:
    row = _row(fd_pwr=True)  # a bool: not looked up by value, so `plain` is None
    for again in (pickle.loads(pickle.dumps(row)), copy.copy(row), copy.deepcopy(row)):
        assert type(again) is Group and again == row
        assert again.physics == row.physics and again.plain is None
    plain = _row()
    assert pickle.loads(pickle.dumps(plain)).plain == (60, 299, "ForceDischarge", 20, 2000, 10, None)


def test_shared_rows_stay_shared_through_a_pickle() -> None:
    row = _row()
    first, second = pickle.loads(pickle.dumps(([row], (row,))))
    assert first[0] is second[0]


def test_repr_names_every_field() -> None:
    assert repr(_row(fd_soc=None, min_soc_on_grid=None, fd_pwr=None)) == (
        "Group(start=60, end=299, work_mode='ForceDischarge', owner='amps', action_id='act_1', "
        "fd_soc=None, fd_pwr=None, min_soc_on_grid=None, max_soc=None)"
    )


def test_a_pickled_scheduler_reads_back_equal_rows() -> None:
    profile = load_profile("foxess")
    scheduler = NativeScheduler(
        profile.default_max_group_count,
        profile.group_limits,
        profile.work_modes,
        enabled=True,
        groups=[_row(start=0, end=59), _row(start=120, end=179, action_id=None, owner="homeowner_app")],
        readback_reorder=True,
    )
    again = pickle.loads(pickle.dumps(scheduler))
    assert again.read_back() == scheduler.read_back()
    assert again.physics_key() == scheduler.physics_key()
    gone = weakref.ref(again.groups[0])
    again.replace([])
    assert gone() is None
