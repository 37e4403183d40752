"""The archive side on the deployed stack: the URL guard and redelivered copy requests.

Both put a `Video Generation Succeeded` event with the stack's own source on the bus, as anyone
allowed to put events on it could; the copier must trust the jobs table, not the event.
"""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from local.fake_cometapi import FakeCometAPI
from tests.system.conftest import ARCHIVE_FAILED, STORED, SUCCEEDED, EventLog, Scenarios, Stack, forged_succeeded

pytestmark = pytest.mark.system

REDELIVERY_WATCH = 15.0  # seconds during which a redelivery must not copy or announce again


def video_key(stack: Stack, rid: str) -> str:
    return f"{stack.outputs.get('VideoPrefix', 'videos/')}{rid}.mp4"


def test_url_outside_the_allow_list_is_refused_and_settles_the_job(
    jobs: Scenarios, events: EventLog, stack: Stack
) -> None:
    rid = jobs.refused
    failed = events.wait_for_event(rid, ARCHIVE_FAILED, timeout=60)
    detail = failed["detail"]
    assert detail["request_id"] == rid
    assert detail["client_ref"] == jobs.client_ref("refused")
    assert detail["metadata"] == jobs.metadata("refused")
    assert detail["reason"] == "URL_REFUSED"
    assert detail["message"]
    events.drain(wait_seconds=1)
    assert len(events.of(rid, ARCHIVE_FAILED)) == 1
    assert events.of(rid, STORED) == []
    # The forged announcement went over the bus (the capture saw it too).
    assert len(events.of(rid, SUCCEEDED, injected=True)) == 1

    item = stack.item(rid)
    assert item is not None
    assert item["state"] == "ARCHIVE_FAILED"
    assert item["reason"] == "URL_REFUSED"
    with pytest.raises(ClientError) as err:
        stack.client("s3").head_object(Bucket=stack.bucket, Key=video_key(stack, rid))
    assert err.value.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound")


def _copier_saw_duplicate(stack: Stack, rid: str, start_ms: int) -> bool:
    return any(
        rid in e["message"] and "duplicate delivery" in e["message"]
        for e in stack.log_messages("CopierFunctionName", start_ms)
    )


def test_redelivered_success_neither_downloads_nor_uploads_nor_announces_again(
    jobs: Scenarios, events: EventLog, stack: Stack, fake: FakeCometAPI
) -> None:
    rid = jobs.ok
    events.wait_for_event(rid, STORED, timeout=120)
    s3 = stack.client("s3")
    key = video_key(stack, rid)
    head_before = s3.head_object(Bucket=stack.bucket, Key=key)
    item_before = stack.item(rid)
    video_path = f"/videos/{rid}.mp4"
    assert fake.count("GET", video_path) == 1, fake.requests

    start_ms = int(time.time() * 1000) - 1000
    events.put(SUCCEEDED, forged_succeeded(rid, fake.video_url(rid), jobs, "ok"), source=stack.source)

    watch_until = time.monotonic() + REDELIVERY_WATCH
    saw_duplicate = False
    while time.monotonic() < watch_until:
        events.drain(wait_seconds=1)
        saw_duplicate = saw_duplicate or _copier_saw_duplicate(stack, rid, start_ms)
    # The copier did take the redelivered message (so the checks below mean something) ...
    assert saw_duplicate, "the copier never logged the redelivered message as a duplicate"
    assert len(events.of(rid, SUCCEEDED, injected=True)) == 2
    # ... and did nothing with it.
    assert len(events.of(rid, STORED)) == 1, events.of(rid, STORED)
    assert events.of(rid, ARCHIVE_FAILED) == []
    head_after = s3.head_object(Bucket=stack.bucket, Key=key)
    assert head_after["ETag"] == head_before["ETag"]
    assert head_after["LastModified"] == head_before["LastModified"]
    assert fake.count("GET", video_path) == 1, fake.requests
    assert stack.item(rid) == item_before
