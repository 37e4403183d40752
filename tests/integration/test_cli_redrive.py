"""``grokvideo redrive`` against moto's queues and bus: every dead-letter queue back to where it
can succeed, sent before deleted, and what cannot move left in place.

moto cannot run functions, so the poller's invoke goes to a recording fake (``deployment._clients``
is where ``Deployment`` keeps the clients it made).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import BUS

NOW = 1_795_824_000  # 2026-11-28T00:00:00Z
RULE_ATTRIBUTES = {
    "RULE_ARN": "arn:aws:events:us-east-1:123456789012:rule/grokvideo-bus/grokvideo-CopyRule",
    "TARGET_ARN": "arn:aws:sqs:us-east-1:123456789012:grokvideo-copy",
    "ERROR_CODE": "SQS_NO_PERMISSION",
    "ERROR_MESSAGE": "EventBridge may not send to the queue",
    "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
    "RETRY_ATTEMPTS": "185",
}
LAMBDA_ATTRIBUTES = {"RequestID": "3a40b9e6", "ErrorCode": "200", "ErrorMessage": "Task timed out after 15.00 seconds"}
SCHEDULER_ATTRIBUTES = {
    "ERROR_CODE": "AWS.Lambda.TooManyRequestsException",
    "ERROR_MESSAGE": "Rate exceeded",
    "SCHEDULE_ARN": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/grokvideo-poller-sweep",
}


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(detail_type: str, detail: dict[str, Any], *, source: str, at: float = NOW) -> str:
    """An event as EventBridge delivers it (and dead-letters it)."""
    return json.dumps(
        {
            "version": "0",
            "id": f"ev-{detail.get('request_id') or detail.get('client_ref')}",
            "detail-type": detail_type,
            "source": source,
            "account": "123456789012",
            "time": iso(at),
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }
    )


def succeeded(request_id: str, *, at: float = NOW) -> str:
    detail = {
        "request_id": request_id,
        "client_ref": None,
        "metadata": None,
        "schema_version": "1",
        "video_url": f"https://vidgen.x.ai/{request_id}.mp4",
        "duration": 6,
        "model": "grok-imagine-video",
        "cost_usd": 0.05,
        "submitted_at": None,
        "completed_at": iso(at),
    }
    return envelope("Video Generation Succeeded", detail, source="grokvideo", at=at)


def track(request_id: str) -> str:
    return envelope(
        "Video Job Track Requested",
        {"request_id": request_id, "client_ref": f"ref-{request_id}", "metadata": {"team": "ads"}},
        source="com.example.orders",
    )


def dead_letter(url: str, body: str, attributes: dict[str, str] | None = None) -> None:
    """Put ``body`` in a dead-letter queue as its feeder would (a rule adds its attributes)."""
    boto3.client("sqs").send_message(
        QueueUrl=url,
        MessageBody=body,
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in (attributes or {}).items()},
    )


def drain(url: str) -> list[dict[str, Any]]:
    """Every message now visible in the queue (received and deleted), with its attributes."""
    sqs = boto3.client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return found
        for m in messages:
            found.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def bodies(url: str) -> list[str]:
    return sorted(m["Body"] for m in drain(url))


@dataclass
class RecordingLambda:
    """What the command asks of Lambda; ``refuse`` makes every invoke fail as AWS would."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    refuse: str | None = None

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        if self.refuse:
            raise ClientError({"Error": {"Code": self.refuse, "Message": "refused"}}, "Invoke")
        self.calls.append(kwargs)
        return {"StatusCode": 202}


@pytest.fixture
def lambda_client(deployment: Any) -> RecordingLambda:
    fake = RecordingLambda()
    deployment._clients["lambda"] = fake
    return fake


# --- copy -------------------------------------------------------------------------------------


def test_copy_moves_the_queues_and_the_rules_dead_letters_back_to_the_copy_queue(cli: Any, deployment: Any) -> None:
    dlq = deployment.outputs["CopyDeadLetterQueueUrl"]
    dead_letter(dlq, succeeded("job-1"))  # the copy queue gave up on it (redrive policy)
    dead_letter(dlq, succeeded("job-2"), RULE_ATTRIBUTES)  # the copy rule could not deliver it
    cli.clock = lambda: NOW + 3600

    result = cli("redrive", "copy")

    assert result.code == 0, result.err
    assert bodies(deployment.outputs["CopyQueueUrl"]) == sorted([succeeded("job-1"), succeeded("job-2")])
    assert drain(dlq) == []
    rows = {line.split()[3]: line.split() for line in result.out.splitlines() if "job-" in line}
    assert rows["job-1"][1:3] == ["queue", "-"] and rows["job-1"][-1] == "moved"
    assert rows["job-2"][1:3] == ["rule", "SQS_NO_PERMISSION"] and rows["job-2"][-1] == "moved"
    assert "queue  copy queue  moved   1" in result.out and "rule   copy queue  moved   1" in result.out
    assert "expired" not in result.err


def test_the_rules_attributes_stay_behind(cli: Any, deployment: Any) -> None:
    """What goes back to the copy queue is the event alone: if it is dead-lettered again, it must
    not pass for the rule's."""
    dead_letter(deployment.outputs["CopyDeadLetterQueueUrl"], succeeded("job-1"), RULE_ATTRIBUTES)
    assert cli("redrive", "copy").code == 0
    [moved] = drain(deployment.outputs["CopyQueueUrl"])
    assert "MessageAttributes" not in moved


def test_copy_warns_when_the_video_url_has_probably_expired_and_still_moves_it(cli: Any, deployment: Any) -> None:
    dlq = deployment.outputs["CopyDeadLetterQueueUrl"]
    dead_letter(dlq, succeeded("old-job", at=NOW - 2 * 86400))
    dead_letter(dlq, succeeded("new-job", at=NOW - 3600))
    cli.clock = lambda: NOW

    result = cli("redrive", "copy")

    assert result.code == 0, result.err
    assert result.err.splitlines() == [
        "warning: old-job: finished 2d00h ago: URL probably expired; "
        "the copier will end the job ARCHIVE_FAILED (URL_EXPIRED)"
    ]
    assert len(drain(deployment.outputs["CopyQueueUrl"])) == 2


# --- submit -----------------------------------------------------------------------------------


def test_submit_moves_requests_back_to_the_submit_queue(cli: Any, deployment: Any) -> None:
    dlq = deployment.outputs["SubmitDeadLetterQueueUrl"]
    generate = envelope("Video Generation Requested", {"prompt": "a fox", "client_ref": "ad-1"}, source="com.example")
    edit = envelope(
        "Video Edit Requested", {"prompt": "snow", "source_request_id": "job-1", "client_ref": "ad-2"}, source="x"
    )
    dead_letter(dlq, generate)
    dead_letter(dlq, edit, {**RULE_ATTRIBUTES, "RULE_ARN": "arn:aws:events:us-east-1:1:rule/grokvideo-bus/Submit"})

    result = cli("redrive", "submit", "--json")

    assert result.code == 0, result.err
    assert bodies(deployment.outputs["SubmitQueueUrl"]) == sorted([generate, edit])
    assert drain(dlq) == []
    report = result.json()
    assert report["by_source"] == {"queue": {"moved": 1}, "rule": {"moved": 1}}
    assert report["by_destination"] == {"submit queue": {"moved": 2}}
    assert sorted(m["about"] for m in report["messages"]) == ["ad-1", "ad-2"]


# --- register ---------------------------------------------------------------------------------


@pytest.fixture
def track_requests(deployment: Any) -> str:
    """A queue fed by a rule like the stack's track rule: what reaches it would reach the function."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="track-requests")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"detail-type": ["Video Job Track Requested"], "source": [{"anything-but": ["grokvideo"]}]}
    events.put_rule(Name="track", EventBusName=BUS, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="track", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
    return str(url)


def test_register_puts_the_original_events_back_on_the_bus(cli: Any, deployment: Any, track_requests: str) -> None:
    dlq = deployment.outputs["RegisterDeadLetterQueueUrl"]
    dead_letter(dlq, track("job-1"), LAMBDA_ATTRIBUTES)  # the function failed after Lambda's retries
    dead_letter(dlq, track("job-2"), RULE_ATTRIBUTES)  # the track rule could not invoke it

    result = cli("redrive", "register", "--json")

    assert result.code == 0, result.err
    delivered = sorted((json.loads(m["Body"]) for m in drain(track_requests)), key=lambda e: e["detail"]["request_id"])
    originals = [json.loads(track("job-1")), json.loads(track("job-2"))]
    for event, original in zip(delivered, originals, strict=True):
        assert (event["source"], event["detail-type"], event["detail"]) == (
            original["source"],
            original["detail-type"],
            original["detail"],
        )
    assert drain(dlq) == []
    report = result.json()
    assert report["by_source"] == {"function": {"moved": 1}, "rule": {"moved": 1}}
    assert report["destination"] == {"name": "event bus", "target": BUS}
    errors = {m["about"]: m["error"] for m in report["messages"]}
    assert errors == {
        "job-1": "200: Task timed out after 15.00 seconds",
        "job-2": "SQS_NO_PERMISSION: EventBridge may not send to the queue",
    }


@dataclass
class RefusingBus:
    """PutEvents that refuses the entries of ``refused`` request ids (FailedEntryCount)."""

    refused: set[str]
    accepted: list[dict[str, Any]] = field(default_factory=list)

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        results: list[dict[str, Any]] = []
        for entry in Entries:
            if json.loads(entry["Detail"])["request_id"] in self.refused:
                results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
            else:
                self.accepted.append(entry)
                results.append({"EventId": f"id-{len(self.accepted)}"})
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def test_an_event_the_bus_refuses_stays_and_the_rest_moves(cli: Any, deployment: Any) -> None:
    dlq = deployment.outputs["RegisterDeadLetterQueueUrl"]
    dead_letter(dlq, track("job-1"), LAMBDA_ATTRIBUTES)
    dead_letter(dlq, track("job-2"), LAMBDA_ATTRIBUTES)
    bus = RefusingBus(refused={"job-2"})
    deployment._clients["events"] = bus

    result = cli("redrive", "register")

    assert result.code == 6
    assert [json.loads(e["Detail"])["request_id"] for e in bus.accepted] == ["job-1"]
    assert "the bus refused it: InternalFailure: try again" in result.err
    assert "run `grokvideo redrive register` again" in result.err
    assert [json.loads(m["Body"])["detail"]["request_id"] for m in drain(dlq)] == ["job-2"]  # visible at once


# --- poller -----------------------------------------------------------------------------------


def test_poller_starts_one_sweep_for_every_missed_tick(
    cli: Any, deployment: Any, lambda_client: RecordingLambda
) -> None:
    dlq = deployment.outputs["PollerScheduleDeadLetterQueueUrl"]
    for minute in range(3):
        dead_letter(dlq, json.dumps({"tick": minute}), SCHEDULER_ATTRIBUTES)
        time.sleep(0.01)  # SentTimestamp says which is the latest

    result = cli("redrive", "poller")

    assert result.code == 0, result.err
    assert lambda_client.calls == [
        {"FunctionName": "grokvideo-poller", "InvocationType": "Event", "Payload": b'{"tick": 2}'}
    ]
    assert result.out.splitlines()[-1] == "3 missed ticks; one sweep started"
    assert drain(dlq) == []


def test_ticks_stay_when_the_poller_cannot_be_invoked(
    cli: Any, deployment: Any, lambda_client: RecordingLambda
) -> None:
    dlq = deployment.outputs["PollerScheduleDeadLetterQueueUrl"]
    dead_letter(dlq, "{}", SCHEDULER_ATTRIBUTES)
    dead_letter(dlq, "{}", SCHEDULER_ATTRIBUTES)
    lambda_client.refuse = "TooManyRequestsException"

    result = cli("redrive", "poller", "--json")

    assert result.code == 6
    report = result.json()
    assert report["sweep_started"] is False and report["missed_ticks"] == 2
    assert report["counts"]["failed"] == 2
    assert "could not invoke the poller: TooManyRequestsException: refused" in result.err
    assert len(drain(dlq)) == 2


# --- what does not move -----------------------------------------------------------------------


def test_dry_run_moves_nothing_and_leaves_every_message_visible(cli: Any, deployment: Any) -> None:
    dlq = deployment.outputs["CopyDeadLetterQueueUrl"]
    dead_letter(dlq, succeeded("job-1"))
    dead_letter(dlq, succeeded("job-2"), RULE_ATTRIBUTES)
    dead_letter(dlq, "<html>oops</html>")

    result = cli("redrive", "copy", "--dry-run", "--json")

    assert result.code == 0, result.err
    report = result.json()
    assert report["dry_run"] is True
    assert report["counts"] == {"moved": 0, "would_move": 2, "failed": 0, "left": 1}
    assert report["by_destination"] == {"copy queue": {"would_move": 2}}
    assert drain(deployment.outputs["CopyQueueUrl"]) == []
    assert len(drain(dlq)) == 3  # all visible again at once


def test_a_failed_send_leaves_the_message_in_place_and_says_what_next(cli: Any, deployment: Any) -> None:
    dlq = deployment.outputs["CopyDeadLetterQueueUrl"]
    dead_letter(dlq, succeeded("job-1"))
    deployment.outputs["CopyQueueUrl"] = "https://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue"

    result = cli("redrive", "copy")

    assert result.code == 6
    assert "job-1" in result.out and "failed: could not send to the copy queue" in result.out
    assert "1 could not be moved" in result.err and "run `grokvideo redrive copy` again" in result.err
    assert bodies(dlq) == [succeeded("job-1")]


class RefusingDeletes:
    """The deployment's SQS client, except that every DeleteMessageBatch is denied as AWS would."""

    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sqs, name)

    def delete_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no sqs:DeleteMessage"}}, "DeleteMessageBatch")


def test_a_failed_delete_says_the_message_moved_and_why_it_is_still_there(cli: Any, deployment: Any) -> None:
    dlq = deployment.outputs["CopyDeadLetterQueueUrl"]
    dead_letter(dlq, succeeded("job-1"))
    deployment._clients["sqs"] = RefusingDeletes(deployment.client("sqs"))

    result = cli("redrive", "copy", "--json")

    assert result.code == 6
    [letter] = result.json()["messages"]
    assert letter["result"] == "moved" and "AccessDenied: no sqs:DeleteMessage" in letter["reason"]
    assert "1 were moved but are still there" in result.err
    assert "could not delete it from the dead-letter queue: AccessDenied" in result.err
    assert bodies(deployment.outputs["CopyQueueUrl"]) == [succeeded("job-1")]


def test_a_body_that_is_not_a_json_event_stays_and_the_rest_moves(cli: Any, deployment: Any) -> None:
    dlq = deployment.outputs["CopyDeadLetterQueueUrl"]
    dead_letter(dlq, "not json at all")
    dead_letter(dlq, json.dumps({"hello": "world"}))
    dead_letter(dlq, succeeded("job-1"))

    result = cli("redrive", "copy")

    assert result.code == 6
    assert bodies(deployment.outputs["CopyQueueUrl"]) == [succeeded("job-1")]
    assert "left: not JSON" in result.out
    assert "2 cannot go back" in result.err and f"aws sqs receive-message --queue-url {dlq}" in result.err
    assert bodies(dlq) == sorted(["not json at all", json.dumps({"hello": "world"})])


def test_an_empty_dead_letter_queue_says_so(cli: Any, lambda_client: RecordingLambda) -> None:
    result = cli("redrive", "poller")
    assert (result.code, result.out) == (0, "")
    assert result.err.strip() == "the poller dead-letter queue is empty: nothing to move"
    assert lambda_client.calls == []
    report = cli("redrive", "register", "--json").json()
    assert report["messages"] == [] and report["counts"]["moved"] == 0


# --- how far it reads -------------------------------------------------------------------------


def test_more_than_one_batch_moves_in_one_run(cli: Any, deployment: Any) -> None:
    dlq = deployment.outputs["SubmitDeadLetterQueueUrl"]
    sent = [
        envelope("Video Generation Requested", {"prompt": "p", "client_ref": f"r{i}"}, source="x") for i in range(23)
    ]
    for body in sent:
        dead_letter(dlq, body)

    result = cli("redrive", "submit", "--json")

    assert result.code == 0, result.err
    assert result.json()["counts"]["moved"] == 23
    assert bodies(deployment.outputs["SubmitQueueUrl"]) == sorted(sent)
    assert drain(dlq) == []


def test_what_was_just_moved_is_not_moved_again_in_the_same_run(cli: Any, deployment: Any) -> None:
    """A destination that sends everything straight back (here: the DLQ itself) cannot keep the
    command going: it reads as many messages as were there at the start."""
    dlq = deployment.outputs["CopyDeadLetterQueueUrl"]
    for i in range(3):
        dead_letter(dlq, succeeded(f"job-{i}"))
    deployment.outputs["CopyQueueUrl"] = dlq

    result = cli("redrive", "copy", "--json")

    assert result.code == 0, result.err
    assert result.json()["counts"]["moved"] == 3
    assert len(drain(dlq)) == 3
