"""The plain parts: signing against svix's own, the allow-list grammar, the clock's halt."""

from __future__ import annotations

import ipaddress
import random
from datetime import datetime, timedelta, timezone

import pytest
from svix.webhooks import Webhook

from amps_sim.simulator.clock import Clock
from amps_sim.simulator.webhooks import signing
from amps_sim.simulator.webhooks.allow import AllowList


def test_our_signature_is_svixs() -> None:
    secret = signing.new_secret(random.Random(3))
    body = b'{"id":"act_1","deviceType":"battery"}'
    moment = datetime(2026, 12, 2, 6, 0, 7, tzinfo=timezone.utc)
    ours = signing.signature(signing.secret_key(secret), "msg_abc", int(moment.timestamp()), body)
    assert ours == Webhook(secret).sign("msg_abc", moment, body.decode())


@pytest.mark.parametrize("secret", ["whsec_", "sk_abc", "whsec_###", "whsec_c2hvcnQ=", "whsec_" + "A" * 200])
def test_secrets_that_are_not_secrets(secret: str) -> None:
    with pytest.raises(ValueError):
        signing.secret_key(secret)


def test_allow_list_grammar_and_decisions() -> None:
    allow = AllowList.parse("loopback, 10.1.0.0/16, hooks.example.com, .partner.test")
    ip = ipaddress.ip_address
    assert allow.refusal("127.0.0.1", [ip("127.0.0.1")]) is None
    assert allow.refusal("x", [ip("10.1.200.3")]) is None
    assert allow.refusal("x", [ip("10.2.0.1")]) is not None
    assert allow.refusal("hooks.example.com", []) is None
    assert allow.refusal("a.b.partner.test", []) is None
    assert allow.refusal("partner.test.evil.com", [ip("8.8.8.8")]) is not None
    # Every address a name resolves to must be allowed, not just one.
    assert allow.refusal("mixed", [ip("127.0.0.1"), ip("8.8.8.8")]) is not None
    assert AllowList.parse("*").refusal("anything", []) is None
    assert AllowList.parse("public").refusal("x", [ip("::ffff:10.0.0.1")]) is not None
    with pytest.raises(ValueError):
        AllowList.parse("http://x/")


def test_a_halted_advance_stops_at_the_event_and_resumes() -> None:
    start = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)
    clock = Clock(start)
    seen: list[datetime] = []
    for minutes in (1, 2, 3):
        clock.schedule(start + timedelta(minutes=minutes), lambda: seen.append(clock.now))
    target = start + timedelta(hours=1)
    assert clock.advance_to(target, halt=lambda: len(seen) == 2) == 2
    assert clock.now == start + timedelta(minutes=2)
    assert clock.advance_to(target, halt=lambda: False) == 1
    assert clock.now == target


async def test_connections_only_go_to_addresses_the_allow_list_includes() -> None:
    """A name checked at registration is checked again on every connection (DNS may change)."""
    from aiohttp.abc import AbstractResolver, ResolveResult

    from amps_sim.simulator.web.delivery import AllowListResolver

    class Rebinding(AbstractResolver):
        def __init__(self) -> None:
            self.answer = "8.8.4.4"

        async def resolve(self, host: str, port: int = 0, family: int = 2) -> list[ResolveResult]:  # type: ignore[override]
            return [{"hostname": host, "host": self.answer, "port": port, "family": family, "proto": 0, "flags": 0}]

        async def close(self) -> None:
            pass

    inner = Rebinding()
    resolver = AllowListResolver(AllowList.parse("public"), inner)
    assert [r["host"] for r in await resolver.resolve("hooks.partner.test", 443)] == ["8.8.4.4"]
    inner.answer = "127.0.0.1"
    with pytest.raises(OSError, match="allow-list"):
        await resolver.resolve("hooks.partner.test", 443)
    named = AllowListResolver(AllowList.parse("hooks.partner.test"), inner)  # allowed by name: any address
    assert [r["host"] for r in await named.resolve("hooks.partner.test", 443)] == ["127.0.0.1"]
