"""Reporters: each turns the runner's events (or its summary) into one kind of report.

:mod:`.console` listens to events; :mod:`.junit` and :mod:`.html` render the run's results.
"""
