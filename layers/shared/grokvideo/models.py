"""Domain types shared by every module: job states, failure reasons, normalised provider status."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class JobState(StrEnum):
    """Lifecycle of a job. ``PENDING -> SUCCEEDED -> STORED`` is the happy path.

    A submission is ``RESERVED`` under its idempotency key before the create call; it becomes
    ``SUBMITTED`` (pointing at the provider's job, which starts ``PENDING``) or ``FAILED``.
    """

    RESERVED = "RESERVED"  # a submission's idempotency record, before the provider answered
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    SUBMITTED = "SUBMITTED"  # a reservation whose create call returned a request_id
    STORED = "STORED"
    FAILED = "FAILED"
    ARCHIVE_FAILED = "ARCHIVE_FAILED"


class FailureReason(StrEnum):
    """Why a job ended ``FAILED`` (the ``reason`` of ``Video Generation Failed``)."""

    PROVIDER_FAILED = "PROVIDER_FAILED"
    MODERATED = "MODERATED"
    EXPIRED = "EXPIRED"
    NOT_FOUND = "NOT_FOUND"
    TIMED_OUT = "TIMED_OUT"
    REJECTED = "REJECTED"
    SUBMIT_UNCERTAIN = "SUBMIT_UNCERTAIN"  # the create call may or may not have started a job


class ArchiveFailureReason(StrEnum):
    """Why a finished video could not be stored (the ``reason`` of ``Video Archive Failed``)."""

    URL_EXPIRED = "URL_EXPIRED"  # 403/404/410 from the video host
    URL_REFUSED = "URL_REFUSED"  # the URL guard said no (scheme, host, address, redirect)
    NOT_A_VIDEO = "NOT_A_VIDEO"  # wrong Content-Type or no MP4 signature
    TOO_LARGE = "TOO_LARGE"  # over MaxVideoBytes, announced or streamed
    TRANSFER_FAILED = "TRANSFER_FAILED"  # retries spent (5xx, timeouts, truncation, S3 errors)


# --- What one poll of the provider says about a job -------------------------------------------

# Bounds of what a provider may report, shared by the parser (``grokvideo.status``), the event
# builders and the schemas (``duration``: exclusiveMinimum 0, maximum 3600; ``cost_usd``: 0..1e6).
# Grok videos last 1-15 s and cost cents: anything beyond is a provider bug, reported as unknown.
MAX_DURATION_SECONDS = 3600.0
MAX_COST_USD = 1_000_000.0


@dataclass(frozen=True, slots=True)
class Pending:
    """Not finished yet. ``missing_url`` marks "done" answers that carried no usable URL."""

    provider_status: str = ""
    progress: int | None = None
    missing_url: bool = False


@dataclass(frozen=True, slots=True)
class Succeeded:
    """Finished with a video at a temporary URL. Every value is storable and schema-valid (see
    ``grokvideo.status``): ``duration`` in 0 < s <= 3600, ``cost_usd`` in 0..1e6 USD, times plausible."""

    video_url: str
    duration: float | None = None
    model: str | None = None
    cost_usd: float | None = None
    completed_at: int | None = None  # epoch seconds, when the provider says
    submitted_at: int | None = None  # epoch seconds, when the provider says


@dataclass(frozen=True, slots=True)
class Failed:
    """Finished without a video."""

    reason: FailureReason
    message: str


PollStatus = Pending | Succeeded | Failed
