"""grokvideo.status: every response shape in docs/PROVIDER.md -> one PollStatus or one CometApiError."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from decimal import Decimal
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grokvideo import events
from grokvideo.errors import (
    AuthError,
    CometApiError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    RetryableError,
)
from grokvideo.events import DetailType, EventPublisher
from grokvideo.jobs import Job
from grokvideo.models import (
    MAX_COST_USD,
    MAX_DURATION_SECONDS,
    Failed,
    FailureReason,
    JobState,
    Pending,
    Succeeded,
)
from grokvideo.outbox import event_for
from grokvideo.status import (
    DEFAULT_RETRY_AFTER,
    EARLIEST_EPOCH,
    FUTURE_SLACK_SECONDS,
    MAX_RETRY_AFTER,
    MIN_RETRY_AFTER,
    VIDEO_URL_MAX_LENGTH,
    is_valid_request_id,
    parse_created,
    parse_retry_after,
    parse_status,
)
from tests.schema_check import assert_valid_event

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
URL = "https://vidgen.x.ai/xai-vidgen-bucket/xai-video-72924fdc-e6d7-4885-b318-8a367aaa9a02.mp4"
OTHER_URL = "https://vidgen.x.ai/xai-vidgen-bucket/other.mp4"


def raw(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def seed() -> dict[str, Any]:
    return json.loads((FIXTURES / "get-video-success.json").read_bytes())


def envelope(
    status: str = "IN_PROGRESS",
    nested_status: str | None = "processing",
    *,
    progress: Any = "40%",
    fail_reason: str = "",
    video: dict[str, Any] | None = None,
) -> dict[str, Any]:
    nested: dict[str, Any] = {"model": "grok-imagine-video"}
    if nested_status is not None:
        nested["status"] = nested_status
    if video is not None:
        nested["video"] = video
    return {
        "code": "success",
        "message": "",
        "data": {
            "task_id": "t-1",
            "action": "VIDEO_GENERATION",
            "status": status,
            "fail_reason": fail_reason,
            "submit_time": 1773297002,
            "start_time": 0,
            "finish_time": 0,
            "progress": progress,
            "data": nested,
        },
    }


# --- success ----------------------------------------------------------------------------------


def test_seed_fixture_is_success() -> None:
    body = (FIXTURES / "get-video-success.json").read_bytes()
    assert parse_status(200, body) == Succeeded(
        video_url=URL,
        duration=1,
        model="grok-imagine-video",
        cost_usd=0.05,
        completed_at=1773297014,
        submitted_at=1773297002,
    )


def test_video_url_preferred_over_fail_reason() -> None:
    doc = seed()
    doc["data"]["fail_reason"] = OTHER_URL
    result = parse_status(200, raw(doc))
    assert isinstance(result, Succeeded) and result.video_url == URL


def test_fail_reason_url_used_when_video_url_missing() -> None:
    doc = seed()
    del doc["data"]["data"]["video"]["url"]
    result = parse_status(200, raw(doc))
    assert isinstance(result, Succeeded) and result.video_url == URL


def test_fail_reason_url_ignored_unless_status_is_success() -> None:
    doc = envelope("IN_PROGRESS", "processing", fail_reason=URL)
    assert parse_status(200, raw(doc)) == Pending("IN_PROGRESS/processing", 40)


@pytest.mark.parametrize("fail_reason", ["ftp://vidgen.x.ai/v.mp4", "javascript:alert(1)", "not a url", "https://"])
def test_fail_reason_must_be_http_url(fail_reason: str) -> None:
    doc = seed()
    del doc["data"]["data"]["video"]["url"]
    doc["data"]["fail_reason"] = fail_reason
    result = parse_status(200, raw(doc))
    assert isinstance(result, Pending) and result.missing_url


def test_success_without_any_url_is_pending_missing_url() -> None:
    doc = envelope("SUCCESS", "done", progress="100%", video={"duration": 1, "respect_moderation": True})
    assert parse_status(200, raw(doc)) == Pending("SUCCESS/done", 100, missing_url=True)


def test_wrapper_success_waits_for_nested_done() -> None:
    doc = envelope("SUCCESS", "processing", progress="99%", fail_reason=URL)
    assert parse_status(200, raw(doc)) == Pending("SUCCESS/processing", 99)


def test_wrapper_success_without_nested_status_uses_fail_reason() -> None:
    doc = envelope("SUCCESS", None, progress="100%", fail_reason=URL)
    result = parse_status(200, raw(doc))
    assert isinstance(result, Succeeded) and result.video_url == URL


def test_bare_xai_object_done() -> None:
    body = {
        "status": "done",
        "model": "grok-imagine-video",
        "video": {"url": URL, "duration": 6, "respect_moderation": True},
        "usage": {"cost_in_usd_ticks": 3_000_000_000},
    }
    assert parse_status(200, raw(body)) == Succeeded(URL, 6.0, "grok-imagine-video", 0.3, None)


def test_bare_video_without_status_is_done() -> None:
    body = {"video": {"url": URL, "duration": 1, "respect_moderation": True}, "model": "grok-imagine-video"}
    result = parse_status(200, raw(body))
    assert isinstance(result, Succeeded) and result.video_url == URL and result.cost_usd is None


def test_succeeded_ignores_bad_optional_fields() -> None:
    doc = seed()
    doc["data"]["data"]["usage"]["cost_in_usd_ticks"] = "lots"
    doc["data"]["data"]["video"]["duration"] = -3
    doc["data"]["data"]["model"] = {"x": 1}
    doc["data"]["finish_time"] = True
    doc["data"]["submit_time"] = "yesterday"
    assert parse_status(200, raw(doc)) == Succeeded(URL)


# --- pending ----------------------------------------------------------------------------------


def test_bare_pending_with_int_progress() -> None:
    assert parse_status(200, raw({"status": "pending", "model": "grok-imagine-video", "progress": 42})) == (
        Pending("pending", 42)
    )


def test_request_id_only_is_pending() -> None:
    assert parse_status(200, raw({"request_id": "4b2cd27e-0b0d-3dec-c31c-7572daf74bb3"})) == Pending()


@pytest.mark.parametrize("body", [b"", b"   \n", b"{}"])
@pytest.mark.parametrize("status", [200, 202, 204])
def test_empty_answers_are_pending(status: int, body: bytes) -> None:
    result = parse_status(status, body)
    assert isinstance(result, Pending) and not result.missing_url


def test_202_with_json_body_is_parsed() -> None:
    assert parse_status(202, raw({"status": "queued", "progress": 0})) == Pending("queued", 0)


@pytest.mark.parametrize("wrapper", ["NOT_START", "SUBMITTED", "QUEUED", "IN_PROGRESS", "UNKNOWN", "", "SOMETHING_NEW"])
@pytest.mark.parametrize("nested", ["pending", "queued", "processing", "", "brand_new", None])
def test_unfinished_and_unknown_statuses_are_pending(wrapper: str, nested: str | None) -> None:
    result = parse_status(200, raw(envelope(wrapper, nested, fail_reason=URL)))
    assert isinstance(result, Pending) and not result.missing_url


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("40%", 40), ("100%", 100), (" 7 % ", 7), ("0%", 0), ("55", 55), ("12.5%", 12),
        (40, 40), (12.9, 12), (150, 100), ("250%", 100),
        (-5, None), ("-5%", None), ("abc", None), ("", None), (None, None), (True, None),
        ([40], None), ({"p": 1}, None), (10**400, None),
    ],
)  # fmt: skip
def test_progress_parsing(value: Any, expected: int | None) -> None:
    doc = envelope("IN_PROGRESS", None, progress=value)
    assert parse_status(200, raw(doc)) == Pending("IN_PROGRESS", expected)


def test_nested_progress_wins_over_wrapper() -> None:
    doc = envelope("IN_PROGRESS", "processing", progress="10%")
    doc["data"]["data"]["progress"] = 30
    assert parse_status(200, raw(doc)) == Pending("IN_PROGRESS/processing", 30)


# --- job failures -----------------------------------------------------------------------------


def test_respect_moderation_false_is_moderated() -> None:
    doc = seed()
    doc["data"]["data"]["video"]["respect_moderation"] = False
    result = parse_status(200, raw(doc))
    assert isinstance(result, Failed) and result.reason is FailureReason.MODERATED


def test_nested_failed_uses_provider_message() -> None:
    doc = envelope("FAILURE", "failed", fail_reason="upstream render crashed")
    assert parse_status(200, raw(doc)) == Failed(FailureReason.PROVIDER_FAILED, "upstream render crashed")


def test_nested_failed_with_error_object() -> None:
    body = {"status": "failed", "error": {"code": "internal", "message": "GPU on fire"}}
    assert parse_status(200, raw(body)) == Failed(FailureReason.PROVIDER_FAILED, "GPU on fire")


def test_nested_failed_mentioning_moderation() -> None:
    doc = envelope("IN_PROGRESS", "failed", fail_reason="Rejected by content moderation")
    result = parse_status(200, raw(doc))
    assert isinstance(result, Failed) and result.reason is FailureReason.MODERATED


@pytest.mark.parametrize("wrapper", ["FAILURE", "FAILED", "ERROR", "failure"])
def test_wrapper_failure_is_provider_failed(wrapper: str) -> None:
    doc = envelope(wrapper, "processing", fail_reason="task timed out upstream")
    assert parse_status(200, raw(doc)) == Failed(FailureReason.PROVIDER_FAILED, "task timed out upstream")


def test_wrapper_failure_without_text_has_a_message() -> None:
    result = parse_status(200, raw(envelope("FAILURE", None)))
    assert isinstance(result, Failed) and result.reason is FailureReason.PROVIDER_FAILED
    assert "FAILURE" in result.message


@pytest.mark.parametrize(
    "url", [URL, "https://user:secret@vidgen.x.ai/v.mp4", "HTTPS://vidgen.x.ai/vidéo.mp4", URL + "a" * 3000]
)
def test_a_failure_whose_only_text_is_a_url_does_not_echo_it(url: str) -> None:
    result = parse_status(200, raw(envelope("FAILURE", None, fail_reason=url)))
    assert result == Failed(FailureReason.PROVIDER_FAILED, "the provider reported FAILURE")


@pytest.mark.parametrize(
    "text", ["prompt blocked by moderation", "Safety system rejected it", "violates content policy"]
)
def test_wrapper_failure_mentioning_moderation(text: str) -> None:
    result = parse_status(200, raw(envelope("FAILURE", None, fail_reason=text)))
    assert isinstance(result, Failed) and result.reason is FailureReason.MODERATED


def test_wrapper_failure_loses_to_a_real_video() -> None:
    doc = seed()
    doc["data"]["status"] = "FAILURE"
    assert isinstance(parse_status(200, raw(doc)), Succeeded)


@pytest.mark.parametrize("doc", [envelope("IN_PROGRESS", "expired"), {"status": "expired"}])
def test_expired(doc: dict[str, Any]) -> None:
    result = parse_status(200, raw(doc))
    assert isinstance(result, Failed) and result.reason is FailureReason.EXPIRED


def test_failure_message_is_truncated_and_one_line() -> None:
    doc = envelope("FAILURE", "failed", fail_reason="boom\n" * 500)
    result = parse_status(200, raw(doc))
    assert isinstance(result, Failed)
    assert len(result.message) <= 300 and "\n" not in result.message


# --- HTTP errors ------------------------------------------------------------------------------


def comet_error(message: str, code: str, type_: str = "comet_api_error") -> bytes:
    return raw({"error": {"message": message, "type": type_, "param": "", "code": code}})


def task_error(code: str, message: str = "") -> bytes:
    return raw({"code": code, "message": message or code, "data": None})


@pytest.mark.parametrize("status", [500, 502, 503, 504, 524, 520, 599])
@pytest.mark.parametrize("body", [b"", b"<html>Bad gateway</html>", comet_error("upstream error", "x")])
def test_server_errors_are_retryable(status: int, body: bytes) -> None:
    with pytest.raises(RetryableError) as info:
        parse_status(status, body)
    assert type(info.value) is RetryableError and info.value.status == status


def test_500_invalid_request_is_not_retryable() -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_status(500, comet_error("bad duration (request id: 1)", "invalid_request"))
    assert info.value.status == 500 and info.value.code == "invalid_request" and not info.value.moderated


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors(status: int) -> None:
    with pytest.raises(AuthError) as info:
        parse_status(status, comet_error("invalid token", "invalid_api_key"))
    assert info.value.status == status


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, b""),
        (404, comet_error("not found", "not_found")),
        (400, task_error("task_not_exist")),
        (400, comet_error("task_not_exist", "task_not_exist")),
        (200, task_error("task_not_exist")),
        (422, task_error("task_not_exist")),
    ],
)
def test_not_found(status: int, body: bytes) -> None:
    with pytest.raises(NotFoundError):
        parse_status(status, body)


def test_404_html_page_is_a_wrong_path_not_an_unknown_id() -> None:
    with pytest.raises(RetryableError):
        parse_status(404, b"<!doctype html><title>Not Found</title>")


@pytest.mark.parametrize("status", [400, 422, 409])
def test_invalid_request(status: int) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_status(status, comet_error("duration must be 1-15", "invalid_request"))
    assert not info.value.moderated and info.value.status == status


@pytest.mark.parametrize(
    "body",
    [
        comet_error("Your request was rejected by the safety system", "x"),
        comet_error("rejected", "content_moderation"),
        task_error("fail", "blocked by moderation"),
    ],
)
@pytest.mark.parametrize("status", [400, 422])
def test_moderation_rejection(status: int, body: bytes) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_status(status, body)
    assert info.value.moderated


def test_429_is_rate_limited_with_retry_after() -> None:
    with pytest.raises(RateLimitedError) as info:
        parse_status(429, comet_error("too many requests", "rate_limit"), retry_after="17")
    assert info.value.retry_after == 17 and info.value.status == 429
    with pytest.raises(RateLimitedError) as info:
        parse_status(429, b"<html>slow down</html>")
    assert info.value.retry_after == DEFAULT_RETRY_AFTER


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_is_a_configuration_problem(status: int) -> None:
    with pytest.raises(CometApiError) as info:
        parse_status(status, b"<html>Moved</html>")
    assert type(info.value) is CometApiError and "CometApiBaseUrl" in str(info.value)


@pytest.mark.parametrize("status", [0, 99, 100, 101, 600, 999, -1])
def test_impossible_statuses_are_retryable(status: int) -> None:
    with pytest.raises(RetryableError):
        parse_status(status, b"{}")


@pytest.mark.parametrize("status", [408, 425])
def test_client_timeouts_are_retryable(status: int) -> None:
    with pytest.raises(RetryableError):
        parse_status(status, b"")


@pytest.mark.parametrize(
    "body",
    [b"<html><body>Welcome</body></html>", b"OK", b"\xff\xfe\x00garbage", b"[1, 2]", b'"done"', b"null",
     b'{"status": NaN}', b"[" * 100_000, b'{"a": 1'],
)  # fmt: skip
def test_non_json_or_non_object_success_body_is_retryable(body: bytes) -> None:
    with pytest.raises(RetryableError) as info:
        parse_status(200, body)
    assert len(str(info.value)) < 200


def test_200_with_error_envelope_is_an_error() -> None:
    with pytest.raises(RetryableError):
        parse_status(200, comet_error("upstream hiccup", "upstream_error"))
    with pytest.raises(InvalidRequestError):
        parse_status(200, comet_error("bad", "invalid_request"))


def test_error_text_is_truncated_and_scrubbed() -> None:
    message = "Bearer sk-abcdefghijklmnop rejected; see https://x.example/p?sig=SECRET " + "x" * 5000
    with pytest.raises(InvalidRequestError) as info:
        parse_status(400, comet_error(message, "invalid_request"))
    text = str(info.value)
    assert len(text) < 400
    assert "sk-abcdefghijklmnop" not in text and "SECRET" not in text


def test_non_json_error_body_is_never_echoed() -> None:
    with pytest.raises(RetryableError) as info:
        parse_status(502, b"<html>" + b"secret-ish page " * 1000 + b"</html>")
    assert "secret-ish" not in str(info.value)


# --- Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, DEFAULT_RETRY_AFTER), ("", DEFAULT_RETRY_AFTER), ("  ", DEFAULT_RETRY_AFTER),
        ("12", 12.0), (" 7 ", 7.0), ("1.5", 1.5), ("0", MIN_RETRY_AFTER), ("300", 300.0),
        ("301", MAX_RETRY_AFTER), ("86400", MAX_RETRY_AFTER), ("9" * 5000, MAX_RETRY_AFTER),
        ("-5", DEFAULT_RETRY_AFTER), ("soon", DEFAULT_RETRY_AFTER), ("1e3", DEFAULT_RETRY_AFTER),
        ("\u0663", DEFAULT_RETRY_AFTER), ("Mon, 99 Foo 2026 99:99:99 GMT", DEFAULT_RETRY_AFTER),
    ],
)  # fmt: skip
def test_retry_after_seconds(header: str | None, expected: float) -> None:
    assert parse_retry_after(header) == expected


def test_retry_after_http_date() -> None:
    now = 1_773_297_000.0
    assert parse_retry_after(formatdate(now + 42, usegmt=True), now=now) == 42.0
    assert parse_retry_after(formatdate(now - 42, usegmt=True), now=now) == MIN_RETRY_AFTER
    assert parse_retry_after(formatdate(now + 86400, usegmt=True), now=now) == MAX_RETRY_AFTER
    assert parse_retry_after("Wed, 11 Mar 2026 06:30:42 -0000", now=1773210600.0) == 42.0


# --- create answers ---------------------------------------------------------------------------


def test_parse_created_fixture() -> None:
    body = (FIXTURES / "create-video.json").read_bytes()
    assert parse_created(200, body) == "4b2cd27e-0b0d-3dec-c31c-7572daf74bb3"


@pytest.mark.parametrize(
    "doc",
    [
        {"code": "success", "data": {"task_id": "abc-1"}},
        {"code": "success", "data": "abc-1"},
        {"id": "abc-1"},
    ],
)
def test_parse_created_tolerates_wrappers(doc: dict[str, Any]) -> None:
    assert parse_created(200, raw(doc)) == "abc-1"


@pytest.mark.parametrize(
    "body", [b"", b"{}", raw({"request_id": ""}), raw({"request_id": "../x"}), raw({"request_id": 5}),
             raw({"request_id": "x" * 200})],
)  # fmt: skip
def test_parse_created_without_valid_id(body: bytes) -> None:
    with pytest.raises(CometApiError) as info:
        parse_created(200, body)
    assert type(info.value) is CometApiError  # not retryable: the job may exist already


def test_parse_created_errors() -> None:
    with pytest.raises(RetryableError):
        parse_created(200, b"<html>hello</html>")
    with pytest.raises(RateLimitedError) as info:
        parse_created(429, b"", "3")
    assert info.value.retry_after == 3
    with pytest.raises(InvalidRequestError):
        parse_created(422, comet_error("size is not allowed", "invalid_request"))
    with pytest.raises(AuthError):
        parse_created(401, b"")
    with pytest.raises(InvalidRequestError) as moderated:
        parse_created(400, comet_error("prompt violates safety policy", "x"))
    assert moderated.value.moderated


@pytest.mark.parametrize(
    ("value", "ok"),
    [("abc_123-XYZ", True), ("a" * 128, True), ("", False), ("a" * 129, False), ("../x", False),
     ("a/b", False), ("a b", False), ("a\n", False), ("\u00e9", False), (None, False), (12, False)],
)  # fmt: skip
def test_request_id_rule(value: object, ok: bool) -> None:
    assert is_valid_request_id(value) is ok


# --- properties -------------------------------------------------------------------------------

STATUS_CODES = st.one_of(
    st.sampled_from([200, 201, 202, 204, 301, 400, 401, 403, 404, 408, 410, 422, 429, 500, 502, 503, 524]),
    st.integers(min_value=-10, max_value=1000),
)
HEADERS = st.one_of(st.none(), st.text(max_size=40), st.integers(0, 10**6).map(str))
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
    st.sampled_from(["done", "failed", "expired", "SUCCESS", "FAILURE", "pending", "100%", "40%", URL,
                     "ftp://x/y", "https://", "http://[::1", "task_not_exist", "invalid_request",
                     "moderation", "data:video/mp4;base64,AAAA"]),
)  # fmt: skip
KEYS = st.sampled_from(
    ["code", "message", "data", "status", "fail_reason", "progress", "video", "url", "duration",
     "respect_moderation", "usage", "cost_in_usd_ticks", "model", "finish_time", "error", "request_id",
     "type", "task_id", "completed_at"]
)  # fmt: skip
ANY_JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS | st.text(max_size=8), children, max_size=6),
    max_leaves=30,
)
STATUSES = (
    st.sampled_from(
        [
            "done",
            "failed",
            "expired",
            "pending",
            "processing",
            "SUCCESS",
            "FAILURE",
            "IN_PROGRESS",
            "ERROR",
            "",
        ]
    )
    | SCALARS
)
URLS = st.sampled_from([URL, "http://127.0.0.1/v.mp4", "ftp://x/v.mp4", "https://", "", "https://a b/c"]) | SCALARS
VIDEO = (
    st.fixed_dictionaries(
        {}, optional={"url": URLS, "duration": SCALARS, "respect_moderation": st.booleans() | ANY_JSON}
    )
    | ANY_JSON
)
NESTED = st.fixed_dictionaries(
    {},
    optional={
        "status": STATUSES, "video": VIDEO, "model": SCALARS, "progress": SCALARS, "error": ANY_JSON,
        "usage": st.fixed_dictionaries({}, optional={"cost_in_usd_ticks": SCALARS}) | SCALARS,
        "fail_reason": URLS, "message": SCALARS,
    },
)  # fmt: skip
WRAPPER = st.fixed_dictionaries(
    {},
    optional={"status": STATUSES, "fail_reason": URLS, "progress": SCALARS, "finish_time": SCALARS,
              "data": NESTED | ANY_JSON, "video": VIDEO, "task_id": SCALARS},
)  # fmt: skip
SHAPED = st.one_of(
    st.fixed_dictionaries({}, optional={"code": SCALARS, "message": SCALARS, "data": WRAPPER | ANY_JSON}),
    NESTED,
    st.fixed_dictionaries({}, optional={"error": ANY_JSON, "code": SCALARS, "request_id": SCALARS}),
)


def check_outcome(status: int, body: bytes, retry_after: str | None) -> None:
    try:
        result = parse_status(status, body, retry_after=retry_after)
    except CometApiError as exc:
        assert len(str(exc)) <= 600
        if isinstance(exc, RateLimitedError):
            assert MIN_RETRY_AFTER <= exc.retry_after <= MAX_RETRY_AFTER
        return
    assert 200 <= status < 300
    assert isinstance(result, Pending | Succeeded | Failed)
    if isinstance(result, Succeeded):
        assert result.video_url.startswith(("http://", "https://"))
        assert result.cost_usd is None or (math.isfinite(result.cost_usd) and result.cost_usd >= 0)
        assert result.duration is None or math.isfinite(result.duration)
    elif isinstance(result, Pending):
        assert result.progress is None or 0 <= result.progress <= 100
        assert len(result.provider_status) <= 64
    else:
        assert isinstance(result.reason, FailureReason) and result.message and len(result.message) <= 300


def check_created(status: int, body: bytes) -> None:
    try:
        request_id = parse_created(status, body)
    except CometApiError:
        return
    assert is_valid_request_id(request_id)


PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(status=STATUS_CODES, body=st.binary(max_size=300), retry_after=HEADERS)
def test_arbitrary_bytes_never_escape(status: int, body: bytes, retry_after: str | None) -> None:
    check_outcome(status, body, retry_after)
    check_created(status, body)


@PROPERTY
@given(status=STATUS_CODES, doc=ANY_JSON, retry_after=HEADERS)
def test_arbitrary_json_never_escapes(status: int, doc: Any, retry_after: str | None) -> None:
    body = json.dumps(doc).encode()  # may contain NaN/Infinity: must be refused, not crash
    check_outcome(status, body, retry_after)
    check_created(status, body)


@PROPERTY
@given(status=STATUS_CODES, doc=SHAPED, retry_after=HEADERS)
def test_shaped_json_never_escapes(status: int, doc: Any, retry_after: str | None) -> None:
    body = json.dumps(doc).encode()
    check_outcome(status, body, retry_after)
    check_outcome(200, body, retry_after)
    check_created(status, body)


@PROPERTY
@given(header=st.text(max_size=60))
def test_retry_after_is_always_bounded(header: str) -> None:
    assert MIN_RETRY_AFTER <= parse_retry_after(header) <= MAX_RETRY_AFTER


@pytest.mark.parametrize("url", [URL, "http://127.0.0.1:8080/v.mp4", "https://vidgen.x.ai/a.mp4?sig=1"])
def test_any_http_url_is_kept_verbatim(url: str) -> None:
    doc = seed()
    doc["data"]["data"]["video"]["url"] = url
    result = parse_status(200, raw(doc))
    assert isinstance(result, Succeeded) and result.video_url == url


# --- only values the table can store and the events' schemas accept ---------------------------
#
# "No job left behind": whatever the provider sends, a transition and the event it owes can never
# raise. DynamoDB numbers have at most 38 significant digits and a magnitude of 1e-130..1e126;
# its strings must be valid UTF-8; the events' schemas bound times, numbers and the video URL.

NOW = 1773297100  # a fixed clock for the plausible-time window
SERIALIZER = TypeSerializer()


def storable(number: float | int) -> bool:
    """True when DynamoDB can hold ``number`` as written by the job store (``Decimal(str(x))``)."""
    try:
        SERIALIZER.serialize(Decimal(str(number)))
    except (TypeError, ValueError, ArithmeticError):
        return False
    return True


def utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def test_a_far_future_finish_time_is_unknown() -> None:
    doc = seed()
    doc["data"]["finish_time"] = 3e11  # the year 11476: no datetime, no event
    doc["data"]["submit_time"] = 3e11
    result = parse_status(200, raw(doc))
    assert isinstance(result, Succeeded)
    assert (result.completed_at, result.submitted_at) == (None, None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1773297014, 1773297014), (1773297014.9, 1773297014), (EARLIEST_EPOCH, EARLIEST_EPOCH),
        (NOW + FUTURE_SLACK_SECONDS, NOW + FUTURE_SLACK_SECONDS),
        (EARLIEST_EPOCH - 1, None), (NOW + FUTURE_SLACK_SECONDS + 1, None), (3e11, None),
        (1773297014000, None), (5, None), (0, None), (-1773297014, None), (10**30, None), (1e300, None),
        (10**400, None), ("1773297014", None), (True, None), (None, None),
    ],
)  # fmt: skip
def test_provider_times_outside_the_plausible_window_are_unknown(value: Any, expected: int | None) -> None:
    doc = seed()
    doc["data"]["finish_time"] = value
    doc["data"]["submit_time"] = value
    result = parse_status(200, raw(doc), now=NOW)
    assert isinstance(result, Succeeded)
    assert (result.completed_at, result.submitted_at) == (expected, expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1.0), (6.5, 6.5), (1.2345678, 1.235), (0.0006, 0.001), (MAX_DURATION_SECONDS, 3600.0),
        (0, None), (0.0004, None), (-1, None), (3600.001, None), (1e200, None), (1e-200, None),
        (10**60, None), (10**400, None), ("6", None), (True, None),
    ],
)  # fmt: skip
def test_duration_is_bounded_and_rounded_to_milliseconds(value: Any, expected: float | None) -> None:
    doc = seed()
    doc["data"]["data"]["video"]["duration"] = value
    result = parse_status(200, raw(doc))
    assert isinstance(result, Succeeded) and result.duration == expected
    assert result.duration is None or storable(result.duration)


@pytest.mark.parametrize(
    ("ticks", "expected"),
    [
        (500_000_000, 0.05), (0, 0.0), (1, 1e-10), (1e-190, 0.0), (1e16, MAX_COST_USD),
        (1.0000001e16, None), (1e200, None), (10**60, None), (10**400, None), (-5, None), ("5", None),
    ],
)  # fmt: skip
def test_cost_is_bounded_and_rounded_to_one_tick(ticks: Any, expected: float | None) -> None:
    doc = seed()
    doc["data"]["data"]["usage"]["cost_in_usd_ticks"] = ticks
    result = parse_status(200, raw(doc))
    assert isinstance(result, Succeeded) and result.cost_usd == expected
    assert result.cost_usd is None or storable(result.cost_usd)


def test_texts_never_carry_a_lone_surrogate() -> None:
    failed = parse_status(200, raw(envelope("FAILURE", "failed", fail_reason="render \ud800 crashed")))
    assert failed == Failed(FailureReason.PROVIDER_FAILED, "render \ufffd crashed")
    doc = seed()
    doc["data"]["data"]["model"] = "grok\udfff"
    doc["data"]["status"] = "SUCCESS\udc80"
    succeeded = parse_status(200, raw(doc))
    assert isinstance(succeeded, Succeeded) and succeeded.model == "grok\ufffd"
    pending = parse_status(200, raw(envelope("QUEUED\ud800", "\udbff")))
    assert isinstance(pending, Pending) and utf8(pending.provider_status)
    with pytest.raises(InvalidRequestError) as info:
        parse_status(400, raw({"error": {"message": "bad \ud800 prompt", "code": "x\udc00"}}))
    assert utf8(str(info.value)) and "bad \ufffd prompt" in str(info.value)


def test_the_scheme_of_the_video_url_is_lower_cased() -> None:
    for given_url in ("HTTPS://vidgen.x.ai/v.mp4?Sig=AbC", "Https://vidgen.x.ai/v.mp4?Sig=AbC"):
        doc = seed()
        doc["data"]["data"]["video"]["url"] = given_url
        result = parse_status(200, raw(doc))
        assert isinstance(result, Succeeded) and result.video_url == "https://vidgen.x.ai/v.mp4?Sig=AbC"


def test_a_url_longer_than_the_schema_allows_is_no_usable_url() -> None:
    fits = "https://vidgen.x.ai/" + "a" * (VIDEO_URL_MAX_LENGTH - 24) + ".mp4"
    assert len(fits) == VIDEO_URL_MAX_LENGTH
    doc = seed()
    doc["data"]["data"]["video"]["url"] = fits
    assert parse_status(200, raw(doc)) == replace(parse_status(200, raw(seed())), video_url=fits)
    too_long = fits[:-4] + "a.mp4"
    doc["data"]["data"]["video"]["url"] = doc["data"]["fail_reason"] = too_long
    result = parse_status(200, raw(doc))
    assert isinstance(result, Pending) and result.missing_url


@pytest.mark.parametrize(
    "url",
    [
        "https://vidgen.x.ai/vidéo.mp4",  # an IRI, not a URI
        "https://vidgën.x.ai/v.mp4",
        "https://vidgen.x.ai/a%zz.mp4",
        "https://vidgen.x.ai/a%2.mp4",
        "https://vidgen.x.ai/a[1].mp4",
        "https://vidgen.x.ai/a.mp4#one#two",
        'https://vidgen.x.ai/a"b.mp4',
        "https://vidgen.x.ai/a\\b.mp4",
        "https://vidgen.x.ai/a^b|c.mp4",
        "https://vidgen.x.ai/{a}.mp4",
        "https://vidgen.x.ai:99999/v.mp4",
        "https://user:secret@vidgen.x.ai/v.mp4",  # credentials never travel in an event
        "https://[::1/v.mp4",
        "https://[fe80::1%25eth0]/v.mp4",
        "https:///v.mp4",
        "https:/vidgen.x.ai/v.mp4",
    ],
)
def test_a_url_the_schema_or_our_rule_refuses_is_no_usable_url(url: str) -> None:
    doc = seed()
    doc["data"]["data"]["video"]["url"] = doc["data"]["fail_reason"] = url
    result = parse_status(200, raw(doc))
    assert isinstance(result, Pending) and result.missing_url, result


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v.mp4",
        "https://[2001:db8::1]:443/v.mp4",
        "https://vidgen.x.ai",
        "https://vidgen.x.ai:/v.mp4",
        "https://vidgen.x.ai/a%20b.mp4?x=1&y=a:b@c/d?e#frag/ment?",
        "https://vid_gen.x.ai/~user/!$&'()*+,;=.mp4",
    ],
)
def test_http_uris_are_kept_verbatim_and_valid_in_the_event(url: str) -> None:
    doc = seed()
    doc["data"]["data"]["video"]["url"] = url
    result = parse_status(200, raw(doc))
    assert isinstance(result, Succeeded) and result.video_url == url
    assert_valid_event(
        DetailType.SUCCEEDED,
        events.generation_succeeded(
            request_id="r", client_ref=None, metadata=None, video_url=url, duration=None, model=None,
            cost_usd=None, submitted_at=None, completed_at=None,
        ).detail,
    )  # fmt: skip


# --- property: whatever the provider sends, the job can be stored and its event built ----------

RID = "4b2cd27e-0b0d-3dec-c31c-7572daf74bb3"
ANY_CHAR = st.characters(codec=None, exclude_categories=())  # every code point, lone surrogates too
HOSTILE_CHARS = st.sampled_from(["\ud800", "\udfff", "\u2028", "\x00", "\x85", "\u202e", "\ufeff", "é", "😀"])
HOSTILE_TEXT = st.text(ANY_CHAR | HOSTILE_CHARS, max_size=40) | st.sampled_from(["", " ", "x" * 5000])
HOSTILE_NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=1.5e9, max_value=1.9e9),  # around the plausible epochs
    st.integers(EARLIEST_EPOCH - 2, NOW + FUTURE_SLACK_SECONDS + 2),
    st.floats(min_value=0, max_value=4000),  # around the plausible durations
    st.sampled_from([3e11, 1e200, 1e-200, -1, 0, 5e-324, 1.7976931348623157e308, 1773297014000, 10**38, 10**39]),
)
TIMES = HOSTILE_NUMBERS | HOSTILE_TEXT | st.none() | st.booleans()
HOSTS = st.sampled_from(["vidgen.x.ai", "127.0.0.1:8080", "[::1]", "[fe80::1%25x]", "a b", "vidgën.x.ai", "", "u:p@h"])
SCHEMES = st.sampled_from(["https", "http", "HTTPS", "HtTp", "ftp", "", "https:"])
BUILT_URLS = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    SCHEMES,
    HOSTS,
    HOSTILE_TEXT | st.from_regex(r"[A-Za-z0-9%#?/\[\]@!$&'()*+,;=:._~-]{0,60}", fullmatch=True),
)
HOSTILE_URLS = st.one_of(
    BUILT_URLS,
    st.integers(2030, 2060).map(lambda n: "https://vidgen.x.ai/" + "a" * n),
    HOSTILE_TEXT,
    st.sampled_from([URL, "HTTPS://vidgen.x.ai/v.mp4", "https://vidgen.x.ai/a%zz", "javascript:alert(1)"]),
)
HOSTILE_STATUS = (
    st.sampled_from(["done", "failed", "expired", "pending", "SUCCESS", "FAILURE", "ERROR", ""]) | HOSTILE_TEXT
)
HOSTILE_VIDEO = st.fixed_dictionaries(
    {}, optional={"url": HOSTILE_URLS, "duration": HOSTILE_NUMBERS | HOSTILE_TEXT, "respect_moderation": st.booleans()}
)
HOSTILE_NESTED = st.fixed_dictionaries(
    {},
    optional={
        "status": HOSTILE_STATUS, "model": HOSTILE_TEXT, "video": HOSTILE_VIDEO, "progress": HOSTILE_NUMBERS,
        "usage": st.fixed_dictionaries({}, optional={"cost_in_usd_ticks": HOSTILE_NUMBERS | HOSTILE_TEXT}),
        "created_at": TIMES, "completed_at": TIMES, "finish_time": TIMES, "fail_reason": HOSTILE_URLS,
        "message": HOSTILE_TEXT,
        "error": st.fixed_dictionaries({}, optional={"code": HOSTILE_TEXT, "message": HOSTILE_TEXT}) | HOSTILE_TEXT,
    },
)  # fmt: skip
HOSTILE_ENVELOPE = st.fixed_dictionaries(
    {"code": st.sampled_from(["success", ""]) | HOSTILE_TEXT},
    optional={
        "message": HOSTILE_TEXT,
        "data": st.fixed_dictionaries(
            {},
            optional={
                "status": HOSTILE_STATUS, "fail_reason": HOSTILE_URLS | HOSTILE_TEXT, "submit_time": TIMES,
                "finish_time": TIMES, "progress": HOSTILE_NUMBERS | HOSTILE_TEXT, "data": HOSTILE_NESTED | st.none(),
                "video": HOSTILE_VIDEO, "model": HOSTILE_TEXT,
            },
        ),
    },
)  # fmt: skip
HOSTILE_ERROR = st.fixed_dictionaries(
    {"error": st.fixed_dictionaries({}, optional={"message": HOSTILE_TEXT, "code": HOSTILE_TEXT, "type": HOSTILE_TEXT})}
)
USABLE_URLS = st.sampled_from([URL, "http://127.0.0.1:8080/v.mp4", "HTTPS://vidgen.x.ai/v.mp4?sig=a%2Fb#t=1"])
MOSTLY_USABLE_URLS = st.one_of(USABLE_URLS, USABLE_URLS, HOSTILE_URLS)
HOSTILE_VALUES = st.fixed_dictionaries(
    {"status": st.just("done"), "video": st.fixed_dictionaries({"url": MOSTLY_USABLE_URLS})},
    optional={
        "model": HOSTILE_TEXT, "created_at": TIMES, "completed_at": TIMES, "finish_time": TIMES,
        "usage": st.fixed_dictionaries({"cost_in_usd_ticks": HOSTILE_NUMBERS}),
    },
).flatmap(
    lambda nested: st.fixed_dictionaries(
        {"duration": HOSTILE_NUMBERS}, optional={"respect_moderation": st.just(True)}
    ).map(lambda video: {**nested, "video": {**nested["video"], **video}})
)  # fmt: skip
HOSTILE_SUCCESS = st.one_of(
    HOSTILE_VALUES,  # the bare xAI object
    st.builds(
        lambda nested, submit, finish: {
            "code": "success",
            "data": {"status": "SUCCESS", "submit_time": submit, "finish_time": finish, "data": nested},
        },
        HOSTILE_VALUES, TIMES, TIMES,
    ),
)  # fmt: skip
HOSTILE_BODIES = st.one_of(HOSTILE_SUCCESS, HOSTILE_ENVELOPE, HOSTILE_NESTED, HOSTILE_ERROR)


def stored(value: object) -> object:
    """What the job store writes for ``value`` (floats as ``Decimal(str(x))``), checked storable."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        number = Decimal(str(value))
        SERIALIZER.serialize(number)  # raises beyond 38 digits or outside 1e-130..1e126
        return number
    if isinstance(value, str):
        value.encode("utf-8")  # raises on a lone surrogate
    return value


def job_after(result: Succeeded | Failed, now: int) -> Job:
    """The job as the sweep leaves it after this outcome, read back from its stored item."""
    item: dict[str, object] = {
        "request_id": RID, "registered_at": now - 60, "deadline_at": now + 3600, "client_ref": "ref-7",
        "metadata": "{}", "completed_at": now,
    }  # fmt: skip
    if isinstance(result, Succeeded):
        item.update(
            state=JobState.SUCCEEDED.value, outbox=DetailType.SUCCEEDED.value, video_url=result.video_url,
            duration=result.duration, model=result.model, cost_usd=result.cost_usd,
            completed_at=result.completed_at or now, submitted_at=result.submitted_at, progress=100,
        )  # fmt: skip
    else:
        item.update(
            state=JobState.FAILED.value, outbox=DetailType.FAILED.value, reason=result.reason.value,
            message=result.message[:1000],
        )  # fmt: skip
    return Job.from_item({k: stored(v) for k, v in item.items() if v is not None})


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=HOSTILE_BODIES, status=st.sampled_from([200, 202, 400, 404, 422, 500]))
def test_whatever_the_provider_sends_the_job_is_storable_and_its_event_valid(doc: Any, status: int) -> None:
    body = json.dumps(doc).encode()  # lone surrogates travel as JSON escapes, as a provider could send them
    try:
        result = parse_status(status, body, now=NOW)
    except CometApiError as exc:
        stored(str(exc))  # the sweep keeps a refusal's text as the job's message
        return
    if isinstance(result, Pending):
        assert utf8(result.provider_status) and len(result.provider_status) <= 64
        assert result.progress is None or stored(result.progress) is not None
        return
    if isinstance(result, Succeeded):
        for number in (result.duration, result.cost_usd, result.completed_at, result.submitted_at):
            assert number is None or storable(number), number
        for epoch in (result.completed_at, result.submitted_at):
            assert epoch is None or EARLIEST_EPOCH <= epoch <= NOW + FUTURE_SLACK_SECONDS
        assert result.duration is None or 0 < result.duration <= MAX_DURATION_SECONDS
        assert result.cost_usd is None or 0 <= result.cost_usd <= MAX_COST_USD
    event = event_for(job_after(result, NOW))
    assert_valid_event(event.detail_type, event.detail)
    EventPublisher("bus").entry(event)  # serialisable as UTF-8 JSON
