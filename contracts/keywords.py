"""`-k EXPR`: pick scenarios by keywords, as pytest's -k does.

An expression combines words with `and`, `or`, `not` and parentheses; a word matches when it
is a case-insensitive substring of the scenario's path, name or one of its tags.
"""

from __future__ import annotations

import re
from typing import Callable

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


class KeywordError(ValueError):
    pass


def compile_keywords(expression: str) -> Callable[[str], bool]:
    tokens: list[str] = [t for t in _TOKEN.findall(expression) if t]
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        if position >= len(tokens):
            raise KeywordError(f"-k {expression!r}: ends too early")
        position += 1
        return tokens[position - 1]

    def either() -> Callable[[str], bool]:
        parts = [both()]
        while peek() == "or":
            take()
            parts.append(both())
        return lambda text: any(part(text) for part in parts)

    def both() -> Callable[[str], bool]:
        parts = [negation()]
        while peek() == "and":
            take()
            parts.append(negation())
        return lambda text: all(part(text) for part in parts)

    def negation() -> Callable[[str], bool]:
        if peek() == "not":
            take()
            inner = negation()
            return lambda text: not inner(text)
        return atom()

    def atom() -> Callable[[str], bool]:
        token = take()
        if token == "(":
            inner = either()
            if take() != ")":
                raise KeywordError(f"-k {expression!r}: missing ')'")
            return inner
        if token in (")", "and", "or", "not"):
            raise KeywordError(f"-k {expression!r}: unexpected {token!r}")
        word = token.lower()
        return lambda text: word in text.lower()

    if not tokens:
        return lambda text: True
    matcher = either()
    if position != len(tokens):
        raise KeywordError(f"-k {expression!r}: unexpected {tokens[position]!r}")
    return matcher
