"""Scheduler, flag and setting endpoints of the native API: shapes per version and every errno rule."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.foxess.conftest import DEVICE_ID, SERIAL, NativeClient, fox_device, oem_key, v3_group

EVENING = {"start": "17:00", "end": "19:59", "workMode": "SelfUse"}


def owners(view: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((g["start"], g["end"], g["owner"]) for g in view["scheduler"]["groups"])


# ------------------------------------------------------------------------------- reads
async def test_v0_and_v1_reads_pad_every_slot_and_show_the_reordering(sim: Api) -> None:
    api = await sim.tenant([fox_device(groups=[EVENING])])
    client = NativeClient(api.client, await oem_key(api))
    v0 = (await client.schedule(0)).result
    assert v0["enable"] == 0 and len(v0["groups"]) == 8
    # The quirk: the one row written to slot 1 reads back in the last slot.
    assert [g["workMode"] for g in v0["groups"]] == ["Invalid"] * 7 + ["SelfUse"]
    assert v0["groups"][0] == {"enable": 0, "startHour": 0, "startMinute": 0, "endHour": 0, "endMinute": 0,
                               "workMode": "Invalid", "minSocOnGrid": 0, "fdSoc": 0, "fdPwr": 0}
    assert v0["groups"][-1] == {"enable": 1, "startHour": 17, "startMinute": 0, "endHour": 19, "endMinute": 59,
                                "workMode": "SelfUse", "minSocOnGrid": 10, "fdSoc": 10, "fdPwr": 5000}
    v1 = (await client.schedule(1)).result
    assert v1["groups"][-1]["maxSoc"] == 100 and "maxGroupCount" not in v1


async def test_v2_and_v3_reads_list_active_groups_and_limits(sim: Api) -> None:
    api = await sim.tenant([fox_device(enabled=True, groups=[EVENING, {"start": "01:00", "end": "01:59", "workMode": "Backup"}])])
    client = NativeClient(api.client, await oem_key(api))
    v2 = (await client.schedule(2)).result
    assert v2["enable"] == 1 and v2["maxGroupCount"] == 8 and "properties" not in v2
    # Reversed slot order: clients must match rows by content.
    assert [g["workMode"] for g in v2["groups"]] == ["Backup", "SelfUse"]
    assert v2["groups"][1]["extraParam"] == {"minSocOnGrid": 10, "fdSoc": 10, "fdPwr": 5000, "maxSoc": 100}
    v3 = (await client.schedule(3)).result
    props = v3["properties"]
    assert set(props) == {"minsocongrid", "fdsoc", "fdpwr", "maxsoc", "workmode"}
    assert props["fdsoc"]["range"] == {"min": 10.0, "max": 100.0}
    assert props["fdpwr"]["range"] == {"min": 0.0, "max": 10500.0}
    assert props["workmode"]["enumList"] == ["SelfUse", "Feedin", "Backup", "ForceCharge", "ForceDischarge"]
    assert all("owner" not in g and "actionId" not in g for g in v3["groups"])


# ------------------------------------------------------------------------------ writes
async def test_writes_in_every_version_store_foreign_rows_owned_by_the_party(sim: Api) -> None:
    api = await sim.tenant([fox_device()])
    client = NativeClient(api.client, await oem_key(api, party="third_party"))
    flat = {"startHour": 1, "startMinute": 0, "endHour": 1, "endMinute": 59, "workMode": "ForceCharge"}
    writes = {
        0: {**flat, "enable": 1, "minSocOnGrid": 10, "fdSoc": 90, "fdPwr": 3000},
        1: {**flat, "maxSoc": 95},
        2: {**flat, "extraParam": {"fdPwr": 2500, "maxSoc": 90}},
        3: {**flat, "isRemainMode": False, "extraParam": {"minSocOnGrid": 10, "maxSoc": 80, "fdSoc": 80, "fdPwr": 2000}},
    }
    for version, group in writes.items():
        extra = {"isDefault": False} if version == 3 else {}
        reply = await client.write([group], version=version, **extra)
        assert reply.errno == 0, (version, reply.body)
        truth = await api.truth(DEVICE_ID)
        assert owners(truth) == [("01:00", "01:59", "third_party")]
    assert truth["scheduler"]["groups"][0] == {"start": "01:00", "end": "01:59", "workMode": "ForceCharge",
                                               "owner": "third_party", "minSocOnGrid": 10, "maxSoc": 80, "fdSoc": 80, "fdPwr": 2000}


async def test_a_v1_read_written_back_round_trips(sim: Api) -> None:
    api = await sim.tenant([fox_device(groups=[EVENING])])
    client = NativeClient(api.client, await oem_key(api))
    rows = (await client.schedule(1)).result["groups"]
    assert (await client.write(rows, version=1)).errno == 0  # the Invalid padding rows are unused slots
    truth = await api.truth(DEVICE_ID)
    assert owners(truth) == [("17:00", "19:59", "homeowner_app")]


async def test_unknown_keys_are_40257(native: NativeClient) -> None:
    flat = {"startHour": 1, "startMinute": 0, "endHour": 1, "endMinute": 59, "workMode": "SelfUse"}
    cases = [
        (0, [{**flat, "maxSoc": 90}], {}),  # a v1 key in a v0 write
        (3, [{**flat, "minSocOnGrid": 20}], {}),  # flat parameters in a nested version
        (1, [{**flat, "extraParam": {}}], {}),
        (3, [{**flat, "extraParam": {"importLimit": 0}}], {}),  # not supported by this device
        (2, [{**flat, "isRemainMode": False}], {}),
        (2, [flat], {"isDefault": True}),  # isDefault is v3 only
        (3, [{**flat, "owner": "me"}], {}),
        (3, [flat], {"colour": "red"}),
    ]
    for version, groups, extra in cases:
        reply = await native.write(groups, version=version, **extra)
        assert reply.errno == 40257, (version, groups, extra, reply.body)


async def test_bad_values_are_40257(native: NativeClient) -> None:
    def group(**changes: Any) -> dict[str, Any]:
        return {**v3_group("01:00", "01:59", "ForceDischarge", fdSoc=20, fdPwr=1000), **changes}

    cases = [
        group(startHour=24),
        group(endMinute=60),
        group(startHour=True),
        group(workMode="Standby"),
        group(workMode="Invalid"),
        group(startHour=2),  # start after end: no group crosses midnight
        group(extraParam={"fdSoc": 5}),
        group(extraParam={"fdPwr": 10501}),
        group(extraParam={"minSocOnGrid": 50, "fdSoc": 20}),
        group(extraParam={"fdSoc": 20.5}),
        group(enable=2),
        {"startHour": 1, "startMinute": 0, "endHour": 1, "workMode": "SelfUse"},
    ]
    for bad in cases:
        reply = await native.write([bad])
        assert reply.errno == 40257, (bad, reply.body)
    nine = [v3_group(f"{h:02d}:00", f"{h:02d}:29") for h in range(9)]
    assert (await native.write(nine)).errno == 40257
    assert (await native.post("/op/v3/device/scheduler/enable", {"deviceSN": SERIAL, "groups": {}})).errno == 40257
    assert (await native.post("/op/v3/device/scheduler/enable", {"deviceSN": SERIAL, "groups": [], "isDefault": 1})).errno == 40257
    assert (await native.post("/op/v3/device/scheduler/get", {})).errno == 40257


async def test_overlap_is_42023_and_writes_nothing(sim: Api) -> None:
    api = await sim.tenant([fox_device(groups=[EVENING])])
    client = NativeClient(api.client, await oem_key(api))
    reply = await client.write([v3_group("01:00", "02:59"), v3_group("02:30", "03:59")])
    assert reply.errno == 42023 and reply.result is None
    all_day = await client.write([v3_group("00:00", "23:59"), v3_group("01:00", "01:59")])
    assert all_day.errno == 42023
    assert owners(await api.truth(DEVICE_ID)) == [("17:00", "19:59", "homeowner_app")]


# -------------------------------------------------------------------------- flag and settings
async def test_flag_get_and_set_in_v0_and_v1(native: NativeClient, tenant: Api) -> None:
    for version in (0, 1):
        assert (await native.flag(1, version=version)).errno == 0
        got = await native.post(f"/op/v{version}/device/scheduler/get/flag", {"deviceSN": SERIAL})
        assert got.result == {"enable": 1, "support": True}
        assert (await tenant.truth(DEVICE_ID))["scheduler"]["enabled"] is True
        assert (await native.flag(0, version=version)).errno == 0
        got = await native.post(f"/op/v{version}/device/scheduler/get/flag", {"deviceSN": SERIAL})
        assert got.result["enable"] == 0
    for bad in (2, True, "1"):
        assert (await native.flag(bad)).errno == 40257  # type: ignore[arg-type]
    assert (await native.post("/op/v1/device/scheduler/set/flag", {"deviceSN": SERIAL})).errno == 40257


async def test_setting_writes_are_refused_while_the_schedule_runs(native: NativeClient, tenant: Api) -> None:
    path = "/op/v0/device/setting/set"
    assert (await native.post(path, {"sn": SERIAL, "key": "WorkMode", "value": "Backup"})).errno == 0
    assert (await tenant.truth(DEVICE_ID))["battery"]["workMode"] == "Backup"
    await native.flag(1)
    blocked = await native.post(path, {"sn": SERIAL, "key": "WorkMode", "value": "Feedin"})
    assert blocked.errno == 44096 and "schedule" in blocked.body["msg"]
    assert (await tenant.truth(DEVICE_ID))["battery"]["workMode"] == "Backup"
    await native.flag(0)
    assert (await native.post(path, {"sn": SERIAL, "key": "WorkMode", "value": "Feedin"})).errno == 0
    got = await native.post("/op/v0/device/setting/get", {"sn": SERIAL, "key": "WorkMode"})
    assert got.result["value"] == "Feedin"
    assert (await native.post(path, {"sn": SERIAL, "key": "WorkMode", "value": "ForceCharge"})).errno == 40257
    assert (await native.post(path, {"sn": SERIAL, "key": "MinSoc", "value": "10"})).errno == 40257


async def test_a_foreign_flag_switch_takes_the_flag_from_the_platform(tenant: Api, native: NativeClient) -> None:
    reply = await tenant.push(DEVICE_ID, "charge", start="1h", end="1h")
    await tenant.advance(by="1h5s")
    assert (await tenant.truth(DEVICE_ID))["scheduler"]["enabled"] is True
    await native.flag(1)  # the homeowner now wants the scheduler on, whatever the platform does
    await tenant.advance(by="1h")
    truth = await tenant.truth(DEVICE_ID)
    assert truth["scheduler"]["groups"] == [] and truth["scheduler"]["enabled"] is True
    assert (await tenant.action(reply.body["actionId"]))["state"] == "completed"
