"""``grokvideo doctor``'s judgements (grokvideo.cli.checks): facts in, one check out, row by row.

Each row is (facts, status, words the detail must hold); the detail of every check that is not
OK must say what to do, and no detail may hold the key.
"""

from __future__ import annotations

import pytest

from grokvideo.cli.checks import (
    AlarmFacts,
    Check,
    ProviderFacts,
    QueueFacts,
    ScheduleFacts,
    SecretFacts,
    Status,
    alarms_check,
    dead_letter_check,
    origin,
    provider_check,
    schedule_check,
    secret_check,
)
from grokvideo.errors import (
    AuthError,
    CometApiError,
    ConfigurationError,
    GrokVideoError,
    InvalidRequestError,
    NotFoundError,
    NotSentError,
    RateLimitedError,
    RetryableError,
)
from grokvideo.models import Pending

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:grokvideo/cometapi-key-AbCdEf"
KEY = "sk-live-0123456789abcdef"
BASE = "https://api.cometapi.com"


def _assert(check: Check, status: Status, *words: str) -> None:
    assert check.status is status, check
    for word in words:
        assert word in check.detail, (word, check.detail)
    assert KEY not in check.detail and KEY not in repr(check)
    assert check.record() == {"name": check.name, "status": status.value, "detail": check.detail}


# --- the secret ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "status", "words"),
    [
        (SecretFacts(ARN, value=KEY), Status.OK, ["holds a key"]),
        (SecretFacts(ARN, value=f'{{"api_key": "{KEY}"}}'), Status.OK, ["holds a key"]),
        (SecretFacts(ARN, value=KEY.encode()), Status.OK, ["holds a key"]),
        (SecretFacts(ARN, value="   \n"), Status.FAIL, ["secret is empty", "put-secret-value", ARN]),
        (SecretFacts(ARN, value='{"api_key": " "}'), Status.FAIL, ["secret is empty"]),
        (SecretFacts(ARN, value=f'{{"key": "{KEY}"}}'), Status.FAIL, ["no 'api_key' field", "put-secret-value"]),
        (SecretFacts(ARN, value='{"api_key": '), Status.FAIL, ["no 'api_key' field"]),
        (SecretFacts(ARN, value=None), Status.FAIL, ["holds no value yet", f"--secret-id {ARN}"]),
        (SecretFacts(ARN, exists=False), Status.FAIL, [f"no secret {ARN}", "CometApiKeySecretArn"]),
        (
            SecretFacts(ARN, error="reading the secret: AccessDeniedException: not allowed"),
            Status.FAIL,
            ["could not be read: reading the secret: AccessDeniedException"],
        ),
    ],
)
def test_secret(facts: SecretFacts, status: Status, words: list[str]) -> None:
    check = secret_check(facts)
    assert check.name == "api key secret"
    _assert(check, status, *words)


def test_the_key_is_out_of_the_facts_repr_and_given_only_when_usable() -> None:
    assert KEY not in repr(SecretFacts(ARN, value=f'{{"api_key": "{KEY}"}}'))
    assert SecretFacts(ARN, value=f'{{"api_key": " {KEY} "}}').key == KEY
    assert SecretFacts(ARN, value="{}").key is None
    assert SecretFacts(ARN, value=None).key is None
    assert SecretFacts(ARN, value=KEY, error="could not read").key is None


# --- the schedule --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "status", "words"),
    [
        (ScheduleFacts("grokvideo-PollerFunctionSweep-1AB", "ENABLED"), Status.OK, ["ENABLED"]),
        (ScheduleFacts("grokvideo-sweep", "DISABLED"), Status.FAIL, ["grokvideo-sweep is DISABLED", "enable it"]),
        (ScheduleFacts("grokvideo-sweep", None), Status.FAIL, ["no longer exists", "redeploy"]),
        (ScheduleFacts(None), Status.FAIL, ["no AWS::Scheduler::Schedule", "redeploy"]),
        (
            ScheduleFacts(error="listing the stack's resources: InternalFailure: not implemented"),
            Status.WARN,
            ["could not be checked", "not implemented"],
        ),
        (
            ScheduleFacts("grokvideo-sweep", error="reading the schedule: AccessDeniedException: no"),
            Status.WARN,
            ["AccessDeniedException"],
        ),
    ],
)
def test_schedule(facts: ScheduleFacts, status: Status, words: list[str]) -> None:
    _assert(schedule_check(facts), status, *words)


# --- the dead letters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "status", "detail"),
    [
        (QueueFacts("copy"), Status.OK, "empty"),
        (QueueFacts("copy", visible=1), Status.FAIL, "1 message: inspect, then `grokvideo redrive copy`"),
        (
            QueueFacts("submit", visible=2, in_flight=3),
            Status.FAIL,
            "5 messages: inspect, then `grokvideo redrive submit`",
        ),
        (QueueFacts("poller", in_flight=1), Status.FAIL, "1 message: inspect, then `grokvideo redrive poller`"),
        (
            QueueFacts(
                "register",
                error="reading the register dead-letter queue: AWS.SimpleQueueService.NonExistentQueue: gone",
            ),
            Status.FAIL,
            "could not be read: reading the register dead-letter queue: AWS.SimpleQueueService.NonExistentQueue: gone",
        ),
    ],
)
def test_dead_letters(facts: QueueFacts, status: Status, detail: str) -> None:
    check = dead_letter_check(facts)
    assert check == Check(f"dead letters: {facts.queue}", status, detail)


# --- the alarms ----------------------------------------------------------------------------------

NAMES = ("grokvideo-PollerErrorsAlarm-1", "grokvideo-CopyDeadLetterQueueAlarm-2", "grokvideo-OwedEventAgeAlarm-3")


@pytest.mark.parametrize(
    ("facts", "status", "words"),
    [
        (
            AlarmFacts(NAMES, dict.fromkeys(NAMES, "OK")),
            Status.OK,
            ["3 alarms: 3 OK"],
        ),
        (
            AlarmFacts(NAMES, {NAMES[0]: "OK", NAMES[1]: "INSUFFICIENT_DATA", NAMES[2]: "INSUFFICIENT_DATA"}),
            Status.OK,
            ["3 alarms: 2 INSUFFICIENT_DATA, 1 OK"],
        ),
        (
            AlarmFacts(NAMES, {NAMES[0]: "ALARM", NAMES[1]: "OK", NAMES[2]: "ALARM"}),
            Status.FAIL,
            [f"in ALARM: {NAMES[2]}, {NAMES[0]}", f"describe-alarms --alarm-names {NAMES[2]} {NAMES[0]}"],
        ),
        (
            AlarmFacts(NAMES, {NAMES[0]: "ALARM"}),  # an alarm in ALARM outranks missing ones
            Status.FAIL,
            [f"in ALARM: {NAMES[0]}"],
        ),
        (AlarmFacts(NAMES, {NAMES[0]: "OK"}), Status.WARN, [f"unknown to CloudWatch: {NAMES[1]}, {NAMES[2]}"]),
        (AlarmFacts((), {}), Status.WARN, ["lists no alarms"]),
        (
            AlarmFacts(error="reading the alarms: Throttling: slow down"),
            Status.WARN,
            ["could not be checked", "Throttling"],
        ),
    ],
)
def test_alarms(facts: AlarmFacts, status: Status, words: list[str]) -> None:
    check = alarms_check(facts)
    assert check.name == "alarms"
    _assert(check, status, *words)


# --- the provider --------------------------------------------------------------------------------


def _probe(error: GrokVideoError | None = None, *, answer: Pending | None = None, base: str = BASE) -> ProviderFacts:
    return ProviderFacts(base, ARN, answer=answer, error=error)


@pytest.mark.parametrize(
    ("facts", "status", "words"),
    [
        (
            _probe(NotFoundError("CometAPI HTTP 400 (task_not_exist): task not exist", status=400)),
            Status.OK,
            ["https://api.cometapi.com accepted the key", "unknown"],
        ),
        (_probe(answer=Pending("IN_PROGRESS/pending")), Status.OK, ["accepted the key", "pending"]),
        (
            _probe(AuthError("CometAPI HTTP 401 (invalid_api_key): invalid token", status=401)),
            Status.FAIL,
            ["refused the key (HTTP 401)", f"put-secret-value --secret-id {ARN}"],
        ),
        (_probe(AuthError("CometAPI HTTP 403: access denied", status=403)), Status.FAIL, ["HTTP 403"]),
        (
            _probe(AuthError("the CometAPI key is malformed (expected printable ASCII without spaces)")),
            Status.FAIL,
            ["refused the key (the CometAPI key is malformed", "put-secret-value"],
        ),
        (
            _probe(NotSentError("CometAPI GET /grok/v1/videos/x: could not connect (NewConnectionError)")),
            Status.FAIL,
            ["https://api.cometapi.com unreachable", "could not connect", "check CometApiBaseUrl"],
        ),
        (
            _probe(RetryableError("CometAPI GET /grok/v1/videos/x: read timed out (ReadTimeoutError)")),
            Status.FAIL,
            ["unreachable", "read timed out"],
        ),
        (
            _probe(RetryableError("CometAPI HTTP 503: unavailable", status=503)),
            Status.FAIL,
            ["answers with errors", "HTTP 503", "try again later"],
        ),
        (
            _probe(RateLimitedError("CometAPI HTTP 429: rate limited (retry after 12s)", retry_after=12)),
            Status.WARN,
            ["rate limiting", "not refused", "12 s"],
        ),
        (
            _probe(InvalidRequestError("CometAPI HTTP 422: bad id", status=422)),
            Status.WARN,
            ["did not refuse the key", "HTTP 422"],
        ),
        (
            _probe(CometApiError("CometAPI HTTP 301: unexpected redirect on an API call; check CometApiBaseUrl")),
            Status.FAIL,
            ["redirect", "check CometApiBaseUrl"],
        ),
        (
            _probe(
                ConfigurationError("COMETAPI_BASE_URL must be https ..., got scheme 'http'"), base="http://127.0.0.1:9"
            ),
            Status.FAIL,
            ["CometApiBaseUrl is refused", "AllowPrivateVideoHosts=true"],
        ),
        (ProviderFacts(BASE, ARN, tried=False), Status.WARN, ["not tried", "fix the secret first"]),
    ],
)
def test_provider(facts: ProviderFacts, status: Status, words: list[str]) -> None:
    check = provider_check(facts)
    assert check.name == "provider"
    _assert(check, status, *words)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://api.cometapi.com", "https://api.cometapi.com"),
        ("http://127.0.0.1:8181/", "http://127.0.0.1:8181"),
        ("https://me:secret@proxy.example.com/cometapi?token=x", "https://proxy.example.com"),
        ("not a url", "the provider"),
        ("https://[::1", "the provider"),
    ],
)
def test_a_check_shows_only_the_providers_origin(url: str, shown: str) -> None:
    assert origin(url) == shown
    assert provider_check(ProviderFacts(url, ARN, error=NotSentError("could not connect"))).detail.startswith(
        f"{shown} unreachable"
    )
