"""Jobs: outcomes and prompt markers, the state a job shows over time, and the poll answer's shapes."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

OUTCOMES = ("done", "failed", "expired", "moderated", "no_url", "not_found")
SHAPES = ("envelope", "bare", "request_id_only")
DEFAULT_MODEL = "grok-imagine-video"
COST_IN_USD_TICKS = 500_000_000
BILLED_DURATION_WHEN_OMITTED = 8
FAILURE_TEXT = "video generation failed: upstream model error"
EXPIRED_TEXT = "video generation request expired"

_ID_HINTS = (
    ("notfound", "not_found"),
    ("not_found", "not_found"),
    ("nourl", "no_url"),
    ("no_url", "no_url"),
    ("fail", "failed"),
    ("moderat", "moderated"),
    ("expire", "expired"),
)
_PROMPT_OUTCOME_RE = re.compile(r"\[(fail|failed|moderated|expired|no_url|nourl|not_found|notfound)\]", re.IGNORECASE)
_PROMPT_READY_RE = re.compile(r"\[ready_after=([0-9]+(?:\.[0-9]*)?)\]", re.IGNORECASE)
_PROMPT_SIZE_RE = re.compile(r"\[video_size=([0-9]+)\]", re.IGNORECASE)
_PROMPT_HOSTILE_RE = re.compile(r"\[hostile\]", re.IGNORECASE)
# What a ``hostile`` job's final envelope says: a duration, a cost and a finish time no real job has.
HOSTILE_DURATION = 1e200
HOSTILE_COST_TICKS = 1e-200
HOSTILE_FINISH_TIME = 3e11  # the year 11476


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


def hostile_from_prompt(prompt: str) -> bool:
    """True if the prompt asks for hostile numbers: ``hostile_from_prompt("a cat [hostile]") is True``."""
    return _PROMPT_HOSTILE_RE.search(prompt) is not None


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
    hostile: bool = False
    action: str = "VIDEO_GENERATION"
    request_body: dict[str, Any] | None = None
    created_mono: float = field(default_factory=time.monotonic)
    created_wall: float = field(default_factory=time.time)
    finished_wall: float | None = None  # set by finish_now()
    polls: int = 0
    final_seen_wall: float | None = None  # when a poll first got the outcome (detection lag)

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
            "final_seen_after": None
            if self.final_seen_wall is None
            else round(self.final_seen_wall - (self.finished_wall or self.created_wall + self.ready_after), 3),
            "model": self.model,
            "duration": self.duration,
            "video_size": self.video_size,
            "video_url": video_url,
            "hostile": self.hostile,
            "prompt": (self.request_body or {}).get("prompt"),
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
            "finish_time": HOSTILE_FINISH_TIME if job.hostile and final else job.finish_time(now),
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
    video["duration"] = HOSTILE_DURATION if job.hostile else job.duration
    video["respect_moderation"] = job.outcome != "moderated"
    return {
        "model": job.model,
        "usage": {"cost_in_usd_ticks": HOSTILE_COST_TICKS if job.hostile else COST_IN_USD_TICKS},
        "video": video,
        "status": "done",
    }
