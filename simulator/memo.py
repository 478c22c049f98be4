"""Bounded memos of pure results: the one rule for how they stay bounded.

The engine remembers results that are pure functions of their key (a checked parameter set, a
window's placement, a row set's physics) in plain dicts, read with `memo.get(key)` on the hot
path. Storing goes through :func:`remember`, so every memo is bounded the same way: when it holds
`limit` entries it starts afresh, which only costs working results out again.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(memo: dict[K, V], key: K, value: V, limit: int) -> V:
    """Store `value` under `key` (emptying `memo` first if it is full) and return it."""
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value
    return value


class Unsaved(dict[K, V]):
    """A memo that a snapshot stores empty: what it holds is worked out again from saved state,
    and (unlike the pure memos, which are small) it would only make snapshots larger."""

    __slots__ = ()

    def __reduce__(self) -> tuple[type[Unsaved[K, V]], tuple[()]]:
        return type(self), ()
