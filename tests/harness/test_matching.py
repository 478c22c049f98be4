"""Partial matching and matchers."""

from __future__ import annotations

import pytest

from amps_sim.contracts.matching import MISSING, MatcherSyntaxError, check_expected_syntax, lookup, match


def test_partial_objects_and_exact_lists() -> None:
    actual = {"a": 1, "b": {"c": [1, 2], "d": "x"}, "e": None}
    assert match({"b": {"c": [1, 2]}, "e": None}, actual) == []
    assert [str(m) for m in match({"b": {"c": [1]}}, actual)] == ["body.b.c: expected 1 item(s), got 2: [1, 2]"]
    assert [str(m) for m in match({"z": 1}, actual)] == ["body.z: missing; expected 1"]


def test_json_equality_keeps_booleans_apart_from_numbers() -> None:
    assert match(1, 1.0) == []
    assert match(True, 1) != []
    assert match("1", 1) != []


@pytest.mark.parametrize(
    "matcher,good,bad",
    [
        ({"$any": "id"}, "act_AbC123", "act-1"),
        ({"$any": "timestamp"}, "2026-05-08T08:00:00.000Z", "2026-05-08T08:00:00Z"),
        ({"$any": "integer"}, 3, 3.5),
        ({"$regex": "req_[A-Za-z0-9]{8}"}, "req_Ab12Cd34", "req_Ab12Cd345"),
        ({"$range": {"min": 10, "max": 20}}, 15.5, 21),
        ({"$length": 2}, [1, 2], [1]),
        ({"$contains": [{"path": "action"}]}, [{"path": "x"}, {"path": "action", "message": "m"}], [{"path": "x"}]),
        ({"$oneOf": ["acknowledged", "completed"]}, "completed", "failed"),
    ],
)
def test_matchers(matcher: dict, good: object, bad: object) -> None:
    assert match(matcher, good) == []
    assert match(matcher, bad) != []


def test_absent_matcher() -> None:
    assert match({"strategies": {"$absent": True}}, {"ids": []}) == []
    assert match({"strategies": {"$absent": True}}, {"strategies": []}) != []


def test_matcher_syntax_is_checked() -> None:
    for bad in ({"$any": "uuid"}, {"$regex": "("}, {"$range": {"low": 1}}, {"$length": -1}, {"$any": "id", "$regex": "x"}):
        with pytest.raises(MatcherSyntaxError):
            check_expected_syntax({"x": [bad]})


def test_lookup_paths() -> None:
    reply = {"status": 409, "body": {"error": {"details": {"ids": ["a", "b"]}}}, "headers": {"Allow": "GET"}}
    assert lookup(reply, "body.error.details.ids[1]") == "b"
    assert lookup(reply, "headers.allow") == "GET"
    assert lookup(reply, "status") == 409
    assert lookup(reply, "body.error.details.ids[2]") is MISSING
