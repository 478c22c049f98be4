"""The amps-sim pytest plugin (registered as `amps_sim` through the `pytest11` entry point).

Fixtures:
  amps_sim          (session) the simulator: served in-process on a free loopback port, or the
                    one at `--amps-sim-url` / `AMPS_SIM_URL`. Attributes `url`, `root_key`,
                    `client`; `new_tenant(world)` for more tenants.
  amps_tenant       (function) a fresh isolated tenant on a virtual clock, deleted after the
                    test. `@pytest.mark.amps_world(PATH_OR_DICT)` picks its world (the schema of
                    `amps-sim serve --world`); by default the default world's devices and instant.
                    `amps_tenant.webhooks`: a loopback receiver registered for it, with the
                    deliveries it got, verified (amps_sim.webhook_receiver).
  amps_frozen_time  (function) the same test's `amps_tenant` with the test's own clock
                    (`datetime.now()`, `date.today()`, `time.time()`) frozen at the tenant's
                    virtual now, moving with every `advance`.

Files named `*.amps.yaml` are collected as scenario items and run against `amps_sim` like the
repository's own scenarios (`amps-sim run`).

Nothing starts until a test asks: a project that installs amps-sim and uses none of this pays
only for this module's import.
"""

from __future__ import annotations

import contextlib
import os
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import pytest

from amps_sim.client import AmpsSimError, AmpsSimUnreachable, FaultsView, SimClient

if TYPE_CHECKING:
    from amps_sim.webhook_receiver import ReceiverHost, TenantWebhooks

URL_ENV = "AMPS_SIM_URL"
KEY_ENV = "AMPS_SIM_KEY"
WORLD_MARKER = "amps_world"
# Code that must keep real time while a test's clock is frozen: the simulator itself (in-process,
# on its own thread) and the HTTP stack it serves with. Not pytest or asyncio: a test function is
# called from their frames, and freezegun gives real time to anything called from an ignored module.
# svix's verifier (the standardwebhooks package underneath) keeps real time too: `svix-timestamp` is the real wall clock's (issue 9), so a
# partner verifying a delivery inside a frozen test would otherwise be told it is too old.
FROZEN_TIME_IGNORE = ("amps_sim", "aiohttp", "yarl", "multidict", "svix", "standardwebhooks")


# ---- the simulator -----------------------------------------------------------------------------


class AmpsSimServer:
    """A running simulator: the `amps_sim` fixture."""

    def __init__(self, url: str, root_key: str | None, *, in_process: bool) -> None:
        self.url = url
        self.root_key = root_key
        self.in_process = in_process
        self.client = SimClient(url, root_key=root_key)
        self._receivers: ReceiverHost | None = None
        self._receivers_lock = threading.Lock()

    def receiver_host(self) -> ReceiverHost:
        """The thread and loop that serve tenants' webhook receivers, started on first use."""
        with self._receivers_lock:
            if self._receivers is None:
                from amps_sim.webhook_receiver import ReceiverHost

                self._receivers = ReceiverHost()
            return self._receivers

    def close(self) -> None:
        """Stop the webhook receivers' thread (the simulator itself is stopped by its owner)."""
        if self._receivers is not None:
            self._receivers.stop()
            self._receivers = None

    def new_tenant(self, world: str | Path | Mapping[str, Any] | None = None, *, base: Sequence[Path] = ()) -> AmpsTenant:
        """A fresh tenant on a virtual clock; delete it with `close()` (amps_tenant does).
        A relative world path is looked up in each of `base`, then from the current directory."""
        return AmpsTenant(self.client.create_tenant(tenant_spec(world, base)), self)

    def __repr__(self) -> str:
        where = "in-process" if self.in_process else "remote"
        return f"<AmpsSimServer {self.url} ({where})>"


def tenant_spec(world: str | Path | Mapping[str, Any] | None, base: Sequence[Path] = ()) -> dict[str, Any]:
    """The `POST /_sim/tenants` body for a world (a file, a dict, or None for the default world).

    The world is checked here first, so a mistake fails the test with its file and line. Its
    `apiKey` is not used (every tenant gets a fresh key), its clock is always virtual, and it
    starts at the default world's instant unless the world names one.
    """
    from amps_sim.worlds import load_world, world_from_mapping

    if world is None:
        parsed = load_world(None)
    elif isinstance(world, Mapping):
        parsed = world_from_mapping(world)
    else:
        path = Path(world)
        if not path.is_absolute():
            path = next((folder / path for folder in base if (folder / path).exists()), path)
        parsed = load_world(path)
    spec: dict[str, Any] = parsed.model_dump(mode="json", exclude_unset=True, exclude={"apiKey"})
    clock = dict(spec.get("clock") or {})
    clock["mode"] = "virtual"
    if "now" not in clock:
        # Reproducible: a world that names no instant starts at the default world's, not today.
        default = load_world(None).clock
        assert default is not None and default.now is not None
        clock["now"] = default.now.isoformat().replace("+00:00", "Z")
    spec["clock"] = clock
    return spec


class AmpsTenant:
    """One isolated tenant: its key, its virtual clock, its devices' OEM-side truth."""

    def __init__(self, client: SimClient, server: AmpsSimServer) -> None:
        assert client.api_key is not None
        self.client = client
        self.server = server
        self.api_key: str = client.api_key
        self.url = server.url
        self._frozen: list[Any] = []  # freezegun factories of active frozen_time() blocks
        self._webhooks: TenantWebhooks | None = None
        self.closed = False

    # -- webhooks
    @property
    def webhooks(self) -> TenantWebhooks:
        """A receiver on loopback, registered (on first use) as this tenant's endpoint for every
        event, with what it received, verified: see `amps_sim.webhook_receiver.TenantWebhooks`."""
        if self._webhooks is None:
            from amps_sim.webhook_receiver import TenantWebhooks

            self._webhooks = TenantWebhooks(self.client, self.server.receiver_host())
        return self._webhooks

    # -- clock
    @property
    def now(self) -> datetime:
        """The tenant's virtual now, an aware datetime (UTC)."""
        return self.client.clock().now

    def advance(self, by: str | timedelta) -> datetime:
        """Move the clock forward (`"90m"`, `"1h30m"`, `"2d"` or a timedelta); the new now."""
        return self._moved(self.client.advance(by).now)

    def advance_to(self, instant: datetime | str) -> datetime:
        """Move the clock to an instant (a datetime, naive meaning UTC, or RFC 3339 text); the new now."""
        return self._moved(self.client.advance_to(instant).now)

    def reset(self) -> datetime:
        """Back to the tenant's creation state (devices, actions, clock); the clock's now."""
        return self._moved(self.client.reset().now)

    def _moved(self, now: datetime) -> datetime:
        for factory in self._frozen:
            factory.move_to(now)
        return now

    @contextlib.contextmanager
    def frozen_time(self) -> Iterator[AmpsTenant]:
        """Within the block, the caller's `datetime.now()`, `date.today()`, `time.time()` read
        the tenant's virtual now (naive values in UTC), and move with `advance`/`advance_to`/`reset`."""
        import freezegun

        freezer = freezegun.freeze_time(self.now, ignore=list(FROZEN_TIME_IGNORE), tick=False, real_asyncio=True)
        factory = freezer.start()
        self._frozen.append(factory)
        try:
            yield self
        finally:
            self._frozen.remove(factory)
            freezer.stop()

    # -- devices
    def device(self, device_id: str) -> dict[str, Any]:
        """The OEM-side truth of a device: battery, native rows with owners, flag, warnings, faults."""
        return self.client.device(device_id)

    def devices(self) -> list[dict[str, Any]]:
        return self.client.devices()

    def add_device(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        return self.client.add_device(spec)

    def remove_device(self, device_id: str) -> None:
        self.client.remove_device(device_id)

    def set_scheduler(self, device_id: str, *, enabled: bool | None = None, groups: Sequence[Mapping[str, Any]] | None = None,
                      owner: str | None = None) -> dict[str, Any]:
        """Write the device's native rows as a foreign party (the homeowner's app by default) would;
        without `groups` the rows stay and only the flag changes."""
        return self.client.set_scheduler(device_id, groups=groups, enabled=enabled, owner=owner)

    def inject_fault(self, device_id: str, kind: str, times: int = 1) -> FaultsView:
        """Make the device's OEM misbehave the next `times` calls (`transient`, `offline`, ...)."""
        return self.client.inject_fault(device_id, kind, times)

    def native_key(self, party: str, devices: Sequence[str]) -> str:
        """A FoxESS cloud key for `party`, scoped to `devices` (the native API is at `url + "/foxess"`)."""
        return self.client.native_key(party, devices)

    # -- lifetime
    def close(self) -> None:
        """Delete the tenant (once); a tenant already gone is fine."""
        if self.closed:
            return
        self.closed = True
        try:
            self.client.delete_tenant()
        except AmpsSimError as exc:
            if exc.code != "INVALID_API_KEY":
                raise
        finally:
            if self._webhooks is not None:
                self._webhooks.close()

    def __repr__(self) -> str:
        return f"<AmpsTenant {self.api_key[:12]}… on {self.url}>"


# ---- options, the session's simulator ---------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("amps-sim", "amps-sim simulator")
    group.addoption("--amps-sim-url", dest="amps_sim_url", metavar="URL", default=None,
                    help=f"use the simulator already serving at URL instead of one in-process (env {URL_ENV})")
    group.addoption("--amps-sim-key", dest="amps_sim_key", metavar="KEY", default=None,
                    help=f"with --amps-sim-url: the key that may create tenants there (env {KEY_ENV})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{WORLD_MARKER}(world): the amps_tenant's world, a world file path or a dict (schema of amps-sim serve --world)"
    )


_SERVER_KEY = pytest.StashKey[AmpsSimServer]()


def session_server(config: pytest.Config) -> AmpsSimServer:
    """The session's simulator, started (or reached) on first use and stopped at the end."""
    try:
        return config.stash[_SERVER_KEY]
    except KeyError:
        pass
    url = config.getoption("amps_sim_url") or os.environ.get(URL_ENV) or None
    key = config.getoption("amps_sim_key") or os.environ.get(KEY_ENV) or None
    if url:
        server = AmpsSimServer(url.rstrip("/"), key, in_process=False)
        # Every test that needs it would fail the same way: stop the session with one line.
        try:
            server.client.health()
        except AmpsSimUnreachable as exc:
            pytest.exit(f"amps-sim: {exc.message} (from --amps-sim-url / {URL_ENV})", returncode=pytest.ExitCode.USAGE_ERROR)
        except AmpsSimError as exc:
            pytest.exit(f"amps-sim: {url} is not an amps-sim simulator (GET /_sim/health: {exc.status} {exc.code})",
                        returncode=pytest.ExitCode.USAGE_ERROR)
    else:
        from amps_sim.server import InProcessSimulator, build_app
        from amps_sim.worlds import load_world

        world = load_world(None)
        simulator = InProcessSimulator(build_app(world))
        server = AmpsSimServer(simulator.start(), world.apiKey, in_process=True)
        config.add_cleanup(simulator.stop)
    config.add_cleanup(server.close)
    config.stash[_SERVER_KEY] = server
    return server


@pytest.fixture(scope="session")
def amps_sim(request: pytest.FixtureRequest) -> AmpsSimServer:
    """The simulator this session tests against (see the module docstring)."""
    return session_server(request.config)


@pytest.fixture
def amps_tenant(amps_sim: AmpsSimServer, request: pytest.FixtureRequest) -> Iterator[AmpsTenant]:
    """A fresh tenant on a virtual clock, deleted after the test; `@pytest.mark.amps_world` picks its world."""
    marker = request.node.get_closest_marker(WORLD_MARKER)
    world: Any = None
    if marker is not None:
        if len(marker.args) != 1 or marker.kwargs:
            raise pytest.UsageError(f"@pytest.mark.{WORLD_MARKER} takes one argument: a world file path or a dict")
        world = marker.args[0]
    from amps_sim.worlds import WorldFileError

    try:
        # A relative path: beside the test file, else from the project's root, else from the cwd.
        tenant = amps_sim.new_tenant(world, base=(Path(str(request.node.path)).parent, request.config.rootpath))
    except WorldFileError as exc:
        pytest.fail(f"amps_world: {exc}", pytrace=False)
    except AmpsSimError as exc:
        pytest.fail(f"amps_world: the simulator refused the world: {exc}", pytrace=False)
    try:
        yield tenant
    finally:
        tenant.close()


@pytest.fixture
def amps_frozen_time(amps_tenant: AmpsTenant) -> Iterator[AmpsTenant]:
    """The test's own clock frozen at `amps_tenant`'s virtual now for the whole test (see AmpsTenant.frozen_time)."""
    with amps_tenant.frozen_time() as tenant:
        yield tenant


# ---- partner scenario files --------------------------------------------------------------------


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    from amps_sim.contracts.pytest_plugin import PARTNER_SUFFIXES

    if not file_path.name.endswith(PARTNER_SUFFIXES):
        return None
    return PartnerScenarioFile.from_parent(parent, path=file_path)


def _partner_file_class() -> type:
    from amps_sim.contracts.pytest_plugin import ScenarioFile, ScenarioSession

    session_key = pytest.StashKey[ScenarioSession]()

    class _PartnerScenarioFile(ScenarioFile):
        """A `*.amps.yaml` file: its scenario runs against the session's `amps_sim` simulator."""

        def scenario_session(self) -> ScenarioSession:
            config = self.config
            try:
                return config.stash[session_key]
            except KeyError:
                session = ScenarioSession(target=lambda: session_server(config).url)
                config.stash[session_key] = session
                config.add_cleanup(session.close)
                return session

    return _PartnerScenarioFile


class _LazyFileClass:
    """Builds the collector class on first use, so the harness is imported only for YAML files."""

    _cls: Any = None

    def from_parent(self, parent: pytest.Collector, **kwargs: Any) -> pytest.Collector:
        if self._cls is None:
            type(self)._cls = _partner_file_class()
        return self._cls.from_parent(parent, **kwargs)  # type: ignore[no-any-return]


PartnerScenarioFile = _LazyFileClass()
