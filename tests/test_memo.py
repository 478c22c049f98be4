"""The engine's memos stay bounded by one rule (`simulator.memo.remember`)."""

from __future__ import annotations

from amps_sim.simulator.memo import remember


def test_a_memo_starts_afresh_when_it_is_full() -> None:
    memo: dict[int, str] = {}
    for n in range(3):
        assert remember(memo, n, str(n), 3) == str(n)
    assert memo == {0: "0", 1: "1", 2: "2"}
    assert remember(memo, 9, "9", 3) == "9"
    assert memo == {9: "9"}


def test_a_memo_below_its_limit_keeps_what_it_holds() -> None:
    memo = {1: "one"}
    remember(memo, 2, "two", 3)
    assert memo == {1: "one", 2: "two"}
