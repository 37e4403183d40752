"""The submit Lambda handler in-process, fed as Lambda feeds it: bus rule -> SQS submit queue -> batch.

moto holds the bus, the queue, the table and the secret; the fake CometAPI answers over HTTP.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from grokvideo.jobs import JobStore
from local.fake_cometapi import FakeCometAPI
from tests.handlers import FakeContext, load_handler
from tests.integration.conftest import BUS, EventCapture
from tests.schema_check import assert_valid_event
from tests.sqs_batches import receive_batch

GENERATIONS = "/grok/v1/videos/generations"
INPUT_SOURCE = "com.example.app"


@pytest.fixture
def handler(submit_handler: Any) -> Any:
    return submit_handler


def put_request(detail: dict[str, Any], detail_type: str = "Video Generation Requested") -> None:
    entry = {"EventBusName": BUS, "Source": INPUT_SOURCE, "DetailType": detail_type, "Detail": json.dumps(detail)}
    assert boto3.client("events").put_events(Entries=[entry])["FailedEntryCount"] == 0


def receive(queue: tuple[str, str], wait: float = 0) -> dict[str, Any]:
    """What Lambda's SQS poller would hand the function: the visible messages as one batch."""
    return receive_batch(*queue, wait=wait)


def delete(queue: tuple[str, str], batch: dict[str, Any], failures: list[dict[str, str]]) -> None:
    """What Lambda does with a partial batch response: delete every record that did not fail."""
    failed = {f["itemIdentifier"] for f in failures}
    for record in batch["Records"]:
        if record["messageId"] not in failed:
            boto3.client("sqs").delete_message(QueueUrl=queue[0], ReceiptHandle=record["receiptHandle"])


def test_requests_on_the_bus_become_jobs_and_invalid_ones_are_rejected_in_the_same_batch(
    handler: Any, submit_queue: tuple[str, str], fake: FakeCometAPI, store: JobStore, capture: EventCapture
) -> None:
    put_request({"prompt": "a fox", "client_ref": "ok-1"})
    put_request({"prompt": "make it snow", "video_url": "https://cdn.example.com/in.mp4"}, "Video Edit Requested")
    put_request({"prompt": "", "client_ref": "bad-1"})
    batch = receive(submit_queue)
    assert len(batch["Records"]) == 3

    response = handler.lambda_handler(batch, FakeContext(timeout_seconds=60))

    assert response == {"batchItemFailures": []}
    assert [route for _, route, _ in fake.create_log] == ["generations", "edits"]
    events = capture.drain()
    for event in events:
        assert_valid_event(event["detail-type"], event["detail"])
    kinds = sorted((e["detail-type"], e["detail"]["client_ref"] or "") for e in events)
    assert kinds == [
        ("Video Generation Submitted", ""),
        ("Video Generation Submitted", "ok-1"),
        ("Video Request Rejected", "bad-1"),
    ]
    for _, _, rid in fake.create_log:
        job = store.get(rid)
        assert job is not None and job.state == "PENDING"


def test_a_429_fails_its_record_alone_and_the_message_returns_after_retry_after(
    handler: Any, submit_queue: tuple[str, str], fake: FakeCometAPI, capture: EventCapture
) -> None:
    fake.inject("429", path=GENERATIONS, retry_after=1)
    put_request({"prompt": "a fox"})
    batch = receive(submit_queue)

    response = handler.lambda_handler(batch, FakeContext(timeout_seconds=60))

    assert response == {"batchItemFailures": [{"itemIdentifier": batch["Records"][0]["messageId"]}]}
    delete(submit_queue, batch, response["batchItemFailures"])
    assert receive(submit_queue)["Records"] == [], "not back before Retry-After (the queue's own timeout is 360 s)"
    again = receive(submit_queue, wait=5)
    assert len(again["Records"]) == 1 and again["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"

    assert handler.lambda_handler(again, FakeContext(timeout_seconds=60)) == {"batchItemFailures": []}
    assert len(fake.create_log) == 1
    assert [e["detail-type"] for e in capture.drain()] == ["Video Generation Submitted"]


def test_a_duplicate_event_on_the_bus_pays_once(
    handler: Any, submit_queue: tuple[str, str], fake: FakeCometAPI, capture: EventCapture
) -> None:
    put_request({"prompt": "a fox", "idempotency_key": "order-77"})
    put_request({"prompt": "a fox", "idempotency_key": "order-77"})
    batch = receive(submit_queue)
    assert len(batch["Records"]) == 2

    assert handler.lambda_handler(batch, FakeContext(timeout_seconds=60)) == {"batchItemFailures": []}

    assert len(fake.create_log) == 1
    submitted = [e["detail"]["request_id"] for e in capture.drain()]
    assert submitted == [fake.create_log[0][2]] * 2, "the duplicate announces the same job"


def test_a_message_that_is_not_json_is_rejected_not_retried(
    handler: Any, submit_queue: tuple[str, str], capture: EventCapture
) -> None:
    boto3.client("sqs").send_message(QueueUrl=submit_queue[0], MessageBody="not json")
    batch = receive(submit_queue)
    assert handler.lambda_handler(batch, FakeContext(timeout_seconds=60)) == {"batchItemFailures": []}
    [event] = capture.drain()
    assert event["detail-type"] == "Video Request Rejected"


def test_a_plain_http_provider_without_the_switch_creates_nothing(
    handler: Any,
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeCometAPI,
    submit_queue: tuple[str, str],
    capture: EventCapture,
) -> None:
    """Without ALLOW_HTTP_PROVIDER an http CometAPI fails the submit function's settings: the
    request stays on its queue (a failed record) and no create is sent, the key least of all."""
    monkeypatch.delenv("ALLOW_HTTP_PROVIDER")
    handler = load_handler("submit")
    put_request({"prompt": "a red fox", "client_ref": "http-refused"})
    batch = receive(submit_queue, wait=5)
    assert len(batch["Records"]) == 1

    answer = handler.lambda_handler(batch, FakeContext())

    assert [f["itemIdentifier"] for f in answer["batchItemFailures"]] == [batch["Records"][0]["messageId"]]
    assert fake.count() == 0
    assert capture.drain() == []
