"""Battery physics: a state of charge that integrates piecewise-constant power.

Power depends only on the drive (what the inverter was told), the plant-local hour (the household
profile) and which side of a SoC limit the battery is on. So between hour boundaries, drive changes
and limit hits it is constant, and the device can integrate exactly segment by segment instead of
stepping through time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# A deterministic household, by plant-local hour (kW). No randomness: runs must be reproducible.
SOLAR_KW: tuple[float, ...] = (
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0,  # 00-05 night
    0.1, 0.4, 0.9, 1.5, 2.1, 2.6,  # 06-11 morning rise
    3.0, 3.0, 2.6, 2.1, 1.5, 0.9,  # 12-17 peak at 12-13h, then fall
    0.4, 0.1, 0.0, 0.0, 0.0, 0.0,  # 18-23
)
LOAD_KW: tuple[float, ...] = (
    0.4, 0.4, 0.4, 0.4, 0.4, 0.4,  # 00-05 base load
    0.6, 0.9, 0.7, 0.5, 0.5, 0.5,  # 06-11 breakfast
    0.6, 0.5, 0.5, 0.5, 0.7, 1.5,  # 12-17
    1.8, 2.0, 1.8, 1.5, 0.8, 0.5,  # 18-23 evening peak 17-21h
)
assert len(SOLAR_KW) == 24 and len(LOAD_KW) == 24

DEFAULT_FLOOR = 10.0  # FoxESS's lowest accepted fdSoc / minSocOnGrid
FULL = 100.0
# Below this a SoC difference is float noise: treating it as "at the limit" stops the integrator
# from chasing ever-smaller segments towards a limit it has already reached.
_SOC_EPSILON = 1e-9

WORK_MODES = ("SelfUse", "Feedin", "Backup", "ForceCharge", "ForceDischarge")


@dataclass(frozen=True)
class Drive:
    """What the inverter is told to do right now, in native terms."""

    work_mode: str
    fd_soc: float | None = None
    fd_pwr_kw: float | None = None
    min_soc_on_grid: float | None = None
    max_soc: float | None = None

    def __post_init__(self) -> None:
        if self.work_mode not in WORK_MODES:
            raise ValueError(f"unknown work mode {self.work_mode!r}")


def _pick(value: float | None, default: float) -> float:
    return default if value is None else value


@dataclass
class Battery:
    capacity_kwh: float
    soc: float  # percent, 0..100
    max_power_kw: float
    updated_at: datetime  # the instant `soc` is true for
    hard_floor: float = 0.0  # the cell protection: no drive can take the SoC below it

    def bounds(self, drive: Drive) -> tuple[float, float]:
        """(floor, ceiling) between which `drive` may move the SoC."""
        mode = drive.work_mode
        if mode == "ForceDischarge":
            floor = max(_pick(drive.fd_soc, DEFAULT_FLOOR), _pick(drive.min_soc_on_grid, DEFAULT_FLOOR))
        else:
            floor = _pick(drive.min_soc_on_grid, DEFAULT_FLOOR)
        ceiling = _pick(drive.max_soc, FULL)
        return max(floor, self.hard_floor, 0.0), min(ceiling, FULL)

    def _wanted_kw(self, drive: Drive, local_hour: int) -> float:
        """Signed power the drive asks for, before SoC limits (+ = charging)."""
        solar, load = SOLAR_KW[local_hour], LOAD_KW[local_hour]
        cap = self.max_power_kw
        mode = drive.work_mode
        if mode == "ForceCharge":
            # fdPwr 0 means 0 kW here, as it does for ForceDischarge (the "hold"): one reading of
            # the parameter for both directions.
            return min(_pick(drive.fd_pwr_kw, cap), cap)
        if mode == "ForceDischarge":
            return -min(_pick(drive.fd_pwr_kw, cap), cap)
        if mode == "SelfUse":
            return max(-cap, min(cap, solar - load))
        if mode == "Backup":
            # Keeps the reserve: fills from surplus solar, never feeds the house.
            return min(cap, max(0.0, solar - load))
        # Feedin: solar is exported first, so the battery meets the house load and never charges.
        return -min(cap, load)

    def power_kw(self, drive: Drive, local_hour: int) -> float:
        """Signed power (+ = charging) at the current SoC."""
        if not 0 <= local_hour <= 23:
            raise ValueError(f"local hour out of range: {local_hour}")
        wanted = self._wanted_kw(drive, local_hour)
        floor, ceiling = self.bounds(drive)
        if wanted > 0 and self.soc >= ceiling - _SOC_EPSILON:
            return 0.0
        if wanted < 0 and self.soc <= floor + _SOC_EPSILON:
            return 0.0
        return wanted

    def limit_ahead(self, drive: Drive, power_kw: float) -> tuple[float, float] | None:
        """(seconds, SoC) until `power_kw` drives the SoC onto the drive's limit; None if never."""
        if power_kw == 0:
            return None
        floor, ceiling = self.bounds(drive)
        limit = ceiling if power_kw > 0 else floor
        energy_kwh = abs(limit - self.soc) / 100.0 * self.capacity_kwh
        return max(0.0, energy_kwh / abs(power_kw) * 3600.0), limit

    def integrate(
        self, power_kw: float, seconds: float, at: datetime, *, limit: float | None = None, reached: bool = False
    ) -> None:
        """Apply `power_kw` for `seconds`, ending at `at`. The SoC never passes `limit` (the drive's
        limit in the direction of travel); `reached` says the segment was cut exactly where the
        limit is hit, so the SoC is set onto it rather than left a float hair short."""
        soc = self.soc + power_kw * seconds / 3600.0 / self.capacity_kwh * 100.0
        if limit is not None:
            if reached:
                soc = limit
            elif power_kw > 0:
                soc = min(soc, limit)
            elif power_kw < 0:
                soc = max(soc, limit)
        self.soc = min(FULL, max(self.hard_floor, 0.0, soc))
        self.updated_at = at
