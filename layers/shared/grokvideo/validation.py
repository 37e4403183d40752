"""Input checks for request ids and the fields of the three input events.

Every check collects *all* field errors into one ``ValidationError`` whose ``errors`` are
``"field: message"`` strings, safe to log and to echo in ``Video Request Rejected`` (a bad value
is shown with ``repr`` and cut to 64 characters). Unknown fields are ignored (forward compatible);
known fields are validated, and ``None`` counts as absent for optional ones.

>>> parse_track_request({"request_id": "4b2cd27e-0b0d-3dec-c31c-7572daf74bb3"}).request_id
'4b2cd27e-0b0d-3dec-c31c-7572daf74bb3'
>>> validate_request_id("../etc/passwd")
Traceback (most recent call last):
...
grokvideo.errors.ValidationError: request_id: may contain only A-Z, a-z, 0-9, '-' and '_', got '../etc/passwd'
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from grokvideo.errors import ValidationError

T = TypeVar("T")

REQUEST_ID_MAX_LENGTH = 128
REQUEST_ID_PATTERN: re.Pattern[str] = re.compile(r"\A[A-Za-z0-9_-]{1,128}\Z")
"""A request id: 1..128 ASCII letters, digits, ``-`` and ``_`` (safe in a URL path, an S3 key, a query)."""
REQUEST_ID_REGEX = "^[A-Za-z0-9_-]{1,128}$"
"""The same rule spelled for JSON Schema."""

CLIENT_REF_MAX_LENGTH = 128
CLIENT_REF_FORBIDDEN = (
    r"[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    r"\ud800-\udfff\ufeff\ufff9-\ufffb]"
)
"""What a ``client_ref`` may not contain, the one rule of the validator and of every schema (as
``"not": {"type": "string", "pattern": ...}``): control characters (C0, DEL, C1), surrogates, the
line and paragraph separators, and the invisible format characters that can disguise text (soft
hyphen, Arabic letter mark, Mongolian vowel separator, zero-width and directional marks, bidi
embeddings, overrides and isolates, word joiner and invisible operators, BOM, interlinear
annotation). Fixed code point ranges, so the rule does not move with the Unicode version of a
runtime, and Python's ``re`` and ECMA-262 in Unicode mode (JSON Schema's) read it alike."""
METADATA_MAX_BYTES = 4096
METADATA_MAX_DEPTH = 16
PROMPT_MAX_LENGTH = 4096
URL_MAX_LENGTH = 2048
IMAGE_DATA_URL_MAX_LENGTH = 192 * 1024  # the whole input event must stay under EventBridge's 256 KiB

MODELS = ("grok-imagine-video", "grok-imagine-video-1.5")
DEFAULT_MODEL = "grok-imagine-video"
HD_MODEL = "grok-imagine-video-1.5"  # the only model that renders 1080p
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3")
RESOLUTIONS = ("480p", "720p", "1080p")
IDEMPOTENCY_KEY_MAX_LENGTH = 128
TASK_TOKEN_MAX_LENGTH = 8192  # real Step Functions tokens are long opaque strings: bound, never parse
S3_KEY_MAX_LENGTH = 1024
SUBMISSION_PREFIX = "submission-"
"""Ids of this stack's own submission records start with this; a track request may not use it."""
DURATION_MIN, DURATION_MAX = 1, 15
DEFAULT_DURATION = 6
"""Seconds. Always sent to the provider, which bills an omitted duration as 8 s; 6 s is our default."""

_SHOWN = 64  # at most this many characters of a bad value appear in a message
_TOKEN = re.compile(r"\A[!-~]+\Z")  # printable ASCII, no spaces
_CLIENT_REF_FORBIDDEN = re.compile(CLIENT_REF_FORBIDDEN)
_BUCKET = re.compile(r"\A[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_DATA_URL = re.compile(r"\Adata:image/(png|jpeg|webp);base64,([A-Za-z0-9+/]*={0,2})\Z")


def _show(value: str) -> str:
    """``repr`` of a bad value, cut to ``_SHOWN`` characters so a message stays small."""
    return repr(value[:_SHOWN]) + ("..." if len(value) > _SHOWN else "")


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def validate_request_id(value: object, field: str = "request_id") -> str:
    """Return ``value`` if it is a well-formed request id, else raise ``ValidationError``.

    >>> validate_request_id("abc_123-XYZ")
    'abc_123-XYZ'
    """
    if value is None:
        raise ValidationError([f"{field}: is required"])
    if not isinstance(value, str):
        raise ValidationError([f"{field}: must be a string, got {_type_name(value)}"])
    if value == "":
        raise ValidationError([f"{field}: must not be empty"])
    if len(value) > REQUEST_ID_MAX_LENGTH:
        raise ValidationError([f"{field}: must be at most {REQUEST_ID_MAX_LENGTH} characters, got {len(value)}"])
    if not REQUEST_ID_PATTERN.match(value):
        raise ValidationError([f"{field}: may contain only A-Z, a-z, 0-9, '-' and '_', got {_show(value)}"])
    return value


def validate_client_ref(value: object, field: str = "client_ref") -> str | None:
    """Optional caller reference echoed in every event: at most 128 characters, none of them in
    ``CLIENT_REF_FORBIDDEN`` (the schemas' rule, character for character).

    >>> validate_client_ref(None) is None
    True
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError([f"{field}: must be a string, got {_type_name(value)}"])
    if len(value) > CLIENT_REF_MAX_LENGTH:
        raise ValidationError([f"{field}: must be at most {CLIENT_REF_MAX_LENGTH} characters, got {len(value)}"])
    if _CLIENT_REF_FORBIDDEN.search(value):
        raise ValidationError([f"{field}: must not contain control or non-printable characters, got {_show(value)}"])
    return value


def _check_json(value: object, depth: int) -> str | None:
    """Why ``value`` is not plain JSON (string keys, finite numbers, bounded depth), or None."""
    if depth > METADATA_MAX_DEPTH:
        return f"must not nest deeper than {METADATA_MAX_DEPTH} levels"
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite"
    if isinstance(value, list | tuple):
        for item in value:
            if (why := _check_json(item, depth + 1)) is not None:
                return why
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"keys must be strings, got {_type_name(key)}"
            if (why := _check_json(item, depth + 1)) is not None:
                return why
        return None
    return f"values must be JSON (object, array, string, number, boolean, null), got {_type_name(value)}"


def validate_metadata(value: object, field: str = "metadata") -> dict[str, Any]:
    """Optional JSON object echoed in every event, at most 4096 bytes serialised. Absent -> ``{}``.

    >>> validate_metadata({"order": 42})
    {'order': 42}
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError([f"{field}: must be an object, got {_type_name(value)}"])
    if (why := _check_json(value, 0)) is not None:
        raise ValidationError([f"{field}: {why}"])
    try:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    except (ValueError, TypeError, RecursionError):  # lone surrogates and the like
        raise ValidationError([f"{field}: must be serialisable as UTF-8 JSON"]) from None
    if size > METADATA_MAX_BYTES:
        raise ValidationError([f"{field}: must be at most {METADATA_MAX_BYTES} bytes as JSON, got {size}"])
    return dict(value)


def validate_idempotency_key(value: object, field: str = "idempotency_key") -> str | None:
    """Optional caller key: 1-128 printable ASCII characters without spaces. Absent -> None.

    >>> validate_idempotency_key("order-1042/v2")
    'order-1042/v2'
    """
    return _token(value, field, IDEMPOTENCY_KEY_MAX_LENGTH)


def validate_task_token(value: object, field: str = "task_token") -> str | None:
    """Optional Step Functions task token: kept, never parsed; 1-8192 printable ASCII characters."""
    return _token(value, field, TASK_TOKEN_MAX_LENGTH)


def _token(value: object, field: str, max_length: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError([f"{field}: must be a string, got {_type_name(value)}"])
    if not 1 <= len(value) <= max_length:
        raise ValidationError([f"{field}: must be 1-{max_length} characters, got {len(value)}"])
    if not _TOKEN.match(value):
        raise ValidationError([f"{field}: must be printable ASCII without spaces"])
    return value


@dataclass(frozen=True, slots=True)
class S3Location:
    """An ``s3://bucket/key`` input.

    >>> S3Location.parse("s3://my-inputs/cats/1.png", "image_url", allowed=("my-inputs",))
    S3Location(bucket='my-inputs', key='cats/1.png')
    """

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @classmethod
    def parse(cls, value: str, field: str, *, allowed: Collection[str]) -> S3Location:
        bucket, _, key = value.removeprefix("s3://").partition("/")
        if not _BUCKET.match(bucket) or not key:
            raise ValidationError([f"{field}: must be s3://<bucket>/<key>, got {_show(value)}"])
        if any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in key):
            raise ValidationError([f"{field}: the S3 key must not contain control characters or lone surrogates"])
        if len(key.encode("utf-8")) > S3_KEY_MAX_LENGTH:
            raise ValidationError([f"{field}: the S3 key must be at most {S3_KEY_MAX_LENGTH} bytes as UTF-8"])
        if bucket not in allowed:
            listed = ", ".join(sorted(allowed)) or "none"
            raise ValidationError(
                [f"{field}: bucket {bucket!r} is not an input bucket of this stack (InputBucketNames: {listed})"]
            )
        return cls(bucket, key)


# --- whole input events -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrackRequest:
    """A valid ``Video Job Track Requested`` detail."""

    request_id: str
    client_ref: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    task_token: str | None = None


Input = str | S3Location
"""An input image or video: an https (or, for images, data:) URL as given, or an S3 object."""


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """A valid ``Video Generation Requested`` detail. Optional provider fields stay None when absent."""

    prompt: str
    duration: int = DEFAULT_DURATION
    aspect_ratio: str | None = None
    resolution: str | None = None
    model: str = DEFAULT_MODEL
    image: Input | None = None
    client_ref: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    task_token: str | None = None


@dataclass(frozen=True, slots=True)
class EditRequest:
    """A valid ``Video Edit Requested`` detail: exactly one of ``video`` and ``source_request_id``."""

    prompt: str
    video: Input | None = None
    source_request_id: str | None = None
    model: str = DEFAULT_MODEL
    client_ref: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    task_token: str | None = None


SubmitRequest = GenerationRequest | EditRequest


class _Collector:
    """Runs field checks, keeping every error instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def check(self, fn: Callable[[object, str], T], value: object, name: str, default: T) -> T:
        try:
            return fn(value, name)
        except ValidationError as exc:
            self.errors.extend(exc.errors)
            return default

    def done(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def _detail(detail: object) -> Mapping[str, Any]:
    if not isinstance(detail, Mapping):
        raise ValidationError([f"detail: must be an object, got {_type_name(detail)}"])
    return detail


def _prompt(value: object, field: str) -> str:
    if value is None:
        raise ValidationError([f"{field}: is required"])
    if not isinstance(value, str):
        raise ValidationError([f"{field}: must be a string, got {_type_name(value)}"])
    if not value.strip():
        raise ValidationError([f"{field}: must not be blank"])
    if len(value) > PROMPT_MAX_LENGTH:
        raise ValidationError([f"{field}: must be at most {PROMPT_MAX_LENGTH} characters, got {len(value)}"])
    if any((ord(c) < 32 and c not in "\t\n\r") or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ValidationError([f"{field}: must not contain control characters"])
    return value


def _choice(options: tuple[str, ...], default: str | None) -> Callable[[object, str], str | None]:
    def check(value: object, field: str) -> str | None:
        if value is None:
            return default
        if not isinstance(value, str) or value not in options:
            shown = _show(value) if isinstance(value, str) else _type_name(value)
            raise ValidationError([f"{field}: must be one of {', '.join(options)}, got {shown}"])
        return value

    return check


def _duration(value: object, field: str) -> int:
    if value is None:
        return DEFAULT_DURATION
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError([f"{field}: must be an integer number of seconds, got {_type_name(value)}"])
    if not DURATION_MIN <= value <= DURATION_MAX:
        raise ValidationError([f"{field}: must be between {DURATION_MIN} and {DURATION_MAX} seconds, got {value}"])
    return value


def _https_url(value: object, field: str) -> str:
    if value is None:
        raise ValidationError([f"{field}: is required"])
    if not isinstance(value, str):
        raise ValidationError([f"{field}: must be a string, got {_type_name(value)}"])
    if len(value) > URL_MAX_LENGTH:
        raise ValidationError([f"{field}: must be at most {URL_MAX_LENGTH} characters, got {len(value)}"])
    if any(ord(c) <= 32 or ord(c) >= 127 for c in value):
        raise ValidationError([f"{field}: must not contain spaces, control or non-ASCII characters"])
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ValidationError([f"{field}: is not a valid URL, got {_show(value)}"]) from None
    if parts.scheme != "https" or not host:
        raise ValidationError([f"{field}: must be an https URL with a host, got {_show(value)}"])
    if parts.username is not None or parts.password is not None:
        raise ValidationError([f"{field}: must not carry credentials"])
    return value


def _input_url(allowed: Collection[str], *, data_urls: bool) -> Callable[[object, str], Input | None]:
    """Check an input URL: https, ``s3://`` in an allowed bucket, or (images) a data URL."""

    def check(value: object, field: str) -> Input | None:
        if value is None:
            return None
        if isinstance(value, str) and value.startswith("s3://"):
            return S3Location.parse(value, field, allowed=allowed)
        if data_urls:
            return _image_url(value, field)
        return _https_url(value, field)

    return check


def _image_url(value: object, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value.startswith("data:"):
        if len(value) > IMAGE_DATA_URL_MAX_LENGTH:
            limit = IMAGE_DATA_URL_MAX_LENGTH
            raise ValidationError([f"{field}: data URL must be at most {limit} characters, got {len(value)}"])
        match = _DATA_URL.match(value)
        if match is None:
            raise ValidationError([f"{field}: a data URL must be data:image/(png|jpeg|webp);base64,<data>"])
        try:
            base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError([f"{field}: the data URL's base64 payload is malformed"]) from None
        return value
    return _https_url(value, field)


def parse_track_request(detail: Mapping[str, Any]) -> TrackRequest:
    """Validate a ``Video Job Track Requested`` detail; raise one ``ValidationError`` listing every problem.

    >>> parse_track_request({"request_id": "abc", "client_ref": "order-7"}).client_ref
    'order-7'
    """
    d = _detail(detail)
    c = _Collector()
    request_id = c.check(validate_request_id, d.get("request_id"), "request_id", "")
    if request_id.startswith(SUBMISSION_PREFIX):
        c.errors.append(f"request_id: the prefix {SUBMISSION_PREFIX!r} is reserved for this stack's submissions")
    client_ref = c.check(validate_client_ref, d.get("client_ref"), "client_ref", None)
    metadata: dict[str, Any] = c.check(validate_metadata, d.get("metadata"), "metadata", {})
    task_token = c.check(validate_task_token, d.get("task_token"), "task_token", None)
    c.done()
    return TrackRequest(request_id=request_id, client_ref=client_ref, metadata=metadata, task_token=task_token)


def parse_generation_request(detail: Mapping[str, Any], *, input_buckets: Collection[str] = ()) -> GenerationRequest:
    """Validate a ``Video Generation Requested`` detail (duration defaults to ``DEFAULT_DURATION``).

    ``s3://`` images must be in ``input_buckets``.

    >>> parse_generation_request({"prompt": "a red fox in snow"}).duration
    6
    """
    d = _detail(detail)
    c = _Collector()
    prompt = c.check(_prompt, d.get("prompt"), "prompt", "")
    duration = c.check(_duration, d.get("duration"), "duration", DEFAULT_DURATION)
    aspect_ratio = c.check(_choice(ASPECT_RATIOS, None), d.get("aspect_ratio"), "aspect_ratio", None)
    resolution = c.check(_choice(RESOLUTIONS, None), d.get("resolution"), "resolution", None)
    model = c.check(_choice(MODELS, DEFAULT_MODEL), d.get("model"), "model", None)
    if resolution == "1080p" and model is not None and model != HD_MODEL:
        c.errors.append(f"resolution: 1080p requires model {HD_MODEL}, got {model!r}")
    image = c.check(_input_url(input_buckets, data_urls=True), d.get("image_url"), "image_url", None)
    client_ref = c.check(validate_client_ref, d.get("client_ref"), "client_ref", None)
    metadata: dict[str, Any] = c.check(validate_metadata, d.get("metadata"), "metadata", {})
    key = c.check(validate_idempotency_key, d.get("idempotency_key"), "idempotency_key", None)
    task_token = c.check(validate_task_token, d.get("task_token"), "task_token", None)
    c.done()
    return GenerationRequest(
        prompt=prompt,
        duration=duration,
        aspect_ratio=aspect_ratio,
        resolution=resolution,
        model=model or DEFAULT_MODEL,
        image=image,
        client_ref=client_ref,
        metadata=metadata,
        idempotency_key=key,
        task_token=task_token,
    )


def parse_edit_request(detail: Mapping[str, Any], *, input_buckets: Collection[str] = ()) -> EditRequest:
    """Validate a ``Video Edit Requested`` detail: ``video_url`` (https or ``s3://`` in
    ``input_buckets``) or ``source_request_id`` (a stored job of this stack), not both.

    >>> parse_edit_request({"prompt": "make it snow", "video_url": "https://example.com/a.mp4"}).model
    'grok-imagine-video'
    """
    d = _detail(detail)
    c = _Collector()
    prompt = c.check(_prompt, d.get("prompt"), "prompt", "")
    video = c.check(_input_url(input_buckets, data_urls=False), d.get("video_url"), "video_url", None)
    source = d.get("source_request_id")
    source_request_id = None if source is None else c.check(validate_request_id, source, "source_request_id", None)
    if d.get("video_url") is None and source is None:
        c.errors.append("video_url: is required (or source_request_id, a stored job of this stack)")
    elif d.get("video_url") is not None and source is not None:
        c.errors.append("source_request_id: give either video_url or source_request_id, not both")
    model = c.check(_choice(MODELS, DEFAULT_MODEL), d.get("model"), "model", None)
    client_ref = c.check(validate_client_ref, d.get("client_ref"), "client_ref", None)
    metadata: dict[str, Any] = c.check(validate_metadata, d.get("metadata"), "metadata", {})
    key = c.check(validate_idempotency_key, d.get("idempotency_key"), "idempotency_key", None)
    task_token = c.check(validate_task_token, d.get("task_token"), "task_token", None)
    c.done()
    return EditRequest(
        prompt=prompt,
        video=video,
        source_request_id=source_request_id,
        model=model or DEFAULT_MODEL,
        client_ref=client_ref,
        metadata=metadata,
        idempotency_key=key,
        task_token=task_token,
    )
