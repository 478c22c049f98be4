"""A malformed scenario file is refused with its path, its line and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from amps_sim.contracts.loader import ScenarioFileError, load_scenario, load_suite
from amps_sim.contracts.steps import PushStep
from tests.harness.helpers import PASSING, write

HEADER = "name: n\ndescription: d\nsource: s\n"


def problems(tmp_path: Path, text: str) -> ScenarioFileError:
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario(path)
    assert str(path) in str(caught.value)
    return caught.value


def test_a_valid_file_loads(tmp_path: Path) -> None:
    loaded = load_scenario(write(tmp_path, "ok.yaml", PASSING))
    assert loaded.scenario.name == "A scheduled charge can be read back"
    assert [type(s).__name__ for s in loaded.scenario.steps] == ["PushStep", "ReadActionStep"]
    assert loaded.step_line(1) == 11  # the line of "- read_action"


def test_unknown_key_names_its_line_and_a_suggestion(tmp_path: Path) -> None:
    error = problems(tmp_path, HEADER + "steps:\n  - push: {device: d, command: idle}\n    expcet: {status: 202}\n")
    assert error.line == 6
    assert ":6: steps[0].expcet: unknown key 'expcet' (did you mean 'expect'?)" in str(error)


def test_unknown_key_deep_inside_a_step(tmp_path: Path) -> None:
    error = problems(tmp_path, HEADER + "steps:\n  - push:\n      device: d\n      command: idle\n      onconflict: queue_after\n")
    assert error.line == 8 and "steps[0].push.onconflict: unknown key" in str(error)


def test_yaml_syntax_error_has_its_line(tmp_path: Path) -> None:
    error = problems(tmp_path, HEADER + "steps:\n  - push: {device: d, command: idle\n  - advance: 1h\n")
    assert error.line in (5, 6) and "not valid YAML" in str(error)


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    error = problems(tmp_path, HEADER + "steps:\n  - advance: 1h\n    advance: 2h\n")
    assert error.line == 6 and "duplicate key 'advance'" in str(error)


def test_a_step_needs_exactly_one_kind(tmp_path: Path) -> None:
    error = problems(tmp_path, HEADER + "steps:\n  - advance: 1h\n  - {advance: 1h, cancel: act_x}\n  - wait: 5\n")
    lines = {p.line for p in error.problems}
    assert lines == {6, 7}
    assert "a step needs exactly one of: push, request" in str(error)


def test_missing_required_key_points_at_the_mapping(tmp_path: Path) -> None:
    error = problems(tmp_path, "name: n\nsource: s\nsteps:\n  - advance: 1h\n")
    assert "description: missing required key 'description'" in str(error)


def test_malformed_matcher_points_at_the_matcher(tmp_path: Path) -> None:
    text = HEADER + "steps:\n  - read_device: d\n    expect:\n      body:\n        state:\n          level: {$range: [1, 2]}\n"
    error = problems(tmp_path, text)
    assert error.line == 9 and "$range takes {min: N, max: N}" in str(error)


def test_unknown_matcher(tmp_path: Path) -> None:
    error = problems(tmp_path, HEADER + "steps:\n  - read_device: d\n    expect: {body: {x: {$approximately: 3}}}\n")
    assert "unknown matcher '$approximately'" in str(error)


def test_a_variable_must_be_saved_by_an_earlier_step(tmp_path: Path) -> None:
    text = HEADER + "steps:\n  - cancel: ${first}\n  - push: {device: d, command: idle}\n    save: {first: body.actionId}\n"
    error = problems(tmp_path, text)
    assert error.line == 5 and "${first} is not saved by an earlier step" in str(error)


def test_save_paths_are_checked(tmp_path: Path) -> None:
    error = problems(tmp_path, HEADER + "steps:\n  - push: {device: d, command: idle}\n    save: {id: actionId}\n")
    assert "is not a reply path" in str(error)


def test_auth_tenant_must_be_declared(tmp_path: Path) -> None:
    error = problems(tmp_path, HEADER + "steps:\n  - read_device: d\n    auth: {tenant: ghost}\n")
    assert "acts as tenant 'ghost'" in str(error)


def test_given_now_must_carry_an_offset(tmp_path: Path) -> None:
    error = problems(tmp_path, HEADER + "given: {now: '2026-05-08T08:00:00'}\nsteps:\n  - advance: 1h\n")
    assert error.line == 4 and "has no UTC offset" in str(error)


def test_unquoted_timestamps_stay_strings_and_anchors_work(tmp_path: Path) -> None:
    text = HEADER + (
        "given:\n  now: 2026-05-08T08:00:00Z\n  devices: [&fox {id: dev_fox, timeZoneKnown: true}]\n"
        "steps:\n  - push: {device: dev_fox, command: idle, start: 2026-05-08T09:00:00Z}\n"
    )
    loaded = load_scenario(write(tmp_path, "ok.yaml", text))
    assert loaded.scenario.given is not None and loaded.scenario.given.now == "2026-05-08T08:00:00Z"
    step = loaded.scenario.steps[0]
    assert isinstance(step, PushStep) and step.push.start == "2026-05-08T09:00:00Z"


def test_a_suite_reports_broken_files_beside_good_ones(tmp_path: Path) -> None:
    write(tmp_path, "a/good.yaml", PASSING)
    write(tmp_path, "b/bad.yaml", HEADER + "steps: []\n")
    loaded, broken = load_suite([tmp_path])
    assert [s.relative for s in loaded] == ["a/good.yaml"]
    assert len(broken) == 1 and "bad.yaml:4: steps:" in str(broken[0])
