"""One request and its reply, as the runner records it and the reports show it: plain data.

:mod:`contracts.transport` makes these; results, timelines and reporters only read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from amps_sim.contracts.native import is_native_path
from amps_sim.contracts.spec import SpecViolation

# Why a request was made: a scenario's step, the runner's setup, or a timeline read.
Purpose = Literal["setup", "step", "record"]


@dataclass
class Exchange:
    """One request and its reply, as the reports show it."""

    purpose: Purpose
    method: str
    path: str  # with the query string, as sent
    request_headers: dict[str, str]
    request_body: Any  # parsed JSON, raw text, or None
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # parsed JSON when the reply is JSON, else text (None when empty)
    content_type: str | None = None
    violations: list[SpecViolation] = field(default_factory=list)
    validation_s: float = 0.0
    elapsed_s: float = 0.0
    error: str | None = None  # the transport failed (no reply at all)

    @property
    def bare_path(self) -> str:
        return self.path.split("?", 1)[0]

    @property
    def native(self) -> bool:
        """A call to the device's own cloud (`/foxess/...`), held to its envelope, not to a spec."""
        return is_native_path(self.path)

    def reply_view(self) -> dict[str, Any]:
        """What expectations and `save` paths read: status, body, headers."""
        return {"status": self.status, "body": self.body, "headers": dict(self.response_headers)}
