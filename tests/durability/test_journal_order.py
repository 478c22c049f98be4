"""Journal order is apply order, even while an advance waits on webhook receivers: a push for
the same tenant that arrives mid-advance (here fired by the receiver itself) is journalled where
it took effect, so a `kill -9` and restart give back exactly what was acknowledged."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from tests.durability.receiver import LoopbackReceiver
from tests.durability.test_crash import START, Server, _devices, call

CHARGE = {"action": {"command": "charge", "parameters": {"target": {"value": 80, "unit": "percent"}}}}


def _state(base: str, key: str, action_ids: list[str]) -> list[Any]:
    return [call(base, "GET", f"/actions/{a}", key) for a in action_ids] + [call(base, "GET", "/_sim/clock", key)]


def test_a_push_made_while_an_advance_awaits_a_receiver_is_restored_as_acknowledged(tmp_path: Path) -> None:
    server = Server(tmp_path / "state")
    acknowledged: list[tuple[int, Any]] = []
    key_box: list[str] = []
    fired = threading.Event()

    def push_from_receiver() -> None:
        acknowledged.append(call(server.base, "POST", "/battery/dir", key_box[0], CHARGE))

    def push_once_then_linger() -> None:
        if not fired.is_set():
            fired.set()
            # While the server waits for this answer, a push for the same tenant arrives.
            threading.Thread(target=push_from_receiver, daemon=True).start()
            time.sleep(0.5)

    receiver = LoopbackReceiver(before_answer=push_once_then_linger)
    server.start()
    try:
        status, created = call(server.base, "POST", "/_sim/tenants", None, {"clock": {"now": START}, "devices": _devices()})
        key = created["apiKey"]
        key_box.append(key)
        url = receiver.url
        assert call(server.base, "POST", "/_sim/webhooks", key, {"url": url, "events": ["push.completed"]})[0] == 201
        status, first = call(server.base, "POST", "/battery/dir", key, CHARGE)
        assert status == 202, first
        assert call(server.base, "POST", "/_sim/clock/advance", key, {"by": "2h"})[0] == 200
        deadline = time.monotonic() + 10
        while not acknowledged and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fired.is_set() and acknowledged, "the receiver's push never came back"
        status, second = acknowledged[0]
        assert status == 202, second
        ids = [first["actionId"], second["actionId"]]
        before = _state(server.base, key, ids)
        server.kill()
        server.start()
        assert _state(server.base, key, ids) == before
    finally:
        server.stop()
        receiver.close()


def test_a_receiver_that_waits_on_its_own_push_costs_one_attempt_timeout_not_a_hang(tmp_path: Path) -> None:
    """The receiver pushes for the same tenant and answers only once the push is answered: the
    push waits for the advance, the advance waits for the receiver. The attempt times out (1 s
    here), the advance finishes, then the push applies; a restart gives back the same state."""
    server = Server(tmp_path / "state")
    acknowledged: list[tuple[int, Any]] = []
    key_box: list[str] = []
    fired = threading.Event()

    def push_and_wait_for_it() -> None:
        if not fired.is_set():
            fired.set()
            acknowledged.append(call(server.base, "POST", "/battery/dir", key_box[0], CHARGE))

    receiver = LoopbackReceiver(before_answer=push_and_wait_for_it)
    server.start()
    try:
        status, created = call(server.base, "POST", "/_sim/tenants", None, {"clock": {"now": START}, "devices": _devices()})
        key = created["apiKey"]
        key_box.append(key)
        url = receiver.url
        assert call(server.base, "PUT", "/_sim/webhook-settings", key, {"attemptTimeoutSeconds": 1})[0] == 200
        assert call(server.base, "POST", "/_sim/webhooks", key, {"url": url, "events": ["push.completed"]})[0] == 201
        status, first = call(server.base, "POST", "/battery/dir", key, CHARGE)
        assert status == 202, first
        started = time.monotonic()
        assert call(server.base, "POST", "/_sim/clock/advance", key, {"by": "2h"})[0] == 200
        deadline = time.monotonic() + 10
        while not acknowledged and time.monotonic() < deadline:
            time.sleep(0.05)
        assert acknowledged and time.monotonic() - started < 9, "the advance and the receiver's push hung"
        status, second = acknowledged[0]
        assert status == 202, second
        ids = [first["actionId"], second["actionId"]]
        before = _state(server.base, key, ids)
        server.kill()
        server.start()
        assert _state(server.base, key, ids) == before
    finally:
        server.stop()
        receiver.close()
