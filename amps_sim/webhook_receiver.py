"""`amps_tenant.webhooks`: a ready webhook receiver for one tenant, for partners' tests.

    hooks = amps_tenant.webhooks                    # receiver started, registered for every event
    api.push("dev_abc123", {"command": "charge"})
    amps_tenant.advance("10s")                      # deliveries go out on the tenant's clock
    message = hooks.wait_for("push.completed")
    assert message.verified and message.body["state"] == "completed"

The receiver is the harness's own (:class:`amps_sim.contracts.webhooks.WebhookReceiver`: it
verifies svix signatures and checks bodies against the spec), served on 127.0.0.1 by an event
loop on a thread of its own (:class:`ReceiverHost`, one per session), so a synchronous test that
is blocked in `advance` still has its deliveries received, whether the simulator runs in-process
or at `--amps-sim-url` on this machine. An advance answers only after the attempts it made were
answered, so what they delivered is already in `messages` when it returns.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Coroutine, Mapping, Sequence, TypeVar

from amps_sim.client import SimClient, WebhookEndpoint, WebhookSettings

if TYPE_CHECKING:
    from amps_sim.contracts.webhooks import Received, WebhookReceiver

T = TypeVar("T")
DEFAULT_WAIT_S = 5.0
EVENTS = ("push.completed", "push.failed", "device.connected", "device.disconnected", "device.reconnected")


@dataclass(frozen=True)
class WebhookMessage:
    """One HTTP delivery the receiver got (every retry and duplicate is one of these)."""

    event: str  # the `x-amps-event-type` header
    msg_id: str  # `svix-id`: the same on every retry, duplicate and replay of one message
    body: Any  # the parsed JSON body (None if it was not JSON)
    raw: bytes  # the body exactly as sent, what a signature is computed over
    headers: dict[str, str]  # lower-case names
    verified: bool  # the signature matched a secret of the endpoint and the timestamp is within 5 min
    problem: str | None  # why it did not verify
    spec_problems: list[str]  # where the body breaks the public spec's `webhooks` schema (empty: fits)
    attempt: int  # the Nth time this receiver got this svix-id
    status: int  # what the receiver answered
    received_at: float  # real wall-clock seconds

    @property
    def timestamp(self) -> int:
        """`svix-timestamp`: real unix seconds of the attempt."""
        return int(self.headers.get("svix-timestamp", "0") or 0)


def _contains(expected: Any, actual: Any) -> bool:
    """`expected` is a part of `actual`: dicts by the keys given (recursively), anything else equal."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(k in actual and _contains(v, actual[k]) for k, v in expected.items())
    return bool(expected == actual)


class ReceiverHost:
    """An event loop on a daemon thread that serves the session's receivers."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="amps-sim-webhooks", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()


@dataclass
class TenantWebhooks:
    """A loopback receiver registered as one of a tenant's webhook endpoints (see the module doc)."""

    client: SimClient
    host: ReceiverHost
    events: Sequence[str] | None = None
    receiver: WebhookReceiver = field(init=False)
    endpoint: WebhookEndpoint = field(init=False)
    _arrived: threading.Condition = field(init=False, default_factory=threading.Condition)
    _seen: dict[str, int] = field(init=False, default_factory=dict)
    _messages: list[WebhookMessage] = field(init=False, default_factory=list)
    _answer: int | Callable[[WebhookMessage], int] = field(init=False, default=204)
    # What a `respond_with` function raised (answered 500); raised again when the receiver closes.
    errors: list[BaseException] = field(init=False, default_factory=list)
    closed: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        from amps_sim.contracts.webhooks import WebhookReceiver

        # The receiver asks `_decide` for every answer, so the status can change while it serves.
        self.receiver = WebhookReceiver(answer=self._decide, on_received=self._note)
        self.host.run(self.receiver.start())
        try:
            self._register(self.events)
        except BaseException:
            self.host.run(self.receiver.close())
            raise

    def _register(self, events: Sequence[str] | None) -> None:
        self.endpoint = self.client.register_webhook(self.receiver.url, events)
        self.receiver.secrets[:] = [self.endpoint.secret]

    # -- on the receiver's loop
    def _message(self, got: Received, status: int) -> WebhookMessage:
        return WebhookMessage(got.event_type, got.msg_id, got.payload, got.body, dict(got.headers), got.verified,
                              got.signature_problem, list(got.body_problems), self._seen.get(got.msg_id, 0) + 1,
                              status, got.wall)

    def _decide(self, got: Received) -> int:
        answer = self._answer
        if callable(answer):
            try:
                return answer(self._message(got, 0))
            except Exception as exc:  # the test's own function: report it at close, answer like a crashed app
                self.errors.append(exc)
                return 500
        return answer if got.verified else 401  # a careful receiver refuses what it cannot verify

    def _note(self, got: Received) -> None:
        with self._arrived:
            message = self._message(got, got.answered)
            self._seen[got.msg_id] = message.attempt
            self._messages.append(message)
            self._arrived.notify_all()

    # -- what arrived
    @property
    def url(self) -> str:
        return self.receiver.url

    @property
    def secret(self) -> str:
        """The endpoint's current signing secret (`whsec_...`): give it to your own verifier."""
        return self.endpoint.secret

    @property
    def messages(self) -> list[WebhookMessage]:
        """Every delivery received so far, in arrival order (retries and duplicates included)."""
        with self._arrived:
            return list(self._messages)

    def of_type(self, event: str) -> list[WebhookMessage]:
        return [m for m in self.messages if m.event == event]

    def unique(self) -> list[WebhookMessage]:
        """The first arrival of each svix-id: what a de-duplicating receiver acts on."""
        return [m for m in self.messages if m.attempt == 1]

    def wait_for(self, event: str | None = None, *, body: Mapping[str, Any] | None = None, count: int = 1,
                 timeout: float = DEFAULT_WAIT_S) -> WebhookMessage:
        """The first delivery of `event` (any, if None) whose body contains `body`, once `count` such
        deliveries have arrived; waits up to `timeout` real seconds, then fails with what did arrive.

        On a virtual clock deliveries go out while the clock moves (`amps_tenant.advance`): advance
        first. What an advance delivered has arrived when it returns, so this then answers at once.
        """
        def matching() -> list[WebhookMessage]:
            return [m for m in self._messages if (event is None or m.event == event) and (body is None or _contains(body, m.body))]

        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(found := matching()) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = "\n  ".join(f"{m.event} {m.msg_id} attempt {m.attempt} answered {m.status}"
                                      f"{'' if m.verified else ' NOT verified: ' + str(m.problem)}" for m in self._messages)
                    what = f"{count} × {event or 'delivery'}" + (f" with body containing {dict(body)}" if body is not None else "")
                    raise AssertionError(
                        f"amps_tenant.webhooks: waited {timeout:g} s for {what}, received {len(found)}. "
                        f"All deliveries so far:\n  {got or '(none)'}\n(the tenant's clock is virtual: deliveries go out "
                        f"when it moves, e.g. amps_tenant.advance('10s'))")
                self._arrived.wait(left)
            return found[0]

    def clear(self) -> None:
        """Forget what arrived (attempt numbers start again too)."""
        with self._arrived:
            self._messages.clear()
            self._seen.clear()

    # -- shaping the receiver and the endpoint
    def respond_with(self, answer: int | Callable[[WebhookMessage], int] = 204) -> None:
        """Answer verified deliveries with this status from now on (e.g. 500 to watch the retries),
        or let a function of the message decide every answer (unverified ones included)."""
        if isinstance(answer, int) and not 200 <= answer <= 599:
            raise ValueError(f"respond_with: {answer} is not an HTTP status (200-599)")
        self._answer = answer

    def subscribe(self, events: Sequence[str] | None = None) -> WebhookEndpoint:
        """Receive only `events` (every event if None): the endpoint is registered again (a new id
        and secret; what was pending for the old one is dropped)."""
        old = self.endpoint.id
        self._register(events)
        self.client.delete_webhook(old)
        self.events = events
        return self.endpoint

    def rotate_secret(self, secret: str | None = None) -> WebhookEndpoint:
        """Rotate the endpoint's secret; deliveries are signed with both for the overlap."""
        self.endpoint = self.client.rotate_webhook_secret(self.endpoint.id, secret)
        self.receiver.secrets.insert(0, self.endpoint.secret)
        return self.endpoint

    def inject_fault(self, kind: str, times: int = 1, *, by: float | None = None) -> list[dict[str, Any]]:
        """Make the next deliveries misbehave: `duplicate`, `drop_attempt`, `bad_signature`,
        `stale_timestamp`, `reorder`, or `delay` (`by` seconds of the tenant's clock)."""
        return self.client.inject_webhook_fault(self.endpoint.id, kind, times, by)

    def deliveries(self) -> list[dict[str, Any]]:
        """The simulator's delivery log for this endpoint (every message, its state and attempts)."""
        return self.client.webhook_deliveries(self.endpoint.id)

    def replay(self, msg_id: str) -> dict[str, Any]:
        """Send a message once more, now (it has arrived when this returns)."""
        return self.client.replay_webhook(self.endpoint.id, msg_id)

    def configure(self, *, delivery_latency: float | None = None, attempt_timeout: float | None = None,
                  rotation_overlap: float | None = None) -> WebhookSettings:
        """The tenant's webhook settings, in seconds; what is not given keeps its value."""
        return self.client.set_webhook_settings(delivery_latency=delivery_latency, attempt_timeout=attempt_timeout,
                                                rotation_overlap=rotation_overlap)

    def close(self) -> None:
        """Stop the receiver (the endpoint goes with its tenant); fails if a `respond_with` function raised."""
        if not self.closed:
            self.closed = True
            self.host.run(self.receiver.close())
            if self.errors:
                raise AssertionError(f"amps_tenant.webhooks: the respond_with function raised {self.errors[0]!r} "
                                     f"(answered 500), {len(self.errors)} time(s)") from self.errors[0]

    def __repr__(self) -> str:
        return f"<TenantWebhooks {self.url} endpoint {self.endpoint.id}, {len(self._messages)} received>"
