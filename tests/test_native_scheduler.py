import pytest

from amps_sim.simulator.native_scheduler import (
    Group,
    NativeError,
    NativeScheduler,
    format_minute,
    parse_minute,
)
from amps_sim.simulator.profiles import GroupLimits

MODES = ["SelfUse", "Feedin", "Backup", "ForceCharge", "ForceDischarge"]


def g(start: str, end: str, mode: str = "ForceCharge", owner: str = "homeowner_app", **kw) -> Group:
    return Group(parse_minute(start), parse_minute(end), mode, owner, **kw)


def sched(**kw) -> NativeScheduler:
    return NativeScheduler(kw.pop("max_group_count", 8), GroupLimits(), MODES, **kw)


def errno_of(groups, **kw) -> int:
    with pytest.raises(NativeError) as info:
        sched(**kw).replace(groups)
    return info.value.errno


def test_minute_text_round_trip_and_strictness():
    assert parse_minute("00:00") == 0 and parse_minute("23:59") == 1439 and parse_minute("06:59") == 419
    assert format_minute(419) == "06:59"
    for bad in ("24:00", "7:05", "07:5", "07:60", "0700", " 07:00", "07:00\n", "", None):
        with pytest.raises(ValueError):
            parse_minute(bad)
    with pytest.raises(ValueError):
        format_minute(1440)


def test_overlap_and_covers_are_inclusive():
    a, b = g("01:00", "01:59"), g("01:59", "02:30")
    assert a.overlaps(b) and b.overlaps(a)
    assert not a.overlaps(g("02:00", "03:00"))
    assert a.covers(60) and a.covers(119) and not a.covers(120)


def test_view_round_trip_omits_none():
    group = g("22:00", "23:59", "ForceDischarge", owner="amps", action_id="act_1", fd_soc=20, fd_pwr=3000)
    view = group.to_view()
    assert view == {
        "start": "22:00", "end": "23:59", "workMode": "ForceDischarge", "owner": "amps",
        "fdSoc": 20, "fdPwr": 3000, "actionId": "act_1",
    }
    assert Group.from_view(view) == group
    assert "maxSoc" not in g("00:00", "01:00").to_view()


def test_from_view_refuses_unknown_keys_and_bad_types():
    base = {"start": "01:00", "end": "02:00", "workMode": "SelfUse"}
    for bad in ({**base, "enable": 1}, {**base, "fdSoc": "20"}, {**base, "fdSoc": True}, {**base, "start": "1:00"}):
        with pytest.raises(ValueError):
            Group.from_view(bad)
    with pytest.raises(ValueError):
        Group.from_view({"start": "01:00", "end": "02:00"})


def test_overlap_is_refused_with_42023():
    assert errno_of([g("01:00", "03:00"), g("02:30", "04:00")]) == 42023
    assert errno_of([g("01:00", "03:00"), g("03:00", "04:00")]) == 42023  # inclusive end touches


def test_adjacent_groups_are_fine():
    s = sched()
    s.replace([g("01:00", "02:59"), g("03:00", "04:00"), g("04:01", "04:01")])
    assert len(s.groups) == 3


def test_all_day_group_beside_another_is_refused():
    with pytest.raises(NativeError) as info:
        sched().replace([g("00:00", "23:59", "SelfUse"), g("12:00", "12:30")])
    assert info.value.errno == 42023 and "all-day" in info.value.message
    sched().replace([g("00:00", "23:59", "SelfUse")])  # alone it is fine


def test_crossing_midnight_is_refused():
    assert errno_of([g("22:00", "05:00")]) == 40257


def test_one_minute_group_is_allowed():
    s = sched()
    s.replace([g("07:00", "07:00")])
    assert s.active_group(420) is not None and s.active_group(421) is None


def test_too_many_groups():
    groups = [g(f"{h:02d}:00", f"{h:02d}:30") for h in range(9)]
    with pytest.raises(NativeError) as info:
        sched().replace(groups)
    assert info.value.errno == 40257 and "too many groups" in info.value.message
    sched().replace(groups[:8])
    assert errno_of(groups[:3], max_group_count=2) == 40257


@pytest.mark.parametrize(
    "params",
    [
        {"fd_soc": 5}, {"fd_soc": 101}, {"min_soc_on_grid": 9}, {"max_soc": 101},
        {"fd_pwr": -1}, {"fd_pwr": 10501}, {"fd_soc": 20, "min_soc_on_grid": 30},
    ],
)
def test_bad_parameters_are_40257(params):
    assert errno_of([g("01:00", "02:00", "ForceDischarge", **params)]) == 40257


def test_parameters_at_the_limits_are_accepted():
    sched().replace([g("01:00", "02:00", "ForceDischarge", fd_soc=10, fd_pwr=10500, min_soc_on_grid=10, max_soc=100)])


def test_unknown_work_mode_is_40257():
    assert errno_of([g("01:00", "02:00", "Invalid")]) == 40257


def test_replace_is_all_or_nothing():
    s = sched()
    s.replace([g("01:00", "02:00")])
    with pytest.raises(NativeError):
        s.replace([g("05:00", "06:00"), g("05:30", "07:00")])
    assert [x.start for x in s.groups] == [60]


def test_construction_validates_too():
    with pytest.raises(NativeError):
        sched(groups=[g("03:00", "02:00")])


def test_read_back_reverses_when_quirk_on():
    rows = [g("01:00", "01:59", owner="amps"), g("03:00", "03:59"), g("05:00", "05:59")]
    quirky, plain = sched(groups=rows, readback_reorder=True), sched(groups=rows)
    assert quirky.read_back() == rows[::-1]
    assert quirky.read_back()[-1].owner == "amps"  # written to slot 1, read in the last used slot
    assert list(quirky.groups) == rows  # storage keeps slot order
    assert plain.read_back() == rows


def test_boundaries_are_starts_and_ends_plus_one():
    s = sched(groups=[g("01:00", "01:59"), g("02:00", "02:30"), g("22:00", "23:59")])
    assert s.boundaries() == [60, 120, 151, 1320]


def test_active_group_ignores_flag():
    s = sched(groups=[g("01:00", "01:59")])
    assert not s.enabled
    assert s.active_group(90) is not None and s.active_group(120) is None
    s.set_enabled(True)
    assert s.enabled


def test_a_row_set_passed_before_is_not_taken_for_a_lookalike_of_other_types():
    # Row sets that passed are recognised by what they do, across schedulers of the same rules
    # (the platform writes new row objects with the same values every day). True == 1 and
    # 60.0 == 60 in Python, so a bool or a float where an int belongs must still be refused.
    sched().replace([Group(60, 299, "ForceCharge", "amps", fd_pwr=1)])
    for lookalike in (
        Group(60, 299, "ForceCharge", "amps", fd_pwr=True),
        Group(60.0, 299, "ForceCharge", "amps", fd_pwr=1),  # type: ignore[arg-type]
    ):
        with pytest.raises(NativeError) as info:
            sched().replace([lookalike])
        assert info.value.errno == 40257


def test_a_row_set_passed_under_other_rules_is_checked_again():
    rows = [g("01:00", "01:59"), g("03:00", "03:59")]
    sched(max_group_count=8).replace(rows)
    assert errno_of(rows, max_group_count=1) == 40257
    narrow = NativeScheduler(8, GroupLimits(max_soc=(10, 90)), MODES)
    wide = sched()
    row = [g("01:00", "01:59", max_soc=95)]
    wide.replace(row)
    with pytest.raises(NativeError):
        narrow.replace(row)


def test_the_scheduler_keeps_no_row_it_no_longer_stores():
    import gc
    import weakref

    s = sched()
    row = Group(60, 299, "ForceCharge", "amps", action_id="act_1", max_soc=95)
    s.replace([row])
    gone = weakref.ref(row)
    del row
    s.replace([])
    gc.collect()
    assert gone() is None


def test_a_row_is_frozen_and_carries_its_physics():
    row = Group(60, 299, "ForceCharge", "amps", action_id="act_1", max_soc=95)
    assert row.physics == (60, 299, "ForceCharge", None, None, None, 95) == row.plain
    assert Group(60, 299, "ForceCharge", "amps", fd_pwr=True).plain is None
    assert row == Group(60, 299, "ForceCharge", "amps", "act_1", max_soc=95)
    assert hash(row) == hash(Group(60, 299, "ForceCharge", "amps", "act_1", max_soc=95))
    with pytest.raises(AttributeError):
        row.start = 0  # type: ignore[misc]
