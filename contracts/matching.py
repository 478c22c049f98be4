"""Partial matching of JSON values, with matchers, producing readable mismatches.

Expected values are plain JSON where a mapping names only the keys it cares about, a list must
match element by element, and a mapping with a single `$`-key is a matcher:

- `{$any: id}` (or timestamp, string, number, integer, boolean, array, object, value)
- `{$regex: "^act_"}` (the whole string must match)
- `{$range: {min: 10, max: 20}}` (inclusive; either bound may be left out)
- `{$length: 3}` (of a list, string or object)
- `{$contains: [..]}` (each listed value matches some element of the list)
- `{$absent: true}` (the key must not be present)
- `{$oneOf: [a, b]}` (matches if any alternative matches)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

_ANY_PATTERNS = {
    # Ids in this API are a lower-case prefix, an underscore, then letters and digits (act_…, req_…, sk_test_…).
    "id": re.compile(r"^[a-z]+_[A-Za-z0-9_]+$"),
    "timestamp": re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"),
}
ANY_KINDS = ("id", "timestamp", "string", "number", "integer", "boolean", "array", "object", "value")
MATCHERS = ("$any", "$regex", "$range", "$length", "$contains", "$absent", "$oneOf")


class MatcherSyntaxError(ValueError):
    """An expected value uses a matcher wrongly; raised at load time. `parts` locate it in the value."""

    def __init__(self, parts: tuple[Any, ...], message: str) -> None:
        self.parts = parts
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
        super().__init__(f"{where}: {message}" if where else message)


@dataclass(frozen=True)
class Mismatch:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


_MISSING = object()


def is_matcher(value: Any) -> bool:
    return isinstance(value, dict) and len(value) >= 1 and any(isinstance(k, str) and k.startswith("$") for k in value)


def check_expected_syntax(expected: Any, parts: tuple[Any, ...] = ()) -> None:
    """Refuse malformed matchers before anything runs (the loader turns this into a line)."""
    if isinstance(expected, list):
        for index, item in enumerate(expected):
            check_expected_syntax(item, parts + (index,))
        return
    if not isinstance(expected, dict):
        return
    if not is_matcher(expected):
        for key, value in expected.items():
            check_expected_syntax(value, parts + (key,))
        return

    def refuse(message: str) -> MatcherSyntaxError:
        return MatcherSyntaxError(parts, message)

    if len(expected) != 1:
        raise refuse(f"a matcher mapping holds exactly one $-key, got {sorted(expected)}")
    ((name, argument),) = expected.items()
    if name not in MATCHERS:
        raise refuse(f"unknown matcher {name!r}; known: {', '.join(MATCHERS)}")
    if name == "$any" and argument not in ANY_KINDS:
        raise refuse(f"$any takes one of {', '.join(ANY_KINDS)}, not {argument!r}")
    if name == "$regex":
        if not isinstance(argument, str):
            raise refuse("$regex takes a string")
        try:
            re.compile(argument)
        except re.error as exc:
            raise refuse(f"$regex {argument!r} does not compile: {exc}") from None
    if name == "$range":
        if not isinstance(argument, dict) or not argument or set(argument) - {"min", "max"}:
            raise refuse("$range takes {min: N, max: N} (either may be left out)")
        if any(not _is_number(v) for v in argument.values()):
            raise refuse("$range bounds must be numbers")
    if name == "$length" and not (isinstance(argument, int) and not isinstance(argument, bool) and argument >= 0):
        raise refuse("$length takes a non-negative integer")
    if name in ("$contains", "$oneOf"):
        if not isinstance(argument, list) or not argument:
            raise refuse(f"{name} takes a non-empty list")
        check_expected_syntax(argument, parts + (name,))
    if name == "$absent" and argument is not True:
        raise refuse("write $absent: true")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same_scalar(expected: Any, actual: Any) -> bool:
    # JSON equality: true is not 1, and 1 equals 1.0.
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if _is_number(expected) and _is_number(actual):
        return math.isclose(expected, actual, rel_tol=0, abs_tol=1e-9)
    return type(expected) is type(actual) and expected == actual


def show(value: Any) -> str:
    """A compact, JSON-like rendering for messages."""
    if value is _MISSING:
        return "(missing)"
    import json

    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 300 else text[:297] + "..."


def match(expected: Any, actual: Any, path: str = "body") -> list[Mismatch]:
    """Every way `actual` fails `expected` (an empty list: it matches)."""
    return list(_match(expected, actual, path))


def _match(expected: Any, actual: Any, path: str) -> Iterator[Mismatch]:
    if is_matcher(expected):
        yield from _apply(expected, actual, path)
        return
    if actual is _MISSING:
        yield Mismatch(path, f"missing; expected {show(expected)}")
        return
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            yield Mismatch(path, f"expected an object, got {show(actual)}")
            return
        for key, value in expected.items():
            yield from _match(value, actual.get(key, _MISSING), f"{path}.{key}")
        return
    if isinstance(expected, list):
        if not isinstance(actual, list):
            yield Mismatch(path, f"expected a list, got {show(actual)}")
            return
        if len(expected) != len(actual):
            yield Mismatch(path, f"expected {len(expected)} item(s), got {len(actual)}: {show(actual)}")
            return
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            yield from _match(want, got, f"{path}[{index}]")
        return
    if not _same_scalar(expected, actual):
        yield Mismatch(path, f"expected {show(expected)}, got {show(actual)}")


def _apply(matcher: dict[str, Any], actual: Any, path: str) -> Iterator[Mismatch]:
    (name, argument), = matcher.items()
    if name == "$absent":
        if actual is not _MISSING:
            yield Mismatch(path, f"expected no such key, got {show(actual)}")
        return
    if actual is _MISSING:
        yield Mismatch(path, f"missing; expected {show(matcher)}")
        return
    if name == "$any":
        if not _any_of_kind(argument, actual):
            yield Mismatch(path, f"expected any {argument}, got {show(actual)}")
    elif name == "$regex":
        if not isinstance(actual, str) or re.fullmatch(argument, actual) is None:
            yield Mismatch(path, f"expected a string matching /{argument}/, got {show(actual)}")
    elif name == "$range":
        low, high = argument.get("min"), argument.get("max")
        inside = _is_number(actual) and (low is None or actual >= low) and (high is None or actual <= high)
        if not inside:
            bounds = f"[{'' if low is None else low}, {'' if high is None else high}]"
            yield Mismatch(path, f"expected a number in {bounds}, got {show(actual)}")
    elif name == "$length":
        if not isinstance(actual, (list, str, dict)) or len(actual) != argument:
            size = len(actual) if isinstance(actual, (list, str, dict)) else "no length"
            yield Mismatch(path, f"expected length {argument}, got {size}: {show(actual)}")
    elif name == "$contains":
        if not isinstance(actual, list):
            yield Mismatch(path, f"expected a list, got {show(actual)}")
            return
        for want in argument:
            if not any(not match(want, got, path) for got in actual):
                yield Mismatch(path, f"no element matches {show(want)}; got {show(actual)}")
    elif name == "$oneOf":
        if not any(not match(option, actual, path) for option in argument):
            yield Mismatch(path, f"expected one of {show(argument)}, got {show(actual)}")


def _any_of_kind(kind: str, actual: Any) -> bool:
    if kind in _ANY_PATTERNS:
        return isinstance(actual, str) and _ANY_PATTERNS[kind].fullmatch(actual) is not None
    checks: dict[str, Callable[[], bool]] = {
        "string": lambda: isinstance(actual, str),
        "number": lambda: _is_number(actual),
        "integer": lambda: isinstance(actual, int) and not isinstance(actual, bool),
        "boolean": lambda: isinstance(actual, bool),
        "array": lambda: isinstance(actual, list),
        "object": lambda: isinstance(actual, dict),
        "value": lambda: True,
    }
    return checks[kind]()


# ---- reply paths --------------------------------------------------------------------------------

_PATH_PART = re.compile(r"\.([A-Za-z0-9_$-]+)|\[([0-9]+)\]")


def path_parts(path: str) -> list[str | int]:
    """`body.error.details.ids[0]` -> ["body", "error", "details", "ids", 0]."""
    head = re.match(r"[A-Za-z_]+", path)
    if head is None:
        raise ValueError(f"{path!r} is not a reply path")
    parts: list[str | int] = [head.group(0)]
    for m in _PATH_PART.finditer(path, head.end()):
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
    return parts


def lookup(root: dict[str, Any], path: str) -> Any:
    """The value at a reply path, or MISSING. Header names are matched case-insensitively."""
    node: Any = root
    for index, part in enumerate(path_parts(path)):
        if isinstance(part, int):
            if isinstance(node, list) and 0 <= part < len(node):
                node = node[part]
                continue
            return _MISSING
        if isinstance(node, dict):
            if part in node:
                node = node[part]
                continue
            if index == 1 and path.startswith("headers"):
                lowered = {str(k).lower(): v for k, v in node.items()}
                if part.lower() in lowered:
                    node = lowered[part.lower()]
                    continue
        return _MISSING
    return node


MISSING = _MISSING
