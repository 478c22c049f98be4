"""amps_sim.SimClient / AsyncSimClient against a real server over real sockets; every reply is
checked against the specs by the server under test (conftest.CheckedSimulator)."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone

import pytest

from amps_sim import AdvanceResult, AmpsSimError, AmpsSimUnreachable, AsyncSimClient, ClockView, FaultsView, Health, SimClient
from amps_sim.client import span
from tests.partners.conftest import CheckedSimulator

NOW = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)
FOX = {"id": "dev_1", "profile": "foxess", "timeZone": "Europe/London", "timeZoneKnown": True}


def test_sync_client_round_trip(no_spec_violations: CheckedSimulator) -> None:
    sim = SimClient(no_spec_violations.url)
    assert sim.health() == Health("ok", sim.health().version)
    tenant = sim.create_tenant({"clock": {"mode": "virtual", "now": "2026-05-08T08:00:00Z"}, "devices": [FOX]})
    assert tenant.api_key and tenant.api_key.startswith("sk_test_")
    assert tenant.clock() == ClockView(NOW, "virtual")
    assert tenant.advance("90m") == AdvanceResult(NOW + timedelta(minutes=90), 0)
    assert tenant.advance(timedelta(hours=1, seconds=0.5)).now == NOW + timedelta(minutes=150, seconds=0.5)
    # Finer than the duration syntax can write: sent as an instant instead (the API shows milliseconds).
    assert tenant.advance(timedelta(microseconds=1500)).now == NOW + timedelta(minutes=150, seconds=0.501)
    assert tenant.advance_to(datetime(2026, 5, 9, tzinfo=timezone.utc)).now == datetime(2026, 5, 9, tzinfo=timezone.utc)
    assert [d["id"] for d in tenant.devices()] == ["dev_1"]
    written = tenant.set_scheduler("dev_1", enabled=True, owner="homeowner_app",
                                   groups=[{"start": "22:00", "end": "23:59", "workMode": "ForceCharge"}])
    assert written["scheduler"]["enabled"] is True
    assert written["scheduler"]["groups"][0]["owner"] == "homeowner_app"
    faults = tenant.inject_fault("dev_1", "transient", times=2)
    assert isinstance(faults, FaultsView) and faults.device_id == "dev_1" and faults.faults
    assert tenant.native_key("homeowner_app", ["dev_1"])
    assert tenant.add_device({"id": "dev_2", "profile": "direct"})["id"] == "dev_2"
    tenant.remove_device("dev_2")
    assert tenant.reset() == ClockView(NOW, "virtual")
    tenant.delete_tenant()
    with pytest.raises(AmpsSimError) as gone:
        tenant.clock()
    assert (gone.value.status, gone.value.code) == (401, "INVALID_API_KEY")


def test_errors_carry_the_envelope(no_spec_violations: CheckedSimulator) -> None:
    tenant = SimClient(no_spec_violations.url).create_tenant({"clock": {"mode": "virtual", "now": "2026-05-08T08:00:00Z"}})
    with pytest.raises(AmpsSimError) as missing:
        tenant.device("dev_nope")
    assert (missing.value.status, missing.value.code) == (404, "DEVICE_NOT_FOUND")
    assert "dev_nope" in missing.value.message
    with pytest.raises(AmpsSimError) as backwards:
        tenant.advance_to("2026-05-01T00:00:00Z")
    assert backwards.value.code == "CLOCK_BACKWARDS" and backwards.value.details["now"] == "2026-05-08T08:00:00.000Z"
    with pytest.raises(AmpsSimError) as bad:
        tenant.advance("soon")
    assert (bad.value.status, bad.value.code) == (400, "INVALID_REQUEST") and bad.value.details["errors"]
    tenant.delete_tenant()


def test_naive_instants_are_utc_and_a_flag_write_keeps_the_rows(no_spec_violations: CheckedSimulator) -> None:
    tenant = SimClient(no_spec_violations.url).create_tenant({"clock": {"mode": "virtual", "now": "2026-05-08T08:00:00Z"},
                                                              "devices": [FOX]})
    assert tenant.advance_to(datetime(2026, 6, 1, 12)).now == datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
    row = {"start": "17:00", "end": "19:59", "workMode": "SelfUse"}
    tenant.set_scheduler("dev_1", groups=[row], owner="homeowner_app")
    switched = tenant.set_scheduler("dev_1", enabled=True)
    assert switched["scheduler"]["enabled"] is True
    assert [(g["start"], g["owner"]) for g in switched["scheduler"]["groups"]] == [("17:00", "homeowner_app")]
    tenant.delete_tenant()


def test_unreachable_server_is_its_own_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(AmpsSimUnreachable) as exc:
        SimClient(f"http://127.0.0.1:{port}", timeout=2).health()
    assert exc.value.code == "UNREACHABLE" and f"127.0.0.1:{port}" in exc.value.message


async def test_async_client_round_trip(no_spec_violations: CheckedSimulator) -> None:
    async with AsyncSimClient(no_spec_violations.url) as sim:
        assert (await sim.health()).status == "ok"
        tenant = await sim.create_tenant({"clock": {"mode": "virtual", "now": "2026-05-08T08:00:00Z"}, "devices": [FOX]})
        assert (await tenant.advance(timedelta(days=1))).now == NOW + timedelta(days=1)
        assert (await tenant.device("dev_1"))["id"] == "dev_1"
        await tenant.inject_fault("dev_1", "offline")
        with pytest.raises(AmpsSimError) as refused:
            await tenant.add_device(FOX)
        assert (refused.value.status, refused.value.code) == (409, "DEVICE_EXISTS")
        await tenant.delete_tenant()
        with pytest.raises(AmpsSimError):
            await tenant.clock()


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(minutes=90), "1h30m"),
        (timedelta(days=2, seconds=5), "2d5s"),
        (timedelta(seconds=0.25), "0.25s"),
        (timedelta(seconds=61.5), "1m1.50s"),
        (timedelta(0), None),
        (timedelta(seconds=-1), None),
        (timedelta(microseconds=1), None),
    ],
)
def test_timedeltas_become_durations(delta: timedelta, text: str | None) -> None:
    assert span(delta) == text


def test_in_process_simulator_as_a_context_manager() -> None:
    from amps_sim import InProcessSimulator

    with InProcessSimulator.from_world() as url:
        tenant = SimClient(url, "sk_live_abc123xyz")
        assert len(tenant.devices()) == 7
    with pytest.raises(AmpsSimUnreachable):
        SimClient(url, timeout=2).health()


async def test_async_client_webhook_endpoints(no_spec_violations: CheckedSimulator) -> None:
    from amps_sim import WebhookEndpoint, WebhookSettings

    async with AsyncSimClient(no_spec_violations.url) as sim:
        tenant = await sim.create_tenant({"clock": {"mode": "virtual", "now": "2026-05-08T08:00:00Z"}, "devices": [FOX]})
        # Nothing listens on port 9 (discard): each attempt fails with a network error and is logged.
        endpoint = await tenant.register_webhook("http://127.0.0.1:9/hooks", events=["device.connected"])
        assert isinstance(endpoint, WebhookEndpoint) and endpoint.id.startswith("ep_") and endpoint.events == ["device.connected"]
        assert [e.id for e in await tenant.webhooks()] == [endpoint.id]
        settings = await tenant.set_webhook_settings(delivery_latency=0, attempt_timeout=2)
        assert settings == WebhookSettings(0, 2, 86400) == await tenant.webhook_settings()
        faults = await tenant.inject_webhook_fault(endpoint.id, "delay", by=60)
        assert faults == [{"kind": "delay", "remaining": 1, "by": 60}]
        rotated = await tenant.rotate_webhook_secret(endpoint.id)
        assert rotated.id == endpoint.id and rotated.secret != endpoint.secret
        await tenant.add_device({"id": "dev_2", "profile": "direct"})
        await tenant.advance("61s")
        [message] = await tenant.webhook_deliveries(endpoint.id)
        assert message["eventType"] == "device.connected" and message["attempts"][0]["statusCode"] is None
        replayed = await tenant.replay_webhook(endpoint.id, message["msgId"])
        assert replayed["attempts"][-1]["trigger"] == "replay"
        await tenant.delete_webhook(endpoint.id)
        assert await tenant.webhooks() == []
        with pytest.raises(AmpsSimError) as gone:
            await tenant.delete_webhook(endpoint.id)
        assert (gone.value.status, gone.value.code) == (404, "NOT_FOUND")
        await tenant.delete_tenant()
