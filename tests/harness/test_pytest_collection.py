"""Scenario files collected by pytest (root conftest.py + contracts/pytest_plugin.py) report what
actually happened: a failing scenario is a failed item, a passing one passed, a broken file fails.

Each run is a real pytest session in a temporary project (pytester) using a copy of the
repository's own root conftest.py, so a fault in either file shows here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import PASSING, WRONG_EXPECTATION

ROOT_CONFTEST = Path(__file__).resolve().parents[2] / "conftest.py"


def _project(pytester: pytest.Pytester, **scenarios: str) -> None:
    pytester.makeconftest(ROOT_CONFTEST.read_text(encoding="utf-8"))
    folder = pytester.mkdir("scenarios")
    for name, text in scenarios.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")


def test_a_failing_scenario_is_reported_failed(pytester: pytest.Pytester) -> None:
    _project(pytester, wrong=WRONG_EXPECTATION)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "scenarios")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Expects the wrong state*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_passing_and_failing_scenarios_are_told_apart(pytester: pytest.Pytester) -> None:
    _project(pytester, good=PASSING, wrong=WRONG_EXPECTATION, broken="name: [unclosed\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "scenarios")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*FAILED scenarios/broken.yaml*", "*FAILED scenarios/wrong.yaml*"])
