"""The device's own cloud as a scenario reaches it: the FoxESS-style native API under `/foxess`.

Pure knowledge, no I/O: which endpoint each `native` step's call maps to (and in which API
versions it exists), how friendly rows become each version's group shape, how a request is
signed, and what every native reply must look like (HTTP 200 with `{errno, msg, result}`).
The runner does the talking; :mod:`contracts.transport` uses :func:`envelope_violations` in
place of the OpenAPI check for these paths, which neither spec describes.

The signature is the public algorithm the reference clients use: the lower-case hex MD5 of the
path (after the `/foxess` prefix, without the query string), the token and the timestamp,
joined by the four literal characters backslash, r, backslash, n. The harness computes it
itself rather than importing the simulator's, so it also drives a deployment it cannot import.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from amps_sim.contracts.spec import SpecViolation

PREFIX = "/foxess"
SEPARATOR = r"\r\n"  # four characters, on purpose
PARTIES = ("homeowner_app", "third_party")


def is_native_path(path: str) -> bool:
    """Whether a request path (query string allowed) lies under the native API's prefix."""
    bare = path.split("?", 1)[0]
    return bare == PREFIX or bare.startswith(PREFIX + "/")


@dataclass(frozen=True)
class NativeEndpoint:
    """One call a `native` step can make: its endpoint per API version and where the serial goes."""

    method: str
    template: str  # with `{v}` where the version goes
    versions: tuple[int, ...]
    default_version: int
    serial_field: str | None  # the body key (or, for GET, query key) that carries the serial number
    needs_device: bool = True

    def path(self, version: int) -> str:
        return self.template.format(v=version)


CALLS: dict[str, NativeEndpoint] = {
    "scheduler.read": NativeEndpoint("POST", "/op/v{v}/device/scheduler/get", (0, 1, 2, 3), 3, "deviceSN"),
    "scheduler.write": NativeEndpoint("POST", "/op/v{v}/device/scheduler/enable", (0, 1, 2, 3), 3, "deviceSN"),
    "flag.read": NativeEndpoint("POST", "/op/v{v}/device/scheduler/get/flag", (0, 1), 1, "deviceSN"),
    "flag.set": NativeEndpoint("POST", "/op/v{v}/device/scheduler/set/flag", (0, 1), 1, "deviceSN"),
    "setting.read": NativeEndpoint("POST", "/op/v{v}/device/setting/get", (0,), 0, "sn"),
    "setting.set": NativeEndpoint("POST", "/op/v{v}/device/setting/set", (0,), 0, "sn"),
    "device.list": NativeEndpoint("POST", "/op/v{v}/device/list", (0,), 0, None, needs_device=False),
    "device.detail": NativeEndpoint("GET", "/op/v{v}/device/detail", (1,), 1, "sn"),
    "access.count": NativeEndpoint("GET", "/op/v{v}/user/getAccessCount", (0,), 0, None, needs_device=False),
}

# The group parameters each version spells flat (v0, v1) or inside `extraParam` (v2, v3).
FLAT_PARAMS: dict[int, tuple[str, ...]] = {
    0: ("minSocOnGrid", "fdSoc", "fdPwr"),
    1: ("minSocOnGrid", "fdSoc", "fdPwr", "maxSoc"),
}
NESTED_PARAMS = ("minSocOnGrid", "fdSoc", "fdPwr", "maxSoc")
ROW_PARAMS = NESTED_PARAMS


def row_problems(version: int, row: Mapping[str, Any]) -> list[str]:
    """Why a friendly row cannot be said in this version's group shape (empty: it can)."""
    problems = []
    allowed = FLAT_PARAMS.get(version, NESTED_PARAMS)
    for name in ROW_PARAMS:
        if row.get(name) is not None and name not in allowed:
            problems.append(f"v{version} groups have no {name}")
    if row.get("isRemainMode") is not None and version != 3:
        problems.append(f"isRemainMode exists only in v3 groups, not v{version}")
    return problems


def _clock(text: str) -> tuple[int, int]:
    hour, minute = text.split(":")
    return int(hour), int(minute)


def row_to_group(version: int, row: Mapping[str, Any]) -> dict[str, Any]:
    """One friendly row (`start`/`end` as HH:MM plant-local, end inclusive, `workMode`, and any of
    minSocOnGrid, fdSoc, fdPwr, maxSoc, isRemainMode) as the version's native group.

    v0/v1 groups carry `enable: 1` and their parameters flat, as their reads show them; v2/v3
    groups nest the parameters in `extraParam` (left out when the row sets none), as the
    reference client writes them. Check :func:`row_problems` first.
    """
    problems = row_problems(version, row)
    if problems:
        raise ValueError("; ".join(problems))
    (start_hour, start_minute), (end_hour, end_minute) = _clock(row["start"]), _clock(row["end"])
    group: dict[str, Any] = {}
    if version < 2:
        group["enable"] = 1
    group.update(
        {
            "startHour": start_hour,
            "startMinute": start_minute,
            "endHour": end_hour,
            "endMinute": end_minute,
            "workMode": row["workMode"],
        }
    )
    params = {name: row[name] for name in ROW_PARAMS if row.get(name) is not None}
    if version < 2:
        group.update(params)
    else:
        if row.get("isRemainMode") is not None:
            group["isRemainMode"] = row["isRemainMode"]
        if params:
            group["extraParam"] = params
    return group


def rows_to_groups(version: int, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [row_to_group(version, row) for row in rows]


def sign(path: str, token: str, timestamp: str) -> str:
    """The signature of a request to `path` (after the prefix, no query string)."""
    return hashlib.md5(SEPARATOR.join((path, token, timestamp)).encode("utf-8")).hexdigest()


def signed_headers(path: str, token: str, timestamp: str, signature: str | None = None) -> dict[str, str]:
    """The headers of a signed call. `signature` "wrong" sends a well-formed signature of
    something else (the timestamp one millisecond later); "missing" leaves the header out."""
    headers = {"token": token, "timestamp": timestamp, "lang": "en"}
    if signature == "wrong":
        headers["signature"] = sign(path, token, str(int(timestamp) + 1))
    elif signature != "missing":
        headers["signature"] = sign(path, token, timestamp)
    return headers


def envelope_violations(status: int, raw: bytes | dict[str, Any] | list[Any], content_type: str | None) -> list[SpecViolation]:
    """How a native reply departs from the cloud's envelope: HTTP 200, JSON, an object with an
    integer `errno`, a string `msg` and a `result` key (whose value each call decides). `raw`
    may come already decoded (an object or array), so a reply is parsed once."""
    if status != 200:
        return [SpecViolation("", "native-status", f"the native API answers every call with HTTP 200, got {status}")]
    if not content_type or "json" not in content_type.lower():
        return [SpecViolation("", "content-type", f"expected a JSON reply, got {content_type or 'no Content-Type'}")]
    if isinstance(raw, (dict, list)):
        body: Any = raw
    else:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return [SpecViolation("", "json", f"the reply is not JSON: {exc}")]
    if not isinstance(body, dict):
        return [SpecViolation("", "type", "expected the {errno, msg, result} object")]
    found = []
    for name in ("errno", "msg", "result"):
        if name not in body:
            found.append(SpecViolation("", "required", f"the envelope has no {name!r}"))
    errno = body.get("errno")
    if "errno" in body and (isinstance(errno, bool) or not isinstance(errno, int)):
        found.append(SpecViolation("/errno", "type", f"errno must be an integer, got {json.dumps(errno)}"))
    if "msg" in body and not isinstance(body["msg"], str):
        found.append(SpecViolation("/msg", "type", f"msg must be a string, got {json.dumps(body['msg'])}"))
    return found
