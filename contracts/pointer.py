"""JSON Pointers (RFC 6901): the one place that spells, reads and follows them.

Used wherever an OpenAPI document is walked (the response validator, the spec tests) and
wherever a reply body is addressed by a pointer (OpenAPI links' `$response.body#/...`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def pointer_to(parts: Iterable[Any]) -> str:
    """The pointer of a path of keys and indexes ("" for the whole document)."""
    return "".join("/" + escape(str(part)) for part in parts)


def resolve(document: Any, pointer: str) -> Any:
    """The value `pointer` names in `document`; KeyError, IndexError or ValueError when it names
    nothing. A list takes a decimal index."""
    node = document
    for token in pointer.split("/")[1:] if pointer else ():
        token = unescape(token)
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def follow_refs(document: Mapping[str, Any], node: Any, pointer: str) -> tuple[Any, str]:
    """Follow local `$ref`s from `node` (found at `pointer`) to the object they end at, and its
    pointer. A remote or circular reference is a ValueError."""
    seen: set[str] = set()
    while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if not ref.startswith("#/") or ref in seen:
            raise ValueError(f"cannot follow $ref {ref!r}")
        seen.add(ref)
        pointer = ref[1:]
        node = resolve(document, pointer)
    return node, pointer
