"""Direct (imperative) commands on a FoxESS-class device whose native scheduler may be running
(amps-api.md §5, issue 12 items 4 and 5).

- The platform's own rows are never foreign: a direct command first removes the rows an earlier
  window left (and the flag if the platform set it).
- A foreign row running at the instant of an immediate push: 409 SCHEDULER_ACTIVE at submission,
  `foreign_scheduler_blocking_imperative`.
- The scheduler on but no foreign row running: seed 002's path (202, failed at +32 s).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from amps_sim.simulator.platform import Platform
from tests.conftest import Api, foxess

# The clock starts at 08:00Z, 09:00 in London (BST).
RUNNING_NOW = {"start": "09:00", "end": "09:59", "workMode": "SelfUse"}  # 08:00-09:00Z
LATER = {"start": "17:00", "end": "19:59", "workMode": "ForceDischarge", "fdSoc": 30}
BLOCKED = "Native scheduler is active; clear it before issuing a direct command."


def rows(truth: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((g["start"], g["end"], g["owner"]) for g in truth["scheduler"]["groups"])


async def test_own_window_rows_are_removed_before_a_direct_command(api: Api) -> None:
    window = await api.push("dev_fox", "charge", start="2026-05-08T10:00:00Z", end="2026-05-08T11:00:00Z")
    await api.advance(to="2026-05-08T10:00:05Z")
    assert (await api.action(window.body["actionId"]))["state"] == "completed"
    truth = await api.truth("dev_fox")
    assert truth["scheduler"]["enabled"] is True and rows(truth) == [("11:00", "11:59", "amps")]
    # Inside the window, whose rows are still on the device: a direct discharge.
    await api.advance(to="2026-05-08T10:20:00Z")
    direct = await api.push("dev_fox", "discharge")
    assert direct.status == 202 and direct.body["state"] == "acknowledged"
    await api.advance(by="3s")
    record = await api.action(direct.body["actionId"])
    assert record["state"] == "completed" and record["errorCode"] is None
    truth = await api.truth("dev_fox")
    assert truth["scheduler"]["enabled"] is False and truth["scheduler"]["groups"] == []
    assert truth["battery"]["currentMode"] == "discharge"
    await api.advance(to="2026-05-08T11:00:01Z")  # the window's own cleanup finds nothing to do
    truth = await api.truth("dev_fox")
    assert truth["scheduler"]["enabled"] is False and truth["battery"]["currentMode"] == "discharge"


async def test_own_rows_removed_but_the_homeowners_flag_still_blocks(sim: Api) -> None:
    api = await sim.tenant([foxess(enabled=True, groups=[LATER])])
    window = await api.push("dev_fox", "charge", start="2026-05-08T10:00:00Z", end="2026-05-08T11:00:00Z")
    await api.advance(to="2026-05-08T10:20:00Z")
    assert (await api.action(window.body["actionId"]))["state"] == "completed"
    # The running row is the platform's own, so the push is accepted ...
    direct = await api.push("dev_fox", "idle")
    assert direct.status == 202
    # ... its rows go, but the flag is the homeowner's: seed 002's failure at +32 s.
    truth = await api.truth("dev_fox")
    assert truth["scheduler"]["enabled"] is True and rows(truth) == [("17:00", "19:59", "homeowner_app")]
    await api.advance(by="32s")
    record = await api.action(direct.body["actionId"])
    assert (record["state"], record["errorCode"], record["errorMessage"], record["result"]) == (
        "failed", "SCHEDULER_ACTIVE", BLOCKED, None)


async def test_both_imperative_paths_on_a_device_with_a_homeowner_row(sim: Api) -> None:
    api = await sim.tenant([foxess(enabled=True, groups=[RUNNING_NOW, LATER])])
    refused = await api.push("dev_fox", "charge", parameters={"target": {"value": 95, "unit": "percent"}})
    assert refused.status == 409 and refused.code == "SCHEDULER_ACTIVE"
    assert refused.details == {
        "reason": "foreign_scheduler_blocking_imperative",
        "detectedAt": "submission_time",
        "recoveryStrategies": ["cancel_and_replace", "manual_clear_via_device_app"],
        "foreignGroups": [{"start": "09:00", "end": "09:59", "workMode": "SelfUse", "owner": "homeowner_app"}],
    }
    assert (await api.call("GET", "/actions")).body["total"] == 0  # nothing was created
    # An hour later the homeowner's row is no longer running; the scheduler still is.
    await api.advance(to="2026-05-08T09:00:00Z")
    accepted = await api.push("dev_fox", "charge", parameters={"target": {"value": 95, "unit": "percent"}})
    assert accepted.status == 202 and accepted.body["state"] == "acknowledged"
    await api.advance(by="31s")
    assert (await api.action(accepted.body["actionId"]))["state"] == "acknowledged"
    await api.advance(by="1s")
    record = await api.action(accepted.body["actionId"])
    assert (record["state"], record["errorCode"], record["errorMessage"], record["result"]) == (
        "failed", "SCHEDULER_ACTIVE", BLOCKED, None)
    assert (record["acknowledgedAt"], record["completedAt"]) == ("2026-05-08T09:00:01.000Z", "2026-05-08T09:00:32.000Z")


async def test_a_third_partys_running_row_offers_only_cancel_and_replace(sim: Api) -> None:
    api = await sim.tenant([foxess(enabled=True)])
    written = await api.write_rows("dev_fox", [RUNNING_NOW], owner="third_party")
    assert written.status == 200
    refused = await api.push("dev_fox", "auto.export")
    assert refused.status == 409 and refused.details["recoveryStrategies"] == ["cancel_and_replace"]
    # The recovery it names works: the flag goes off, the rows stay, the command applies.
    replaced = await api.push("dev_fox", "auto.export", on_conflict="cancel_and_replace")
    assert replaced.status == 202
    await api.advance(by="3s")
    assert (await api.action(replaced.body["actionId"]))["state"] == "completed"
    truth = await api.truth("dev_fox")
    assert truth["scheduler"]["enabled"] is False and rows(truth) == [("09:00", "09:59", "third_party")]


async def test_rows_with_the_flag_off_never_refuse_at_submission(sim: Api) -> None:
    api = await sim.tenant([foxess(enabled=False, groups=[RUNNING_NOW])])
    reply = await api.push("dev_fox", "charge")
    assert reply.status == 202
    await api.advance(by="3s")
    assert (await api.action(reply.body["actionId"]))["state"] == "completed"


async def test_a_deferred_direct_command_is_judged_when_it_fires(sim: Api) -> None:
    """Only an immediate push is refused at submission; a scheduled one meets the OEM's refusal at
    its fire instant (the seed 002 path), since rows may change before then."""
    api = await sim.tenant([foxess(enabled=True, groups=[RUNNING_NOW])])
    reply = await api.push("dev_fox", "idle", start="10m")
    assert reply.status == 202 and reply.body["state"] == "scheduled"
    await api.advance(by="10m32s")
    record = await api.action(reply.body["actionId"])
    assert (record["state"], record["errorCode"], record["result"]) == ("failed", "SCHEDULER_ACTIVE", None)


async def test_latency_is_the_measured_handling_time(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = await api.call("GET", "/battery/dev_missing")
    assert fast.status == 404 and fast.body["meta"]["latencyMs"] >= 1  # whole milliseconds begun
    original = Platform.push

    def slow_push(self: Platform, device_id: str, body: object) -> Any:
        time.sleep(0.06)
        return original(self, device_id, body)

    monkeypatch.setattr(Platform, "push", slow_push)
    refused = await api.push("dev_fox", "charge", parameters={"target": {"value": 5, "unit": "percent"}})
    assert refused.status == 422 and refused.body["meta"]["latencyMs"] >= 60
