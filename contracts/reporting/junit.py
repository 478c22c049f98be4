"""JUnit XML: one testcase per scenario, so CI systems show the suite like any other."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from amps_sim.contracts.results import RunSummary, ScenarioResult


def _case(result: ScenarioResult) -> ET.Element:
    loaded = result.loaded
    case = ET.Element(
        "testcase",
        {
            "classname": "scenarios." + (loaded.area or "root"),
            "name": f"{Path(loaded.relative).stem}: {loaded.scenario.name}",
            "file": str(loaded.path),
            "time": f"{result.duration_s:.3f}",
        },
    )
    if result.status == "skipped":
        ET.SubElement(case, "skipped", {"message": result.skip_reason or "skipped"})
    elif result.status == "failed":
        first = result.failures[0]
        failure = ET.SubElement(case, "failure", {"message": first.headline(), "type": first.kind})
        lines = []
        for item in result.failures:
            lines.append(item.headline())
            lines.extend("    " + d for d in item.details)
            if item.diff:
                lines.extend("    " + d for d in item.diff.splitlines())
        failure.text = "\n".join(lines)
    steps = [f"{'✓' if s.status == 'passed' else '✗' if s.status == 'failed' else '·'} {s.label}" for s in result.steps]
    ET.SubElement(case, "system-out").text = f"source: {loaded.scenario.source}\n" + "\n".join(steps)
    return case


def junit_tree(summary: RunSummary) -> ET.ElementTree:
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        {
            "name": "amps-sim scenarios",
            "tests": str(len(summary.results) + len(summary.broken_files)),
            "failures": str(summary.count("failed")),
            "errors": str(len(summary.broken_files)),
            "skipped": str(summary.count("skipped")),
            "time": f"{summary.duration_s:.3f}",
        },
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", {"name": "target", "value": summary.target})
    ET.SubElement(properties, "property", {"name": "spec_validation_seconds", "value": f"{summary.validation_s:.3f}"})
    ET.SubElement(properties, "property", {"name": "responses_validated", "value": str(summary.responses)})
    for result in summary.results:
        suite.append(_case(result))
    for message in summary.broken_files:
        case = ET.SubElement(suite, "testcase", {"classname": "scenarios.load", "name": message.split(":", 1)[0], "time": "0"})
        ET.SubElement(case, "error", {"message": message.splitlines()[0], "type": "ScenarioFileError"}).text = message
    ET.indent(suites)
    return ET.ElementTree(suites)


def write_junit(summary: RunSummary, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_tree(summary).write(path, encoding="utf-8", xml_declaration=True)
    return path
