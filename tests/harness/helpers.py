"""Small builders the harness tests share: scenario files in a temp folder, and runs of them."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

from aiohttp import web

from amps_sim.contracts.embedded import EmbeddedSimulator
from amps_sim.contracts.loader import load_suite
from amps_sim.contracts.results import RunSummary
from amps_sim.suite import run_scenarios

FOX = "{id: dev_fox, profile: foxess, timeZone: Europe/London, timeZoneKnown: true}"

PASSING = f"""
name: A scheduled charge can be read back
description: Push a scheduled charge and read it.
source: decision (harness test)
tags: [harness]
given:
  devices: [{FOX}]
steps:
  - push: {{device: dev_fox, command: charge, start: 1h}}
    expect: {{status: 202, body: {{state: scheduled}}}}
    save: {{act: body.actionId}}
  - read_action: ${{act}}
    expect: {{body: {{id: "${{act}}", state: scheduled}}}}
"""

WRONG_EXPECTATION = f"""
name: Expects the wrong state
description: The push is scheduled, the scenario claims acknowledged.
source: decision (harness test)
given:
  devices: [{FOX}]
steps:
  - push: {{device: dev_fox, command: charge, start: 1h}}
    expect: {{status: 202, body: {{state: acknowledged}}}}
  - read_device: dev_fox
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dedent(text).lstrip(), encoding="utf-8")
    return path


async def run_folder(folder: Path, *, app: web.Application | None = None, record_timeline: bool = True,
                     api_key: str | None = None) -> RunSummary:
    scenarios, broken = load_suite([folder])
    assert not broken, [str(b) for b in broken]
    async with EmbeddedSimulator(app) as base_url:
        return await run_scenarios(scenarios, base_url=base_url, api_key=api_key, record_timeline=record_timeline)
