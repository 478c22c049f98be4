"""The pytest plugin as a partner meets it: a project of their own, with its own top-level
`contracts` and `simulator` packages, run by `python -m pytest` in a separate process, the plugin
loaded only through the `pytest11` entry point.

The project runs twice: against the plugin's in-process simulator, and against a simulator given
by `--amps-sim-url` (this process's spec-checked one, so every reply the plugin and the partner
code get is checked against the specs).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from amps_sim.contracts.pytest_plugin import collect_scenario_file
from tests.partners.conftest import CheckedSimulator, clean_env

FILES = {
    "contracts/__init__.py": "WHOSE = 'partner'\n",
    "simulator/__init__.py": "WHOSE = 'partner'\n",
    "worlds/winter.yaml": """\
        # a world file, as for `amps-sim serve --world`
        apiKey: sk_ignored_here
        clock: {mode: realtime, now: "2026-12-24T18:00:00Z"}
        devices:
          - {id: dev_tree, profile: foxess, timeZone: Europe/Berlin, timeZoneKnown: true}
        """,
    "worlds/broken.yaml": """\
        clock: {now: "2026-12-24T18:00:00Z"}
        devices:
          - {id: dev_x, profil: foxess}
        """,
    "sub/test_deeper.py": """\
        import pytest

        @pytest.mark.amps_world("worlds/winter.yaml")  # not beside this file: found from the root
        def test_world_from_the_root(amps_tenant):
            assert amps_tenant.device("dev_tree")["timeZone"] == "Europe/Berlin"
        """,
    "a_first/test_lazy.py": """\
        import threading

        def test_nothing_runs_until_asked():
            assert not [t for t in threading.enumerate() if t.name == "amps-sim"]
        """,
    "test_partner.py": """\
        import asyncio, json, os, time, urllib.request
        from datetime import date, datetime, timedelta, timezone
        from zoneinfo import ZoneInfo

        import pytest

        import contracts, simulator
        from amps_sim import AmpsSimError, AmpsTenant, AsyncSimClient

        START = datetime(2026, 5, 8, 8, 0, tzinfo=timezone.utc)
        SEEN = {}

        def test_own_packages_win():
            assert contracts.WHOSE == "partner" and simulator.WHOSE == "partner"

        def test_server(amps_sim):
            assert amps_sim.url.startswith("http://127.0.0.1:")
            assert amps_sim.url == os.environ.get("EXPECT_URL", amps_sim.url)
            assert amps_sim.root_key == "sk_live_abc123xyz"

        def test_default_world(amps_tenant):
            assert isinstance(amps_tenant, AmpsTenant)
            assert amps_tenant.now == START
            assert amps_tenant.device("dev_abc123")["timeZone"] == "Europe/London"
            assert len(amps_tenant.devices()) == 7
            assert amps_tenant.url and amps_tenant.api_key.startswith("sk_test_")
            SEEN["key"] = amps_tenant.api_key

        def test_the_last_tenant_was_deleted(amps_sim):
            assert SEEN["key"]
            with pytest.raises(AmpsSimError) as gone:
                amps_sim.client.tenant(SEEN["key"]).clock()
            assert gone.value.code == "INVALID_API_KEY"

        def test_methods(amps_tenant):
            assert amps_tenant.advance("90m") == START + timedelta(minutes=90)
            assert amps_tenant.advance(timedelta(hours=1)) == START + timedelta(minutes=150)
            assert amps_tenant.advance_to("2026-05-09T00:00:00Z") == datetime(2026, 5, 9, tzinfo=timezone.utc)
            row = {"start": "17:00", "end": "19:59", "workMode": "SelfUse"}
            view = amps_tenant.set_scheduler("dev_abc123", enabled=True, groups=[row], owner="other_optimiser")
            assert view["scheduler"]["groups"][0]["owner"] == "other_optimiser"
            assert amps_tenant.inject_fault("dev_abc123", "offline", times=2).faults
            assert amps_tenant.device("dev_abc123")["battery"]["status"] == "offline"
            assert amps_tenant.native_key("homeowner_app", ["dev_abc123"])
            assert amps_tenant.add_device({"id": "dev_new", "profile": "direct"})["id"] == "dev_new"
            amps_tenant.remove_device("dev_new")
            with pytest.raises(AmpsSimError) as missing:
                amps_tenant.device("dev_new")
            assert (missing.value.status, missing.value.code) == (404, "DEVICE_NOT_FOUND")
            assert amps_tenant.reset() == START
            assert amps_tenant.device("dev_abc123")["scheduler"]["groups"] == []

        @pytest.mark.amps_world("worlds/winter.yaml")
        def test_world_file(amps_tenant):
            assert amps_tenant.now == datetime(2026, 12, 24, 18, tzinfo=timezone.utc)
            assert [d["id"] for d in amps_tenant.devices()] == ["dev_tree"]
            # the tenant's clock is virtual whatever the file says: it stands still
            time.sleep(0.05)
            assert amps_tenant.now == datetime(2026, 12, 24, 18, tzinfo=timezone.utc)

        @pytest.mark.amps_world("worlds/winter.yaml")
        class TestFromTheRootToo:
            def test_world_file_for_a_class(self, amps_tenant):
                assert [d["id"] for d in amps_tenant.devices()] == ["dev_tree"]

        @pytest.mark.amps_world({"clock": {"now": "2027-01-01T00:00:00Z"}, "devices": [{"id": "d1", "profile": "direct"}]})
        def test_world_dict(amps_tenant):
            assert amps_tenant.now.year == 2027

        @pytest.mark.amps_world({"devices": [{"id": "d2", "profile": "foxess_legacy"}]})
        def test_world_without_an_instant_starts_at_the_default_one(amps_tenant):
            assert amps_tenant.now == START and amps_tenant.device("d2")["profile"] == "foxess_legacy"

        @pytest.mark.amps_world("worlds/broken.yaml")
        def test_broken_world(amps_tenant):
            pass

        def book_tonight(url, key, device):
            # The partner's code: "tonight at 22:00 local" from its own clock.
            local = datetime.now(ZoneInfo("Europe/London"))
            start = local.replace(hour=22, minute=0, second=0, microsecond=0)
            body = {"action": {"command": "charge", "start": start.isoformat(), "end": (start + timedelta(hours=7)).isoformat()}}
            request = urllib.request.Request(f"{url}/battery/{device}", data=json.dumps(body).encode(), method="POST",
                                             headers={"x-api-key": key, "Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as reply:
                return reply.status, json.loads(reply.read())

        def test_frozen_time_fixture(amps_tenant, amps_frozen_time):
            assert amps_frozen_time is amps_tenant
            assert date.today() == date(2026, 5, 8)
            assert datetime.now(timezone.utc) == START
            assert abs(time.time() - START.timestamp()) < 1
            status, body = book_tonight(amps_tenant.url, amps_tenant.api_key, "dev_abc123")
            assert status == 202 and body["state"] == "scheduled"
            amps_tenant.advance("1d")
            assert date.today() == date(2026, 5, 9)
            assert datetime.now(timezone.utc) == START + timedelta(days=1)
            amps_tenant.advance_to("2026-05-10T12:00:00Z")
            assert datetime.now(timezone.utc) == datetime(2026, 5, 10, 12, tzinfo=timezone.utc)

        def test_frozen_time_with_asyncio(amps_tenant):
            async def talk():
                await asyncio.sleep(0.01)  # a frozen loop clock would hang here
                async with AsyncSimClient(amps_tenant.url, amps_tenant.api_key) as client:
                    return (await client.clock()).now
            with amps_tenant.frozen_time():
                assert asyncio.run(talk()) == START
                assert datetime.now(timezone.utc) == START
            assert datetime.now(timezone.utc).year != 2026 or datetime.now(timezone.utc) != START

        def test_without_coupling_the_own_clock_is_real(amps_tenant):
            assert abs(time.time() - datetime.now(timezone.utc).timestamp()) < 5
            assert datetime.now(timezone.utc) != START
        """,
    "scenarios_here/ok.amps.yaml": """\
        name: A partner scenario runs against amps_sim
        description: A push on the default device is scheduled.
        source: the partner
        tags: [partner]
        given:
          devices: [{id: dev_p, profile: foxess, timeZone: Europe/London, timeZoneKnown: true}]
        steps:
          - push: {device: dev_p, command: charge, start: "2026-05-09T22:00:00Z", end: "2026-05-10T05:00:00Z"}
            expect: {status: 202, body: {state: scheduled}}
        """,
    "scenarios_here/wrong.amps.yaml": """\
        name: A partner scenario whose expectation is wrong
        description: It expects 409 where the API answers 202.
        source: the partner
        tags: [partner]
        given:
          devices: [{id: dev_p, profile: foxess, timeZone: Europe/London, timeZoneKnown: true}]
        steps:
          - push: {device: dev_p, command: charge, start: "2026-05-09T22:00:00Z", end: "2026-05-10T05:00:00Z"}
            expect: {status: 409}
        """,
    "scenarios_here/not_mine.yaml": "this: is not collected\n",
}

EXPECTED_FAILURES = {"test_broken_world", "wrong.amps"}


def _project(root: Path) -> Path:
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def _run(project: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], dict[str, tuple[str, str]]]:
    junit = project / f"junit-{len(list(project.glob('junit-*.xml')))}.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={junit}", "-W", "ignore::DeprecationWarning", *args],
        cwd=project, env=clean_env(**env), capture_output=True, text=True, timeout=180,
    )
    outcomes: dict[str, tuple[str, str]] = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            problem = next(iter(case), None)
            outcome = problem.tag if problem is not None else "passed"
            text = ((problem.get("message") or "") + (problem.text or "")) if problem is not None else ""
            outcomes[case.get("name", "")] = (outcome, text)
    return proc, outcomes


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _project(tmp_path_factory.mktemp("partner"))


def _check(proc: subprocess.CompletedProcess[str], outcomes: dict[str, tuple[str, str]]) -> None:
    assert len(outcomes) == 17, proc.stdout + proc.stderr
    unexpected = {name: o for name, o in outcomes.items() if (o[0] == "passed") == (name in EXPECTED_FAILURES)}
    assert not unexpected, proc.stdout[-4000:]
    assert proc.returncode == 1  # the two expected failures
    broken = outcomes["test_broken_world"][1]
    assert "broken.yaml:3: devices[0].profil: unknown key 'profil'" in broken, broken
    wrong = outcomes["wrong.amps"][1]
    assert "409" in wrong and "202" in wrong, wrong


def test_in_process(project: Path) -> None:
    proc, outcomes = _run(project)
    _check(proc, outcomes)


def test_against_a_served_simulator(project: Path, no_spec_violations: CheckedSimulator) -> None:
    before = no_spec_violations.requests
    proc, outcomes = _run(project, f"--amps-sim-url={no_spec_violations.url}", f"--amps-sim-key={no_spec_violations.root_key}",
                          EXPECT_URL=no_spec_violations.url)
    _check(proc, outcomes)
    assert no_spec_violations.requests - before > 40  # the plugin really used it


def test_the_url_from_the_environment(project: Path, no_spec_violations: CheckedSimulator) -> None:
    before = no_spec_violations.requests
    proc, outcomes = _run(project, "-k", "test_server or test_default_world", AMPS_SIM_URL=no_spec_violations.url,
                          AMPS_SIM_KEY=no_spec_violations.root_key, EXPECT_URL=no_spec_violations.url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert no_spec_violations.requests > before


def test_an_unreachable_url_stops_the_session_in_one_line(project: Path, tmp_path: Path) -> None:
    proc, _ = _run(project, "--amps-sim-url=http://127.0.0.1:9", "-k", "test_server")
    assert proc.returncode == 4  # pytest's usage error
    assert "amps-sim: cannot reach http://127.0.0.1:9" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_partner_files_are_left_to_the_plugin_by_the_repo_collector(tmp_path: Path) -> None:
    """The repository's own scenarios/ collection skips `*.amps.yaml`, so no file is collected twice."""
    suite = tmp_path / "scenarios"
    suite.mkdir()
    assert collect_scenario_file(None, suite / "x.amps.yaml", suite) is None  # type: ignore[arg-type]
