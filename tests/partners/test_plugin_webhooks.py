"""`amps_tenant.webhooks` as a partner meets it (issue 9, item 7): a project of their own run by
`python -m pytest` in a separate process, the plugin loaded through its entry point, real
deliveries received on loopback and verified with the svix package's own verifier.

It runs against the plugin's in-process simulator and against one given by `--amps-sim-url`
(this process's spec-checked one, so every control-API reply the receiver's setup gets is checked).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.partners.conftest import CheckedSimulator, clean_env

PARTNER_TESTS = """\
    import json, urllib.request
    from datetime import datetime, timedelta, timezone

    import pytest
    from svix.webhooks import Webhook, WebhookVerificationError

    from amps_sim import AmpsSimError

    START = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)
    LADDER = [timedelta(0), timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
              timedelta(hours=5), timedelta(hours=10), timedelta(hours=10)]

    def push(tenant, device, action):
        request = urllib.request.Request(f"{tenant.url}/battery/{device}", data=json.dumps({"action": action}).encode(),
                                         method="POST", headers={"x-api-key": tenant.api_key, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())

    def test_a_completed_push_arrives_verified(amps_tenant):
        hooks = amps_tenant.webhooks
        assert hooks.url.startswith("http://127.0.0.1:") and hooks.secret.startswith("whsec_")
        assert hooks.messages == []
        action = push(amps_tenant, "dev_abc123", {"command": "charge"})
        amps_tenant.advance("10s")
        message = hooks.wait_for("push.completed", timeout=0.5)
        assert (message.verified, message.attempt, message.status, message.spec_problems) == (True, 1, 204, [])
        assert message.msg_id.startswith("msg_") and message.headers["svix-id"] == message.msg_id
        assert message.body["id"] == action["actionId"] and message.body["state"] == "completed"
        assert message.body["deviceType"] == "battery"
        # the svix package, which no one here wrote, agrees
        Webhook(hooks.secret).verify(message.raw, message.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook("whsec_" + "QUJD" * 8).verify(message.raw, message.headers)
        assert hooks.of_type("push.completed") == [message]
        assert hooks.wait_for(body={"id": action["actionId"]}, timeout=0) is message
        [logged] = hooks.deliveries()
        assert logged["msgId"] == message.msg_id and logged["state"] == "delivered"

    def test_a_receiver_answering_500_sees_the_retries(amps_tenant):
        hooks = amps_tenant.webhooks
        hooks.subscribe(events=["push.completed", "push.failed"])
        hooks.respond_with(500)
        push(amps_tenant, "dev_abc123", {"command": "charge"})
        amps_tenant.advance("2d")
        got = hooks.of_type("push.completed")
        assert [m.attempt for m in got] == [1, 2, 3, 4, 5, 6, 7, 8]
        assert {m.msg_id for m in got} == {got[0].msg_id} and all(m.status == 500 for m in got)
        for m in got:
            Webhook(hooks.secret).verify(m.raw, m.headers)
        [logged] = hooks.deliveries()
        assert logged["state"] == "failed"
        instants = [datetime.fromisoformat(a["at"].replace("Z", "+00:00")) for a in logged["attempts"]]
        steps = [b - a for a, b in zip([instants[0], *instants], instants)]
        assert steps == LADDER
        assert hooks.unique() == got[:1]

    def test_the_answer_recovers_and_replays_arrive(amps_tenant):
        hooks = amps_tenant.webhooks
        hooks.respond_with(503)
        push(amps_tenant, "dev_abc123", {"command": "charge"})
        amps_tenant.advance("10s")
        first = hooks.wait_for("push.completed", timeout=0)
        assert {m.status for m in hooks.messages} == {503}
        refused = len(hooks.messages)
        hooks.respond_with()
        amps_tenant.advance("1h")
        assert hooks.wait_for("push.completed", count=refused + 1, timeout=0) is first
        got = hooks.of_type("push.completed")
        assert [m.attempt for m in got] == list(range(1, refused + 2)) and {m.msg_id for m in got} == {first.msg_id}
        assert got[-1].status == 204 and hooks.deliveries()[0]["state"] == "delivered"
        hooks.clear()
        hooks.replay(first.msg_id)
        assert [(m.msg_id, m.attempt) for m in hooks.messages] == [(first.msg_id, 1)]

    def test_device_events_and_faults(amps_tenant):
        hooks = amps_tenant.webhooks
        hooks.inject_fault("bad_signature")
        amps_tenant.add_device({"id": "dev_new", "profile": "direct", "timeZone": "Europe/Berlin"})
        amps_tenant.advance("10s")
        bad, good = hooks.of_type("device.connected")
        assert (bad.verified, bad.status, good.verified, good.status) == (False, 401, True, 204)
        assert "signature" in bad.problem and good.body["deviceId"] == "dev_new"
        hooks.inject_fault("duplicate")
        amps_tenant.inject_fault("dev_abc123", "offline", times=1)
        amps_tenant.advance("10s")
        assert [m.attempt for m in hooks.of_type("device.disconnected")] == [1, 2]

    def test_rotation_signs_twice(amps_tenant):
        hooks = amps_tenant.webhooks
        old = hooks.secret
        new = hooks.rotate_secret().secret
        push(amps_tenant, "dev_abc123", {"command": "charge"})
        amps_tenant.advance("10s")
        message = hooks.wait_for("push.completed", timeout=0)
        assert message.verified and len(message.headers["svix-signature"].split()) == 2
        for secret in (old, new):
            Webhook(secret).verify(message.raw, message.headers)

    def test_frozen_time_and_svix(amps_tenant, amps_frozen_time):
        hooks = amps_tenant.webhooks
        push(amps_tenant, "dev_abc123", {"command": "charge"})
        amps_tenant.advance("10s")
        assert datetime.now(timezone.utc) == START + timedelta(seconds=10)
        message = hooks.wait_for("push.completed", timeout=0)
        Webhook(hooks.secret).verify(message.raw, message.headers)  # svix keeps real time

    def test_waiting_for_what_does_not_come_says_why(amps_tenant):
        hooks = amps_tenant.webhooks
        push(amps_tenant, "dev_abc123", {"command": "charge"})
        with pytest.raises(AssertionError) as waited:
            hooks.wait_for("push.completed", timeout=0.2)
        assert "received 0" in str(waited.value) and "amps_tenant.advance" in str(waited.value)

    def test_a_tenant_without_webhooks_registers_nothing(amps_tenant):
        assert amps_tenant.client.webhooks() == []

    def test_the_receiver_goes_with_the_tenant(amps_sim):
        tenant = amps_sim.new_tenant()
        url = tenant.webhooks.url
        tenant.close()
        with pytest.raises(OSError):
            urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=5)
        with pytest.raises(AmpsSimError):
            tenant.client.webhooks()
    """


def _run(project: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, tuple[str, str]]]:
    junit = project / f"junit-{len(list(project.glob('junit-*.xml')))}.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={junit}", "-W", "ignore::DeprecationWarning", *args],
        cwd=project, env=clean_env(), capture_output=True, text=True, timeout=300,
    )
    outcomes: dict[str, tuple[str, str]] = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            problem = next(iter(case), None)
            outcomes[case.get("name", "")] = ((problem.tag if problem is not None else "passed"),
                                             ((problem.get("message") or "") + (problem.text or "")) if problem is not None else "")
    return proc, outcomes


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("partner_hooks")
    (root / "test_hooks.py").write_text(textwrap.dedent(PARTNER_TESTS), encoding="utf-8")
    return root


def _check(proc: subprocess.CompletedProcess[str], outcomes: dict[str, tuple[str, str]]) -> None:
    assert len(outcomes) == 9, proc.stdout[-4000:] + proc.stderr[-2000:]
    failed = {name: text for name, (outcome, text) in outcomes.items() if outcome != "passed"}
    assert not failed, proc.stdout[-6000:]
    assert proc.returncode == 0


def test_in_process(project: Path) -> None:
    _check(*_run(project))


def test_against_a_served_simulator(project: Path, no_spec_violations: CheckedSimulator) -> None:
    before = no_spec_violations.requests
    _check(*_run(project, f"--amps-sim-url={no_spec_violations.url}"))
    assert no_spec_violations.requests - before > 30


def test_a_respond_with_function_that_raises_fails_at_teardown(no_spec_violations: CheckedSimulator) -> None:
    from amps_sim import AmpsSimServer

    server = AmpsSimServer(no_spec_violations.url, no_spec_violations.root_key, in_process=False)
    tenant = server.new_tenant()
    try:
        hooks = tenant.webhooks
        hooks.respond_with(lambda message: 1 // 0)
        tenant.add_device({"id": "dev_new", "profile": "direct"})
        tenant.advance("10s")
        assert {m.status for m in hooks.messages} == {500} and len(hooks.errors) == len(hooks.messages) >= 2
        with pytest.raises(AssertionError, match="respond_with function raised ZeroDivisionError"):
            tenant.close()
    finally:
        server.close()
