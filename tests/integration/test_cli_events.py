"""``grokvideo events`` and its ``EventTap`` against the bus and queues in moto.

To put events on the bus while the command listens (in this thread), the deployment's SQS client
is wrapped (``Arrivals``): before each receive it runs the next step given, which puts events or
raises ``KeyboardInterrupt`` as Ctrl-C would. Everything else is moto: the rule, its delivery
into the queue, the long poll, and the clean-up.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from grokvideo.cli.deployment import Deployment
from grokvideo.cli.tail import EventTap
from tests.cli_harness import Cli
from tests.integration.conftest import BUS, SOURCE

STORED = "Video Stored"
FAILED = "Video Generation Failed"


@dataclass
class Arrivals:
    """The deployment's SQS client, with ``steps`` run one before each ``receive_message``."""

    sqs: Any
    steps: list[Callable[[], None]]
    receives: list[dict[str, Any]] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sqs, name)

    def receive_message(self, **kwargs: Any) -> Any:
        self.receives.append(kwargs)
        if self.steps:
            self.steps.pop(0)()
        return self.sqs.receive_message(**kwargs)


@dataclass
class Refusing:
    """A client that raises on the operations named in ``refuse`` and passes everything else on."""

    client: Any
    refuse: set[str]

    def __getattr__(self, name: str) -> Any:
        if name in self.refuse:

            def refused(**_kwargs: Any) -> Any:
                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, name)

            return refused
        return getattr(self.client, name)


def put(detail_type: str, detail: dict[str, Any], source: str = SOURCE) -> None:
    entry = {"EventBusName": BUS, "Source": source, "DetailType": detail_type, "Detail": json.dumps(detail)}
    assert boto3.client("events").put_events(Entries=[entry])["FailedEntryCount"] == 0


def stored(request_id: str) -> Callable[[], None]:
    def step() -> None:
        put(STORED, {"request_id": request_id, "s3_uri": f"s3://videos/{request_id}.mp4", "size_bytes": 1_591_000})

    return step


def taps() -> tuple[list[str], list[str]]:
    """Names of the rules on the bus and the queues that look like a tap of this stack."""
    rules = boto3.client("events").list_rules(EventBusName=BUS, NamePrefix="grokvideo-tail-")["Rules"]
    queues = boto3.client("sqs").list_queues(QueueNamePrefix="grokvideo-tail-").get("QueueUrls", [])
    return [r["Name"] for r in rules], queues


@pytest.fixture
def arrivals(deployment: Deployment) -> Arrivals:
    wrapped = Arrivals(boto3.client("sqs"), [])
    deployment._clients["sqs"] = wrapped
    return wrapped


def test_prints_our_events_as_they_arrive_and_not_others(cli: Cli, arrivals: Arrivals) -> None:
    def happen() -> None:
        stored("4b2cd27e-0001")()
        put("Video Generation Requested", {"prompt": "a fox"}, source="com.example.app")  # not ours
        put(FAILED, {"request_id": "4b2cd27e-0002", "reason": "EXPIRED", "message": "too old"})

    arrivals.steps.append(happen)
    result = cli("events", "--seconds", "1")
    assert result.code == 0, result.err
    # In the order of what they say (the time they start with may differ by a second).
    lines = sorted(result.out.splitlines(), key=lambda line: line.split("  ", 1)[1])
    assert len(lines) == 2, result.out
    assert lines[0].split("  ", 1)[1].split() == [
        "Video",
        "Generation",
        "Failed",
        "4b2cd27e-0002",
        "EXPIRED:",
        "too",
        "old",
    ]
    assert lines[1].split("  ", 1)[1].split() == [
        "Video",
        "Stored",
        "4b2cd27e-0001",
        "s3://videos/4b2cd27e-0001.mp4",
        "(1.5",
        "MiB)",
    ]
    assert "com.example.app" not in result.out and "a fox" not in result.out
    err = result.err.splitlines()
    assert err[0] == f"listening on bus {BUS} for source {SOURCE}; Ctrl-C to stop"
    assert err[-1] == "2 events"
    assert taps() == ([], [])


def test_count_stops_after_n_events_and_json_lines_are_the_envelopes(cli: Cli, arrivals: Arrivals) -> None:
    arrivals.steps.append(lambda: [stored(f"job-{i}")() for i in range(5)])
    result = cli("events", "--follow", "--count", "3", "--json")
    assert result.code == 0, result.err
    events = [json.loads(line) for line in result.out.splitlines()]
    assert len(events) == 3
    for event in events:
        assert event["source"] == SOURCE and event["detail-type"] == STORED
        assert {"id", "time", "region", "resources"} <= set(event)
        assert event["detail"]["s3_uri"] == f"s3://videos/{event['detail']['request_id']}.mp4"
    assert all(r["MaxNumberOfMessages"] <= 3 for r in arrivals.receives)  # never takes more than it prints
    assert taps() == ([], [])


def test_without_events_it_listens_for_the_seconds_given(cli: Cli, arrivals: Arrivals) -> None:
    result = cli("events", "--seconds", "1")
    assert result.code == 0
    assert result.out == ""
    assert result.err.splitlines()[-1] == "0 events"
    assert arrivals.receives[0]["WaitTimeSeconds"] == 1
    assert taps() == ([], [])


def test_ctrl_c_still_removes_the_rule_and_the_queue(cli: Cli, arrivals: Arrivals, deployment: Deployment) -> None:
    seen: dict[str, Any] = {}

    def look() -> None:
        """While listening: the tap is a rule for our source into a queue only that rule may fill."""
        (rule,), (queue_url,) = taps()
        bridge, sqs = boto3.client("events"), boto3.client("sqs")
        seen["pattern"] = json.loads(bridge.describe_rule(Name=rule, EventBusName=BUS)["EventPattern"])
        seen["targets"] = bridge.list_targets_by_rule(Rule=rule, EventBusName=BUS)["Targets"]
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
        seen["policy"] = json.loads(attributes["Policy"])
        seen["retention"] = attributes["MessageRetentionPeriod"]
        seen["rule_arn"] = bridge.describe_rule(Name=rule, EventBusName=BUS)["Arn"]
        stored("job-1")()

    def interrupt() -> None:
        raise KeyboardInterrupt

    arrivals.steps += [look, interrupt]
    result = cli("events", "--follow")
    assert result.code == 130
    assert result.err.splitlines()[-1] == "grokvideo: interrupted"
    assert len(result.out.splitlines()) == 1 and "job-1" in result.out
    assert taps() == ([], [])
    assert seen["pattern"] == {"source": [SOURCE]}
    assert len(seen["targets"]) == 1
    (statement,) = seen["policy"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == seen["targets"][0]["Arn"]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": seen["rule_arn"]}}
    assert seen["retention"] == "3600"  # a tap left behind by a killed process keeps an hour, not four days


def test_what_cannot_be_removed_is_named_with_the_command_that_removes_it(
    cli: Cli, arrivals: Arrivals, deployment: Deployment
) -> None:
    deployment._clients["events"] = Refusing(boto3.client("events"), {"delete_rule"})
    result = cli("events", "--seconds", "1")
    assert result.code == 0
    (rule,), queues = taps()
    assert queues == []  # the queue went all the same
    assert f"could not remove the rule {rule} (" in result.err
    assert f"remove it with `aws events delete-rule --name {rule} --event-bus-name {BUS}`" in result.err


def test_a_tap_that_cannot_be_set_up_leaves_nothing_behind(cli: Cli, deployment: Deployment) -> None:
    deployment._clients["events"] = Refusing(boto3.client("events"), {"put_targets"})
    result = cli("events", "--seconds", "1")
    assert result.code == 6
    assert result.err.startswith(
        f"grokvideo: putting a temporary rule and queue on bus {BUS}: AccessDenied: not allowed"
    )
    assert taps() == ([], [])


def test_event_tap_as_a_context_manager(deployment: Deployment) -> None:
    bridge, sqs = boto3.client("events"), boto3.client("sqs")
    with EventTap(bridge, sqs, bus=BUS, source=SOURCE, name="tests-tap") as tap:
        assert tap.receive() == []
        stored("job-1")()
        put(STORED, {"request_id": "other"}, source="com.example.app")
        (event,) = tap.receive(wait_seconds=1)
        assert event["detail"]["request_id"] == "job-1"
        assert tap.receive() == []  # each event once
    assert tap.leftovers == []
    assert not bridge.list_rules(EventBusName=BUS, NamePrefix="tests-tap")["Rules"]
    assert not sqs.list_queues(QueueNamePrefix="tests-tap").get("QueueUrls")

    failing = EventTap(Refusing(bridge, {"put_targets"}), sqs, bus=BUS, source=SOURCE, name="tests-tap-2")
    with pytest.raises(ClientError), failing:
        pass
    assert not bridge.list_rules(EventBusName=BUS, NamePrefix="tests-tap")["Rules"]
    assert not sqs.list_queues(QueueNamePrefix="tests-tap").get("QueueUrls")
