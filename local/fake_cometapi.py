"""A fake CometAPI (Grok video routes) for tests, benchmarks and the demo. Standard library only.

It speaks the provider's API as ``../shared/COMETAPI.md`` describes it, serves the video bytes the
status answer points at, and injects faults on demand. Three ways to use it:

In a test (in-process, one thread per connection)::

    with FakeCometAPI(ready_after=0.5) as fake:
        rid = fake.add_job(outcome="done")
        fake.inject("503", count=2)                       # the next two API calls answer 503
        ...  # point the client at fake.base_url with api key "test-key"

Alone (prints ``fake CometAPI listening on http://127.0.0.1:PORT`` and serves until SIGTERM/SIGINT)::

    python -m local.fake_cometapi --port 0 --ready-after 5 --auto-jobs --verbose

From another process (demo, system tests), over the admin routes under ``/_fake/``::

    POST   /_fake/jobs              {"outcome": "done", "ready_after": 2, "video_size": 1048576}
                                    (also request_id, shape, model, duration, not_found_for)
                                    -> {"request_id": "...", "video_url": "http://.../videos/<id>.mp4"}
    GET    /_fake/jobs              -> {"jobs": [{"request_id", "outcome", "status", "nested_status",
                                                  "progress", "final", "polls", ...}]}
    POST   /_fake/jobs/{id}/finish  -> the job's summary, now final
    POST   /_fake/faults            {"fault": "429", "count": 2, "path": "/grok/v1/videos/", "retry_after": 1}
    GET    /_fake/faults, DELETE /_fake/faults
    POST   /_fake/latency           {"seconds": 0.2}
    POST   /_fake/api_key           {"api_key": "new"} or {"api_key": null} (revoked: every call 401)
    GET    /_fake/requests          -> {"requests": [["GET", "/grok/v1/videos/<id>"], ...]}
    POST   /_fake/reset             forget jobs, faults, requests; latency 0; initial key
    GET    /_fake/health

Provider routes (``Authorization: Bearer <api_key>`` required, else 401 in the global error envelope):

- ``POST /grok/v1/videos/generations`` and ``/edits`` -> ``{"request_id": "<uuid4>"}``. ``prompt`` is
  required; generations take ``duration`` int 1-15 (omitted: the job reports 8 s, as billed); edits
  need ``video.url``; ``size``/``seconds`` answer 422; multipart or non-JSON bodies answer 400.
  Markers in the prompt steer the job: ``[fail]``, ``[moderated]``, ``[expired]``, ``[no_url]``,
  ``[not_found]`` pick the outcome (default ``done``), ``[ready_after=SECONDS]`` and
  ``[video_size=BYTES]`` override those settings.
- ``GET /grok/v1/videos/{id}`` -> the job's state at this moment (see :class:`Job`); unknown id ->
  HTTP 400 ``{"code": "task_not_exist", ...}`` unless ``auto_jobs`` creates it (outcome picked from
  the id by :func:`outcome_from_id`).

Video route (no auth, like the provider's public temporary URL): ``GET|HEAD /videos/{id}.mp4``.

Outcomes: ``done``, ``failed``, ``expired``, ``moderated`` (success envelope, respect_moderation false,
no URL), ``no_url`` (done, no URL anywhere), ``not_found`` (HTTP 400 ``task_not_exist`` forever).
Shapes: ``envelope`` (CometAPI wrapper, as in ``tests/fixtures/get-video-success.json``), ``bare``
(the xAI object; HTTP 202 while pending), ``request_id_only`` (``{"request_id"}`` with HTTP 202 while
pending, then like ``bare``).

Faults (:meth:`FakeCometAPI.inject`) are consumed one per matching request, first injected first
(``count=N`` uses; a negative count lasts until cleared).
Without ``path`` the API faults match ``/grok/v1/`` and the video faults match ``/videos/``; with
``path`` any fault matches requests whose path starts with it (``method=`` narrows further).

==============  ========================================================================================
API faults      ``latency`` (seconds=1), ``timeout`` (seconds=15: no answer that long; stop() still
                prompt), ``429`` (retry_after=1, None omits the header), ``400`` (code=task_not_exist),
                ``422``, ``500`` ``502`` ``503`` ``504`` ``524`` (body="json"|"html", code=...),
                ``malformed`` (200 HTML), ``empty_202`` (202, empty body), ``401``, ``403``
Video faults    ``wrong_length`` (announce=N bytes in Content-Length; default real+1024; the connection
                closes after the body), ``content_type`` (value="text/html"), ``html_body`` (200 HTML
                page), ``slow_body`` (delay=0.05 s per chunk, chunk=65536), ``disconnect`` (close the
                socket after ``after`` bytes, default half), ``redirect`` (location=same URL, code=302),
                ``status`` (code=404)
==============  ========================================================================================
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import socketserver
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO_PATH = REPO_ROOT / "tests" / "fixtures" / "sample-1s-480p.mp4"

OUTCOMES = ("done", "failed", "expired", "moderated", "no_url", "not_found")
SHAPES = ("envelope", "bare", "request_id_only")
DEFAULT_MODEL = "grok-imagine-video"
COST_IN_USD_TICKS = 500_000_000
BILLED_DURATION_WHEN_OMITTED = 8
FAILURE_TEXT = "video generation failed: upstream model error"
EXPIRED_TEXT = "video generation request expired"

API_PREFIX = "/grok/v1/"
VIDEO_PREFIX = "/videos/"
ADMIN_PREFIX = "/_fake/"
CREATE_ROUTES = {"/grok/v1/videos/generations": "generations", "/grok/v1/videos/edits": "edits"}
POLL_RE = re.compile(r"^/grok/v1/videos/([^/]+)$")
VIDEO_RE = re.compile(r"^/videos/([^/]+)\.mp4$")
AUTO_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")

CHUNK_SIZE = 1 << 20  # body writes and the reusable filler chunk
MAX_REQUEST_BODY = 16 << 20
STEP = 0.05  # granularity of stop-aware sleeps

API_FAULTS = frozenset(
    {"latency", "timeout", "429", "400", "422", "500", "502", "503", "504", "524"}
    | {"malformed", "empty_202", "401", "403"}
)
VIDEO_FAULTS = frozenset(
    {"wrong_length", "content_type", "html_body", "slow_body", "disconnect", "redirect", "status"}
)
FAULTS = API_FAULTS | VIDEO_FAULTS

_ID_HINTS = (
    ("notfound", "not_found"),
    ("not_found", "not_found"),
    ("nourl", "no_url"),
    ("no_url", "no_url"),
    ("fail", "failed"),
    ("moderat", "moderated"),
    ("expire", "expired"),
)
_PROMPT_OUTCOME_RE = re.compile(
    r"\[(fail|failed|moderated|expired|no_url|nourl|not_found|notfound)\]", re.IGNORECASE
)
_PROMPT_READY_RE = re.compile(r"\[ready_after=([0-9]+(?:\.[0-9]*)?)\]", re.IGNORECASE)
_PROMPT_SIZE_RE = re.compile(r"\[video_size=([0-9]+)\]", re.IGNORECASE)
_REASONS = {524: "A Timeout Occurred"}

Headers = Message  # what BaseHTTPRequestHandler parses request headers into (``.get`` is all we use)
Chunks = Iterable[bytes | memoryview]


def outcome_from_id(request_id: str) -> str:
    """Outcome of a job that ``auto_jobs`` creates on first sight of ``request_id``.

    >>> outcome_from_id("job-fail-1"), outcome_from_id("x-NOURL"), outcome_from_id("abc")
    ('failed', 'no_url', 'done')
    """
    low = request_id.lower()
    for hint, outcome in _ID_HINTS:
        if hint in low:
            return outcome
    return "done"


def outcome_from_prompt(prompt: str) -> str:
    """Outcome picked by a ``[marker]`` in a prompt: ``outcome_from_prompt("a cat [fail]") == "failed"``."""
    match = _PROMPT_OUTCOME_RE.search(prompt)
    return outcome_from_id(match.group(1)) if match else "done"


def _request_tag() -> str:
    """A CometAPI-looking request id for error messages, e.g. ``20260311064502123abcdef01234567``."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + uuid.uuid4().hex[:17]


# --- jobs ---------------------------------------------------------------------------------------


@dataclass
class Job:
    """One video job and the state it shows at a given moment.

    Before ``ready_after`` seconds have passed (since creation) the job walks through
    ``NOT_START/pending`` (first 10 %), ``SUBMITTED/queued`` (to 25 %), ``IN_PROGRESS/queued`` (to 50 %)
    and ``IN_PROGRESS/processing``, with progress ``"NN%"`` rising to 99; then it shows its outcome.
    ``Job("id", "done", ready_after=0, ...).phase()`` is ``("SUCCESS", "done", 100)``.
    """

    request_id: str
    outcome: str
    ready_after: float
    shape: str
    video_size: int | None = None
    model: str = DEFAULT_MODEL
    duration: int = 1
    not_found_for: float = 0.0
    action: str = "VIDEO_GENERATION"
    request_body: dict[str, Any] | None = None
    created_mono: float = field(default_factory=time.monotonic)
    created_wall: float = field(default_factory=time.time)
    finished_wall: float | None = None  # set by finish_now()
    polls: int = 0

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since the job was created (``now`` is a ``time.monotonic()`` reading)."""
        return (time.monotonic() if now is None else now) - self.created_mono

    def is_final(self, now: float | None = None) -> bool:
        """True once the outcome is visible."""
        return self.finished_wall is not None or self.elapsed(now) >= self.ready_after

    def phase(self, now: float | None = None) -> tuple[str, str, int]:
        """``(wrapper status, nested status, progress percent)`` at ``now`` (default: right now)."""
        if self.is_final(now):
            return {
                "failed": ("FAILURE", "failed", 100),
                "expired": ("FAILURE", "expired", 100),
            }.get(self.outcome, ("SUCCESS", "done", 100))
        frac = self.elapsed(now) / self.ready_after
        if frac < 0.10:
            return "NOT_START", "pending", 0
        if frac < 0.25:
            return "SUBMITTED", "queued", 0
        percent = max(1, min(99, int(frac * 100)))
        return "IN_PROGRESS", ("queued" if frac < 0.5 else "processing"), percent

    def finish_time(self, now: float | None = None) -> int:
        """Epoch second the job finished (0 while it runs)."""
        if self.finished_wall is not None:
            return int(self.finished_wall)
        return int(self.created_wall + self.ready_after) if self.is_final(now) else 0

    def summary(self, video_url: str) -> dict[str, Any]:
        """What ``GET /_fake/jobs`` lists for this job."""
        now = time.monotonic()
        wrapper, nested, percent = self.phase(now)
        return {
            "request_id": self.request_id,
            "outcome": self.outcome,
            "shape": self.shape,
            "status": wrapper,
            "nested_status": nested,
            "progress": percent,
            "final": self.is_final(now),
            "elapsed": round(self.elapsed(now), 3),
            "ready_after": self.ready_after,
            "polls": self.polls,
            "model": self.model,
            "duration": self.duration,
            "video_size": self.video_size,
            "video_url": video_url,
        }


def task_not_exist() -> tuple[int, dict[str, Any]]:
    """The task routes' answer for an unknown id (HTTP 400, not 404)."""
    return 400, {"code": "task_not_exist", "message": "task_not_exist", "data": None}


def render_poll(job: Job, video_url: str) -> tuple[int, dict[str, Any]]:
    """``(HTTP status, JSON body)`` of ``GET /grok/v1/videos/{id}`` for ``job`` right now."""
    now = time.monotonic()  # one reading, so every field agrees
    if job.outcome == "not_found" or job.elapsed(now) < job.not_found_for:
        return task_not_exist()
    wrapper, nested, percent = job.phase(now)
    final = job.is_final(now)
    inner = _xai_object(job, final, nested, percent, video_url)
    if job.shape != "envelope":
        if not final:
            if job.shape == "request_id_only":
                return 202, {"request_id": job.request_id}
            return 202, {"status": "pending", "model": job.model, "progress": percent}
        return 200, inner
    reasons = {"done": video_url, "failed": FAILURE_TEXT, "expired": EXPIRED_TEXT}
    fail_reason = reasons.get(job.outcome, "") if final else ""
    return 200, {
        "code": "success",
        "message": "",
        "data": {
            "task_id": job.request_id,
            "action": job.action,
            "status": wrapper,
            "fail_reason": fail_reason,
            "submit_time": int(job.created_wall),
            "start_time": 0,
            "finish_time": job.finish_time(now),
            "progress": f"{percent}%",
            "data": inner,
        },
    }


def _xai_object(job: Job, final: bool, nested: str, percent: int, video_url: str) -> dict[str, Any]:
    """The xAI status object: nested in the envelope's ``data.data``, or alone in the bare shape."""
    if not final:
        return {"model": job.model, "status": nested, "progress": percent}
    if job.outcome == "failed":
        error = {"code": "generation_failed", "message": FAILURE_TEXT}
        return {"model": job.model, "error": error, "status": "failed"}
    if job.outcome == "expired":
        return {"model": job.model, "status": "expired"}
    video: dict[str, Any] = {"url": video_url} if job.outcome == "done" else {}
    video["duration"] = job.duration
    video["respect_moderation"] = job.outcome != "moderated"
    return {
        "model": job.model,
        "usage": {"cost_in_usd_ticks": COST_IN_USD_TICKS},
        "video": video,
        "status": "done",
    }


# --- faults -------------------------------------------------------------------------------------


@dataclass
class Fault:
    """One injected fault: ``remaining`` uses left (negative: until cleared)."""

    name: str
    remaining: int
    path: str
    method: str | None
    params: dict[str, Any]

    def matches(self, method: str, path: str) -> bool:
        """True if this fault applies to a ``method`` request for ``path``."""
        return path.startswith(self.path) and (self.method is None or self.method == method)

    def describe(self) -> dict[str, Any]:
        """JSON view for ``GET /_fake/faults``."""
        return {
            "fault": self.name,
            "remaining": self.remaining,
            "path": self.path,
            "method": self.method,
            **self.params,
        }


class FaultBook:
    """Thread-safe queue of faults, consumed one per matching request (first injected first).

    >>> book = FaultBook(); book.add("503", count=1); book.take("GET", "/grok/v1/videos/x").name
    '503'
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self, fault: str, *, count: int = 1, path: str | None = None, method: str | None = None, **params: Any
    ) -> None:
        """Queue ``fault``; see the module docstring for names and parameters."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(sorted(FAULTS))}")
        if count == 0:
            raise ValueError("count must be >= 1, or negative for 'until cleared'")
        if path is None:
            path = API_PREFIX if fault in API_FAULTS else VIDEO_PREFIX
        if not path.startswith("/") or path.startswith(ADMIN_PREFIX):
            raise ValueError(f"fault path must start with '/' and not be an admin route: {path!r}")
        entry = Fault(fault, int(count), path, method.upper() if method else None, dict(params))
        with self._lock:
            self._faults.append(entry)

    def take(self, method: str, path: str) -> Fault | None:
        """Consume and return the first fault matching this request, if any."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.matches(method, path):
                    if fault.remaining > 0:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            del self._faults[index]
                    return fault
        return None

    def pending(self) -> list[dict[str, Any]]:
        """Faults not yet consumed."""
        with self._lock:
            return [fault.describe() for fault in self._faults]

    def clear(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()


# --- replies and video bytes --------------------------------------------------------------------


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


class VideoSource:
    """Bytes of the video at ``/videos/{id}.mp4``: the fixture MP4, or exactly ``size`` bytes that begin
    with the fixture (so with its ``ftyp`` box) followed by a precomputed 1 MiB filler chunk, repeated.

    >>> src = VideoSource(DEFAULT_VIDEO_PATH); sum(len(c) for c in src.chunks(3_000_000)) == 3_000_000
    True
    """

    def __init__(self, path: Path) -> None:
        self.fixture = Path(path).read_bytes()
        if self.fixture[4:8] != b"ftyp":
            raise ValueError(f"{path} does not start with an MP4 ftyp box")
        self.filler = hashlib.shake_256(b"fake-cometapi filler").digest(CHUNK_SIZE)

    def length(self, size: int | None) -> int:
        """Body length for a job's ``video_size``."""
        return len(self.fixture) if size is None else size

    def chunks(self, size: int | None) -> Iterator[bytes | memoryview]:
        """The body in chunks of at most 1 MiB; deterministic for a given ``size``."""
        if size is None:
            yield self.fixture
            return
        head = self.fixture[:size]
        if head:
            yield head
        remaining = size - len(head)
        filler = memoryview(self.filler)
        while remaining > 0:
            step = min(remaining, len(filler))
            yield filler[:step]
            remaining -= step


# --- HTTP plumbing ------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    """Thread per connection; tracks open connections so ``stop()`` can drop keep-alive ones."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeCometAPI) -> None:
        self.fake = fake
        self.connections_accepted = 0
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup (``getfqdn``), which can be slow."""
        socketserver.TCPServer.server_bind(self)
        host, self.server_port = self.server_address[:2]
        self.server_name = str(host)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
            self.connections_accepted += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Shut down every open connection (idle keep-alive ones included)."""
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connection errors are the client's business; print anything else (a bug in the fake)."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive plumbing: read the request, ask the fake for a :class:`Reply`, write it."""

    protocol_version = "HTTP/1.1"
    server_version = "fake-cometapi/1.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections close after this
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between headers and body
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, fmt: str, *args: Any) -> None:
        """Quiet unless the fake is verbose (never logs headers, so never the key)."""
        if self.server.fake.verbose:
            sys.stderr.write(f"fake-cometapi {self.address_string()} {fmt % args}\n")

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
            if body is None:
                return
            reply = self.server.fake._handle(self.command, urlsplit(self.path).path, self.headers, body)
            if reply is None:
                self._abort()
            else:
                self._send(reply)
        except OSError:
            self.close_connection = True

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked); None after answering 400/413 itself."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            total = 0
            while True:
                try:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    self._send(comet_error(400, "invalid_request", "bad chunked body", close=True))
                    return None
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                total += size
                if total > MAX_REQUEST_BODY:
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        else:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self._send(comet_error(400, "invalid_request", "bad Content-Length", close=True))
                return None
            if length <= MAX_REQUEST_BODY:
                return self.rfile.read(length) if length > 0 else b""
        self._send(comet_error(413, "invalid_request", "request body too large", close=True))
        return None

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status, reply.reason or _REASONS.get(reply.status))
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        announced = reply.length if reply.announce is None else reply.announce
        self.send_header("Content-Length", str(announced))
        if reply.close or reply.announce is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            return
        sent = 0
        for piece in reply.chunks():
            if reply.cut_after is not None and sent + len(piece) >= reply.cut_after:
                self.wfile.write(piece[: reply.cut_after - sent])
                self._abort()
                return
            self.wfile.write(piece)
            sent += len(piece)
            if reply.chunk_delay and not self.server.fake._sleep(reply.chunk_delay):
                self._abort()
                return

    def _abort(self) -> None:
        """Drop the connection without (the rest of) an answer."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


# --- the fake -----------------------------------------------------------------------------------


class FakeCometAPI:
    """In-process fake of CometAPI's Grok video routes; see the module docstring for the contract.

    >>> with FakeCometAPI(ready_after=0) as fake:
    ...     rid = fake.add_job(outcome="failed")
    ...     fake.inject("429", retry_after=2)
    ...     fake.base_url.startswith("http://127.0.0.1:")
    True
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = "test-key",
        ready_after: float = 3.0,
        video_path: str | Path = DEFAULT_VIDEO_PATH,
        auto_jobs: bool = False,
        shape: str = "envelope",
        verbose: bool = False,
    ) -> None:
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, not {shape!r}")
        self.host = host
        self.port = port
        self.ready_after = float(ready_after)
        self.auto_jobs = auto_jobs
        self.shape = shape
        self.verbose = verbose
        self.video = VideoSource(Path(video_path))
        self.faults = FaultBook()
        self._initial_api_key = api_key
        self._api_key = api_key
        self._latency = 0.0
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._requests: list[tuple[str, str]] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT``, known from the first start() on (and kept after stop())."""
        if self._server is None and self.port == 0:
            raise RuntimeError("FakeCometAPI is not started")
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeCometAPI:
        """Bind and serve in a background thread. A restart after stop() reuses the same port."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": STEP},
            name=f"fake-cometapi-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop promptly: end sleeping faults, drop open connections, close the socket."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeCometAPI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted since start (shows keep-alive reuse)."""
        return self._server.connections_accepted if self._server else 0

    # jobs

    def add_job(
        self,
        request_id: str | None = None,
        *,
        outcome: str = "done",
        ready_after: float | None = None,
        shape: str | None = None,
        video_size: int | None = None,
        model: str = DEFAULT_MODEL,
        duration: int = 1,
        not_found_for: float = 0.0,
    ) -> str:
        """Register a job (replacing one with the same id) and return its request id (uuid4 if None).

        ``not_found_for`` makes a fresh job answer ``task_not_exist`` for its first seconds.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
        if shape is not None and shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, not {shape!r}")
        if video_size is not None and (type(video_size) is not int or video_size < 0):
            raise ValueError("video_size must be a non-negative int")
        job = self._new_job(
            request_id or str(uuid.uuid4()),
            outcome,
            ready_after=ready_after,
            shape=shape,
            video_size=video_size,
            model=model,
            duration=duration,
            not_found_for=not_found_for,
        )
        with self._lock:
            self._jobs[job.request_id] = job
        return job.request_id

    def _new_job(
        self,
        request_id: str,
        outcome: str,
        *,
        ready_after: float | None = None,
        shape: str | None = None,
        **fields: Any,
    ) -> Job:
        """A Job with this fake's defaults filled in (not yet registered)."""
        ready = self.ready_after if ready_after is None else max(0.0, float(ready_after))
        return Job(request_id, outcome, ready_after=ready, shape=shape or self.shape, **fields)

    def finish_now(self, request_id: str) -> None:
        """Make a job's outcome visible from now on. Raises KeyError for an unknown id."""
        with self._lock:
            job = self._jobs[request_id]
            if job.finished_wall is None and not job.is_final():
                job.finished_wall = time.time()

    def job(self, request_id: str) -> Job:
        """The job object (e.g. ``fake.job(rid).request_body`` is what the client posted)."""
        with self._lock:
            return self._jobs[request_id]

    def jobs(self) -> list[dict[str, Any]]:
        """A summary of every job, as ``GET /_fake/jobs`` lists them."""
        with self._lock:
            jobs = list(self._jobs.values())
        return [job.summary(self._video_url(job.request_id)) for job in jobs]

    def video_url(self, request_id: str) -> str:
        """Where the job's video is served: ``{base_url}/videos/{request_id}.mp4``."""
        return f"{self.base_url}/videos/{request_id}.mp4"

    def video_length(self, request_id: str) -> int:
        """Size in bytes of the video served for ``request_id``."""
        return self.video.length(self._video_size(request_id))

    def video_sha256(self, request_id: str) -> str:
        """Hex SHA-256 of the video served for ``request_id`` (computed by streaming)."""
        digest = hashlib.sha256()
        for piece in self.video.chunks(self._video_size(request_id)):
            digest.update(piece)
        return digest.hexdigest()

    # faults, latency, key

    def inject(self, fault: str, *, count: int = 1, path: str | None = None, **params: Any) -> None:
        """Queue a fault for the next ``count`` matching requests (negative: until cleared).

        ``fake.inject("503", count=2, body="html")``; ``fake.inject("disconnect", after=1000)``;
        ``fake.inject("429", path="/grok/v1/videos/generations", retry_after=3)``. ``method="GET"``
        narrows the match. See the module docstring for every fault and its parameters.
        """
        self.faults.add(fault, count=count, path=path, **params)

    def clear_faults(self) -> None:
        """Drop every fault not yet consumed."""
        self.faults.clear()

    def set_latency(self, seconds: float) -> None:
        """Sleep this long before every API (``/grok/v1/``) answer; requests still run in parallel."""
        self._latency = max(0.0, float(seconds))

    def set_api_key(self, api_key: str | None) -> None:
        """Change the accepted key at runtime; None revokes it (every API call answers 401)."""
        self._api_key = api_key

    @property
    def api_key(self) -> str | None:
        """The key API calls must present right now."""
        return self._api_key

    # request log

    @property
    def requests(self) -> list[tuple[str, str]]:
        """Snapshot of ``(method, path)`` of every provider/video request seen (admin ones excluded)."""
        with self._lock:
            return list(self._requests)

    def count(self, method: str | None = None, prefix: str = "/") -> int:
        """How many requests matched: ``fake.count("POST", "/grok/v1/videos/generations")``."""
        return sum(1 for m, p in self.requests if (method is None or m == method) and p.startswith(prefix))

    def clear_requests(self) -> None:
        """Forget the request log only."""
        with self._lock:
            self._requests.clear()

    def reset(self) -> None:
        """Forget jobs, faults and requests; restore latency 0 and the initial API key."""
        with self._lock:
            self._jobs.clear()
            self._requests.clear()
        self.faults.clear()
        self._latency = 0.0
        self._api_key = self._initial_api_key

    # request handling (called from handler threads)

    def _sleep(self, seconds: float) -> bool:
        """Sleep, waking at once when stop() is called; False if stopping (the caller should give up)."""
        return not self._stopping.wait(max(0.0, seconds))

    def _video_url(self, request_id: str) -> str:
        return f"http://{self.host}:{self.port}/videos/{request_id}.mp4"

    def _video_size(self, request_id: str) -> int | None:
        with self._lock:
            job = self._jobs.get(request_id)
        return job.video_size if job else None

    def _handle(self, method: str, path: str, headers: Headers, body: bytes) -> Reply | None:
        """Answer one request; None means drop the connection without an answer."""
        if path.startswith(ADMIN_PREFIX):
            return _Admin(self).handle(method, path, body)
        with self._lock:
            self._requests.append((method, path))
        fault = self.faults.take(method, path)
        if path.startswith(API_PREFIX) and self._latency and not self._sleep(self._latency):
            return None
        if fault is not None and fault.name in ("latency", "timeout"):
            default = 1.0 if fault.name == "latency" else 15.0
            if not self._sleep(float(fault.params.get("seconds", default))):
                return None
            fault = None
        if fault is not None:
            replaced = self._fault_reply(fault, path)
            if replaced is not None:
                return replaced
        if path.startswith(API_PREFIX):
            reply = self._api(method, path, headers, body)
        elif path.startswith(VIDEO_PREFIX):
            reply = self._serve_video(method, path)
        else:
            reply = html_reply(404, "404 Not Found")
        if fault is not None:
            self._alter_reply(fault, reply)
        return reply

    def _fault_reply(self, fault: Fault, path: str) -> Reply | None:
        """The answer that replaces the normal one, or None for faults that alter it instead."""
        name, params = fault.name, fault.params
        if name == "429":
            retry_after = params.get("retry_after", 1)
            headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
            return comet_error(
                429, "rate_limit_exceeded", "rate limit exceeded, please retry later", headers=headers
            )
        if name == "400":
            code = params.get("code", "task_not_exist")
            return json_reply(400, {"code": code, "message": params.get("message", code), "data": None})
        if name == "422":
            return comet_error(422, "unprocessable_entity", params.get("message", "unprocessable request"))
        if name == "401":
            return comet_error(401, "invalid_api_key", "invalid token")
        if name == "403":
            return comet_error(403, params.get("code", "access_denied"), "access denied")
        if name in ("500", "502", "503", "504", "524"):
            status = int(name)
            if params.get("body", "json") == "html":
                return html_reply(status, f"{status} {_REASONS.get(status, 'Server Error')}")
            return comet_error(status, params.get("code", "upstream_error"), f"upstream error {status}")
        if name == "malformed":
            return html_reply(200, "Welcome", "This is not the JSON you are looking for.")
        if name == "empty_202":
            return Reply(202, b"", content_type=None)
        if name == "html_body":
            return html_reply(200, "Video unavailable", "The requested video is not available.")
        if name == "redirect":
            location = params.get("location", path)
            return Reply(int(params.get("code", 302)), b"", content_type=None, headers={"Location": location})
        if name == "status":
            status = int(params.get("code", 404))
            return html_reply(status, f"{status} Error", "Access to this object failed.")
        return None

    @staticmethod
    def _alter_reply(fault: Fault, reply: Reply) -> None:
        """Apply a body fault (wrong_length, content_type, slow_body, disconnect) to ``reply``."""
        params = fault.params
        if fault.name == "wrong_length":
            reply.announce = int(params.get("announce", (reply.length or 0) + 1024))
        elif fault.name == "content_type":
            reply.content_type = params.get("value", "text/html")
        elif fault.name == "slow_body":
            reply.chunk_delay = float(params.get("delay", 0.05))
            reply.chunk = int(params.get("chunk", 65536))
        elif fault.name == "disconnect":
            reply.cut_after = int(params.get("after", (reply.length or 0) // 2))

    def _authorized(self, headers: Headers) -> bool:
        key = self._api_key
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        return (
            key is not None
            and scheme.lower() == "bearer"
            and hmac.compare_digest(token.strip().encode(), key.encode())
        )

    def _api(self, method: str, path: str, headers: Headers, body: bytes) -> Reply:
        """The provider's ``/grok/v1/`` routes."""
        if not self._authorized(headers):
            return comet_error(401, "invalid_api_key", "invalid token")
        if path in CREATE_ROUTES:
            if method != "POST":
                return comet_error(405, "method_not_allowed", f"{method} not allowed")
            return self._create(CREATE_ROUTES[path], headers, body)
        match = POLL_RE.match(path)
        if match is None:
            return html_reply(404, "404 page not found")
        if method not in ("GET", "HEAD"):
            return comet_error(405, "method_not_allowed", f"{method} not allowed")
        return self._poll(match.group(1))

    def _create(self, route: str, headers: Headers, body: bytes) -> Reply:
        if "multipart/" in headers.get("Content-Type", ""):
            return comet_error(400, "invalid_request", "multipart bodies are not supported; send JSON")
        try:
            payload = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError):
            return comet_error(400, "invalid_request", "request body is not valid JSON")
        if not isinstance(payload, dict):
            return comet_error(400, "invalid_request", "request body must be a JSON object")
        legacy = sorted({"size", "seconds"} & payload.keys())
        if legacy:
            return comet_error(422, "unprocessable_entity", f"unknown field(s): {', '.join(legacy)}")
        prompt = payload.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return comet_error(400, "invalid_request", "prompt is required")
        model = payload.get("model", DEFAULT_MODEL)
        if not isinstance(model, str) or not model:
            return comet_error(400, "invalid_request", "model must be a string")
        duration = payload.get("duration")
        if (
            route == "generations"
            and duration is not None
            and (type(duration) is not int or not 1 <= duration <= 15)
        ):
            return comet_error(400, "invalid_request", "duration must be an integer from 1 to 15")
        if route == "edits":
            video = payload.get("video")
            if not isinstance(video, dict) or not isinstance(video.get("url"), str) or not video["url"]:
                return comet_error(400, "invalid_request", "video.url is required")
            duration = None
        ready = _PROMPT_READY_RE.search(prompt)
        size = _PROMPT_SIZE_RE.search(prompt)
        job = self._new_job(
            str(uuid.uuid4()),
            outcome_from_prompt(prompt),
            ready_after=float(ready.group(1)) if ready else None,
            video_size=int(size.group(1)) if size else None,
            model=model,
            duration=duration if isinstance(duration, int) else BILLED_DURATION_WHEN_OMITTED,
            request_body=payload,
        )
        with self._lock:
            self._jobs[job.request_id] = job
        return json_reply(200, {"request_id": job.request_id})

    def _poll(self, request_id: str) -> Reply:
        with self._lock:
            job = self._jobs.get(request_id)
            if job is None and self._auto_creatable(request_id):
                job = self._jobs[request_id] = self._new_job(request_id, outcome_from_id(request_id))
            if job is not None:
                job.polls += 1
        if job is None:
            return json_reply(*task_not_exist())
        return json_reply(*render_poll(job, self._video_url(request_id)))

    def _auto_creatable(self, request_id: str) -> bool:
        """True if ``auto_jobs`` is on and ``request_id`` looks like an id (not a create route's name)."""
        return (
            self.auto_jobs
            and AUTO_ID_RE.match(request_id) is not None
            and request_id not in ("generations", "edits")
        )

    def _serve_video(self, method: str, path: str) -> Reply:
        """``GET|HEAD /videos/{id}.mp4``: public, no key needed."""
        match = VIDEO_RE.match(path)
        if match is None or method not in ("GET", "HEAD"):
            return html_reply(404, "404 Not Found")
        request_id = match.group(1)
        with self._lock:
            known = request_id in self._jobs
        if not known and not self._auto_creatable(request_id):
            return html_reply(404, "404 Not Found", "No such video.")
        size = self._video_size(request_id)
        return Reply(
            200,
            lambda: self.video.chunks(size),
            length=self.video.length(size),
            content_type="video/mp4",
            headers={"Accept-Ranges": "none"},
        )


class _Admin:
    """The ``/_fake/`` control routes, for a fake running in another process. Never faulted or logged."""

    def __init__(self, fake: FakeCometAPI) -> None:
        self.fake = fake

    def handle(self, method: str, path: str, body: bytes) -> Reply:
        try:
            payload = json.loads(body) if body else {}
            if not isinstance(payload, dict):
                raise ValueError("body must be a JSON object")
            return self._route(method, path.rstrip("/"), payload)
        except (ValueError, TypeError) as exc:
            return json_reply(400, {"error": str(exc)})
        except KeyError as exc:
            return json_reply(404, {"error": f"unknown job {exc}"})

    def _route(self, method: str, path: str, payload: dict[str, Any]) -> Reply:
        fake = self.fake
        if (method, path) == ("GET", "/_fake/health"):
            return json_reply(200, {"ok": True})
        if (method, path) == ("GET", "/_fake/jobs"):
            return json_reply(200, {"jobs": fake.jobs()})
        if (method, path) == ("POST", "/_fake/jobs"):
            allowed = {
                "request_id",
                "outcome",
                "ready_after",
                "shape",
                "video_size",
                "model",
                "duration",
                "not_found_for",
            }
            unknown = payload.keys() - allowed
            if unknown:
                raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
            request_id = fake.add_job(payload.pop("request_id", None), **payload)
            return json_reply(200, {"request_id": request_id, "video_url": fake._video_url(request_id)})
        finish = re.match(r"^/_fake/jobs/([^/]+)/finish$", path)
        if method == "POST" and finish:
            fake.finish_now(finish.group(1))
            return json_reply(200, fake.job(finish.group(1)).summary(fake._video_url(finish.group(1))))
        if (method, path) == ("GET", "/_fake/faults"):
            return json_reply(200, {"faults": fake.faults.pending()})
        if (method, path) == ("POST", "/_fake/faults"):
            name = payload.pop("fault", None)
            if not isinstance(name, str):
                raise ValueError("fault (a string) is required")
            fake.inject(name, **payload)
            return json_reply(200, {"faults": fake.faults.pending()})
        if (method, path) == ("DELETE", "/_fake/faults"):
            fake.clear_faults()
            return json_reply(200, {"faults": []})
        if (method, path) == ("POST", "/_fake/latency"):
            fake.set_latency(payload.get("seconds", 0))
            return json_reply(200, {"seconds": fake._latency})
        if (method, path) == ("POST", "/_fake/api_key"):
            fake.set_api_key(payload.get("api_key"))
            return json_reply(200, {"revoked": fake.api_key is None})
        if (method, path) == ("GET", "/_fake/requests"):
            return json_reply(200, {"requests": [list(item) for item in fake.requests]})
        if (method, path) == ("POST", "/_fake/reset"):
            fake.reset()
            return json_reply(200, {"ok": True})
        return json_reply(404, {"error": f"no admin route {method} {path}"})


# --- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the fake until SIGTERM/SIGINT; the first stdout line names its base URL."""
    parser = argparse.ArgumentParser(
        prog="python -m local.fake_cometapi",
        description="Fake CometAPI (Grok video routes) for tests and the demo.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("FAKE_COMETAPI_KEY", "test-key"),
        help="key API calls must present (default $FAKE_COMETAPI_KEY or test-key)",
    )
    parser.add_argument("--ready-after", type=float, default=3.0, help="seconds until a job's outcome shows")
    parser.add_argument("--auto-jobs", action="store_true", help="create unknown ids on first poll")
    parser.add_argument("--shape", choices=SHAPES, default="envelope")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every API answer")
    parser.add_argument("--video-path", type=Path, default=DEFAULT_VIDEO_PATH)
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    fake = FakeCometAPI(
        args.host,
        args.port,
        api_key=args.api_key,
        ready_after=args.ready_after,
        video_path=args.video_path,
        auto_jobs=args.auto_jobs,
        shape=args.shape,
        verbose=args.verbose,
    )
    fake.set_latency(args.latency)
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    with fake:
        print(f"fake CometAPI listening on {fake.base_url}", flush=True)
        while not done.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
