"""The `webhook` step and the runner's receiver can fail, and the timeline shows deliveries."""

from __future__ import annotations

from pathlib import Path

from tests.harness.helpers import FOX, run_folder, write


def _scenario(steps: str, given_webhooks: str = "{}") -> str:
    return f"""
name: webhook harness check
description: harness test
source: decision (harness test)
given:
  devices: [{FOX}]
  webhooks: {given_webhooks}
steps:
{steps}
"""


async def test_a_delivery_that_never_comes_fails_the_step(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", _scenario("""
  - push: {device: dev_fox, command: charge, start: 1h}
  - webhook: {within: 10m, event: push.completed}
"""))
    summary = await run_folder(tmp_path)
    [result] = summary.results
    assert result.status == "failed"
    assert "expected a push.completed, received none" in result.failures[0].message


async def test_a_wrong_count_body_or_attempt_fails(tmp_path: Path) -> None:
    for name, expectation in (("count.yaml", "{within: 1m, event: push.completed, count: 2}"),
                              ("body.yaml", "{within: 1m, event: push.completed, body: {state: failed}}"),
                              ("attempt.yaml", "{within: 1m, event: push.completed, attempt: 2}"),
                              ("none.yaml", "{within: 1m, count: 0}")):
        write(tmp_path / name.removesuffix(".yaml"), name, _scenario(f"""
  - push: {{device: dev_fox, command: charge}}
  - webhook: {expectation}
"""))
    summary = await run_folder(tmp_path)
    assert [r.status for r in summary.results] == ["failed"] * 4
    passing = tmp_path / "ok"
    write(passing, "ok.yaml", _scenario("""
  - push: {device: dev_fox, command: charge}
  - webhook: {within: 1m, event: push.completed, count: 1, attempt: 1, body: {state: completed}}
"""))
    assert [r.status for r in (await run_folder(passing)).results] == ["passed"]


async def test_an_unverifiable_delivery_fails_unless_a_step_expects_it(tmp_path: Path) -> None:
    fault = "  - request: {method: POST, path: '/_sim/webhooks/${webhook}/faults', body: {kind: stale_timestamp}}\n"
    write(tmp_path / "a", "a.yaml", _scenario(fault + """
  - push: {device: dev_fox, command: charge}
  - advance: 1m
"""))
    write(tmp_path / "b", "b.yaml", _scenario(fault + """
  - push: {device: dev_fox, command: charge}
  - webhook: {within: 6s, verified: false, count: 1}
  - webhook: {within: 1m, count: 1, attempt: 2}
"""))
    bad = await run_folder(tmp_path / "a")
    assert bad.results[0].status == "failed"
    assert "did not verify" in bad.results[0].failures[0].message
    assert "tolerance" in bad.results[0].failures[0].message
    good = await run_folder(tmp_path / "b")
    assert good.results[0].status == "passed", [f.headline() for f in good.results[0].failures]


async def test_deliveries_appear_on_the_timeline(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", _scenario("""
  - push: {device: dev_fox, command: charge}
  - webhook: {within: 30m, count: 3}
""", given_webhooks="{answer: 500}"))
    summary = await run_folder(tmp_path)
    [result] = summary.results
    assert result.status == "passed", [f.headline() for f in result.failures]
    assert result.timeline is not None
    labels = [m.label for m in result.timeline.devices["dev_fox"].markers if m.kind == "webhook"]
    assert labels == ["push.completed #1 → 500", "push.completed #2 → 500", "push.completed #3 → 500"]
