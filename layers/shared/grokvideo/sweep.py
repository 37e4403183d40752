"""The poller's sweep: claim due jobs, poll them concurrently, move them on, announce the ends.

One ``Sweeper.run()`` per scheduled invocation. It keeps sweeping while jobs are due and its time
budget lasts, then returns a ``SweepReport`` for metrics. What each poll means for its job is
decided by ``grokvideo.polling.decide_poll`` (its docstring has the table); the sweeper only claims
jobs, runs the polls ``concurrency`` at a time, carries out the actions, delivers owed events and
counts. Sweep-wide reactions: a 429 pauses every poll for ``Retry-After``; a refused key stops the
sweep (no job fails).

A pending job is claimed until the sweep's end, and polled again from memory (``polling.Hold``)
as often as its schedule says before then: writes follow what changes, not how often we ask.

Use (needs AWS or the provider, so not a doctest)::

    report = Sweeper(store, client, publisher, concurrency=16).run(time_left=lambda: 60)
    report.polled
    # -> 12
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import os
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, fields
from typing import Protocol

from aws_lambda_powertools import Logger

from grokvideo.backoff import PollSchedule
from grokvideo.errors import CometApiError
from grokvideo.events import DetailType, Publisher
from grokvideo.jobs import COPY_WATCHDOG, DueJob, Job, JobStore
from grokvideo.models import ArchiveFailureReason, Failed, JobState, PollStatus, Succeeded
from grokvideo.outbox import RELAY_AFTER, Relay
from grokvideo.polling import (
    FRESH_ID_GRACE,
    MISSING_URL_LIMIT,
    Finish,
    Hold,
    Pause,
    PollAction,
    PollPolicy,
    RemindCopy,
    Reschedule,
    Stop,
    decide_poll,
    decide_stalled_copy,
    follow_up,
    reschedule_at,
)
from grokvideo.ratelimit import PollBudget
from grokvideo.schedule import ProgressSchedule
from grokvideo.tasks import TaskResumer

logger = Logger(child=True)

MESSAGE_LIMIT = 1000


class StatusSource(Protocol):
    def get_video(self, request_id: str) -> PollStatus: ...


@dataclass
class SweepReport:
    """What one invocation did; the handler turns it into metrics."""

    polled: int = 0
    succeeded: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # by reason
    rescheduled: int = 0  # pending answers that let their job go (a write only if something changed)
    held: int = 0  # pending answers whose job this sweep polls again from memory (no write)
    events_published: int = 0
    publish_errors: int = 0
    poll_errors: Counter[str] = field(default_factory=Counter)  # by error class
    lost_claims: int = 0
    unexpected_errors: int = 0
    oldest_owed_seconds: int = 0  # age of the oldest owed event this sweep found (0: none)
    stalled_copies: int = 0  # succeeded jobs no copy had settled within the watchdog
    passes: int = 0
    items_read: int = 0
    auth_failed: bool = False
    rate_limited: bool = False
    duration_seconds: float = 0.0
    provider_latency_ms: float = 0.0  # p90 of this sweep's status calls (``tail_ms``; 0: none made)

    @property
    def idle(self) -> bool:
        """Nothing happened: no job was due or claimed, nothing failed, nothing was owed.

        >>> SweepReport(passes=1, items_read=4, duration_seconds=0.01).idle, SweepReport(lost_claims=1).idle
        (True, False)
        """
        quiet = {"passes", "items_read", "duration_seconds"}
        return all(not getattr(self, f.name) for f in fields(self) if f.name not in quiet)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready (``dataclasses.asdict`` would turn the Counters into tuple-keyed Counters)."""
        out: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["failed"] = dict(self.failed)
        out["poll_errors"] = dict(self.poll_errors)
        return out


class RateGate:
    """Shared pause: after a 429 every worker waits until the provider's Retry-After has passed."""

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self._clock, self._sleep = clock, sleep
        self._open_at = 0.0
        self._lock = threading.Lock()

    @property
    def open_at(self) -> float:
        return self._open_at

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._open_at = max(self._open_at, self._clock() + seconds)

    def wait(self, give_up_at: float) -> bool:
        """Block until open; False (without waiting) when it opens only after ``give_up_at``."""
        while (delay := self._open_at - self._clock()) > 0:
            if self._open_at > give_up_at:
                return False
            self._sleep(delay)
        return True


class Sweeper:
    """Polls every due job once per pass, ``concurrency`` at a time."""

    def __init__(
        self,
        store: JobStore,
        client: StatusSource,
        publisher: Publisher,
        *,
        concurrency: int = 16,
        schedule: PollSchedule | None = None,
        pending_schedule: ProgressSchedule | None = None,
        lease_seconds: int = 120,
        sweep_seconds: float = 50,
        relay_after: int = RELAY_AFTER,
        fresh_id_grace: int = FRESH_ID_GRACE,
        missing_url_limit: int = MISSING_URL_LIMIT,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        owner: str | None = None,
        budget: PollBudget | None = None,
        tasks: TaskResumer | None = None,
    ) -> None:
        self.store, self.client, self.publisher = store, client, publisher
        self.concurrency = concurrency
        self.schedule = schedule or PollSchedule()
        self.lease_seconds = lease_seconds
        self.sweep_seconds = sweep_seconds
        self.relay_after = relay_after
        self.policy = PollPolicy(
            backoff=self.schedule,
            pending=pending_schedule or ProgressSchedule(),
            fresh_id_grace=fresh_id_grace,
            missing_url_limit=missing_url_limit,
        )
        self.clock, self.sleep = clock, sleep
        self.relay = Relay(store, publisher, clock=clock, tasks=tasks)
        self.owner = owner or f"sweep-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.gate = RateGate(clock, sleep)
        self.budget = budget  # the provider's rate, shared with every other poller (None: unpaced)
        self._shards: tuple[int, ...] | None = None  # None: every shard
        # ``concurrency`` bounds calls in flight to the provider; the pool has twice as many
        # threads so table writes and PutEvents of finished polls overlap the next polls.
        self._api_slots = threading.BoundedSemaphore(concurrency)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._report = SweepReport()
        self._give_up_at = 0.0
        self._index_due_at: float | None = 0.0  # the due index's earliest entry, as last read
        self._hold_until = 0  # pending claims last until then (0: no holding, every change written)
        # Held jobs, earliest poll first: (at, tie-break, job as claimed, polls this sweep made).
        self._held: list[tuple[float, int, Job, int]] = []
        self._tie = itertools.count()
        self._call_ms: list[float] = []  # each status call's duration, answered or failed

    @property
    def report(self) -> SweepReport:
        return self._report

    # --- the loop ---------------------------------------------------------------------------

    def run(
        self,
        *,
        time_left: Callable[[], float] | None = None,
        safety_margin: float = 15,
        shards: Sequence[int] | None = None,
    ) -> SweepReport:
        """Sweep until nothing is due within the budget, the budget ends, or the key is refused.

        ``time_left`` (seconds, e.g. from the Lambda context) bounds the budget so an invocation
        never times out mid-write. ``shards``: sweep only those (``grokvideo.fanout``), default all.
        """
        self._shards = None if shards is None else tuple(shards)
        started = self.clock()
        # Hard stop: no new poll may start after it (the invocation must end cleanly). The first
        # pass always runs; further passes only within ``sweep_seconds``.
        self._give_up_at = float("inf") if time_left is None else started + time_left() - safety_margin
        sweep_until = min(started + self.sweep_seconds, self._give_up_at)
        # The claims outlast the sweep's last pass, so no pass claims a job this sweep let go.
        self._hold_until = math.ceil(sweep_until) if self.sweep_seconds > 0 else 0
        self._held.clear()
        self._index_due_at = -math.inf  # the first pass reads the index
        reads_before = self.store.items_read
        with ThreadPoolExecutor(max_workers=self.concurrency * 2, thread_name_prefix="poll") as pool:
            while not self._stop.is_set():
                worked = self._pass(pool)
                self._report.passes += 1
                if self._stop.is_set():
                    break
                next_at = self._next_at()
                if next_at is None:
                    break  # nothing pending at all
                delay = max(next_at - self.clock(), 0.0 if worked else 1.0)
                if self.clock() + delay >= sweep_until:
                    break
                self.sleep(delay)
        self._report.items_read = self.store.items_read - reads_before
        self._report.duration_seconds = self.clock() - started
        self._report.provider_latency_ms = tail_ms(self._call_ms)
        return self._report

    def _next_at(self) -> float | None:
        """When the next poll is due: a held job's, or the earliest in the index (None: nothing)."""
        stored = self._index_due_at = self.store.next_due_at(self._shards)
        with self._lock:
            held = self._held[0][0] if self._held else None
        return min((t for t in (stored, held) if t is not None), default=None)

    def _take_held(self, now: float) -> list[tuple[Job, int]]:
        taken = []
        with self._lock:
            while self._held and self._held[0][0] <= now:
                _, _, job, polls = heapq.heappop(self._held)
                taken.append((job, polls))
        return taken

    def _pass(self, pool: ThreadPoolExecutor) -> int:
        """Submit every job due now, held ones first; return how many this sweep polled or claimed."""
        now = int(self.clock())
        slots = threading.BoundedSemaphore(self.concurrency * 4)  # bounded read-ahead
        futures: list[Future[bool]] = [pool.submit(self._repoll, job, polls) for job, polls in self._take_held(now)]
        # A pass woken only for held jobs skips the index: its earliest entry, read just before
        # the wait, was not due yet (a job registered since is due after its first delay).
        index_due = self._index_due_at is not None and self._index_due_at <= now
        for job in self._due_until_stopped(now) if index_due else ():
            slots.acquire()
            future = pool.submit(self._work, job)
            future.add_done_callback(lambda _: slots.release())
            futures.append(future)
        wait(futures)
        return sum(1 for f in futures if f.result())

    def _due_until_stopped(self, now: int) -> Iterator[DueJob]:
        """Due jobs, page by page; no further page is read once the sweep stops or runs out of time."""
        for page in self.store.due(now, shards=self._shards):
            for job in page:
                if self._stop.is_set() or self.clock() >= self._give_up_at:
                    return
                yield job

    # --- one job ----------------------------------------------------------------------------

    def _work(self, due: DueJob) -> bool:
        """Claim a due job and move it on; False when another sweep had claimed it."""
        with self._guard(due.request_id):
            job = self._claim(due)
            if job is None:
                self._count(lost_claims=1)
                return False
            if job.outbox:
                self._note_owed(job)
                delivered = self._deliver(job)
                # A pending job that owed its Submitted event still needs its poll (the claim is ours).
                if delivered is None or delivered.state is not JobState.PENDING:
                    return True
                job = delivered
            if job.state is JobState.SUCCEEDED:
                self._stalled_copy(job)
            elif job.state is not JobState.PENDING:
                logger.warning("settled job left in the due index: retiring it", extra={"request_id": due.request_id})
                self.store.retire(job, owner=self.owner)
            elif self._stop.is_set():
                self.store.release(job, owner=self.owner, at=int(self.clock()))
            else:
                self._poll(job)
        return True

    def _repoll(self, job: Job, polls: int) -> bool:
        """Poll a job this sweep holds (its claim lasts until the sweep's end)."""
        with self._guard(job.request_id):
            if not self._stop.is_set():
                self._poll(job, polls + 1)
        return True

    @contextlib.contextmanager
    def _guard(self, request_id: str) -> Iterator[None]:
        """One job's surprise must not end the sweep: it is logged and counted, and the job's
        claim ends by itself (it is due again then)."""
        try:
            yield
        except Exception:
            logger.exception("unexpected error while sweeping a job", extra={"request_id": request_id})
            self._count(unexpected_errors=1)

    def _claim(self, due: DueJob) -> Job | None:
        """A pending job's claim is also its reschedule, to the backoff its poll will need if it
        answers pending (``JobStore.claim_poll``), or the sweep's end if later (the sweep holds it
        until then); a job owing an event or a copy is leased."""
        now = int(self.clock())
        if due.state is JobState.PENDING:
            at = max(reschedule_at(due.attempts or 0, now=now, policy=self.policy), self._hold_until)
            return self.store.claim_poll(due, owner=self.owner, now=now, next_poll_at=at)
        return self.store.claim(due.request_id, owner=self.owner, now=now, lease_seconds=self.lease_seconds)

    def _poll(self, job: Job, polls: int = 1) -> None:
        with self._api_slots:
            # Both checks come after the slot is ours: a 429 or a 401 may have arrived while this
            # job waited for it.
            if not self.gate.wait(self._give_up_at):
                self.store.release(job, owner=self.owner, at=int(self.gate.open_at) + 1)
                return
            if not self._wait_for_budget():
                # The shared rate has no slot for it within this sweep: the next one polls it.
                self.store.release(job, owner=self.owner, at=int(self.clock()) + 1)
                return
            if self._stop.is_set():
                self.store.release(job, owner=self.owner, at=int(self.clock()))
                return
            answer: PollStatus | CometApiError
            called = self.clock()
            try:
                answer = self.client.get_video(job.request_id)
            except CometApiError as err:
                answer = err
            self._note_call(self.clock() - called)
            action = decide_poll(job, answer, now=self.clock(), policy=self.policy)
            # Sweep-wide reactions happen before the slot frees, so no waiting job polls into a
            # rate limit or with a refused key.
            if isinstance(action, Pause):
                self.gate.pause(action.seconds)
                if self.budget is not None:
                    self.budget.pause(action.seconds)  # every other poller waits too
            elif isinstance(action, Stop):
                self._stop.set()
        self._count_answer(job, answer)
        self._carry_out(job, action, polls)

    def _wait_for_budget(self) -> bool:
        """Wait for this poll's slot of the shared rate; False when none starts in this sweep."""
        if self.budget is None:
            return True
        at = self.budget.next_slot(give_up_at=self._give_up_at)
        if at is None:
            return False
        if (delay := at - self.clock()) > 0:
            self.sleep(delay)
        return True

    def _carry_out(self, job: Job, action: PollAction, polls: int = 1) -> None:
        match action:
            case Finish(outcome):
                self._finish(job, outcome)
            case Reschedule():
                now, until = self.clock(), self._hold_until
                step = follow_up(job, action, now=now, hold_until=until, policy=self.policy, polls=polls)
                if isinstance(step, Hold):
                    self._hold(job, step.at, polls)
                    return
                # The claim already rescheduled the job; write only what the answer changed.
                changes = step.changes
                moved = not changes or self.store.reschedule(job, owner=self.owner, **changes) is not None
                self._count(rescheduled=1 if moved else 0, lost_claims=0 if moved else 1)
            case Pause(seconds, at):
                logger.warning("provider rate limit: pausing the sweep", extra={"retry_after": seconds})
                with self._lock:
                    self._report.rate_limited = True
                self.store.release(job, owner=self.owner, at=at)
            case Stop():
                logger.error("provider refused our API key: stopping the sweep, no job is failed")
                with self._lock:
                    self._report.auth_failed = True
                self.store.release(job, owner=self.owner, at=int(self.clock()))

    def _count_answer(self, job: Job, answer: PollStatus | CometApiError) -> None:
        if isinstance(answer, CometApiError):
            self._count_error(type(answer).__name__)
            logger.warning(
                "poll failed",
                extra={"request_id": job.request_id, "error": type(answer).__name__, "status": answer.status},
            )
        else:
            self._count(polled=1)

    def _stalled_copy(self, job: Job) -> None:
        """A succeeded job no copy has settled within the watchdog: ask again, or give up."""
        action = decide_stalled_copy(job, watchdog_seconds=COPY_WATCHDOG)
        logger.warning("no copy settled this job: " + type(action).__name__, extra={"request_id": job.request_id})
        if isinstance(action, RemindCopy):
            to_state, outbox = JobState.SUCCEEDED, DetailType.SUCCEEDED
            changes: dict[str, object] = {"copy_reminders": job.copy_reminders + 1}
        else:
            to_state, outbox = JobState.ARCHIVE_FAILED, DetailType.ARCHIVE_FAILED
            changes = {"reason": ArchiveFailureReason.TRANSFER_FAILED.value, "message": action.message}
        moved = self.store.transition(
            job,
            to_state=to_state,
            outbox=outbox,
            now=int(self.clock()),
            relay_after=self.relay_after,
            owner=self.owner,
            changes=changes,
        )
        self._count(stalled_copies=1, lost_claims=0 if moved else 1)
        if moved is not None:
            self._deliver(moved)

    def _finish(self, job: Job, outcome: Succeeded | Failed) -> None:
        now = int(self.clock())
        if isinstance(outcome, Succeeded):
            to_state, changes = (
                JobState.SUCCEEDED,
                {
                    "video_url": outcome.video_url,
                    "duration": outcome.duration,
                    "model": outcome.model or job.model,
                    "cost_usd": outcome.cost_usd,
                    "completed_at": outcome.completed_at or now,
                    "submitted_at": job.submitted_at or outcome.submitted_at,
                    "progress": 100,
                },
            )
            outbox = DetailType.SUCCEEDED
        else:
            to_state, changes = (
                JobState.FAILED,
                {
                    "reason": outcome.reason.value,
                    "message": outcome.message[:MESSAGE_LIMIT],
                    "completed_at": now,
                },
            )
            outbox = DetailType.FAILED
        moved = self.store.transition(
            job,
            to_state=to_state,
            outbox=outbox,
            now=now,
            relay_after=self.relay_after,
            owner=self.owner,
            changes=changes,
        )
        if moved is None:
            self._count(lost_claims=1)
            return
        with self._lock:
            if isinstance(outcome, Succeeded):
                self._report.succeeded += 1
            else:
                self._report.failed[outcome.reason.value] += 1
        logger.info("job finished", extra={"request_id": job.request_id, "state": to_state.value})
        self._deliver(moved)

    def _deliver(self, job: Job) -> Job | None:
        """Publish the event the job owes; only once accepted does it leave the due index."""
        delivered = self.relay.deliver(job)
        self._count(events_published=0 if delivered is None else 1, publish_errors=1 if delivered is None else 0)
        return delivered

    def _hold(self, job: Job, at: float, polls: int) -> None:
        with self._lock:
            heapq.heappush(self._held, (at, next(self._tie), job, polls))
            self._report.held += 1

    # --- bookkeeping ------------------------------------------------------------------------

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self._report, name, getattr(self._report, name) + delta)

    def _note_owed(self, job: Job) -> None:
        """An event still owed when a sweep finds it: the writer's own delivery failed or it died."""
        age = int(self.clock()) - (job.owed_since or job.registered_at)
        with self._lock:
            self._report.oldest_owed_seconds = max(self._report.oldest_owed_seconds, age)

    def _count_error(self, kind: str) -> None:
        with self._lock:
            self._report.poll_errors[kind] += 1

    def _note_call(self, seconds: float) -> None:
        with self._lock:
            self._call_ms.append(max(seconds, 0.0) * 1000)


def tail_ms(call_ms: Sequence[float]) -> float:
    """The 90th percentile of a sweep's status-call durations, rounded to the millisecond (0: none).

    One number per sweep keeps the ``ProviderLatency`` metric one value per invocation whatever
    the number of polls (``grokvideo.telemetry``); p90 shows a slow provider before the mean does,
    and, unlike the maximum, not one stray slow call.

    >>> tail_ms([]), tail_ms([120.4]), tail_ms(range(1, 101))
    (0.0, 120.0, 90.0)
    >>> tail_ms([100] * 19 + [2000]), tail_ms([100] * 8 + [2000] * 2)  # one slow call in 20; 2 in 10
    (100.0, 2000.0)
    """
    if not call_ms:
        return 0.0
    return float(round(statistics.quantiles(call_ms, n=10, method="inclusive")[-1]))
