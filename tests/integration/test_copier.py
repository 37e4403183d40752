"""The copier Lambda handler and its logic: moto (table, bucket, bus) + the fake's video bytes."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from grokvideo.archive import VideoArchiver
from grokvideo.copier import Copier, RetryCopy
from grokvideo.errors import EventPublishError
from grokvideo.events import EventPublisher, OutputEvent, iso_utc
from grokvideo.jobs import JobStore
from grokvideo.models import JobState
from grokvideo.urlguard import UrlGuard
from local.fake_cometapi import FakeCometAPI
from tests.handlers import FakeContext, load_handler
from tests.integration.conftest import BUS, TABLE, EventCapture
from tests.schema_check import assert_valid_event
from tests.sqs_batches import receive_batch

BUCKET = "grokvideo-videos"
SQS_SAMPLE = json.loads((Path(__file__).resolve().parents[2] / "events" / "sqs-copy-message.json").read_text())


@pytest.fixture
def bucket(aws: None) -> Any:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3


@pytest.fixture
def copier_handler(monkeypatch: pytest.MonkeyPatch, store: JobStore, capture: EventCapture, bucket: Any) -> Any:
    for name, value in {
        "TABLE_NAME": TABLE,
        "EVENT_BUS_NAME": BUS,
        "EVENT_SOURCE": "grokvideo",
        "VIDEO_BUCKET": BUCKET,
        "VIDEO_PREFIX": "videos/",
        "ALLOWED_VIDEO_HOSTS": "127.0.0.1",
        "ALLOW_PRIVATE_VIDEO_HOSTS": "true",
        "COPY_MAX_RECEIVES": "3",
        # No such queue in moto: putting a message back early fails quietly (it comes back late).
        "COPY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/no-such-copy-queue",
    }.items():
        monkeypatch.setenv(name, value)
    return load_handler("copier")


def ready_to_copy(store: JobStore, fake: FakeCometAPI) -> str:
    """A provider job whose video the fake serves, finished by the poller (``succeeded_job``)."""
    rid = fake.add_job(outcome="done", ready_after=0)
    succeeded_job(store, rid, fake.video_url(rid))
    return rid


def succeeded_job(store: JobStore, request_id: str, video_url: str, *, completed_at: int | None = None) -> None:
    """A job the poller has finished: SUCCEEDED, its event out."""
    store.register(request_id, now=int(time.time()), client_ref="ref-1", metadata={"team": "video"})
    job = store.get(request_id)
    assert job is not None
    done = {} if completed_at is None else {"completed_at": completed_at}
    moved = store.transition(
        job,
        to_state=JobState.SUCCEEDED,
        outbox="Video Generation Succeeded",
        now=int(time.time()),
        relay_after=30,
        changes={"video_url": video_url, "duration": 1, "model": "grok-imagine-video", "cost_usd": 0.05, **done},
    )
    assert moved is not None
    store.clear_outbox(moved, now=int(time.time()))


def sqs_event(request_id: str, receive_count: int = 1) -> dict[str, Any]:
    event = copy.deepcopy(SQS_SAMPLE)
    record = event["Records"][0]
    body = json.loads(record["body"])
    body["detail"]["request_id"] = request_id
    record["body"] = json.dumps(body)
    record["messageId"] = f"msg-{request_id}-{receive_count}"
    record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    return event


def video_gets(fake: FakeCometAPI, request_id: str) -> int:
    return sum(1 for method, path in fake.requests if method == "GET" and path == f"/videos/{request_id}.mp4")


def assert_no_multipart_left(s3: Any) -> None:
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_finished_job_is_stored_with_its_digest_and_announced_once(
    copier_handler: Any, store: JobStore, fake: FakeCometAPI, capture: EventCapture, bucket: Any
) -> None:
    rid = ready_to_copy(store, fake)

    response = copier_handler.lambda_handler(sqs_event(rid), FakeContext(timeout_seconds=300))

    assert response == {"batchItemFailures": []}
    job = store.get(rid)
    assert job is not None and job.state is JobState.STORED and job.outbox is None
    assert job.sha256 == fake.video_sha256(rid) and job.size_bytes == fake.video_length(rid)
    body = bucket.get_object(Bucket=BUCKET, Key=f"videos/{rid}.mp4")["Body"].read()
    assert len(body) == fake.video_length(rid) and body[4:8] == b"ftyp"
    [event] = capture.drain()
    assert event["detail-type"] == "Video Stored"
    detail = event["detail"]
    assert_valid_event("Video Stored", detail)
    assert (detail["bucket"], detail["key"], detail["s3_uri"]) == (
        BUCKET,
        f"videos/{rid}.mp4",
        f"s3://{BUCKET}/videos/{rid}.mp4",
    )
    assert (detail["sha256"], detail["size_bytes"]) == (fake.video_sha256(rid), fake.video_length(rid))
    assert (detail["content_type"], detail["duration"], detail["model"]) == ("video/mp4", 1, "grok-imagine-video")
    assert (detail["client_ref"], detail["metadata"]) == ("ref-1", {"team": "video"})
    assert detail["manifest_key"] == f"videos/{rid}.json"


def emf_values(out: str) -> dict[str, list[float]]:
    """Each metric the handler printed (EMF lines on stdout) and its values."""
    values: dict[str, list[float]] = {}
    for blob in (json.loads(line) for line in out.splitlines() if '"_aws"' in line):
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "GrokVideo"
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                values.setdefault(metric["Name"], []).extend(value if isinstance(value, list) else [value])
    return values


def test_a_stored_video_sends_its_done_to_stored_seconds_once(
    copier_handler: Any, store: JobStore, fake: FakeCometAPI, bucket: Any, capsys: Any
) -> None:
    rid = fake.add_job(outcome="done", ready_after=0)
    succeeded_job(store, rid, fake.video_url(rid), completed_at=int(time.time()) - 90)

    copier_handler.lambda_handler(sqs_event(rid), FakeContext(timeout_seconds=300))
    sent = emf_values(capsys.readouterr().out)
    assert sent["VideosStored"] == [1.0]
    [latency] = sent["StoredLatency"]
    assert 90 <= latency < 120

    copier_handler.lambda_handler(sqs_event(rid, receive_count=2), FakeContext(timeout_seconds=300))
    assert emf_values(capsys.readouterr().out) == {"CopiesSkipped": [1.0]}  # a duplicate: stored nothing


def test_a_manifest_beside_the_video_holds_what_is_known_of_a_tracked_job(
    copier_handler: Any, store: JobStore, fake: FakeCometAPI, bucket: Any
) -> None:
    rid = ready_to_copy(store, fake)

    copier_handler.lambda_handler(sqs_event(rid), FakeContext(timeout_seconds=300))

    stored = store.get(rid)
    assert stored is not None and stored.manifest_key == f"videos/{rid}.json"
    obj = bucket.get_object(Bucket=BUCKET, Key=f"videos/{rid}.json")
    assert obj["ContentType"] == "application/json"
    manifest = json.loads(obj["Body"].read())
    assert manifest["request_id"] == rid and manifest["origin"] == "tracked" and manifest["request"] is None
    assert (manifest["client_ref"], manifest["metadata"]) == ("ref-1", {"team": "video"})
    assert (manifest["model"], manifest["duration"], manifest["cost_usd"]) == ("grok-imagine-video", 1, 0.05)
    assert manifest["video"] == {
        "bucket": BUCKET,
        "key": f"videos/{rid}.mp4",
        "s3_uri": f"s3://{BUCKET}/videos/{rid}.mp4",
        "size_bytes": fake.video_length(rid),
        "sha256": fake.video_sha256(rid),
        "content_type": "video/mp4",
    }
    assert manifest["stored_at"] == iso_utc(stored.stored_at) is not None and "completed_at" in manifest
    assert "video_url" not in json.dumps(manifest)  # the temporary URL is not provenance


def test_duplicate_delivery_neither_uploads_nor_announces_again(
    copier_handler: Any, store: JobStore, fake: FakeCometAPI, capture: EventCapture, bucket: Any
) -> None:
    rid = ready_to_copy(store, fake)
    copier_handler.lambda_handler(sqs_event(rid), FakeContext())
    capture.drain()
    again = copier_handler.lambda_handler(sqs_event(rid, receive_count=2), FakeContext())
    assert again == {"batchItemFailures": []}
    assert video_gets(fake, rid) == 1
    assert capture.drain() == []
    assert bucket.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 2  # the video and its manifest


def make_copier(store: JobStore, publisher: Any, *, allow_private: bool = True) -> Copier:
    archiver = VideoArchiver(
        UrlGuard(["127.0.0.1"], allow_private=allow_private), boto3.client("s3"), max_video_bytes=50 * 2**20
    )
    return Copier(store, archiver, publisher, bucket=BUCKET, max_receives=3)


def test_crash_after_upload_before_the_state_write_does_not_upload_again(
    store: JobStore, fake: FakeCometAPI, capture: EventCapture, publisher: EventPublisher, bucket: Any
) -> None:
    rid = ready_to_copy(store, fake)
    copier = make_copier(store, publisher)
    copier.archiver.archive(fake.video_url(rid), BUCKET, copier.key_for(rid))  # ... then the process died
    assert store.get(rid).state is JobState.SUCCEEDED  # type: ignore[union-attr]

    result = copier.copy(rid, receive_count=2)

    assert (result.state, result.uploaded, result.announced) == (JobState.STORED, False, True)
    assert video_gets(fake, rid) == 1
    [event] = capture.drain()
    assert event["detail"]["sha256"] == fake.video_sha256(rid)


def test_a_missing_object_answered_403_is_copied(
    store: JobStore,
    fake: FakeCometAPI,
    capture: EventCapture,
    publisher: EventPublisher,
    bucket: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """S3 as it may answer the copier, whose ListBucket is limited to its prefix: a missing key's
    HeadObject is refused (403), an existing one's is not. The copy goes ahead and is stored."""
    rid = ready_to_copy(store, fake)
    copier = make_copier(store, publisher)
    s3 = copier.archiver._s3
    real_head = s3.head_object

    def head(**kwargs: Any) -> Any:
        try:
            return real_head(**kwargs)
        except ClientError as err:
            if err.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject") from None
            raise

    monkeypatch.setattr(s3, "head_object", head)

    result = copier.copy(rid)

    assert (result.state, result.uploaded, result.announced) == (JobState.STORED, True, True)
    [event] = capture.drain()
    assert event["detail"]["key"] == f"videos/{rid}.mp4"
    assert event["detail"]["sha256"] == fake.video_sha256(rid)
    # ... and a redelivery copies nothing again.
    again = copier.copy(rid, receive_count=2)
    assert (again.state, again.uploaded) == (JobState.STORED, False)
    assert video_gets(fake, rid) == 1


def test_a_retry_after_a_crash_mid_upload_aborts_the_upload_it_left(
    store: JobStore, fake: FakeCometAPI, capture: EventCapture, publisher: EventPublisher, bucket: Any
) -> None:
    # The chaos run: a copier killed while it streamed a 24 MiB video left its multipart upload.
    rid = fake.add_job(outcome="done", ready_after=0, video_size=12 * 2**20)
    succeeded_job(store, rid, fake.video_url(rid))
    key = f"videos/{rid}.mp4"
    left = bucket.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    bucket.upload_part(Bucket=BUCKET, Key=key, UploadId=left, PartNumber=1, Body=b"x" * (8 * 2**20))  # ... died

    result = make_copier(store, publisher).copy(rid, receive_count=2)

    assert (result.state, result.uploaded) == (JobState.STORED, True)
    assert_no_multipart_left(bucket)
    assert bucket.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == 12 * 2**20


class DeadPublisher:
    def publish_one(self, event: OutputEvent) -> None:
        raise EventPublishError("simulated crash before PutEvents")


def test_crash_after_the_state_write_sends_the_event_on_redelivery(
    store: JobStore, fake: FakeCometAPI, capture: EventCapture, publisher: EventPublisher, bucket: Any
) -> None:
    rid = ready_to_copy(store, fake)
    first = make_copier(store, DeadPublisher()).copy(rid)
    assert (first.state, first.announced) == (JobState.STORED, False)
    assert store.get(rid).outbox == "Video Stored"  # type: ignore[union-attr]
    assert capture.drain() == []

    again = make_copier(store, publisher).copy(rid, receive_count=2)

    assert (again.announced, again.uploaded) == (True, False)
    assert [e["detail-type"] for e in capture.drain()] == ["Video Stored"]
    assert video_gets(fake, rid) == 1
    assert store.get(rid).outbox is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("fault", "params", "reason"),
    [
        ("status", {"code": 403}, "URL_EXPIRED"),
        ("status", {"code": 404}, "URL_EXPIRED"),
        ("status", {"code": 410}, "URL_EXPIRED"),
        ("html_body", {}, "NOT_A_VIDEO"),
        ("content_type", {"value": "text/html"}, "NOT_A_VIDEO"),
    ],
)
def test_permanent_failures_settle_the_job_without_retry(
    fault: str,
    params: dict[str, Any],
    reason: str,
    copier_handler: Any,
    store: JobStore,
    fake: FakeCometAPI,
    capture: EventCapture,
    bucket: Any,
) -> None:
    rid = ready_to_copy(store, fake)
    fake.inject(fault, **params)
    response = copier_handler.lambda_handler(sqs_event(rid), FakeContext())
    assert response == {"batchItemFailures": []}  # no retry
    job = store.get(rid)
    assert job is not None and (job.state, job.reason) == (JobState.ARCHIVE_FAILED, reason)
    [event] = capture.drain()
    assert event["detail-type"] == "Video Archive Failed" and event["detail"]["reason"] == reason
    assert_valid_event("Video Archive Failed", event["detail"])
    assert bucket.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    assert_no_multipart_left(bucket)


def test_url_guard_refusal_settles_the_job(
    store: JobStore, capture: EventCapture, publisher: EventPublisher, bucket: Any
) -> None:
    succeeded_job(store, "metadata-grab", "https://169.254.169.254/latest/meta-data/iam")
    result = make_copier(store, publisher, allow_private=False).copy("metadata-grab")
    assert result.state is JobState.ARCHIVE_FAILED
    [event] = capture.drain()
    assert event["detail"]["reason"] == "URL_REFUSED"


def test_transient_failure_retries_through_the_queue_then_settles_on_the_last_receive(
    copier_handler: Any, store: JobStore, fake: FakeCometAPI, capture: EventCapture, bucket: Any
) -> None:
    rid = fake.add_job(outcome="done", ready_after=0, video_size=20 * 2**20)
    succeeded_job(store, rid, fake.video_url(rid))
    fake.inject("disconnect", count=3, after=12 * 2**20)  # truncated mid-multipart every time

    for receive in (1, 2):
        response = copier_handler.lambda_handler(sqs_event(rid, receive), FakeContext())
        assert response["batchItemFailures"] == [{"itemIdentifier": f"msg-{rid}-{receive}"}]
        assert store.get(rid).state is JobState.SUCCEEDED  # type: ignore[union-attr]
        assert capture.drain() == []
        assert_no_multipart_left(bucket)

    last = copier_handler.lambda_handler(sqs_event(rid, 3), FakeContext())
    assert last["batchItemFailures"] == [{"itemIdentifier": f"msg-{rid}-3"}]  # on to the DLQ
    job = store.get(rid)
    assert job is not None and (job.state, job.reason) == (JobState.ARCHIVE_FAILED, "TRANSFER_FAILED")
    assert [e["detail"]["reason"] for e in capture.drain()] == ["TRANSFER_FAILED"]
    assert_no_multipart_left(bucket)

    # An operator redrives the DLQ once the host is healthy: the copy runs again and succeeds.
    redriven = copier_handler.lambda_handler(sqs_event(rid, 1), FakeContext())
    assert redriven == {"batchItemFailures": []}
    assert store.get(rid).state is JobState.STORED  # type: ignore[union-attr]
    assert [e["detail-type"] for e in capture.drain()] == ["Video Stored"]


def test_message_for_an_unknown_job_is_never_acknowledged(copier_handler: Any, capture: EventCapture) -> None:
    response = copier_handler.lambda_handler(sqs_event("never-registered"), FakeContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-never-registered-1"}]}


def test_message_with_a_hostile_request_id_fails_without_touching_anything(
    copier_handler: Any, capture: EventCapture, bucket: Any
) -> None:
    response = copier_handler.lambda_handler(sqs_event("../../etc/passwd"), FakeContext())
    assert len(response["batchItemFailures"]) == 1
    assert capture.drain() == []


def test_a_succeeded_event_for_a_job_still_pending_copies_nothing_and_leaves_the_job_alone(
    store: JobStore, fake: FakeCometAPI, capture: EventCapture, publisher: EventPublisher, bucket: Any
) -> None:
    rid = fake.add_job(outcome="done", ready_after=0)
    store.register(rid, now=int(time.time()))  # the poller has not finished it: the event is forged
    result = make_copier(store, publisher).copy(rid)
    assert (result.state, result.uploaded, result.announced) == (JobState.PENDING, False, False)
    assert video_gets(fake, rid) == 0 and capture.drain() == []
    job = store.get(rid)
    assert job is not None and job.state is JobState.PENDING and job.due_shard is not None  # still tracked
    assert bucket.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


# --- whatever fails, the last receive settles the job ---------------------------------------------


def raising(error: BaseException) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail


def throttled(operation: str = "UpdateItem") -> ClientError:
    return ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, operation)


UNEXPECTED = [
    ValueError("invalid literal for int() with base 10: '\N{SUPERSCRIPT TWO}'"),
    KeyError("ContentLength"),
    throttled("HeadObject"),
    EndpointConnectionError(endpoint_url="https://s3.us-east-1.amazonaws.com"),
]


@pytest.mark.parametrize("error", UNEXPECTED, ids=lambda e: type(e).__name__)
def test_any_failure_before_the_last_receive_comes_back_after_a_backoff(
    error: BaseException,
    store: JobStore,
    fake: FakeCometAPI,
    capture: EventCapture,
    publisher: EventPublisher,
    bucket: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rid = ready_to_copy(store, fake)
    copier = make_copier(store, publisher)
    monkeypatch.setattr(copier.archiver, "archive", raising(error))
    for receive, seconds in ((1, 10), (2, 60)):
        with pytest.raises(RetryCopy) as info:
            copier.copy(rid, receive_count=receive)
        assert info.value.retry_after == seconds
        assert store.get(rid).state is JobState.SUCCEEDED  # type: ignore[union-attr]
        assert capture.drain() == []


@pytest.mark.parametrize("error", UNEXPECTED, ids=lambda e: type(e).__name__)
def test_any_failure_on_the_last_receive_settles_the_job_and_the_message_still_goes_to_the_dlq(
    error: BaseException,
    store: JobStore,
    fake: FakeCometAPI,
    capture: EventCapture,
    publisher: EventPublisher,
    bucket: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rid = ready_to_copy(store, fake)
    copier = make_copier(store, publisher)
    monkeypatch.setattr(copier.archiver, "archive", raising(error))

    with pytest.raises(RetryCopy) as info:
        copier.copy(rid, receive_count=3)

    assert info.value.retry_after == 0  # on to the DLQ at its next receive: the alarm, a redrive
    job = store.get(rid)
    assert job is not None and (job.state, job.reason, job.outbox) == (JobState.ARCHIVE_FAILED, "TRANSFER_FAILED", None)
    [event] = capture.drain()
    assert event["detail-type"] == "Video Archive Failed"
    assert_valid_event("Video Archive Failed", event["detail"])
    assert event["detail"]["reason"] == "TRANSFER_FAILED"
    assert type(error).__name__ in event["detail"]["message"] and "after 3 attempts" in event["detail"]["message"]


def test_a_table_error_after_the_upload_on_the_last_receive_settles_the_job(
    store: JobStore,
    fake: FakeCometAPI,
    capture: EventCapture,
    publisher: EventPublisher,
    bucket: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rid = ready_to_copy(store, fake)
    real_transition = store.transition

    def no_stored(job: Any, *, to_state: JobState, **kwargs: Any) -> Any:
        if to_state is JobState.STORED:
            raise throttled()
        return real_transition(job, to_state=to_state, **kwargs)

    monkeypatch.setattr(store, "transition", no_stored)
    with pytest.raises(RetryCopy) as info:
        make_copier(store, publisher).copy(rid, receive_count=3)

    assert info.value.retry_after == 0
    job = store.get(rid)
    assert job is not None and (job.state, job.reason) == (JobState.ARCHIVE_FAILED, "TRANSFER_FAILED")
    assert [e["detail"]["reason"] for e in capture.drain()] == ["TRANSFER_FAILED"]
    # The video is complete in S3: a redrive finds it and stores the job without a second download.
    monkeypatch.setattr(store, "transition", real_transition)
    again = make_copier(store, publisher).copy(rid, receive_count=1)
    assert (again.state, again.uploaded) == (JobState.STORED, False)
    assert video_gets(fake, rid) == 1


def test_a_job_already_stored_is_not_failed_when_a_later_step_fails_on_the_last_receive(
    store: JobStore,
    fake: FakeCometAPI,
    capture: EventCapture,
    publisher: EventPublisher,
    bucket: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Video Stored went out, then taking it off the outbox failed: the job stays STORED, owing it."""
    rid = ready_to_copy(store, fake)
    monkeypatch.setattr(store, "clear_outbox", raising(throttled()))

    result = make_copier(store, publisher).copy(rid, receive_count=3)

    assert result.state is JobState.STORED  # acknowledged: nothing failed for the job
    job = store.get(rid)
    assert job is not None and (job.state, job.outbox) == (JobState.STORED, "Video Stored")
    assert job.due_shard is not None  # the poller relays the event (at least once: consumers dedupe)
    assert [e["detail-type"] for e in capture.drain()] == ["Video Stored"]


def test_when_even_settling_fails_the_message_goes_to_the_dlq_and_the_job_is_left_as_it_was(
    store: JobStore,
    fake: FakeCometAPI,
    capture: EventCapture,
    publisher: EventPublisher,
    bucket: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rid = ready_to_copy(store, fake)
    copier = make_copier(store, publisher)
    monkeypatch.setattr(copier.archiver, "archive", raising(ValueError("bad header")))
    monkeypatch.setattr(store, "transition", raising(throttled()))

    with pytest.raises(RetryCopy) as info:
        copier.copy(rid, receive_count=3)

    assert info.value.retry_after == 0  # to the DLQ: the alarm fires, a redrive copies again
    job = store.get(rid)
    assert job is not None and (job.state, job.outbox) == (JobState.SUCCEEDED, None)
    assert capture.drain() == []


def test_a_permanent_failure_whose_settling_fails_comes_back_after_a_backoff(
    store: JobStore,
    fake: FakeCometAPI,
    capture: EventCapture,
    publisher: EventPublisher,
    bucket: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rid = ready_to_copy(store, fake)
    fake.inject("status", code=410, count=2)
    real_transition = store.transition
    monkeypatch.setattr(store, "transition", raising(throttled()))
    with pytest.raises(RetryCopy) as info:
        make_copier(store, publisher).copy(rid, receive_count=1)
    assert info.value.retry_after == 10
    assert store.get(rid).state is JobState.SUCCEEDED  # type: ignore[union-attr]

    monkeypatch.setattr(store, "transition", real_transition)
    result = make_copier(store, publisher).copy(rid, receive_count=2)
    assert result.state is JobState.ARCHIVE_FAILED
    assert [e["detail"]["reason"] for e in capture.drain()] == ["URL_EXPIRED"]


def test_settled_but_not_announced_on_the_last_receive_stays_owed_in_the_due_index(
    store: JobStore, fake: FakeCometAPI, capture: EventCapture, bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = ready_to_copy(store, fake)
    copier = make_copier(store, DeadPublisher())
    monkeypatch.setattr(copier.archiver, "archive", raising(ValueError("bad header")))

    with pytest.raises(RetryCopy) as info:
        copier.copy(rid, receive_count=3)

    assert info.value.retry_after == 0
    job = store.get(rid)
    assert job is not None and (job.state, job.outbox) == (JobState.ARCHIVE_FAILED, "Video Archive Failed")
    assert job.due_shard is not None  # the poller relays Video Archive Failed


# --- the handler puts a failed copy back for its backoff (moto SQS, as Lambda feeds it) -------------


@pytest.fixture
def copy_queue(aws: None) -> dict[str, str]:
    """The template's copy queue: 1800 s visibility, three receives, then the dead-letter queue."""
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="grokvideo-copy-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    url = sqs.create_queue(
        QueueName="grokvideo-copy", Attributes={"VisibilityTimeout": "1800", "RedrivePolicy": redrive}
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"url": url, "arn": arn, "dlq": dlq}


@pytest.fixture
def queued_copier_handler(copier_handler: Any, copy_queue: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("COPY_QUEUE_URL", copy_queue["url"])
    return load_handler("copier")


def enqueue(queue: dict[str, str], request_id: str) -> None:
    body = json.loads(SQS_SAMPLE["Records"][0]["body"])
    body["detail"]["request_id"] = request_id
    boto3.client("sqs").send_message(QueueUrl=queue["url"], MessageBody=json.dumps(body))


def receive(queue: dict[str, str], *, wait: float = 0) -> dict[str, Any]:
    """What Lambda's SQS poller hands the copier (BatchSize 1): one visible message as a batch."""
    return receive_batch(queue["url"], queue["arn"], wait=wait, max_messages=1)


def test_the_handler_puts_a_failed_copy_back_for_its_backoff_then_the_last_receive_goes_to_the_dlq(
    queued_copier_handler: Any,
    copy_queue: dict[str, str],
    store: JobStore,
    fake: FakeCometAPI,
    capture: EventCapture,
    bucket: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from grokvideo import runtime

    assert runtime.copier().retry_delays == (10, 60, 300)  # what the deployed copier uses
    monkeypatch.setattr(runtime.copier(), "retry_delays", (2, 3))  # the same, scaled down to seconds
    rid = ready_to_copy(store, fake)
    fake.inject("status", code=503, count=3)
    enqueue(copy_queue, rid)

    batch = receive(copy_queue)
    for receive_count, delay in ((1, 2), (2, 3)):
        assert batch["Records"][0]["attributes"]["ApproximateReceiveCount"] == str(receive_count)
        failed_at = time.monotonic()
        response = queued_copier_handler.lambda_handler(batch, FakeContext(timeout_seconds=300))
        assert response == {"batchItemFailures": [{"itemIdentifier": batch["Records"][0]["messageId"]}]}
        assert store.get(rid).state is JobState.SUCCEEDED  # type: ignore[union-attr]
        time.sleep(max(0.0, failed_at + delay - 1.2 - time.monotonic()))
        assert receive(copy_queue)["Records"] == [], "back before its backoff"
        batch = receive(copy_queue, wait=3)  # what Lambda's poller hands over next
        assert batch["Records"], "not back after its backoff (the queue's own timeout is 1800 s)"
        assert time.monotonic() - failed_at < delay + 2.5

    last = batch
    assert last["Records"][0]["attributes"]["ApproximateReceiveCount"] == "3"
    response = queued_copier_handler.lambda_handler(last, FakeContext(timeout_seconds=300))
    assert len(response["batchItemFailures"]) == 1
    job = store.get(rid)
    assert job is not None and (job.state, job.reason) == (JobState.ARCHIVE_FAILED, "TRANSFER_FAILED")
    assert [e["detail-type"] for e in capture.drain()] == ["Video Archive Failed"]
    # Visible again at once, so SQS moves it to the dead-letter queue at the next receive, not 30 min on.
    assert receive(copy_queue)["Records"] == []
    dead = boto3.client("sqs").receive_message(QueueUrl=copy_queue["dlq"], WaitTimeSeconds=0).get("Messages", [])
    assert [json.loads(m["Body"])["detail"]["request_id"] for m in dead] == [rid]


def test_a_last_attempt_that_dies_is_found_by_a_sweep_minutes_later_and_copied_again(
    store: JobStore,
    fake: FakeCometAPI,
    capture: EventCapture,
    publisher: EventPublisher,
    bucket: Any,
    make_sweeper: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seen in the chaos run: a copier killed on every attempt left its job SUCCEEDED with no
    receive left to settle it. The last attempt now brings the job's next sweep forward."""
    from grokvideo.copier import LAST_ATTEMPT_WATCH

    rid = ready_to_copy(store, fake)
    copier = Copier(
        store,
        VideoArchiver(UrlGuard(("127.0.0.1",), allow_private=True), bucket, max_video_bytes=2**31),
        publisher,
        bucket=BUCKET,
        max_receives=3,
    )

    def worker_dies(*args: Any, **kwargs: Any) -> Any:
        raise SystemExit("killed")  # not an Exception: nothing in the copier can catch it

    monkeypatch.setattr(copier.archiver, "archive", worker_dies)
    with pytest.raises(SystemExit):
        copier.copy(rid, receive_count=3)

    job = store.get(rid)
    assert job is not None and job.state is JobState.SUCCEEDED
    assert job.next_poll_at is not None and job.next_poll_at <= time.time() + LAST_ATTEMPT_WATCH + 1
    capture.drain()
    report = make_sweeper(clock=lambda: time.time() + LAST_ATTEMPT_WATCH + 2).run()
    assert report.stalled_copies == 1
    [event] = capture.drain()
    assert event["detail-type"] == "Video Generation Succeeded"  # the copy rule delivers it to the copier again


def test_the_last_attempt_watch_outlives_the_copiers_timeout() -> None:
    from cfnlint.decode import decode

    from grokvideo.copier import LAST_ATTEMPT_WATCH

    template, _ = decode(str(Path(__file__).resolve().parents[2] / "template.yaml"))
    assert template is not None
    assert LAST_ATTEMPT_WATCH > int(template["Resources"]["CopierFunction"]["Properties"]["Timeout"])
