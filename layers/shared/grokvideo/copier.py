"""Copier: a ``Video Generation Succeeded`` job becomes a stored video, exactly once.

The job in the table (not the event) says what to copy, so a forged or stale event cannot point
the copier elsewhere. Outcomes of one delivery:

==============================  ==========================================================
job / copy                      result
==============================  ==========================================================
``SUCCEEDED``, copy ok          manifest beside it, ``STORED`` + ``Video Stored``
object already complete in S3   same, without a second upload (crash after upload)
``STORED`` owing its event      the event is sent again (crash before PutEvents)
``STORED`` / permanent failure  nothing: a duplicate delivery is acknowledged silently
permanent copy error            ``ARCHIVE_FAILED`` + ``Video Archive Failed``, no retry
any other error                 ``RetryCopy(retry_after=10, 60, 300 s...)``: the message
                                comes back that soon; on the last allowed receive the job
                                ends ``ARCHIVE_FAILED`` with ``TRANSFER_FAILED`` whatever
                                the error, and ``RetryCopy(retry_after=0)`` sends the
                                message on to the DLQ (alarm; a redrive copies again)
==============================  ==========================================================

What a failure means is decided by pure functions (``failure_kind``, ``decide``); the
``Copier`` only carries the decision out. Only an error that says it is permanent (a
``PermanentArchiveError``) is; anything else (a retryable ``ArchiveError``, DynamoDB, S3 or
EventBridge trouble, a bug) may pass, so it is retried and then settled like a transfer failure.

If settling itself fails, the job is left as the write left it and the message still fails:
a job whose ``ARCHIVE_FAILED`` write went through owes its event in the due index (the poller
relays it); a job the write never reached is still ``SUCCEEDED`` and its message goes on to
the DLQ. A job already ``STORED`` when a later step failed is never turned into a failure.

>>> decide(failure_kind(ValueError("bad header")), receive_count=1, max_receives=3)
Decision(action=<Action.RETRY: 'retry'>, retry_after=10)
>>> decide(FailureKind.TRANSIENT, receive_count=3, max_receives=3).action
<Action.SETTLE_RETRIES_SPENT: 'settle-retries-spent'>

Use (needs AWS or the provider, so not a doctest)::

    copier.copy("4b2cd27e", receive_count=1)
    # -> CopyResult(request_id='4b2cd27e', state=<JobState.STORED: 'STORED'>, uploaded=True, announced=True)
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from grokvideo.archive import StoredVideo, VideoArchiver
from grokvideo.errors import ArchiveError, GrokVideoError
from grokvideo.events import DetailType, Publisher
from grokvideo.jobs import Job, JobStore
from grokvideo.manifest import build_manifest, manifest_key
from grokvideo.models import ArchiveFailureReason, JobState
from grokvideo.outbox import RELAY_AFTER, Relay

if TYPE_CHECKING:
    from grokvideo.tasks import TaskResumer

logger = Logger(child=True)

LAST_ATTEMPT_WATCH = 360
"""Seconds after a last copy attempt starts when a sweep looks at its job: the copier's timeout
(300 s) and a minute more, so only an attempt that died is caught."""

# Permanent reasons: asking again gets the same answer, so a redelivery does not copy again.
PERMANENT = frozenset(r.value for r in ArchiveFailureReason) - {ArchiveFailureReason.TRANSFER_FAILED.value}
# Seconds before a failed copy's message comes back, by receive count (1st, 2nd, 3rd and later):
# seconds for a blip, minutes for an outage; never the copy queue's 30-minute visibility timeout.
RETRY_DELAYS = (10, 60, 300)


class RetryCopy(GrokVideoError):
    """Fail this SQS record: the message comes back in ``retry_after`` seconds.

    ``retry_after`` is 0 on the last allowed receive: visible at once, the queue moves the message
    to its dead-letter queue at the next receive.
    """

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MissingJob(GrokVideoError):
    """The message names a job the table does not hold (never dropped: it ends in the DLQ)."""


# --- what a failure means (pure) ---------------------------------------------------------------


class FailureKind(StrEnum):
    PERMANENT = "permanent"  # asking again gets the same answer
    TRANSIENT = "transient"  # anything else: it may pass


class Action(StrEnum):
    RETRY = "retry"  # put the message back for ``retry_after`` seconds; the job is untouched
    SETTLE_PERMANENT = "settle-permanent"  # ARCHIVE_FAILED with the error's reason; message done
    SETTLE_RETRIES_SPENT = "settle-retries-spent"  # ARCHIVE_FAILED / TRANSFER_FAILED; message to the DLQ


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    retry_after: int = 0


def failure_kind(error: BaseException) -> FailureKind:
    """Permanent only when the error says so (``PermanentArchiveError``); anything else may pass.

    >>> failure_kind(KeyError("state"))
    <FailureKind.TRANSIENT: 'transient'>
    """
    if isinstance(error, ArchiveError) and not error.retryable:
        return FailureKind.PERMANENT
    return FailureKind.TRANSIENT


def retry_delay(receive_count: int, delays: Sequence[int] = RETRY_DELAYS) -> int:
    """Seconds before the message comes back after failing its ``receive_count``-th receive.

    >>> [retry_delay(n) for n in (1, 2, 3, 4)]
    [10, 60, 300, 300]
    """
    return delays[min(max(receive_count, 1), len(delays)) - 1]


def decide(
    kind: FailureKind, receive_count: int, max_receives: int, *, delays: Sequence[int] = RETRY_DELAYS
) -> Decision:
    """What a failure of ``kind`` on this receive means (the queue allows ``max_receives``)."""
    if kind is FailureKind.PERMANENT:
        return Decision(Action.SETTLE_PERMANENT)
    if receive_count < max_receives:
        return Decision(Action.RETRY, retry_after=retry_delay(receive_count, delays))
    return Decision(Action.SETTLE_RETRIES_SPENT)


def describe(error: BaseException) -> str:
    """A message for the event and the logs: ours are written to be safe; others by type and code only."""
    if isinstance(error, GrokVideoError):
        return str(error)
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        return f"{type(error).__name__} {code} in {error.operation_name}"
    return f"unexpected {type(error).__name__}"


@dataclass(frozen=True, slots=True)
class CopyResult:
    request_id: str
    state: JobState
    uploaded: bool = False
    announced: bool = False
    # Set only by the delivery that moved the job to STORED (once per video), for StoredLatency.
    completed_at: int | None = None
    stored_at: int | None = None


class Copier:
    def __init__(
        self,
        store: JobStore,
        archiver: VideoArchiver,
        publisher: Publisher,
        *,
        bucket: str,
        prefix: str = "videos/",
        max_receives: int = 3,
        retry_delays: Sequence[int] = RETRY_DELAYS,
        relay_after: int = RELAY_AFTER,
        clock: Callable[[], float] = time.time,
        tasks: TaskResumer | None = None,
    ) -> None:
        self.store, self.archiver, self.publisher = store, archiver, publisher
        self.bucket, self.prefix = bucket, prefix
        self.max_receives = max_receives
        self.retry_delays = tuple(retry_delays)
        self.relay_after = relay_after
        self.relay = Relay(store, publisher, clock=clock, tasks=tasks)
        self.clock = clock

    def key_for(self, request_id: str) -> str:
        return f"{self.prefix}{request_id}.mp4"

    def copy(self, request_id: str, *, receive_count: int = 1, time_limit: float | None = None) -> CopyResult:
        """Archive the job's video; raise ``RetryCopy`` (and nothing else) when the message must fail."""
        try:
            return self._copy(request_id, time_limit, receive_count)
        except Exception as err:  # noqa: BLE001 - whatever failed, the decision table says what it means
            decision = decide(failure_kind(err), receive_count, self.max_receives, delays=self.retry_delays)
            return self._carry_out(decision, request_id, err, receive_count)

    def _copy(self, request_id: str, time_limit: float | None, receive_count: int = 1) -> CopyResult:
        job = self.store.get(request_id)
        if job is None:
            raise MissingJob(f"no job {request_id} in the table")
        if job.outbox in (DetailType.STORED, DetailType.ARCHIVE_FAILED):
            return self._announce(job, uploaded=False)  # a crash left the event unsent
        if job.state is JobState.STORED or (job.state is JobState.ARCHIVE_FAILED and job.reason in PERMANENT):
            logger.info("duplicate delivery: already settled", extra={"request_id": request_id})
            return CopyResult(request_id, job.state)
        if job.state not in (JobState.SUCCEEDED, JobState.ARCHIVE_FAILED) or not job.video_url:
            logger.warning("job is not ready to archive", extra={"request_id": request_id, "state": job.state})
            return CopyResult(request_id, job.state)

        if receive_count >= self.max_receives and job.state is JobState.SUCCEEDED:
            # The last attempt: if this invocation dies too (killed, out of memory, timed out), no
            # receive is left to settle the job. A sweep finds it soon after instead of after the
            # 6-hour copy watchdog, and asks for the copy again.
            self.store.watch(job, at=int(self.clock()) + LAST_ATTEMPT_WATCH)
        key = self.key_for(request_id)
        # Our ListBucket covers our prefix only: a 403 there is a missing object (VideoArchiver.existing).
        stored = self.archiver.existing(self.bucket, key, listable_prefix=self.prefix)
        uploaded = stored is None
        if stored is None:
            if receive_count > 1:
                # An earlier delivery may have died mid-upload (killed, out of memory, timed out):
                # its multipart upload would otherwise wait for the bucket's one-day lifecycle rule.
                aborted = self.archiver.abort_stale_uploads(self.bucket, key)
                if aborted:
                    logger.info(
                        "aborted uploads an earlier attempt left", extra={"request_id": request_id, "aborted": aborted}
                    )
            stored = self.archiver.archive(
                job.video_url, self.bucket, key, metadata={"request-id": request_id}, time_limit=time_limit
            )
        stored_at = int(self.clock())
        # Written before the state moves, so Video Stored never names a manifest that is not there.
        self.archiver.put_json(self.bucket, manifest_key(key), build_manifest(job, stored, stored_at=stored_at))
        return self._store(job, stored, uploaded=uploaded, stored_at=stored_at)

    def _carry_out(self, decision: Decision, request_id: str, err: Exception, receive_count: int) -> CopyResult:
        detail = describe(err)
        log = {"request_id": request_id, "receive": receive_count, "error": type(err).__name__, "detail": detail}
        if not isinstance(err, GrokVideoError):  # a bug or an AWS error: where it happened (code lines, no values)
            log["where"] = "".join(traceback.format_tb(err.__traceback__, limit=-3))
        if decision.action is Action.RETRY:
            logger.warning("copy failed, the queue will retry", extra={**log, "retry_in": decision.retry_after})
            raise RetryCopy(detail, retry_after=decision.retry_after) from err
        retries_spent = decision.action is Action.SETTLE_RETRIES_SPENT
        if retries_spent:
            reason, message = (
                ArchiveFailureReason.TRANSFER_FAILED.value,
                f"{detail} (after {self.max_receives} attempts)",
            )
        else:
            reason = err.reason if isinstance(err, ArchiveError) else ArchiveFailureReason.TRANSFER_FAILED.value
            message = detail
        logger.error("archive failed", extra={**log, "reason": reason})
        try:
            settled = self._fail(request_id, reason=reason, message=message)
            outcome = settled or self._current(request_id)  # None: it had moved on (e.g. STORED)
        except Exception as settle_err:  # noqa: BLE001 - the message must still fail, never vanish
            # Left as the write left it: SUCCEEDED (the message goes on to the DLQ), or
            # ARCHIVE_FAILED owing its event in the due index (the poller relays it).
            last = decide(FailureKind.TRANSIENT, receive_count, self.max_receives, delays=self.retry_delays)
            logger.error("could not settle the job", extra={**log, "settle_error": type(settle_err).__name__})
            raise RetryCopy(
                f"{message}; settling failed: {describe(settle_err)}", retry_after=last.retry_after
            ) from err
        if retries_spent and settled is not None:
            # Settled and announced; the message still goes to the DLQ so the alarm fires and an
            # operator can redrive it once the cause is fixed (a redrive copies again).
            raise RetryCopy(message, retry_after=0) from err
        return outcome

    def _store(self, job: Job, stored: StoredVideo, *, uploaded: bool, stored_at: int) -> CopyResult:
        moved = self.store.transition(
            job,
            to_state=JobState.STORED,
            outbox=DetailType.STORED,
            now=stored_at,
            relay_after=self.relay_after,
            changes={
                "bucket": stored.bucket,
                "key": stored.key,
                "size_bytes": stored.size_bytes,
                "sha256": stored.sha256,
                "content_type": stored.content_type,
                "stored_at": stored_at,
                "manifest_key": manifest_key(stored.key),
            },
        )
        if moved is None:  # another delivery settled it first; it sends the event
            current = self.store.get(job.request_id)
            return CopyResult(job.request_id, current.state if current else job.state, uploaded=uploaded)
        announced = self._announce(moved, uploaded=uploaded)
        return replace(announced, completed_at=moved.completed_at, stored_at=moved.stored_at)

    def _fail(self, request_id: str, *, reason: str, message: str) -> CopyResult | None:
        """Settle the job ``ARCHIVE_FAILED`` and announce it; None when it had already moved on.

        The job is read again: the failure may have come before it was read, or after it moved.
        A job ``STORED`` (even owing its event) or already failed for good is left alone.
        """
        job = self.store.get(request_id)
        if job is None:
            raise MissingJob(f"no job {request_id} in the table")
        settles = job.state is JobState.SUCCEEDED or (
            job.state is JobState.ARCHIVE_FAILED and job.reason not in PERMANENT and not job.outbox
        )
        if not settles:
            return None
        moved = self.store.transition(
            job,
            to_state=JobState.ARCHIVE_FAILED,
            outbox=DetailType.ARCHIVE_FAILED,
            now=int(self.clock()),
            relay_after=self.relay_after,
            changes={"reason": reason, "message": message[:1000]},
        )
        if moved is None:  # another delivery moved it first
            return None
        return self._announce(moved, uploaded=False)

    def _current(self, request_id: str) -> CopyResult:
        current = self.store.get(request_id)
        if current is None:
            raise MissingJob(f"no job {request_id} in the table")
        return CopyResult(request_id, current.state)

    def _announce(self, job: Job, *, uploaded: bool) -> CopyResult:
        """Publish the event the job owes, then take it off the outbox (the poller relays it if refused)."""
        announced = self.relay.deliver(job) is not None
        return CopyResult(job.request_id, job.state, uploaded=uploaded, announced=announced)
