"""The contract-test harness: OpenAPI documents and the response checks built on them, the
scenario format, its loader and runner, and the reporters.

The names below load on first use, so `import amps_sim.contracts.spec` stays as light as it was.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ResponseValidator": "amps_sim.contracts.spec",
    "SpecViolation": "amps_sim.contracts.spec",
    "load_control": "amps_sim.contracts.spec",
    "load_public": "amps_sim.contracts.spec",
    "Scenario": "amps_sim.contracts.scenario",
    "LoadedScenario": "amps_sim.contracts.loader",
    "ScenarioFileError": "amps_sim.contracts.loader",
    "load_scenario": "amps_sim.contracts.loader",
    "load_suite": "amps_sim.contracts.loader",
    "ScenarioRunner": "amps_sim.contracts.runner",
    "Target": "amps_sim.contracts.runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'contracts' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
