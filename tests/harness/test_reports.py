"""Reports: the console lines and summary, JUnit XML, and the self-contained HTML with timelines."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from amps_sim.contracts.reporting.console import ConsoleReporter
from amps_sim.contracts.reporting.html import render_html, write_html
from amps_sim.contracts.reporting.junit import write_junit
from amps_sim.contracts.results import RunSummary
from amps_sim.suite import RunOptions, run_suite
from tests.harness.helpers import PASSING, WRONG_EXPECTATION, write
from tests.harness.png import count_near, read_png

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"


@pytest.fixture
async def mixed(tmp_path: Path) -> RunSummary:
    write(tmp_path, "area/ok.yaml", PASSING)
    write(tmp_path, "area/wrong.yaml", WRONG_EXPECTATION)
    write(tmp_path, "area/broken.yaml", "name: x\n")
    stream = io.StringIO()
    summary = await run_suite(RunOptions(paths=[str(tmp_path)], record_timeline=True), stream=stream)
    summary.console = stream.getvalue()  # type: ignore[attr-defined]
    return summary


async def test_console_prints_a_line_per_scenario_and_a_summary(mixed: RunSummary) -> None:
    text: str = mixed.console  # type: ignore[attr-defined]
    lines = text.splitlines()
    assert lines[0].startswith("ERROR  ") and "broken.yaml:1: description: missing required key" in lines[0]
    assert re.search(r"^\[1/2  50%\] PASS +\d+ ms  area/ok\.yaml  A scheduled charge can be read back$", text, re.M)
    assert re.search(r"^\[2/2 100%\] FAIL .*area/wrong\.yaml", text, re.M)
    assert "✗ step 1 (line 7): POST /battery/dev_fox → 202: body.state" in text
    summary = lines[-1]
    assert re.fullmatch(
        r"1 passed, 2 failed, 0 skipped \(1 file\(s\) could not be loaded\) in [0-9.]+ s · spec validation "
        r"[0-9.]+ s over \d+ responses \(\d+\.\d% of the run\)",
        summary,
    ), summary


async def test_junit_has_one_testcase_per_scenario(mixed: RunSummary, tmp_path: Path) -> None:
    path = write_junit(mixed, tmp_path / "out" / "junit.xml")
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("3", "1", "1", "0")
    cases = suite.findall("testcase")
    assert [c.get("classname") for c in cases] == ["scenarios.area", "scenarios.area", "scenarios.load"]
    failure = cases[1].find("failure")
    assert failure is not None and "step 1 (line 7)" in (failure.get("message") or "")
    assert cases[2].find("error") is not None


async def test_html_is_self_contained_with_a_timeline_per_device(mixed: RunSummary) -> None:
    html = render_html(mixed)
    assert html.startswith("<!DOCTYPE html>")
    # Offline: nothing is fetched (the SVG namespace URI is a name, not a request).
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="timeline"') == 2
    assert "Why it failed" in html and "body.state: expected" in html
    assert "POST /battery/dev_fox" in html and "/_sim/tenants" in html
    assert "sk_test_" in html and not re.search(r"sk_test_[A-Za-z0-9]{20,}\"", html.split("apiKey")[0])


async def test_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install -y chromium): the HTML report was not rendered")
    summary = await run_suite(
        RunOptions(paths=[str(SCENARIOS / "scheduler_active" / "slot_aware_merge_keeps_non_overlapping_rows.yaml")], record_timeline=True),
        stream=io.StringIO(),
    )
    assert summary.ok
    page = write_html(summary, tmp_path / "index.html")
    # Open every scenario so the timeline is on screen.
    page.write_text(page.read_text(encoding="utf-8").replace("<details>", "<details open>"), encoding="utf-8")
    shot = tmp_path / "out.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1280,1100", page.as_uri()],
            check=True, capture_output=True, timeout=120,
        )
    width, height, rows = read_png(shot)
    assert (width, height) == (1280, 1100)
    # The report's pieces are on screen: the dark header, the PASS badge, the platform's rows
    # (amps blue) and the homeowner's rows (green) in the timeline.
    assert count_near(rows, (0x0F, 0x17, 0x2A)) > 50_000
    assert count_near(rows, (0x15, 0x80, 0x3D)) > 200
    assert count_near(rows, _over_lane((0x25, 0x63, 0xEB))) > 1_000
    assert count_near(rows, _over_lane((0x16, 0xA3, 0x4A))) > 1_000


def _over_lane(colour: tuple[int, int, int], opacity: float = 0.85) -> tuple[int, int, int]:
    """A row bar's colour as drawn: at 85 % opacity over the lane's #f8fafc."""
    lane = (0xF8, 0xFA, 0xFC)
    r, g, b = (round(c * opacity + under * (1 - opacity)) for c, under in zip(colour, lane, strict=True))
    return r, g, b


def test_console_reporter_colours_only_a_terminal() -> None:
    stream = io.StringIO()
    assert ConsoleReporter(stream).colour is False
    assert ConsoleReporter(stream, colour=True)._paint("FAIL") == "\033[31mFAIL\033[0m"
