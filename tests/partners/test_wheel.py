"""The package as a partner installs it: the wheel built from this checkout, installed into a new
virtualenv outside it, used from a directory that has nothing of the checkout.

Installing pulls amps-sim's dependencies from the package index the first time and keeps them in
a wheelhouse (reports/wheelhouse) for later runs; the module takes about a minute the first time
and about half that afterwards on the shared CI machine.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from tests.partners.conftest import ROOT, clean_env

# What a build needs of the checkout; everything else (virtualenvs, reports, build leftovers) stays out.
_IGNORE = shutil.ignore_patterns(".git", ".venv", "reports", "build", "dist", "*.egg-info", "__pycache__",
                                 ".pytest_cache", ".hypothesis", ".mypy_cache", ".schemathesis")


WHEELHOUSE = ROOT / "reports" / "wheelhouse"


class Installed:
    def __init__(self, venv: Path, wheel: Path, home: Path) -> None:
        self.venv = venv
        self.wheel = wheel
        self.home = home  # a working directory outside the checkout
        self.amps_sim = str(venv / "bin" / "amps-sim")
        self.python = str(venv / "bin" / "python")

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), cwd=cwd or self.home, env=clean_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=_IGNORE)
    dist = work / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
                           capture_output=True, text=True, timeout=300)
    wheels = list(dist.glob("amps_sim-*.whl"))
    assert built.returncode == 0 and len(wheels) == 1, built.stderr[-3000:]
    venv = work / "venv"
    # No pip of its own (ensurepip takes longer than the rest): this checkout's pip installs into it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    pip_for_venv = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    wanted = [str(wheels[0]), "pytest"]
    # The dependencies come from the package index once, into a wheelhouse kept under reports/;
    # later runs install from it offline (a missing or outdated wheel sends us to the index again).
    offline = [*pip_for_venv, "install", "-q", "--no-index", "--find-links", str(WHEELHOUSE), *wanted]
    pip = subprocess.run(offline, capture_output=True, text=True, timeout=300)
    if pip.returncode != 0:
        fetched = subprocess.run([*pip_for_venv, "download", "-q", "--dest", str(WHEELHOUSE), *wanted],
                                 capture_output=True, text=True, timeout=300)
        assert fetched.returncode == 0, fetched.stderr[-3000:]
        for stale in WHEELHOUSE.glob("amps_sim-*.whl"):  # only dependencies belong there
            stale.unlink()
        pip = subprocess.run(offline, capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr[-3000:]
    home = work / "home"
    home.mkdir()
    return Installed(venv, wheels[0], home)


def test_wheel_metadata_and_contents(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = wheel.read(info).decode()
        entry_points = wheel.read(info.replace("METADATA", "entry_points.txt")).decode()
        packaged_spec = wheel.read("amps_sim/simulator/specs/openapi.yaml")
    assert "License-Expression: MIT" in metadata
    assert any(n.endswith("/licenses/LICENSE") for n in names)
    assert "Description-Content-Type: text/markdown" in metadata and "## For partners" in metadata
    assert re.search(r"^Project-URL: Documentation, https://", metadata, re.M)
    assert "[pytest11]\namps_sim = amps_sim.pytest_plugin" in entry_points
    assert "amps-sim = amps_sim.cli:main" in entry_points
    # The shipped public spec is the file users read, byte for byte.
    assert packaged_spec == (ROOT / "openapi.yaml").read_bytes()
    for data in ("amps_sim/simulator/specs/control-openapi.yaml", "amps_sim/simulator/worlds/default.yaml",
                 "amps_sim/contracts/scenario.schema.json", "amps_sim/simulator/profiles/foxess.yaml",
                 "amps_sim/simulator/profiles/foxess_legacy.yaml", "amps_sim/simulator/profiles/direct.yaml"):
        assert data in names, data
    # Every package of the checkout is in it (a folder missing from pyproject's list would import
    # in the checkout and fail installed).
    for folder, name in ((ROOT / "simulator", "amps_sim/simulator"), (ROOT / "contracts", "amps_sim/contracts"), (ROOT / "amps_sim", "amps_sim")):
        for init in folder.rglob("__init__.py"):
            packaged = f"{name}/{init.relative_to(folder).as_posix()}"
            assert packaged in names, f"{packaged} is missing from the wheel: add its package to pyproject.toml"
    # Only amps_sim is installed at the top level: no `simulator` or `contracts` to collide with.
    assert {n.split("/")[0] for n in names if not n.startswith("amps_sim-")} == {"amps_sim"}


@pytest.fixture(scope="module")
def served(installed: Installed) -> Iterator[str]:
    proc = subprocess.Popen([installed.amps_sim, "serve", "--port", "0"], cwd=installed.home,
                            env=clean_env(PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    match = re.search(r"serving on (http://\S+) ", banner)
    if not match:
        proc.kill()
        _, err = proc.communicate(timeout=20)
        pytest.fail(f"amps-sim serve did not start: {banner}{err}")
    try:
        yield match.group(1)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)  # also closes the pipes


def _get(url: str, key: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"x-api-key": key} if key else {})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.status, reply.read()


def test_installed_serve_answers_both_specs_profiles_and_the_default_world(installed: Installed, served: str) -> None:
    status, public = _get(served + "/openapi.yaml")
    assert status == 200 and public == (ROOT / "openapi.yaml").read_bytes()
    status, control = _get(served + "/_sim/openapi.yaml")
    assert status == 200 and b"amps-sim control API" in control
    assert json.loads(_get(served + "/_sim/health")[1])["status"] == "ok"
    devices = json.loads(_get(served + "/_sim/devices", "sk_live_abc123xyz")[1])["devices"]
    assert len(devices) == 7 and {d["profile"] for d in devices} == {"foxess", "foxess_legacy", "direct"}
    assert json.loads(_get(served + "/battery/dev_abc123", "sk_live_abc123xyz")[1])["id"] == "dev_abc123"


def test_installed_run_on_scenario_files_anywhere(installed: Installed, served: str) -> None:
    suite = installed.home / "my-scenarios"
    shutil.copytree(ROOT / "scenarios" / "faults", suite / "faults")
    shutil.copytree(ROOT / "scenarios" / "conflicts", suite / "conflicts")
    embedded = installed.run(installed.amps_sim, "run", str(suite), "--junit", "out/junit.xml")
    assert embedded.returncode == 0, embedded.stdout[-3000:] + embedded.stderr
    assert re.search(r"\b[1-9]\d* passed, 0 failed, 0 skipped", embedded.stdout), embedded.stdout[-500:]
    assert (installed.home / "out" / "junit.xml").exists()
    remote = installed.run(installed.amps_sim, "run", str(suite / "faults"), "--target", served)
    assert remote.returncode == 0, remote.stdout[-3000:] + remote.stderr
    assert re.search(r"\b[1-9]\d* passed, 0 failed, 0 skipped", remote.stdout)


def test_the_example_partner_project_passes_from_the_installed_wheel(installed: Installed, served: str) -> None:
    project = installed.home / "partner"
    shutil.copytree(ROOT / "examples" / "partner", project, ignore=_IGNORE)
    assert (project / "contracts" / "__init__.py").exists() and (project / "simulator" / "__init__.py").exists()
    for extra in ([], [f"--amps-sim-url={served}"]):
        proc = installed.run(installed.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, cwd=project)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert re.search(r"\b8 passed\b", proc.stdout), proc.stdout[-1000:]
