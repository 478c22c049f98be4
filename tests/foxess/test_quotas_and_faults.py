"""Call quotas (40400, 40402) on the tenant's clock, and injected faults (41200-41203) on native calls."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from amps_sim.simulator.errnos import NativeError
from amps_sim.simulator.foxess.quotas import QuotaLedger, QuotaSpec
from tests.conftest import NOW, Api
from tests.foxess.conftest import DEVICE_ID, SERIAL, NativeClient, fox_device, oem_key, v3_group

T0 = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)


async def quota_tenant(sim: Api, quotas: dict[str, Any] | None, mode: str = "virtual") -> tuple[Api, NativeClient]:
    body: dict[str, Any] = {"clock": {"mode": mode, "now": NOW}, "devices": [fox_device()]}
    if quotas is not None:
        body["oemQuotas"] = quotas
    reply = await sim.call("POST", "/_sim/tenants", key=None, json_body=body)
    assert reply.status == 201, reply.body
    api = Api(sim.client, reply.body["apiKey"])
    return api, NativeClient(api.client, await oem_key(api))


# ------------------------------------------------------------------------------ the ledger
def test_ledger_paces_writes_per_scope_and_queries_per_path() -> None:
    spec, ledger = QuotaSpec(), QuotaLedger()
    ledger.admit(spec, "write", ("scheduler", "SN1"), T0)
    ledger.admit(spec, "write", ("flag", "SN1"), T0)  # another setting: its own pace
    ledger.admit(spec, "write", ("scheduler", "SN2"), T0)  # another device: its own pace
    with pytest.raises(NativeError) as too_soon:
        ledger.admit(spec, "write", ("scheduler", "SN1"), T0 + timedelta(seconds=1.999))
    assert too_soon.value.errno == 40400
    ledger.admit(spec, "write", ("scheduler", "SN1"), T0 + timedelta(seconds=2))
    ledger.admit(spec, "query", ("real/query",), T0)
    with pytest.raises(NativeError):
        ledger.admit(spec, "query", ("real/query",), T0 + timedelta(milliseconds=500))
    for _ in range(20):
        ledger.admit(spec, "read", (), T0)  # reads are never paced
    assert ledger.used == 4 + 1 + 20  # refused calls are not counted


def test_ledger_daily_allowance_refills_at_utc_midnight() -> None:
    spec, ledger = QuotaSpec(dailyCalls=2), QuotaLedger()
    ledger.admit(spec, "read", (), T0)
    ledger.admit(spec, "read", (), T0)
    with pytest.raises(NativeError) as spent:
        ledger.admit(spec, "read", (), T0 + timedelta(hours=15))
    assert spent.value.errno == 40402 and ledger.remaining(spec, T0) == 0
    tomorrow = datetime(2026, 5, 9, 0, 0, tzinfo=timezone.utc)
    assert ledger.remaining(spec, tomorrow) == 2
    ledger.admit(spec, "read", (), tomorrow)


def test_unenforced_ledger_still_counts() -> None:
    spec, ledger = QuotaSpec(enabled=False, dailyCalls=1), QuotaLedger()
    for _ in range(3):
        ledger.admit(spec, "write", ("scheduler", "SN"), T0)
    assert ledger.remaining(spec, T0) == 0 and ledger.used == 3


def test_defaults_follow_the_clock_mode() -> None:
    assert QuotaSpec.default_for("virtual").enabled is False
    realtime = QuotaSpec.default_for("realtime")
    assert realtime.enabled is True and realtime.dailyCalls == 1440
    assert (realtime.queryIntervalS, realtime.writeIntervalS) == (1, 2)


# ------------------------------------------------------------------------------- over HTTP
async def test_virtual_tenants_do_not_enforce_quotas_by_default(native: NativeClient) -> None:
    for _ in range(5):
        assert (await native.write([v3_group("01:00", "01:59")])).errno == 0
        assert (await native.post("/op/v1/device/real/query", {"sns": [SERIAL]})).errno == 0
    assert (await native.get("/op/v0/user/getAccessCount")).result == {"total": 1440, "remaining": 1430}


async def test_writes_too_close_together_are_40400_on_the_tenants_clock(sim: Api) -> None:
    api, client = await quota_tenant(sim, {"enabled": True})
    assert (await client.write([v3_group("01:00", "01:59")])).errno == 0
    again = await client.write([v3_group("02:00", "02:59")])
    assert again.errno == 40400
    assert [g["start"] for g in (await api.truth(DEVICE_ID))["scheduler"]["groups"]] == ["01:00"]
    assert (await client.flag(1)).errno == 0  # a different setting is paced on its own
    await api.advance(by="2s")
    assert (await client.write([v3_group("02:00", "02:59")])).errno == 0


async def test_queries_too_close_together_are_40400(sim: Api) -> None:
    api, client = await quota_tenant(sim, {"enabled": True})
    query = {"sns": [SERIAL]}
    assert (await client.post("/op/v1/device/real/query", query)).errno == 0
    assert (await client.post("/op/v1/device/real/query", query)).errno == 40400
    assert (await client.schedule()).errno == 0 and (await client.schedule()).errno == 0  # not a query endpoint
    await api.advance(by="1s")
    assert (await client.post("/op/v1/device/real/query", query)).errno == 0


async def test_daily_allowance_used_up_is_40402_until_the_next_day(sim: Api) -> None:
    api, client = await quota_tenant(sim, {"dailyCalls": 3})
    for _ in range(3):
        assert (await client.schedule()).errno == 0
    spent = await client.schedule()
    assert spent.errno == 40402 and spent.result is None
    assert (await client.get("/op/v0/user/getAccessCount")).result == {"total": 3, "remaining": 0}
    await api.advance(to="2026-05-09T00:00:00Z")
    assert (await client.schedule()).errno == 0


async def test_realtime_tenants_enforce_quotas_by_default(sim: Api) -> None:
    api, client = await quota_tenant(sim, None, mode="realtime")
    assert (await client.write([v3_group("01:00", "01:59")])).errno == 0
    assert (await client.write([v3_group("01:00", "01:59")])).errno == 40400


async def test_quota_spec_is_validated(sim: Api) -> None:
    body = {"devices": [fox_device()], "oemQuotas": {"dailyCalls": 0}}
    reply = await sim.call("POST", "/_sim/tenants", key=None, json_body=body)
    assert reply.status == 400 and reply.code == "INVALID_REQUEST"
    typo = await sim.call("POST", "/_sim/tenants", key=None, json_body={"oemQuotas": {"daily": 5}})
    assert typo.status == 400


# ---------------------------------------------------------------------------------- faults
async def test_injected_faults_answer_their_errno_once_each(native: NativeClient, tenant: Api) -> None:
    expected = {"transient": 41200, "offline": 41201, "oem_timeout": 41203, "oem_reject": 40257}
    for kind, errno in expected.items():
        assert (await tenant.fault(DEVICE_ID, kind)).status == 200
        failed = await native.write([v3_group("03:00", "03:59")])
        assert failed.errno == errno, kind
        assert (await tenant.truth(DEVICE_ID))["scheduler"]["groups"] == []
    assert (await native.write([v3_group("03:00", "03:59")])).errno == 0


async def test_every_device_call_consumes_a_fault_but_the_list_does_not(native: NativeClient, tenant: Api) -> None:
    await tenant.fault(DEVICE_ID, "offline", 2)
    listed = await native.post("/op/v0/device/list", {})
    assert listed.errno == 0 and listed.result["data"][0]["status"] == 3
    assert (await native.get("/op/v1/device/detail", sn=SERIAL)).errno == 41201
    assert (await native.post("/op/v1/device/scheduler/get/flag", {"deviceSN": SERIAL})).errno == 41201
    assert (await native.post("/op/v1/device/scheduler/get/flag", {"deviceSN": SERIAL})).errno == 0
    assert (await tenant.truth(DEVICE_ID))["faults"] == []


def test_the_free_count_counts_as_admit_does_and_defers_to_it_at_a_new_day() -> None:
    """`count_free` (the in-process platform's path) counts a call and records a write's instant
    exactly as `admit` would, and declines (counting nothing) when a quota is enforced or the
    UTC day has changed, so `admit` refills the allowance and checks it."""
    spec, ledger = QuotaSpec(enabled=False), QuotaLedger()
    assert not ledger.count_free(spec, T0, None, "SN1")  # no day counted yet: admit rolls it
    ledger.admit(spec, "read", (), T0)
    assert ledger.count_free(spec, T0 + timedelta(hours=1), None, "SN1")
    assert ledger.count_free(spec, T0 + timedelta(hours=2), "scheduler", "SN1")
    assert ledger.used == 3 and ledger.last == {("scheduler", "SN1"): T0 + timedelta(hours=2)}
    midnight = datetime(2026, 5, 9, 0, 0, tzinfo=timezone.utc)
    assert not ledger.count_free(spec, midnight, None, "SN1") and ledger.used == 3
    ledger.admit(spec, "read", (), midnight)
    assert ledger.used == 1 and ledger.count_free(spec, midnight + timedelta(hours=23, minutes=59), None, "SN1")
    assert not ledger.count_free(QuotaSpec(), midnight, None, "SN1")  # enforced: admit decides
    assert ledger.used == 2
