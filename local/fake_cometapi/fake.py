"""The :class:`FakeCometAPI` facade: lifecycle, jobs, faults, latency, key, create rate limit and logs."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from .faults import FaultBook
from .jobs import DEFAULT_MODEL, OUTCOMES, SHAPES, Job
from .ratelimit import TokenBucket
from .routes import _Routes
from .server import _Server
from .video import DEFAULT_VIDEO_PATH, VideoSource

STEP = 0.05  # granularity of stop-aware sleeps


class FakeCometAPI(_Routes):
    """In-process fake of CometAPI's Grok video routes; see the package docstring for the contract.

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
        create_rate: float | None = None,
        create_burst: int = 1,
        fault_seed: int | None = None,
    ) -> None:
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, not {shape!r}")
        self._initial_create_rate = (create_rate, create_burst)
        self._create_bucket = _bucket(create_rate, create_burst)
        self.host = host
        self.port = port
        self.ready_after = float(ready_after)
        self.auto_jobs = auto_jobs
        self.shape = shape
        self.verbose = verbose
        self.video = VideoSource(Path(video_path))
        self.faults = FaultBook(seed=fault_seed)
        self._initial_api_key = api_key
        self._api_key = api_key
        self._latency = 0.0
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._requests: list[tuple[str, str]] = []
        self._create_log: list[tuple[float, str, str]] = []
        self._rate_limited_creates = 0
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
        hostile: bool = False,
    ) -> str:
        """Register a job (replacing one with the same id) and return its request id (uuid4 if None).

        ``not_found_for`` makes a fresh job answer ``task_not_exist`` for its first seconds.
        ``hostile`` makes its final envelope carry numbers no real job has (see :class:`Job`).
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
        if shape is not None and shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, not {shape!r}")
        if video_size is not None and (type(video_size) is not int or video_size < 0):
            raise ValueError("video_size must be a non-negative int")
        if not isinstance(hostile, bool):
            raise ValueError("hostile must be true or false")
        job = self._new_job(
            request_id or str(uuid.uuid4()),
            outcome,
            ready_after=ready_after,
            shape=shape,
            video_size=video_size,
            model=model,
            duration=duration,
            not_found_for=not_found_for,
            hostile=hostile,
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
        ``fake.inject("429", path="/grok/v1/videos/generations", retry_after=3)``;
        ``fake.inject("drop", after_create=True)`` (handled, then hung up on). ``method="GET"``
        narrows the match. ``fake.inject("500", count=-1, probability=0.2)``: one API call in five,
        at random; ``fake.inject("disconnect", count=-1, probability=0.1, first_per_path=True)``:
        one video in ten has its first download cut. See the package docstring for every fault
        and its parameters.
        """
        self.faults.add(fault, count=count, path=path, **params)

    def seed_faults(self, seed: int | None) -> None:
        """Restart the draws of probabilistic faults from ``seed``."""
        self.faults.seed(seed)

    def faults_injected(self) -> list[dict[str, Any]]:
        """``[{"fault", "path", "method", "count"}, ...]``: how many requests took each fault."""
        return self.faults.injected()

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

    # create rate limit and create log

    def set_create_rate(self, per_second: float | None, burst: int = 1) -> None:
        """Allow ``burst`` creates at once, refilled at ``per_second``; None: no limit. Starts full.

        Shared by both create routes; a create past it answers 429 with ``Retry-After`` and makes no job.
        """
        self._create_bucket = _bucket(per_second, burst)

    @property
    def create_rate(self) -> tuple[float, int] | None:
        """``(per_second, burst)`` of the create rate limit, or None when there is none."""
        bucket = self._create_bucket
        return None if bucket is None else (bucket.per_second, bucket.burst)

    @property
    def create_log(self) -> list[tuple[float, str, str]]:
        """``(wall_time_accepted, route, request_id)`` of every create that made a job, in order.

        ``route`` is ``"generations"`` or ``"edits"``. Creates answered by an ``after_create`` fault count.
        """
        with self._lock:
            return list(self._create_log)

    @property
    def rate_limited_creates(self) -> int:
        """Creates refused with 429 by the create rate limit (injected ``429`` faults not counted)."""
        with self._lock:
            return self._rate_limited_creates

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
        """Forget jobs, faults (and their tally), requests and creates; restore latency 0, the initial key
        and create rate."""
        with self._lock:
            self._jobs.clear()
            self._requests.clear()
            self._create_log.clear()
            self._rate_limited_creates = 0
        self.faults.reset()
        self._latency = 0.0
        self._api_key = self._initial_api_key
        self.set_create_rate(*self._initial_create_rate)

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


def _bucket(per_second: float | None, burst: int) -> TokenBucket | None:
    """The create rate limit's bucket; None without a rate."""
    return None if per_second is None else TokenBucket(per_second, burst)
