"""The committed suite: big enough, every file valid and sourced, every area present."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from amps_sim.contracts.loader import LoadedScenario, ScenarioFileError, load_suite

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
AREAS = {"auth", "cancel", "conflicts", "control", "dst", "faults", "lifecycle", "native", "physics", "scheduler_active",
         "scheduler_full", "seeds", "time_windows", "validation", "webhooks"}


@cache
def _suite() -> tuple[list[LoadedScenario], list[ScenarioFileError]]:
    return load_suite([SCENARIOS])


def test_the_suite_loads_whole_and_covers_every_area() -> None:
    scenarios, broken = _suite()
    assert not broken, "\n".join(str(b) for b in broken)
    assert len(scenarios) >= 60
    assert {s.area for s in scenarios} == AREAS
    names = [s.scenario.name for s in scenarios]
    assert len(names) == len(set(names)), "scenario names must be unique"


def test_every_seed_document_with_flows_is_encoded() -> None:
    scenarios, _ = _suite()
    sources = " ".join(s.scenario.source for s in scenarios)
    for seed in ("seed 002", "seed 003", "seed 004"):
        assert seed in sources, seed


def test_some_scenarios_run_anywhere() -> None:
    # Scenarios that need no control API also run against a real deployment (--target).
    scenarios, _ = _suite()
    assert sum(1 for s in scenarios if not s.scenario.needs_control) >= 3


def test_native_scenarios_act_through_the_devices_cloud_and_name_their_source() -> None:
    scenarios, _ = _suite()
    native = [s for s in scenarios if s.area == "native"]
    assert len(native) >= 8
    for loaded in native:
        assert loaded.scenario.uses_native, loaded.relative
        source = loaded.scenario.source
        assert any(doc in source for doc in ("foxess-device.md", "amps-api.md §5", "docs/decisions.md")), loaded.relative


def test_webhook_scenarios_receive_what_issue_9_lists() -> None:
    scenarios, _ = _suite()
    webhooks = [s for s in scenarios if s.area == "webhooks"]
    assert all(s.scenario.uses_webhooks for s in webhooks)
    names = " ".join(s.relative for s in webhooks)
    for topic in ("push_completed", "scheduler_active", "oem_timeout", "retry_ladder", "duplicate", "rotation",
                  "disconnect", "cancelled"):
        assert topic in names, topic
