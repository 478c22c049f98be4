"""`amps-sim run`: load the suites, pick the target, run, and write the reports.

The embedded target is the simulator app served in-process on 127.0.0.1 and a free port; with
`--target URL` the same runner drives any deployment, and scenarios that need the `/_sim`
control API are skipped (with the reason) when the target does not serve it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import aiohttp
from aiohttp import web

from amps_sim.contracts.embedded import EmbeddedSimulator
from amps_sim.contracts.events import Event, Listener, RunFinished, RunStarted, ScenarioFinished
from amps_sim.contracts.keywords import KeywordError, compile_keywords
from amps_sim.contracts.loader import LoadedScenario, load_suite
from amps_sim.contracts.reporting.console import ConsoleReporter
from amps_sim.contracts.reporting.html import write_html
from amps_sim.contracts.reporting.junit import write_junit
from amps_sim.contracts.results import RunSummary, ScenarioResult
from amps_sim.contracts.runner import ScenarioRunner, Target, probe_control
from amps_sim.contracts.spec import load_control, load_public
from amps_sim.contracts.transport import SpecCheckedClient

DEFAULT_PATHS = ("scenarios",)


@dataclass
class RunOptions:
    paths: list[str] = field(default_factory=lambda: list(DEFAULT_PATHS))
    keyword: str | None = None
    junit: Path | None = None
    html: Path | None = None
    target: str | None = None
    api_key: str | None = None
    # The timeline reads cost a few requests per step; they are only needed for the HTML report.
    record_timeline: bool | None = None
    # Scenario files run in this many worker processes (each with its own embedded simulator),
    # merged into one report; 1 runs everything in this process.
    jobs: int = 1


def select(scenarios: list[LoadedScenario], keyword: str | None) -> list[LoadedScenario]:
    if not keyword:
        return scenarios
    wanted = compile_keywords(keyword)
    return [s for s in scenarios if wanted(s.keywords)]


async def run_scenarios(
    scenarios: list[LoadedScenario],
    *,
    base_url: str,
    api_key: str | None = None,
    label: str = "",
    reporter: Listener | None = None,
    record_timeline: bool = True,
    broken_files: list[str] | None = None,
) -> RunSummary:
    """Run scenarios against a base URL (probing it for the control API first)."""
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        client = SpecCheckedClient(session, base_url)
        has_control = await probe_control(client)
        target = Target(base_url, has_control=has_control, api_key=api_key, label=label or base_url)
        runner = ScenarioRunner(client, target, listeners=[reporter] if reporter else [], record_timeline=record_timeline)
        return await runner.run_all(scenarios, broken_files)


def _load(options: RunOptions, reporter: ConsoleReporter) -> tuple[list[LoadedScenario], list[str]]:
    scenarios, broken = load_suite(options.paths)
    for error in broken:
        reporter.broken_file(str(error))
    return select(scenarios, options.keyword), [str(e) for e in broken]


def _record(options: RunOptions) -> bool:
    return options.record_timeline if options.record_timeline is not None else options.html is not None


def _write_reports(options: RunOptions, summary: RunSummary, reporter: ConsoleReporter) -> None:
    if options.junit:
        print(f"JUnit XML: {write_junit(summary, options.junit)}", file=reporter.stream)
    if options.html:
        print(f"HTML report: {write_html(summary, options.html)}", file=reporter.stream)


class RunInterrupted(Exception):
    """Ctrl-C during a run: the summary of the scenarios that finished (already reported)."""

    def __init__(self, summary: RunSummary) -> None:
        super().__init__("interrupted")
        self.summary = summary


def _interrupted(options: RunOptions, finished: list[ScenarioResult], total: int, started: float, broken_text: list[str],
                 reporter: ConsoleReporter) -> RunInterrupted:
    """Ctrl-C: say so, report what finished (summary and report files), and stop with that."""
    summary = RunSummary(finished, time.perf_counter() - started, options.target or "the embedded simulator", broken_text)
    print(f"\ninterrupted after {len(finished)} of {total} scenario(s)", file=reporter.stream)
    reporter(RunFinished(summary))
    _write_reports(options, summary, reporter)
    return RunInterrupted(summary)


async def run_suite(options: RunOptions, *, app: web.Application | None = None, stream: TextIO | None = None) -> RunSummary:
    reporter = ConsoleReporter(stream)
    scenarios, broken_text = _load(options, reporter)
    finished: list[ScenarioResult] = []

    def listen(event: Event) -> None:
        reporter(event)
        if isinstance(event, ScenarioFinished):
            finished.append(event.result)

    started = time.perf_counter()
    try:
        summary = await _run_loaded(options, scenarios, broken_text, reporter=listen, app=app)
    except asyncio.CancelledError:  # Ctrl-C: asyncio.run cancels this task
        raise _interrupted(options, finished, len(scenarios), started, broken_text, reporter) from None
    _write_reports(options, summary, reporter)
    return summary


async def _run_loaded(
    options: RunOptions,
    scenarios: list[LoadedScenario],
    broken_text: list[str],
    *,
    reporter: Listener | None,
    app: web.Application | None = None,
) -> RunSummary:
    record = _record(options)
    if options.target:
        summary = await run_scenarios(
            scenarios, base_url=options.target, api_key=options.api_key, reporter=reporter,
            record_timeline=record, broken_files=broken_text,
        )
    else:
        async with EmbeddedSimulator(app) as base_url:
            summary = await run_scenarios(
                scenarios, base_url=base_url, label=f"the embedded simulator ({base_url})", reporter=reporter,
                record_timeline=record, broken_files=broken_text,
            )
    return summary


def _run_group(options: RunOptions, scenarios: list[LoadedScenario]) -> list[ScenarioResult]:
    """A worker process's share: its scenarios against its own embedded simulator (or the target)."""
    summary: RunSummary = asyncio.run(_run_loaded(options, scenarios, [], reporter=None))
    results: list[ScenarioResult] = summary.results
    return results


def _chunks(scenarios: list[LoadedScenario], count: int) -> list[list[LoadedScenario]]:
    """Runs of whole files, in suite order, about `count` of them with about as many scenarios
    each: a few per worker, so one slow file does not leave the others idle at the end."""
    files: dict[Path, list[LoadedScenario]] = {}
    for loaded in scenarios:
        files.setdefault(loaded.path, []).append(loaded)
    size = max(1, -(-len(scenarios) // max(count, 1)))
    chunks: list[list[LoadedScenario]] = [[]]
    for group in files.values():
        if chunks[-1] and len(chunks[-1]) + len(group) > size:
            chunks.append([])
        chunks[-1].extend(group)
    return [chunk for chunk in chunks if chunk]


def run_suite_parallel(options: RunOptions, *, stream: TextIO | None = None) -> RunSummary:
    """Scenario files spread over `options.jobs` processes, reported as one run.

    Runs of whole files are the units of work (a file's scenarios stay together and in order); the
    console shows each unit's scenarios as it finishes, and the merged results keep the suite's own order, so
    the JUnit and HTML reports read exactly as a one-process run's would.
    """
    reporter = ConsoleReporter(stream)
    scenarios, broken_text = _load(options, reporter)
    work = _chunks(scenarios, options.jobs * 4)
    target = options.target or f"the embedded simulator ({options.jobs} processes, one each)"
    total = len(scenarios)
    started = time.perf_counter()
    reporter(RunStarted(total=total, target=target))
    finished: dict[int, list[ScenarioResult]] = {}
    shown = 0
    # Workers are forked where the platform can: they start with everything imported and both
    # specs' validators compiled here once, instead of each compiling its own.
    load_public(), load_control()
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    pool = ProcessPoolExecutor(max_workers=options.jobs, mp_context=context)
    try:
        pending = {pool.submit(_run_group, options, group): number for number, group in enumerate(work)}
        for future in as_completed(pending):
            results = future.result()
            finished[pending[future]] = results
            for result in results:
                shown += 1
                reporter(ScenarioFinished(result, shown, total))
    except KeyboardInterrupt:  # Ctrl-C: the workers got it too; report the units that finished
        pool.shutdown(wait=False, cancel_futures=True)
        done = [result for number in sorted(finished) for result in finished[number]]
        raise _interrupted(options, done, total, started, broken_text, reporter) from None
    pool.shutdown()
    merged = [result for number in range(len(work)) for result in finished[number]]
    summary = RunSummary(merged, time.perf_counter() - started, target, broken_text)
    reporter(RunFinished(summary))
    _write_reports(options, summary, reporter)
    return summary


def main(options: RunOptions) -> int:
    """The exit code of a run: 0 when everything passed, 1 on any failure, 2 on a usage error."""
    try:
        if options.keyword:
            compile_keywords(options.keyword)
        if options.jobs > 1:
            summary = run_suite_parallel(options)
        else:
            summary = asyncio.run(run_suite(options))
    except (KeywordError, FileNotFoundError) as exc:
        print(f"amps-sim run: {exc}", file=sys.stderr)
        return 2
    except RunInterrupted:
        return 130
    if not summary.results and not summary.broken_files:
        print("amps-sim run: no scenario selected", file=sys.stderr)
        return 2
    return 0 if summary.ok else 1
