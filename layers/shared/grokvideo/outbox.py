"""The event a job owes, rebuilt from the job itself.

A transition records only the detail-type it owes (``Job.outbox``); the detail is derived from
the stored job, so the first attempt and a relay after a crash send the same event.

>>> from grokvideo.models import JobState
>>> job = Job("4b2cd27e", JobState.FAILED, 0, 3600, outbox="Video Generation Failed", reason="EXPIRED")
>>> event_for(job).detail["reason"]
'EXPIRED'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from grokvideo import events
from grokvideo.errors import EventPublishError, GrokVideoError, TaskResumeError
from grokvideo.jobs import Job, JobStore
from grokvideo.models import ArchiveFailureReason, FailureReason

if TYPE_CHECKING:  # imported when a relay is built: the copier's and submit's handler imports stay small
    from grokvideo.tasks import TaskResumer

logger = Logger(child=True)

RELAY_AFTER = 30
"""Seconds an owed event waits in the due index before a sweep relays it (every writer uses it)."""


class Relay:
    """Sends the event a job owes, resumes the Step Functions task waiting on the job (if the
    event ends it: ``grokvideo.tasks``), and only then takes the job off the outbox: the one way
    every function (submit, poller, copier) delivers an event. If EventBridge or Step Functions
    refuses, the job stays in the due index and a later sweep delivers it through this same relay
    (the event and the resumption again: both are at least once).

    ``tasks`` defaults to Step Functions through boto3 (its client made only for a first token).
    """

    def __init__(
        self,
        store: JobStore,
        publisher: events.Publisher,
        *,
        clock: Callable[[], float] = time.time,
        tasks: TaskResumer | None = None,
    ):
        self.store, self.publisher, self.clock = store, publisher, clock
        if tasks is None:
            from grokvideo.tasks import TaskResumer

            tasks = TaskResumer()
        self.tasks = tasks

    def deliver(self, job: Job) -> Job | None:
        """The job as it is once its event is out, or None while the event is still owed."""
        event = event_for(job)
        try:
            self.publisher.publish_one(event)
            self.tasks.resume(job.task_token, event)
        except (EventPublishError, TaskResumeError) as err:
            logger.warning(
                "event not accepted yet; a later sweep relays it"
                if isinstance(err, EventPublishError)
                else "task not resumed yet; a later sweep sends the event and resumes it again",
                extra={"request_id": job.request_id, "detail_type": job.outbox, "error": str(err)},
            )
            return None
        return self.store.clear_outbox(job, now=int(self.clock()))


def event_for(job: Job, detail_type: str | None = None) -> events.OutputEvent:
    """The output event ``detail_type`` (default: the one ``job.outbox`` owes), built from the job."""
    common: dict[str, Any] = {"request_id": job.request_id, "client_ref": job.client_ref, "metadata": job.metadata}
    wanted = detail_type or job.outbox
    match wanted:
        case events.DetailType.SUBMITTED:
            return events.generation_submitted(
                **common,
                idempotency_key=job.idempotency_key,
                model=job.model or str(job.request.get("model") or ""),
                duration=job.request.get("duration"),
                resolution=job.request.get("resolution"),
                aspect_ratio=job.request.get("aspect_ratio"),
                submitted_at=job.submitted_at or job.registered_at,
            )
        case events.DetailType.SUCCEEDED:
            return events.generation_succeeded(
                **common,
                video_url=job.video_url or "",
                duration=job.duration,
                model=job.model,
                cost_usd=job.cost_usd,
                submitted_at=job.submitted_at,
                completed_at=job.completed_at,
            )
        case events.DetailType.FAILED:
            return events.generation_failed(
                **common,
                reason=FailureReason(job.reason or FailureReason.PROVIDER_FAILED),
                message=job.message or "",
            )
        case events.DetailType.STORED:
            return events.video_stored(
                **common,
                bucket=job.bucket or "",
                key=job.key or "",
                size_bytes=job.size_bytes or 0,
                sha256=job.sha256 or "",
                content_type=job.content_type or "video/mp4",
                duration=job.duration,
                model=job.model,
                manifest_key=job.manifest_key,
            )
        case events.DetailType.ARCHIVE_FAILED:
            return events.archive_failed(
                **common,
                reason=job.reason or ArchiveFailureReason.TRANSFER_FAILED,
                message=job.message or "",
            )
    raise GrokVideoError(f"no {wanted!r} event can be built for job {job.request_id}")
