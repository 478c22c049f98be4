"""What a run produces: failures, step records, scenario results and the run summary.

Plain data, built by the runner and read by the reporters; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from amps_sim.contracts.exchange import Exchange
from amps_sim.contracts.timeline import ScenarioTimeline

if TYPE_CHECKING:
    from amps_sim.contracts.loader import LoadedScenario

FailureKind = Literal["expectation", "spec", "transport", "setup"]
StepStatus = Literal["passed", "failed", "not_run"]
ScenarioStatus = Literal["passed", "failed", "skipped"]


@dataclass
class Failure:
    """One reason a scenario failed."""

    kind: FailureKind
    message: str
    step: int | None = None  # index into the scenario's steps; None for setup
    line: int | None = None  # line of that step in the file
    details: list[str] = field(default_factory=list)
    diff: str | None = None  # an expected/actual unified diff, when one helps

    def headline(self) -> str:
        where = f"step {self.step + 1}" if self.step is not None else "setup"
        line = f" (line {self.line})" if self.line else ""
        return f"{where}{line}: {self.message}"


@dataclass
class StepRecord:
    index: int
    kind: str
    label: str
    line: int
    status: StepStatus = "not_run"
    exchanges: list[Exchange] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    duration_s: float = 0.0
    clock: str | None = None  # the tenant's virtual instant after the step

    @property
    def own_exchanges(self) -> list[Exchange]:
        """The step's own requests, without the runner's timeline reads."""
        return [e for e in self.exchanges if e.purpose == "step"]


@dataclass
class ScenarioResult:
    loaded: "LoadedScenario"
    status: ScenarioStatus
    steps: list[StepRecord] = field(default_factory=list)
    setup: list[Exchange] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    skip_reason: str | None = None
    duration_s: float = 0.0
    timeline: ScenarioTimeline | None = None

    @property
    def exchanges(self) -> list[Exchange]:
        return [*self.setup, *(e for step in self.steps for e in step.exchanges)]

    @property
    def validation_s(self) -> float:
        return sum(e.validation_s for e in self.exchanges)

    @property
    def responses(self) -> int:
        return sum(1 for e in self.exchanges if e.error is None)


@dataclass
class RunSummary:
    results: list[ScenarioResult]
    duration_s: float
    target: str
    broken_files: list[str] = field(default_factory=list)  # files that failed to load, with their lines

    def count(self, status: ScenarioStatus) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def failed(self) -> int:
        return self.count("failed") + len(self.broken_files)

    @property
    def validation_s(self) -> float:
        return sum(r.validation_s for r in self.results)

    @property
    def responses(self) -> int:
        return sum(r.responses for r in self.results)

    @property
    def ok(self) -> bool:
        return self.failed == 0
