"""Submission decisions: what to do with a delivery of a request, and with the create call's answer.

Pure functions, no I/O: the submitter carries the actions out. One paid job per idempotency key:

===============================================  ===========================================================
reservation of the key, when a delivery arrives  action
===============================================  ===========================================================
none                                             ``Reserve``: write it (conditional), then create
used for a different request (other digest)      ``Conflict``: reject, create nothing
``SUBMITTED`` / ``FAILED``                       ``Announce``: send its Submitted (or Failed) event again
``RESERVED``, no lease (retry after a 429)       ``Claim(then_create=True)``: the provider has not got it
``RESERVED``, lease live (another delivery)      ``Wait``: redeliver once that delivery should be done
``RESERVED``, lease expired (holder died)        ``Claim(then_create=False)``: its create may have been
                                                 sent: settle ``SUBMIT_UNCERTAIN``, never create again
===============================================  ===========================================================

==========================================  =====================================================
answer of the create call                   verdict
==========================================  =====================================================
a request_id                                ``Created``
429                                         ``Retry`` after Retry-After (and pace every submitter)
connection failed before the body was sent  ``Retry`` (the provider cannot have accepted it)
401 / 403, unreadable key                   ``Retry`` later (our outage; nothing was created)
400 / 422, unknown id                       ``Refused``: ``FAILED`` REJECTED (or MODERATED)
5xx, timeout after sending, reset,          ``Uncertain``: ``FAILED`` SUBMIT_UNCERTAIN; the job may
unreadable 2xx, redirect                    exist, so it is never posted again
==========================================  =====================================================

>>> decide_delivery(None, digest="d1", now=100)
Reserve()
>>> classify_create(RateLimitedError("slow down", retry_after=7))
Retry(seconds=7, why='RateLimitedError', rate_limited=True)
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

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
from grokvideo.models import FailureReason, JobState
from grokvideo.validation import SUBMISSION_PREFIX, GenerationRequest, S3Location, SubmitRequest

AUTH_RETRY_SECONDS = 60  # a refused key: try again in a minute (the alarm says why)
HOLDER_WAIT_FIRST = 5  # a delivery meeting another's live lease comes back after 5, 10, 20, 40, 60 s
NOT_SENT_RETRY_SECONDS = 5  # the provider was unreachable: soon


# --- ids and digests --------------------------------------------------------------------------


def submission_id(idempotency_key: str) -> str:
    """The reservation's id for a key: fixed length, safe as a request id, never a provider id.

    >>> submission_id("order-1042")
    'submission-bff83cdfb94d8087b6fd49cb20c427dc6013ae2c'
    """
    return SUBMISSION_PREFIX + hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:40]


def prompt_digest(prompt: str) -> str:
    """Hex SHA-256 of the prompt (UTF-8): lets a user find the job at the provider without the text."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def request_record(request: SubmitRequest) -> dict[str, Any]:
    """What the job record and the manifest keep of a request: prompt and parameters, inputs without
    secrets (no query strings, no data payloads), never the task token or the caller's metadata."""
    record: dict[str, Any] = {
        "kind": "generation" if isinstance(request, GenerationRequest) else "edit",
        "prompt": request.prompt,
        "prompt_sha256": prompt_digest(request.prompt),
        "model": request.model,
    }
    for name in ("duration", "aspect_ratio", "resolution", "source_request_id"):
        value = getattr(request, name, None)
        if value is not None:
            record[name] = value
    for name in ("image", "video"):
        value = getattr(request, name, None)
        if value is not None:
            record[name] = describe_input(value)
    return record


def request_digest(request: SubmitRequest) -> str:
    """Digest of what a create would send (prompt, parameters, inputs): a reused key must match it."""
    fields = asdict(request)
    for name in ("client_ref", "metadata", "idempotency_key", "task_token"):
        fields.pop(name, None)
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def describe_input(value: str | S3Location) -> str:
    """An input as the record keeps it.

    >>> describe_input("https://cdn.example.com/in.png?X-Amz-Signature=abc")
    'https://cdn.example.com/in.png?[query removed]'
    >>> describe_input(S3Location("inputs", "a/b.png"))
    's3://inputs/a/b.png'
    >>> describe_input("data:image/png;base64,aGVsbG8=")
    'data:image/png;base64 (5 bytes, sha256 2cf24dba5fb0a30e)'
    """
    if isinstance(value, S3Location):
        return value.uri
    if value.startswith("data:"):
        head, _, payload = value.partition(",")
        raw = base64.b64decode(payload)
        return f"{head} ({len(raw)} bytes, sha256 {hashlib.sha256(raw).hexdigest()[:16]})"
    base, sep, _ = value.partition("?")
    base = base.partition("#")[0]
    return base + ("?[query removed]" if sep else "")


# --- what a delivery does ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reserve:
    """No reservation yet: write one, then create."""


@dataclass(frozen=True, slots=True)
class Conflict:
    """The key was used for another request: reject this one."""

    error: str


@dataclass(frozen=True, slots=True)
class Announce:
    """The key already has an outcome: announce it again, create nothing."""

    reservation: Job


@dataclass(frozen=True, slots=True)
class Claim:
    """Take over a reservation nobody holds; create only if no create can have been sent."""

    reservation: Job
    then_create: bool


@dataclass(frozen=True, slots=True)
class Wait:
    """Another delivery holds the reservation: come back in ``seconds``."""

    seconds: float


DeliveryAction = Reserve | Conflict | Announce | Claim | Wait


def holder_wait(receive_count: int) -> float:
    """How long a delivery waits for another that holds its key: short first (most creates take a
    second), doubling per receive, so a holder that died is found out within the queue's receives.

    >>> [holder_wait(n) for n in range(1, 7)]
    [5, 10, 20, 40, 60, 60]
    """
    return min(HOLDER_WAIT_FIRST << (max(receive_count, 1) - 1), 60)  # doubled per receive, in whole seconds


def decide_delivery(existing: Job | None, *, digest: str, now: float, max_wait: float = 60) -> DeliveryAction:
    """The row of the table above for this delivery (``max_wait`` caps a ``Wait``: ``holder_wait``)."""
    if existing is None:
        return Reserve()
    if existing.request_digest and existing.request_digest != digest:
        return Conflict(
            f"idempotency_key: {existing.idempotency_key!r} was already used for a different request "
            f"({existing.request_id}); use a new key for a new request"
        )
    if existing.state is not JobState.RESERVED:
        return Announce(existing)
    if existing.lease_until is None:
        return Claim(existing, then_create=True)
    if existing.lease_until > now:
        return Wait(min(max(existing.lease_until - now, 1.0), max_wait))
    return Claim(existing, then_create=False)


# --- what the create call's answer means ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Created:
    request_id: str


@dataclass(frozen=True, slots=True)
class Retry:
    """Nothing was created: try the same request again after ``seconds``."""

    seconds: float
    why: str
    rate_limited: bool = False


@dataclass(frozen=True, slots=True)
class Refused:
    """The provider refused the request: nothing was created, and asking again will not help."""

    reason: FailureReason
    message: str


@dataclass(frozen=True, slots=True)
class Uncertain:
    """The provider may have created (and will bill) a job we know nothing of."""

    why: str


CreateVerdict = Created | Retry | Refused | Uncertain


def classify_create(error: CometApiError) -> Retry | Refused | Uncertain:
    """The verdict for a create call that raised ``error`` (see the table above)."""
    if isinstance(error, RateLimitedError):
        return Retry(error.retry_after, type(error).__name__, rate_limited=True)
    if isinstance(error, NotSentError):
        return Retry(NOT_SENT_RETRY_SECONDS, type(error).__name__)
    if isinstance(error, AuthError):
        return Retry(AUTH_RETRY_SECONDS, type(error).__name__)
    if isinstance(error, InvalidRequestError):
        reason = FailureReason.MODERATED if error.moderated else FailureReason.REJECTED
        return Refused(reason, f"the provider refused the request: {error}")
    if isinstance(error, NotFoundError):
        return Refused(FailureReason.REJECTED, f"the provider refused the request: {error}")
    if isinstance(error, RetryableError):
        return Uncertain(str(error))
    return Uncertain(str(error))  # a 2xx without an id, a redirect: the job may exist


def uncertain_message(*, idempotency_key: str, prompt_sha256: str, attempted_at: str, why: str) -> str:
    """How a user checks whether an uncertain create started a job (the provider's console/API).

    >>> uncertain_message(idempotency_key="k1", prompt_sha256="ab" * 32, attempted_at="2026-11-29T10:00:00Z",
    ...                   why="read timed out")[:60]
    'the create call may have started a job (read timed out); it '
    """
    return (
        f"the create call may have started a job ({why}); it was not sent again, so as not to pay twice. "
        f"Check CometAPI for a job created around {attempted_at} with a prompt whose SHA-256 is "
        f"{prompt_sha256} (idempotency_key {idempotency_key}); if there is one, track its request_id "
        "with a Video Job Track Requested event, else send the request again with a new idempotency_key."
    )
