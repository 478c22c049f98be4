"""Scenario files as pytest items, so `pytest` runs the suite beside the unit tests.

One embedded simulator serves the whole session on its own event loop (created on first use,
closed at the end); each item runs its scenario in a fresh tenant through the same
:class:`~contracts.runner.ScenarioRunner` that `amps-sim run` uses, without timeline reads
(no HTML report here, and they would only add time). A file that does not load becomes a
failing item that shows its line, so one broken file does not stop collection.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable

import aiohttp
import pytest

from amps_sim.contracts.embedded import EmbeddedSimulator
from amps_sim.contracts.loader import LoadedScenario, ScenarioFileError, load_scenario, suite_root
from amps_sim.contracts.results import ScenarioResult
from amps_sim.contracts.runner import ScenarioRunner, Target
from amps_sim.contracts.transport import SpecCheckedClient

# Partner scenario files (`*.amps.yaml`), collected by the amps_sim pytest plugin anywhere in a
# project and run against its `amps_sim` simulator.
PARTNER_SUFFIXES = (".amps.yaml", ".amps.yml")
_SESSION_KEY = pytest.StashKey["ScenarioSession"]()


class ScenarioSession:
    """The session's simulator, client and runner, all on one private event loop.

    `target` gives the base URL of a simulator someone else serves (the amps_sim pytest plugin
    passes its own); without it the session serves an embedded one on first use.
    """

    def __init__(self, target: Callable[[], str] | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.target = target
        self.server = EmbeddedSimulator()
        self.http: aiohttp.ClientSession | None = None
        self.runner: ScenarioRunner | None = None

    async def _start(self) -> None:
        base_url = self.target() if self.target is not None else await self.server.start()
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        client = SpecCheckedClient(self.http, base_url)
        self.runner = ScenarioRunner(client, Target(base_url, label="embedded simulator"), record_timeline=False)

    def run(self, loaded: LoadedScenario) -> ScenarioResult:
        if self.runner is None:
            self.loop.run_until_complete(self._start())
        assert self.runner is not None
        return self.loop.run_until_complete(self.runner.run(loaded))

    async def _stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        if self.target is None:
            await self.server.stop()

    def close(self) -> None:
        if self.runner is not None:
            self.loop.run_until_complete(self._stop())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


def _session(config: pytest.Config) -> ScenarioSession:
    try:
        return config.stash[_SESSION_KEY]
    except KeyError:
        session = ScenarioSession()
        config.stash[_SESSION_KEY] = session
        config.add_cleanup(session.close)
        return session


class ScenarioFailed(Exception):
    def __init__(self, result: ScenarioResult) -> None:
        super().__init__(result.loaded.scenario.name)
        self.result = result


def describe_failure(result: ScenarioResult) -> str:
    """What pytest prints for a failed scenario: each failure, its line, mismatches and diff."""
    loaded = result.loaded
    first = result.failures[0].headline() if result.failures else "failed"
    lines = [first, f"  scenario: {loaded.scenario.name} ({loaded.path})", f"  source: {loaded.scenario.source}"]
    for failure in result.failures:
        lines.append(f"  ✗ {failure.headline()}")
        lines.extend(f"      {detail}" for detail in failure.details)
        if failure.diff:
            lines.extend(f"      {diff_line}" for diff_line in failure.diff.splitlines())
    done = [s for s in result.steps if s.status != "not_run"]
    lines.append(f"  steps run: {len(done)} of {len(result.steps)}")
    return "\n".join(lines)


class ScenarioFile(pytest.File):
    def scenario_session(self) -> ScenarioSession:
        """Where this file's scenarios run (subclasses run them elsewhere)."""
        return _session(self.config)

    def collect(self) -> Any:
        try:
            loaded: LoadedScenario | ScenarioFileError = load_scenario(self.path, suite_root(self.path, self.path.parent))
        except ScenarioFileError as error:
            loaded = error
        yield ScenarioItem.from_parent(self, name=self.path.stem, loaded=loaded)


class ScenarioItem(pytest.Item):
    def __init__(self, *, loaded: LoadedScenario | ScenarioFileError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loaded = loaded
        if isinstance(loaded, LoadedScenario):
            # `pytest -k dst` should find scenarios by tag as `amps-sim run -k` does.
            self.extra_keyword_matches.update(loaded.scenario.tags)

    def runtest(self) -> None:
        if isinstance(self.loaded, ScenarioFileError):
            raise self.loaded
        assert isinstance(self.parent, ScenarioFile)
        result = self.parent.scenario_session().run(self.loaded)
        if result.status == "skipped":
            pytest.skip(result.skip_reason or "skipped")
        if result.status == "failed":
            raise ScenarioFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return describe_failure(excinfo.value.result)
        if isinstance(excinfo.value, ScenarioFileError):
            return f"{excinfo.value}\n(the scenario file is invalid; nothing ran)"
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.loaded.line - 1 if isinstance(self.loaded, ScenarioFileError) else 0
        name = self.loaded.scenario.name if isinstance(self.loaded, LoadedScenario) else self.name
        return self.path, line, f"scenario: {name}"


def collect_scenario_file(parent: pytest.Collector, file_path: Path, suite: Path) -> ScenarioFile | None:
    """The `pytest_collect_file` body: YAML files under the suite folder become scenario items."""
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    if file_path.name.endswith(PARTNER_SUFFIXES):
        return None  # the amps_sim plugin collects these, wherever they are
    try:
        file_path.resolve().relative_to(suite.resolve())
    except ValueError:
        return None
    return ScenarioFile.from_parent(parent, path=file_path)
