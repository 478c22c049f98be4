"""Reporters: each turns the runner's events (or its summary) into one kind of report."""

from contracts.reporting.console import ConsoleReporter
from contracts.reporting.html import write_html
from contracts.reporting.junit import write_junit

__all__ = ["ConsoleReporter", "write_html", "write_junit"]
