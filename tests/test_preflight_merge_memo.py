"""The submission-time merge a fleet repeats is remembered only as a pass, and only for the same
stored rows, the same candidate rows and the same flags: a device whose rows (or whose push's
conflict policy) would be refused is refused every time, however many devices passed before it."""

from __future__ import annotations

from tests.conftest import Api, foxess

HOMEOWNER_NIGHT = {"start": "00:30", "end": "04:29", "workMode": "ForceCharge", "fdPwr": 3000, "maxSoc": 95}
OVERNIGHT = {"start": "2026-05-09T22:00:00+01:00", "end": "2026-05-10T05:00:00+01:00"}


async def test_a_pass_under_cancel_and_replace_does_not_pass_the_same_rows_without_it(sim: Api) -> None:
    # Both devices are built with equal rows, so they hold the one shared stored tuple.
    api = await sim.tenant([foxess("dev_a", enabled=True, groups=[HOMEOWNER_NIGHT]),
                            foxess("dev_b", enabled=True, groups=[HOMEOWNER_NIGHT])])
    passed = await api.push("dev_a", "charge", on_conflict="cancel_and_replace", **OVERNIGHT)
    assert passed.status == 202
    for _ in range(2):
        refused = await api.push("dev_b", "charge", **OVERNIGHT)
        assert refused.status == 409 and refused.code == "SCHEDULER_ACTIVE"
        assert refused.details["detectedAt"] == "submission_time"
        assert refused.details["reason"] == "foreign_scheduler_window_overlap"
    again = await api.push("dev_b", "charge", on_conflict="cancel_and_replace", **OVERNIGHT)
    assert again.status == 202


async def test_a_pass_on_empty_rows_does_not_pass_a_device_holding_foreign_rows(sim: Api) -> None:
    api = await sim.tenant([foxess("dev_a"), foxess("dev_c"), foxess("dev_b", enabled=True, groups=[HOMEOWNER_NIGHT])])
    for empty in ("dev_a", "dev_c"):
        assert (await api.push(empty, "charge", **OVERNIGHT)).status == 202
        refused = await api.push("dev_b", "charge", **OVERNIGHT)
        assert refused.status == 409 and refused.details["reason"] == "foreign_scheduler_window_overlap"
    assert (await api.call("GET", "/actions")).body["total"] == 2


def test_read_order_is_the_reversed_set_one_tuple_per_shared_set() -> None:
    from amps_sim.simulator.foxess.adapter import _READ_ORDERS, read_order
    from amps_sim.simulator.native_scheduler import Group

    homeowner = (Group(30, 269, "ForceCharge", "homeowner_app", fd_pwr=3000), Group(1020, 1199, "SelfUse", "homeowner_app"))
    first = read_order(homeowner)
    assert first == homeowner[::-1] and read_order(homeowner) is first
    equal = tuple(homeowner)[:1] + tuple(homeowner)[1:]  # an equal tuple, another object
    assert equal is not homeowner and read_order(equal) == first
    # A set holding an action's rows is one device's: read back in order, not remembered.
    ours = (*homeowner, Group(0, 299, "ForceCharge", "amps", "act_1", max_soc=90))
    assert read_order(ours) == ours[::-1] and id(ours) not in _READ_ORDERS


async def test_a_dispatch_under_cancel_and_replace_does_not_pass_the_same_rows_for_one_without_it(sim: Api) -> None:
    # dev_b's submission-time read fails (an injected transient fault), so its push is accepted
    # unchecked; at the window's start dev_a's dispatch (cancel_and_replace) merges first, over
    # the one stored tuple both devices hold. dev_b's own dispatch must merge again and refuse.
    api = await sim.tenant([foxess("dev_a", enabled=True, groups=[HOMEOWNER_NIGHT]),
                            foxess("dev_b", enabled=True, groups=[HOMEOWNER_NIGHT])])
    replacing = await api.push("dev_a", "charge", on_conflict="cancel_and_replace", **OVERNIGHT)
    assert replacing.status == 202
    assert (await api.fault("dev_b", "transient", 1)).status == 200
    unchecked = await api.push("dev_b", "charge", **OVERNIGHT)
    assert unchecked.status == 202
    await api.advance(to="2026-05-09T21:10:00Z")  # inside the window, after both dispatches
    assert (await api.action(replacing.body["actionId"]))["state"] == "completed"
    failed = await api.action(unchecked.body["actionId"])
    assert failed["state"] == "failed" and failed["errorCode"] == "SCHEDULER_ACTIVE", failed
    assert [g.get("actionId") for g in (await api.truth("dev_b"))["scheduler"]["groups"]] == [None]
