"""A small run of benchmarks/poll_schedule.py: the progress-aware schedule must keep beating
today's backoff (a regression of the schedule fails here, not only in the benchmark's report)."""

from __future__ import annotations

import pytest

from benchmarks.poll_schedule import SCENARIOS, TARGET_LAG_P95, TARGET_POLLS, Scenario, compare, workload

MAIN = SCENARIOS[0]


def test_on_its_own_assumptions_the_new_schedule_meets_the_target_and_beats_todays_backoff() -> None:
    runs = compare(600, seed=11, scenario=MAIN)
    new, today = runs["progress-aware"], runs["today's backoff"]
    assert new.lag(0.95) <= TARGET_LAG_P95 and new.mean_polls <= TARGET_POLLS
    assert new.lag(0.95) < today.lag(0.95) / 3  # today's: about 47 s
    assert new.lag(0.5) < today.lag(0.5) / 2
    assert new.mean_polls <= today.mean_polls  # ... at no more polls


@pytest.mark.parametrize("scenario", SCENARIOS[1:], ids=[s.name for s in SCENARIOS[1:]])
def test_when_its_assumptions_are_wrong_it_still_detects_sooner_than_todays_backoff(scenario: Scenario) -> None:
    runs = compare(300, seed=12, scenario=scenario)
    new, today = runs["progress-aware"], runs["today's backoff"]
    assert new.lag(0.95) < today.lag(0.95) / 2
    assert new.mean_polls <= TARGET_POLLS


def test_the_workload_is_seeded_and_done_shows_at_a_refresh_after_the_finish() -> None:
    first, again = workload(50, 3, MAIN), workload(50, 3, MAIN)
    assert first == again and first != workload(50, 4, MAIN)
    for job in first:
        before = job.refreshes[-2] if len(job.refreshes) > 1 else 0.0
        assert before < job.finish <= job.visible_done < job.finish + 15 + 1e-9
        assert job.view(job.visible_done - 1e-6, MAIN)[0] is False
        assert job.view(job.visible_done, MAIN) == (True, 100)
