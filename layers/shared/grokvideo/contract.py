"""Typed models of every event detail in the contract, for Python consumers and producers.

One ``TypedDict`` per detail-type, key for key the JSON Schemas in ``schemas/`` (outputs) and
``schemas/input/`` (inputs): a key the schema does not require is ``NotRequired``, a value the
schema allows to be null is ``... | None``, an ``integer`` is ``int`` and a ``number`` is
``float`` (which takes an int too). Ranges, patterns and enumerations stay the schemas' business
(and the validator's); the docstrings name the values. tests/unit/test_contract.py holds the
models to the schemas and to what ``grokvideo.events`` builds.

>>> from grokvideo.contract import DETAIL_MODELS, VideoGenerationFailed
>>> detail: VideoGenerationFailed = {
...     "request_id": "abc", "client_ref": None, "metadata": {}, "schema_version": "1",
...     "reason": "TIMED_OUT", "message": "no answer within 3600 s",
... }
>>> DETAIL_MODELS["Video Generation Failed"] is VideoGenerationFailed
True
>>> sorted(VideoGenerationFailed.__required_keys__ - {"client_ref", "metadata", "schema_version"})
['message', 'reason', 'request_id']

A consumer of ``Video Stored`` (an EventBridge target receiving the whole event) would write::

    def on_stored(event: dict[str, Any]) -> None:
        detail: VideoStored = event["detail"]
        fetch(detail["bucket"], detail["key"], expect_sha256=detail["sha256"])
"""

from collections.abc import Mapping
from typing import Any, Final, NotRequired, TypedDict

from grokvideo.events import DetailType

__all__ = [
    "DETAIL_MODELS",
    "INPUT_MODELS",
    "OUTPUT_MODELS",
    "VideoArchiveFailed",
    "VideoEditRequested",
    "VideoGenerationFailed",
    "VideoGenerationRequested",
    "VideoGenerationSubmitted",
    "VideoGenerationSucceeded",
    "VideoJobTrackRequested",
    "VideoRequestRejected",
    "VideoStored",
]


# --- output details (source: the stack's EventSource, default "grokvideo") --------------------


class _Echoed(TypedDict):
    """What every output detail carries: the caller's own values echoed, and the shape's version."""

    client_ref: str | None  # the request's client_ref (null when none was given)
    metadata: dict[str, Any]  # the request's metadata object ({} when none was given)
    schema_version: str  # "1"


class _OfJob(_Echoed):
    """An output detail about one job: ``request_id`` with the detail-type is the dedupe key."""

    request_id: str  # the provider's job id (1-128 of A-Z a-z 0-9 - _)


class VideoGenerationSubmitted(_OfJob):
    """``Video Generation Submitted``: the provider accepted a generation or edit request and the
    job is being tracked. ``duration`` (seconds), ``resolution`` and ``aspect_ratio`` are what was
    asked for (null for an edit, which keeps its input's); ``submitted_at`` is ISO 8601 UTC."""

    idempotency_key: str  # the request's key, or the input event's id when it had none
    model: str
    duration: int | None
    resolution: str | None  # 480p, 720p, 1080p
    aspect_ratio: str | None  # 1:1, 16:9, 9:16, 4:3, 3:4, 3:2, 2:3
    submitted_at: str


class VideoRequestRejected(_Echoed):
    """``Video Request Rejected``: an input event was refused before any job existed or changed.

    ``request_id`` is there only when the request carried a well-formed one; ``reason`` is
    machine-readable (``INVALID_REQUEST`` for our own validation); ``errors`` holds one
    ``"field: message"`` string per problem.
    """

    request_id: NotRequired[str]
    reason: str
    errors: list[str]


class VideoGenerationSucceeded(_OfJob):
    """``Video Generation Succeeded``: the provider finished the video; ``Video Stored`` follows once
    the stack has copied it. ``video_url`` is the provider's and temporary (about 24 h). What the
    provider did not report is null: ``duration`` (seconds), ``model``, ``cost_usd`` (US dollars),
    ``submitted_at`` and ``completed_at`` (ISO 8601 UTC)."""

    video_url: str
    duration: float | None
    model: str | None
    cost_usd: float | None
    submitted_at: str | None
    completed_at: str | None


class VideoGenerationFailed(_OfJob):
    """``Video Generation Failed``: the job ended without a video.

    ``reason``: ``PROVIDER_FAILED``, ``MODERATED``, ``EXPIRED``, ``NOT_FOUND``, ``TIMED_OUT``,
    ``REJECTED`` or ``SUBMIT_UNCERTAIN`` (then ``request_id`` is the stack's own ``submission-...``
    id and ``message`` says how to check the provider). ``message`` never holds credentials.
    """

    reason: str
    message: str


class VideoStored(_OfJob):
    """``Video Stored``: the video is in the stack's bucket, at ``bucket``/``key`` (``s3_uri``), with
    its size and hex SHA-256; ``manifest_key`` is the provenance JSON beside it in the same bucket
    (null for videos stored before manifests). ``duration`` (seconds) and ``model`` are as the
    provider reported them, or null."""

    bucket: str
    key: str
    s3_uri: str  # s3://<bucket>/<key>
    size_bytes: int
    sha256: str
    content_type: str
    duration: float | None
    model: str | None
    manifest_key: str | None


class VideoArchiveFailed(_OfJob):
    """``Video Archive Failed``: the video was made but could not be copied into S3.

    ``reason``: ``URL_EXPIRED`` (the video host answered 403/404/410), ``URL_REFUSED`` (the URL
    guard refused the URL or a redirect), ``NOT_A_VIDEO``, ``TOO_LARGE`` (over MaxVideoBytes) or
    ``TRANSFER_FAILED`` (retries spent). ``message`` never holds credentials.
    """

    reason: str
    message: str


# --- input details (put on the stack's bus with any source but the stack's own) -------------
# The stack ignores keys it does not know; a null optional value means the same as leaving it out.


class VideoGenerationRequested(TypedDict):
    """``Video Generation Requested``: ask for a new video from ``prompt`` (at most 4096 characters).

    ``duration``: 1-15 s (default 6); ``aspect_ratio``: 1:1, 16:9, 9:16, 4:3, 3:4, 3:2, 2:3;
    ``resolution``: 480p, 720p, or 1080p with ``grok-imagine-video-1.5`` only; ``model``:
    ``grok-imagine-video`` (default) or ``grok-imagine-video-1.5``; ``image_url`` (image to
    video): https, a base64 ``data:image/...`` URL or ``s3://`` in one of InputBucketNames.
    ``client_ref`` and ``metadata`` are echoed in every output event; one provider job per
    ``idempotency_key`` (default: the event's id); ``task_token`` is a Step Functions token to
    resume when the job ends.
    """

    prompt: str
    duration: NotRequired[int | None]
    aspect_ratio: NotRequired[str | None]
    resolution: NotRequired[str | None]
    model: NotRequired[str | None]
    image_url: NotRequired[str | None]
    client_ref: NotRequired[str | None]
    metadata: NotRequired[dict[str, Any] | None]
    idempotency_key: NotRequired[str | None]
    task_token: NotRequired[str | None]


class VideoEditRequested(TypedDict):
    """``Video Edit Requested``: edit a video (at most ~8.7 s) by ``prompt``.

    The video is exactly one of ``video_url`` (https, or ``s3://`` in one of InputBucketNames) and
    ``source_request_id`` (a job this stack has stored). ``model``, ``client_ref``, ``metadata``,
    ``idempotency_key`` and ``task_token`` as in ``VideoGenerationRequested``.
    """

    prompt: str
    video_url: NotRequired[str | None]
    model: NotRequired[str | None]
    client_ref: NotRequired[str | None]
    metadata: NotRequired[dict[str, Any] | None]
    source_request_id: NotRequired[str | None]
    idempotency_key: NotRequired[str | None]
    task_token: NotRequired[str | None]


class VideoJobTrackRequested(TypedDict):
    """``Video Job Track Requested``: track a job created elsewhere until it ends, then archive its
    video. ``request_id`` is the provider's job id (1-128 of A-Z a-z 0-9 - _, not starting with
    ``submission-``); ``client_ref``, ``metadata`` and ``task_token`` as in
    ``VideoGenerationRequested``.
    """

    request_id: str
    client_ref: NotRequired[str | None]
    metadata: NotRequired[dict[str, Any] | None]
    task_token: NotRequired[str | None]


# --- detail-type -> model (DetailType is a str: a plain "Video Stored" looks up as well) --------

OUTPUT_MODELS: Final[Mapping[str, type]] = {
    DetailType.SUBMITTED: VideoGenerationSubmitted,
    DetailType.REJECTED: VideoRequestRejected,
    DetailType.SUCCEEDED: VideoGenerationSucceeded,
    DetailType.FAILED: VideoGenerationFailed,
    DetailType.STORED: VideoStored,
    DetailType.ARCHIVE_FAILED: VideoArchiveFailed,
}
INPUT_MODELS: Final[Mapping[str, type]] = {
    DetailType.GENERATION_REQUESTED: VideoGenerationRequested,
    DetailType.EDIT_REQUESTED: VideoEditRequested,
    DetailType.TRACK_REQUESTED: VideoJobTrackRequested,
}
DETAIL_MODELS: Final[Mapping[str, type]] = {**INPUT_MODELS, **OUTPUT_MODELS}
