"""Parser: every answer CometAPI gives to a Grok video call -> one normalised result or one error.

``parse_status`` reads ``GET /grok/v1/videos/{id}`` (the envelope, the bare xAI object, 202/empty
bodies, error bodies); ``parse_created`` reads the answer of a create call. Neither does I/O, and
neither raises anything but the ``CometApiError`` family (the shapes are listed in ``docs/PROVIDER.md``).

>>> parse_status(200, b'{"status": "pending", "progress": 40}')
Pending(provider_status='pending', progress=40, missing_url=False)
>>> parse_status(200, b'{"status": "done", "video": {"url": "https://vidgen.x.ai/v.mp4"}}').video_url
'https://vidgen.x.ai/v.mp4'
>>> parse_status(429, b"", retry_after="12")
Traceback (most recent call last):
...
grokvideo.errors.RateLimitedError: CometAPI HTTP 429: rate limited (retry after 12s)
>>> parse_created(200, b'{"request_id": "4b2cd27e-0b0d-3dec-c31c-7572daf74bb3"}')
'4b2cd27e-0b0d-3dec-c31c-7572daf74bb3'

Choices worth knowing:

- A 3xx answer raises the base ``CometApiError`` (not retryable, not the job's fault): a redirect on
  an API call means ``CometApiBaseUrl`` is wrong, which no backoff fixes.
- A 404 whose body is not JSON (an HTML page) is a wrong path, not an unknown id: ``RetryableError``,
  so a misconfiguration cannot mark every job ``NOT_FOUND``.
- ``task_not_exist`` always raises ``NotFoundError``; the "fresh id, treat as pending for ~60 s" grace
  is the poller's decision (it knows the job's age), not the parser's.
- The nested (xAI) status decides; the wrapper decides only when the nested one is absent or unknown,
  except that a wrapper failure is terminal (CometAPI stops refreshing) unless a video URL exists.

What it hands on, whatever the provider sends: only values the jobs table can store (DynamoDB
numbers: at most 38 significant digits, magnitude 1e-130..1e126; strings: valid UTF-8) and the
events' schemas accept, so the sweep's transition and the event it owes can never raise. A value
outside its window is unknown (None), never clamped:

- Times (``submitted_at``, ``completed_at``): epoch seconds from 2020-01-01T00:00:00Z (before any
  CometAPI Grok job) to ``now`` + 1 day (a provider clock may run a little ahead of ours; further
  ahead is a bug or milliseconds). ``now`` defaults to the wall clock.
- ``duration``: 0 < seconds <= ``MAX_DURATION_SECONDS`` (3600), rounded to the millisecond.
- ``cost_usd``: 0 <= dollars <= ``MAX_COST_USD`` (1,000,000), rounded to one tick (1e-10 USD).
- Texts (messages, model, status names): one line, lone surrogates replaced by U+FFFD, secrets and
  URL queries removed, cut short (300 characters for a message, 100 for a model, 64 for a status).
- ``video_url``: exactly what ``schemas/Video-Generation-Succeeded.json`` accepts: an RFC 3986 URI
  (ASCII only, ``%`` only before two hex digits) of scheme http or https (lower-cased here), with a
  host (a name, IPv4 or a bracketed IPv6 address), an optional port up to 65535, no user info, at
  most 2048 characters. Anything else is no usable URL: a "done" answer without one is
  ``Pending(missing_url=True)``, which the sweep polls a few more times and then fails.

>>> done = parse_status(200, b'{"status": "done", "video": {"url": "HTTPS://vidgen.x.ai/v.mp4", "duration": 1e200}}')
>>> done.video_url, done.duration
('https://vidgen.x.ai/v.mp4', None)
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import time
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import TypeGuard

from grokvideo.errors import (
    AuthError,
    CometApiError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    RetryableError,
)
from grokvideo.models import (
    MAX_COST_USD,
    MAX_DURATION_SECONDS,
    Failed,
    FailureReason,
    Pending,
    PollStatus,
    Succeeded,
)

__all__ = ["is_valid_request_id", "parse_created", "parse_retry_after", "parse_status"]

DEFAULT_RETRY_AFTER = 5.0
MIN_RETRY_AFTER = 1.0
MAX_RETRY_AFTER = 300.0
USD_TICKS_PER_DOLLAR = 10_000_000_000
MESSAGE_LIMIT = 300
EARLIEST_EPOCH = 1_577_836_800  # 2020-01-01T00:00:00Z: no provider time before it is plausible
FUTURE_SLACK_SECONDS = 86_400  # nor one more than a day ahead of our clock
VIDEO_URL_MAX_LENGTH = 2048  # maxLength of video_url in schemas/Video-Generation-Succeeded.json
DURATION_DECIMALS = 3  # milliseconds
COST_DECIMALS = 10  # one tick: 1 / USD_TICKS_PER_DOLLAR

_DONE = frozenset({"done", "success", "succeeded", "completed", "complete"})
_FAILED = frozenset({"failed", "failure", "error"})
_EXPIRED = frozenset({"expired"})
# Nested values that mean "xAI is still working" even when the wrapper already says SUCCESS.
_RUNNING = frozenset({"pending", "queued", "processing", "in_progress", "running", "submitted"})
_OK_CODES = frozenset({"", "success", "ok", "0", "200"})
_NOT_FOUND_CODES = frozenset({"task_not_exist", "task_not_found", "not_found"})
_MODERATION = re.compile(r"moderat|safety|content[\s_-]*(?:policy|filter)", re.IGNORECASE)
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\s]+")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_URL_LIKE = re.compile(r"(?i)https?://\S*")  # a failure "text" that is a URL is no message
# An http(s) URI by RFC 3986, narrowed: a host name / IPv4 / [IPv6] without user info, an optional
# port, then path, query and fragment of unreserved, sub-delims, ":", "@" and %XX only.
_PCHAR = r"(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
_VIDEO_URL = re.compile(
    r"(?P<scheme>(?i:https?))://"
    r"(?P<host>[A-Za-z0-9._~-]+|\[(?P<ipv6>[0-9A-Fa-f:.]+)\])"
    r"(?::(?P<port>[0-9]{0,5}))?"
    rf"(?P<rest>(?:/{_PCHAR}*)*(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?)"
)
_SECRETS = (
    (re.compile(r"(?i)\bbearer\s+\S+"), "Bearer [redacted]"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{4,}"), "sk-[redacted]"),
    (re.compile(r"(https?://[^\s?#]+)[?#]\S*"), r"\1?[query removed]"),
)

Json = dict[str, object]


# --- public -----------------------------------------------------------------------------------


def is_valid_request_id(value: object) -> TypeGuard[str]:
    """True for 1..128 characters of ``[A-Za-z0-9_-]`` (safe in a URL path).

    >>> is_valid_request_id("4b2cd27e-0b0d"), is_valid_request_id("../x")
    (True, False)
    """
    return isinstance(value, str) and _REQUEST_ID.fullmatch(value) is not None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date).

    Missing or unreadable -> 5 s; the result is clamped to 1..300 s.

    >>> parse_retry_after("12"), parse_retry_after(None), parse_retry_after("86400")
    (12.0, 5.0, 300.0)
    """
    if value is None or not isinstance(value, str) or not value.strip():
        return DEFAULT_RETRY_AFTER
    text = value.strip()
    if _SECONDS.fullmatch(text):
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = when.timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError, IndexError, OverflowError):
            return DEFAULT_RETRY_AFTER
    if math.isnan(seconds):
        return DEFAULT_RETRY_AFTER
    return min(max(seconds, MIN_RETRY_AFTER), MAX_RETRY_AFTER)


def parse_status(
    http_status: int, body: bytes, *, retry_after: str | None = None, now: float | None = None
) -> PollStatus:
    """Normalise one answer of ``GET /grok/v1/videos/{id}``; raise a ``CometApiError`` subclass.

    ``retry_after`` is the raw ``Retry-After`` header, used only for 429. ``now`` (epoch seconds,
    default the wall clock) bounds the provider's times: see the module docstring.
    """
    if not 200 <= http_status < 300:
        raise _http_error(http_status, body, retry_after)
    if not body.strip():
        return Pending(provider_status="accepted" if http_status == 202 else "")
    doc = _load_object(http_status, body)
    embedded = _embedded_error(doc)
    if embedded is not None:
        raise _classify(http_status, *embedded, retry_after=retry_after)
    return _interpret(doc, time.time() if now is None else now)


def parse_created(http_status: int, body: bytes, retry_after: str | None = None) -> str:
    """Return the ``request_id`` of a create answer (``{"request_id": "..."}``).

    Errors are classified as for ``parse_status``. A 2xx answer without a usable id raises the base
    ``CometApiError``: the job may exist and be billed, so a blind retry could create a second one.
    """
    if not 200 <= http_status < 300:
        raise _http_error(http_status, body, retry_after)
    if not body.strip():
        raise CometApiError(f"CometAPI HTTP {http_status}: empty answer, no request_id", status=http_status)
    doc = _load_object(http_status, body)
    embedded = _embedded_error(doc)
    if embedded is not None:
        raise _classify(http_status, *embedded, retry_after=retry_after)
    data = doc.get("data")
    candidates: list[object] = [doc.get("request_id"), doc.get("id")]
    if isinstance(data, dict):
        candidates += [data.get("request_id"), data.get("task_id"), data.get("id")]
    else:
        candidates.append(data)
    for candidate in candidates:
        if is_valid_request_id(candidate):
            return candidate
    raise CometApiError(f"CometAPI HTTP {http_status}: answer carries no valid request_id", status=http_status)


# --- errors -----------------------------------------------------------------------------------


def _http_error(status: int, body: bytes, retry_after: str | None) -> CometApiError:
    code, message, is_json = "", "", True
    if body.strip():
        try:
            doc = _loads(body)
        except (ValueError, RecursionError, TypeError):
            is_json = False
        else:
            if isinstance(doc, dict):
                code, message = _error_fields(doc)
    return _classify(status, code, message, retry_after=retry_after, non_json=not is_json, size=len(body))


def _error_fields(doc: Json) -> tuple[str, str]:
    err = doc.get("error")
    if isinstance(err, dict):
        return _code(err.get("code")) or _code(err.get("type")), _text(err.get("message"))
    if isinstance(err, str) and err.strip():
        return _code(doc.get("code")), err
    message = _text(doc.get("message")) or _text(doc.get("msg")) or _text(doc.get("detail"))
    return _code(doc.get("code")), message


def _embedded_error(doc: Json) -> tuple[str, str] | None:
    """A 2xx body that is an error envelope rather than a job state."""
    if "status" in doc or isinstance(doc.get("data"), dict):
        return None
    err = doc.get("error")
    if (isinstance(err, dict) and err) or (isinstance(err, str) and err.strip()):
        return _error_fields(doc)
    if "code" in doc and _code(doc.get("code")).lower() not in _OK_CODES:
        return _error_fields(doc)
    return None


def _classify(
    status: int,
    code: str,
    message: str,
    *,
    retry_after: str | None = None,
    non_json: bool = False,
    size: int = 0,
) -> CometApiError:
    code = _clip(code, 64)
    message = _clip(message)
    detail = f"CometAPI HTTP {status}" + (f" ({code})" if code else "")
    if message:
        detail += f": {message}"
    elif non_json:
        detail += f": body is not JSON ({size} bytes)"
    lowered = code.lower()
    moderated = bool(_MODERATION.search(code) or _MODERATION.search(message))
    optional_code = code or None

    if status < 200 or status >= 600:
        return RetryableError(f"{detail} (unexpected HTTP status)", status=status, code=optional_code)
    if 300 <= status < 400:
        return CometApiError(
            f"CometAPI HTTP {status}: unexpected redirect on an API call; check CometApiBaseUrl",
            status=status,
            code=optional_code,
        )
    if status == 429:
        wait = parse_retry_after(retry_after)
        if not message:
            detail += ": rate limited"
        return RateLimitedError(f"{detail} (retry after {wait:g}s)", retry_after=wait, code=optional_code)
    if status in (401, 403):
        return AuthError(detail, status=status, code=optional_code)
    if status >= 500:
        if lowered == "invalid_request":
            return InvalidRequestError(detail, status=status, code=optional_code, moderated=moderated)
        return RetryableError(detail, status=status, code=optional_code)
    if lowered in _NOT_FOUND_CODES:
        return NotFoundError(detail, status=status, code=optional_code)
    if status in (404, 410):
        if non_json:  # an HTML page: a wrong path, not an unknown id
            return RetryableError(detail, status=status, code=optional_code)
        return NotFoundError(detail, status=status, code=optional_code)
    if status in (408, 425):
        return RetryableError(detail, status=status, code=optional_code)
    if status >= 400 or moderated or lowered.startswith("invalid"):
        return InvalidRequestError(detail, status=status, code=optional_code, moderated=moderated)
    return RetryableError(detail, status=status, code=optional_code)  # 2xx error of unknown kind


# --- job state --------------------------------------------------------------------------------


def _interpret(doc: Json, now: float) -> PollStatus:
    wrapper = _obj(doc.get("data"))
    if wrapper is None:  # bare xAI object
        wrapper, nested = {}, doc
    else:
        nested = _obj(wrapper.get("data")) or (wrapper if "video" in wrapper else {})
    outer_raw, inner_raw = _text(wrapper.get("status")), _text(nested.get("status"))
    outer, inner = outer_raw.strip().lower(), inner_raw.strip().lower()
    label = _clip("/".join(dict.fromkeys(s for s in (outer_raw, inner_raw) if s)), 64)
    video = _obj(nested.get("video")) or _obj(wrapper.get("video")) or {}
    progress = _progress(nested.get("progress"))
    if progress is None:
        progress = _progress(wrapper.get("progress"))
    texts = (
        nested.get("error"),
        wrapper.get("fail_reason"),
        nested.get("fail_reason"),
        nested.get("message"),
        wrapper.get("message"),
        doc.get("message"),
    )

    if video.get("respect_moderation") is False:
        return Failed(FailureReason.MODERATED, "the provider's moderation blocked the video")
    if inner in _FAILED:
        return _failure(label, texts)
    if inner in _EXPIRED:
        return Failed(FailureReason.EXPIRED, "the provider expired the job")

    done = inner in _DONE or (outer in _DONE and inner not in _RUNNING) or (not inner and not outer and bool(video))
    if done:
        url = (
            _video_url(video.get("url"))
            or _video_url(wrapper.get("fail_reason"))
            or _video_url(nested.get("fail_reason"))
        )
        if url is not None:
            return _success(url, doc, wrapper, nested, video, now)
    if outer in _FAILED:
        return _failure(label, texts)
    if outer in _EXPIRED:
        return Failed(FailureReason.EXPIRED, "the provider expired the job")
    return Pending(provider_status=label, progress=progress, missing_url=done)


def _success(url: str, doc: Json, wrapper: Json, nested: Json, video: Json, now: float) -> Succeeded:
    usage = _obj(nested.get("usage")) or _obj(wrapper.get("usage")) or _obj(doc.get("usage")) or {}
    model = _text(nested.get("model")) or _text(wrapper.get("model"))
    completed = (
        _epoch(wrapper.get("finish_time"), now)
        or _epoch(nested.get("finish_time"), now)
        or _epoch(nested.get("completed_at"), now)
    )
    return Succeeded(
        video_url=url,
        duration=_duration(video.get("duration")),
        model=_clip(model, 100) or None,
        cost_usd=_cost(usage.get("cost_in_usd_ticks")),
        completed_at=completed,
        submitted_at=_epoch(wrapper.get("submit_time"), now) or _epoch(nested.get("created_at"), now),
    )


def _failure(label: str, texts: tuple[object, ...]) -> Failed:
    text, code = "", ""
    for item in texts:
        if isinstance(item, dict):
            code = code or _code(item.get("code"))
            item = item.get("message")
        if isinstance(item, str) and item.strip() and not _URL_LIKE.fullmatch(item.strip()):
            text = item
            break
    moderated = bool(_MODERATION.search(text) or _MODERATION.search(code))
    message = _clip(text) or f"the provider reported {label or 'a failure'}"
    return Failed(FailureReason.MODERATED if moderated else FailureReason.PROVIDER_FAILED, message)


# --- small readers: each takes any JSON value and never raises --------------------------------


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _loads(body: bytes) -> object:
    return json.loads(body, parse_constant=_reject_constant)


def _load_object(status: int, body: bytes) -> Json:
    try:
        doc = _loads(body)
    except (ValueError, RecursionError, TypeError):
        raise RetryableError(f"CometAPI HTTP {status}: body is not JSON ({len(body)} bytes)", status=status) from None
    if not isinstance(doc, dict):
        raise RetryableError(f"CometAPI HTTP {status}: expected a JSON object, got {type(doc).__name__}", status=status)
    return doc


def _obj(value: object) -> Json | None:
    return value if isinstance(value, dict) else None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _code(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**18:
        return str(value)
    return ""


def _number(value: object) -> float | None:
    """A finite, non-negative JSON number as a float (``-0.0`` as ``0.0``), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number + 0.0  # -0.0 -> 0.0


def _epoch(value: object, now: float) -> int | None:
    """Epoch seconds within ``EARLIEST_EPOCH .. now + FUTURE_SLACK_SECONDS``, else None."""
    number = _number(value)
    if number is None or not EARLIEST_EPOCH <= number <= now + FUTURE_SLACK_SECONDS:
        return None
    return int(number)


def _duration(value: object) -> float | None:
    """Seconds rounded to the millisecond, within ``0 < d <= MAX_DURATION_SECONDS``, else None."""
    number = _number(value)
    if number is None:
        return None
    seconds = round(number, DURATION_DECIMALS)
    return seconds if 0 < seconds <= MAX_DURATION_SECONDS else None


def _cost(ticks: object) -> float | None:
    """``cost_in_usd_ticks`` as dollars rounded to one tick, within ``0..MAX_COST_USD``, else None."""
    number = _number(ticks)
    if number is None:
        return None
    dollars = round(number / USD_TICKS_PER_DOLLAR, COST_DECIMALS)
    return dollars if dollars <= MAX_COST_USD else None


def _progress(value: object) -> int | None:
    if isinstance(value, str):
        text = value.strip().removesuffix("%").strip()
        if not _SECONDS.fullmatch(text):
            return None
        value = float(text)
    number = _number(value)
    return None if number is None else min(int(number), 100)


def _video_url(value: object) -> str | None:
    """``value`` as the Succeeded schema's ``video_url`` accepts it (scheme lower-cased), else None."""
    if not isinstance(value, str) or len(value) > VIDEO_URL_MAX_LENGTH:
        return None
    match = _VIDEO_URL.fullmatch(value)
    if match is None:
        return None
    ipv6, port = match.group("ipv6"), match.group("port")
    if port and int(port) > 65_535:
        return None
    if ipv6 is not None:
        try:
            ipaddress.IPv6Address(ipv6)
        except ValueError:
            return None
    return match.group("scheme").lower() + value[len(match.group("scheme")) :]


def _clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """One line of valid UTF-8 (lone surrogates -> U+FFFD), secrets and URL queries removed,
    at most ``limit`` characters."""
    text = _SURROGATE.sub("\ufffd", text)
    text = _CONTROL.sub(" ", text).strip()
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
