"""HTTP answers: the :class:`Reply` the handler writes, and helpers for JSON, HTML and CometAPI errors."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

CHUNK_SIZE = 1 << 20  # body writes and the reusable filler chunk
_REASONS = {524: "A Timeout Occurred"}

Chunks = Iterable[bytes | memoryview]


def _request_tag() -> str:
    """A CometAPI-looking request id for error messages, e.g. ``20260311064502123abcdef01234567``."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + uuid.uuid4().hex[:17]


@dataclass
class Reply:
    """An HTTP answer for :class:`_Handler` to write.

    ``body`` is bytes or a zero-argument callable yielding chunks (streamed; never held whole).
    ``announce`` overrides Content-Length, ``cut_after`` drops the connection after that many body
    bytes, ``chunk_delay`` sleeps between chunks of at most ``chunk`` bytes.
    """

    status: int
    body: bytes | Callable[[], Chunks] = b""
    length: int | None = None
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    announce: int | None = None
    cut_after: int | None = None
    chunk_delay: float = 0.0
    chunk: int = CHUNK_SIZE
    close: bool = False

    def __post_init__(self) -> None:
        if self.length is None:
            self.length = len(self.body) if isinstance(self.body, bytes) else 0

    def chunks(self) -> Iterator[bytes | memoryview]:
        """The body as chunks of at most ``self.chunk`` bytes."""
        source: Chunks = [self.body] if isinstance(self.body, bytes) else self.body()
        for piece in source:
            view = memoryview(piece)
            for start in range(0, len(view), self.chunk):
                yield view[start : start + self.chunk]


def json_reply(status: int, obj: Any, **kwargs: Any) -> Reply:
    """A JSON answer: ``json_reply(200, {"request_id": "x"})``."""
    return Reply(status, json.dumps(obj, separators=(",", ":")).encode(), **kwargs)


def html_reply(status: int, title: str, text: str = "", **kwargs: Any) -> Reply:
    """A small HTML page, like the ones proxies and CDNs answer with."""
    page = (
        f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center>"
        f"<p>{text}</p><hr><center>nginx</center></body></html>\n"
    )
    return Reply(status, page.encode(), content_type="text/html; charset=utf-8", **kwargs)


def comet_error(status: int, code: str, message: str, **kwargs: Any) -> Reply:
    """CometAPI's global error envelope, e.g. ``comet_error(401, "invalid_api_key", "invalid token")``."""
    body = {
        "error": {
            "message": f"{message} (request id: {_request_tag()})",
            "type": "comet_api_error",
            "param": "",
            "code": code,
        }
    }
    return json_reply(status, body, **kwargs)


def rate_limited(retry_after: int | str | None) -> Reply:
    """HTTP 429 ``rate_limit_exceeded`` in the global error envelope; ``Retry-After`` unless None."""
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return comet_error(429, "rate_limit_exceeded", "rate limit exceeded, please retry later", headers=headers)
