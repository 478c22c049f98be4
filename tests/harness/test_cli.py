"""`amps-sim run`: exit codes, -k, and the reports it writes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from amps_sim.cli import main
from amps_sim.contracts.keywords import KeywordError, compile_keywords
from tests.harness.helpers import PASSING, WRONG_EXPECTATION, write


def test_all_passing_exits_zero_and_writes_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "s/ok.yaml", PASSING)
    junit, html = tmp_path / "reports" / "junit.xml", tmp_path / "reports" / "index.html"
    assert main(["run", str(tmp_path / "s"), "--junit", str(junit), "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert "1 passed, 0 failed, 0 skipped in" in out and "spec validation" in out
    assert ET.parse(junit).getroot().find("testsuite").get("tests") == "1"  # type: ignore[union-attr]
    assert "<svg" in html.read_text(encoding="utf-8")


def test_any_failure_exits_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "ok.yaml", PASSING)
    write(tmp_path, "wrong.yaml", WRONG_EXPECTATION)
    assert main(["run", str(tmp_path)]) == 1
    assert "1 passed, 1 failed" in capsys.readouterr().out


def test_a_broken_file_exits_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "ok.yaml", PASSING)
    write(tmp_path, "bad.yaml", "name: [\n")
    assert main(["run", str(tmp_path)]) == 1
    assert "bad.yaml:" in capsys.readouterr().out


def test_keyword_selection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "ok.yaml", PASSING)
    write(tmp_path, "wrong.yaml", WRONG_EXPECTATION)
    assert main(["run", str(tmp_path), "-k", "harness and not wrong"]) == 0
    assert "1 scenario(s)" in capsys.readouterr().out
    assert main(["run", str(tmp_path), "-k", "nothing_matches"]) == 2
    assert main(["run", str(tmp_path), "-k", "(unclosed"]) == 2
    assert main(["run", str(tmp_path / "missing")]) == 2


def test_keyword_expressions() -> None:
    text = "conflicts/queue_after.yaml queue_after defers seed"
    assert compile_keywords("queue and seed")(text)
    assert compile_keywords("dst or (seed and not cancel)")(text)
    assert not compile_keywords("not seed")(text)
    with pytest.raises(KeywordError):
        compile_keywords("seed and")


def _testcases(junit: Path) -> list[tuple[str, str, bool]]:
    cases = ET.parse(junit).getroot().iter("testcase")
    return [(c.get("classname") or "", c.get("name") or "", c.find("failure") is not None) for c in cases]


def test_jobs_runs_files_in_processes_with_one_merged_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a", "b", "c", "d"):
        write(tmp_path, f"s/{name}_ok.yaml", PASSING)
    write(tmp_path, "s/e_wrong.yaml", WRONG_EXPECTATION)
    write(tmp_path, "s/f_bad.yaml", "name: [\n")
    one, many = tmp_path / "one.xml", tmp_path / "many.xml"
    assert main(["run", str(tmp_path / "s"), "--junit", str(one)]) == 1
    single = capsys.readouterr().out
    assert main(["run", str(tmp_path / "s"), "--jobs", "3", "--junit", str(many), "--html", str(tmp_path / "r.html")]) == 1
    parallel = capsys.readouterr().out
    assert "4 passed, 2 failed, 0 skipped" in single and "4 passed, 2 failed, 0 skipped" in parallel
    assert "3 processes" in parallel and "f_bad.yaml:" in parallel
    # The merged report lists the same scenarios, in the suite's order, with the same verdicts.
    assert _testcases(many) == _testcases(one) and len(_testcases(one)) == 6  # five scenarios, one broken file
    assert "<svg" in (tmp_path / "r.html").read_text(encoding="utf-8")  # timelines came back from the workers
