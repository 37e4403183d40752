"""``grokvideo doctor`` against the stack's resources in moto and the fake CometAPI over loopback.

moto has no CloudFormation stack behind the ``deployment`` fixture, so ``list_stack_resources``
cannot answer there: a small recording stand-in (``StackResources``) is put in the deployment's
client cache instead, listing the schedule and alarms the tests create in moto's Scheduler and
CloudWatch. Everything else (Secrets Manager, SQS, Scheduler, CloudWatch) is moto, and the
provider is the fake CometAPI, reached for real over HTTP with the key read from the secret.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from grokvideo.cli.deployment import Deployment
from local.fake_cometapi import FakeCometAPI
from tests.cli_harness import Cli, CliResult
from tests.integration.conftest import API_KEY

SCHEDULE = "grokvideo-PollerFunctionSweep-1A2B3C"
ALARMS = [
    "grokvideo-PollerErrorsAlarm-4D5E",
    "grokvideo-CopyDeadLetterQueueAlarm-6F7G",
    "grokvideo-OwedEventAgeAlarm-8H",
]
PROBE_PATH = "/grok/v1/videos/grokvideo-doctor-made-up-id"
CHECKS = [
    "api key secret",
    "poller schedule",
    "dead letters: copy",
    "dead letters: submit",
    "dead letters: register",
    "dead letters: poller",
    "alarms",
    "provider",
]


@dataclass
class StackResources:
    """Stands in for the CloudFormation client (moto has no stack here): ``list_stack_resources``
    answers ``resources`` two to a page (so paging is exercised), or raises ``error``; calls are
    recorded."""

    resources: list[dict[str, str]]
    error: Exception | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)

    def list_stack_resources(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.error:
            raise self.error
        start = int(kwargs.get("NextToken", 0))
        page: dict[str, Any] = {"StackResourceSummaries": self.resources[start : start + 2]}
        if start + 2 < len(self.resources):
            page["NextToken"] = str(start + 2)
        return page


def _summary(logical: str, physical: str, kind: str) -> dict[str, str]:
    return {"LogicalResourceId": logical, "PhysicalResourceId": physical, "ResourceType": kind}


@pytest.fixture
def stack(deployment: Deployment, fake: FakeCometAPI) -> StackResources:
    """The healthy stack: its schedule enabled, its alarms without data, its DLQs empty, the key
    in the secret, CometApiBaseUrl the fake (plain http, allowed as the local stack allows it)."""
    boto3.client("scheduler").create_schedule(
        Name=SCHEDULE,
        ScheduleExpression="rate(1 minute)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": "arn:aws:lambda:us-east-1:123456789012:function:grokvideo-poller",
            "RoleArn": "arn:aws:iam::123456789012:role/grokvideo-schedule",
        },
        State="ENABLED",
    )
    cloudwatch = boto3.client("cloudwatch")
    for name in ALARMS:
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="GrokVideo",
            MetricName="UnexpectedErrors",
            Statistic="Sum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
    # No data yet is not a problem (moto starts alarms OK; a fresh stack's are INSUFFICIENT_DATA).
    cloudwatch.set_alarm_state(AlarmName=ALARMS[2], StateValue="INSUFFICIENT_DATA", StateReason="new")
    resources = StackResources(
        [
            _summary("JobsTable", "grokvideo-jobs", "AWS::DynamoDB::Table"),
            _summary("PollerFunctionSweep", SCHEDULE, "AWS::Scheduler::Schedule"),
            *(_summary(f"Alarm{i}", name, "AWS::CloudWatch::Alarm") for i, name in enumerate(ALARMS)),
        ]
    )
    deployment._clients["cloudformation"] = resources
    deployment.parameters = {
        **deployment.parameters,
        "CometApiBaseUrl": fake.base_url,
        "AllowPrivateVideoHosts": "true",
    }
    return resources


def doctor(cli: Cli, *args: str) -> CliResult:
    result = cli("doctor", *args)
    assert API_KEY not in result.out + result.err, "the key must never be printed"
    return result


def statuses(result: CliResult) -> dict[str, str]:
    return {c["name"]: c["status"] for c in doctor_json(result)}


def doctor_json(result: CliResult) -> list[dict[str, str]]:
    return json.loads(result.out)


def detail(result: CliResult, name: str) -> str:
    return next(c["detail"] for c in doctor_json(result) if c["name"] == name)


def put_secret(deployment: Deployment, value: str) -> None:
    boto3.client("secretsmanager").put_secret_value(SecretId=deployment.outputs["ApiKeySecretArn"], SecretString=value)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- healthy -------------------------------------------------------------------------------------


def test_a_healthy_stack_passes_every_check(cli: Cli, stack: StackResources, fake: FakeCometAPI) -> None:
    result = doctor(cli)
    assert result.code == 0, result.out + result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "DETAIL"]
    rows = {line[:24].strip(): line[24:].split()[0] for line in lines[1:]}
    assert rows == dict.fromkeys(CHECKS, "OK")
    assert "3 alarms: 1 INSUFFICIENT_DATA, 2 OK" in result.out
    assert f"{SCHEDULE} is ENABLED" in result.out
    assert f"{fake.base_url} accepted the key (the made-up id is unknown" in result.out
    assert result.err == "all 8 checks passed\n"
    assert ("GET", PROBE_PATH) in fake.requests  # one real call to the provider, with the key
    assert [c["StackName"] for c in stack.calls] == ["grokvideo", "grokvideo", "grokvideo"]  # listed once, 3 pages


def test_json_is_a_list_of_checks(cli: Cli, stack: StackResources) -> None:
    result = doctor(cli, "--json")
    assert result.code == 0
    checks = doctor_json(result)
    assert [c["name"] for c in checks] == CHECKS
    assert all(set(c) == {"name", "status", "detail"} and c["status"] == "OK" for c in checks)
    assert result.err == ""


# --- the secret ----------------------------------------------------------------------------------


def test_a_blank_secret_fails_and_the_provider_is_not_tried(
    cli: Cli, stack: StackResources, deployment: Deployment, fake: FakeCometAPI
) -> None:
    put_secret(deployment, "  \n")
    result = doctor(cli, "--json")
    assert result.code == 7
    assert statuses(result)["api key secret"] == "FAIL"
    assert "the API key secret is empty" in detail(result, "api key secret")
    assert "aws secretsmanager put-secret-value --secret-id arn:aws:secretsmanager:" in detail(result, "api key secret")
    assert statuses(result)["provider"] == "WARN"
    assert ("GET", PROBE_PATH) not in fake.requests
    assert [n for n, s in statuses(result).items() if s != "OK"] == ["api key secret", "provider"]


def test_a_secret_without_a_value_fails(cli: Cli, stack: StackResources, deployment: Deployment) -> None:
    """As the stack creates it when no CometApiKeySecretArn is given: a secret with no value."""
    arn = boto3.client("secretsmanager").create_secret(Name="grokvideo/empty")["ARN"]
    deployment.outputs = {**deployment.outputs, "ApiKeySecretArn": arn}
    result = doctor(cli, "--json")
    assert result.code == 7
    assert detail(result, "api key secret").startswith(
        f"holds no value yet: put the key with `aws secretsmanager put-secret-value --secret-id {arn} "
    )


def test_a_secret_that_does_not_exist_fails(cli: Cli, stack: StackResources, deployment: Deployment) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:grokvideo/gone-AbCdEf"
    deployment.outputs = {**deployment.outputs, "ApiKeySecretArn": arn}
    result = doctor(cli, "--json")
    assert result.code == 7
    assert detail(result, "api key secret").startswith(f"no secret {arn}: create it")


def test_a_json_secret_without_api_key_fails(cli: Cli, stack: StackResources, deployment: Deployment) -> None:
    put_secret(deployment, json.dumps({"key": API_KEY}))
    result = doctor(cli, "--json")
    assert result.code == 7
    assert detail(result, "api key secret").startswith("the API key secret is JSON but has no 'api_key' field: ")


def test_a_json_secret_with_api_key_passes(cli: Cli, stack: StackResources, deployment: Deployment) -> None:
    put_secret(deployment, json.dumps({"api_key": API_KEY}))
    assert doctor(cli).code == 0


# --- the provider --------------------------------------------------------------------------------


def test_a_key_the_provider_refuses_fails(
    cli: Cli, stack: StackResources, deployment: Deployment, fake: FakeCometAPI
) -> None:
    put_secret(deployment, "sk-not-the-right-one")
    result = doctor(cli, "--json")
    assert result.code == 7
    assert statuses(result) == {**dict.fromkeys(CHECKS, "OK"), "provider": "FAIL"}
    assert detail(result, "provider").startswith(
        "the provider refused the key (HTTP 401): put the right one with `aws secretsmanager put-secret-value "
    )
    assert "sk-not-the-right-one" not in result.out
    assert ("GET", PROBE_PATH) in fake.requests


def test_an_unreachable_provider_fails(cli: Cli, stack: StackResources, deployment: Deployment) -> None:
    base = f"http://127.0.0.1:{closed_port()}"
    deployment.parameters = {**deployment.parameters, "CometApiBaseUrl": base}
    result = doctor(cli, "--json")
    assert result.code == 7
    assert statuses(result)["provider"] == "FAIL"
    assert detail(result, "provider").startswith(f"{base} unreachable: ")
    assert "could not connect" in detail(result, "provider")


def test_plain_http_needs_allow_private_video_hosts_as_the_functions_do(
    cli: Cli, stack: StackResources, deployment: Deployment, fake: FakeCometAPI
) -> None:
    deployment.parameters = {**deployment.parameters, "AllowPrivateVideoHosts": "false"}
    result = doctor(cli, "--json")
    assert result.code == 7
    assert detail(result, "provider").startswith("the stack's CometApiBaseUrl is refused: ")
    assert ("GET", PROBE_PATH) not in fake.requests


# --- dead letters, alarms, schedule --------------------------------------------------------------


def test_dead_letters_fail_and_say_how_to_redrive(cli: Cli, stack: StackResources, deployment: Deployment) -> None:
    sqs = boto3.client("sqs")
    url = deployment.outputs["CopyDeadLetterQueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=300)  # one in flight
    result = doctor(cli)
    assert result.code == 7
    assert "dead letters: copy" in result.out
    line = next(line for line in result.out.splitlines() if line.startswith("dead letters: copy"))
    assert line.split("  ")[-1] == "2 messages: inspect, then `grokvideo redrive copy`"
    assert "FAIL" in line
    assert result.err == "1 failed, 0 to look at, of 8 checks\n"


def test_a_dead_letter_queue_that_cannot_be_read_fails_alone(
    cli: Cli, stack: StackResources, deployment: Deployment
) -> None:
    boto3.client("sqs").delete_queue(QueueUrl=deployment.outputs["RegisterDeadLetterQueueUrl"])
    result = doctor(cli, "--json")
    assert result.code == 7
    assert statuses(result) == {**dict.fromkeys(CHECKS, "OK"), "dead letters: register": "FAIL"}
    assert detail(result, "dead letters: register").startswith(
        "could not be read: reading the register dead-letter queue: "
    )


def test_an_alarm_in_alarm_fails_by_name(cli: Cli, stack: StackResources) -> None:
    boto3.client("cloudwatch").set_alarm_state(AlarmName=ALARMS[0], StateValue="ALARM", StateReason="test")
    result = doctor(cli, "--json")
    assert result.code == 7
    assert statuses(result) == {**dict.fromkeys(CHECKS, "OK"), "alarms": "FAIL"}
    assert detail(result, "alarms").startswith(f"in ALARM: {ALARMS[0]} (see why: ")


def test_a_disabled_schedule_fails(cli: Cli, stack: StackResources) -> None:
    scheduler = boto3.client("scheduler")
    current = scheduler.get_schedule(Name=SCHEDULE)
    scheduler.update_schedule(
        Name=SCHEDULE,
        ScheduleExpression=current["ScheduleExpression"],
        FlexibleTimeWindow=current["FlexibleTimeWindow"],
        Target=current["Target"],
        State="DISABLED",
    )
    result = doctor(cli, "--json")
    assert result.code == 7
    assert statuses(result) == {**dict.fromkeys(CHECKS, "OK"), "poller schedule": "FAIL"}
    assert detail(result, "poller schedule").startswith(f"{SCHEDULE} is DISABLED, so no job is polled: enable it")


def test_what_cannot_be_listed_is_a_warning_and_the_rest_is_still_checked(
    cli: Cli, stack: StackResources, fake: FakeCometAPI
) -> None:
    """An emulator without ListStackResources: schedule and alarms WARN, the exit stays 0."""
    stack.error = ClientError(
        {"Error": {"Code": "InternalFailure", "Message": "not implemented"}}, "ListStackResources"
    )
    result = doctor(cli, "--json")
    assert result.code == 0
    assert statuses(result) == {**dict.fromkeys(CHECKS, "OK"), "poller schedule": "WARN", "alarms": "WARN"}
    assert detail(result, "poller schedule") == (
        "could not be checked: listing the stack's resources: InternalFailure: not implemented"
    )
    assert len(stack.calls) == 1  # asked once for both checks
    assert ("GET", PROBE_PATH) in fake.requests
    people = doctor(cli)
    assert people.code == 0
    assert people.err == "0 failed, 2 to look at, of 8 checks\n"
