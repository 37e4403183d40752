"""Submission decisions, row by row against the two tables in ``grokvideo.submission``'s docstring."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import inspect
import json
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grokvideo import errors
from grokvideo.errors import (
    AuthError,
    CometApiError,
    InvalidRequestError,
    NotFoundError,
    NotSentError,
    RateLimitedError,
    RetryableError,
    ValidationError,
)
from grokvideo.jobs import Job
from grokvideo.models import FailureReason, JobState
from grokvideo.submission import (
    AUTH_RETRY_SECONDS,
    NOT_SENT_RETRY_SECONDS,
    Announce,
    Claim,
    Conflict,
    Refused,
    Reserve,
    Retry,
    Uncertain,
    Wait,
    classify_create,
    decide_delivery,
    describe_input,
    prompt_digest,
    request_digest,
    request_record,
    submission_id,
    uncertain_message,
)
from grokvideo.validation import (
    SUBMISSION_PREFIX,
    EditRequest,
    GenerationRequest,
    S3Location,
    parse_track_request,
    validate_request_id,
)

NOW = 1_773_297_000
KEY = "order-1042/v2"
DIGEST = "d" * 64
OTHER_DIGEST = "e" * 64
SOURCE_ID = "4b2cd27e-0b0d-3dec-c31c-7572daf74bb3"


def reservation(
    state: JobState = JobState.RESERVED,
    *,
    digest: str | None = DIGEST,
    lease_until: int | None = None,
    key: str = KEY,
    **extra: Any,
) -> Job:
    """A reservation item of the jobs table as the submitter writes it."""
    return Job(
        request_id=submission_id(key),
        state=state,
        registered_at=NOW - 30,
        deadline_at=NOW + 3600,
        idempotency_key=key,
        request_digest=digest,
        lease_owner=None if lease_until is None else "submit-1-abcd1234",
        lease_until=lease_until,
        request={"kind": "generation", "prompt": "a fox", "prompt_sha256": prompt_digest("a fox")},
        **extra,
    )


# --- decide_delivery --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "now", "max_wait", "expected"),
    [
        pytest.param(None, NOW, 60, Reserve(), id="none-reserve"),
        # the key already has an outcome: announce it again, create nothing
        pytest.param(
            reservation(JobState.SUBMITTED, job_request_id=SOURCE_ID), NOW, 60, "announce", id="submitted-announce"
        ),
        pytest.param(
            reservation(JobState.FAILED, reason="REJECTED", message="no"), NOW, 60, "announce", id="failed-announce"
        ),
        pytest.param(
            reservation(JobState.SUBMITTED, lease_until=NOW + 30), NOW, 60, "announce", id="submitted-leased-announce"
        ),
        # RESERVED, nobody holds it (a delivery let it go after a 429): the provider has not got it
        pytest.param(reservation(), NOW, 60, "claim-create", id="reserved-no-lease-claim-and-create"),
        # RESERVED, another delivery holds a live lease: wait for it
        pytest.param(reservation(lease_until=NOW + 30), NOW, 60, Wait(30), id="live-lease-wait-remaining"),
        pytest.param(reservation(lease_until=NOW + 30), NOW + 29.5, 60, Wait(1.0), id="live-lease-at-least-1s"),
        pytest.param(reservation(lease_until=NOW + 1), NOW, 60, Wait(1.0), id="live-lease-1s"),
        pytest.param(reservation(lease_until=NOW + 1), NOW + 0.999, 60, Wait(1.0), id="live-lease-1ms-left"),
        pytest.param(reservation(lease_until=NOW + 300), NOW, 60, Wait(60), id="live-lease-capped-by-max-wait"),
        pytest.param(reservation(lease_until=NOW + 300), NOW, 20, Wait(20), id="live-lease-capped-by-lower-max-wait"),
        pytest.param(reservation(lease_until=NOW + 60), NOW, 60, Wait(60), id="live-lease-equal-to-max-wait"),
        # RESERVED, lease expired (its holder died): its create may have gone out: never create again
        pytest.param(reservation(lease_until=NOW), NOW, 60, "claim-settle", id="lease-until-now-is-expired"),
        pytest.param(reservation(lease_until=NOW - 1), NOW, 60, "claim-settle", id="lease-expired"),
        pytest.param(reservation(lease_until=NOW - 86_400), NOW, 60, "claim-settle", id="lease-long-expired"),
        pytest.param(reservation(lease_until=NOW), NOW + 0.5, 60, "claim-settle", id="lease-expired-half-second"),
    ],
)
def test_decide_delivery_rows(existing: Job | None, now: float, max_wait: float, expected: Any) -> None:
    got = decide_delivery(existing, digest=DIGEST, now=now, max_wait=max_wait)
    if expected == "announce":
        assert got == Announce(existing)  # type: ignore[arg-type]
    elif expected == "claim-create":
        assert got == Claim(existing, then_create=True)  # type: ignore[arg-type]
    elif expected == "claim-settle":
        assert got == Claim(existing, then_create=False)  # type: ignore[arg-type]
    else:
        assert got == expected
    if isinstance(got, Wait):
        assert 1.0 <= got.seconds <= max_wait


@pytest.mark.parametrize(
    "existing",
    [
        pytest.param(reservation(digest=OTHER_DIGEST), id="reserved"),
        pytest.param(reservation(digest=OTHER_DIGEST, lease_until=NOW + 30), id="reserved-live-lease"),
        pytest.param(reservation(digest=OTHER_DIGEST, lease_until=NOW - 30), id="reserved-expired-lease"),
        pytest.param(reservation(JobState.SUBMITTED, digest=OTHER_DIGEST), id="submitted"),
        pytest.param(reservation(JobState.FAILED, digest=OTHER_DIGEST), id="failed"),
    ],
)
def test_other_digest_is_a_conflict_whatever_the_state(existing: Job) -> None:
    got = decide_delivery(existing, digest=DIGEST, now=NOW)
    assert isinstance(got, Conflict)
    assert got.error.startswith("idempotency_key: ")  # a "field: message" string for Video Request Rejected
    assert "different request" in got.error


def test_conflict_names_the_key() -> None:
    """The caller must learn which of its keys collided; the submission id alone is our internal hash."""
    got = decide_delivery(reservation(digest=OTHER_DIGEST), digest=DIGEST, now=NOW)
    assert isinstance(got, Conflict)
    assert KEY in got.error, got.error


def test_max_wait_defaults_to_a_minute() -> None:
    assert decide_delivery(reservation(lease_until=NOW + 3600), digest=DIGEST, now=NOW) == Wait(60)


# --- classify_create --------------------------------------------------------------------------


CREATE_ROWS = [
    pytest.param(
        RateLimitedError("HTTP 429", retry_after=7), Retry(7, "RateLimitedError", rate_limited=True), id="429"
    ),
    pytest.param(
        RateLimitedError("HTTP 429", retry_after=0.25),
        Retry(0.25, "RateLimitedError", rate_limited=True),
        id="429-fractional-retry-after",
    ),
    pytest.param(
        RateLimitedError("HTTP 429", retry_after=120, status=None),
        Retry(120, "RateLimitedError", rate_limited=True),
        id="429-in-body",
    ),
    pytest.param(
        NotSentError("POST /v1/videos: ConnectionRefusedError"),
        Retry(NOT_SENT_RETRY_SECONDS, "NotSentError"),
        id="not-sent",
    ),
    pytest.param(AuthError("HTTP 401", status=401), Retry(AUTH_RETRY_SECONDS, "AuthError"), id="401"),
    pytest.param(AuthError("HTTP 403", status=403), Retry(AUTH_RETRY_SECONDS, "AuthError"), id="403"),
    pytest.param(AuthError("the API key secret is unreadable"), Retry(AUTH_RETRY_SECONDS, "AuthError"), id="no-key"),
    pytest.param(InvalidRequestError("HTTP 400: bad prompt", status=400), FailureReason.REJECTED, id="400"),
    pytest.param(InvalidRequestError("HTTP 422", status=422), FailureReason.REJECTED, id="422"),
    pytest.param(
        InvalidRequestError("blocked by moderation", status=400, moderated=True),
        FailureReason.MODERATED,
        id="400-moderated",
    ),
    pytest.param(NotFoundError("task_not_exist", status=404), FailureReason.REJECTED, id="unknown-id"),
    pytest.param(RetryableError("HTTP 500", status=500), Uncertain("HTTP 500"), id="500"),
    pytest.param(RetryableError("HTTP 502", status=502), Uncertain("HTTP 502"), id="502"),
    pytest.param(RetryableError("HTTP 524", status=524), Uncertain("HTTP 524"), id="524"),
    pytest.param(
        RetryableError("POST /v1/videos: ReadTimeout"), Uncertain("POST /v1/videos: ReadTimeout"), id="read-timeout"
    ),
    pytest.param(
        RetryableError("POST /v1/videos: ConnectionResetError"),
        Uncertain("POST /v1/videos: ConnectionResetError"),
        id="reset-after-sending",
    ),
    pytest.param(
        RetryableError("POST /v1/videos: body is not JSON", status=200),
        Uncertain("POST /v1/videos: body is not JSON"),
        id="unreadable-2xx",
    ),
    pytest.param(CometApiError("2xx without an id", status=200), Uncertain("2xx without an id"), id="2xx-no-id"),
    pytest.param(CometApiError("HTTP 302", status=302), Uncertain("HTTP 302"), id="redirect"),
]


@pytest.mark.parametrize(("error", "expected"), CREATE_ROWS)
def test_classify_create_rows(error: CometApiError, expected: Any) -> None:
    got = classify_create(error)
    if isinstance(expected, FailureReason):
        assert isinstance(got, Refused)
        assert got.reason is expected
        assert str(error) in got.message
    else:
        assert got == expected


def test_subclasses_of_retryable_are_not_uncertain() -> None:
    """RateLimitedError and NotSentError are RetryableErrors: the order of the checks is what keeps
    them from being settled as SUBMIT_UNCERTAIN (nothing was created, so asking again is safe)."""
    assert issubclass(RateLimitedError, RetryableError) and issubclass(NotSentError, RetryableError)
    limited = classify_create(RateLimitedError("HTTP 429", retry_after=3))
    not_sent = classify_create(NotSentError("refused"))
    assert isinstance(limited, Retry) and limited.rate_limited and limited.seconds == 3
    assert isinstance(not_sent, Retry) and not not_sent.rate_limited
    assert isinstance(classify_create(RetryableError("HTTP 503", status=503)), Uncertain)
    for verdict in (classify_create(NotSentError("x")), classify_create(AuthError("x"))):
        assert isinstance(verdict, Retry) and verdict.rate_limited is False


def test_every_cometapi_error_type_has_a_row() -> None:
    """A new CometApiError subclass needs a row (and a decision) here."""
    declared = {obj for obj in vars(errors).values() if inspect.isclass(obj) and issubclass(obj, CometApiError)}
    covered = {type(p.values[0]) for p in CREATE_ROWS}
    assert declared == covered


def test_retry_delays() -> None:
    assert 0 < NOT_SENT_RETRY_SECONDS < AUTH_RETRY_SECONDS


# --- submission_id ----------------------------------------------------------------------------


def test_submission_id_is_stable_across_versions() -> None:
    """Stored reservations are found by this id: it must never change for a key."""
    assert submission_id("order-1042") == "submission-bff83cdfb94d8087b6fd49cb20c427dc6013ae2c"
    assert submission_id(KEY) == submission_id(KEY)


@given(st.from_regex(r"[!-~]{1,128}", fullmatch=True))
def test_submission_id_is_a_51_character_request_id(key: str) -> None:
    sid = submission_id(key)
    assert len(sid) == 51
    assert validate_request_id(sid) == sid
    assert sid.startswith(SUBMISSION_PREFIX)
    assert sid == SUBMISSION_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:40]


@given(st.from_regex(r"[!-~]{1,128}", fullmatch=True), st.from_regex(r"[!-~]{1,128}", fullmatch=True))
def test_submission_id_differs_per_key(a: str, b: str) -> None:
    assert (submission_id(a) == submission_id(b)) == (a == b)


@pytest.mark.parametrize("key", ["k", "K", "k ", "order-1042", "order-1043", "x" * 128])
def test_submission_ids_cannot_be_tracked_by_callers(key: str) -> None:
    with pytest.raises(ValidationError, match="reserved"):
        parse_track_request({"request_id": submission_id(key)})


def test_submission_ids_of_similar_keys_differ() -> None:
    keys = ["k", "K", "k ", " k", "order-1042", "order-1043", "x" * 127, "x" * 128]
    assert len({submission_id(k) for k in keys}) == len(keys)


# --- request_digest ---------------------------------------------------------------------------


GEN = GenerationRequest(
    prompt="a red fox in snow",
    duration=6,
    aspect_ratio="16:9",
    resolution="720p",
    model="grok-imagine-video",
    image=S3Location("grokvideo-inputs", "cats/1.png"),
    client_ref="order-7",
    metadata={"k": 1},
    idempotency_key=KEY,
    task_token="AAAA+/==",
)
EDIT = EditRequest(
    prompt="make it snow",
    video="https://cdn.example.com/in.mp4?X-Amz-Signature=abc",
    model="grok-imagine-video",
    client_ref="order-7",
    metadata={"k": 1},
    idempotency_key=KEY,
    task_token="AAAA+/==",
)
EDIT_FROM_SOURCE = EditRequest(prompt="make it snow", source_request_id=SOURCE_ID)

ECHO_ONLY = {
    "client_ref": [None, "other-ref"],
    "metadata": [{}, {"k": 2, "nested": {"a": [1]}}],
    "idempotency_key": [None, "another-key"],
    "task_token": [None, "BBBB"],
}


@pytest.mark.parametrize("base", [GEN, EDIT, EDIT_FROM_SOURCE], ids=["generation", "edit", "edit-from-source"])
@pytest.mark.parametrize(("name", "value"), [(name, value) for name, values in ECHO_ONLY.items() for value in values])
def test_digest_ignores_what_is_not_sent(base: Any, name: str, value: Any) -> None:
    assert request_digest(dataclasses.replace(base, **{name: value})) == request_digest(base)


def test_digest_ignores_all_echo_fields_at_once() -> None:
    bare = dataclasses.replace(GEN, client_ref=None, metadata={}, idempotency_key=None, task_token=None)
    assert request_digest(bare) == request_digest(GEN)


@pytest.mark.parametrize(
    ("base", "changes"),
    [
        pytest.param(GEN, {"prompt": "a red fox in the snow"}, id="prompt"),
        pytest.param(GEN, {"prompt": "a red fox in snow "}, id="prompt-trailing-space"),
        pytest.param(GEN, {"duration": 7}, id="duration"),
        pytest.param(GEN, {"model": "grok-imagine-video-1.5"}, id="model"),
        pytest.param(GEN, {"resolution": "480p"}, id="resolution"),
        pytest.param(GEN, {"resolution": None}, id="resolution-absent"),
        pytest.param(GEN, {"aspect_ratio": "9:16"}, id="aspect-ratio"),
        pytest.param(GEN, {"aspect_ratio": None}, id="aspect-ratio-absent"),
        pytest.param(GEN, {"image": None}, id="image-absent"),
        pytest.param(GEN, {"image": S3Location("grokvideo-inputs", "cats/2.png")}, id="image-other-key"),
        pytest.param(GEN, {"image": S3Location("other-inputs", "cats/1.png")}, id="image-other-bucket"),
        pytest.param(GEN, {"image": "https://cdn.example.com/cats/1.png"}, id="image-https"),
        pytest.param(GEN, {"image": "data:image/png;base64,aGVsbG8="}, id="image-data-url"),
        pytest.param(EDIT, {"prompt": "make it rain"}, id="edit-prompt"),
        pytest.param(EDIT, {"model": "grok-imagine-video-1.5"}, id="edit-model"),
        pytest.param(EDIT, {"video": "https://cdn.example.com/other.mp4"}, id="edit-video"),
        pytest.param(EDIT, {"video": "https://cdn.example.com/in.mp4?X-Amz-Signature=abd"}, id="edit-video-query"),
        pytest.param(EDIT, {"video": S3Location("grokvideo-inputs", "in.mp4")}, id="edit-video-s3"),
        pytest.param(EDIT_FROM_SOURCE, {"source_request_id": "other-job"}, id="edit-source"),
    ],
)
def test_digest_changes_with_what_is_sent(base: Any, changes: dict[str, Any]) -> None:
    assert request_digest(dataclasses.replace(base, **changes)) != request_digest(base)


def test_digest_tells_generation_from_edit() -> None:
    gen = GenerationRequest(prompt="p", image="https://cdn.example.com/a.mp4")
    edit = EditRequest(prompt="p", video="https://cdn.example.com/a.mp4")
    assert request_digest(gen) != request_digest(edit)


def test_digest_is_a_stable_hex_sha256() -> None:
    digest = request_digest(GEN)
    assert digest == request_digest(dataclasses.replace(GEN))
    assert len(digest) == 64 and set(digest) <= set(string.hexdigits.lower())


# --- request_record and describe_input --------------------------------------------------------


def test_record_of_a_generation() -> None:
    request = dataclasses.replace(GEN, image="https://cdn.example.com/in.png?X-Amz-Signature=s3cr3t#frag")
    assert request_record(request) == {
        "kind": "generation",
        "prompt": "a red fox in snow",
        "prompt_sha256": hashlib.sha256(b"a red fox in snow").hexdigest(),
        "model": "grok-imagine-video",
        "duration": 6,
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "image": "https://cdn.example.com/in.png?[query removed]",
    }


def test_record_of_a_minimal_generation_leaves_absent_parameters_out() -> None:
    assert request_record(GenerationRequest(prompt="p")) == {
        "kind": "generation",
        "prompt": "p",
        "prompt_sha256": prompt_digest("p"),
        "model": "grok-imagine-video",
        "duration": 6,
    }


def test_record_of_edits() -> None:
    assert request_record(EDIT) == {
        "kind": "edit",
        "prompt": "make it snow",
        "prompt_sha256": prompt_digest("make it snow"),
        "model": "grok-imagine-video",
        "video": "https://cdn.example.com/in.mp4?[query removed]",
    }
    assert request_record(EDIT_FROM_SOURCE) == {
        "kind": "edit",
        "prompt": "make it snow",
        "prompt_sha256": prompt_digest("make it snow"),
        "model": "grok-imagine-video",
        "source_request_id": SOURCE_ID,
    }
    s3 = dataclasses.replace(EDIT, video=S3Location("grokvideo-inputs", "clips/in.mp4"))
    assert request_record(s3)["video"] == "s3://grokvideo-inputs/clips/in.mp4"


def test_prompt_digest_is_the_utf8_sha256() -> None:
    assert (
        prompt_digest("renard roux sous la neige — é")
        == hashlib.sha256("renard roux sous la neige — é".encode()).hexdigest()
    )
    assert request_record(GenerationRequest(prompt="é"))["prompt_sha256"] == hashlib.sha256("é".encode()).hexdigest()


SECRET_PAYLOAD = base64.b64encode(b"\x89PNG secret pixels " * 8).decode()


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(dataclasses.replace(GEN, image=f"data:image/png;base64,{SECRET_PAYLOAD}"), id="data-url"),
        pytest.param(
            dataclasses.replace(GEN, image="https://cdn.example.com/in.png?X-Amz-Signature=s3cr3tsig"), id="query"
        ),
        pytest.param(dataclasses.replace(EDIT, video="https://cdn.example.com/in.mp4?token=s3cr3tsig"), id="edit"),
    ],
)
def test_record_keeps_no_secret_and_no_echo_field(request_: Any) -> None:
    record = request_record(request_)
    text = json.dumps(record)
    for secret in (SECRET_PAYLOAD, "s3cr3tsig", request_.task_token, "X-Amz-Signature=", "token="):
        assert secret not in text
    for name in ("task_token", "metadata", "client_ref", "idempotency_key"):
        assert name not in record
    assert '"k": 1' not in text  # the caller's metadata
    assert set(record) <= {
        "kind",
        "prompt",
        "prompt_sha256",
        "model",
        "duration",
        "aspect_ratio",
        "resolution",
        "source_request_id",
        "image",
        "video",
    }


def test_describe_input_examples() -> None:
    assert describe_input("https://cdn.example.com/in.png") == "https://cdn.example.com/in.png"
    assert describe_input("https://cdn.example.com/in.png?a=1") == "https://cdn.example.com/in.png?[query removed]"
    assert describe_input("https://cdn.example.com/in.png?") == "https://cdn.example.com/in.png?[query removed]"
    assert describe_input("https://cdn.example.com/in.png#t=1") == "https://cdn.example.com/in.png"
    assert describe_input(S3Location("inputs", "a/b c.png")) == "s3://inputs/a/b c.png"
    raw = b"hello"
    assert describe_input("data:image/png;base64,aGVsbG8=") == (
        f"data:image/png;base64 (5 bytes, sha256 {hashlib.sha256(raw).hexdigest()[:16]})"
    )


_HOSTS = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}", fullmatch=True)
_PATHS = st.text(alphabet=string.ascii_letters + string.digits + "-._~%/!$&'()*+,;=:@", max_size=60)
_QUERIES = st.text(alphabet=string.ascii_letters + string.digits + "-._~%/!$&'()*+,;=:@?", min_size=1, max_size=200)
_FRAGMENTS = st.one_of(st.just(""), st.text(alphabet=string.ascii_letters + "=&?#/", max_size=20).map("#{}".format))


@settings(max_examples=300, deadline=None)
@given(
    host=_HOSTS,
    port=st.one_of(st.just(""), st.integers(1, 65535).map(":{}".format)),
    path=_PATHS,
    query=_QUERIES,
    fragment=_FRAGMENTS,
)
def test_describe_input_never_keeps_a_query(host: str, port: str, path: str, query: str, fragment: str) -> None:
    base = f"https://{host}{port}/{path}"
    url = f"{base}?{query}{fragment}"
    got = describe_input(url)
    assert "?" + query not in got
    assert got == base + "?[query removed]"


@settings(max_examples=100, deadline=None)
@given(host=_HOSTS, signature=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_describe_input_drops_a_presigned_signature(host: str, signature: str) -> None:
    url = f"https://{host}/in.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={signature}"
    got = describe_input(url)
    assert signature not in got and "X-Amz" not in got


@settings(max_examples=100, deadline=None)
@given(payload=st.binary(min_size=1, max_size=300), kind=st.sampled_from(["png", "jpeg", "webp"]))
def test_describe_input_never_keeps_a_data_payload(payload: bytes, kind: str) -> None:
    encoded = base64.b64encode(payload).decode()
    got = describe_input(f"data:image/{kind};base64,{encoded}")
    assert got == (
        f"data:image/{kind};base64 ({len(payload)} bytes, sha256 {hashlib.sha256(payload).hexdigest()[:16]})"
    )
    if len(encoded) > 16:
        assert encoded not in got


# --- uncertain_message ------------------------------------------------------------------------


def test_uncertain_message_says_how_to_find_the_job() -> None:
    sha = prompt_digest("a red fox in snow")
    text = uncertain_message(
        idempotency_key=KEY, prompt_sha256=sha, attempted_at="2026-11-29T10:00:00Z", why="read timed out"
    )
    for part in (KEY, sha, "2026-11-29T10:00:00Z", "read timed out", "Video Job Track Requested"):
        assert part in text
    assert "a red fox" not in text  # the digest stands in for the prompt
