"""``grokvideo --local redrive`` on the deployed stack: a message put into each dead-letter queue
the way AWS would put it there goes back, and has its effect (the job is registered, copied,
submitted; the poller sweeps), and the dead-letter queue is left empty.

The command runs in-process (tests/cli_harness.py) on the ``Deployment`` that ``--local`` finds.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from grokvideo.cli.deployment import Deployment
from local.fake_cometapi import FakeCometAPI
from tests.cli_harness import Cli
from tests.system.conftest import (
    GENERATE,
    OUTPUTS_FILE,
    STORED,
    SUCCEEDED,
    TEST_SOURCE,
    TRACK,
    EventLog,
    Scenarios,
    Stack,
    forged_succeeded,
)
from tests.system.test_submit import submitted_for

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def deployment(stack: Stack) -> Deployment:
    return Deployment.local(OUTPUTS_FILE)


@pytest.fixture
def cli(deployment: Deployment) -> Cli:
    return Cli(deployment)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(stack: Stack, detail_type: str, detail: dict[str, Any], *, source: str) -> str:
    """The event as EventBridge delivers it (and dead-letters it)."""
    return json.dumps(
        {
            "version": "0",
            "id": f"systemtest-{time.monotonic_ns()}",
            "detail-type": detail_type,
            "source": source,
            "account": "000000000000",
            "time": iso(time.time()),
            "region": stack.region,
            "resources": [],
            "detail": detail,
        }
    )


def rule_attributes(stack: Stack, rule: str, target_output: str) -> dict[str, str]:
    """What an EventBridge rule writes beside an event it could not deliver."""
    return {
        "RULE_ARN": f"{stack.outputs['EventBusArn'].replace(':event-bus/', ':rule/')}/{rule}",
        "TARGET_ARN": stack.outputs[target_output],
        "ERROR_CODE": "SQS_NO_PERMISSION",
        "ERROR_MESSAGE": "EventBridge could not reach the target",
        "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
        "RETRY_ATTEMPTS": "8",
    }


def dead_letter(stack: Stack, output: str, body: str, attributes: dict[str, str] | None = None) -> None:
    stack.client("sqs").send_message(
        QueueUrl=stack.outputs[output],
        MessageBody=body,
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in (attributes or {}).items()},
    )


def assert_empty(stack: Stack, output: str) -> None:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.outputs[output],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert int(attributes["ApproximateNumberOfMessages"]) == 0, (output, attributes)
    assert int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 0, (output, attributes)


def wait_for_item(stack: Stack, request_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (item := stack.item(request_id)) is None:
        assert time.monotonic() < deadline, f"{request_id} not registered within {timeout} s"
        time.sleep(0.5)
    return item


def test_register_dead_letters_are_put_back_on_the_bus_and_registered(
    jobs: Scenarios, events: EventLog, stack: Stack, fake: FakeCometAPI, cli: Cli
) -> None:
    by_function = fake.add_job(outcome="done", ready_after=0)
    by_rule = fake.add_job(outcome="done", ready_after=0)
    for rid, attributes in (
        # the register function failed on it after Lambda's async retries
        (by_function, {"RequestID": "3a40b9e6", "ErrorCode": "200", "ErrorMessage": "Task timed out"}),
        # the track rule could not invoke the function
        (by_rule, rule_attributes(stack, "RegisterFunctionTrackRequested", "RegisterFunctionName")),
    ):
        detail = {"request_id": rid, "client_ref": jobs.client_ref("redrive-register"), "metadata": {"n": 1}}
        dead_letter(stack, "RegisterDeadLetterQueueUrl", envelope(stack, TRACK, detail, source=TEST_SOURCE), attributes)

    result = cli("--local", "redrive", "register", "--json")

    assert result.code == 0, result.err
    report = result.json()
    assert report["by_source"] == {"function": {"moved": 1}, "rule": {"moved": 1}}
    assert_empty(stack, "RegisterDeadLetterQueueUrl")
    for rid in (by_function, by_rule):
        item = wait_for_item(stack, rid)
        assert item["client_ref"] == jobs.client_ref("redrive-register")
        jobs.redriven.append(rid)
    for rid in (by_function, by_rule):
        events.wait_for_event(rid, STORED, timeout=120)


def test_a_copy_dead_letter_goes_back_to_the_copy_queue_and_is_stored(
    jobs: Scenarios, events: EventLog, stack: Stack, fake: FakeCometAPI, cli: Cli
) -> None:
    # A job the poller saw finish (written as it writes it), whose copies all failed: its
    # Succeeded event is in the copy dead-letter queue, put there by the copy queue.
    rid = fake.add_job(outcome="done", ready_after=0)
    name = "redrive-copy"
    now = int(time.time())
    stack.table.put_item(
        Item={
            "request_id": rid,
            "state": "SUCCEEDED",
            "registered_at": now,
            "deadline_at": now + 3600,
            "attempts": 1,
            "client_ref": jobs.client_ref(name),
            "metadata": json.dumps(jobs.metadata(name), separators=(",", ":"), sort_keys=True),
            "model": "grok-imagine-video",
            "video_url": fake.video_url(rid),
            "duration": 1,
            "cost_usd": Decimal("0.05"),
            "completed_at": now,
        },
        ConditionExpression="attribute_not_exists(request_id)",
    )
    jobs.redriven_copies.append(rid)
    detail = forged_succeeded(rid, fake.video_url(rid), jobs, name)
    dead_letter(stack, "CopyDeadLetterQueueUrl", envelope(stack, SUCCEEDED, detail, source=stack.source))

    result = cli("--local", "redrive", "copy")

    assert result.code == 0, result.err
    assert "expired" not in result.err
    assert_empty(stack, "CopyDeadLetterQueueUrl")
    stored = events.wait_for_event(rid, STORED, timeout=120, kick=False)["detail"]
    assert stored["client_ref"] == jobs.client_ref(name)
    item = stack.item(rid)
    assert item is not None and item["state"] == "STORED"
    assert stack.client("s3").head_object(Bucket=stack.bucket, Key=stored["key"])["ContentLength"] == fake.video_length(
        rid
    )


def test_a_submit_dead_letter_goes_back_to_the_submit_queue_and_is_submitted(
    jobs: Scenarios, events: EventLog, stack: Stack, cli: Cli
) -> None:
    client_ref = jobs.client_ref("redrive-submit")
    request = {
        "prompt": f"a heron over a lake, systemtest {jobs.run} [ready_after=2]",
        "duration": 1,
        "resolution": "480p",
        "aspect_ratio": "16:9",
        "client_ref": client_ref,
        "metadata": {"redriven": True},
        "idempotency_key": f"systemtest-redrive-{jobs.run}",
    }
    # The submit rule could not deliver it to the submit queue.
    dead_letter(
        stack,
        "SubmitDeadLetterQueueUrl",
        envelope(stack, GENERATE, request, source=TEST_SOURCE),
        rule_attributes(stack, "SubmitRule", "SubmitQueueUrl"),
    )

    result = cli("--local", "redrive", "submit")

    assert result.code == 0, result.err
    assert ["rule", "submit", "queue", "moved", "1"] in [line.split() for line in result.out.splitlines()]
    assert_empty(stack, "SubmitDeadLetterQueueUrl")
    rid = str(submitted_for(events, client_ref)[0]["detail"]["request_id"])
    jobs.redriven.append(rid)
    events.wait_for_event(rid, STORED, timeout=120)


class RecordedLambda:
    """The real Lambda client, with a record of what was invoked and how Lambda answered."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.answers: list[tuple[dict[str, Any], int]] = []

    def invoke(self, **kwargs: Any) -> Any:
        answer = self.client.invoke(**kwargs)
        self.answers.append((kwargs, answer["StatusCode"]))
        return answer


def _sweeps_since(stack: Stack, start_ms: int) -> int:
    return sum(1 for e in stack.log_messages("PollerFunctionName", start_ms) if '"sweep done"' in e["message"])


def test_missed_poller_ticks_start_one_sweep(stack: Stack, deployment: Deployment, cli: Cli) -> None:
    for _ in range(2):  # Scheduler could not invoke the poller (the schedule has no Input: "{}")
        dead_letter(
            stack,
            "PollerScheduleDeadLetterQueueUrl",
            "{}",
            {
                "ERROR_CODE": "AWS.Lambda.TooManyRequestsException",
                "ERROR_MESSAGE": "Rate exceeded",
                "SCHEDULE_ARN": f"arn:aws:scheduler:{stack.region}:000000000000:schedule/default/poller",
                "TARGET_ARN": stack.outputs["PollerFunctionName"],
            },
        )
    recorded = RecordedLambda(deployment.client("lambda"))
    deployment._clients["lambda"] = recorded
    start_ms = int(time.time() * 1000)
    try:
        result = cli("--local", "redrive", "poller")
    finally:
        deployment._clients["lambda"] = recorded.client

    assert result.code == 0, result.err
    assert result.out.splitlines()[-1] == "2 missed ticks; one sweep started"
    assert recorded.answers == [
        ({"FunctionName": stack.outputs["PollerFunctionName"], "InvocationType": "Event", "Payload": b"{}"}, 202)
    ]
    assert_empty(stack, "PollerScheduleDeadLetterQueueUrl")
    # The invocation ran: a sweep ended after it (the emulator writes its log at the end; a
    # sweep lasts up to a minute while jobs are pending).
    deadline = time.monotonic() + 100
    while _sweeps_since(stack, start_ms) == 0:
        assert time.monotonic() < deadline, "no poller sweep ended after the redrive"
        time.sleep(2)
