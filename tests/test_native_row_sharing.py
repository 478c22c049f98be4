"""Rows the platform makes for a drive share its physics, and the quota ledger's free path reads a
spec's flag once: what `group_for_drive` and `QuotaLedger.count_free` do to cost less per
device-day must read exactly as before."""

from __future__ import annotations

from datetime import datetime, timezone

import pydantic
import pytest

from amps_sim.simulator.battery import Drive
from amps_sim.simulator.device import group_for_drive
from amps_sim.simulator.foxess.quotas import QuotaLedger, QuotaSpec
from amps_sim.simulator.native_scheduler import Group

NOON = datetime(2026, 5, 8, 12, 0, tzinfo=timezone.utc)


def test_rows_of_one_drive_and_span_share_their_physics_and_equal_a_row_built_field_by_field() -> None:
    drive = Drive("ForceDischarge", fd_soc=19.6, fd_pwr_kw=2.5004, min_soc_on_grid=10.0)
    first = group_for_drive(drive, 60, 299, owner="amps", action_id="act_1")
    second = group_for_drive(drive, 60, 299, owner="amps", action_id="act_2")
    assert first.physics is second.physics and first.plain is first.physics
    assert first == Group(60, 299, "ForceDischarge", "amps", "act_1", 20, 2500, 10, None)
    assert second.action_id == "act_2" and first != second
    # Another span, or an equal drive that is another object, is worked out afresh (and equal).
    assert group_for_drive(drive, 0, 59, owner="amps", action_id="act_3").physics == (0, 59, "ForceDischarge", 20, 2500, 10, None)
    twin = Drive("ForceDischarge", fd_soc=19.6, fd_pwr_kw=2.5004, min_soc_on_grid=10.0)
    assert group_for_drive(twin, 60, 299, owner="amps", action_id="act_1") == first


def test_a_drive_made_after_another_was_dropped_never_takes_its_rows_physics() -> None:
    # Object ids are reused once an object is freed; the remembered physics keeps its drive, so
    # a new drive can never be mistaken for an old one.
    for power in range(1, 50):
        row = group_for_drive(Drive("ForceCharge", fd_pwr_kw=power / 10, max_soc=90.0), 60, 119, owner="amps", action_id=None)
        assert row.fd_pwr == power * 100 and row.physics == (60, 119, "ForceCharge", None, power * 100, None, 90)


def test_the_free_path_counts_only_while_the_spec_it_is_given_is_unenforced() -> None:
    ledger, free = QuotaLedger(), QuotaSpec(enabled=False)
    ledger.admit(free, "read", (), NOON)  # rolls the day
    assert ledger.count_free(free, NOON, None, "SN1") and ledger.used == 2
    enforced = QuotaSpec()
    assert not ledger.count_free(enforced, NOON, "scheduler", "SN1") and ledger.used == 2
    assert ledger.count_free(free, NOON, "scheduler", "SN1") and ledger.last == {("scheduler", "SN1"): NOON}
    # A spec cannot be switched in place, so the one found unenforced stays so.
    with pytest.raises(pydantic.ValidationError):
        free.enabled = True  # type: ignore[misc]
