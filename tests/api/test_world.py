"""Battery physics and the control API, through HTTP."""

from __future__ import annotations

from tests.conftest import Api, direct, foxess


async def test_charge_integrates_soc_to_its_target(sim: Api) -> None:
    api = await sim.tenant([foxess(soc=20)])
    await api.push("dev_fox", "charge", parameters={"target": {"value": 80, "unit": "percent"}, "power": {"value": 2.5, "unit": "kw"}})
    await api.advance(by="3s")
    state = (await api.device("dev_fox"))["state"]
    assert state["status"] == "charging" and state["chargeRate"] == 2.5 and state["currentMode"] == "charge"
    await api.advance(by="2h")  # 5 kWh into a 10 kWh battery: +50 %, capped at the 80 % target
    state = (await api.device("dev_fox"))["state"]
    assert state["level"] == 70.0
    await api.advance(by="1h")
    state = (await api.device("dev_fox"))["state"]
    assert state["level"] == 80.0 and state["chargeRate"] == 0 and state["status"] == "idle"


async def test_discharge_stops_at_its_floor(sim: Api) -> None:
    api = await sim.tenant([foxess(soc=60)])
    await api.push("dev_fox", "discharge", parameters={"target": {"value": 30, "unit": "percent"}})
    await api.advance(by="3s")
    state = (await api.device("dev_fox"))["state"]
    assert state["chargeRate"] == -5.0 and state["status"] == "discharging"
    await api.advance(by="5h")
    state = (await api.device("dev_fox"))["state"]
    assert state["level"] == 30.0 and state["status"] == "idle"


async def test_idle_holds_charge(sim: Api) -> None:
    api = await sim.tenant([foxess(soc=55)])
    await api.push("dev_fox", "idle")
    await api.advance(by="1d")
    state = (await api.device("dev_fox"))["state"]
    assert state["level"] == 55.0 and state["currentMode"] == "idle"


async def test_self_use_follows_a_deterministic_day(sim: Api) -> None:
    first = await sim.tenant([foxess(soc=50)])
    second = await sim.tenant([foxess(soc=50)])
    await first.advance(by="1d")
    for _ in range(24):
        await second.advance(by="1h")
    a, b = (await first.device("dev_fox"))["state"], (await second.device("dev_fox"))["state"]
    assert a == b and a["currentMode"] == "auto.balanced"
    assert 10.0 <= a["level"] <= 100.0


async def test_windowed_charge_moves_soc_only_inside_the_window(sim: Api) -> None:
    api = await sim.tenant([foxess(soc=30)], now="2026-05-08T20:00:00Z")
    await api.push("dev_fox", "charge", start="2026-05-09T02:00:00+01:00", end="2026-05-09T03:00:00+01:00",
                   parameters={"power": {"value": 5, "unit": "kw"}})
    await api.advance(to="2026-05-09T01:00:05Z")
    inside = (await api.device("dev_fox"))["state"]
    assert inside["currentMode"] == "charge" and inside["chargeRate"] == 5.0
    await api.advance(to="2026-05-09T02:00:00Z")
    after = (await api.device("dev_fox"))["state"]
    assert after["currentMode"] == "auto.balanced"


async def test_direct_device_window_reverts_at_end(sim: Api) -> None:
    api = await sim.tenant([direct()])
    reply = await api.push("dev_direct", "discharge", start="2026-05-08T09:00:00Z", end="2026-05-08T10:00:00Z")
    assert reply.status == 202
    await api.advance(to="2026-05-08T09:30:00Z")
    assert (await api.device("dev_direct"))["state"]["currentMode"] == "discharge"
    await api.advance(to="2026-05-08T10:00:00Z")
    assert (await api.device("dev_direct"))["state"]["currentMode"] == "auto.balanced"
    assert (await api.truth("dev_direct"))["scheduler"] is None


async def test_direct_device_accepts_writes_and_capabilities(sim: Api) -> None:
    api = await sim.tenant([direct()])
    device = await api.device("dev_direct")
    assert device["settings"] == {"scheduler_enabled": False, "timeZone": "Europe/Berlin"}
    assert device["commands"]["charge"]["execution"] == ["immediate", "scheduled", "windowed"]
    assert device["commands"]["idle"] == {"parameters": {}, "execution": ["immediate", "scheduled"]}
    assert device["commands"]["charge"]["parameters"]["power"] == {"unit": "kw", "min": 0, "max": 5.0}
    assert device["conflictStrategies"] == ["cancel_and_replace", "queue_after"]
    reply = await api.push("dev_direct", "discharge", start="2026-05-08T09:00:00Z", end="2026-05-08T10:00:00Z")
    assert reply.status == 202


async def test_clock_never_goes_backwards_and_counts_events(api: Api) -> None:
    await api.push("dev_fox", "idle", start="10m")
    done = await api.advance(by="1h")
    assert done == {"now": "2026-05-08T09:00:00.000Z", "eventsProcessed": 3, "webhookAttempts": 0}
    back = await api.call("POST", "/_sim/clock/advance", json_body={"to": "2026-05-08T08:30:00Z"})
    assert back.status == 422 and back.code == "CLOCK_BACKWARDS"
    for body in ({}, {"by": "1h", "to": "2026-05-09T00:00:00Z"}, {"by": "soon"}, {"by": "-1h"}, {"by": 5}, {"to": "2026-05-09"}):
        reply = await api.call("POST", "/_sim/clock/advance", json_body=body)
        assert reply.status == 400 and reply.code == "INVALID_REQUEST", body
    clock = await api.call("GET", "/_sim/clock")
    assert clock.body == {"now": "2026-05-08T09:00:00.000Z", "mode": "virtual"}


async def test_reset_restores_the_world_it_was_created_with(sim: Api) -> None:
    api = await sim.tenant([foxess(soc=40)])
    await api.push("dev_fox", "charge")
    await api.advance(by="2h")
    await api.call("POST", "/_sim/devices", json_body=direct())
    reset = await api.call("POST", "/_sim/reset")
    assert reset.body == {"now": "2026-05-08T08:00:00.000Z", "mode": "virtual"}
    assert (await api.call("GET", "/actions")).body["total"] == 0
    assert (await api.call("GET", "/battery/dev_direct")).status == 404
    assert (await api.device("dev_fox"))["state"]["level"] == 40.0


async def test_device_crud_and_spec_rejections(api: Api) -> None:
    created = await api.call("POST", "/_sim/devices", json_body={"id": "dev_new"})
    assert created.status == 201 and created.body["profile"] == "foxess" and created.body["serialNumber"]
    assert (await api.call("POST", "/_sim/devices", json_body={"id": "dev_new"})).code == "DEVICE_EXISTS"
    for bad in ({"id": "x", "colour": "red"}, {"id": "x", "timeZone": "../etc/passwd"}, {"id": "x", "profile": "tesla"},
                {"id": "x", "battery": {"soc": "50"}}, {"id": "x", "battery": {"soc": 150}}, {"id": "bad id"},
                {"id": "x", "scheduler": {"enabled": "yes"}}, {"id": "x", "scheduler": {"groups": [{"start": "25:00", "end": "26:00", "workMode": "SelfUse"}]}}):
        reply = await api.call("POST", "/_sim/devices", json_body=bad)
        assert reply.status == 400 and reply.code == "INVALID_REQUEST", bad
    # A well-formed zone name the tz database does not hold is refused, not malformed.
    reply = await api.call("POST", "/_sim/devices", json_body={"id": "x", "timeZone": "Mars/Olympus"})
    assert reply.status == 422 and reply.code == "UNKNOWN_TIME_ZONE"
    overlap = {"id": "x", "scheduler": {"groups": [{"start": "01:00", "end": "02:00", "workMode": "SelfUse"},
                                                   {"start": "02:00", "end": "03:00", "workMode": "SelfUse"}]}}
    reply = await api.call("POST", "/_sim/devices", json_body=overlap)
    assert reply.status == 422 and reply.code == "SCHEDULE_REJECTED"
    assert (await api.call("DELETE", "/_sim/devices/dev_new")).status == 204
    assert (await api.call("GET", "/_sim/devices/dev_new")).code == "DEVICE_NOT_FOUND"
    assert (await api.call("DELETE", "/_sim/devices/dev_new")).code == "DEVICE_NOT_FOUND"


async def test_foreign_scheduler_writes_follow_native_rules(api: Api) -> None:
    ok = await api.write_rows("dev_fox", [{"start": "22:00", "end": "23:59", "workMode": "ForceCharge", "fdPwr": 3000}], enabled=True)
    assert ok.status == 200 and ok.body["scheduler"]["groups"][0]["owner"] == "homeowner_app"
    assert (await api.device("dev_fox"))["settings"]["scheduler_enabled"] is True
    cases = [
        ([{"start": "22:00", "end": "23:59", "workMode": "SelfUse"}, {"start": "23:00", "end": "23:30", "workMode": "SelfUse"}], 42023),
        ([{"start": "00:00", "end": "23:59", "workMode": "SelfUse"}, {"start": "23:00", "end": "23:30", "workMode": "SelfUse"}], 42023),
        ([{"start": "23:00", "end": "01:00", "workMode": "SelfUse"}], 40257),
        ([{"start": "01:00", "end": "02:00", "workMode": "Turbo"}], 40257),
        ([{"start": "01:00", "end": "02:00", "workMode": "ForceDischarge", "fdSoc": 5}], 40257),
        ([{"start": f"{h:02d}:00", "end": f"{h:02d}:30", "workMode": "SelfUse"} for h in range(9)], 40257),
    ]
    for groups, errno in cases:
        reply = await api.write_rows("dev_fox", groups)
        assert reply.status == 422 and reply.code == "SCHEDULE_REJECTED" and reply.details["errno"] == errno, groups
    # Nothing of a refused write lands.
    assert [g["start"] for g in (await api.truth("dev_fox"))["scheduler"]["groups"]] == ["22:00"]
    assert (await api.call("PUT", "/_sim/devices/dev_fox/scheduler", json_body={"groups": [], "extra": 1})).status == 400


async def test_fault_requests_are_validated(api: Api) -> None:
    assert (await api.fault("dev_fox", "meteor")).status == 400
    assert (await api.fault("dev_fox", "offline", 0)).status == 400
    assert (await api.fault("dev_missing", "offline")).code == "DEVICE_NOT_FOUND"


async def test_tenant_creation_is_validated(sim: Api) -> None:
    for bad in ({"clock": {"mode": "sideways"}}, {"devices": [{"id": "a", "wat": 1}]}, {"clock": {"now": "yesterday"}},
                {"clock": {"now": "2026-05-08T08:00:00"}}, {"surprise": True}):
        reply = await sim.call("POST", "/_sim/tenants", key=None, json_body=bad)
        assert reply.status == 400 and reply.code == "INVALID_REQUEST", bad
    dupes = await sim.call("POST", "/_sim/tenants", key=None, json_body={"devices": [{"id": "a"}, {"id": "a"}]})
    # Well formed, but two devices cannot share an id: the same 409 as POST /_sim/devices gives.
    assert dupes.status == 409 and dupes.code == "DEVICE_EXISTS"
    assert "more than once" in dupes.details["errors"][0]["message"]
    bare = await sim.call("POST", "/_sim/tenants", key=None)
    assert bare.status == 201


async def test_deleting_a_device_ends_its_pending_actions(api: Api) -> None:
    reply = await api.push("dev_fox", "charge", start="1h")
    await api.call("DELETE", "/_sim/devices/dev_fox")
    assert (await api.action(reply.body["actionId"]))["state"] == "cancelled"
    await api.advance(by="2h")
