"""Book tonight's cheap window: from 22:00 local until 05:00 the next morning.

"Tonight" comes from the optimiser's own clock, as it would in production. Under test that clock
is the simulated tenant's (amps_frozen_time), so a booking made "tonight" is tonight for the
simulator too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from contracts import CHEAP_FROM, CHEAP_UNTIL  # the partner's own tariff contract, not amps-sim's

from .amps_api import AmpsApi


def tonight(zone: str) -> tuple[datetime, datetime]:
    """Tonight's cheap window in the plant's zone (tomorrow's, if tonight's has begun)."""
    local_now = datetime.now(ZoneInfo(zone))
    start = datetime.combine(local_now.date(), CHEAP_FROM, tzinfo=ZoneInfo(zone))
    if start <= local_now:
        start += timedelta(days=1)
    end = datetime.combine(start.date() + timedelta(days=1), CHEAP_UNTIL, tzinfo=ZoneInfo(zone))
    return start, end


def book_tonight(api: AmpsApi, device_id: str, zone: str, target_percent: int = 100) -> str:
    """Push tonight's charge; the action's id."""
    start, end = tonight(zone)
    action = {
        "command": "charge",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "parameters": {"target": {"value": target_percent, "unit": "percent"}},
    }
    return str(api.push(device_id, action)["actionId"])
