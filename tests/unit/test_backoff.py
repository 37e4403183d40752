"""Poll schedule: growth, cap and jitter bounds."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from grokvideo.backoff import PollSchedule


def test_delays_grow_then_stop_at_the_cap() -> None:
    schedule = PollSchedule(first_delay=5, cap=60, rng=random.Random(1))
    ceilings = [min(60, 5 * 2**n) for n in range(8)]
    for attempts, ceiling in enumerate(ceilings):
        delays = [schedule.delay(attempts) for _ in range(200)]
        assert min(delays) >= ceiling / 2
        assert max(delays) <= ceiling
    assert max(schedule.delay(30) for _ in range(200)) <= 60


def test_jitter_spreads_jobs_registered_together() -> None:
    schedule = PollSchedule(first_delay=5, cap=60, rng=random.Random(2))
    delays = {round(schedule.delay(3), 3) for _ in range(50)}
    assert len(delays) > 40  # not lockstep


@given(
    attempts=st.integers(min_value=0, max_value=10_000),
    first=st.floats(min_value=0.1, max_value=60),
    cap=st.floats(min_value=1, max_value=600),
)
def test_delay_is_always_positive_and_within_the_cap(attempts: int, first: float, cap: float) -> None:
    delay = PollSchedule(first_delay=first, cap=cap).delay(attempts)
    assert 0 < delay <= max(cap, 1.0)
