"""The progress-aware schedule: the prior table, the forecast and the next poll, row by row, then
the properties that must hold whatever the job and the answer."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grokvideo.jobs import Job
from grokvideo.models import JobState, Pending
from grokvideo.polling import PollPolicy, Reschedule, decide_poll
from grokvideo.schedule import (
    FINISH_PRIORS,
    KNOWN_SPREAD,
    OVERDUE,
    UNKNOWN_SPREAD,
    Prior,
    ProgressSchedule,
    finish_prior,
    forecast,
    jitter_fraction,
    job_prior,
)

START = 1_700_000_000
# 6 s at 480p: 42 s expected, the prior's window 42 / e^0.7 .. 42 * e^0.7 = 20.857 .. 84.578 s.
JOB = Job(
    "4b2cd27e",
    JobState.PENDING,
    registered_at=START,
    deadline_at=START + 3600,
    submitted_at=START,
    model="grok-imagine-video",
    request={"duration": 6, "resolution": "480p"},
)
LOW, HIGH = 20.857, 84.578
STEADY = ProgressSchedule(jitter=0)  # the rule without jitter, for exact rows


# --- the prior --------------------------------------------------------------------------------

PRIOR_ROWS = [
    # (model, resolution, duration, expected s, spread)
    ("grok-imagine-video", "480p", 1, 12.0, KNOWN_SPREAD),  # CometAPI's own test: about 12 s
    ("grok-imagine-video", "720p", 6, 70.0, KNOWN_SPREAD),
    ("grok-imagine-video-1.5", "1080p", 15, 320.0, KNOWN_SPREAD),
    ("grok-imagine-video", None, 6, 42.0, KNOWN_SPREAD),  # none sent: the provider's default, 480p
    (None, "480p", 6, 42.0, UNKNOWN_SPREAD),  # model unknown: the default one, guessed
    ("grok-imagine-video-9", "720p", 6, 70.0, UNKNOWN_SPREAD),
    ("grok-imagine-video", "1080p", 6, 42.0, UNKNOWN_SPREAD),  # not a resolution of that model
    ("grok-imagine-video", "480p", None, 54.0, UNKNOWN_SPREAD),  # duration unknown: 8 s
    ("grok-imagine-video", "480p", 0, 54.0, UNKNOWN_SPREAD),
    ("grok-imagine-video", "480p", 99, 54.0, UNKNOWN_SPREAD),
]


@pytest.mark.parametrize(("model", "resolution", "duration", "expected", "spread"), PRIOR_ROWS)
def test_each_row_of_the_prior(
    model: str | None, resolution: str | None, duration: float | None, expected: float, spread: float
) -> None:
    assert finish_prior(model, resolution, duration) == Prior(expected, spread)


def test_every_prior_in_the_table_is_within_the_providers_stated_times() -> None:
    # "a 1 s 480p video took about 12 s", "most jobs finish within 1 to 3 minutes": nothing under
    # 10 s, nothing over about 5 minutes, longer videos and more pixels never faster.
    for (model, resolution), (fixed, per_second) in FINISH_PRIORS.items():
        assert fixed > 0 and per_second > 0
        assert 10 <= finish_prior(model, resolution, 1).expected <= finish_prior(model, resolution, 15).expected <= 330


def test_the_job_record_gives_the_prior_its_facts() -> None:
    assert job_prior(JOB) == Prior(42.0, KNOWN_SPREAD)
    from_request = replace(JOB, model=None, request={"model": "grok-imagine-video-1.5", "resolution": "720p"})
    assert job_prior(from_request) == Prior(12 + 12 * 8, UNKNOWN_SPREAD)  # no duration: 8 s, guessed
    assert job_prior(replace(JOB, request={"duration": True})).spread == UNKNOWN_SPREAD  # a bool is no duration
    assert job_prior(replace(JOB, model=None, request={})) == Prior(54.0, UNKNOWN_SPREAD)  # a tracked job


# --- the forecast -----------------------------------------------------------------------------

FORECAST_ROWS = [
    # (progress, seconds since the start, earliest, latest, late after), all seconds after the start
    (None, 5, LOW, HIGH + 20, HIGH + 20),  # the prior's window; "done" up to a refresh (20 s) later
    (0, 5, LOW, HIGH + 20, HIGH + 20),  # 0 %: not started, as good as no progress
    (None, 50, 50, HIGH + 20, HIGH + 20),  # not done by now: from now
    (30, 40, 70, 140, OVERDUE * HIGH),  # the read refresh was 20-40 s in: 47-133 s; done seen 70-140
    (60, 30, 20, 50, OVERDUE * HIGH),
    (90, 40, 30, 60, OVERDUE * HIGH),  # within a refresh or two
    (99, 40, 30, 60, OVERDUE * HIGH),
    (100, 40, 30, 60, OVERDUE * HIGH),  # "100 %" but not done: as 99 %
]


@pytest.mark.parametrize(("progress", "elapsed", "earliest", "latest", "late"), FORECAST_ROWS)
def test_each_row_of_the_forecast(
    progress: int | None, elapsed: float, earliest: float, latest: float, late: float
) -> None:
    seen = forecast(JOB, progress, now=START + elapsed)
    window = (seen.started_at, seen.earliest, seen.latest, seen.late_after)
    assert window == pytest.approx((START, START + earliest, START + latest, START + late), abs=0.01)


def test_the_forecast_counts_from_the_submission_else_the_registration() -> None:
    tracked = replace(JOB, submitted_at=None, registered_at=START + 100)
    assert forecast(tracked, 90, now=START + 140).started_at == START + 100
    assert forecast(replace(JOB, registered_at=START + 100), 90, now=START + 140).started_at == START


def test_with_an_exact_refresh_the_window_is_one_refresh_wide() -> None:
    # 80 % read at 100 s, refreshes exactly every 15 s: the refresh read was 85-100 s in, the finish
    # 105-125 s, so "done" shows at the read refresh plus two: 115-130 s.
    seen = forecast(JOB, 80, now=START + 100, tolerance=0)
    assert (seen.earliest - START, seen.latest - START) == pytest.approx((115, 130))


# --- the next poll ----------------------------------------------------------------------------

GAP_ROWS = [
    # (name, progress, seconds since the start, the gap without jitter)
    ("before the window: 10 s into it", 30, 40, 70 + 10 - 40),
    ("far before it: the cap", 2, 40, 60),
    ("inside it: 10 s", 90, 40, 10),
    ("its end sooner than 10 s: the floor", None, HIGH + 20 - 3, 5),
    ("past the prior's window without progress: late, growing", None, HIGH + 20 + 40, 10 + 0.25 * 40),
    ("long late: the cap", None, HIGH + 20 + 400, 60),
    ("stuck at 99 % past 3x the prior's window: late", 99, OVERDUE * HIGH + 100, 10 + 0.25 * 100),
    ("99 % before that: still 10 s", 99, OVERDUE * HIGH - 10, 10),
]


@pytest.mark.parametrize(("name", "progress", "elapsed", "gap"), GAP_ROWS, ids=[r[0] for r in GAP_ROWS])
def test_each_row_of_the_next_poll(name: str, progress: int | None, elapsed: float, gap: float) -> None:
    assert STEADY.gap(JOB, progress, now=START + elapsed) == pytest.approx(gap, abs=0.01)


def test_jitter_only_shortens_a_gap_by_up_to_its_share() -> None:
    for attempts in range(50):
        job = replace(JOB, attempts=attempts)
        steady = STEADY.gap(job, 30, now=START + 40)
        jittered = ProgressSchedule().gap(job, 30, now=START + 40)
        assert steady * 0.8 <= jittered <= steady
        assert jittered == pytest.approx(steady * (1 - 0.2 * jitter_fraction(job.request_id, attempts)))


def test_a_crowd_with_the_same_facts_and_progress_polls_spread_out() -> None:
    gaps = [ProgressSchedule().gap(replace(JOB, request_id=f"job-{i}"), 30, now=START + 40) for i in range(200)]
    assert len({round(g, 1) for g in gaps}) > 50
    assert max(gaps) - min(gaps) > 0.15 * max(gaps)  # spread over most of the 20 % jitter


def test_the_cap_wins_over_the_floor() -> None:
    assert ProgressSchedule(floor=5, cap=3).gap(JOB, 30, now=START + 40) == 3


def test_the_same_inputs_give_the_same_poll() -> None:
    schedule = ProgressSchedule()
    assert schedule.next_poll_at(JOB, 42, now=START + 33) == schedule.next_poll_at(JOB, 42, now=START + 33)


# --- properties -------------------------------------------------------------------------------

jobs = st.builds(
    lambda rid, attempts, model, resolution, duration, submitted: replace(
        JOB,
        request_id=rid,
        attempts=attempts,
        model=model,
        submitted_at=submitted,
        request={k: v for k, v in (("resolution", resolution), ("duration", duration)) if v is not None},
    ),
    st.text("abcdef0123456789-", min_size=1, max_size=36),
    st.integers(min_value=0, max_value=500),
    st.sampled_from([None, "grok-imagine-video", "grok-imagine-video-1.5", "other"]),
    st.sampled_from([None, "480p", "720p", "1080p", "4k"]),
    st.one_of(st.none(), st.integers(min_value=-5, max_value=30), st.floats(allow_nan=False, allow_infinity=False)),
    st.one_of(st.none(), st.integers(min_value=START - 600, max_value=START)),
)
progresses = st.one_of(st.none(), st.integers(min_value=0, max_value=150))
elapsed = st.floats(min_value=0, max_value=4000, allow_nan=False)
schedules = st.builds(
    ProgressSchedule,
    floor=st.floats(min_value=0.5, max_value=15),
    near=st.floats(min_value=1, max_value=30),
    cap=st.floats(min_value=15, max_value=600),
)


@given(job=jobs, progress=progresses, after=elapsed, schedule=schedules)
def test_the_next_poll_is_within_the_floor_and_the_cap(
    job: Job, progress: int | None, after: float, schedule: ProgressSchedule
) -> None:
    now = START + after
    at = schedule.next_poll_at(job, progress, now=now)
    assert now + schedule.floor <= at <= now + schedule.cap


@given(job=jobs, progress=progresses, after=elapsed)
def test_a_pending_answer_reschedules_within_the_floor_and_the_cap_in_whole_seconds(
    job: Job, progress: int | None, after: float
) -> None:
    now = START + after
    action = decide_poll(
        replace(job, deadline_at=START + 10_000), Pending(progress=progress), now=now, policy=PollPolicy()
    )
    assert isinstance(action, Reschedule)
    assert now + 5 <= action.at <= math.ceil(now + 60)


@given(
    job=jobs, low=st.integers(min_value=1, max_value=100), high=st.integers(min_value=1, max_value=100), after=elapsed
)
def test_more_progress_never_polls_later(job: Job, low: int, high: int, after: float) -> None:
    low, high = sorted((low, high))
    now = START + after
    schedule = ProgressSchedule()
    assert schedule.next_poll_at(job, high, now=now) <= schedule.next_poll_at(job, low, now=now)
    assert forecast(job, high, now=now).latest <= forecast(job, low, now=now).latest


@given(job=jobs, progress=progresses, after=elapsed)
def test_the_window_is_ordered_and_ends_after_now(job: Job, progress: int | None, after: float) -> None:
    now = START + after
    seen = forecast(job, progress, now=now)
    started = job.submitted_at or job.registered_at
    assert seen.started_at == started
    if progress:  # "done" shows at a later refresh than the one read
        assert seen.earliest <= seen.latest and seen.latest > now
    else:
        assert seen.earliest >= now or seen.earliest == started + job_prior(job).window[0]


@given(job=jobs, progress=progresses, after=elapsed)
def test_jitter_never_makes_a_poll_later(job: Job, progress: int | None, after: float) -> None:
    now = START + after
    assert ProgressSchedule().gap(job, progress, now=now) <= STEADY.gap(job, progress, now=now)


@given(job=jobs, late=st.floats(min_value=0, max_value=3000), more=st.floats(min_value=0, max_value=3000))
def test_a_late_job_without_progress_waits_longer_the_later_it_is(job: Job, late: float, more: float) -> None:
    late_after = forecast(job, None, now=START).late_after
    assert STEADY.gap(job, None, now=late_after + late) <= STEADY.gap(job, None, now=late_after + late + more)
