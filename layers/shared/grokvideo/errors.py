"""Error types. Every failure a module can meet is one of these, so callers branch on type.

Messages never contain the API key or request headers: they are safe to log and to put in events.
"""

from __future__ import annotations


class GrokVideoError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigurationError(GrokVideoError):
    """A setting is missing or malformed (raised at cold start, names the variable)."""


class ValidationError(GrokVideoError):
    """Input failed validation. ``errors`` lists one message per offending field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


# --- CometAPI ---------------------------------------------------------------------------------


class CometApiError(GrokVideoError):
    """Any failed call to CometAPI. ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class RetryableError(CometApiError):
    """Transient: 5xx, 524, timeouts, connection errors, bodies that are not JSON. Back off the job."""


class NotSentError(RetryableError):
    """The connection failed before the request was sent: the provider cannot have acted on it."""


class RateLimitedError(RetryableError):
    """429. The whole sweep pauses for ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float, status: int | None = 429, code: str | None = None):
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class AuthError(CometApiError):
    """401/403: our key is wrong or revoked. An outage of ours, never a failure of the job."""


class NotFoundError(CometApiError):
    """The provider does not know this id (``task_not_exist``, 404)."""


class InvalidRequestError(CometApiError):
    """400/422 and ``invalid_request``: retrying the same call cannot help.

    ``moderated`` is set when the provider says the content was blocked.
    """

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, moderated: bool = False
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.moderated = moderated


# --- EventBridge ------------------------------------------------------------------------------


class EventPublishError(GrokVideoError):
    """EventBridge did not accept every entry after the retries. ``failed`` lists the entries' errors."""

    def __init__(self, message: str, failed: list[str] | None = None) -> None:
        super().__init__(message)
        self.failed = failed or []


class EventTooLargeError(EventPublishError):
    """An entry exceeds the PutEvents size limit (256 KiB); it is refused before sending."""


# --- Archive (copy into S3) -------------------------------------------------------------------


class ArchiveError(GrokVideoError):
    """A copy failed. ``retryable`` says whether the queue should try again."""

    retryable: bool = True

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class PermanentArchiveError(ArchiveError):
    """The copy can never succeed (expired URL, refused host, not a video, too large)."""

    retryable = False


class UrlRefusedError(PermanentArchiveError):
    """The URL guard refused a URL or a redirect hop."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="URL_REFUSED")


# --- Step Functions ---------------------------------------------------------------------------


class TaskResumeError(GrokVideoError):
    """Step Functions did not take a task's outcome. ``code`` is its error code (``TaskTimedOut``,
    ``ThrottlingException``...) or botocore's error type; ``grokvideo.tasks.after_error`` says
    what it means. The message never holds the token."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code
