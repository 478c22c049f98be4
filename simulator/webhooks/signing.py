"""svix's signature scheme: HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed with the secret.

A secret reads `whsec_<base64>`; the key is the base64-decoded part. A signature header lists one
`v1,<base64 digest>` entry per secret in use, separated by spaces.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import random

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
MIN_KEY_BYTES = 16
MAX_KEY_BYTES = 63


def new_secret(rng: random.Random) -> str:
    return SECRET_PREFIX + base64.b64encode(rng.randbytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key a `whsec_` secret stands for; ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a signing secret starts with '{SECRET_PREFIX}'")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the part after 'whsec_' must be standard base64") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(f"the secret must decode to {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes (got {len(key)})")
    return key


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` entry."""
    signed = msg_id.encode("utf-8") + b"." + str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(keys: list[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(signature(key, msg_id, timestamp, body) for key in keys)
