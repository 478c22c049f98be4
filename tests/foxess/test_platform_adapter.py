"""The platform reaches FoxESS-class devices through the same cloud rules a native client meets."""

from __future__ import annotations

from typing import Any

from amps_sim.simulator.errnos import refuse
from amps_sim.simulator.foxess.adapter import FoxessGateway, failure_for
from amps_sim.simulator.oem import DirectGateway, SchedulerBlocked
from amps_sim.simulator.web.common import TENANTS
from tests.conftest import NOW, Api, direct
from tests.foxess.conftest import DEVICE_ID, NativeClient, fox_device, oem_key

WINDOW = {"start": "2026-05-08T10:00:00+01:00", "end": "2026-05-08T11:00:00+01:00"}


async def quota_tenant(sim: Api, quotas: dict[str, Any]) -> Api:
    body = {"clock": {"mode": "virtual", "now": NOW}, "devices": [fox_device()], "oemQuotas": quotas}
    reply = await sim.call("POST", "/_sim/tenants", key=None, json_body=body)
    assert reply.status == 201, reply.body
    return Api(sim.client, reply.body["apiKey"])


def test_native_errnos_become_amps_failures() -> None:
    assert isinstance(failure_for(refuse(44096), "command"), SchedulerBlocked)
    table = {
        40400: ("OEM_RATE_LIMITED", True),
        40402: ("OEM_QUOTA_EXHAUSTED", False),
        41200: ("OEM_TRANSIENT_FAILURE", True),
        41201: ("DEVICE_OFFLINE", True),
        41202: ("OEM_TRANSIENT_FAILURE", True),
        41203: ("OEM_TIMEOUT", True),
        40257: ("OEM_REJECTED", False),
        42023: ("OEM_REJECTED", False),
    }
    for errno, (code, retryable) in table.items():
        failure = failure_for(refuse(errno), "schedule")
        assert (failure.code, failure.retryable) == (code, retryable), errno
    assert "errno 42023" in failure_for(refuse(42023), "schedule").message


async def test_each_device_gets_the_gateway_of_its_oem(sim: Api) -> None:
    api = await sim.tenant([fox_device(), direct()])
    world = sim.client.server.app[TENANTS].get(api.key)
    assert isinstance(world.devices[DEVICE_ID].gateway, FoxessGateway)
    assert isinstance(world.devices["dev_direct"].gateway, DirectGateway)


async def test_platform_rows_carry_ownership_that_native_reads_never_show(tenant: Api, native: NativeClient) -> None:
    reply = await tenant.push(DEVICE_ID, "charge", parameters={"target": {"value": 90, "unit": "percent"}}, **WINDOW)
    await tenant.advance(to="2026-05-08T09:00:05Z")
    truth = await tenant.truth(DEVICE_ID)
    assert [(g["owner"], g.get("actionId")) for g in truth["scheduler"]["groups"]] == [("amps", reply.body["actionId"])]
    native_rows = (await native.schedule()).result["groups"]
    assert native_rows == [{"enable": 1, "startHour": 10, "startMinute": 0, "endHour": 10, "endMinute": 59,
                            "workMode": "ForceCharge",
                            "extraParam": {"minSocOnGrid": 10, "fdSoc": 10, "fdPwr": 5000, "maxSoc": 90}}]


async def test_a_spent_daily_allowance_fails_the_action_with_a_clear_code(sim: Api) -> None:
    # Preflight read (1), dispatch read (2), then the schedule write is refused with 40402.
    api = await quota_tenant(sim, {"dailyCalls": 2})
    reply = await api.push(DEVICE_ID, "charge", **WINDOW)
    assert reply.status == 202
    await api.advance(to="2026-05-08T09:00:05Z")
    record = await api.action(reply.body["actionId"])
    assert record["state"] == "failed" and record["errorCode"] == "OEM_QUOTA_EXHAUSTED"
    assert "40402" in record["errorMessage"]
    assert record["result"]["error"]["details"] == {"attempts": 1}  # not retried: it would not help today
    assert (await api.truth(DEVICE_ID))["scheduler"]["groups"] == []


async def test_a_spent_allowance_skips_the_preflight_but_dispatch_still_guards(sim: Api) -> None:
    api = await quota_tenant(sim, {"dailyCalls": 1})
    client = NativeClient(api.client, await oem_key(api))
    await client.write([{"startHour": 10, "startMinute": 30, "endHour": 10, "endMinute": 59, "workMode": "Backup"}])
    await api.push(DEVICE_ID, "idle", start="10m")  # spends the platform's one call on its dispatch
    await api.advance(by="10m5s")
    # The preflight cannot read, so the push is accepted; the dispatch-time read fails instead.
    reply = await api.push(DEVICE_ID, "charge", **WINDOW)
    assert reply.status == 202
    await api.advance(to="2026-05-08T09:00:05Z")
    record = await api.action(reply.body["actionId"])
    assert record["state"] == "failed" and record["errorCode"] == "OEM_QUOTA_EXHAUSTED"


async def test_too_frequent_writes_are_retried_by_the_platform(sim: Api) -> None:
    api = await quota_tenant(sim, {"enabled": True})
    first = await api.push(DEVICE_ID, "charge", start="2026-05-08T09:00:00Z", end="2026-05-08T10:00:00Z")
    second = await api.push(DEVICE_ID, "discharge", on_conflict="queue_after", start="2026-05-08T09:30:00Z", end="2026-05-08T10:30:00Z")
    assert second.body["start"] == "2026-05-08T10:00:00.000Z"
    await api.advance(to="2026-05-08T10:00:05Z")
    # At 10:00 the first window's cleanup runs first (window ends come before new dispatches at
    # the same instant) and writes the schedule; the second window's write follows within two
    # seconds, is refused with 40400, and the platform retries it 10 s later.
    truth = await api.truth(DEVICE_ID)
    assert truth["scheduler"]["groups"] == []
    assert (await api.action(second.body["actionId"]))["state"] == "acknowledged"
    await api.advance(by="30s")
    truth = await api.truth(DEVICE_ID)
    assert [g["actionId"] for g in truth["scheduler"]["groups"]] == [second.body["actionId"]]
    assert (await api.action(second.body["actionId"]))["state"] == "completed"
    assert (await api.action(first.body["actionId"]))["state"] == "completed"


async def test_cancel_and_replace_reads_the_flag_through_the_cloud(sim: Api) -> None:
    api = await sim.tenant([fox_device(enabled=True, groups=[{"start": "17:00", "end": "19:59", "workMode": "SelfUse"}])])
    await api.fault(DEVICE_ID, "transient", 1)  # the flag read fails once; the dispatch is retried
    reply = await api.push(DEVICE_ID, "charge", on_conflict="cancel_and_replace")
    await api.advance(by="13s")
    record = await api.action(reply.body["actionId"])
    assert record["state"] == "completed"
    truth = await api.truth(DEVICE_ID)
    assert truth["scheduler"]["enabled"] is False and truth["battery"]["currentMode"] == "charge"


async def test_native_writes_by_a_party_are_foreign_to_the_platform(tenant: Api, native: NativeClient) -> None:
    await native.write([{"startHour": 10, "startMinute": 30, "endHour": 11, "endMinute": 29, "workMode": "Backup"}])
    reply = await tenant.push(DEVICE_ID, "charge", **WINDOW)
    assert reply.status == 409 and reply.code == "SCHEDULER_ACTIVE"
    assert reply.details["foreignGroups"] == [{"start": "10:30", "end": "11:29", "workMode": "Backup", "owner": "homeowner_app"}]


async def test_platform_calls_count_and_meet_injected_faults_in_order(sim: Api) -> None:
    """After the day's first call, the platform's calls take the gateway's short path (nothing to
    enforce): each is still counted on the platform's ledger and still consumes the next fault
    injected for the device, in order, before reaching it."""
    api = await sim.tenant([fox_device()])
    world = sim.client.server.app[TENANTS].get(api.key)
    ledger, faults = world.native_cloud.platform_ledger, world.devices[DEVICE_ID].faults
    first = await api.push(DEVICE_ID, "charge", **WINDOW)  # preflight read: the day's first call
    assert ledger.used == 1
    await api.fault(DEVICE_ID, "transient", 3)
    later = await api.push(DEVICE_ID, "charge", on_conflict="queue_after", start="2026-05-08T13:00:00+01:00",
                           end="2026-05-08T14:00:00+01:00")
    assert later.status == 202  # its preflight read met the first fault: accepted, dispatch guards
    assert ledger.used == 2 and faults.faults[0].remaining == 2
    await api.advance(to="2026-05-08T09:00:05Z")  # the dispatch read meets the second fault
    assert ledger.used == 3 and faults.faults[0].remaining == 1
    await api.advance(to="2026-05-08T09:00:15Z")  # the retry's read meets the third
    assert ledger.used == 4 and not faults.faults
    assert (await api.truth(DEVICE_ID))["scheduler"]["groups"] == []
    await api.advance(to="2026-05-08T09:00:30Z")  # read, write, flag on
    assert ledger.used == 7 and ledger.last.keys() == {("scheduler", world.devices[DEVICE_ID].device.serial_number),
                                                       ("flag", world.devices[DEVICE_ID].device.serial_number)}
    truth = await api.truth(DEVICE_ID)
    assert [g["actionId"] for g in truth["scheduler"]["groups"]] == [first.body["actionId"]]
    assert truth["scheduler"]["enabled"] is True
