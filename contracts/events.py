"""The typed events a run emits; reporters consume them and never reach into the runner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Union

if TYPE_CHECKING:
    from amps_sim.contracts.loader import LoadedScenario
    from amps_sim.contracts.results import RunSummary, ScenarioResult, StepRecord


@dataclass(frozen=True)
class RunStarted:
    total: int
    target: str


@dataclass(frozen=True)
class ScenarioStarted:
    loaded: "LoadedScenario"
    index: int  # 1-based position in the run
    total: int


@dataclass(frozen=True)
class StepDone:
    loaded: "LoadedScenario"
    step: "StepRecord"


@dataclass(frozen=True)
class ScenarioFinished:
    result: "ScenarioResult"
    index: int
    total: int


@dataclass(frozen=True)
class RunFinished:
    summary: "RunSummary"


Event = Union[RunStarted, ScenarioStarted, StepDone, ScenarioFinished, RunFinished]
Listener = Callable[[Event], None]
