"""Submitter: a ``Video Generation Requested`` / ``Video Edit Requested`` event becomes one provider job.

It validates the request, reserves its idempotency key, waits for a slot of the shared create
rate, calls the provider once, and records the outcome; the decisions are ``grokvideo.submission``'s,
this class only carries them out. ``RetryLater`` asks the queue to deliver the message again after
``seconds`` (a 429, a provider that could not be reached, another delivery in flight).

Use (needs AWS or the provider, so not a doctest)::

    result = submitter.handle(event, time_left=lambda: 50)
    result.outcome, result.request_id
    # -> ('submitted', '4b2cd27e-0b0d-3dec-c31c-7572daf74bb3')
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger

from grokvideo import events
from grokvideo.errors import CometApiError, GrokVideoError, TaskResumeError, ValidationError
from grokvideo.events import DetailType, Publisher
from grokvideo.jobs import Job, JobStore
from grokvideo.models import FailureReason, JobState
from grokvideo.outbox import Relay, event_for
from grokvideo.ratelimit import SharedRateLimiter
from grokvideo.reservations import Reservations
from grokvideo.submission import (
    Announce,
    Claim,
    Conflict,
    Created,
    CreateVerdict,
    Refused,
    Reserve,
    Retry,
    Uncertain,
    Wait,
    classify_create,
    decide_delivery,
    holder_wait,
    request_digest,
    request_record,
    submission_id,
    uncertain_message,
)
from grokvideo.validation import (
    GenerationRequest,
    S3Location,
    SubmitRequest,
    parse_edit_request,
    parse_generation_request,
    validate_request_id,
)

if TYPE_CHECKING:
    from grokvideo.tasks import TaskResumer

logger = Logger(child=True)

MAX_SLOT_WAIT = 20.0  # seconds a delivery waits in-process for its create slot before requeueing
TIME_MARGIN = 10.0  # seconds kept back from the invocation's remaining time, after the longest create call
RESUME_RETRY_SECONDS = 30  # a rejection whose task Step Functions did not take: reject (and resume) again then
DECIDE_ROUNDS = 3  # a lost race on the reservation is decided again with what won it


class Creator(Protocol):
    @property
    def max_call_seconds(self) -> float: ...

    def create_generation(
        self,
        prompt: str,
        *,
        model: str,
        duration: int,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        image_url: str | None = None,
    ) -> str: ...

    def create_edit(self, prompt: str, video_url: str, *, model: str) -> str: ...


class Presigner(Protocol):
    def presign(self, location: S3Location) -> str: ...


class RetryLater(GrokVideoError):
    """Nothing was created: deliver this request again after ``seconds``."""

    def __init__(self, message: str, *, seconds: float, cause: str = "") -> None:
        super().__init__(message)
        self.seconds = seconds
        self.cause = cause  # the provider error's type, when a create was refused (e.g. "AuthError")


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What one delivery came to: ``submitted``, ``announced`` (the key had an outcome already),
    ``rejected`` (invalid, nothing created) or ``failed`` (refused or uncertain at create)."""

    outcome: str
    request_id: str | None = None
    submission_id: str | None = None
    errors: list[str] = field(default_factory=list)


class Submitter:
    def __init__(
        self,
        store: JobStore,
        reservations: Reservations,
        limiter: SharedRateLimiter,
        client: Creator,
        publisher: Publisher,
        presigner: Presigner,
        *,
        input_buckets: Collection[str] = (),
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        owner: str | None = None,
        tasks: TaskResumer | None = None,
    ) -> None:
        self.store, self.reservations, self.limiter = store, reservations, limiter
        self.client, self.publisher, self.presigner = client, publisher, presigner
        self.input_buckets = frozenset(input_buckets)
        self.clock, self.sleep = clock, sleep
        self.relay = Relay(store, publisher, clock=clock, tasks=tasks)
        self.owner = owner or f"submit-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # A create starts only if it can end, every timeout spent, TIME_MARGIN before the invocation
        # does: an invocation killed by its timeout sends its whole batch back after the queue's
        # visibility timeout (6 minutes), settled requests and all, and its create ends uncertain.
        self.create_seconds = client.max_call_seconds

    # --- one input event ----------------------------------------------------------------------

    def handle(
        self, event: Mapping[str, Any], *, time_left: Callable[[], float], receive_count: int = 1
    ) -> SubmitResult:
        """Validate an input event (as EventBridge delivers it) and submit it, or reject it.

        ``receive_count`` is the queue's count of deliveries of this message (it paces waiting).
        """
        detail = event.get("detail")
        detail = detail if isinstance(detail, Mapping) else {}
        try:
            request = self._parse(event.get("detail-type"), event.get("detail"))
            key = request.idempotency_key or _event_id(event)
        except ValidationError as err:
            return self._reject(err.errors, detail)
        return self.submit(request, key, detail=detail, time_left=time_left, receive_count=receive_count)

    def _parse(self, detail_type: object, detail: object) -> SubmitRequest:
        if not isinstance(detail, Mapping):
            raise ValidationError(["detail: must be an object"])
        if detail_type == DetailType.GENERATION_REQUESTED:
            return parse_generation_request(detail, input_buckets=self.input_buckets)
        if detail_type != DetailType.EDIT_REQUESTED:
            raise ValidationError([f"detail-type: only generation and edit requests here, got {detail_type!r}"])
        request = parse_edit_request(detail, input_buckets=self.input_buckets)
        if request.source_request_id is None:
            return request
        source = self.store.get(request.source_request_id)
        if source is None or source.state is not JobState.STORED or not (source.bucket and source.key):
            state = source.state.value if source else "unknown"
            raise ValidationError(
                [f"source_request_id: {request.source_request_id} is not a stored video of this stack (state {state})"]
            )
        return dataclasses.replace(request, video=S3Location(source.bucket, source.key))

    def submit(
        self,
        request: SubmitRequest,
        key: str,
        *,
        detail: Mapping[str, Any],
        time_left: Callable[[], float],
        receive_count: int = 1,
    ) -> SubmitResult:
        """One provider job per ``key``: reserve it, create once, or announce what the key already has."""
        sid, digest = submission_id(key), request_digest(request)
        for _ in range(DECIDE_ROUNDS):
            now = int(self.clock())
            existing = self.store.get(sid)
            match decide_delivery(existing, digest=digest, now=now, max_wait=holder_wait(receive_count)):
                case Reserve():
                    held = self.reservations.reserve(sid, owner=self.owner, now=now, fields=_kept(request, key, digest))
                    if held is not None:
                        return self._create(held, request, time_left)
                case Claim(reservation, then_create):
                    held = self.reservations.claim(reservation, owner=self.owner, now=now)
                    if held is not None and then_create:
                        return self._create(held, request, time_left)
                    if held is not None:
                        why = "an earlier delivery stopped while its create call may have been under way"
                        started = (reservation.lease_until or now) - self.reservations.lease_seconds
                        return self._settle(held, Uncertain(why), attempted_at=started)
                case Wait(seconds):
                    raise RetryLater(f"{sid} is being submitted by another delivery", seconds=seconds)
                case Announce(reservation):
                    return self._announce(reservation)
                case Conflict(error):
                    return self._reject([error], detail)
        raise RetryLater(f"{sid} kept changing under this delivery", seconds=5)

    # --- the create call ----------------------------------------------------------------------

    def _create(self, held: Job, request: SubmitRequest, time_left: Callable[[], float]) -> SubmitResult:
        try:
            input_url = self._url(request.image if isinstance(request, GenerationRequest) else request.video)
            slot = self.limiter.take(max_wait=min(MAX_SLOT_WAIT, time_left() - TIME_MARGIN - self.create_seconds))
        except Exception:
            # Nothing was sent: free the key now, or the lease would run out and the next
            # delivery would have to call this create uncertain.
            self.reservations.release(held, owner=self.owner)
            raise
        if not slot.taken:
            self.reservations.release(held, owner=self.owner)
            raise RetryLater("no create slot within this delivery's time", seconds=slot.wait)
        # Until the slot's start, measured after the write that took it (the write takes a few ms).
        self.sleep(max(0.0, slot.starts_at - self.clock()))
        attempted_at = int(self.clock())
        verdict: CreateVerdict
        try:
            verdict = Created(self._send(request, input_url))
        except CometApiError as err:
            verdict = classify_create(err)
            logger.warning(
                "create call failed",
                extra={"submission_id": held.request_id, "error": type(err).__name__, "status": err.status},
            )
        match verdict:
            case Created(request_id):
                try:
                    return self._submitted(held, request_id, now=int(self.clock()))
                except Exception:
                    # The provider has the job; if it cannot be recorded now, a redelivery will
                    # call it uncertain. Say which job it was, for whoever reads that failure.
                    logger.exception(
                        "created at the provider but not recorded",
                        extra={"submission_id": held.request_id, "request_id": request_id},
                    )
                    raise
            case Retry(seconds, why, rate_limited):
                if rate_limited:
                    self.limiter.pause(seconds)
                self.reservations.release(held, owner=self.owner)
                raise RetryLater(f"create not accepted ({why})", seconds=seconds, cause=why)
            case _:
                return self._settle(held, verdict, attempted_at=attempted_at)

    def _send(self, request: SubmitRequest, input_url: str | None) -> str:
        """The one create call; ``input_url`` is the image (or the edit's video) as the provider gets it."""
        if isinstance(request, GenerationRequest):
            return self.client.create_generation(
                request.prompt,
                model=request.model,
                duration=request.duration,
                aspect_ratio=request.aspect_ratio,
                resolution=request.resolution,
                image_url=input_url,
            )
        if input_url is None:  # parse_edit_request guarantees a video; a bug must not reach the provider
            raise ValidationError(["video_url: missing after validation"])
        return self.client.create_edit(request.prompt, input_url, model=request.model)

    def _url(self, value: str | S3Location | None) -> str | None:
        return self.presigner.presign(value) if isinstance(value, S3Location) else value

    # --- outcomes -----------------------------------------------------------------------------

    def _submitted(self, held: Job, request_id: str, *, now: int) -> SubmitResult:
        if self.reservations.mark_submitted(held, owner=self.owner, request_id=request_id, now=now) is None:
            # Only if this delivery outlived its lease and another settled the key meanwhile.
            logger.error(
                "reservation settled elsewhere after a successful create: tracking the job anyway",
                extra={"submission_id": held.request_id, "request_id": request_id},
            )
        job = self._track(held, request_id, submitted_at=now)
        self._publish_owed(job)
        return SubmitResult("submitted", request_id=request_id, submission_id=held.request_id)

    def _track(self, reservation: Job, request_id: str, *, submitted_at: int) -> Job:
        """The provider's job as an ordinary tracked job, owing its Submitted event (idempotent)."""
        self.store.register(
            request_id,
            now=int(self.clock()),
            client_ref=reservation.client_ref,
            metadata=reservation.metadata,
            outbox=DetailType.SUBMITTED,
            model=reservation.model,
            submitted_at=submitted_at,
            request=reservation.request,
            idempotency_key=reservation.idempotency_key,
            task_token=reservation.task_token,
            submission_id=reservation.request_id,
        )
        job = self.store.get(request_id)
        if job is None:
            raise GrokVideoError(f"job {request_id} vanished right after it was registered")
        return job

    def _settle(self, held: Job, verdict: Refused | Uncertain, *, attempted_at: int | None) -> SubmitResult:
        now = int(self.clock())
        if isinstance(verdict, Refused):
            reason, message = verdict.reason, verdict.message
        else:
            reason = FailureReason.SUBMIT_UNCERTAIN
            message = uncertain_message(
                idempotency_key=held.idempotency_key or "",
                prompt_sha256=str(held.request.get("prompt_sha256", "")),
                attempted_at=events.iso_utc(attempted_at or now) or "",
                why=verdict.why,
            )
        failed = self.reservations.fail(held, owner=self.owner, reason=reason, message=message, now=now)
        if failed is None:
            raise RetryLater(f"{held.request_id} moved on before it could be settled", seconds=5)
        logger.error("submission failed", extra={"submission_id": held.request_id, "reason": reason.value})
        self._publish_owed(failed)
        return SubmitResult("failed", submission_id=held.request_id, errors=[message])

    def _announce(self, reservation: Job) -> SubmitResult:
        """The key already has an outcome: say it again (the job is rebuilt if a crash lost it)."""
        if reservation.state is JobState.SUBMITTED and reservation.job_request_id:
            job = self.store.get(reservation.job_request_id)
            if job is None:  # a crash between marking the reservation and registering the job
                job = self._track(reservation, reservation.job_request_id, submitted_at=reservation.submitted_at or 0)
                self._publish_owed(job)
            else:
                self.publisher.publish_one(event_for(job, DetailType.SUBMITTED))
            return SubmitResult("announced", request_id=job.request_id, submission_id=reservation.request_id)
        self.publisher.publish_one(event_for(reservation, DetailType.FAILED))
        return SubmitResult("announced", submission_id=reservation.request_id, errors=[reservation.message or ""])

    def _publish_owed(self, job: Job) -> None:
        """Send the event the job owes; if EventBridge refuses, the poller relays it from the outbox."""
        self.relay.deliver(job)

    def _reject(self, errors: list[str], detail: Mapping[str, Any]) -> SubmitResult:
        """Announce the rejection, then fail the task waiting on the request's token (if valid)."""
        try:
            self.relay.tasks.reject(detail, errors, self.publisher)
        except TaskResumeError as err:
            # No outbox holds a rejection: the request comes back, is rejected and resumed again.
            raise RetryLater(f"task not resumed yet ({err.code})", seconds=RESUME_RETRY_SECONDS) from None
        return SubmitResult("rejected", errors=errors)


def _event_id(event: Mapping[str, Any]) -> str:
    """The EventBridge event id: the idempotency key of a request that names none."""
    try:
        return validate_request_id(event.get("id"), "id")
    except ValidationError:
        raise ValidationError(["idempotency_key: required when the event carries no usable id"]) from None


def _kept(request: SubmitRequest, key: str, digest: str) -> dict[str, Any]:
    """What a reservation keeps of its request (enough to rebuild the job after a crash)."""
    return {
        "client_ref": request.client_ref,
        "metadata": request.metadata,
        "request": request_record(request),
        "request_digest": digest,
        "idempotency_key": key,
        "task_token": request.task_token,
        "model": request.model,
    }
