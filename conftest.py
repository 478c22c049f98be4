"""Every YAML file under scenarios/ is also a pytest item (see contracts/pytest_plugin.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

_SUITE = Path(__file__).resolve().parent / "scenarios"


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    from contracts.pytest_plugin import collect_scenario_file

    return collect_scenario_file(parent, file_path, _SUITE)
