"""What every model of the scenario file shares: closed objects, and the syntax of reply paths.

Every model forbids unknown keys, so a typo is an error at load time rather than a silently
skipped check (the tavern lesson).
"""

from __future__ import annotations

import re
from typing import Callable

from pydantic import BaseModel, ConfigDict

# `body.actionId`, `body.error.details.conflictingActionIds[0]`, `status`, `headers.Allow`.
_REPLY_PATH = re.compile(r"^(status|body|headers)((\.[A-Za-z0-9_$-]+)|(\[[0-9]+\]))*$")
# A native reply is the cloud's envelope itself: `result.groups[0]`, `errno`, `msg`.
_NATIVE_PATH = re.compile(r"^(errno|msg|result)((\.[A-Za-z0-9_$-]+)|(\[[0-9]+\]))*$")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def check_reply_path(path: str) -> str:
    if not _REPLY_PATH.fullmatch(path):
        raise ValueError(
            f"{path!r} is not a reply path: start with status, body or headers, then .key or [index]"
        )
    return path


def check_native_path(path: str) -> str:
    if not _NATIVE_PATH.fullmatch(path):
        raise ValueError(
            f"{path!r} is not a native reply path: start with errno, msg or result, then .key or [index]"
        )
    return path


def check_save(save: dict[str, str] | None, check_path: Callable[[str], str]) -> dict[str, str] | None:
    if save is None:
        return save
    for name, path in save.items():
        if not _VARIABLE_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a variable name (letters, digits, underscore)")
        check_path(path)
    return save
