"""The wire shapes of the FoxESS Open API: scheduler groups in each API version, and the device
descriptions a client reads at start-up.

Versions differ only in how a group spells its parameters:

- v0: flat `minSocOnGrid`, `fdSoc`, `fdPwr`; reads pad to every slot with `Invalid` rows.
- v1: v0 plus a flat `maxSoc`; same padding.
- v2: the parameters nested in `extraParam`; reads list only active groups and `maxGroupCount`.
- v3: v2 plus `isRemainMode` on a group and `isDefault` on the write; reads add lower-case
  `properties` with each parameter's range and the work modes in `workmode.enumList`.

A key a version does not know is refused (errno 40257), never ignored: a client that copies a
v1 read into a v0 write, or nests parameters the wrong way, learns it at once.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from ..battery import DEFAULT_FLOOR, FULL, LOAD_KW, SOLAR_KW
from ..device import Device
from ..errnos import bad_parameter
from ..native_scheduler import Group, NativeScheduler

VERSIONS = (0, 1, 2, 3)
INVALID_MODE = "Invalid"
_TIME_KEYS = ("startHour", "startMinute", "endHour", "endMinute")
_PARAMS = ("minSocOnGrid", "fdSoc", "fdPwr", "maxSoc")


def _flat_params(version: int) -> tuple[str, ...]:
    return ("minSocOnGrid", "fdSoc", "fdPwr") if version == 0 else _PARAMS


def _whole(value: Any, name: str, low: int, high: int) -> int:
    # bool is an int subclass; `true` for an hour is a client bug the cloud refuses.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_parameter(f"{name} must be an integer {low}..{high}, got {value!r}")
    return value


def _param(value: Any, name: str) -> int:
    whole = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value.is_integer())
    if isinstance(value, bool) or not whole:
        raise bad_parameter(f"{name} must be a whole number, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------- group writes
def parse_groups(version: int, raw: Any, owner: str) -> list[Group]:
    """The groups of a scheduler write, owned by `owner`. Rows with `enable: 0` are unused slots
    (a client may write back all the rows it read) and are not stored."""
    if not isinstance(raw, list):
        raise bad_parameter("groups must be a list")
    groups = []
    for index, item in enumerate(raw):
        group = _parse_group(version, item, owner, f"groups[{index}]")
        if group is not None:
            groups.append(group)
    return groups


def _parse_group(version: int, item: Any, owner: str, where: str) -> Group | None:
    if not isinstance(item, dict):
        raise bad_parameter(f"{where} must be an object")
    allowed = {"enable", "workMode", *_TIME_KEYS}
    allowed |= set(_flat_params(version)) if version < 2 else {"extraParam"}
    if version == 3:
        allowed.add("isRemainMode")
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise bad_parameter(f"{where} has keys this API version does not know: {', '.join(unknown)}")
    missing = [key for key in ("workMode", *_TIME_KEYS) if key not in item]
    if missing:
        raise bad_parameter(f"{where} is missing {', '.join(missing)}")
    enable = _whole(item.get("enable", 1), f"{where}.enable", 0, 1)
    if "isRemainMode" in item and not isinstance(item["isRemainMode"], bool):
        raise bad_parameter(f"{where}.isRemainMode must be true or false")
    mode = item["workMode"]
    if not isinstance(mode, str):
        raise bad_parameter(f"{where}.workMode must be a string")
    start_hour = _whole(item["startHour"], f"{where}.startHour", 0, 23)
    start_minute = _whole(item["startMinute"], f"{where}.startMinute", 0, 59)
    end_hour = _whole(item["endHour"], f"{where}.endHour", 0, 23)
    end_minute = _whole(item["endMinute"], f"{where}.endMinute", 0, 59)
    if version < 2:
        params = {key: item[key] for key in _flat_params(version) if key in item}
    else:
        extra = item.get("extraParam", {})
        if not isinstance(extra, dict):
            raise bad_parameter(f"{where}.extraParam must be an object")
        unknown = sorted(set(extra) - set(_PARAMS))
        if unknown:
            raise bad_parameter(f"{where}.extraParam has keys this device does not support: {', '.join(unknown)}")
        params = dict(extra)
    if enable == 0:
        return None  # an unused slot, whatever it says
    if mode == INVALID_MODE:
        raise bad_parameter(f"{where}: an enabled group needs a real work mode, not {INVALID_MODE!r}")
    values = {key: _param(value, f"{where}.{key}") for key, value in params.items() if value is not None}
    return Group(
        start=start_hour * 60 + start_minute,
        end=end_hour * 60 + end_minute,
        work_mode=mode,
        owner=owner,
        min_soc_on_grid=values.get("minSocOnGrid"),
        fd_soc=values.get("fdSoc"),
        fd_pwr=values.get("fdPwr"),
        max_soc=values.get("maxSoc"),
    )


# ------------------------------------------------------------------------------ group reads
def shown_params(group: Group, device: Device) -> dict[str, int]:
    """The four parameters as the device reports them: a value the writer left out reads as
    the value the device actually runs with."""
    min_soc = group.min_soc_on_grid if group.min_soc_on_grid is not None else int(DEFAULT_FLOOR)
    fd_soc = group.fd_soc if group.fd_soc is not None else max(int(DEFAULT_FLOOR), min_soc)
    fd_pwr = group.fd_pwr if group.fd_pwr is not None else rated_power_w(device)
    max_soc = group.max_soc if group.max_soc is not None else int(FULL)
    return {"minSocOnGrid": min_soc, "fdSoc": fd_soc, "fdPwr": fd_pwr, "maxSoc": max_soc}


def _times(group: Group) -> dict[str, int]:
    return {
        "startHour": group.start // 60,
        "startMinute": group.start % 60,
        "endHour": group.end // 60,
        "endMinute": group.end % 60,
    }


def render_group(version: int, group: Group, device: Device) -> dict[str, Any]:
    """One stored group as the given version reads it. Owners never appear: the cloud has none."""
    row: dict[str, Any] = {"enable": 1, **_times(group), "workMode": group.work_mode}
    params = shown_params(group, device)
    if version < 2:
        row.update({key: params[key] for key in _flat_params(version)})
    else:
        row["extraParam"] = params
    return row


def _unused_row(version: int) -> dict[str, Any]:
    row: dict[str, Any] = {"enable": 0, "startHour": 0, "startMinute": 0, "endHour": 0, "endMinute": 0, "workMode": INVALID_MODE}
    row.update(dict.fromkeys(_flat_params(version), 0))
    return row


def render_schedule(version: int, scheduler: NativeScheduler, device: Device) -> dict[str, Any]:
    """A scheduler read. `read_back` carries the reordering quirk; on v0/v1 the quirk also puts
    the groups after the padding, so a row written to slot 1 reads back in the last slot."""
    groups = [render_group(version, g, device) for g in scheduler.read_back()]
    body: dict[str, Any] = {"enable": int(scheduler.enabled)}
    if version < 2:
        padding = [_unused_row(version) for _ in range(max(0, scheduler.max_group_count - len(groups)))]
        body["groups"] = padding + groups if scheduler.readback_reorder else groups + padding
        return body
    body["groups"] = groups
    body["maxGroupCount"] = scheduler.max_group_count
    if version == 3:
        body["properties"] = properties(scheduler)
    return body


def _range(unit: str, low: int, high: int) -> dict[str, Any]:
    return {"unit": unit, "precision": 1.0, "range": {"min": float(low), "max": float(high)}}


def properties(scheduler: NativeScheduler) -> dict[str, Any]:
    limits = scheduler.limits
    return {
        "minsocongrid": _range("%", *limits.min_soc_on_grid),
        "fdsoc": _range("%", *limits.fd_soc),
        "fdpwr": _range("W", 0, limits.fd_pwr_max_w),
        "maxsoc": _range("%", *limits.max_soc),
        "workmode": {"unit": "", "precision": 1.0, "range": None, "enumList": list(scheduler.work_modes)},
    }


# ------------------------------------------------------------------------ device descriptions
def rated_power_w(device: Device) -> int:
    """The inverter rating the cloud reports: the battery's power, capped by what fdPwr accepts."""
    watts = round(device.battery.max_power_kw * 1000)
    if device.scheduler is not None:
        watts = min(watts, device.scheduler.limits.fd_pwr_max_w)
    return int(watts)


def device_type(device: Device) -> str:
    """A model code the reference client can parse (`H1-5.0-E`): single phase up to 6 kW."""
    kw = rated_power_w(device) / 1000
    return f"{'H1' if kw <= 6 else 'H3'}-{kw:.1f}-E"


def station_id(device: Device) -> str:
    return "ST" + device.serial_number[-10:]


def device_summary(device: Device, offline: bool) -> dict[str, Any]:
    """A row of the device list."""
    return {
        "deviceSN": device.serial_number,
        "moduleSN": "M" + device.serial_number[-12:],
        "stationID": station_id(device),
        "stationName": f"Plant {device.id}",
        "deviceType": device_type(device),
        "productType": device_type(device).split("-")[0],
        "hasBattery": True,
        "hasPV": True,
        "status": 3 if offline else 1,  # 1 on-line, 2 fault, 3 off-line
    }


def device_detail(device: Device, offline: bool) -> dict[str, Any]:
    return {
        **device_summary(device, offline),
        "masterVersion": "1.50",
        "slaveVersion": "1.02",
        "managerVersion": "1.60",
        "hardwareVersion": "--",
        "capacity": rated_power_w(device) / 1000,
        "function": {"scheduler": device.scheduler is not None},
        "batteryList": [
            {"batterySN": "B" + device.serial_number[-12:], "model": "SIM-BAT", "type": "bcu", "version": "1.0"}
        ],
    }


def generation(device: Device, now: datetime) -> dict[str, float]:
    """PV yield from the same deterministic solar table the battery physics uses (kWh)."""
    local = now.astimezone(device.tz)
    per_day = sum(SOLAR_KW)
    today = sum(SOLAR_KW[:local.hour]) + SOLAR_KW[local.hour] * local.minute / 60
    month = per_day * (local.day - 1) + today
    cumulative = per_day * (local.timetuple().tm_yday - 1) + today
    return {"today": round(today, 1), "month": round(month, 1), "cumulative": round(cumulative, 1)}


REAL_VARIABLES: dict[str, tuple[str, str]] = {
    "SoC": ("%", "SoC"),
    "ResidualEnergy": ("10Wh", "Residual Energy"),
    "pvPower": ("kW", "PVPower"),
    "loadsPower": ("kW", "Load Power"),
    "batChargePower": ("kW", "Charge Power"),
    "batDischargePower": ("kW", "Discharge Power"),
    "invBatPower": ("kW", "Battery Power"),
    "gridConsumptionPower": ("kW", "Grid Consumption Power"),
    "feedinPower": ("kW", "Feed-in Power"),
    "generationPower": ("kW", "Output Power"),
    "workMode": ("", "Work Mode"),
}


def real_values(device: Device, now: datetime) -> dict[str, Any]:
    """Every real-time variable, consistent with the battery model at `now`."""
    reading = device.reading(now)
    local = now.astimezone(device.tz)
    solar, load = SOLAR_KW[local.hour], LOAD_KW[local.hour]
    rate = reading["chargeRate"]  # kW, + charging
    charge, discharge = max(rate, 0.0), max(-rate, 0.0)
    net = load + charge - solar - discharge  # + draws from the grid
    residual = device.battery.soc / 100 * device.battery.capacity_kwh * 100  # in 10 Wh units
    return {
        "SoC": round(device.battery.soc),
        "ResidualEnergy": round(residual),
        "pvPower": _kw(solar),
        "loadsPower": _kw(load),
        "batChargePower": _kw(charge),
        "batDischargePower": _kw(discharge),
        "invBatPower": _kw(-rate),  # + while the battery feeds the inverter
        "gridConsumptionPower": _kw(max(net, 0.0)),
        "feedinPower": _kw(max(-net, 0.0)),
        "generationPower": _kw(max(solar + discharge - charge, 0.0)),
        "workMode": device.drive_at(now).work_mode,
    }


def _kw(value: float) -> float:
    return round(value, 3) + 0.0  # + 0.0 turns a rounded -0.0 into 0.0


def real_row(device: Device, now: datetime, variables: list[str] | None) -> dict[str, Any]:
    values = real_values(device, now)
    names = variables if variables else list(REAL_VARIABLES)
    local = now.astimezone(device.tz)
    return {
        "deviceSN": device.serial_number,
        "time": local.strftime("%Y-%m-%d %H:%M:%S %Z%z"),
        "datas": [
            {"variable": name, "unit": REAL_VARIABLES[name][0], "name": REAL_VARIABLES[name][1], "value": values[name]}
            for name in names
        ],
    }
