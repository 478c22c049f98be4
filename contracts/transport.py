"""Sending a scenario's requests and checking every reply against the OpenAPI documents.

Each request becomes an :class:`~contracts.exchange.Exchange`: what was sent, what came back,
and the spec violations of the reply. Public paths are checked against `openapi.yaml`, `/_sim/...` paths
against the control spec, both through :mod:`contracts.spec`, the one place that knows how.
Paths under `/foxess` (the device's own cloud) are the one exception: see
:meth:`SpecCheckedClient.check`. The time spent validating is measured per exchange so the run
can report what checking costs.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp

from amps_sim.contracts.exchange import Exchange, Purpose
from amps_sim.contracts.native import envelope_violations, is_native_path
from amps_sim.contracts.spec import ResponseValidator, SpecViolation, load_control, load_public

_KEPT_HEADERS = ("content-type", "allow", "content-length")
# Credentials are shown only by their shape: the tenant key, and the native API's token.
_SECRET_HEADERS = ("x-api-key", "token")


def _redact(key: str | None) -> str | None:
    # Reports are shared; a tenant key is enough to drive that tenant, so show only its shape.
    if key is None or len(key) <= 12:
        return key
    return key[:8] + "…" + key[-3:]


class SpecCheckedClient:
    """An HTTP client bound to one base URL whose every reply is validated against the spec."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        public: ResponseValidator | None = None,
        control: ResponseValidator | None = None,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.public = public or load_public()
        self.control = control or load_control()

    def validator_for(self, path: str) -> ResponseValidator:
        return self.control if path.startswith("/_sim/") or path == "/_sim" else self.public

    def check(
        self, method: str, path: str, status: int, raw: bytes | dict[str, Any] | list[Any], content_type: str | None
    ) -> list[SpecViolation]:
        """The violations of one reply.

        Spec validation is skipped for `/foxess` paths, and only for them: the native cloud API
        mounted there is the OEM's, not Amps', and neither `openapi.yaml` nor the control spec
        describes it (the control spec says so). Checking it against either would report every
        native call as `operation-undocumented`. Its replies are held instead to the envelope the
        cloud always answers with (HTTP 200, `{errno: int, msg: str, result}`), which is all that
        is common to its calls; what `result` holds is each scenario's business.
        """
        if is_native_path(path):
            return envelope_violations(status, raw, content_type)
        return self.validator_for(path).validate(method, path, status, raw, content_type)

    async def send(
        self,
        method: str,
        path: str,
        *,
        key: str | None,
        purpose: Purpose,
        json_body: Any = None,
        raw: str | None = None,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Exchange:
        sent_headers = dict(headers or {})
        if key is not None:
            sent_headers["x-api-key"] = key
        data: bytes | None = None
        shown_body: Any = None
        if json_body is not None:
            data = json.dumps(json_body).encode("utf-8")
            sent_headers.setdefault("Content-Type", "application/json")
            shown_body = json_body
        elif raw is not None:
            data = raw.encode("utf-8")
            # Reports keep a readable head of a huge body, not megabytes of padding.
            shown_body = raw if len(raw) <= 4096 else f"{raw[:200]}… ({len(data)} bytes in all)"
        full_path = path + ("?" + urlencode({k: str(v) for k, v in query.items()}) if query else "")
        exchange = Exchange(
            purpose=purpose,
            method=method,
            path=full_path,
            request_headers={k: (_redact(v) if k.lower() in _SECRET_HEADERS else v) or "" for k, v in sent_headers.items()},
            request_body=shown_body,
        )
        started = time.perf_counter()
        # aiohttp wants big bodies as a stream (raw bytes over 1 MiB would block its loop and warn).
        payload: bytes | io.BytesIO | None = io.BytesIO(data) if data is not None and len(data) > 65536 else data
        try:
            async with self.session.request(method, self.base_url + full_path, data=payload, headers=sent_headers) as reply:
                raw_reply = await reply.read()
                exchange.status = reply.status
                exchange.content_type = reply.headers.get("Content-Type")
                exchange.response_headers = {
                    name: reply.headers[name] for name in reply.headers if name.lower() in _KEPT_HEADERS
                }
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            exchange.elapsed_s = time.perf_counter() - started
            exchange.error = f"{type(exc).__name__}: {exc}"
            return exchange
        exchange.elapsed_s = time.perf_counter() - started
        exchange.body = _decode(raw_reply, exchange.content_type)
        checked = time.perf_counter()
        # Each reply is decoded once: an object or array goes to the validator as parsed; anything
        # else (a scalar, text, a body that is not JSON) as the bytes, for it to judge.
        decoded = exchange.body if isinstance(exchange.body, (dict, list)) else raw_reply
        exchange.violations = self.check(method, path, exchange.status, decoded, exchange.content_type)
        exchange.validation_s = time.perf_counter() - checked
        return exchange


def _decode(raw: bytes, content_type: str | None) -> Any:
    if not raw:
        return None
    if content_type and "json" in content_type.lower():
        try:
            return json.loads(raw)
        except ValueError:
            pass
    return raw.decode("utf-8", errors="replace")
