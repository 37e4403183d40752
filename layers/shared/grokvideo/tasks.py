"""Step Functions task tokens: a request that carried ``task_token`` resumes its waiting task when it ends.

A state machine puts a request on the bus with ``task_token`` (``$$.Task.Token``) and waits
(``.waitForTaskToken``); the job keeps the token (``Job.task_token``) and its end resumes the task:

========================  =========================================================================
event out                 call, when the job (or the rejected request) has a token
========================  =========================================================================
Video Stored              ``SendTaskSuccess``: output = the event's detail (JSON)
Video Generation Failed   ``SendTaskFailure``: error = ``reason`` (``MODERATED``, ``TIMED_OUT``...),
Video Archive Failed      cause = ``message``
Video Request Rejected    ``SendTaskFailure``: error = ``reason`` (``INVALID_REQUEST``), cause = the
                          ``errors``; the request's own token, if it is a valid one
anything else             nothing: the job is not done yet
========================  =========================================================================

When: ``outbox.Relay`` resumes right after EventBridge accepted the event and before the job leaves
the outbox, so a crash in between resumes it again (at least once). A token that no longer waits
answers ``TaskTimedOut``, ``InvalidToken`` or ``TaskDoesNotExist``: that is done, not a failure of
the job. Anything Step Functions may take later (a throttle or a 5xx past botocore's retries,
access denied) raises ``TaskResumeError`` and the event stays owed, so a later sweep sends both again.

The token is not a secret, but it is never logged whole: ``token_ref`` names it in logs.

>>> ev = events.generation_failed(request_id="4b2cd27e", client_ref=None, metadata=None,
...                               reason="MODERATED", message="blocked by moderation")
>>> resumption("AAAA+/==", ev)
Fail(error='MODERATED', cause='blocked by moderation')
>>> after_error("TaskTimedOut"), after_error("ThrottlingException")
(<AfterError.CLOSED: 'closed'>, <AfterError.RETRY: 'retry'>)
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from grokvideo import events
from grokvideo.errors import TaskResumeError, ValidationError
from grokvideo.events import DetailType, OutputEvent
from grokvideo.validation import validate_task_token

logger = Logger(child=True)

MAX_ERROR_LENGTH = 256  # SendTaskFailure's limits on error and cause (characters)
MAX_CAUSE_LENGTH = 32_768
# A token that no longer waits: the task timed out, was resumed already, or its execution ended.
CLOSED_CODES = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
# Asking again cannot help: the request itself was refused (a token over the API's 2048
# characters, output that is not JSON), by Step Functions or by botocore before sending.
REFUSED_CODES = frozenset({"ValidationException", "InvalidOutput", "ParamValidationError"})


@dataclass(frozen=True, slots=True)
class Succeed:
    """``SendTaskSuccess`` with ``output`` (JSON)."""

    token: str = field(repr=False)
    output: str


@dataclass(frozen=True, slots=True)
class Fail:
    """``SendTaskFailure`` with ``error`` and ``cause``."""

    token: str = field(repr=False)
    error: str
    cause: str


Resumption = Succeed | Fail


def resumption(token: str | None, event: OutputEvent) -> Resumption | None:
    """The call that resumes the task waiting on ``token`` once ``event`` is out (the table above).

    >>> stored = events.video_stored(request_id="4b2cd27e", client_ref=None, metadata=None, bucket="b",
    ...     key="videos/4b2cd27e.mp4", size_bytes=10, sha256="ab" * 32, content_type="video/mp4",
    ...     duration=1, model=None)
    >>> import json
    >>> json.loads(resumption("AAAA", stored).output)["s3_uri"]
    's3://b/videos/4b2cd27e.mp4'
    >>> resumption(None, stored) is None
    True
    """
    if not token:
        return None
    detail = event.detail
    match event.detail_type:
        case DetailType.STORED:
            return Succeed(token, events.serialize_detail(detail))
        case DetailType.FAILED | DetailType.ARCHIVE_FAILED:
            return Fail(
                token,
                _cut(str(detail.get("reason")), MAX_ERROR_LENGTH),
                _cut(str(detail.get("message")), MAX_CAUSE_LENGTH),
            )
        case DetailType.REJECTED:
            errors = "; ".join(str(e) for e in detail.get("errors") or ())
            return Fail(token, _cut(str(detail.get("reason")), MAX_ERROR_LENGTH), _cut(errors, MAX_CAUSE_LENGTH))
    return None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def request_token(detail: object) -> str | None:
    """The token of a request that failed validation, if the token itself is valid (else None:
    a malformed one is nobody's to resume).

    >>> request_token({"prompt": "", "task_token": "AAAA+/=="}), request_token({"task_token": "a b"})
    ('AAAA+/==', None)
    """
    if not isinstance(detail, Mapping):
        return None
    try:
        return validate_task_token(detail.get("task_token"))
    except ValidationError:
        return None


def token_ref(token: str) -> str:
    """A short name for a token in logs (never the token itself).

    >>> token_ref("AAAA+/==")
    'sha256:e640c6044179'
    """
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


class AfterError(StrEnum):
    """What an error of a SendTask* call leaves to do."""

    CLOSED = "closed"  # the task no longer waits: done
    REFUSED = "refused"  # the call can never succeed: done, and worth an error in the log
    RETRY = "retry"  # ask again later (the event stays owed)


def after_error(code: str) -> AfterError:
    """What a SendTask* call that failed with ``code`` leaves to do.

    >>> [after_error(c).value for c in ("InvalidToken", "InvalidOutput", "AccessDeniedException")]
    ['closed', 'refused', 'retry']
    """
    if code in CLOSED_CODES:
        return AfterError.CLOSED
    if code in REFUSED_CODES:
        return AfterError.REFUSED
    return AfterError.RETRY


class TaskCallbacks(Protocol):
    """The two Step Functions calls; each raises ``TaskResumeError`` (with the error's code) or nothing."""

    def send_task_success(self, token: str, output: str) -> None: ...

    def send_task_failure(self, token: str, error: str, cause: str) -> None: ...


class StepFunctionsCallbacks:
    """``TaskCallbacks`` on boto3's ``stepfunctions`` client, made when a first token needs it (no
    function pays for the client at cold start; most jobs carry no token).

    Use (needs AWS or the provider, so not a doctest)::

        StepFunctionsCallbacks().send_task_failure(token, "MODERATED", "blocked by moderation")
    """

    def __init__(self, *, config: Any = None, client: Any = None) -> None:
        self._config = config
        self._client = client
        self._lock = threading.Lock()  # the sweeper delivers from many threads; make one client

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3  # lazy, as events.EventPublisher's client
                from botocore.config import Config

                config = self._config or Config(
                    connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 4}
                )
                self._client = boto3.client("stepfunctions", config=config)
            return self._client

    def send_task_success(self, token: str, output: str) -> None:
        self._call("SendTaskSuccess", lambda c: c.send_task_success(taskToken=token, output=output))

    def send_task_failure(self, token: str, error: str, cause: str) -> None:
        self._call("SendTaskFailure", lambda c: c.send_task_failure(taskToken=token, error=error, cause=cause))

    def _call(self, name: str, call: Callable[[Any], Any]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            call(self.client)
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code") or "ClientError")
            # Only the code: an AWS message may quote the token.
            raise TaskResumeError(f"{name} refused: {code}", code=code) from None
        except BotoCoreError as err:  # timeouts, connection errors, parameters botocore refused
            raise TaskResumeError(f"{name} failed: {type(err).__name__}", code=type(err).__name__) from None


class TaskResumer:
    """Resumes the task waiting on a job's (or a rejected request's) token once its event is out."""

    def __init__(self, callbacks: TaskCallbacks | None = None) -> None:
        self.callbacks = callbacks if callbacks is not None else StepFunctionsCallbacks()

    def resume(self, token: str | None, event: OutputEvent) -> None:
        """Resume the task ``event`` ends (nothing without a token, or for an event that ends nothing).

        Returns once nothing is left to do for the token; raises ``TaskResumeError`` when Step
        Functions should be asked again later.
        """
        action = resumption(token, event)
        if action is None:
            return
        where = {
            "request_id": event.request_id,
            "detail_type": event.detail_type.value,
            "task": token_ref(action.token),
        }
        try:
            if isinstance(action, Succeed):
                self.callbacks.send_task_success(action.token, action.output)
            else:
                self.callbacks.send_task_failure(action.token, action.error, action.cause)
        except TaskResumeError as err:
            match after_error(err.code):
                case AfterError.CLOSED:
                    logger.info("task no longer waits: nothing to resume", extra={**where, "error": err.code})
                case AfterError.REFUSED:
                    logger.error(
                        "task cannot be resumed: Step Functions refused the call", extra={**where, "error": err.code}
                    )
                case AfterError.RETRY:
                    raise
            return
        logger.info(
            "task resumed", extra={**where, "outcome": "success" if isinstance(action, Succeed) else action.error}
        )

    def reject(self, detail: Mapping[str, Any], errors: list[str], publisher: events.Publisher) -> None:
        """Announce that the request ``detail`` failed validation (``Video Request Rejected``, echoing
        its ``request_id``, ``client_ref`` and ``metadata`` where they are valid), then fail the task
        waiting on its token (``request_token``).

        No outbox holds a rejection: ``EventPublishError`` or ``TaskResumeError`` (as ``resume``)
        reaches the caller, whose request must come back to be rejected again.
        """
        rejection = events.request_rejected(
            reason=events.INVALID_REQUEST,
            errors=errors,
            request_id=detail.get("request_id"),
            client_ref=detail.get("client_ref"),
            metadata=detail.get("metadata"),
        )
        publisher.publish_one(rejection)
        self.resume(request_token(detail), rejection)
