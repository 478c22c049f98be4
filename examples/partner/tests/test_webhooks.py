"""The optimiser's webhook handler, fed real deliveries (amps_tenant.webhooks: a receiver on
loopback, registered for this tenant, every signature verified)."""

from __future__ import annotations

from optimiser.amps_api import AmpsApi
from optimiser.outcomes import Outcomes


def test_a_duplicated_completion_is_handled_once(amps_tenant) -> None:
    hooks = amps_tenant.webhooks
    hooks.inject_fault("duplicate")  # the next delivery arrives twice, same svix-id
    api = AmpsApi(amps_tenant.url, amps_tenant.api_key)
    action_id = api.push("dev_abc123", {"command": "charge"})["actionId"]
    amps_tenant.advance("10s")  # deliveries go out on the tenant's clock

    deliveries = hooks.of_type("push.completed")
    assert len(deliveries) == 2 and all(m.verified for m in deliveries)
    outcomes = Outcomes()
    handled = [outcomes.handle(m.msg_id, m.event, m.body) for m in deliveries]
    assert handled == [True, False]
    assert outcomes.state_of == {action_id: "completed"}
