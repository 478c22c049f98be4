"""A Python client for the simulator's `/_sim` control API, synchronous and asynchronous.

    from amps_sim import SimClient
    sim = SimClient("http://127.0.0.1:8080")
    tenant = sim.create_tenant({"devices": [{"id": "dev_1", "profile": "foxess"}]})
    tenant.advance("90m")            # AdvanceResult(now=datetime(...), events_processed=...)
    tenant.device("dev_1")["scheduler"]

`AsyncSimClient` has the same methods as coroutines. Every refusal raises :class:`AmpsSimError`
carrying the envelope's `code`, `message` and `details`; a server that does not answer raises
:class:`AmpsSimUnreachable`. Each operation is described once (`_Call`) and sent by either
transport: the standard library's urllib for the synchronous client (no event loop, so it works
inside any test), aiohttp for the asynchronous one.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Generic, Mapping, Sequence, TypeVar

T = TypeVar("T")
DEFAULT_TIMEOUT = 30.0


class AmpsSimError(Exception):
    """A refusal from the simulator, with its error envelope's code, message and details."""

    def __init__(self, status: int, code: str, message: str, details: Mapping[str, Any] | None = None,
                 *, method: str = "", path: str = "", body: Any = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.method = method
        self.path = path
        self.body = body
        super().__init__(f"{method} {path} -> {status} {code}: {message}".strip())


class AmpsSimUnreachable(AmpsSimError):
    """No HTTP answer at all: nothing listens at the URL, or the connection failed."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(0, "UNREACHABLE", f"cannot reach {url}: {reason}")
        self.url = url


@dataclass(frozen=True)
class Health:
    status: str
    version: str


@dataclass(frozen=True)
class ClockView:
    now: datetime
    mode: str


@dataclass(frozen=True)
class AdvanceResult:
    now: datetime
    events_processed: int


@dataclass(frozen=True)
class FaultsView:
    device_id: str
    faults: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class WebhookEndpoint:
    """A registered webhook endpoint (`POST /_sim/webhooks`): where deliveries go and the secret they are signed with."""

    id: str
    url: str
    events: list[str]
    secret: str
    created_at: datetime


@dataclass(frozen=True)
class WebhookSettings:
    delivery_latency_seconds: float
    attempt_timeout_seconds: float
    rotation_overlap_seconds: float


def parse_instant(text: str) -> datetime:
    """An aware datetime from the API's RFC 3339 text (`...Z` or an offset)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))


def format_instant(moment: datetime | str) -> str:
    if isinstance(moment, str):
        return moment
    if moment.tzinfo is None or moment.utcoffset() is None:
        # A naive value is UTC, as the plugin's frozen clock gives them (datetime.now() without a zone).
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def span(by: str | timedelta) -> str | None:
    """A timedelta as the control API's duration (`1d2h3m4.5s`); None when it cannot be written
    as one (negative, finer than a hundredth of a second, or too many days)."""
    if isinstance(by, str):
        return by
    hundredths, rest = divmod(by // timedelta(microseconds=1), 10_000)
    if by <= timedelta(0) or rest:
        return None
    seconds, frac = divmod(hundredths, 100)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days > 99_999:
        return None
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    if seconds or frac:
        parts.append(f"{seconds}.{frac:02d}s" if frac else f"{seconds}s")
    return "".join(parts)


@dataclass(frozen=True)
class _Call(Generic[T]):
    """One request and how to read its successful reply."""

    method: str
    path: str
    parse: Callable[[Any], T]
    body: Any = None
    send_key: bool = True


def _none(_: Any) -> None:
    return None


def _clock(body: Any) -> ClockView:
    return ClockView(parse_instant(body["now"]), body["mode"])


def _advanced(body: Any) -> AdvanceResult:
    return AdvanceResult(parse_instant(body["now"]), int(body["eventsProcessed"]))


def _endpoint(body: Any) -> WebhookEndpoint:
    return WebhookEndpoint(str(body["id"]), str(body["url"]), list(body["events"]), str(body["secret"]),
                           parse_instant(body["createdAt"]))


def _webhook_settings(body: Any) -> WebhookSettings:
    return WebhookSettings(float(body["deliveryLatencySeconds"]), float(body["attemptTimeoutSeconds"]),
                           float(body["rotationOverlapSeconds"]))


def _settings_body(delivery_latency: float | None, attempt_timeout: float | None, rotation_overlap: float | None) -> dict[str, float]:
    given = {"deliveryLatencySeconds": delivery_latency, "attemptTimeoutSeconds": attempt_timeout,
             "rotationOverlapSeconds": rotation_overlap}
    return {name: value for name, value in given.items() if value is not None}


def _path_part(value: str) -> str:
    return urllib.parse.quote(value, safe="")


class _Operations:
    """Every control-API operation as a `_Call`; the clients only send them."""

    @staticmethod
    def health() -> _Call[Health]:
        return _Call("GET", "/_sim/health", lambda b: Health(b["status"], b["version"]), send_key=False)

    @staticmethod
    def create_tenant(spec: Mapping[str, Any] | None) -> _Call[str]:
        return _Call("POST", "/_sim/tenants", lambda b: str(b["apiKey"]), body=dict(spec or {}))

    @staticmethod
    def delete_tenant() -> _Call[None]:
        return _Call("DELETE", "/_sim/tenant", _none)

    @staticmethod
    def clock() -> _Call[ClockView]:
        return _Call("GET", "/_sim/clock", _clock)

    @staticmethod
    def advance(by: str) -> _Call[AdvanceResult]:
        return _Call("POST", "/_sim/clock/advance", _advanced, body={"by": by})

    @staticmethod
    def advance_to(instant: datetime | str) -> _Call[AdvanceResult]:
        return _Call("POST", "/_sim/clock/advance", _advanced, body={"to": format_instant(instant)})

    @staticmethod
    def reset() -> _Call[ClockView]:
        return _Call("POST", "/_sim/reset", _clock)

    @staticmethod
    def devices() -> _Call[list[dict[str, Any]]]:
        return _Call("GET", "/_sim/devices", lambda b: list(b["devices"]))

    @staticmethod
    def device(device_id: str) -> _Call[dict[str, Any]]:
        return _Call("GET", f"/_sim/devices/{_path_part(device_id)}", dict)

    @staticmethod
    def add_device(spec: Mapping[str, Any]) -> _Call[dict[str, Any]]:
        return _Call("POST", "/_sim/devices", dict, body=dict(spec))

    @staticmethod
    def remove_device(device_id: str) -> _Call[None]:
        return _Call("DELETE", f"/_sim/devices/{_path_part(device_id)}", _none)

    @staticmethod
    def set_scheduler(device_id: str, groups: Sequence[Mapping[str, Any]], enabled: bool | None,
                      owner: str | None) -> _Call[dict[str, Any]]:
        body: dict[str, Any] = {"groups": [dict(g) for g in groups]}
        if enabled is not None:
            body["enabled"] = enabled
        if owner is not None:
            body["owner"] = owner
        return _Call("PUT", f"/_sim/devices/{_path_part(device_id)}/scheduler", dict, body=body)

    @staticmethod
    def inject_fault(device_id: str, kind: str, times: int) -> _Call[FaultsView]:
        return _Call("POST", f"/_sim/devices/{_path_part(device_id)}/faults",
                     lambda b: FaultsView(b["deviceId"], list(b["faults"])), body={"kind": kind, "times": times})

    @staticmethod
    def native_key(party: str, devices: Sequence[str]) -> _Call[str]:
        return _Call("POST", "/_sim/oem-keys", lambda b: str(b["apiKey"]), body={"party": party, "devices": list(devices)})

    @staticmethod
    def register_webhook(url: str, events: Sequence[str] | None, secret: str | None) -> _Call[WebhookEndpoint]:
        body: dict[str, Any] = {"url": url}
        if events is not None:
            body["events"] = list(events)
        if secret is not None:
            body["secret"] = secret
        return _Call("POST", "/_sim/webhooks", _endpoint, body=body)

    @staticmethod
    def webhooks() -> _Call[list[WebhookEndpoint]]:
        return _Call("GET", "/_sim/webhooks", lambda b: [_endpoint(e) for e in b["webhooks"]])

    @staticmethod
    def delete_webhook(endpoint_id: str) -> _Call[None]:
        return _Call("DELETE", f"/_sim/webhooks/{_path_part(endpoint_id)}", _none)

    @staticmethod
    def rotate_webhook_secret(endpoint_id: str, secret: str | None) -> _Call[WebhookEndpoint]:
        return _Call("POST", f"/_sim/webhooks/{_path_part(endpoint_id)}/rotate-secret", _endpoint,
                     body={"secret": secret} if secret is not None else {})

    @staticmethod
    def webhook_deliveries(endpoint_id: str) -> _Call[list[dict[str, Any]]]:
        return _Call("GET", f"/_sim/webhooks/{_path_part(endpoint_id)}/deliveries", lambda b: list(b["deliveries"]))

    @staticmethod
    def replay_webhook(endpoint_id: str, msg_id: str) -> _Call[dict[str, Any]]:
        return _Call("POST", f"/_sim/webhooks/{_path_part(endpoint_id)}/deliveries/{_path_part(msg_id)}/replay", dict)

    @staticmethod
    def inject_webhook_fault(endpoint_id: str, kind: str, times: int, by: float | None) -> _Call[list[dict[str, Any]]]:
        body: dict[str, Any] = {"kind": kind, "times": times}
        if by is not None:
            body["by"] = by
        return _Call("POST", f"/_sim/webhooks/{_path_part(endpoint_id)}/faults", lambda b: list(b["faults"]), body=body)

    @staticmethod
    def webhook_settings() -> _Call[WebhookSettings]:
        return _Call("GET", "/_sim/webhook-settings", _webhook_settings)

    @staticmethod
    def set_webhook_settings(body: Mapping[str, float]) -> _Call[WebhookSettings]:
        return _Call("PUT", "/_sim/webhook-settings", _webhook_settings, body=dict(body))


def _current_groups(device: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A device's native rows as read, ready to be written back unchanged (owners included)."""
    scheduler = device.get("scheduler") or {}
    return [dict(group) for group in scheduler.get("groups", [])]


def _refusal(method: str, path: str, status: int, raw: bytes) -> AmpsSimError:
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "code" in error:
        return AmpsSimError(status, str(error["code"]), str(error.get("message", "")), error.get("details"),
                            method=method, path=path, body=body)
    # Not the simulator's envelope: a proxy's page, or a deployment without the control API.
    text = body if isinstance(body, str) else json.dumps(body)
    return AmpsSimError(status, f"HTTP_{status}", (text or "")[:200], method=method, path=path, body=body)


class _Base:
    def __init__(self, url: str, api_key: str | None = None, *, root_key: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        # The key sent when creating tenants, for servers that want one (ignored by those that do not).
        self.root_key = root_key
        self.timeout = timeout

    def _headers(self, call: _Call[Any]) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        key = self.api_key if call.path != "/_sim/tenants" else (self.root_key or self.api_key)
        if call.send_key and key:
            headers["x-api-key"] = key
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        return headers


class SimClient(_Base):
    """The control API, synchronously. Scoped to `api_key`; `create_tenant` gives a client for a new tenant."""

    def _send(self, call: _Call[T]) -> T:
        data = json.dumps(call.body).encode() if call.body is not None else None
        request = urllib.request.Request(self.url + call.path, data=data, method=call.method, headers=self._headers(call))
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                raw = reply.read()
        except urllib.error.HTTPError as refused:
            raise _refusal(call.method, call.path, refused.code, refused.read()) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AmpsSimUnreachable(self.url, str(reason)) from None
        return call.parse(json.loads(raw) if raw else None)

    def tenant(self, api_key: str) -> SimClient:
        """A client for another tenant on the same server."""
        return SimClient(self.url, api_key, root_key=self.root_key, timeout=self.timeout)

    def health(self) -> Health:
        return self._send(_Operations.health())

    def create_tenant(self, spec: Mapping[str, Any] | None = None) -> SimClient:
        """A fresh isolated tenant (`spec` as in `POST /_sim/tenants`); a client scoped to it."""
        return self.tenant(self._send(_Operations.create_tenant(spec)))

    def delete_tenant(self) -> None:
        self._send(_Operations.delete_tenant())

    def clock(self) -> ClockView:
        return self._send(_Operations.clock())

    def advance(self, by: str | timedelta) -> AdvanceResult:
        text = span(by)
        if text is None:
            assert isinstance(by, timedelta)
            return self.advance_to(self.clock().now + by)
        return self._send(_Operations.advance(text))

    def advance_to(self, instant: datetime | str) -> AdvanceResult:
        return self._send(_Operations.advance_to(instant))

    def reset(self) -> ClockView:
        return self._send(_Operations.reset())

    def devices(self) -> list[dict[str, Any]]:
        return self._send(_Operations.devices())

    def device(self, device_id: str) -> dict[str, Any]:
        return self._send(_Operations.device(device_id))

    def add_device(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        return self._send(_Operations.add_device(spec))

    def remove_device(self, device_id: str) -> None:
        self._send(_Operations.remove_device(device_id))

    def set_scheduler(self, device_id: str, *, groups: Sequence[Mapping[str, Any]] | None = None,
                      enabled: bool | None = None, owner: str | None = None) -> dict[str, Any]:
        """Write the native rows as a foreign party; without `groups` the rows stay as they are
        (e.g. only switch the scheduler on or off)."""
        if groups is None:
            groups = _current_groups(self.device(device_id))
        return self._send(_Operations.set_scheduler(device_id, groups, enabled, owner))

    def inject_fault(self, device_id: str, kind: str, times: int = 1) -> FaultsView:
        return self._send(_Operations.inject_fault(device_id, kind, times))

    def native_key(self, party: str, devices: Sequence[str]) -> str:
        return self._send(_Operations.native_key(party, devices))

    # -- webhooks
    def register_webhook(self, url: str, events: Sequence[str] | None = None, secret: str | None = None) -> WebhookEndpoint:
        """Register an endpoint for deliveries (every event unless `events` names some)."""
        return self._send(_Operations.register_webhook(url, events, secret))

    def webhooks(self) -> list[WebhookEndpoint]:
        return self._send(_Operations.webhooks())

    def delete_webhook(self, endpoint_id: str) -> None:
        self._send(_Operations.delete_webhook(endpoint_id))

    def rotate_webhook_secret(self, endpoint_id: str, secret: str | None = None) -> WebhookEndpoint:
        return self._send(_Operations.rotate_webhook_secret(endpoint_id, secret))

    def webhook_deliveries(self, endpoint_id: str) -> list[dict[str, Any]]:
        """The endpoint's delivery log: every message with its state and attempts (spec's `DeliveryMessage`)."""
        return self._send(_Operations.webhook_deliveries(endpoint_id))

    def replay_webhook(self, endpoint_id: str, msg_id: str) -> dict[str, Any]:
        return self._send(_Operations.replay_webhook(endpoint_id, msg_id))

    def inject_webhook_fault(self, endpoint_id: str, kind: str, times: int = 1, by: float | None = None) -> list[dict[str, Any]]:
        """`duplicate`, `drop_attempt`, `bad_signature`, `stale_timestamp`, `reorder`, or `delay` (`by` seconds)."""
        return self._send(_Operations.inject_webhook_fault(endpoint_id, kind, times, by))

    def webhook_settings(self) -> WebhookSettings:
        return self._send(_Operations.webhook_settings())

    def set_webhook_settings(self, *, delivery_latency: float | None = None, attempt_timeout: float | None = None,
                             rotation_overlap: float | None = None) -> WebhookSettings:
        """Seconds; what is not given keeps its value."""
        return self._send(_Operations.set_webhook_settings(_settings_body(delivery_latency, attempt_timeout, rotation_overlap)))


class AsyncSimClient(_Base):
    """The control API as coroutines, over aiohttp. Use `async with` or call `close()`."""

    def __init__(self, url: str, api_key: str | None = None, *, root_key: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, session: Any = None) -> None:
        super().__init__(url, api_key, root_key=root_key, timeout=timeout)
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> AsyncSimClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    def _http(self) -> Any:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def _send(self, call: _Call[T]) -> T:
        import aiohttp

        data = json.dumps(call.body).encode() if call.body is not None else None
        try:
            async with self._http().request(call.method, self.url + call.path, data=data, headers=self._headers(call)) as reply:
                raw = await reply.read()
                status = reply.status
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise AmpsSimUnreachable(self.url, str(exc)) from None
        if status >= 400:
            raise _refusal(call.method, call.path, status, raw)
        return call.parse(json.loads(raw) if raw else None)

    def tenant(self, api_key: str) -> AsyncSimClient:
        """A client for another tenant on the same server, sharing this one's connection pool."""
        return AsyncSimClient(self.url, api_key, root_key=self.root_key, timeout=self.timeout, session=self._http())

    async def health(self) -> Health:
        return await self._send(_Operations.health())

    async def create_tenant(self, spec: Mapping[str, Any] | None = None) -> AsyncSimClient:
        return self.tenant(await self._send(_Operations.create_tenant(spec)))

    async def delete_tenant(self) -> None:
        await self._send(_Operations.delete_tenant())

    async def clock(self) -> ClockView:
        return await self._send(_Operations.clock())

    async def advance(self, by: str | timedelta) -> AdvanceResult:
        text = span(by)
        if text is None:
            assert isinstance(by, timedelta)
            return await self.advance_to((await self.clock()).now + by)
        return await self._send(_Operations.advance(text))

    async def advance_to(self, instant: datetime | str) -> AdvanceResult:
        return await self._send(_Operations.advance_to(instant))

    async def reset(self) -> ClockView:
        return await self._send(_Operations.reset())

    async def devices(self) -> list[dict[str, Any]]:
        return await self._send(_Operations.devices())

    async def device(self, device_id: str) -> dict[str, Any]:
        return await self._send(_Operations.device(device_id))

    async def add_device(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        return await self._send(_Operations.add_device(spec))

    async def remove_device(self, device_id: str) -> None:
        await self._send(_Operations.remove_device(device_id))

    async def set_scheduler(self, device_id: str, *, groups: Sequence[Mapping[str, Any]] | None = None,
                            enabled: bool | None = None, owner: str | None = None) -> dict[str, Any]:
        if groups is None:
            groups = _current_groups(await self.device(device_id))
        return await self._send(_Operations.set_scheduler(device_id, groups, enabled, owner))

    async def inject_fault(self, device_id: str, kind: str, times: int = 1) -> FaultsView:
        return await self._send(_Operations.inject_fault(device_id, kind, times))

    async def native_key(self, party: str, devices: Sequence[str]) -> str:
        return await self._send(_Operations.native_key(party, devices))

    # -- webhooks
    async def register_webhook(self, url: str, events: Sequence[str] | None = None, secret: str | None = None) -> WebhookEndpoint:
        return await self._send(_Operations.register_webhook(url, events, secret))

    async def webhooks(self) -> list[WebhookEndpoint]:
        return await self._send(_Operations.webhooks())

    async def delete_webhook(self, endpoint_id: str) -> None:
        await self._send(_Operations.delete_webhook(endpoint_id))

    async def rotate_webhook_secret(self, endpoint_id: str, secret: str | None = None) -> WebhookEndpoint:
        return await self._send(_Operations.rotate_webhook_secret(endpoint_id, secret))

    async def webhook_deliveries(self, endpoint_id: str) -> list[dict[str, Any]]:
        return await self._send(_Operations.webhook_deliveries(endpoint_id))

    async def replay_webhook(self, endpoint_id: str, msg_id: str) -> dict[str, Any]:
        return await self._send(_Operations.replay_webhook(endpoint_id, msg_id))

    async def inject_webhook_fault(self, endpoint_id: str, kind: str, times: int = 1, by: float | None = None) -> list[dict[str, Any]]:
        return await self._send(_Operations.inject_webhook_fault(endpoint_id, kind, times, by))

    async def webhook_settings(self) -> WebhookSettings:
        return await self._send(_Operations.webhook_settings())

    async def set_webhook_settings(self, *, delivery_latency: float | None = None, attempt_timeout: float | None = None,
                                   rotation_overlap: float | None = None) -> WebhookSettings:
        return await self._send(_Operations.set_webhook_settings(_settings_body(delivery_latency, attempt_timeout, rotation_overlap)))
