"""Device profiles: what a class of device can do, kept as data.

A profile is read from a YAML file shipped beside this module, so adding an OEM variant is a new
file rather than new code. The models are closed (`extra="forbid"`) so a misspelt key in a profile
file fails loudly at load time instead of silently falling back to a default.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

Execution = Literal["immediate", "scheduled", "windowed"]
# The OEM cloud in front of a device: `foxess` devices are reached through the simulated FoxESS
# cloud (its native API, keys and quotas); `none` devices are driven directly.
OemCloud = Literal["none", "foxess"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParameterRange(_Frozen):
    unit: str
    min: float
    # None stands for "the device's maxPowerKw": the bound depends on the unit, not on the profile.
    max: float | None

    @model_validator(mode="after")
    def _ordered(self) -> "ParameterRange":
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max {self.max} is below min {self.min}")
        return self


class CommandCapability(_Frozen):
    parameters: dict[str, ParameterRange] = Field(default_factory=dict)
    execution: list[Execution]


class Latencies(_Frozen):
    """Virtual seconds after dispatch at which the OEM answers."""

    acknowledge_s: float = Field(default=1, ge=0)
    complete_s: float = Field(default=3, ge=0)
    reject_s: float = Field(default=32, ge=0)


class GroupLimits(_Frozen):
    """Ranges the native scheduler accepts for a group's parameters (inclusive)."""

    fd_soc: tuple[int, int] = (10, 100)
    min_soc_on_grid: tuple[int, int] = (10, 100)
    max_soc: tuple[int, int] = (10, 100)
    fd_pwr_max_w: int = Field(default=10500, ge=0)


class DeviceProfile(_Frozen):
    name: str
    description: str
    oem_cloud: OemCloud
    native_scheduler: bool
    wall_clock_schedule: bool
    foreign_state_read: bool
    slot_aware_merge: bool
    blocks_imperative_while_scheduled: bool
    readback_reorder: bool
    default_max_group_count: int = Field(ge=0)
    work_modes: list[str]
    group_limits: GroupLimits = Field(default_factory=GroupLimits)
    commands: dict[str, CommandCapability]
    conflict_strategies: list[str]
    latencies: Latencies = Field(default_factory=Latencies)

    @model_validator(mode="after")
    def _scheduler_consistent(self) -> "DeviceProfile":
        # A slot count without a scheduler (or the reverse) would be a contradiction in the file.
        if self.native_scheduler != (self.default_max_group_count > 0):
            raise ValueError("default_max_group_count must be > 0 exactly when native_scheduler is true")
        if self.oem_cloud == "foxess" and not self.native_scheduler:
            raise ValueError("a device behind the FoxESS cloud has a native scheduler (native_scheduler: true)")
        return self


_PACKAGE = __name__


def profile_names() -> list[str]:
    """Names of every profile shipped in this package, sorted."""
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in resources.files(_PACKAGE).iterdir()
        if entry.is_file() and entry.name.endswith(".yaml")
    )


@cache
def load_profile(name: str) -> DeviceProfile:
    """The named profile; KeyError when no such file ships. Cached: profiles are immutable."""
    if name not in profile_names():
        raise KeyError(name)
    text = resources.files(_PACKAGE).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    profile = DeviceProfile.model_validate(yaml.safe_load(text))
    if profile.name != name:
        raise ValueError(f"profile file {name}.yaml declares name {profile.name!r}")
    return profile


class Traits:
    """The profile's flags the platform reads on every push and dispatch, as plain attributes.
    A pydantic model's attribute read goes through `BaseModel.__getattr__`'s hook, which the
    interpreter cannot specialise (about 300 instructions a read, against a few for a slot)."""

    __slots__ = ("name", "wall_clock_rows", "foreign_state_read", "slot_aware_merge", "blocks_imperative_while_scheduled")

    def __init__(self, profile: DeviceProfile) -> None:
        self.name = profile.name
        # Rows the device runs on its plant-local wall clock (a native scheduler that keeps one).
        self.wall_clock_rows = profile.native_scheduler and profile.wall_clock_schedule
        self.foreign_state_read = profile.foreign_state_read
        self.slot_aware_merge = profile.slot_aware_merge
        self.blocks_imperative_while_scheduled = profile.blocks_imperative_while_scheduled

    def __reduce__(self) -> tuple[object, tuple[str]]:
        # A snapshot names the profile; a restored device shares the one object of this process.
        return profile_traits, (self.name,)


@cache
def profile_traits(name: str) -> Traits:
    """The named profile's `Traits`, one object per profile."""
    return Traits(load_profile(name))
