"""EventPublisher against moto's EventBridge (in-process), plus failure injection with fakes/Stubber."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from grokvideo import events as ev
from grokvideo.errors import EventPublishError, EventTooLargeError
from grokvideo.events import DetailType, EventPublisher, OutputEvent
from grokvideo.models import FailureReason
from tests.integration.conftest import BUS, SOURCE, EventCapture
from tests.schema_check import assert_valid_entry
from tests.schema_check import sample_output_events as samples


def failed_event(n: int) -> OutputEvent:
    return ev.generation_failed(
        request_id=f"job-{n:04d}",
        client_ref=f"ref-{n}",
        metadata={"n": n},
        reason=FailureReason.TIMED_OUT,
        message="not finished within 3600 s",
    )


class Recording:
    """Wraps a real client and records every PutEvents request."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        return self.client.put_events(Entries=Entries)


class Flaky:
    """A fake events client: entries whose request_id is in ``fail`` are refused ``times`` times."""

    def __init__(self, fail: dict[str, int], code: str = "ThrottlingException") -> None:
        self.fail = dict(fail)
        self.code = code
        self.calls: list[list[str]] = []
        self.accepted: list[str] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        ids = [json.loads(e["Detail"])["request_id"] for e in Entries]
        self.calls.append(ids)
        results: list[dict[str, Any]] = []
        for rid in ids:
            if self.fail.get(rid, 0) > 0:
                self.fail[rid] -= 1
                results.append({"ErrorCode": self.code, "ErrorMessage": "Rate exceeded"})
            else:
                self.accepted.append(rid)
                results.append({"EventId": f"evt-{rid}"})
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}


# --- against moto -----------------------------------------------------------------------------


def test_25_events_go_in_batches_of_10_and_arrive(capture: EventCapture) -> None:
    recording = Recording(boto3.client("events"))
    EventPublisher(BUS, SOURCE, client=recording).publish([failed_event(n) for n in range(25)])
    assert [len(c) for c in recording.calls] == [10, 10, 5]
    delivered = capture.drain()
    assert sorted(e["detail"]["request_id"] for e in delivered) == [f"job-{n:04d}" for n in range(25)]
    for event in delivered:
        assert event["source"] == SOURCE
        assert_valid_entry(event)


def test_every_output_type_reaches_the_queue_and_matches_its_schema(capture: EventCapture) -> None:
    publisher = EventPublisher(BUS)  # default source, client created lazily inside mock_aws
    for output in samples().values():
        publisher.publish_one(output)
    delivered = capture.drain()
    assert sorted(e["detail-type"] for e in delivered) == sorted(d.value for d in samples())
    for event in delivered:
        assert event["source"] == "grokvideo"
        assert_valid_entry(event)


def test_oversize_entry_is_refused_before_anything_is_sent(capture: EventCapture) -> None:
    recording = Recording(boto3.client("events"))
    big = OutputEvent(DetailType.FAILED, {"request_id": "big", "message": "x" * ev.MAX_ENTRY_BYTES})
    with pytest.raises(EventTooLargeError) as info:
        EventPublisher(BUS, SOURCE, client=recording).publish([failed_event(1), big])
    message = str(info.value)
    assert "Video Generation Failed" in message
    size = ev.entry_size(EventPublisher(BUS, SOURCE).entry(big))
    assert str(size) in message and size > ev.MAX_ENTRY_BYTES
    assert recording.calls == []
    assert capture.drain() == []


def test_entry_exactly_at_the_limit_is_sent(capture: EventCapture) -> None:
    publisher = EventPublisher(BUS, SOURCE)
    base = OutputEvent(DetailType.FAILED, {"request_id": "edge", "message": ""})
    pad = ev.MAX_ENTRY_BYTES - ev.entry_size(publisher.entry(base))
    edge = OutputEvent(DetailType.FAILED, {"request_id": "edge", "message": "x" * pad})
    assert ev.entry_size(publisher.entry(edge)) == ev.MAX_ENTRY_BYTES
    flaky = Flaky({})
    EventPublisher(BUS, SOURCE, client=flaky).publish([edge])
    assert flaky.accepted == ["edge"]


# --- failure injection ------------------------------------------------------------------------


def test_partial_failure_retries_only_the_failed_entries() -> None:
    flaky = Flaky({"job-0003": 1, "job-0007": 2})
    sleeps: list[float] = []
    EventPublisher(BUS, SOURCE, client=flaky, sleep=sleeps.append).publish([failed_event(n) for n in range(10)])
    assert flaky.calls[0] == [f"job-{n:04d}" for n in range(10)]
    assert flaky.calls[1:] == [["job-0003", "job-0007"], ["job-0007"]]
    assert sorted(flaky.accepted) == [f"job-{n:04d}" for n in range(10)]
    assert len(sleeps) == 2 and all(s > 0 for s in sleeps)


def test_all_failing_raises_after_max_attempts_with_error_codes() -> None:
    flaky = Flaky({f"job-{n:04d}": 99 for n in range(3)}, code="InternalFailure")
    sleeps: list[float] = []
    publisher = EventPublisher(BUS, SOURCE, client=flaky, max_attempts=4, sleep=sleeps.append)
    with pytest.raises(EventPublishError) as info:
        publisher.publish([failed_event(n) for n in range(3)])
    assert len(flaky.calls) == 4
    assert len(sleeps) == 3
    assert sleeps[0] <= sleeps[-1] * 2  # backoff grows (jittered within [step/2, step])
    assert len(info.value.failed) == 3
    assert all("InternalFailure" in f and "Video Generation Failed" in f for f in info.value.failed)
    assert "InternalFailure" in str(info.value)


def test_permanent_error_code_is_not_retried() -> None:
    flaky = Flaky({"job-0001": 99}, code="NotAuthorizedForSourceException")
    sleeps: list[float] = []
    with pytest.raises(EventPublishError, match="NotAuthorizedForSourceException"):
        EventPublisher(BUS, SOURCE, client=flaky, sleep=sleeps.append).publish([failed_event(0), failed_event(1)])
    assert len(flaky.calls) == 1 and sleeps == []
    assert flaky.accepted == ["job-0000"]


def test_throttling_client_error_is_retried_then_succeeds(aws: None) -> None:
    client = boto3.client("events")
    entry = EventPublisher(BUS, SOURCE).entry(failed_event(1))
    sleeps: list[float] = []
    with Stubber(client) as stub:
        stub.add_client_error("put_events", service_error_code="ThrottlingException", http_status_code=400)
        stub.add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "e1"}]}, {"Entries": [entry]})
        EventPublisher(BUS, SOURCE, client=client, sleep=sleeps.append).publish_one(failed_event(1))
        stub.assert_no_pending_responses()
    assert len(sleeps) == 1


def test_client_errors_until_the_end_raise_publish_error(aws: None) -> None:
    client = boto3.client("events")
    with Stubber(client) as stub:
        for _ in range(3):
            stub.add_client_error("put_events", service_error_code="ThrottlingException", http_status_code=400)
        with pytest.raises(EventPublishError, match="ThrottlingException") as info:
            EventPublisher(BUS, SOURCE, client=client, max_attempts=3, sleep=lambda _s: None).publish_one(
                failed_event(1)
            )
        stub.assert_no_pending_responses()
    assert info.value.failed == ["Video Generation Failed job-0001: ThrottlingException"]


def test_missing_bus_is_a_publish_error_and_not_retried(aws: None) -> None:
    sleeps: list[float] = []
    with pytest.raises(EventPublishError, match="ResourceNotFoundException"):
        EventPublisher("no-such-bus", SOURCE, sleep=sleeps.append).publish_one(failed_event(1))
    assert sleeps == []


def test_batches_also_respect_the_total_request_size() -> None:
    flaky = Flaky({})
    chunk = "x" * 100_000
    big = [OutputEvent(DetailType.FAILED, {"request_id": f"job-{n:04d}", "message": chunk}) for n in range(5)]
    EventPublisher(BUS, SOURCE, client=flaky).publish(big)
    assert [len(c) for c in flaky.calls] == [2, 2, 1]


def test_nothing_to_publish_makes_no_call() -> None:
    flaky = Flaky({})
    EventPublisher(BUS, SOURCE, client=flaky).publish([])
    assert flaky.calls == []
