"""decide_poll row by row, against the table in grokvideo/polling.py's docstring; what a claim
schedules and what a pending answer still writes, row by row."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest

from grokvideo.backoff import PollSchedule
from grokvideo.errors import (
    AuthError,
    CometApiError,
    InvalidRequestError,
    NotFoundError,
    NotSentError,
    RateLimitedError,
    RetryableError,
)
from grokvideo.jobs import Job
from grokvideo.models import Failed, FailureReason, JobState, Pending, PollStatus, Succeeded
from grokvideo.polling import (
    Finish,
    Hold,
    Pause,
    PollPolicy,
    Record,
    Reschedule,
    Stop,
    changes_to_record,
    decide_poll,
    follow_up,
    reschedule_at,
)
from grokvideo.schedule import ProgressSchedule

NOW = 10_000
JOB = Job("4b2cd27e", JobState.PENDING, registered_at=NOW - 300, deadline_at=NOW + 3300, attempts=2)
OVERDUE = replace(JOB, deadline_at=NOW)  # now >= deadline: overdue
FRESH = replace(JOB, registered_at=NOW - 10)
DONE = Succeeded("https://vidgen.x.ai/v.mp4", duration=1, model="grok-imagine-video", cost_usd=0.05)
BLOCKED = Failed(FailureReason.MODERATED, "blocked")


def policy() -> PollPolicy:
    return PollPolicy(backoff=PollSchedule(first_delay=5, cap=60, rng=random.Random(3)))


def reason(action: object) -> FailureReason | None:
    return action.outcome.reason if isinstance(action, Finish) and isinstance(action.outcome, Failed) else None


# (name, job, answer, expected action type, expected failure reason or None)
ROWS: list[tuple[str, Job, PollStatus | CometApiError, type, FailureReason | None]] = [
    ("pending", JOB, Pending(progress=40), Reschedule, None),
    ("pending-overdue", OVERDUE, Pending(progress=99), Finish, FailureReason.TIMED_OUT),
    ("succeeded", JOB, DONE, Finish, None),
    ("succeeded-overdue", OVERDUE, DONE, Finish, None),
    ("failed", JOB, BLOCKED, Finish, FailureReason.MODERATED),
    ("failed-overdue", OVERDUE, BLOCKED, Finish, FailureReason.MODERATED),
    ("no-url-first", JOB, Pending(missing_url=True), Reschedule, None),
    (
        "no-url-third",
        replace(JOB, missing_url_polls=2),
        Pending(missing_url=True),
        Finish,
        FailureReason.PROVIDER_FAILED,
    ),
    ("no-url-overdue", OVERDUE, Pending(missing_url=True), Finish, FailureReason.TIMED_OUT),
    ("5xx", JOB, RetryableError("503", status=503), Reschedule, None),
    ("not-sent", JOB, NotSentError("could not connect"), Reschedule, None),
    ("5xx-overdue", OVERDUE, RetryableError("503", status=503), Finish, FailureReason.TIMED_OUT),
    ("unreadable", JOB, CometApiError("HTTP 301"), Reschedule, None),
    ("429", JOB, RateLimitedError("slow", retry_after=7), Pause, None),
    ("429-overdue", OVERDUE, RateLimitedError("slow", retry_after=7), Pause, None),
    ("401", JOB, AuthError("refused", status=401), Stop, None),
    ("401-overdue", OVERDUE, AuthError("refused", status=401), Stop, None),
    ("unknown-fresh", FRESH, NotFoundError("task_not_exist", status=400), Reschedule, None),
    ("unknown-old", JOB, NotFoundError("task_not_exist", status=400), Finish, FailureReason.NOT_FOUND),
    ("unknown-fresh-overdue", replace(FRESH, deadline_at=NOW), NotFoundError("x"), Finish, FailureReason.NOT_FOUND),
    ("400", JOB, InvalidRequestError("bad", status=400), Finish, FailureReason.REJECTED),
    ("400-moderated", JOB, InvalidRequestError("blocked", status=400, moderated=True), Finish, FailureReason.MODERATED),
    ("422-overdue", OVERDUE, InvalidRequestError("bad", status=422), Finish, FailureReason.REJECTED),
]


@pytest.mark.parametrize(("name", "job", "answer", "kind", "why"), ROWS, ids=[r[0] for r in ROWS])
def test_each_row_of_the_table(
    name: str, job: Job, answer: PollStatus | CometApiError, kind: type, why: FailureReason | None
) -> None:
    action = decide_poll(job, answer, now=NOW, policy=policy())
    assert type(action) is kind
    assert reason(action) == why


def test_a_pending_answer_is_timed_by_its_progress() -> None:
    rules = policy()
    action = decide_poll(replace(JOB, missing_url_polls=1), Pending(progress=40), now=NOW, policy=rules)
    assert isinstance(action, Reschedule)
    assert (action.progress, action.missing_url_polls) == (40, 1)
    assert action.at == math.ceil(rules.pending.next_poll_at(JOB, 40, now=NOW))  # whole seconds, never earlier


def test_a_pending_answer_never_uses_the_backoff() -> None:
    # The backoff's rng would move if it were asked: the same policy gives the same claim backoff.
    rules = policy()
    for progress in (None, 0, 40, 99):
        decide_poll(JOB, Pending(progress=progress), now=NOW, policy=rules)
    assert reschedule_at(2, now=NOW, policy=rules) == reschedule_at(2, now=NOW, policy=policy())


@pytest.mark.parametrize(
    "answer", [RetryableError("503", status=503), CometApiError("HTTP 301"), Pending(missing_url=True)], ids=repr
)
def test_errors_and_a_done_without_url_keep_the_claims_backoff(answer: PollStatus | CometApiError) -> None:
    action = decide_poll(JOB, answer, now=NOW, policy=policy())
    assert isinstance(action, Reschedule) and action.at is None
    # what the claim wrote: attempt 3, ceiling min(60, 5 * 2**3) = 40, equal jitter -> 20..40 s, +1 s
    assert NOW + 20 <= reschedule_at(2, now=NOW, policy=policy()) <= NOW + 41


def test_the_pending_schedule_is_the_policys() -> None:
    eager = PollPolicy(pending=ProgressSchedule(floor=1, near=2, cap=3))
    action = decide_poll(JOB, Pending(progress=1), now=NOW, policy=eager)  # far from done: the cap
    assert isinstance(action, Reschedule) and action.at == NOW + 3


def test_an_error_backoff_does_not_touch_progress() -> None:
    action = decide_poll(replace(JOB, progress=70), RetryableError("timeout"), now=NOW, policy=policy())
    assert action == Reschedule()


def test_a_claim_schedules_the_backoff_of_the_poll_it_is_for() -> None:
    # A job polled twice is claimed for its 3rd poll: ceiling min(60, 5 * 2**3) = 40, equal
    # jitter -> 20..40 s, +1 s rounding.
    times = [reschedule_at(2, now=NOW, policy=policy()) - NOW for _ in range(50)]
    assert all(20 <= t <= 41 for t in times)
    # The first poll of a new job (none made yet): ceiling 10 -> 5..10 s.
    assert all(5 <= reschedule_at(0, now=NOW, policy=policy()) - NOW <= 11 for _ in range(50))


CLAIMED = replace(JOB, attempts=3, progress=40, next_poll_at=NOW + 30)  # as its claim left it

# (name, what the answer said, what must still be written)
RECORD_ROWS: list[tuple[str, Reschedule, dict[str, int]]] = [
    ("nothing-said", Reschedule(), {}),
    ("same-progress", Reschedule(progress=40, missing_url_polls=0), {}),
    ("progress-moved", Reschedule(progress=55, missing_url_polls=0), {"progress": 55}),
    ("progress-unknown", Reschedule(progress=None, missing_url_polls=0), {}),  # kept, not erased
    ("first-done-without-url", Reschedule(progress=40, missing_url_polls=1), {"missing_url_polls": 1}),
    ("both", Reschedule(progress=99, missing_url_polls=1), {"progress": 99, "missing_url_polls": 1}),
    ("same-time", Reschedule(at=NOW + 30), {}),
    ("another-time", Reschedule(at=NOW + 5), {"next_poll_at": NOW + 5}),
]


@pytest.mark.parametrize(("name", "action", "writes"), RECORD_ROWS, ids=[r[0] for r in RECORD_ROWS])
def test_a_pending_answer_writes_only_what_differs_from_the_claimed_job(
    name: str, action: Reschedule, writes: dict[str, int]
) -> None:
    assert changes_to_record(CLAIMED, action) == writes


def test_a_first_progress_is_a_change() -> None:
    assert changes_to_record(replace(CLAIMED, progress=None), Reschedule(progress=0)) == {"progress": 0}


def test_a_pause_brings_the_job_back_after_retry_after() -> None:
    action = decide_poll(JOB, RateLimitedError("slow", retry_after=7.5), now=NOW, policy=policy())
    assert action == Pause(7.5, at=NOW + 8)


def test_a_success_is_passed_on_unchanged() -> None:
    assert decide_poll(JOB, DONE, now=NOW, policy=policy()) == Finish(DONE)


def test_the_fresh_id_grace_is_the_policys() -> None:
    generous = PollPolicy(backoff=PollSchedule(rng=random.Random(1)), fresh_id_grace=600)
    assert isinstance(decide_poll(JOB, NotFoundError("x"), now=NOW, policy=generous), Reschedule)


# --- follow_up: hold a pending job in the sweep's memory, or what to write as it leaves ------------

END = NOW + 40  # the sweep's end, and the claim's
HELD_CLAIM = replace(JOB, attempts=3, progress=40, next_poll_at=END)
BACKOFF_CLAIMED = replace(HELD_CLAIM, next_poll_at=NOW + 20)  # a sweep that does not hold

# (name, claimed job, action, hold_until, expected)
FOLLOW_UPS: list[tuple[str, Job, Reschedule, int, Hold | Record]] = [
    (
        "before the end: held",
        HELD_CLAIM,
        Reschedule(at=NOW + 10, progress=60, missing_url_polls=0),
        END,
        Hold(NOW + 10),
    ),
    ("at the end: let go", HELD_CLAIM, Reschedule(at=END, progress=40, missing_url_polls=0), END, Record({})),
    ("a tick after: let go", HELD_CLAIM, Reschedule(at=END + 60, progress=40, missing_url_polls=0), END, Record({})),
    (
        "later than a tick: written",
        HELD_CLAIM,
        Reschedule(at=END + 61, progress=40, missing_url_polls=0),
        END,
        Record({"next_poll_at": END + 61}),
    ),
    (
        "progress moved, let go: written",
        HELD_CLAIM,
        Reschedule(at=END + 5, progress=70, missing_url_polls=0),
        END,
        Record({"progress": 70}),
    ),
    (
        "a URL missing: counted at once",
        HELD_CLAIM,
        Reschedule(progress=40, missing_url_polls=1),
        END,
        Record({"missing_url_polls": 1, "next_poll_at": -1}),
    ),
    (
        "no holding: the forecast",
        BACKOFF_CLAIMED,
        Reschedule(at=NOW + 30, progress=40),
        NOW,
        Record({"next_poll_at": NOW + 30}),
    ),
    ("no holding: the claim's time", BACKOFF_CLAIMED, Reschedule(at=NOW + 20, progress=40), NOW, Record({})),
    ("no holding, an error: the claim's backoff", BACKOFF_CLAIMED, Reschedule(), NOW, Record({})),
]


@pytest.mark.parametrize(
    ("name", "claimed", "action", "hold_until", "expected"), FOLLOW_UPS, ids=[r[0] for r in FOLLOW_UPS]
)
def test_follow_up(name: str, claimed: Job, action: Reschedule, hold_until: int, expected: Hold | Record) -> None:
    got = follow_up(claimed, action, now=NOW, hold_until=hold_until, policy=policy())
    if isinstance(expected, Record) and expected.changes.get("next_poll_at") == -1:
        # the backoff of the next attempt, jittered: within the schedule's bounds, before the claim's end
        assert isinstance(got, Record) and got.changes["missing_url_polls"] == 1
        assert NOW < got.changes["next_poll_at"] < END
    else:
        assert got == expected


def test_an_error_while_holding_is_polled_again_after_its_backoff_from_memory() -> None:
    got = follow_up(HELD_CLAIM, Reschedule(), now=NOW, hold_until=NOW + 120, policy=policy())
    assert isinstance(got, Hold) and NOW + 5 <= got.at <= NOW + 61


def test_repeated_errors_in_one_sweep_back_off_further() -> None:
    wide = PollPolicy(backoff=PollSchedule(first_delay=5, cap=600, rng=random.Random(3)))
    first = follow_up(HELD_CLAIM, Reschedule(), now=NOW, hold_until=NOW + 3600, policy=wide, polls=1)  # 4th poll
    fifth = follow_up(HELD_CLAIM, Reschedule(), now=NOW, hold_until=NOW + 3600, policy=wide, polls=5)  # 8th poll
    assert isinstance(first, Hold) and isinstance(fifth, Hold)
    assert first.at <= NOW + 81 < NOW + 301 <= fifth.at  # gaps of 40-80 s, then 300-600 s
