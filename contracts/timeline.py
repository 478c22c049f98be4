"""What each device looked like after every step, for the HTML timeline: plain data.

:mod:`contracts.recorder` fills it in over HTTP; the reporters draw it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def parse_instant(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@dataclass
class DeviceSample:
    """A device's truth at one virtual instant (after step `step`; -1 is the start)."""

    at: datetime
    step: int
    flag: bool | None
    groups: list[dict[str, Any]]
    soc: float | None
    mode: str | None
    warnings: list[dict[str, Any]]


@dataclass
class Marker:
    at: datetime
    kind: str  # conflict | failure | drift | violation | webhook
    label: str
    step: int | None = None


@dataclass
class DeviceTimeline:
    device_id: str
    time_zone: str | None = None
    samples: list[DeviceSample] = field(default_factory=list)
    actions: dict[str, dict[str, Any]] = field(default_factory=dict)  # latest record of each action
    markers: list[Marker] = field(default_factory=list)


@dataclass
class ScenarioTimeline:
    devices: dict[str, DeviceTimeline] = field(default_factory=dict)
    clock: list[tuple[int, datetime]] = field(default_factory=list)  # (step, instant)

    @property
    def start(self) -> datetime | None:
        return self.clock[0][1] if self.clock else None

    @property
    def end(self) -> datetime | None:
        return self.clock[-1][1] if self.clock else None
