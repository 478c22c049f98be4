"""`bench.harness` reads the summary line `amps-sim run` prints; the two must keep agreeing
(a share printed with a decimal once broke `make bench` while every test passed)."""

from __future__ import annotations

from bench.harness import timed_run


def test_the_harness_bench_reads_the_summary_amps_sim_run_prints() -> None:
    wall, share = timed_run(["scenarios/webhooks"], 1)
    assert wall > 0
    assert 0 < share < 100
