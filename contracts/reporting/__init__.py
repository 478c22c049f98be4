"""Reporters: each turns the runner's events (or its summary) into one kind of report."""

from amps_sim.contracts.reporting.console import ConsoleReporter
from amps_sim.contracts.reporting.html import write_html
from amps_sim.contracts.reporting.junit import write_junit

__all__ = ["ConsoleReporter", "write_html", "write_junit"]
