"""How the fake answers one request: request log, latency and faults, then the provider and video routes."""

from __future__ import annotations

import hmac
import json
import time
import uuid

from .admin import _Admin
from .faults import alter_reply, fault_reply
from .jobs import (
    _PROMPT_READY_RE,
    _PROMPT_SIZE_RE,
    BILLED_DURATION_WHEN_OMITTED,
    DEFAULT_MODEL,
    hostile_from_prompt,
    outcome_from_id,
    outcome_from_prompt,
    render_poll,
    task_not_exist,
)
from .ratelimit import retry_after_seconds
from .replies import Reply, comet_error, html_reply, json_reply, rate_limited
from .server import Headers
from .urls import ADMIN_PREFIX, API_PREFIX, AUTO_ID_RE, CREATE_ROUTES, POLL_RE, VIDEO_PREFIX, VIDEO_RE


class _Routes:
    """Request handling of :class:`~local.fake_cometapi.fake.FakeCometAPI` (called from handler threads).

    A mixin: the state these methods use (jobs, lock, key, latency, faults, video, create rate limit and
    create log) lives in the fake.
    """

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
        if fault is not None and not fault.after_create:
            if fault.name == "drop":
                return None
            replaced = fault_reply(fault, path)
            if replaced is not None:
                return replaced
        if path.startswith(API_PREFIX):
            reply = self._api(method, path, headers, body)
        elif path.startswith(VIDEO_PREFIX):
            reply = self._serve_video(method, path)
        else:
            reply = html_reply(404, "404 Not Found")
        if fault is not None and fault.after_create:
            return None if fault.name == "drop" else fault_reply(fault, path)
        if fault is not None:
            alter_reply(fault, reply)
        return reply

    def _authorized(self, headers: Headers) -> bool:
        key = self._api_key
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        return (
            key is not None and scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode())
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
        if route == "generations" and duration is not None and (type(duration) is not int or not 1 <= duration <= 15):
            return comet_error(400, "invalid_request", "duration must be an integer from 1 to 15")
        if route == "edits":
            video = payload.get("video")
            if not isinstance(video, dict) or not isinstance(video.get("url"), str) or not video["url"]:
                return comet_error(400, "invalid_request", "video.url is required")
            duration = None
        wait = self._take_create_token()
        if wait:
            with self._lock:
                self._rate_limited_creates += 1
            return rate_limited(retry_after_seconds(wait))
        ready = _PROMPT_READY_RE.search(prompt)
        size = _PROMPT_SIZE_RE.search(prompt)
        job = self._new_job(
            str(uuid.uuid4()),
            outcome_from_prompt(prompt),
            ready_after=float(ready.group(1)) if ready else None,
            video_size=int(size.group(1)) if size else None,
            model=model,
            duration=duration if isinstance(duration, int) else BILLED_DURATION_WHEN_OMITTED,
            hostile=hostile_from_prompt(prompt),
            request_body=payload,
        )
        with self._lock:
            self._jobs[job.request_id] = job
            self._create_log.append((job.created_wall, route, job.request_id))
        return json_reply(200, {"request_id": job.request_id})

    def _take_create_token(self) -> float:
        """0.0 if a create may go ahead (a token taken, or no limit), else seconds until it may."""
        bucket = self._create_bucket
        return 0.0 if bucket is None else bucket.take()

    def _poll(self, request_id: str) -> Reply:
        with self._lock:
            job = self._jobs.get(request_id)
            if job is None and self._auto_creatable(request_id):
                job = self._jobs[request_id] = self._new_job(request_id, outcome_from_id(request_id))
            if job is not None:
                job.polls += 1
                if job.final_seen_wall is None and job.is_final():
                    job.final_seen_wall = time.time()  # the first poll that can see the outcome
        if job is None:
            return json_reply(*task_not_exist())
        return json_reply(*render_poll(job, self._video_url(request_id)))

    def _auto_creatable(self, request_id: str) -> bool:
        """True if ``auto_jobs`` is on and ``request_id`` looks like an id (not a create route's name)."""
        return (
            self.auto_jobs and AUTO_ID_RE.match(request_id) is not None and request_id not in ("generations", "edits")
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
