"""The optimiser's webhook handler: what it learns from `push.completed` / `push.failed`.

Delivery is at least once, so it de-duplicates on `svix-id`: a retried or duplicated delivery
changes nothing. (In production the web framework verifies the signature first, with the svix
package; under test amps_tenant.webhooks has verified it.)
"""

from __future__ import annotations

from typing import Any


class Outcomes:
    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.state_of: dict[str, str] = {}  # action id -> completed / failed

    def handle(self, svix_id: str, event_type: str, body: dict[str, Any]) -> bool:
        """Act on one delivery; False if it was already handled."""
        if svix_id in self.seen:
            return False
        self.seen.add(svix_id)
        if event_type in ("push.completed", "push.failed"):
            self.state_of[body["id"]] = body["state"]
        return True
