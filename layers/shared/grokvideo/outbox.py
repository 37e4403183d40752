"""The event a job owes, rebuilt from the job itself.

A transition records only the detail-type it owes (``Job.outbox``); the detail is derived from
the stored job, so the first attempt and a relay after a crash send the same event.

>>> from grokvideo.models import JobState
>>> job = Job("4b2cd27e", JobState.FAILED, 0, 3600, outbox="Video Generation Failed", reason="EXPIRED")
>>> event_for(job).detail["reason"]
'EXPIRED'
"""

from __future__ import annotations

from typing import Any

from grokvideo import events
from grokvideo.errors import GrokVideoError
from grokvideo.jobs import Job
from grokvideo.models import ArchiveFailureReason, FailureReason


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
