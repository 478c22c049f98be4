"""The real `foxesscloud` package from PyPI, unchanged, against a served simulator.

The simulator runs on a real socket (127.0.0.1, a free port) in the test's event loop; the
client's blocking `requests` calls run in a worker thread. Only the client's documented module
settings are touched: its base URL, its key, and its own pacing delays (zero, because the tenant
runs a virtual clock and does not enforce quotas).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Iterator

os.environ.setdefault("MPLBACKEND", "Agg")  # the client imports matplotlib.pyplot at load

import pytest
from foxesscloud import openapi as fox

from amps_sim.simulator.web.app import create_app
from tests.conftest import WALL, Api
from tests.foxess.conftest import DEVICE_ID, fox_device, oem_key

# The client keeps its session in module globals; each test starts it from scratch.
_CLIENT_STATE = (
    "fox_domain", "api_key", "device", "device_sn", "device_list", "schedule", "messages", "max_periods",
    "work_modes", "settable_modes", "var_timestamp", "var_datas", "var_table", "var_list", "battery",
    "batteries", "battery_settings", "query_delay", "update_delay", "http_tries", "http_timeout", "debug_setting",
)
# 2026-05-09 22:00 to 2026-05-10 05:00 plant time (BST): rows 22:00-23:59 and 00:00-04:59.
OVERNIGHT = {"start": "2026-05-09T22:00:00+01:00", "end": "2026-05-10T05:00:00+01:00"}


@pytest.fixture
def client_module() -> Iterator[Any]:
    saved = {name: getattr(fox, name) for name in _CLIENT_STATE}
    saved_dicts = {name: dict(getattr(fox, name)) for name in ("last_call", "update_time", "response_time")}
    for name in ("device", "device_sn", "device_list", "schedule", "messages", "var_timestamp", "var_datas",
                 "var_table", "var_list", "battery", "batteries", "battery_settings"):
        setattr(fox, name, None)
    fox.query_delay, fox.update_delay, fox.http_tries, fox.http_timeout, fox.debug_setting = 0, 0, 1, 10, 1
    try:
        yield fox
    finally:
        for name, value in saved.items():
            setattr(fox, name, value)
        for name, value in saved_dicts.items():
            getattr(fox, name).clear()
            getattr(fox, name).update(value)


def periods(schedule: dict[str, Any]) -> list[tuple[int, int, int, int, str]]:
    return sorted((p["startHour"], p["startMinute"], p["endHour"], p["endMinute"], p["workMode"]) for p in schedule["periods"])


async def test_foxesscloud_client_and_an_amps_push_share_the_scheduler(aiohttp_client: Any, client_module: Any) -> None:
    f = client_module
    served = await aiohttp_client(create_app(seed=11, wall_clock=lambda: WALL))
    api = await Api(served, None).tenant([fox_device()])
    f.fox_domain = str(served.make_url("/foxess"))
    f.api_key = await oem_key(api, party="homeowner_app")

    device = await asyncio.to_thread(f.get_device)
    assert device is not None, "get_device() failed; see the client's printed output"
    assert device["deviceSN"] == (await api.truth(DEVICE_ID))["serialNumber"]
    assert device["model"] == "H1" and device["power"] == 5.0 and device["generationToday"] == 1.4
    assert f.max_periods == 8 and "ForceCharge" in f.work_modes
    # get_device: list, detail, flag, v3 scheduler read, generation, real-time query.
    assert await asyncio.to_thread(f.get_access_count) == {"total": 1440, "remaining": 1434}
    soc = await asyncio.to_thread(f.get_real, ["SoC"])
    assert soc[0]["value"] == 50

    schedule = await asyncio.to_thread(f.get_schedule)
    assert schedule["enable"] is False and schedule["periods"] == []

    # Two periods: the night charge will overlap the platform's window, the evening one will not.
    night = await asyncio.to_thread(f.set_period, "00:30", "04:30", "ForceCharge", max_soc=95, fdpwr=3000)
    evening = await asyncio.to_thread(f.set_period, "17:00", "20:00", "SelfUse", min_soc=20)
    written = await asyncio.to_thread(f.set_schedule, [night, evening], True)
    assert written is not None and written["enable"] is True
    truth = await api.truth(DEVICE_ID)
    assert truth["scheduler"]["enabled"] is True
    assert sorted((g["start"], g["end"], g["owner"]) for g in truth["scheduler"]["groups"]) == [
        ("00:30", "04:29", "homeowner_app"), ("17:00", "19:59", "homeowner_app")]

    # Flag off and on again, read back through the client each time.
    assert (await asyncio.to_thread(f.set_schedule, None, False))["enable"] is False
    assert (await asyncio.to_thread(f.get_flag))["enable"] == 0
    assert (await api.truth(DEVICE_ID))["scheduler"]["enabled"] is False
    assert (await asyncio.to_thread(f.set_schedule, None, True))["enable"] is True
    assert (await asyncio.to_thread(f.get_flag))["enable"] == 1
    schedule = await asyncio.to_thread(f.get_schedule)
    assert periods(schedule) == [(0, 30, 4, 29, "ForceCharge"), (17, 0, 19, 59, "SelfUse")]

    # The Amps push overlapping the homeowner's night charge is refused at submission...
    target = {"target": {"value": 100, "unit": "percent"}}
    refused = await api.push(DEVICE_ID, "charge", parameters=target, **OVERNIGHT)
    assert refused.status == 409 and refused.code == "SCHEDULER_ACTIVE"
    assert refused.details["reason"] == "foreign_scheduler_window_overlap"
    # ...and merged with cancel_and_replace: the overlapping row goes, the evening row stays.
    accepted = await api.push(DEVICE_ID, "charge", parameters=target, on_conflict="cancel_and_replace", **OVERNIGHT)
    assert accepted.status == 202
    await api.advance(to="2026-05-09T21:00:05Z")
    assert (await api.action(accepted.body["actionId"]))["state"] == "completed"
    schedule = await asyncio.to_thread(f.get_schedule)
    assert schedule["enable"] is True
    assert periods(schedule) == [(0, 0, 4, 59, "ForceCharge"), (17, 0, 19, 59, "SelfUse"), (22, 0, 23, 59, "ForceCharge")]
    assert all("owner" not in p for p in schedule["periods"])

    # After the window the platform's rows are gone; the homeowner's evening period remains.
    await api.advance(to="2026-05-10T04:00:05Z")
    schedule = await asyncio.to_thread(f.get_schedule)
    assert periods(schedule) == [(17, 0, 19, 59, "SelfUse")]
    assert schedule["periods"][0]["extraParam"]["minSocOnGrid"] == 20
    truth = await api.truth(DEVICE_ID)
    assert [(g["start"], g["owner"]) for g in truth["scheduler"]["groups"]] == [("17:00", "homeowner_app")]
    assert truth["scheduler"]["enabled"] is True  # the homeowner's flag, untouched by cleanup


async def test_foxesscloud_reports_the_cloud_errno(aiohttp_client: Any, client_module: Any, capsys: Any) -> None:
    f = client_module
    served = await aiohttp_client(create_app(seed=12, wall_clock=lambda: WALL))
    api = await Api(served, None).tenant([fox_device()])
    f.fox_domain = str(served.make_url("/foxess"))
    f.api_key = await oem_key(api)
    assert await asyncio.to_thread(f.get_device) is not None
    overlapping = [await asyncio.to_thread(f.set_period, "01:00", "03:00", "SelfUse"),
                   await asyncio.to_thread(f.set_period, "02:00", "04:00", "Backup")]
    assert await asyncio.to_thread(f.set_schedule, overlapping, True) is None
    assert "errno = 42023" in capsys.readouterr().out
    assert (await api.truth(DEVICE_ID))["scheduler"]["groups"] == []
    f.api_key = "not-a-key"
    f.device = None
    assert await asyncio.to_thread(f.get_device) is None
    assert "41809" in capsys.readouterr().out
