"""Action records: what the platform tracks for each push, and how a record reads on the wire."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from .clock import EventHandle
from .errors import format_instant

ActionState = Literal["scheduled", "acknowledged", "completed", "failed", "cancelled"]
Execution = Literal["immediate", "scheduled", "windowed"]
ACTION_TYPE = "battery:set_operation_mode"
NON_TERMINAL: frozenset[str] = frozenset({"scheduled", "acknowledged"})
ACTION_STATES: tuple[str, ...] = ("scheduled", "acknowledged", "completed", "failed", "cancelled")


def _ts(moment: datetime | None) -> str | None:
    return format_instant(moment) if moment is not None else None


@dataclass
class Action:
    id: str
    device_id: str
    command: str
    parameters: dict[str, Any]
    execution: Execution
    created_at: datetime
    state: ActionState
    on_conflict: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    start_wall: datetime | None = None
    end_wall: datetime | None = None
    updated_at: datetime | None = None
    acknowledged_at: datetime | None = None
    completed_at: datetime | None = None
    result: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 0
    cleanup_scheduled: bool = False
    pending: list[EventHandle] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.state not in NON_TERMINAL

    def touch(self, now: datetime) -> None:
        self.updated_at = now

    def drop_pending(self) -> None:
        for handle in self.pending:
            handle.cancel()
        self.pending.clear()

    def record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "deviceId": self.device_id,
            "type": ACTION_TYPE,
            "state": self.state,
            "parameters": self.parameters,
            "result": self.result,
            "errorCode": self.error_code,
            "errorMessage": self.error_message,
            "createdAt": _ts(self.created_at),
            "updatedAt": _ts(self.updated_at or self.created_at),
            "acknowledgedAt": _ts(self.acknowledged_at),
            "completedAt": _ts(self.completed_at),
            "start": _ts(self.start),
            "end": _ts(self.end),
        }

    def accepted(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "actionId": self.id,
            "state": self.state,
            "type": ACTION_TYPE,
            "createdAt": _ts(self.created_at),
        }
        if self.start is not None:
            body["start"] = _ts(self.start)
        if self.end is not None:
            body["end"] = _ts(self.end)
        return body

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": ACTION_TYPE,
            "state": self.state,
            "command": self.command,
            "createdAt": _ts(self.created_at),
            "updatedAt": _ts(self.updated_at or self.created_at),
        }
