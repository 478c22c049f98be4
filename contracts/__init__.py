"""The contract-test harness: OpenAPI documents and the response checks built on them, the
scenario format, its loader and runner, and the reporters.

The names below load on first use, so `import contracts.spec` stays as light as it was.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ResponseValidator": "contracts.spec",
    "SpecViolation": "contracts.spec",
    "load_control": "contracts.spec",
    "load_public": "contracts.spec",
    "Scenario": "contracts.scenario",
    "LoadedScenario": "contracts.loader",
    "ScenarioFileError": "contracts.loader",
    "load_scenario": "contracts.loader",
    "load_suite": "contracts.loader",
    "ScenarioRunner": "contracts.runner",
    "Target": "contracts.runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'contracts' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
