"""Tracked jobs on the deployed stack: from `Video Job Track Requested` to the job's last event.

Each test waits for its own scenario; every scenario was submitted at once by the ``jobs``
fixture right after the deploy (see conftest.py).
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from boto3.dynamodb.conditions import Attr

from local.fake_cometapi import FakeCometAPI
from tests.system.conftest import (
    FAILED,
    POLL_INTERVAL,
    REJECTED,
    STORED,
    SUCCEEDED,
    EventLog,
    Scenarios,
    Stack,
    event_time,
)

pytestmark = pytest.mark.system

MODEL = "grok-imagine-video"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def assert_common(detail: dict[str, Any], rid: str, jobs: Scenarios, name: str) -> None:
    assert detail["request_id"] == rid
    assert detail["client_ref"] == jobs.client_ref(name)
    assert detail["metadata"] == jobs.metadata(name)
    assert detail["schema_version"] == "1"


def assert_left_the_due_index(item: dict[str, Any]) -> None:
    """Finished, its event out: no due-index keys, nothing owed, a TTL set."""
    assert "due_shard" not in item and "next_poll_at" not in item, item
    assert "outbox" not in item, item
    assert int(item["expires_at"]) > time.time(), item


@pytest.mark.parametrize("name", ["ok", "ok_big"])
def test_finished_video_is_stored_once_with_the_providers_bytes(
    name: str,
    jobs: Scenarios,
    events: EventLog,
    stack: Stack,
    fake: FakeCometAPI,
    latencies: list[dict[str, Any]],
) -> None:
    rid: str = getattr(jobs, name)
    stored = events.wait_for_event(rid, STORED, timeout=120)
    events.drain(wait_seconds=2)  # a duplicate would come right behind
    succeeded_events = events.of(rid, SUCCEEDED)
    assert len(succeeded_events) == 1, succeeded_events
    assert len(events.of(rid, STORED)) == 1, events.of(rid, STORED)
    assert events.of(rid, FAILED) == [] and events.of(rid, "Video Archive Failed") == []
    succeeded = succeeded_events[0]
    assert event_time(succeeded) <= event_time(stored)

    job = fake.job(rid)
    sha = fake.video_sha256(rid)
    size = fake.video_length(rid)

    detail = succeeded["detail"]
    assert_common(detail, rid, jobs, name)
    assert detail["video_url"] == fake.video_url(rid)
    assert detail["duration"] == 1
    assert detail["model"] == MODEL
    assert detail["cost_usd"] == pytest.approx(0.05)
    assert detail["completed_at"] == iso(job.finish_time())
    # A tracked job: submitted_at is the provider's submit_time.
    assert detail["submitted_at"] == iso(job.created_wall)

    key = f"{stack.outputs.get('VideoPrefix', 'videos/')}{rid}.mp4"
    detail = stored["detail"]
    assert_common(detail, rid, jobs, name)
    assert detail["bucket"] == stack.bucket
    assert detail["key"] == key
    assert detail["s3_uri"] == f"s3://{stack.bucket}/{key}"
    assert detail["size_bytes"] == size
    assert detail["sha256"] == sha
    assert detail["content_type"] == "video/mp4"
    assert detail["duration"] == 1
    assert detail["model"] == MODEL

    s3 = stack.client("s3")
    obj = s3.get_object(Bucket=stack.bucket, Key=key)
    body = obj["Body"].read()
    assert len(body) == size
    assert hashlib.sha256(body).hexdigest() == sha == detail["sha256"]
    assert obj["ContentType"] == "video/mp4"
    assert obj["Metadata"].get("request-id") == rid
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=stack.bucket, Key=key)["TagSet"]}
    assert tags.get("sha256") == sha and tags.get("size") == str(size), tags

    item = stack.item(rid)
    assert item is not None
    assert item["state"] == "STORED"
    assert (item["bucket"], item["key"], item["sha256"]) == (stack.bucket, key, sha)
    assert int(item["size_bytes"]) == size
    assert_left_the_due_index(item)

    # Provider "done" -> Video Stored. Timestamps are whole seconds (stored_at and the events'
    # `time` are truncated), so the copy time read from two event times can be 1 s short: the
    # bound gets 1 s of slack on top of the README's "poll interval + copy time + 5 s".
    done = job.created_wall + job.ready_after
    stored_at = int(item["stored_at"])
    copy_s = event_time(stored) - event_time(succeeded)
    row = {
        "scenario": name,
        "size_bytes": size,
        "detect_s": event_time(succeeded) - done,
        "copy_s": copy_s,
        "total_s": stored_at - done,
        "bound_s": POLL_INTERVAL + copy_s + 5 + 1,
    }
    latencies.append(row)
    assert row["total_s"] <= row["bound_s"], row


@pytest.mark.parametrize(
    ("name", "reason"),
    [("failed", "PROVIDER_FAILED"), ("expired", "EXPIRED"), ("deadline", "TIMED_OUT")],
)
def test_job_that_will_not_produce_a_video_ends_failed_with_its_reason(
    name: str, reason: str, jobs: Scenarios, events: EventLog, stack: Stack
) -> None:
    rid: str = getattr(jobs, name)
    failed = events.wait_for_event(rid, FAILED, timeout=90)
    detail = failed["detail"]
    assert_common(detail, rid, jobs, name)
    assert detail["reason"] == reason
    assert detail["message"]
    events.drain(wait_seconds=1)
    assert len(events.of(rid, FAILED)) == 1
    assert events.of(rid, SUCCEEDED) == [] and events.of(rid, STORED) == []

    item = stack.item(rid)
    assert item is not None
    assert item["state"] == "FAILED"
    assert item["reason"] == reason
    assert_left_the_due_index(item)


def test_invalid_track_request_is_rejected_before_reaching_the_table_or_the_provider(
    jobs: Scenarios, events: EventLog, stack: Stack, fake: FakeCometAPI
) -> None:
    rejected = events.wait_for(
        lambda e: e["detail-type"] == REJECTED and e["detail"].get("client_ref") == jobs.invalid_ref, timeout=60
    )
    assert len(rejected) == 1, rejected
    detail = rejected[0]["detail"]
    assert "request_id" not in detail  # not well-formed: not echoed
    assert detail["reason"] == "INVALID_REQUEST"
    assert detail["metadata"] == jobs.metadata("invalid")
    assert any(msg.startswith("request_id") for msg in detail["errors"]), detail["errors"]

    assert stack.item(jobs.invalid_request_id) is None
    found = stack.table.scan(FilterExpression=Attr("client_ref").eq(jobs.invalid_ref), ConsistentRead=True)
    assert found["Items"] == []
    assert not [p for _, p in fake.requests if "passwd" in p or ".." in p]
