"""What the optimiser sees when the battery's cloud misbehaves (injected through amps_tenant)."""

from __future__ import annotations

from optimiser.amps_api import AmpsApi


def test_an_offline_battery_reads_offline(amps_tenant) -> None:
    api = AmpsApi(amps_tenant.url, amps_tenant.api_key)
    amps_tenant.inject_fault("dev_abc123", "offline", times=2)
    assert api.battery("dev_abc123")["state"]["status"] == "offline"


def test_timeouts_fail_an_immediate_charge(amps_tenant) -> None:
    api = AmpsApi(amps_tenant.url, amps_tenant.api_key)
    amps_tenant.inject_fault("dev_abc123", "oem_timeout", times=5)
    action_id = api.push("dev_abc123", {"command": "charge"})["actionId"]
    amps_tenant.advance("1m")  # three attempts, 10 s apart
    action = api.action(action_id)
    assert (action["state"], action["errorCode"]) == ("failed", "OEM_TIMEOUT")
