"""Output event details (the contract in ``schemas/``) and the EventBridge publisher.

Every detail carries ``request_id`` (absent only in a rejection made before an id exists),
``client_ref``, ``metadata`` and ``schema_version``. Timestamps are given as epoch seconds and
rendered as ISO 8601 UTC strings; unknown values stay ``null``. A builder never raises on a number:
a time no timestamp can show, or a ``duration`` / ``cost_usd`` outside what the schema allows
(NaN, infinities, out of range), is left out as ``null``, so an event owed can always be built.

>>> ev = generation_failed(request_id="abc", client_ref=None, metadata=None,
...                        reason=FailureReason.TIMED_OUT, message="no answer within 3600 s")
>>> ev.detail_type, ev.detail["reason"]
(<DetailType.FAILED: 'Video Generation Failed'>, 'TIMED_OUT')

Use (needs AWS or the provider, so not a doctest)::

    EventPublisher("grokvideo-bus").publish([ev])
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from grokvideo.config import DEFAULT_EVENT_SOURCE
from grokvideo.errors import EventPublishError, EventTooLargeError, ValidationError
from grokvideo.models import MAX_COST_USD, MAX_DURATION_SECONDS, ArchiveFailureReason, FailureReason
from grokvideo.validation import REQUEST_ID_PATTERN, validate_client_ref, validate_metadata

SCHEMA_VERSION = "1"
MAX_ENTRY_BYTES = 262_144  # PutEvents: 256 KiB per entry, and per request in total
MAX_BATCH_ENTRIES = 10
MAX_MESSAGE_LENGTH = 1024  # ``message`` fields are cut to this many characters
INVALID_REQUEST = "INVALID_REQUEST"  # the reason of a rejection by our own validation
MAX_EPOCH = 253_402_300_799  # 9999-12-31T23:59:59Z: the last second a four-digit year can show


class DetailType(StrEnum):
    """Every detail-type of the contract: three inputs, six outputs."""

    # Input (any source but ours)
    GENERATION_REQUESTED = "Video Generation Requested"
    EDIT_REQUESTED = "Video Edit Requested"
    TRACK_REQUESTED = "Video Job Track Requested"
    # Output (source = EventSource)
    SUBMITTED = "Video Generation Submitted"
    REJECTED = "Video Request Rejected"
    SUCCEEDED = "Video Generation Succeeded"
    FAILED = "Video Generation Failed"
    STORED = "Video Stored"
    ARCHIVE_FAILED = "Video Archive Failed"


@dataclass(frozen=True)
class OutputEvent:
    """One event to publish: its detail-type and its ``detail`` (plain JSON values)."""

    detail_type: DetailType
    detail: dict[str, Any]

    @property
    def request_id(self) -> str | None:
        rid = self.detail.get("request_id")
        return rid if isinstance(rid, str) else None


class Publisher(Protocol):
    """What every function needs of the bus: put one event on it or raise ``EventPublishError``."""

    def publish_one(self, event: OutputEvent) -> None: ...


# --- detail builders --------------------------------------------------------------------------


def iso_utc(epoch: int | float | Decimal | None) -> str | None:
    """Epoch seconds -> ``"2026-11-25T21:28:23Z"``; None stays None. Never raises: a time outside
    1970-01-01 .. 9999-12-31 (or NaN, an infinity, not a number) is None too.

    >>> iso_utc(1795642103), iso_utc(3e11)
    ('2026-11-25T21:28:23Z', None)
    """
    if not isinstance(epoch, int | float | Decimal) or not _finite(epoch) or not 0 <= epoch < MAX_EPOCH + 1:
        return None
    when = datetime.fromtimestamp(int(epoch), tz=UTC)
    return f"{when.year:04d}-{when:%m-%dT%H:%M:%S}Z"


def _finite(value: object) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite()
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int)


def _number(value: int | float | Decimal | None) -> int | float | None:
    """DynamoDB hands numbers back as Decimal: make them int or float (NaN, infinities: None)."""
    if not _finite(value):
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _within(value: int | float | Decimal | None, low: float, high: float, *, low_included: bool) -> int | float | None:
    """``_number(value)`` when it lies in the schema's range, else None."""
    number = _number(value)
    if number is None or number > high or number < low or (number == low and not low_included):
        return None
    return number


def _duration(value: int | float | Decimal | None) -> int | float | None:
    return _within(value, 0, MAX_DURATION_SECONDS, low_included=False)


def _cost(value: int | float | Decimal | None) -> int | float | None:
    return _within(value, 0, MAX_COST_USD, low_included=True)


def _common(request_id: str, client_ref: str | None, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "client_ref": client_ref,
        "metadata": dict(metadata) if metadata else {},
        "schema_version": SCHEMA_VERSION,
    }


def _message(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_LENGTH else message[: MAX_MESSAGE_LENGTH - 3] + "..."


def generation_submitted(
    *,
    request_id: str,
    client_ref: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    idempotency_key: str | None,
    model: str,
    duration: int | None,
    resolution: str | None,
    aspect_ratio: str | None,
    submitted_at: int,
) -> OutputEvent:
    """``Video Generation Submitted``: the provider accepted the job and we track it.

    ``duration``, ``resolution`` and ``aspect_ratio`` are what was asked for (null for an edit,
    which keeps its input's).
    """
    detail = _common(request_id, client_ref, metadata)
    detail.update(
        idempotency_key=idempotency_key,
        model=model,
        duration=duration,
        resolution=resolution,
        aspect_ratio=aspect_ratio,
        submitted_at=iso_utc(submitted_at),
    )
    return OutputEvent(DetailType.SUBMITTED, detail)


def request_rejected(
    *,
    reason: str,
    errors: Sequence[str],
    request_id: str | None = None,
    client_ref: object = None,
    metadata: object = None,
) -> OutputEvent:
    """``Video Request Rejected``: an input event we refused. ``errors`` are ``"field: message"`` strings.

    Echoes only what is safe to echo: a ``request_id`` that is not well formed is left out, an
    invalid ``client_ref`` becomes null and invalid ``metadata`` becomes ``{}`` (``errors`` says why).
    """
    try:
        ref = validate_client_ref(client_ref)
    except ValidationError:
        ref = None
    try:
        meta = validate_metadata(metadata)
    except ValidationError:
        meta = {}
    detail: dict[str, Any] = {}
    if isinstance(request_id, str) and REQUEST_ID_PATTERN.match(request_id):
        detail["request_id"] = request_id
    detail.update(
        client_ref=ref,
        metadata=meta,
        schema_version=SCHEMA_VERSION,
        reason=reason,
        errors=[_message(str(e)) for e in errors],
    )
    return OutputEvent(DetailType.REJECTED, detail)


def generation_succeeded(
    *,
    request_id: str,
    client_ref: str | None,
    metadata: Mapping[str, Any] | None,
    video_url: str,
    duration: int | float | Decimal | None,
    model: str | None,
    cost_usd: int | float | Decimal | None,
    submitted_at: int | None,
    completed_at: int | None,
) -> OutputEvent:
    """``Video Generation Succeeded``: the provider finished; ``video_url`` is temporary (~24 h)."""
    detail = _common(request_id, client_ref, metadata)
    detail.update(
        video_url=video_url,
        duration=_duration(duration),
        model=model,
        cost_usd=_cost(cost_usd),
        submitted_at=iso_utc(submitted_at),
        completed_at=iso_utc(completed_at),
    )
    return OutputEvent(DetailType.SUCCEEDED, detail)


def generation_failed(
    *,
    request_id: str,
    client_ref: str | None,
    metadata: Mapping[str, Any] | None,
    reason: FailureReason | str,
    message: str,
) -> OutputEvent:
    """``Video Generation Failed``: the job ended without a video (``reason``: a ``FailureReason`` value)."""
    detail = _common(request_id, client_ref, metadata)
    detail.update(reason=FailureReason(reason).value, message=_message(message))
    return OutputEvent(DetailType.FAILED, detail)


def video_stored(
    *,
    request_id: str,
    client_ref: str | None,
    metadata: Mapping[str, Any] | None,
    bucket: str,
    key: str,
    s3_uri: str | None = None,
    size_bytes: int | Decimal,
    sha256: str,
    content_type: str,
    duration: int | float | Decimal | None,
    model: str | None,
    manifest_key: str | None = None,
) -> OutputEvent:
    """``Video Stored``: the video is in our bucket. ``s3_uri`` defaults to ``s3://bucket/key``.

    ``manifest_key`` is the provenance JSON beside it (null for videos stored before manifests).
    """
    detail = _common(request_id, client_ref, metadata)
    detail.update(
        bucket=bucket,
        key=key,
        s3_uri=s3_uri or f"s3://{bucket}/{key}",
        size_bytes=_number(size_bytes),
        sha256=sha256,
        content_type=content_type,
        duration=_duration(duration),
        model=model,
        manifest_key=manifest_key,
    )
    return OutputEvent(DetailType.STORED, detail)


def archive_failed(
    *,
    request_id: str,
    client_ref: str | None,
    metadata: Mapping[str, Any] | None,
    reason: ArchiveFailureReason | str,
    message: str,
) -> OutputEvent:
    """``Video Archive Failed``: the video was made but could not be copied into S3.

    ``reason`` must be an ``ArchiveFailureReason`` value (a plain string from DynamoDB is fine);
    anything else raises ``ValueError``, so an event never leaves with a reason outside the schema.
    """
    detail = _common(request_id, client_ref, metadata)
    detail.update(reason=ArchiveFailureReason(reason).value, message=_message(message))
    return OutputEvent(DetailType.ARCHIVE_FAILED, detail)


# --- serialisation and size -------------------------------------------------------------------


def _json_default(value: object) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not JSON")
        return _number(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def serialize_detail(detail: Mapping[str, Any]) -> str:
    """Compact JSON; DynamoDB ``Decimal`` numbers become int or float.

    >>> serialize_detail({"duration": Decimal("1"), "cost_usd": Decimal("0.05")})
    '{"duration":1,"cost_usd":0.05}'
    """
    return json.dumps(detail, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default)


def entry_size(entry: Mapping[str, Any]) -> int:
    """Size of a PutEvents entry the way EventBridge counts it (Time, Source, DetailType, Detail, Resources).

    >>> entry_size({"Source": "grokvideo", "DetailType": "Video Stored", "Detail": "{}"})
    23
    """
    size = 14 if entry.get("Time") is not None else 0
    size += len(entry["Source"].encode("utf-8"))
    size += len(entry["DetailType"].encode("utf-8"))
    if entry.get("Detail") is not None:
        size += len(entry["Detail"].encode("utf-8"))
    size += sum(len(r.encode("utf-8")) for r in entry.get("Resources") or () if r is not None)
    return size


# --- publisher --------------------------------------------------------------------------------

# Error codes that another attempt cannot fix: fail at once instead of backing off.
_PERMANENT_CODES = frozenset(
    {
        "AccessDeniedException",
        "NotAuthorizedForSourceException",
        "ValidationException",
        "ResourceNotFoundException",
        "MalformedDetail",
        "InvalidArgument",
        "InvalidEventPatternException",
        "ParamValidationError",  # botocore refused the request before sending it
    }
)


@dataclass(frozen=True, slots=True)
class _Item:
    event: OutputEvent
    entry: dict[str, Any]
    size: int

    def label(self, code: str) -> str:
        return f"{self.event.detail_type.value} {self.event.request_id or '-'}: {code}"


class EventPublisher:
    """Sends output events to the bus: batches of 10 (and under 256 KiB), failed entries retried.

    Use (needs AWS or the provider, so not a doctest)::

        pub = EventPublisher("grokvideo-bus", client=fake_client, sleep=lambda s: None)
        pub.publish_one(ev)
    """

    def __init__(
        self,
        bus_name: str,
        source: str = DEFAULT_EVENT_SOURCE,
        *,
        client: Any = None,
        max_attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        base_delay: float = 0.2,
        max_delay: float = 5.0,
    ) -> None:
        self.bus_name = bus_name
        self.source = source or DEFAULT_EVENT_SOURCE
        self._client = client
        self.max_attempts = max(1, max_attempts)
        self._sleep = sleep
        self.base_delay = base_delay
        self.max_delay = max_delay

    @property
    def client(self) -> Any:
        """The boto3 ``events`` client, created on first use (keeps cold start imports small)."""
        if self._client is None:
            import boto3  # lazy: boto3 costs ~100 ms to import
            from botocore.config import Config

            config = Config(
                connect_timeout=3,
                read_timeout=10,
                retries={"mode": "standard", "total_max_attempts": 3},
            )
            self._client = boto3.client("events", config=config)
        return self._client

    def entry(self, event: OutputEvent) -> dict[str, Any]:
        """The PutEvents entry for ``event``."""
        try:
            detail = serialize_detail(event.detail)
            detail.encode("utf-8")  # lone surrogates cannot be sent
        except (TypeError, ValueError, RecursionError) as exc:
            raise EventPublishError(
                f"{event.detail_type.value} detail is not serialisable as UTF-8 JSON: {type(exc).__name__}"
            ) from None
        return {
            "Source": self.source,
            "DetailType": event.detail_type.value,
            "Detail": detail,
            "EventBusName": self.bus_name,
        }

    def publish_one(self, event: OutputEvent) -> None:
        """Publish a single event (see ``publish``)."""
        self.publish([event])

    def publish(self, events: Sequence[OutputEvent]) -> None:
        """Put every event on the bus or raise.

        Raises ``EventTooLargeError`` before sending anything if an entry exceeds 256 KiB, and
        ``EventPublishError`` (``failed`` lists ``"<detail-type> <request_id>: <error code>"``) when
        entries are still refused after ``max_attempts``. Delivery is at least once: a retried
        batch may repeat an event that had in fact been accepted.
        """
        items = [self._item(event) for event in events]
        failed: list[str] = []
        pending = items
        for attempt in range(1, self.max_attempts + 1):
            retry: list[tuple[_Item, str]] = []
            for batch in self._batches(pending):
                for item, code in self._send(batch):
                    if code in _PERMANENT_CODES:
                        failed.append(item.label(code))
                    else:
                        retry.append((item, code))
            if not retry:
                break
            if attempt == self.max_attempts:
                failed.extend(item.label(code) for item, code in retry)
                break
            pending = [item for item, _ in retry]
            self._sleep(self._delay(attempt))
        if failed:
            raise EventPublishError(
                f"EventBridge did not accept {len(failed)} of {len(items)} events "
                f"(after up to {self.max_attempts} attempts): {', '.join(sorted(set(failed))[:10])}",
                failed=failed,
            )

    # -- internals --

    def _item(self, event: OutputEvent) -> _Item:
        entry = self.entry(event)
        size = entry_size(entry)
        if size > MAX_ENTRY_BYTES:
            label = f"{event.detail_type.value} {event.request_id or '-'}: EventTooLarge ({size} bytes)"
            raise EventTooLargeError(
                f"{event.detail_type.value} event is {size} bytes, over the PutEvents limit of {MAX_ENTRY_BYTES}",
                failed=[label],
            )
        return _Item(event, entry, size)

    @staticmethod
    def _batches(items: Sequence[_Item]) -> Iterator[list[_Item]]:
        batch: list[_Item] = []
        total = 0
        for item in items:
            if batch and (len(batch) == MAX_BATCH_ENTRIES or total + item.size > MAX_ENTRY_BYTES):
                yield batch
                batch, total = [], 0
            batch.append(item)
            total += item.size
        if batch:
            yield batch

    def _send(self, batch: list[_Item]) -> list[tuple[_Item, str]]:
        """One PutEvents call; returns the entries that were not accepted, with their error code."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.put_events(Entries=[item.entry for item in batch])
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code") or "ClientError")
            return [(item, code) for item in batch]
        except BotoCoreError as exc:  # timeouts, connection errors
            return [(item, type(exc).__name__) for item in batch]
        if not response.get("FailedEntryCount"):
            return []
        results = response.get("Entries") or []
        if len(results) != len(batch):  # cannot tell which failed: resend them all
            return [(item, "UnknownFailure") for item in batch]
        return [
            (item, str(result.get("ErrorCode") or "UnknownFailure"))
            for item, result in zip(batch, results, strict=True)
            if result.get("ErrorCode") or not result.get("EventId")
        ]

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with jitter: half the step fixed, half random."""
        step = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return step / 2 + random.uniform(0, step / 2)
