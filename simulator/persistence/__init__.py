"""Durable state for `amps-sim serve --state-dir`: the SQLite journal and the snapshot codec."""
