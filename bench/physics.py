"""Device physics alone: the fleet's device-day without the platform. Numbers to report, not assertions.

N FoxESS devices (Europe/London, two homeowner rows, scheduler on), each written twice a day as
the platform's windowed charge writes them (its row added at 01:00 local, removed at 05:00), for
D days; every device read at the end. As in the platform, each device's charge row is a new
object every day (one per action, made by `group_for_drive`), and the stored rows are read back
three times a device-day (at the push, before the write, before the removal). Only the Device interface is used, so the same script runs
against any tree. Run it under callgrind for two values of D and subtract to get instructions per
device-day (start-up cancels):

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m bench.physics --devices 200 --days 10
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m bench.physics --devices 200 --days 30

`python -m bench.physics [--devices 1000] [--days 30]`
"""

from __future__ import annotations

import argparse
import hashlib
import time
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from amps_sim.simulator.device import Device, DeviceSpec, drive_for_command, group_for_drive
from bench.fleet import HOMEOWNER_ROWS, START

ZONE = ZoneInfo("Europe/London")
CHARGE = drive_for_command("charge", target=95, power_kw=None, reserve=None)


def run(count: int, days: int) -> tuple[float, str]:
    spec = {"profile": "foxess", "timeZone": "Europe/London", "scheduler": {"enabled": True, "groups": HOMEOWNER_ROWS}}
    devices = [Device(DeviceSpec.model_validate({"id": f"dev_{i:05d}", **spec}), START) for i in range(count)]
    began = time.perf_counter()
    for day in range(days):
        local = START.astimezone(ZONE).date() + timedelta(days=day + 1)
        at = wall(local, 60)
        for device in devices:
            # The platform reads the rows at the push and at dispatch, and writes them back with
            # its own row (a new object per action) beside the homeowner's.
            scheduler = device.scheduler
            assert scheduler is not None
            scheduler.read_back()
            current = scheduler.read_back()
            charge = group_for_drive(CHARGE, 60, 299, owner="amps", action_id=f"act_{day}")
            device.replace_groups([*current, charge], at)
        at = wall(local, 300)
        for device in devices:
            scheduler = device.scheduler
            assert scheduler is not None
            # At the window's end it reads them again and writes back all but its own row.
            device.replace_groups([row for row in scheduler.read_back() if row.owner != "amps"], at)
    end = START + timedelta(days=days)
    views = [device.view(end) for device in devices]
    elapsed = time.perf_counter() - began
    fingerprint = hashlib.sha256(repr([v["battery"] for v in views]).encode()).hexdigest()[:16]
    return elapsed, fingerprint


def wall(day: date, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=ZONE).astimezone(timezone.utc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    elapsed, fingerprint = run(args.devices, args.days)
    print(f"device physics: {args.devices:,} devices x {args.days} days, 2 writes a device-day and one read at the end: "
          f"{elapsed:.3f} s wall, {elapsed / (args.devices * args.days) * 1e6:.1f} us per device-day; "
          f"digest of every battery view {fingerprint}")


if __name__ == "__main__":
    main()
