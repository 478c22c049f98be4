"""The console report: a line per scenario as it finishes, failures explained, one summary line."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from amps_sim.contracts.events import Event, RunFinished, RunStarted, ScenarioFinished
from amps_sim.contracts.results import Failure, RunSummary, ScenarioResult

_COLOURS = {"PASS": "32", "FAIL": "31", "SKIP": "33", "ERROR": "31"}
_LABELS = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}


def _milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:5.0f} ms" if seconds < 10 else f"{seconds:5.1f} s "


class ConsoleReporter:
    def __init__(self, stream: TextIO | None = None, *, colour: bool | None = None, verbose: bool = False) -> None:
        self.stream = stream or sys.stdout
        if colour is None:
            colour = hasattr(self.stream, "isatty") and self.stream.isatty() and "NO_COLOR" not in os.environ
        self.colour = colour
        self.verbose = verbose

    def _paint(self, label: str, text: str | None = None) -> str:
        text = text if text is not None else label
        return f"\033[{_COLOURS[label]}m{text}\033[0m" if self.colour and label in _COLOURS else text

    def _print(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._print(f"amps-sim run: {event.total} scenario(s) against {event.target}")
        elif isinstance(event, ScenarioFinished):
            self._scenario(event.result, event.index, event.total)
        elif isinstance(event, RunFinished):
            self._summary(event.summary)

    def broken_file(self, message: str) -> None:
        self._print(self._paint("ERROR") + "  " + message.replace("\n", "\n       "))

    def _scenario(self, result: ScenarioResult, index: int, total: int) -> None:
        width = len(str(total))
        progress = f"[{index:>{width}}/{total} {index * 100 // max(total, 1):3d}%]"
        label = _LABELS[result.status]
        line = (
            f"{progress} {self._paint(label)}  {_milliseconds(result.duration_s)}  "
            f"{result.loaded.relative}  {result.loaded.scenario.name}"
        )
        if result.status == "skipped":
            line += f"  ({result.skip_reason})"
        self._print(line)
        for failure in result.failures[:8]:
            self._failure(failure)
        if len(result.failures) > 8:
            self._print(f"      … and {len(result.failures) - 8} more failure(s)")

    def _failure(self, failure: Failure) -> None:
        self._print(f"      {self._paint('FAIL', '✗')} {failure.headline()}")
        for detail in failure.details[:10]:
            self._print(f"          {detail}")
        if failure.diff:
            for diff_line in failure.diff.splitlines()[:40]:
                self._print(f"          {diff_line}")

    def _summary(self, summary: RunSummary) -> None:
        passed, failed, skipped = summary.count("passed"), summary.failed, summary.count("skipped")
        share = summary.validation_s / summary.duration_s * 100 if summary.duration_s else 0.0
        counts = f"{passed} passed, {failed} failed, {skipped} skipped"
        if summary.broken_files:
            counts += f" ({len(summary.broken_files)} file(s) could not be loaded)"
        self._print(
            f"{counts} in {summary.duration_s:.2f} s · spec validation {summary.validation_s:.3f} s "
            f"over {summary.responses} responses ({share:.1f}% of the run)"
        )
