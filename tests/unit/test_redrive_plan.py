"""Where a dead letter goes back to, row by row: queue x body x message attributes x now -> plan."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from grokvideo.cli.redrive import (
    VIDEO_URL_LIFETIME,
    BusEntry,
    Destination,
    Kind,
    Plan,
    Source,
    batches,
    plan,
)

NOW = 1_795_824_000  # 2026-11-28T00:00:00Z
HOUR = 3600
EXPIRED = "URL probably expired; the copier will end the job ARCHIVE_FAILED (URL_EXPIRED)"

# What AWS writes beside a dead letter: an EventBridge rule's target DLQ, Lambda's async-invoke
# DLQ, EventBridge Scheduler's DLQ.
RULE = {
    "RULE_ARN": "arn:aws:events:us-east-1:123456789012:rule/grokvideo/grokvideo-CopyRule",
    "TARGET_ARN": "arn:aws:sqs:us-east-1:123456789012:grokvideo-CopyQueue",
    "ERROR_CODE": "SQS_NO_PERMISSION",
    "ERROR_MESSAGE": "not allowed",
}
LAMBDA = {"RequestID": "3a40b9e6", "ErrorCode": "200", "ErrorMessage": "Task timed out after 15.00 seconds"}
SCHEDULER = {"ERROR_CODE": "AWS.Lambda.TooManyRequestsException", "SCHEDULE_ARN": "arn:aws:scheduler:..."}


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event(detail_type: str, detail: dict[str, Any], *, time: float = NOW, source: str = "grokvideo") -> str:
    return json.dumps(
        {"version": "0", "id": "e1", "detail-type": detail_type, "source": source, "time": iso(time), "detail": detail}
    )


def succeeded(*, time: float = NOW, completed_at: float | None = None, request_id: Any = "job-1") -> str:
    detail = {"request_id": request_id, "video_url": "https://vidgen.x.ai/v.mp4", "completed_at": None}
    if completed_at is not None:
        detail["completed_at"] = iso(completed_at)
    return event("Video Generation Succeeded", detail, time=time)


TRACK = event("Video Job Track Requested", {"request_id": "job-9", "client_ref": "ad-7"}, source="com.example")
GENERATE = event("Video Generation Requested", {"prompt": "a fox", "client_ref": "ad-1"}, source="com.example")
EDIT = event("Video Edit Requested", {"prompt": "snow", "source_request_id": "job-1"}, source="com.example")
COPY_OK = Plan(Source.QUEUE, Destination.COPY_QUEUE, about="job-1")


@pytest.mark.parametrize(
    ("kind", "body", "attributes", "expected"),
    [
        # copy: the copier's own dead letters and the rule's, back to the copy queue
        (Kind.COPY, succeeded(), {}, COPY_OK),
        (
            Kind.COPY,
            succeeded(),
            RULE,
            Plan(Source.RULE, Destination.COPY_QUEUE, "job-1", error="SQS_NO_PERMISSION: not allowed"),
        ),
        # ... with a warning once the provider's URL has probably expired; it still moves
        (
            Kind.COPY,
            succeeded(time=NOW - 30 * HOUR),
            {},
            Plan(Source.QUEUE, Destination.COPY_QUEUE, "job-1", warning=f"finished 1d06h ago: {EXPIRED}"),
        ),
        (
            Kind.COPY,
            succeeded(time=NOW - HOUR, completed_at=NOW - 25 * HOUR),  # completed_at, the older, counts
            {},
            Plan(Source.QUEUE, Destination.COPY_QUEUE, "job-1", warning=f"finished 1d01h ago: {EXPIRED}"),
        ),
        (Kind.COPY, succeeded(time=NOW - VIDEO_URL_LIFETIME), {}, COPY_OK),  # not older than a day yet
        (Kind.COPY, succeeded(time=NOW - 23 * HOUR, completed_at=NOW - 23 * HOUR), {}, COPY_OK),
        (
            Kind.COPY,
            json.dumps(
                {"detail-type": "Video Generation Succeeded", "time": "yesterday", "detail": {"request_id": "job-1"}}
            ),
            {},
            COPY_OK,  # no readable time: no warning
        ),
        # copy: what the copier cannot take stays
        (
            Kind.COPY,
            "not json",
            RULE,
            Plan(Source.RULE, None, error="SQS_NO_PERMISSION: not allowed", problem="not JSON"),
        ),
        (
            Kind.COPY,
            "[1, 2]",
            {},
            Plan(Source.QUEUE, None, problem="not an EventBridge event (no detail-type and detail)"),
        ),
        (
            Kind.COPY,
            event("Video Stored", {"request_id": "job-1"}),
            {},
            Plan(
                Source.QUEUE,
                None,
                "job-1",
                problem="a 'Video Stored' event does not belong here (expected Video Generation Succeeded)",
            ),
        ),
        (
            Kind.COPY,
            succeeded(request_id="../etc/passwd"),
            {},
            Plan(
                Source.QUEUE,
                None,
                "../etc/passwd",
                problem="the copier cannot take it: detail.request_id: may contain only A-Z, a-z, 0-9, '-' and "
                "'_', got '../etc/passwd'",
            ),
        ),
        (
            Kind.COPY,
            succeeded(request_id=None),
            {},
            Plan(Source.QUEUE, None, problem="the copier cannot take it: detail.request_id: is required"),
        ),
        # submit: requests back to the submit queue, by client_ref (no request_id yet)
        (Kind.SUBMIT, GENERATE, {}, Plan(Source.QUEUE, Destination.SUBMIT_QUEUE, "ad-1")),
        (
            Kind.SUBMIT,
            EDIT,
            RULE,
            Plan(Source.RULE, Destination.SUBMIT_QUEUE, None, error="SQS_NO_PERMISSION: not allowed"),
        ),
        (
            Kind.SUBMIT,
            TRACK,
            {},
            Plan(
                Source.QUEUE,
                None,
                "job-9",
                problem="a 'Video Job Track Requested' event does not belong here "
                "(expected Video Edit Requested or Video Generation Requested)",
            ),
        ),
        # register: the function's dead letters and the track rule's, put on the bus again as they were
        (
            Kind.REGISTER,
            TRACK,
            LAMBDA,
            Plan(
                Source.FUNCTION,
                Destination.BUS,
                "job-9",
                error="200: Task timed out after 15.00 seconds",
                bus_entry=BusEntry(
                    "com.example", "Video Job Track Requested", '{"request_id":"job-9","client_ref":"ad-7"}'
                ),
            ),
        ),
        (
            Kind.REGISTER,
            TRACK,
            RULE,
            Plan(
                Source.RULE,
                Destination.BUS,
                "job-9",
                error="SQS_NO_PERMISSION: not allowed",
                bus_entry=BusEntry(
                    "com.example", "Video Job Track Requested", '{"request_id":"job-9","client_ref":"ad-7"}'
                ),
            ),
        ),
        (
            Kind.REGISTER,
            json.dumps({"detail-type": "Video Job Track Requested", "detail": {"request_id": "job-9"}}),
            LAMBDA,
            Plan(
                Source.FUNCTION,
                None,
                "job-9",
                error="200: Task timed out after 15.00 seconds",
                problem="the event has no source to put it on the bus with",
            ),
        ),
        (
            Kind.REGISTER,
            GENERATE,  # on the bus it would reach the submit rule: not this queue's to send
            {},
            Plan(
                Source.FUNCTION,
                None,
                "ad-1",
                problem="a 'Video Generation Requested' event does not belong here "
                "(expected Video Job Track Requested)",
            ),
        ),
        (
            Kind.REGISTER,
            '{"detail-type": "Video Job Track Requested", "source": "x", "detail": {"request_id": "a", "n": NaN}}',
            {},
            Plan(Source.FUNCTION, None, "a", problem="its detail is not strict JSON"),
        ),
        # poller: any JSON tick is a missed sweep
        (
            Kind.POLLER,
            "{}",
            SCHEDULER,
            Plan(Source.SCHEDULE, Destination.POLLER, error="AWS.Lambda.TooManyRequestsException"),
        ),
        (
            Kind.POLLER,
            json.dumps({"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}}),
            {},
            Plan(Source.SCHEDULE, Destination.POLLER),
        ),
        (Kind.POLLER, "tick", {}, Plan(Source.SCHEDULE, None, problem="not JSON")),
    ],
)
def test_plan(kind: Kind, body: str, attributes: dict[str, str], expected: Plan) -> None:
    assert plan(body, attributes, kind, NOW) == expected


def test_batches_keep_to_ten_entries_and_256_kib() -> None:
    sizes = [100_000, 100_000, 100_000, 1, 300_000, 5]
    assert list(batches(sizes, lambda s: s)) == [[100_000, 100_000], [100_000, 1], [300_000], [5]]
    assert [len(b) for b in batches(list(range(25)), lambda _: 10)] == [10, 10, 5]
    assert list(batches([], lambda _: 1)) == []
