"""The request signature of the FoxESS Open API.

A signed request carries `token`, `timestamp` (epoch milliseconds) and `signature`, the
lower-case hex MD5 of the path, the token and the timestamp joined by the four literal
characters backslash, r, backslash, n. Those are not a carriage return and a line feed: the
reference clients build the string from a raw literal, and the cloud checks exactly that.
"""

from __future__ import annotations

import hashlib
import hmac

SEPARATOR = r"\r\n"  # four characters, on purpose


def sign(path: str, token: str, timestamp: str) -> str:
    """The signature for `path` (no host, no query string) as the cloud expects it."""
    text = SEPARATOR.join((path, token, timestamp))
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def signature_matches(path: str, token: str, timestamp: str, signature: str) -> bool:
    """Whether `signature` is the exact lower-case signature; compared in constant time."""
    return hmac.compare_digest(sign(path, token, timestamp).encode("ascii"), signature.encode("utf-8", "replace"))
