"""Every YAML file under scenarios/ is also a pytest item (see contracts/pytest_plugin.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

# pytester drives whole pytest sessions in a temporary project (tests/harness/test_pytest_collection.py).
pytest_plugins = ["pytester"]

_SUITE = Path(__file__).resolve().parent / "scenarios"


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    from amps_sim.contracts.pytest_plugin import collect_scenario_file

    return collect_scenario_file(parent, file_path, _SUITE)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say out loud which tests skipped and why (chromium or nginx missing, say): a plain skip
    would pass unnoticed under `pytest -q`."""
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        terminalreporter.write_line(f"NOTE: {report.nodeid} was skipped: {reason}", yellow=True)
