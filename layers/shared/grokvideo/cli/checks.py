"""What ``grokvideo doctor`` concludes: the facts of one check in, one ``Check`` out.

The doctor (``grokvideo.cli.doctor``) only gathers facts from AWS and the provider; every rule
that turns them into OK, WARN or FAIL is here, pure, so each is tested row by row without AWS
(tests/unit/test_doctor_checks.py). A check that is not OK says in its detail what to do.

>>> dead_letter_check(QueueFacts("copy", visible=2, in_flight=1)).line()
'dead letters: copy  FAIL  3 messages: inspect, then `grokvideo redrive copy`'
>>> alarms_check(AlarmFacts(listed=("a", "b"), states={"a": "OK", "b": "INSUFFICIENT_DATA"})).line()
'alarms  OK  2 alarms: 1 INSUFFICIENT_DATA, 1 OK'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from grokvideo.config import api_key_from_secret
from grokvideo.errors import (
    AuthError,
    CometApiError,
    ConfigurationError,
    GrokVideoError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    RetryableError,
)
from grokvideo.models import Failed, Pending, PollStatus, Succeeded


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"  # could not be checked, or worth a look; does not fail the doctor
    FAIL = "FAIL"  # the stack cannot work as it should until someone acts


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str

    def record(self) -> dict[str, Any]:
        """What ``doctor --json`` prints for this check."""
        return {"name": self.name, "status": self.status.value, "detail": self.detail}

    def line(self) -> str:
        return f"{self.name}  {self.status.value}  {self.detail}"


def put_key_hint(secret_arn: str) -> str:
    """The command that stores the key (the value shown is a placeholder, never the key).

    >>> put_key_hint("arn:k")
    "aws secretsmanager put-secret-value --secret-id arn:k --secret-string '<your CometAPI key>'"
    """
    return f"aws secretsmanager put-secret-value --secret-id {secret_arn} --secret-string '<your CometAPI key>'"


# --- 1. the API key secret -----------------------------------------------------------------------

KEY_CHECK = "api key secret"


@dataclass(frozen=True, slots=True)
class SecretFacts:
    """What Secrets Manager said about the stack's key secret (``ApiKeySecretArn``).

    ``value`` is None when the secret holds no value (the stack creates it empty); it is kept out
    of ``repr`` so the key cannot reach a log or a traceback.
    """

    arn: str
    value: str | bytes | None = field(default=None, repr=False)
    exists: bool = True
    error: str | None = None  # why it could not be read

    @property
    def key(self) -> str | None:
        """The key the functions would read from it, or None when they would find none."""
        if self.error or not self.exists or self.value is None:
            return None
        try:
            return api_key_from_secret(self.value)
        except ConfigurationError:
            return None


def secret_check(facts: SecretFacts) -> Check:
    """The secret exists and holds a key, read the way the functions read it.

    >>> secret_check(SecretFacts("arn:k", value='{"api_key": "sk-1"}')).line()
    'api key secret  OK  holds a key'
    """
    if facts.error:
        return Check(KEY_CHECK, Status.FAIL, f"could not be read: {facts.error}")
    if not facts.exists:
        return Check(
            KEY_CHECK,
            Status.FAIL,
            f"no secret {facts.arn}: create it, or redeploy with CometApiKeySecretArn naming one that exists",
        )
    if facts.value is None:
        return Check(KEY_CHECK, Status.FAIL, f"holds no value yet: put the key with `{put_key_hint(facts.arn)}`")
    try:
        api_key_from_secret(facts.value)
    except ConfigurationError as err:
        return Check(KEY_CHECK, Status.FAIL, f"{err}: put the key with `{put_key_hint(facts.arn)}`")
    return Check(KEY_CHECK, Status.OK, "holds a key")


# --- 2. the poller's schedule --------------------------------------------------------------------

SCHEDULE_CHECK = "poller schedule"


@dataclass(frozen=True, slots=True)
class ScheduleFacts:
    """The stack's ``AWS::Scheduler::Schedule`` (the poller's tick) and its state.

    ``name`` is None when the stack lists no schedule; ``state`` is None when Scheduler does not
    know the schedule the stack lists; ``error`` says why they could not be read.
    """

    name: str | None = None
    state: str | None = None
    error: str | None = None


def schedule_check(facts: ScheduleFacts) -> Check:
    """ENABLED, or nothing starts the poller. An emulator or account that cannot say is a WARN.

    >>> schedule_check(ScheduleFacts("grokvideo-sweep", "ENABLED")).line()
    'poller schedule  OK  grokvideo-sweep is ENABLED'
    """
    if facts.error:
        return Check(SCHEDULE_CHECK, Status.WARN, f"could not be checked: {facts.error}")
    if facts.name is None:
        return Check(
            SCHEDULE_CHECK,
            Status.FAIL,
            "the stack has no AWS::Scheduler::Schedule, so nothing starts the poller: redeploy the stack",
        )
    if facts.state is None:
        return Check(
            SCHEDULE_CHECK, Status.FAIL, f"{facts.name} no longer exists: redeploy the stack to create it again"
        )
    if facts.state == "ENABLED":
        return Check(SCHEDULE_CHECK, Status.OK, f"{facts.name} is ENABLED")
    return Check(
        SCHEDULE_CHECK,
        Status.FAIL,
        f"{facts.name} is {facts.state}, so no job is polled: enable it (EventBridge Scheduler console, or "
        "`aws scheduler update-schedule --state ENABLED` with its whole definition)",
    )


# --- 3. the dead-letter queues -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueFacts:
    """A dead-letter queue's depth; ``queue`` is its name for ``grokvideo redrive``."""

    queue: str
    visible: int = 0
    in_flight: int = 0  # received by someone and not deleted yet
    error: str | None = None


def dead_letter_check(facts: QueueFacts) -> Check:
    """Empty, or work waits there that nothing will retry on its own.

    >>> dead_letter_check(QueueFacts("submit")).line()
    'dead letters: submit  OK  empty'
    """
    name = f"dead letters: {facts.queue}"
    if facts.error:
        return Check(name, Status.FAIL, f"could not be read: {facts.error}")
    count = facts.visible + facts.in_flight
    if count == 0:
        return Check(name, Status.OK, "empty")
    noun = "message" if count == 1 else "messages"
    return Check(name, Status.FAIL, f"{count} {noun}: inspect, then `grokvideo redrive {facts.queue}`")


# --- 4. the alarms -------------------------------------------------------------------------------

ALARMS_CHECK = "alarms"


@dataclass(frozen=True, slots=True)
class AlarmFacts:
    """The stack's alarms (``listed``, by name) and the state CloudWatch gives each it knows."""

    listed: Sequence[str] = ()
    states: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None


def alarms_check(facts: AlarmFacts) -> Check:
    """Any alarm in ALARM fails, by name; OK and INSUFFICIENT_DATA (no data yet) are fine.

    >>> alarms_check(AlarmFacts(listed=("poller-errors",), states={"poller-errors": "ALARM"})).line()
    'alarms  FAIL  in ALARM: poller-errors (see why: `aws cloudwatch describe-alarms --alarm-names poller-errors`)'
    """
    if facts.error:
        return Check(ALARMS_CHECK, Status.WARN, f"could not be checked: {facts.error}")
    if not facts.listed:
        return Check(ALARMS_CHECK, Status.WARN, "the stack lists no alarms: redeploy it with this version of grokvideo")
    alarming = sorted(name for name in facts.listed if facts.states.get(name) == "ALARM")
    if alarming:
        names = " ".join(alarming)
        return Check(
            ALARMS_CHECK,
            Status.FAIL,
            f"in ALARM: {', '.join(alarming)} (see why: `aws cloudwatch describe-alarms --alarm-names {names}`)",
        )
    missing = sorted(name for name in facts.listed if name not in facts.states)
    if missing:
        return Check(
            ALARMS_CHECK, Status.WARN, f"listed by the stack but unknown to CloudWatch: {', '.join(missing)}: redeploy"
        )
    counts = Counter(facts.states[name] for name in facts.listed)
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return Check(ALARMS_CHECK, Status.OK, f"{len(facts.listed)} alarms: {summary}")


# --- 5. the provider, with the key -------------------------------------------------------------

PROVIDER_CHECK = "provider"


@dataclass(frozen=True, slots=True)
class ProviderFacts:
    """How the provider answered one status call for a made-up id, made with the secret's key.

    ``tried`` is False when there was no usable key to try with; otherwise exactly one of
    ``answer`` (a status) and ``error`` (a refused base URL, or the call's error) is set.
    """

    base_url: str
    secret_arn: str
    tried: bool = True
    answer: PollStatus | None = None
    error: GrokVideoError | None = None


def origin(url: str) -> str:
    """Scheme, host and port of a URL: what a check may print of it (never a path or credentials).

    >>> origin("https://user:pw@api.example.com:8443/v1?x=1")
    'https://api.example.com:8443'
    """
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the provider"
    return f"{parts.scheme}://{parts.hostname}{port}" if parts.scheme and parts.hostname else "the provider"


def provider_check(facts: ProviderFacts) -> Check:
    """A refused key or an unreachable provider fails; any answer about the made-up id (unknown,
    pending) means the key was accepted.

    >>> provider_check(ProviderFacts("https://api.cometapi.com", "arn:k", error=NotFoundError("task_not_exist"))).line()
    'provider  OK  https://api.cometapi.com accepted the key (the made-up id is unknown, as it should be)'
    """
    where = origin(facts.base_url)
    error = facts.error
    if not facts.tried:
        return Check(PROVIDER_CHECK, Status.WARN, "not tried: there is no usable API key (fix the secret first)")
    if error is None:
        return Check(PROVIDER_CHECK, Status.OK, f"{where} accepted the key (the made-up id {_answer(facts.answer)})")
    if isinstance(error, ConfigurationError):
        return Check(
            PROVIDER_CHECK,
            Status.FAIL,
            f"the stack's CometApiBaseUrl is refused: {error}; make it https (plain http only to a loopback "
            "fake, with AllowPrivateVideoHosts=true)",
        )
    if isinstance(error, AuthError):
        refused = f"HTTP {error.status}" if error.status else str(error)
        return Check(
            PROVIDER_CHECK,
            Status.FAIL,
            f"the provider refused the key ({refused}): put the right one with `{put_key_hint(facts.secret_arn)}`",
        )
    if isinstance(error, NotFoundError):
        return Check(
            PROVIDER_CHECK, Status.OK, f"{where} accepted the key (the made-up id is unknown, as it should be)"
        )
    if isinstance(error, RateLimitedError):
        return Check(
            PROVIDER_CHECK,
            Status.WARN,
            f"{where} is rate limiting us (HTTP 429): the key was not refused; try again in {error.retry_after:g} s",
        )
    if isinstance(error, RetryableError) and error.status is None:
        return Check(
            PROVIDER_CHECK, Status.FAIL, f"{where} unreachable: {error}: check CometApiBaseUrl and the network"
        )
    if isinstance(error, RetryableError):
        return Check(PROVIDER_CHECK, Status.FAIL, f"{where} answers with errors: {error}: try again later")
    if isinstance(error, InvalidRequestError):
        return Check(
            PROVIDER_CHECK,
            Status.WARN,
            f"{where} did not refuse the key but answered the made-up id unexpectedly: {error}",
        )
    if isinstance(error, CometApiError):
        return Check(PROVIDER_CHECK, Status.FAIL, f"{where}: {error}")
    return Check(PROVIDER_CHECK, Status.FAIL, f"{where}: {type(error).__name__}: {error}")


def _answer(answer: PollStatus | None) -> str:
    if isinstance(answer, Pending):
        return "reads as pending"
    if isinstance(answer, Succeeded | Failed):
        return f"reads as {type(answer).__name__.lower()}"
    return "was answered"
