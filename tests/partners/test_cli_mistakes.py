"""The real `amps-sim` command, run as a user runs it, making the mistakes users make: each is
one line on stderr, the documented exit code, no traceback and no banner."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.partners.conftest import ROOT, amps_sim_command, clean_env


def amps_sim(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*amps_sim_command(), *args], cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "serving on" not in proc.stdout
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


@pytest.fixture(scope="module")
def world_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("worlds")
    (root / "syntax.yaml").write_text("clock:\n  mode: virtual\ndevices: [\n", encoding="utf-8")
    (root / "schema.yaml").write_text("clock:\n  mode: virtual\ndevices:\n  - id: a\n    profile: nope\n", encoding="utf-8")
    (root / "folder.yaml").mkdir()
    (root / "refused.yaml").write_text(
        "devices:\n  - {id: a, profile: foxess}\n  - id: b\n    profile: foxess\n    scheduler:\n      groups:\n"
        "        - {start: '01:00', end: '02:00', workMode: SelfUse}\n        - {start: '01:30', end: '03:00', workMode: SelfUse}\n",
        encoding="utf-8",
    )
    return root


def test_port_in_use(busy_port: int) -> None:
    one_line_error(amps_sim("serve", "--port", str(busy_port)), 1, f"127.0.0.1:{busy_port}", "already in use")


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_port_out_of_range(port: str) -> None:
    one_line_error(amps_sim("serve", "--port", port), 1, f"port {port} is out of range")


@pytest.mark.parametrize("host", ["no-such-host.invalid", "999.1.1.1"])
def test_bad_host(host: str) -> None:
    one_line_error(amps_sim("serve", "--host", host, "--port", "0"), 1, host)


def test_an_address_not_on_this_machine() -> None:
    one_line_error(amps_sim("serve", "--host", "192.0.2.1", "--port", "0"), 1, "192.0.2.1", "not one of this machine's")


@pytest.mark.parametrize(
    ("name", "needles"),
    [
        ("missing.yaml", ["missing.yaml:1:", "no such file"]),
        ("folder.yaml", ["folder.yaml:1:", "is a directory"]),
        ("syntax.yaml", ["syntax.yaml:4:", "not valid YAML"]),
        ("schema.yaml", ["schema.yaml:5:", "devices[0].profile"]),
        ("refused.yaml", ["refused.yaml:3:", "devices[1]", "errno 42023"]),
    ],
)
def test_world_file_mistakes_name_file_line_and_problem(world_files: Path, name: str, needles: list[str]) -> None:
    line = one_line_error(amps_sim("serve", "--port", "0", "--world", str(world_files / name)), 1, *needles)
    assert line.startswith("amps-sim serve: ")


def test_run_against_a_port_nobody_listens_on() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    one_line_error(amps_sim("run", "--target", f"http://127.0.0.1:{port}", str(ROOT / "scenarios")), 2, "cannot reach", str(port))


@pytest.mark.parametrize("target", ["not a url", "localhost:8080", "ftp://x", "http://127.0.0.1:99999"])
def test_run_against_something_that_is_not_a_url(target: str) -> None:
    one_line_error(amps_sim("run", "--target", target, str(ROOT / "scenarios")), 2, "cannot reach", target)


@pytest.mark.parametrize("option", ["--junit", "--html"])
def test_report_path_that_is_a_folder(option: str, tmp_path: Path) -> None:
    proc = amps_sim("run", option, str(tmp_path), str(ROOT / "scenarios"))
    one_line_error(proc, 2, option, "is a folder")
    assert "scenario(s)" not in proc.stdout  # nothing ran


def test_run_with_no_scenarios_folder_here(tmp_path: Path) -> None:
    one_line_error(amps_sim("run", cwd=tmp_path), 2, "no scenarios/ folder here")


def test_version_and_help() -> None:
    version = amps_sim("--version")
    assert version.returncode == 0 and re.fullmatch(r"amps-sim \d+\.\d+\.\d+\S*\n", version.stdout)
    bare = amps_sim()
    assert bare.returncode == 0 and "usage: amps-sim" in bare.stdout and "serve" in bare.stdout and "run" in bare.stdout
    for command in ("serve", "run"):
        text = amps_sim(command, "--help").stdout
        options = re.findall(r"^  (-[-\w]+(?:, --[\w-]+)?)(?: [A-Z{][^ ]*)?\s+(.*)$", text, re.M)
        blocks = re.split(r"\n  (?=-)", text.split("options:", 1)[1])
        for block in blocks[1:]:
            flat = " ".join(block.split())
            if flat.startswith("-h"):
                continue
            assert "default" in flat, (command, flat)
        assert options


def test_run_from_anywhere_on_a_scenario_file_anywhere(tmp_path: Path) -> None:
    scenario = tmp_path / "elsewhere" / "mine.yaml"
    scenario.parent.mkdir()
    scenario.write_text((ROOT / "scenarios" / "faults" / "offline_device_reads_offline.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    proc = amps_sim("run", str(scenario), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 0 failed" in proc.stdout


def test_ctrl_c_during_run_reports_what_ran(tmp_path: Path) -> None:
    junit, html = tmp_path / "junit.xml", tmp_path / "report.html"
    proc = subprocess.Popen(
        [*amps_sim_command(), "run", str(ROOT / "scenarios"), "--junit", str(junit), "--html", str(html)],
        env=clean_env(PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # wait until a few scenarios have finished
        seen.append(line)
        if sum(1 for s in seen if re.search(r"\] (PASS|FAIL|SKIP) ", s)) >= 3:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    text = "".join(seen) + out
    assert proc.returncode == 130, (text, err)
    assert "Traceback" not in err + text
    assert re.search(r"interrupted after \d+ of \d+ scenario", text), text
    assert re.search(r"\d+ passed, \d+ failed", text), text
    assert junit.exists() and html.exists()
    assert "<testcase" in junit.read_text(encoding="utf-8")


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen([*amps_sim_command(), "serve", "--port", "0", "--log-format", "json"],
                            env=clean_env(PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    match = re.search(r"serving on (http://127\.0\.0\.1:(\d+))", banner)
    if not match or match.group(2) == "0":
        proc.kill()
        _, err = proc.communicate(timeout=20)
        pytest.fail(f"no bound port in the banner: {banner}{err}")
    try:
        yield proc, match.group(1)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)  # also closes the pipes


def test_serve_port_zero_prints_the_bound_port_and_logs_one_line_per_request(served: tuple[subprocess.Popen[str], str]) -> None:
    proc, url = served
    assert json.loads(urllib.request.urlopen(url + "/_sim/health", timeout=5).read())["status"] == "ok"
    request = urllib.request.Request(url + "/battery", headers={"x-api-key": "sk_live_abc123xyz"})
    urllib.request.urlopen(request, timeout=5).read()
    for raw in (b"NOT HTTP AT ALL\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5) as sock:
            sock.sendall(raw)
            assert sock.recv(100).startswith(b"HTTP/1.") 
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    entries = [json.loads(line) for line in err.splitlines()]  # every line is one JSON object
    requests = [e for e in entries if e.get("method")]
    assert [(e["method"], e["path"], e["status"], e["key"]) for e in requests] == [
        ("GET", "/_sim/health", 200, "-"),
        ("GET", "/battery", 200, "sk_live_ab…"),
    ]
    assert all(isinstance(e["ms"], (int, float)) for e in requests)
    refused = [e for e in entries if "malformed" in e["msg"]]
    assert len(refused) == 2 and all(e["status"] == 400 for e in refused), entries
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["serve", "--port", "abc"], "'abc' is not a port number"),
        (["serve", "--clock", "sometimes"], "invalid choice: 'sometimes'"),
        (["serve", "--log-format", "xml"], "invalid choice: 'xml'"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["run", "--api-key", "k", str(ROOT / "scenarios")], "--api-key goes with --target"),
    ],
)
def test_usage_mistakes_are_one_line_too(args: list[str], needle: str) -> None:
    one_line_error(amps_sim(*args), 2, needle)


def test_log_level_warning_hides_requests_but_not_refusals() -> None:
    proc = subprocess.Popen([*amps_sim_command(), "serve", "--port", "0", "--log-level", "warning"],
                            env=clean_env(PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(re.search(r"127\.0\.0\.1:(\d+)", proc.stdout.readline()).group(1))  # type: ignore[union-attr]
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/_sim/health", timeout=5).read()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"XX\r\n\r\n")
            sock.recv(100)
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    lines = err.splitlines()
    assert len(lines) == 1 and re.match(r"\S+Z WARNING refused a malformed request from 127\.0\.0\.1: 400 ", lines[0]), err


def test_a_state_dir_that_is_a_file(tmp_path: Path) -> None:
    a_file = tmp_path / "state"
    a_file.write_text("not a folder", encoding="utf-8")
    one_line_error(amps_sim("serve", "--port", "0", "--state-dir", str(a_file)), 1, "--state-dir", str(a_file))
