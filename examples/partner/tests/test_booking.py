"""End to end: the optimiser's own clock is the tenant's virtual clock (amps_frozen_time)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from optimiser.amps_api import AmpsApi, AmpsApiError
from optimiser.planner import book_tonight, tonight

import contracts
import simulator

LONDON = ZoneInfo("Europe/London")


def test_our_own_packages_are_ours() -> None:
    # amps-sim is installed and its plugin loaded, yet `contracts` and `simulator` are still ours.
    assert contracts.CHEAP_FROM.hour == 22
    assert simulator.price_pence_per_kwh(23) < simulator.price_pence_per_kwh(12)


def test_books_tonight_from_its_own_clock(amps_tenant, amps_frozen_time) -> None:
    # The default world: 2026-05-08T08:00Z, dev_abc123 is a FoxESS battery in London.
    assert date.today() == date(2026, 5, 8)
    api = AmpsApi(amps_tenant.url, amps_tenant.api_key)

    action_id = book_tonight(api, "dev_abc123", "Europe/London")

    action = api.action(action_id)
    assert action["state"] == "scheduled"
    assert action["start"] == "2026-05-08T21:00:00.000Z"  # 22:00 in London (BST)

    # Move the world (and our clock with it) to just after the start: Amps has written the
    # window into the battery's native scheduler, as its own row.
    amps_tenant.advance_to(datetime(2026, 5, 8, 21, 0, 5, tzinfo=timezone.utc))
    assert datetime.now(LONDON).strftime("%H:%M") == "22:00"
    assert api.action(action_id)["state"] == "completed"
    rows = amps_tenant.device("dev_abc123")["scheduler"]["groups"]
    # Midnight splits the window into two native rows (22:00-23:59, 00:00-04:59), both Amps's.
    assert [row["owner"] for row in rows] == ["amps", "amps"]

    # The next morning "tonight" is the next evening.
    amps_tenant.advance("12h")
    assert tonight("Europe/London")[0] == datetime(2026, 5, 9, 22, 0, tzinfo=LONDON)


@pytest.mark.amps_world({
    "clock": {"now": "2026-10-24T12:00:00Z"},
    "devices": [{"id": "dev_home", "profile": "foxess", "timeZone": "Europe/London", "timeZoneKnown": True}],
})
def test_tonight_across_the_clock_change(amps_tenant) -> None:
    api = AmpsApi(amps_tenant.url, amps_tenant.api_key)
    with amps_tenant.frozen_time():
        action_id = book_tonight(api, "dev_home", "Europe/London")
    action = api.action(action_id)
    # 22:00 BST on the 24th, 05:00 GMT on the 25th: the clocks went back in between.
    assert (action["start"], action["end"]) == ("2026-10-24T21:00:00.000Z", "2026-10-25T05:00:00.000Z")


def test_a_foreign_row_is_reported(amps_tenant, amps_frozen_time) -> None:
    # The homeowner's app switched the native scheduler on with its own row: Amps refuses to
    # book over it, and says why.
    amps_tenant.set_scheduler("dev_abc123", enabled=True, owner="homeowner_app",
                              groups=[{"start": "21:30", "end": "23:59", "workMode": "SelfUse"}])
    api = AmpsApi(amps_tenant.url, amps_tenant.api_key)
    with pytest.raises(AmpsApiError) as refused:
        book_tonight(api, "dev_abc123", "Europe/London")
    assert refused.value.status == 409
