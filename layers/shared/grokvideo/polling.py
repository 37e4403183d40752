"""What one poll means for a job: a pure decision, tested row by row.

``decide_poll(job, answer, now, policy)`` takes the job as claimed, the provider's answer (a
``PollStatus``) or the error the call raised, the time, and the policy, and returns the one action
the sweep carries out:

===================================  =================================  ============================
provider says                        before the job's deadline          past it (one last poll)
===================================  =================================  ============================
pending / unknown status             ``Reschedule`` around the          ``Finish`` TIMED_OUT
                                     forecast finish (progress-aware)
succeeded                            ``Finish`` SUCCEEDED               ``Finish`` SUCCEEDED
failed / expired / moderated         ``Finish`` FAILED with the reason  the same
"done" without a URL                 ``Reschedule``; ``Finish``         ``Finish`` TIMED_OUT
                                     PROVIDER_FAILED after 3 such polls
5xx, timeout, unreadable answer      ``Reschedule`` (this job alone)    ``Finish`` TIMED_OUT
429                                  ``Pause``: every poll waits for    the same (no job fails for
                                     Retry-After, this job with them    our rate)
401 / 403                            ``Stop``: the sweep ends, the job  the same: a refused key is
                                     is released, an alarm fires        our outage, never the job's
unknown id                           ``Reschedule`` while the id is     ``Finish`` NOT_FOUND
                                     fresh (60 s), then ``Finish``
                                     NOT_FOUND
400 / 422                            ``Finish`` FAILED: MODERATED when  the same
                                     the provider says so, else
                                     REJECTED
===================================  =================================  ============================

A job past its deadline is still polled once: the deadline ends a job only on a fresh answer that
says it is not done, so a long outage of ours (a refused key) never times out a finished video.

Two schedules time a pending job's next poll. Its claim (``JobStore.claim_poll``, the one write a
poll needs when nothing changed) moves it to ``reschedule_at``: ``policy.backoff``
(``grokvideo.backoff.PollSchedule``, exponential backoff with jitter over its attempts), which is
what errors, unknown fresh ids and "done" answers without a URL keep. A pending answer's
``Reschedule`` names the time ``policy.pending`` forecasts instead
(``grokvideo.schedule.ProgressSchedule``: around the finish its progress foretells, within 5-60 s);
``changes_to_record`` keeps of it what differs from the job as claimed.

A sweep that runs for a while (the scheduled poller's, ``hold_until`` later than now) claims a
pending job until its own end instead, and ``follow_up`` turns each pending answer into a ``Hold``
(poll again from memory at a time before that end: nothing is written) or a ``Record`` (what to
write as the job leaves the sweep). The next sweep starts within a tick (``PollPolicy.tick``) of
that end and polls whatever is due, so a next poll up to a tick later needs no write either: with
the cap at or below the tick, a pending job costs one write per sweep, however often it is polled.

>>> import random
>>> from grokvideo.errors import RetryableError
>>> from grokvideo.models import JobState
>>> policy = PollPolicy(backoff=PollSchedule(first_delay=5, cap=60, rng=random.Random(1)))
>>> reschedule_at(2, now=100, policy=policy)  # the claim of a job polled twice, for its 3rd poll
123
>>> job = Job("4b2cd27e", JobState.PENDING, registered_at=0, deadline_at=3600, attempts=3, next_poll_at=123)
>>> decide_poll(job, Pending(progress=40), now=100, policy=policy)  # "done" due in 100-160 s: the cap
Reschedule(at=160, progress=40, missing_url_polls=0)
>>> decide_poll(job, Pending(progress=95), now=100, policy=policy)  # due within 20 s: 10 s
Reschedule(at=110, progress=95, missing_url_polls=0)
>>> decide_poll(job, RetryableError("HTTP 503"), now=100, policy=policy)  # the claim's backoff stands
Reschedule(at=None, progress=None, missing_url_polls=None)
>>> decide_poll(job, Pending(), now=3600, policy=policy).outcome.reason
<FailureReason.TIMED_OUT: 'TIMED_OUT'>
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from grokvideo.backoff import PollSchedule
from grokvideo.errors import AuthError, CometApiError, InvalidRequestError, NotFoundError, RateLimitedError
from grokvideo.jobs import Job
from grokvideo.models import Failed, FailureReason, Pending, PollStatus, Succeeded
from grokvideo.schedule import ProgressSchedule

FRESH_ID_GRACE = 60  # seconds a new id may be unknown to the provider (it answers task_not_exist)
MISSING_URL_LIMIT = 3  # "done" answers without a usable URL before the job fails


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How ``decide_poll`` decides: ``pending`` times the next poll of a job still running,
    ``backoff`` the next poll after an error or a "done" without a URL."""

    backoff: PollSchedule = field(default_factory=PollSchedule)
    pending: ProgressSchedule = field(default_factory=ProgressSchedule)
    fresh_id_grace: int = FRESH_ID_GRACE
    missing_url_limit: int = MISSING_URL_LIMIT
    tick: int = 60  # seconds between scheduled sweeps: a job due by the next one needs no write


@dataclass(frozen=True, slots=True)
class Reschedule:
    """Poll the job again, when its claim said (``reschedule_at``) unless ``at`` (epoch seconds)
    says otherwise; ``None`` fields stay as they are."""

    at: int | None = None
    progress: int | None = None
    missing_url_polls: int | None = None


@dataclass(frozen=True, slots=True)
class Finish:
    """Move the job to its end (``SUCCEEDED`` or ``FAILED``) and owe the event."""

    outcome: Succeeded | Failed


@dataclass(frozen=True, slots=True)
class Pause:
    """The provider said 429: no poll starts for ``seconds``; this job comes back after it."""

    seconds: float
    at: int


@dataclass(frozen=True, slots=True)
class Stop:
    """Our key was refused: the sweep stops, the job is released unchanged, nothing fails."""


PollAction = Reschedule | Finish | Pause | Stop


@dataclass(frozen=True, slots=True)
class Hold:
    """Poll the job again at ``at`` (epoch seconds) from the sweep's memory; write nothing."""

    at: float


@dataclass(frozen=True, slots=True)
class Record:
    """Write ``changes`` (``JobStore.reschedule``'s arguments; none: no write) and let the job go."""

    changes: dict[str, int]


# --- a succeeded job the copier has not settled ------------------------------------------------

COPY_REMINDERS = 1  # times the copy is asked for again before the job ends ARCHIVE_FAILED


@dataclass(frozen=True, slots=True)
class RemindCopy:
    """Announce ``Video Generation Succeeded`` again: its copy message was lost (the copier acts on it)."""


@dataclass(frozen=True, slots=True)
class GiveUpCopy:
    """End the job ``ARCHIVE_FAILED`` (``TRANSFER_FAILED``): asking again did not get it copied."""

    message: str


def decide_stalled_copy(job: Job, *, watchdog_seconds: int) -> RemindCopy | GiveUpCopy:
    """A ``SUCCEEDED`` job a sweep found: no copy settled it within ``watchdog_seconds`` of its event.

    >>> from dataclasses import replace
    >>> from grokvideo.models import JobState
    >>> stalled = Job("4b2cd27e", JobState.SUCCEEDED, registered_at=0, deadline_at=3600)
    >>> decide_stalled_copy(stalled, watchdog_seconds=21600)
    RemindCopy()
    >>> decide_stalled_copy(replace(stalled, copy_reminders=1), watchdog_seconds=21600).message[:40]
    'not archived 6.0 h after the provider fi'
    """
    if job.copy_reminders < COPY_REMINDERS:
        return RemindCopy()
    hours = watchdog_seconds / 3600
    return GiveUpCopy(
        f"not archived {hours:.1f} h after the provider finished, though the copy was asked for "
        f"{job.copy_reminders + 1} times (copy messages lost or the copier failing without settling)"
    )


def decide_poll(job: Job, answer: PollStatus | CometApiError, *, now: float, policy: PollPolicy) -> PollAction:
    """The action for ``job`` given one poll's ``answer`` (see the table above)."""
    overdue = now >= job.deadline_at
    if isinstance(answer, RateLimitedError):
        return Pause(answer.retry_after, at=int(now + answer.retry_after) + 1)
    if isinstance(answer, AuthError):
        return Stop()
    if isinstance(answer, Succeeded | Failed):
        return Finish(answer)
    if isinstance(answer, InvalidRequestError):
        reason = FailureReason.MODERATED if answer.moderated else FailureReason.REJECTED
        return Finish(Failed(reason, str(answer)))
    if isinstance(answer, NotFoundError) and (overdue or now - job.registered_at >= policy.fresh_id_grace):
        return Finish(Failed(FailureReason.NOT_FOUND, f"provider does not know this job: {answer}"))
    if overdue:
        return Finish(Failed(FailureReason.TIMED_OUT, f"no result after {int(now - job.registered_at)} s (deadline)"))
    if isinstance(answer, Pending):
        missing = job.missing_url_polls + int(answer.missing_url)
        if missing >= policy.missing_url_limit:
            return Finish(Failed(FailureReason.PROVIDER_FAILED, "completed without a video URL"))
        if answer.missing_url:
            return Reschedule(progress=answer.progress, missing_url_polls=missing)  # the claim's backoff
        at = math.ceil(policy.pending.next_poll_at(job, answer.progress, now=now))
        return Reschedule(at=at, progress=answer.progress, missing_url_polls=missing)
    return Reschedule()  # 5xx, timeouts, unreadable answers, a fresh unknown id: the claim's backoff


def reschedule_at(attempts: int, *, now: float, policy: PollPolicy) -> int:
    """When a job polled ``attempts`` times is due again if the poll about to be made answers
    pending: the jittered backoff of its ``attempts + 1``-th poll, in whole seconds, rounded up.

    A poll's claim writes it before the poll (``JobStore.claim_poll``), as the claim's end.
    """
    return int(now + policy.backoff.delay(attempts + 1)) + 1


def changes_to_record(job: Job, action: Reschedule) -> dict[str, int]:
    """What a pending answer still has to write on ``job``, as its claim left it: the values
    ``action`` gives that differ from the job's (``JobStore.reschedule``'s arguments).

    The claim has already counted the attempt and moved the job to its next poll, so a pending
    answer that changes nothing the job shows writes nothing.

    >>> from grokvideo.models import JobState
    >>> claimed = Job("4b2cd27e", JobState.PENDING, 0, 3600, attempts=3, progress=40, next_poll_at=123)
    >>> changes_to_record(claimed, Reschedule(progress=40, missing_url_polls=0))
    {}
    >>> changes_to_record(claimed, Reschedule(progress=55, missing_url_polls=0))
    {'progress': 55}
    """
    wanted = {"next_poll_at": action.at, "progress": action.progress, "missing_url_polls": action.missing_url_polls}
    current = {"next_poll_at": job.next_poll_at, "progress": job.progress, "missing_url_polls": job.missing_url_polls}
    return {name: value for name, value in wanted.items() if value is not None and value != current[name]}


def follow_up(
    claimed: Job, action: Reschedule, *, now: float, hold_until: float, policy: PollPolicy, polls: int = 1
) -> Hold | Record:
    """After a pending answer: hold ``claimed`` for another poll within this sweep, or what to write.

    ``claimed`` is the job as its claim stored it (``next_poll_at``: the claim's end); ``polls`` how
    many times this sweep has polled it, this poll included; ``hold_until``: the end of the sweep
    (not later than now: a sweep that never holds, and writes every change as it comes).

    - The next poll (``action.at``, else the backoff) falls before ``hold_until``: ``Hold``.
    - Otherwise ``Record`` what the job shows that changed (progress, "done" answers without a URL)
      and the next poll, unless the claim's end already serves it: not earlier, and not more than
      a tick later while holding (the next sweep polls the job at its start).
    - A "done" answer without a URL is a count towards failing the job: recorded at once, with
      the exact time of the next poll.

    >>> import random
    >>> from grokvideo.models import JobState
    >>> policy = PollPolicy(backoff=PollSchedule(first_delay=5, cap=60, rng=random.Random(1)))
    >>> claimed = Job("4b2cd27e", JobState.PENDING, 0, 3600, attempts=3, progress=40, next_poll_at=150)
    >>> follow_up(claimed, Reschedule(at=120, progress=55), now=110, hold_until=150, policy=policy)
    Hold(at=120)
    >>> follow_up(claimed, Reschedule(at=170, progress=55), now=110, hold_until=150, policy=policy)
    Record(changes={'progress': 55})
    >>> follow_up(claimed, Reschedule(at=300, progress=40), now=110, hold_until=150, policy=policy)
    Record(changes={'next_poll_at': 300})
    >>> follow_up(claimed, Reschedule(at=170, progress=40), now=110, hold_until=0, policy=policy)
    Record(changes={'next_poll_at': 170})
    """
    counted = action.missing_url_polls is not None and action.missing_url_polls != claimed.missing_url_polls
    holding = hold_until > now
    at = action.at
    if at is None and holding:  # an error's backoff, which the claim did not write
        at = reschedule_at(claimed.attempts + polls - 1, now=now, policy=policy)
    if holding and not counted and at is not None and at < hold_until:
        return Hold(at)
    claim_ends = claimed.next_poll_at or 0
    slack = policy.tick if holding and not counted else 0
    served = at is None or claim_ends <= at <= claim_ends + slack
    wanted = Reschedule(None if served else at, action.progress, action.missing_url_polls)
    return Record(changes_to_record(claimed, wanted))
