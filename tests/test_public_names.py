"""`__all__` is used in one place only: the harness's public facade, `amps_sim.contracts`, whose
names partners import. Its list is pinned here; every other module leaves `__all__` out (its
public names are the ones without a leading underscore)."""

from __future__ import annotations

import ast
from pathlib import Path

import amps_sim.contracts

ROOT = Path(__file__).resolve().parent.parent
FACADE = ROOT / "contracts" / "__init__.py"
CONTRACTS_NAMES = [
    "LoadedScenario",
    "ResponseValidator",
    "Scenario",
    "ScenarioFileError",
    "ScenarioRunner",
    "SpecViolation",
    "Target",
    "load_control",
    "load_public",
    "load_scenario",
    "load_suite",
]


def test_the_contracts_facade_exports_exactly_its_pinned_names() -> None:
    assert amps_sim.contracts.__all__ == CONTRACTS_NAMES
    for name in CONTRACTS_NAMES:
        assert getattr(amps_sim.contracts, name) is not None, name


def test_no_other_module_declares_all() -> None:
    offenders = []
    for folder in ("simulator", "contracts", "amps_sim"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == FACADE:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
                if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                    offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
