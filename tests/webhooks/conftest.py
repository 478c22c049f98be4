"""A svix-verified receiver on loopback, and a tenant with a webhook endpoint pointing at it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator

import pytest
from svix.webhooks import Webhook, WebhookVerificationError

from amps_sim.contracts.webhooks import Received, WebhookReceiver
from tests.conftest import Api, foxess


def svix_verifies(secret: str, received: Received) -> bool:
    """svix's own verifier (PyPI `svix`), exactly as a partner's receiver calls it."""
    try:
        Webhook(secret).verify(received.body, dict(received.headers))
    except WebhookVerificationError:
        return False
    return True


@dataclass
class Hooked:
    api: Api
    receiver: WebhookReceiver
    endpoint: dict[str, Any]

    @property
    def secret(self) -> str:
        return str(self.endpoint["secret"])

    async def deliveries(self) -> list[dict[str, Any]]:
        reply = await self.api.call("GET", f"/_sim/webhooks/{self.endpoint['id']}/deliveries")
        assert reply.status == 200, reply.body
        return list(reply.body["deliveries"])

    async def fault(self, kind: str, times: int = 1, **extra: Any) -> None:
        reply = await self.api.call("POST", f"/_sim/webhooks/{self.endpoint['id']}/faults",
                                    json_body={"kind": kind, "times": times, **extra})
        assert reply.status == 200, reply.body

    async def settings(self, **values: float) -> None:
        reply = await self.api.call("PUT", "/_sim/webhook-settings", json_body=values)
        assert reply.status == 200, reply.body


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    server = WebhookReceiver()
    await server.start()
    yield server
    await server.close()
    # Like every reply, every delivered body is held to the spec (openapi.yaml's webhooks section).
    broken = [(got.event_type, got.body_problems) for got in server.received if got.body_problems]
    assert not broken, broken


async def hook(api: Api, receiver: WebhookReceiver, **registration: Any) -> Hooked:
    reply = await api.call("POST", "/_sim/webhooks", json_body={"url": receiver.url, **registration})
    assert reply.status == 201, reply.body
    receiver.secrets.insert(0, reply.body["secret"])
    return Hooked(api, receiver, reply.body)


@pytest.fixture
async def hooked(sim: Api, receiver: WebhookReceiver) -> Hooked:
    """A virtual tenant at 08:00Z with one FoxESS device, its endpoint registered for every event."""
    api = await sim.tenant([foxess()])
    return await hook(api, receiver)
