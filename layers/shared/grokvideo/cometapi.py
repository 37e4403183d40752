"""HTTP client for CometAPI's Grok video routes, over one shared urllib3 ``PoolManager``.

>>> client = CometApiClient("https://api.cometapi.com", lambda: "sk-example")
>>> client
CometApiClient(base_url='https://api.cometapi.com')

Use (needs AWS or the provider, so not a doctest)::

    request_id = client.create_generation("a red fox in the snow", duration=5)
    client.get_video(request_id)
    # -> Pending(provider_status='IN_PROGRESS/processing', progress=40, missing_url=False)

Policies (one place, so the poller can rely on them):

- No redirects are followed: a 3xx raises ``CometApiError`` (the base URL is wrong).
- urllib3 retries only connection failures (the request never left): 2 tries with a short backoff.
  Read errors, timeouts and 5xx are not retried here (a POST is not idempotent, and per-job backoff
  of 5xx is the poller's job); a 429 surfaces at once as ``RateLimitedError``.
- Transport failures become ``RetryableError`` with a message that names the call, never headers;
  ``NotSentError`` (a subclass) when the connection failed before the request was sent, the one
  transport failure after which a create can be sent again without risking a second job.
- The pool is built with ``block=False``: a thread never waits for a free connection. With
  ``maxsize`` >= the poll concurrency every thread has its own keep-alive connection; above it,
  extra connections are opened and dropped after use (a TLS handshake, never a stall or an error).
- The key is read through ``api_key_provider`` on every call (the provider caches), is never stored,
  and is scrubbed from any error text. A provider that fails, or returns an empty or malformed key,
  gives ``AuthError`` (an outage of ours: the sweep stops, no job fails), so only ``CometApiError``
  subclasses ever leave a call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import quote, urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError

from grokvideo import __version__
from grokvideo.errors import (
    AuthError,
    CometApiError,
    ConfigurationError,
    GrokVideoError,
    InvalidRequestError,
    NotSentError,
    RetryableError,
)
from grokvideo.models import PollStatus
from grokvideo.status import is_valid_request_id, parse_created, parse_status

__all__ = ["DEFAULT_MODEL", "CometApiClient"]

DEFAULT_MODEL = "grok-imagine-video"
GENERATIONS_PATH = "/grok/v1/videos/generations"
EDITS_PATH = "/grok/v1/videos/edits"
VIDEO_PATH = "/grok/v1/videos/"
MAX_RESPONSE_BYTES = 1024 * 1024  # API answers are a few hundred bytes
MIN_DURATION, MAX_DURATION = 1, 15
_KEY = re.compile(r"[!-~]+")  # printable ASCII, no spaces: safe in a header
T = TypeVar("T")


class CometApiClient:
    """Create Grok video jobs and poll them. Thread-safe; share one instance per process."""

    __slots__ = ("_base_url", "_key_provider", "_max_call_seconds", "_owns_pool", "_pool", "_retries", "_timeout")

    def __init__(
        self,
        base_url: str,
        api_key_provider: Callable[[], str],
        *,
        pool: urllib3.PoolManager | None = None,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        maxsize: int = 32,
    ) -> None:
        try:
            parts = urlsplit(base_url)
            valid = (
                parts.scheme in ("http", "https")
                and bool(parts.hostname)
                and not (parts.query or parts.fragment or parts.username or parts.password)
            )
        except (ValueError, TypeError, AttributeError):
            valid = False
        if not valid:
            raise ConfigurationError("COMETAPI_BASE_URL must be an http(s) URL without query or credentials")
        self._base_url = base_url.rstrip("/")
        self._key_provider = api_key_provider
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self._retries = urllib3.Retry(
            total=2,
            connect=2,
            read=0,
            status=0,
            other=0,
            redirect=0,
            backoff_factor=0.2,
            raise_on_redirect=False,
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        retries = self._retries.connect or 0
        # urllib3 sleeps backoff_factor * 2 ** (n - 1) before the n-th retry, nothing before the first.
        backoffs = sum(min(self._retries.backoff_factor * 2.0 ** (n - 1), 120.0) for n in range(2, retries + 1))
        self._max_call_seconds = round((retries + 1) * connect_timeout + backoffs + read_timeout, 3)
        self._owns_pool = pool is None
        self._pool = pool or urllib3.PoolManager(
            num_pools=4, maxsize=maxsize, block=False, retries=self._retries, timeout=self._timeout
        )

    def __repr__(self) -> str:
        return f"CometApiClient(base_url={self._base_url!r})"

    @property
    def max_call_seconds(self) -> float:
        """The longest one call can wait on the provider: every connect attempt timing out, the
        backoffs between them, then the whole read timeout.

        >>> CometApiClient("https://api.cometapi.com", lambda: "k", read_timeout=30.0).max_call_seconds
        39.55
        """
        return self._max_call_seconds

    # --- calls --------------------------------------------------------------------------------

    def get_video(self, request_id: str) -> PollStatus:
        """Poll one job: ``client.get_video("4b2cd27e-...") -> Pending | Succeeded | Failed``."""
        if not is_valid_request_id(request_id):
            raise InvalidRequestError("request_id must be 1-128 characters of A-Z a-z 0-9 _ -")
        path = VIDEO_PATH + quote(request_id, safe="")
        return self._call("GET", path, None, parse_status)

    def create_generation(
        self,
        prompt: str,
        *,
        model: str = DEFAULT_MODEL,
        duration: int,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        image_url: str | None = None,
        user: str | None = None,
    ) -> str:
        """Start a text- or image-to-video job; return its ``request_id``.

        ``client.create_generation("a fox", duration=5, resolution="480p") -> "4b2cd27e-..."``.
        ``duration`` is always sent (an omitted one is billed as 8 s); ``size``/``seconds`` never are.
        """
        _require_text("prompt", prompt)
        _require_text("model", model)
        if isinstance(duration, bool) or not isinstance(duration, int):
            raise InvalidRequestError("duration must be an integer number of seconds")
        if not MIN_DURATION <= duration <= MAX_DURATION:
            raise InvalidRequestError(f"duration must be {MIN_DURATION}-{MAX_DURATION} seconds")
        payload: dict[str, object] = {"model": model, "prompt": prompt, "duration": duration}
        for name, value in (("aspect_ratio", aspect_ratio), ("resolution", resolution), ("user", user)):
            if value is not None:
                _require_text(name, value)
                payload[name] = value
        if image_url is not None:
            _require_text("image_url", image_url)
            payload["image"] = {"url": image_url}
        return self._call("POST", GENERATIONS_PATH, payload, _created)

    def create_edit(self, prompt: str, video_url: str, *, model: str = DEFAULT_MODEL, user: str | None = None) -> str:
        """Start an edit of an existing video (at most ~8.7 s); return its ``request_id``.

        ``client.create_edit("make it night", "https://example.com/in.mp4") -> "4b2cd27e-..."``.
        """
        _require_text("prompt", prompt)
        _require_text("video_url", video_url)
        _require_text("model", model)
        payload: dict[str, object] = {"model": model, "prompt": prompt, "video": {"url": video_url}}
        if user is not None:
            _require_text("user", user)
            payload["user"] = user
        return self._call("POST", EDITS_PATH, payload, _created)

    def close(self) -> None:
        """Close pooled connections (only when this client built the pool)."""
        if self._owns_pool:
            self._pool.clear()

    # --- plumbing -----------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        payload: dict[str, object] | None,
        parse: Callable[..., T],
    ) -> T:
        key = self._api_key()
        headers = {
            "Authorization": f"Bearer {key}",
            "Accept": "application/json",
            "User-Agent": f"grokvideo/{__version__}",
        }
        body: bytes | None = None
        if payload is not None:
            body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            response = self._pool.request(
                method,
                self._base_url + path,
                body=body,
                headers=headers,
                timeout=self._timeout,
                retries=self._retries,
                redirect=False,
                preload_content=False,
            )
            try:
                data = _read_capped(response, method, path)
            finally:
                response.release_conn()
        except HTTPError as exc:
            error = NotSentError if _never_sent(exc) else RetryableError
            raise error(_transport_message(method, path, exc)) from None
        except OSError as exc:  # raw socket errors urllib3 did not wrap
            raise RetryableError(f"CometAPI {method} {path}: {type(exc).__name__}") from None
        try:
            return parse(response.status, data, retry_after=response.headers.get("Retry-After"))
        except CometApiError as exc:
            _scrub(exc, key)
            raise

    def _api_key(self) -> str:
        try:
            raw = self._key_provider()
        except CometApiError:
            raise
        except GrokVideoError as exc:  # e.g. ConfigurationError: its message is safe by convention
            raise AuthError(f"could not read the CometAPI key: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any failure to read the secret is an outage of ours
            raise AuthError(f"could not read the CometAPI key ({type(exc).__name__})") from None
        key = raw.strip() if isinstance(raw, str) else ""
        if not key:
            raise AuthError("the CometAPI key is empty")
        if not _KEY.fullmatch(key):
            raise AuthError("the CometAPI key is malformed (expected printable ASCII without spaces)")
        return key


def _created(status: int, body: bytes, *, retry_after: str | None = None) -> str:
    return parse_created(status, body, retry_after)


def _require_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"{name} must be a non-empty string")


def _read_capped(response: urllib3.BaseHTTPResponse, method: str, path: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.stream(64 * 1024):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            response.close()  # drop the connection: its unread rest must not be reused
            raise RetryableError(
                f"CometAPI {method} {path}: answer larger than {MAX_RESPONSE_BYTES} bytes",
                status=response.status,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _never_sent(exc: HTTPError) -> bool:
    """True when the connection failed before any byte of the request left (safe to send again)."""
    cause = exc.reason if isinstance(exc, MaxRetryError) else exc
    return isinstance(cause, NewConnectionError | ConnectTimeoutError)


def _transport_message(method: str, path: str, exc: HTTPError) -> str:
    cause: BaseException = exc
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        cause = exc.reason
    if isinstance(cause, NewConnectionError):
        what = "could not connect"
    elif isinstance(cause, ConnectTimeoutError):
        what = "connect timed out"
    elif isinstance(cause, ReadTimeoutError):
        what = "read timed out"
    elif isinstance(cause, Urllib3TimeoutError):
        what = "timed out"
    elif isinstance(cause, SSLError):
        what = "TLS error"
    elif isinstance(cause, ProtocolError):
        what = "connection broken"
    else:
        what = "transport error"
    return f"CometAPI {method} {path}: {what} ({type(cause).__name__})"


def _scrub(exc: CometApiError, key: str) -> None:
    """Remove the key from an error's text, should the provider ever echo it back."""
    if len(key) >= 4 and any(isinstance(a, str) and key in a for a in exc.args):
        exc.args = tuple(a.replace(key, "[redacted]") if isinstance(a, str) else a for a in exc.args)
