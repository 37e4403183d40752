"""Step Functions task tokens: which call resumes a task, with what, for which job and event."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from grokvideo import events
from grokvideo.errors import TaskResumeError
from grokvideo.events import DetailType
from grokvideo.jobs import Job
from grokvideo.models import JobState
from grokvideo.outbox import event_for
from grokvideo.tasks import (
    MAX_CAUSE_LENGTH,
    AfterError,
    Fail,
    Succeed,
    TaskResumer,
    after_error,
    request_token,
    resumption,
    token_ref,
)
from grokvideo.validation import TASK_TOKEN_MAX_LENGTH

# Real tokens are long opaque strings; the local emulator's are UUIDs.
TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAf+/" * 30


def job(state: JobState, outbox: DetailType, **values: Any) -> Job:
    return Job("4b2cd27e-0b0d", state, 0, 3600, outbox=outbox, client_ref="order-7", metadata={"n": 1}, **values)


STORED = job(
    JobState.STORED,
    DetailType.STORED,
    bucket="videos-bucket",
    key="videos/4b2cd27e-0b0d.mp4",
    size_bytes=1234,
    sha256="ab" * 32,
    content_type="video/mp4",
    duration=1,
    manifest_key="videos/4b2cd27e-0b0d.json",
)


def failed(reason: str, message: str) -> Job:
    return job(JobState.FAILED, DetailType.FAILED, reason=reason, message=message)


# --------------------------------------------------------------------------- the decision, row by row


@pytest.mark.parametrize(
    ("the_job", "expected"),
    [
        (failed("MODERATED", "blocked by moderation"), ("MODERATED", "blocked by moderation")),
        (failed("TIMED_OUT", "no answer within 3600 s"), ("TIMED_OUT", "no answer within 3600 s")),
        (failed("SUBMIT_UNCERTAIN", "the create call may have"), ("SUBMIT_UNCERTAIN", "the create call may have")),
        (failed("REJECTED", "the provider refused"), ("REJECTED", "the provider refused")),
        (failed("EXPIRED", "expired"), ("EXPIRED", "expired")),
        (
            job(JobState.ARCHIVE_FAILED, DetailType.ARCHIVE_FAILED, reason="URL_EXPIRED", message="403 from host"),
            ("URL_EXPIRED", "403 from host"),
        ),
        (
            job(JobState.ARCHIVE_FAILED, DetailType.ARCHIVE_FAILED, reason="TOO_LARGE", message="over 2 GiB"),
            ("TOO_LARGE", "over 2 GiB"),
        ),
    ],
)
def test_a_failed_job_fails_its_task_with_the_reason_as_error_and_the_message_as_cause(
    the_job: Job, expected: tuple[str, str]
) -> None:
    got = resumption(TOKEN, event_for(the_job))
    assert got == Fail(TOKEN, *expected)


def test_a_stored_video_succeeds_its_task_with_the_events_detail_as_output() -> None:
    event = event_for(STORED)
    got = resumption(TOKEN, event)
    assert isinstance(got, Succeed) and got.token == TOKEN
    output = json.loads(got.output)
    assert output == json.loads(events.serialize_detail(event.detail))
    assert (output["key"], output["s3_uri"], output["sha256"]) == (
        "videos/4b2cd27e-0b0d.mp4",
        "s3://videos-bucket/videos/4b2cd27e-0b0d.mp4",
        "ab" * 32,
    )
    assert (output["client_ref"], output["metadata"]) == ("order-7", {"n": 1})


@pytest.mark.parametrize(
    "the_job",
    [
        job(JobState.PENDING, DetailType.SUBMITTED, model="grok-imagine-video"),
        job(JobState.SUCCEEDED, DetailType.SUCCEEDED, video_url="https://vidgen.x.ai/v.mp4"),
    ],
)
def test_an_event_that_ends_nothing_resumes_nothing(the_job: Job) -> None:
    assert resumption(TOKEN, event_for(the_job)) is None


@pytest.mark.parametrize("the_job", [STORED, failed("MODERATED", "blocked")])
@pytest.mark.parametrize("token", [None, ""])
def test_a_job_without_a_token_resumes_nothing(the_job: Job, token: str | None) -> None:
    assert resumption(token, event_for(the_job)) is None


def test_a_rejection_fails_its_task_with_invalid_request_and_every_error() -> None:
    rejection = events.request_rejected(
        reason=events.INVALID_REQUEST, errors=["prompt: must not be empty", "duration: must be 1-15, got 99"]
    )
    assert resumption(TOKEN, rejection) == Fail(
        TOKEN, "INVALID_REQUEST", "prompt: must not be empty; duration: must be 1-15, got 99"
    )


def test_a_cause_longer_than_step_functions_takes_is_cut() -> None:
    rejection = events.request_rejected(reason=events.INVALID_REQUEST, errors=["x" * 1000] * 40)
    got = resumption(TOKEN, rejection)
    assert isinstance(got, Fail) and len(got.cause) == MAX_CAUSE_LENGTH and got.cause.endswith("...")


def test_the_call_never_shows_its_token() -> None:
    for call in (resumption(TOKEN, event_for(STORED)), resumption(TOKEN, event_for(failed("MODERATED", "m")))):
        assert TOKEN[:20] not in repr(call)


# --------------------------------------------------------------------------- the token of a rejected request


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ({"prompt": "", "task_token": TOKEN}, TOKEN),
        ({"request_id": "../etc", "task_token": "a" * 1024}, "a" * 1024),
        ({"prompt": ""}, None),
        ({"task_token": None}, None),
        ({"task_token": ""}, None),
        ({"task_token": 7}, None),
        ({"task_token": "with space"}, None),
        ({"task_token": "t" * (TASK_TOKEN_MAX_LENGTH + 1)}, None),
        ("not an object", None),
        (None, None),
    ],
)
def test_a_rejected_request_resumes_its_task_only_with_a_valid_token(detail: Any, expected: str | None) -> None:
    assert request_token(detail) == expected


# --------------------------------------------------------------------------- what an error leaves to do


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("TaskTimedOut", AfterError.CLOSED),
        ("InvalidToken", AfterError.CLOSED),
        ("TaskDoesNotExist", AfterError.CLOSED),
        ("ValidationException", AfterError.REFUSED),
        ("InvalidOutput", AfterError.REFUSED),
        ("ParamValidationError", AfterError.REFUSED),
        ("ThrottlingException", AfterError.RETRY),
        ("ServiceUnavailable", AfterError.RETRY),
        ("InternalServerError", AfterError.RETRY),
        ("AccessDeniedException", AfterError.RETRY),  # fixed by a deploy: the event stays owed until then
        ("KmsThrottlingException", AfterError.RETRY),
        ("ReadTimeoutError", AfterError.RETRY),
        ("EndpointConnectionError", AfterError.RETRY),
    ],
)
def test_what_an_error_leaves_to_do(code: str, expected: AfterError) -> None:
    assert after_error(code) is expected


def test_a_token_is_named_by_a_short_digest() -> None:
    ref = token_ref(TOKEN)
    assert ref.startswith("sha256:") and len(ref) == 19 and TOKEN[:8] not in ref
    assert ref == token_ref(TOKEN) != token_ref(TOKEN + "x")


# --------------------------------------------------------------------------- the resumer on fake callbacks


@dataclass
class Callbacks:
    """Records the calls; raises ``TaskResumeError(code)`` when ``code`` is set."""

    code: str | None = None
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def send_task_success(self, token: str, output: str) -> None:
        self.calls.append(("success", token, output))
        self._maybe_fail()

    def send_task_failure(self, token: str, error: str, cause: str) -> None:
        self.calls.append(("failure", token, error, cause))
        self._maybe_fail()

    def _maybe_fail(self) -> None:
        if self.code:
            raise TaskResumeError(f"refused: {self.code}", code=self.code)


def test_the_resumer_makes_the_call_the_decision_names(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    callbacks = Callbacks()
    resumer = TaskResumer(callbacks)
    resumer.resume(TOKEN, event_for(STORED))
    resumer.resume(TOKEN, event_for(failed("MODERATED", "blocked")))
    resumer.resume(TOKEN, event_for(job(JobState.SUCCEEDED, DetailType.SUCCEEDED, video_url="https://x/v.mp4")))
    resumer.resume(None, event_for(STORED))
    assert [c[:2] for c in callbacks.calls] == [("success", TOKEN), ("failure", TOKEN)]
    assert callbacks.calls[1][2:] == ("MODERATED", "blocked")
    logged = json.dumps([r.__dict__ for r in caplog.records], default=str)
    assert [r.getMessage() for r in caplog.records] == ["task resumed"] * 2 and TOKEN[:24] not in logged


@pytest.mark.parametrize("code", ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist", "ValidationException"])
def test_a_task_that_no_longer_waits_or_cannot_be_resumed_is_done(
    code: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    callbacks = Callbacks(code=code)
    TaskResumer(callbacks).resume(TOKEN, event_for(STORED))  # no raise: nothing is left to do
    assert len(callbacks.calls) == 1
    logged = json.dumps([r.__dict__ for r in caplog.records], default=str)  # the message and its extra keys
    assert token_ref(TOKEN) in logged and code in logged
    assert TOKEN[:24] not in logged


@pytest.mark.parametrize("code", ["ThrottlingException", "AccessDeniedException", "ConnectTimeoutError"])
def test_a_call_step_functions_may_take_later_raises_so_the_event_stays_owed(code: str) -> None:
    with pytest.raises(TaskResumeError) as info:
        TaskResumer(Callbacks(code=code)).resume(TOKEN, event_for(failed("TIMED_OUT", "late")))
    assert info.value.code == code
