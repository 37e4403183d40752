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
retryable copy error            ``RetryCopy`` raised: the queue redelivers; on the last
                                allowed receive the job ends ``ARCHIVE_FAILED`` with
                                ``TRANSFER_FAILED`` and the message goes to the DLQ
==============================  ==========================================================

Use (needs AWS or the provider, so not a doctest)::

    copier.copy("4b2cd27e", receive_count=1)
    # -> CopyResult(request_id='4b2cd27e', state=<JobState.STORED: 'STORED'>, uploaded=True, announced=True)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools import Logger

from grokvideo.archive import StoredVideo, VideoArchiver
from grokvideo.errors import ArchiveError, EventPublishError, GrokVideoError
from grokvideo.events import DetailType, Publisher
from grokvideo.jobs import Job, JobStore
from grokvideo.manifest import build_manifest, manifest_key
from grokvideo.models import ArchiveFailureReason, JobState
from grokvideo.outbox import event_for

logger = Logger(child=True)

# Permanent reasons: asking again gets the same answer, so a redelivery does not copy again.
PERMANENT = frozenset(r.value for r in ArchiveFailureReason) - {ArchiveFailureReason.TRANSFER_FAILED.value}


class RetryCopy(GrokVideoError):
    """The copy may succeed later: fail this SQS record so the queue redelivers it."""


@dataclass(frozen=True, slots=True)
class CopyResult:
    request_id: str
    state: JobState
    uploaded: bool = False
    announced: bool = False


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
        relay_after: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.archiver, self.publisher = store, archiver, publisher
        self.bucket, self.prefix = bucket, prefix
        self.max_receives = max_receives
        self.relay_after = relay_after
        self.clock = clock

    def key_for(self, request_id: str) -> str:
        return f"{self.prefix}{request_id}.mp4"

    def copy(self, request_id: str, *, receive_count: int = 1, time_limit: float | None = None) -> CopyResult:
        """Archive the job's video; raise ``RetryCopy`` when the queue should try again."""
        job = self.store.get(request_id)
        if job is None:
            raise RetryCopy(f"no job {request_id} in the table")  # never dropped: ends in the DLQ
        if job.outbox in (DetailType.STORED, DetailType.ARCHIVE_FAILED):
            return self._announce(job, uploaded=False)  # a crash left the event unsent
        if job.state is JobState.STORED or (job.state is JobState.ARCHIVE_FAILED and job.reason in PERMANENT):
            logger.info("duplicate delivery: already settled", extra={"request_id": request_id})
            return CopyResult(request_id, job.state)
        if job.state not in (JobState.SUCCEEDED, JobState.ARCHIVE_FAILED) or not job.video_url:
            logger.warning("job is not ready to archive", extra={"request_id": request_id, "state": job.state})
            return CopyResult(request_id, job.state)

        key = self.key_for(request_id)
        try:
            stored = self.archiver.existing(self.bucket, key)
            uploaded = stored is None
            if stored is None:
                stored = self.archiver.archive(
                    job.video_url, self.bucket, key, metadata={"request-id": request_id}, time_limit=time_limit
                )
            stored_at = int(self.clock())
            # Written before the state moves, so Video Stored never names a manifest that is not there.
            self.archiver.put_json(self.bucket, manifest_key(key), build_manifest(job, stored, stored_at=stored_at))
        except ArchiveError as err:
            if err.retryable and receive_count < self.max_receives:
                logger.warning(
                    "copy failed, the queue will retry",
                    extra={"request_id": request_id, "reason": err.reason, "detail": str(err)},
                )
                raise RetryCopy(str(err)) from err
            return self._fail(job, err, retries_spent=err.retryable)
        return self._store(job, stored, uploaded=uploaded, stored_at=stored_at)

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
        return self._announce(moved, uploaded=uploaded)

    def _fail(self, job: Job, err: ArchiveError, *, retries_spent: bool) -> CopyResult:
        message = str(err) + (f" (after {self.max_receives} attempts)" if retries_spent else "")
        logger.error("archive failed", extra={"request_id": job.request_id, "reason": err.reason, "detail": message})
        moved = self.store.transition(
            job,
            to_state=JobState.ARCHIVE_FAILED,
            outbox=DetailType.ARCHIVE_FAILED,
            now=int(self.clock()),
            relay_after=self.relay_after,
            changes={"reason": err.reason, "message": message[:1000]},
        )
        if moved is None:
            current = self.store.get(job.request_id)
            return CopyResult(job.request_id, current.state if current else job.state)
        result = self._announce(moved, uploaded=False)
        if retries_spent:
            # Settled and announced; the message still goes to the DLQ so the alarm fires and an
            # operator can redrive it once the cause is fixed (a redrive copies again).
            raise RetryCopy(message)
        return result

    def _announce(self, job: Job, *, uploaded: bool) -> CopyResult:
        """Publish the event the job owes, then take it off the outbox."""
        try:
            self.publisher.publish_one(event_for(job))
        except EventPublishError as err:
            # The job stays in the due index: the poller relays the event after ``relay_after``.
            logger.warning("event not accepted yet", extra={"request_id": job.request_id, "detail": str(err)})
            return CopyResult(job.request_id, job.state, uploaded=uploaded)
        self.store.clear_outbox(job, now=int(self.clock()))
        return CopyResult(job.request_id, job.state, uploaded=uploaded, announced=True)
