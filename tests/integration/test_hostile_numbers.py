"""Hostile provider answers, through the real sweep, moto's table and moto's bus.

Whatever CometAPI sends, the parser hands the sweep only values the jobs table can store and the
events' schemas accept: every job below ends finished, with exactly one event that matches its
schema, and the sweep meets no unexpected error (the ``make_sweeper`` fixture checks that).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from grokvideo.jobs import JobStore
from grokvideo.models import JobState, PollStatus
from grokvideo.status import parse_status
from grokvideo.sweep import Sweeper
from tests.integration.conftest import EventCapture
from tests.schema_check import assert_valid_event

SUCCEEDED = "Video Generation Succeeded"
FAILED = "Video Generation Failed"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@dataclass
class CannedProvider:
    """A status source answering each request id with a fixed body, parsed as the real client does."""

    bodies: dict[str, bytes] = field(default_factory=dict)

    def get_video(self, request_id: str) -> PollStatus:
        return parse_status(200, self.bodies[request_id])


def success(**changes: Any) -> dict[str, Any]:
    """The recorded success answer with ``changes`` applied (``"data.data.video.url"`` style paths)."""
    doc: dict[str, Any] = json.loads((FIXTURES / "get-video-success.json").read_bytes())
    for path, value in changes.items():
        *parents, last = path.split(".")
        target = doc
        for name in parents:
            target = target[name]
        target[last] = value
    return doc


LONG_URL = "https://vidgen.x.ai/" + "a" * 3000 + ".mp4"

# name -> (body, detail-type it must end with, fields its detail must have)
CASES: dict[str, tuple[dict[str, Any], str, dict[str, Any]]] = {
    "finish-time-year-11476": (success(**{"data.finish_time": 3e11}), SUCCEEDED, {}),
    "submit-time-year-11476": (success(**{"data.submit_time": 3e11}), SUCCEEDED, {"submitted_at": None}),
    "finish-time-1970": (success(**{"data.finish_time": 5}), SUCCEEDED, {}),
    "duration-1e200": (success(**{"data.data.video.duration": 1e200}), SUCCEEDED, {"duration": None}),
    "duration-1e-200": (success(**{"data.data.video.duration": 1e-200}), SUCCEEDED, {"duration": None}),
    "duration-huge-int": (success(**{"data.data.video.duration": 10**60}), SUCCEEDED, {"duration": None}),
    "duration-rounded-to-ms": (
        success(**{"data.data.video.duration": 1.2345678}),
        SUCCEEDED,
        {"duration": 1.235},
    ),
    "cost-1e200": (success(**{"data.data.usage.cost_in_usd_ticks": 1e200}), SUCCEEDED, {"cost_usd": None}),
    "cost-1e-200": (success(**{"data.data.usage.cost_in_usd_ticks": 1e-190}), SUCCEEDED, {"cost_usd": 0}),
    "cost-huge-int": (success(**{"data.data.usage.cost_in_usd_ticks": 10**60}), SUCCEEDED, {"cost_usd": None}),
    "model-lone-surrogate": (success(**{"data.data.model": "grok\ud800"}), SUCCEEDED, {"model": "grok\ufffd"}),
    "upper-case-scheme": (
        success(**{"data.data.video.url": "HTTPS://vidgen.x.ai/v.mp4", "data.fail_reason": ""}),
        SUCCEEDED,
        {"video_url": "https://vidgen.x.ai/v.mp4"},
    ),
    "url-over-2048": (
        success(**{"data.data.video.url": LONG_URL, "data.fail_reason": LONG_URL}),
        FAILED,
        {"reason": "PROVIDER_FAILED", "message": "completed without a video URL"},
    ),
    "fail-reason-lone-surrogate": (
        {"code": "success", "data": {"status": "FAILURE", "fail_reason": "render \udc00 crashed", "data": None}},
        FAILED,
        {"reason": "PROVIDER_FAILED", "message": "render \ufffd crashed"},
    ),
    "error-message-lone-surrogate": (
        {"status": "failed", "error": {"code": "x\ud83d", "message": "GPU \ud83d on fire"}},
        FAILED,
        {"reason": "PROVIDER_FAILED", "message": "GPU \ufffd on fire"},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_hostile_answer_ends_the_job_with_one_valid_event(
    name: str, store: JobStore, capture: EventCapture, make_sweeper: Callable[..., Sweeper]
) -> None:
    body, detail_type, expected = CASES[name]
    rid = f"hostile-{name}"
    provider = CannedProvider({rid: json.dumps(body).encode()})  # json.dumps keeps "\ud800" as an escape
    store.register(rid, now=int(time.time()), client_ref="ref-1", metadata={"case": name})

    report = make_sweeper(client=provider, missing_url_limit=1).run()

    assert report.polled == 1 and report.events_published == 1
    job = store.get(rid)
    assert job is not None and job.outbox is None
    assert job.state is (JobState.SUCCEEDED if detail_type == SUCCEEDED else JobState.FAILED)
    # Out of the due index once settled; a succeeded job stays until the copy watchdog.
    assert job.next_poll_at is None if job.state is JobState.FAILED else job.next_poll_at > time.time() + 3600
    [event] = capture.drain()
    assert event["detail-type"] == detail_type
    assert_valid_event(detail_type, event["detail"])
    for key, value in expected.items():
        assert event["detail"][key] == value, key
    if detail_type == SUCCEEDED:
        assert event["detail"]["completed_at"] is not None  # the provider's time, or ours when it is implausible
