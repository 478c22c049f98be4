"""§5: device-side conflicts, the slot-aware merge, cleanup and faults, through HTTP."""

from __future__ import annotations

from tests.conftest import Api, foxess

HOMEOWNER_NIGHT = {"start": "00:30", "end": "04:29", "workMode": "ForceCharge", "fdPwr": 3000, "maxSoc": 95}
EVENING = {"start": "17:00", "end": "19:59", "workMode": "SelfUse"}
# 2026-05-09 22:00 BST .. 2026-05-10 05:00 BST, written with an explicit +01:00 offset.
OVERNIGHT = {"start": "2026-05-09T22:00:00+01:00", "end": "2026-05-10T05:00:00+01:00"}


def rows(view: dict) -> list[tuple[str, str, str]]:
    return sorted((g["start"], g["end"], g["owner"]) for g in view["scheduler"]["groups"])


async def test_windowed_push_writes_platform_rows_split_at_midnight_and_cleans_up(api: Api) -> None:
    reply = await api.push("dev_fox", "charge", parameters={"target": {"value": 90, "unit": "percent"}}, **OVERNIGHT)
    assert reply.status == 202
    assert (await api.truth("dev_fox"))["scheduler"]["groups"] == []  # nothing written before dispatch
    await api.advance(to="2026-05-09T21:00:03Z")
    truth = await api.truth("dev_fox")
    assert truth["scheduler"]["enabled"] is True
    assert rows(truth) == [("00:00", "04:59", "amps"), ("22:00", "23:59", "amps")]
    group = truth["scheduler"]["groups"][0]
    assert group["workMode"] == "ForceCharge" and group["maxSoc"] == 90 and group["actionId"] == reply.body["actionId"]
    assert (await api.action(reply.body["actionId"]))["state"] == "completed"
    await api.advance(to="2026-05-10T04:00:00Z")
    truth = await api.truth("dev_fox")
    assert truth["scheduler"]["groups"] == [] and truth["scheduler"]["enabled"] is False


async def test_submission_preflight_refuses_overlap_with_foreign_rows(sim: Api) -> None:
    api = await sim.tenant([foxess(enabled=True, groups=[HOMEOWNER_NIGHT, EVENING])])
    reply = await api.push("dev_fox", "charge", **OVERNIGHT)
    assert reply.status == 409 and reply.code == "SCHEDULER_ACTIVE"
    details = reply.details
    assert details["reason"] == "foreign_scheduler_window_overlap"
    assert details["detectedAt"] == "submission_time"
    assert details["recoveryStrategies"] == ["cancel_and_replace", "manual_clear_via_device_app"]
    assert [g["start"] for g in details["foreignGroups"]] == ["00:30"]
    assert (await api.call("GET", "/actions")).body["total"] == 0


async def test_cancel_and_replace_merges_keeping_non_overlapping_rows(sim: Api) -> None:
    api = await sim.tenant([foxess(enabled=True, groups=[HOMEOWNER_NIGHT, EVENING])])
    reply = await api.push("dev_fox", "charge", on_conflict="cancel_and_replace", **OVERNIGHT)
    assert reply.status == 202
    await api.advance(to="2026-05-09T21:00:05Z")
    truth = await api.truth("dev_fox")
    assert rows(truth) == [("00:00", "04:59", "amps"), ("17:00", "19:59", "homeowner_app"), ("22:00", "23:59", "amps")]
    await api.advance(to="2026-05-10T04:00:00Z")
    truth = await api.truth("dev_fox")
    assert rows(truth) == [("17:00", "19:59", "homeowner_app")]
    assert truth["scheduler"]["enabled"] is True  # it was the homeowner's flag, not ours


async def test_dispatch_time_detection_after_a_foreign_write(api: Api) -> None:
    reply = await api.push("dev_fox", "discharge", **OVERNIGHT)
    assert reply.status == 202
    await api.advance(by="2h")
    written = await api.write_rows("dev_fox", [{"start": "23:00", "end": "23:59", "workMode": "SelfUse"}], enabled=True, owner="third_party")
    assert written.status == 200
    await api.advance(to="2026-05-09T21:00:05Z")
    record = await api.action(reply.body["actionId"])
    assert record["state"] == "failed" and record["errorCode"] == "SCHEDULER_ACTIVE"
    error = record["result"]["error"]
    assert record["result"]["success"] is False
    assert error["details"]["detectedAt"] == "dispatch_time"
    assert error["details"]["reason"] == "foreign_scheduler_window_overlap"
    assert rows(await api.truth("dev_fox")) == [("23:00", "23:59", "third_party")]


async def test_scheduler_full_at_submission(sim: Api) -> None:
    groups = [{"start": f"{h:02d}:00", "end": f"{h:02d}:59", "workMode": "SelfUse"} for h in range(0, 16, 2)]
    api = await sim.tenant([foxess(enabled=True, groups=groups)])
    reply = await api.push("dev_fox", "charge", start="2026-05-08T18:00:00+01:00", end="2026-05-08T19:00:00+01:00")
    assert reply.status == 409 and reply.code == "SCHEDULER_FULL"
    assert reply.details == {"existingGroupCount": 8, "maxGroupCount": 8, "requiredGroupCount": 9}


async def test_scheduler_full_after_merge_never_prunes(sim: Api) -> None:
    groups = [{"start": f"{h:02d}:00", "end": f"{h:02d}:59", "workMode": "SelfUse"} for h in (1, 3, 5)]
    api = await sim.tenant([foxess(enabled=True, groups=groups, max_groups=4)])
    # One more row beside three fits in four slots; beside four it does not, and nothing is pruned.
    fits = await api.push("dev_fox", "charge", on_conflict="cancel_and_replace", start="2026-05-08T12:00:00+01:00", end="2026-05-08T13:00:00+01:00")
    assert fits.status == 202
    await api.cancel(fits.body["actionId"])
    await api.write_rows("dev_fox", groups + [{"start": "07:00", "end": "07:59", "workMode": "SelfUse"}])
    full = await api.push("dev_fox", "charge", on_conflict="cancel_and_replace", start="2026-05-08T12:00:00+01:00", end="2026-05-08T13:00:00+01:00")
    assert full.code == "SCHEDULER_FULL" and full.details["requiredGroupCount"] == 5
    assert len((await api.truth("dev_fox"))["scheduler"]["groups"]) == 4


async def test_imperative_write_blocked_while_scheduler_active(sim: Api) -> None:
    api = await sim.tenant([foxess(enabled=True, groups=[EVENING])])
    reply = await api.push("dev_fox", "charge", parameters={"target": {"value": 95, "unit": "percent"}})
    assert reply.status == 202 and reply.body["state"] == "acknowledged"
    await api.advance(by="32s")
    record = await api.action(reply.body["actionId"])
    assert record["state"] == "failed"
    assert record["errorCode"] == "SCHEDULER_ACTIVE"
    assert record["errorMessage"] == "Native scheduler is active; clear it before issuing a direct command."
    assert record["result"] is None
    assert record["acknowledgedAt"] == "2026-05-08T08:00:01.000Z"
    assert record["completedAt"] == record["updatedAt"] == "2026-05-08T08:00:32.000Z"
    # Re-push with cancel_and_replace: the flag goes off (rows stay) and the command applies.
    again = await api.push("dev_fox", "charge", parameters={"target": {"value": 95, "unit": "percent"}}, on_conflict="cancel_and_replace")
    assert again.status == 202
    await api.advance(by="3s")
    assert (await api.action(again.body["actionId"]))["state"] == "completed"
    truth = await api.truth("dev_fox")
    assert truth["scheduler"]["enabled"] is False and rows(truth) == [("17:00", "19:59", "homeowner_app")]
    assert truth["battery"]["currentMode"] == "charge"


async def test_legacy_firmware_refuses_whole_replace_with_foreign_rows(sim: Api) -> None:
    api = await sim.tenant([foxess(profile="foxess_legacy", groups=[EVENING])])
    for strategy in (None, "cancel_and_replace"):
        reply = await api.push("dev_fox", "charge", on_conflict=strategy, **OVERNIGHT)
        assert reply.code == "SCHEDULER_ACTIVE"
        assert reply.details["reason"] == "foreign_scheduler_groups_present"
        assert reply.details["recoveryStrategies"] == ["manual_clear_via_device_app"]


async def test_leftover_amps_rows_without_an_action_are_foreign(sim: Api) -> None:
    api = await sim.tenant([foxess(groups=[{"start": "22:30", "end": "22:59", "workMode": "ForceCharge", "owner": "amps"}])])
    reply = await api.push("dev_fox", "charge", **OVERNIGHT)
    assert reply.code == "SCHEDULER_ACTIVE"


async def test_transient_faults_are_retried(api: Api) -> None:
    reply = await api.push("dev_fox", "charge", start="1h", end="1h")
    assert (await api.fault("dev_fox", "transient", 2)).status == 200
    await api.advance(by="1h")
    assert (await api.action(reply.body["actionId"]))["state"] == "acknowledged"
    await api.advance(by="25s")
    record = await api.action(reply.body["actionId"])
    assert record["state"] == "completed", record
    assert len((await api.truth("dev_fox"))["scheduler"]["groups"]) == 1


async def test_faults_exhaust_retries_and_fail(api: Api) -> None:
    reply = await api.push("dev_fox", "idle")
    await api.fault("dev_fox", "oem_timeout", 1)  # too late for the immediate push: it already went
    await api.advance(by="3s")
    assert (await api.action(reply.body["actionId"]))["state"] == "completed"
    view = (await api.truth("dev_fox"))["faults"]
    assert view == [{"kind": "oem_timeout", "remaining": 1}]
    await api.fault("dev_fox", "oem_timeout", 5)
    second = await api.push("dev_fox", "charge")
    await api.advance(by="1m")
    record = await api.action(second.body["actionId"])
    assert record["state"] == "failed" and record["errorCode"] == "OEM_TIMEOUT"
    assert record["result"]["error"]["details"] == {"attempts": 3}


async def test_rejection_is_not_retried(api: Api) -> None:
    await api.fault("dev_fox", "oem_reject", 1)
    reply = await api.push("dev_fox", "charge")
    await api.advance(by="3s")
    record = await api.action(reply.body["actionId"])
    assert record["state"] == "failed" and record["errorCode"] == "OEM_REJECTED"


async def test_offline_device_reads_offline(api: Api) -> None:
    await api.fault("dev_fox", "offline", 3)
    assert (await api.device("dev_fox"))["state"]["status"] == "offline"


async def test_cleanup_is_retried_on_transient_failure(api: Api) -> None:
    # A relative end is measured from the start: this is 09:00Z-10:00Z.
    reply = await api.push("dev_fox", "charge", start="1h", end="1h")
    await api.advance(to="2026-05-08T09:00:05Z")
    assert (await api.action(reply.body["actionId"]))["state"] == "completed"
    await api.fault("dev_fox", "transient", 2)
    await api.advance(to="2026-05-08T10:00:45Z")
    assert len((await api.truth("dev_fox"))["scheduler"]["groups"]) == 1  # cleanup failed twice so far
    await api.advance(by="20s")
    truth = await api.truth("dev_fox")
    assert truth["scheduler"]["groups"] == [] and truth["faults"] == []


async def test_foreign_rows_survive_cleanup_even_if_rewritten(api: Api) -> None:
    reply = await api.push("dev_fox", "charge", start="1h", end="1h")
    await api.advance(by="1h5s")
    truth = await api.truth("dev_fox")
    mine = [{k: v for k, v in g.items() if k != "actionId"} for g in truth["scheduler"]["groups"]]
    # The homeowner app rewrites the list, keeping a look-alike of our row but as its own.
    for row in mine:
        row["owner"] = "homeowner_app"
    await api.write_rows("dev_fox", mine + [EVENING])
    await api.advance(by="1h")
    assert len((await api.truth("dev_fox"))["scheduler"]["groups"]) == 2
    assert (await api.action(reply.body["actionId"]))["state"] == "completed"


async def test_read_back_reorders_but_platform_matches_by_content(sim: Api) -> None:
    api = await sim.tenant([foxess(groups=[EVENING, {"start": "12:00", "end": "12:59", "workMode": "Backup"}])])
    reply = await api.push("dev_fox", "charge", on_conflict="cancel_and_replace", start="2026-05-08T09:00:00Z", end="2026-05-08T10:00:00Z")
    await api.advance(to="2026-05-08T09:00:05Z")
    assert len((await api.truth("dev_fox"))["scheduler"]["groups"]) == 3
    await api.advance(to="2026-05-08T10:00:00Z")
    truth = await api.truth("dev_fox")
    assert rows(truth) == [("12:00", "12:59", "homeowner_app"), ("17:00", "19:59", "homeowner_app")]
    assert (await api.action(reply.body["actionId"]))["state"] == "completed"
