"""``doctor``: is the deployment able to work? The key secret, the poller's schedule, the dead
letters, the alarms, and one cheap call to the provider with the key.

This module only gathers facts (from AWS and the provider); ``grokvideo.cli.checks`` judges them.
An AWS error while gathering one check's facts becomes that check's FAIL or WARN, never the end
of the others. Exit 0 when nothing FAILs (WARNs do not fail), 7 (``UNHEALTHY``) otherwise.

The key is read as the functions read it and handed only to the provider client: it is never
printed, logged, or part of a check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from grokvideo.cli import render
from grokvideo.cli.checks import (
    AlarmFacts,
    Check,
    ProviderFacts,
    QueueFacts,
    ScheduleFacts,
    SecretFacts,
    Status,
    alarms_check,
    dead_letter_check,
    provider_check,
    schedule_check,
    secret_check,
)
from grokvideo.cli.context import Context
from grokvideo.cli.deployment import Deployment, aws_errors
from grokvideo.cli.exits import CliError, ExitCode
from grokvideo.cometapi import CometApiClient
from grokvideo.config import ProviderSettings
from grokvideo.errors import CometApiError, ConfigurationError

T = TypeVar("T")

# Each dead-letter queue's output, by the name ``grokvideo redrive`` knows it by.
DEAD_LETTER_QUEUES = {
    "copy": "CopyDeadLetterQueueUrl",
    "submit": "SubmitDeadLetterQueueUrl",
    "register": "RegisterDeadLetterQueueUrl",
    "poller": "PollerScheduleDeadLetterQueueUrl",
}
SCHEDULE_TYPE = "AWS::Scheduler::Schedule"
ALARM_TYPE = "AWS::CloudWatch::Alarm"
# A status call for an id no job has: the cheapest call that needs the key. Any answer about the
# id (unknown, pending) means the key was accepted.
PROBE_ID = "grokvideo-doctor-made-up-id"
PROBE_READ_TIMEOUT = 10.0
NOT_FOUND = "ResourceNotFoundException"


class Unanswered(Exception):
    """AWS did not answer a question (the message says which and why)."""


def ask(doing: str, question: Callable[[], T]) -> T:
    """``question()``, with what boto3 raises (and a missing output) turned into ``Unanswered``."""
    try:
        with aws_errors(doing):
            return question()
    except CliError as err:
        raise Unanswered(err.message) from None


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


# --- the facts -----------------------------------------------------------------------------------


def read_secret(deployment: Deployment) -> SecretFacts:
    try:
        arn = ask("finding the key secret", lambda: deployment.output("ApiKeySecretArn"))
    except Unanswered as err:
        return SecretFacts("-", error=str(err))
    secrets = deployment.client("secretsmanager")

    def read() -> SecretFacts:
        try:
            got = secrets.get_secret_value(SecretId=arn)
        except ClientError as err:
            if _code(err) != NOT_FOUND:
                raise
            # No secret, or a secret without a value (as the stack creates it): ask which.
            try:
                secrets.describe_secret(SecretId=arn)
            except ClientError as missing:
                if _code(missing) == NOT_FOUND:
                    return SecretFacts(arn, exists=False)
                raise
            return SecretFacts(arn, value=None)
        return SecretFacts(arn, value=got.get("SecretString", got.get("SecretBinary")))

    try:
        return ask(f"reading the secret {arn}", read)
    except Unanswered as err:
        return SecretFacts(arn, error=str(err))


def stack_resources(deployment: Deployment) -> list[dict[str, Any]]:
    """Every resource of the stack (``list_stack_resources``, all pages)."""
    cfn = deployment.client("cloudformation")
    resources: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"StackName": deployment.name}
    while True:
        page = cfn.list_stack_resources(**kwargs)
        resources.extend(page.get("StackResourceSummaries", []))
        if not page.get("NextToken"):
            return resources
        kwargs["NextToken"] = page["NextToken"]


def physical_ids(resources: list[dict[str, Any]], resource_type: str) -> list[str]:
    return [r["PhysicalResourceId"] for r in resources if r.get("ResourceType") == resource_type]


def read_schedule(deployment: Deployment, resources: list[dict[str, Any]] | Unanswered) -> ScheduleFacts:
    """The template has one schedule (the poller's ``ScheduleV2`` event, in the default group)."""
    if isinstance(resources, Unanswered):
        return ScheduleFacts(error=str(resources))
    names = physical_ids(resources, SCHEDULE_TYPE)
    if not names:
        return ScheduleFacts()
    name = names[0]

    def state() -> str | None:
        try:
            return str(deployment.client("scheduler").get_schedule(Name=name)["State"])
        except ClientError as err:
            if _code(err) == NOT_FOUND:
                return None
            raise

    try:
        return ScheduleFacts(name, ask(f"reading the schedule {name}", state))
    except Unanswered as err:
        return ScheduleFacts(name, error=str(err))


def read_alarms(deployment: Deployment, resources: list[dict[str, Any]] | Unanswered) -> AlarmFacts:
    if isinstance(resources, Unanswered):
        return AlarmFacts(error=str(resources))
    names = physical_ids(resources, ALARM_TYPE)

    def states() -> dict[str, str]:
        cloudwatch = deployment.client("cloudwatch")
        found: dict[str, str] = {}
        for start in range(0, len(names), 100):  # at most 100 names per call
            kwargs: dict[str, Any] = {
                "AlarmNames": names[start : start + 100],
                "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
                "MaxRecords": 100,
            }
            while True:
                page = cloudwatch.describe_alarms(**kwargs)
                for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                    found[alarm["AlarmName"]] = alarm["StateValue"]
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
        return found

    try:
        return AlarmFacts(tuple(names), ask("reading the alarms", states))
    except Unanswered as err:
        return AlarmFacts(tuple(names), error=str(err))


def read_dead_letters(deployment: Deployment, queue: str, output: str) -> QueueFacts:
    def depth() -> QueueFacts:
        attributes = deployment.client("sqs").get_queue_attributes(
            QueueUrl=deployment.output(output),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return QueueFacts(
            queue,
            visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
            in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )

    try:
        return ask(f"reading the {queue} dead-letter queue", depth)
    except Unanswered as err:
        return QueueFacts(queue, error=str(err))


def probe_provider(deployment: Deployment, secret: SecretFacts) -> ProviderFacts:
    """One status call for a made-up id, with the settings the functions get from the stack's
    parameters (the template passes AllowPrivateVideoHosts as ALLOW_HTTP_PROVIDER)."""
    environment = {
        "COMETAPI_KEY_SECRET_ARN": secret.arn,
        "COMETAPI_BASE_URL": deployment.parameters.get("CometApiBaseUrl", ""),
        "ALLOW_HTTP_PROVIDER": deployment.parameters.get("AllowPrivateVideoHosts", ""),
    }
    base_url = environment["COMETAPI_BASE_URL"]
    key = secret.key
    if key is None:
        return ProviderFacts(base_url, secret.arn, tried=False)
    try:
        settings = ProviderSettings.from_env(environment)
        client = CometApiClient(settings.api_base_url, lambda: key, read_timeout=PROBE_READ_TIMEOUT)
    except ConfigurationError as err:
        return ProviderFacts(base_url, secret.arn, error=err)
    try:
        return ProviderFacts(settings.api_base_url, secret.arn, answer=client.get_video(PROBE_ID))
    except CometApiError as err:
        return ProviderFacts(settings.api_base_url, secret.arn, error=err)
    finally:
        client.close()


# --- the command ---------------------------------------------------------------------------------


def examine(deployment: Deployment) -> Iterator[Check]:
    """Every check, in the order printed; each one's facts gathered on its own."""
    secret = read_secret(deployment)
    yield secret_check(secret)
    resources: list[dict[str, Any]] | Unanswered
    try:  # listed once, for the schedule and the alarms
        resources = ask("listing the stack's resources", lambda: stack_resources(deployment))
    except Unanswered as err:
        resources = err
    yield schedule_check(read_schedule(deployment, resources))
    for queue, output in DEAD_LETTER_QUEUES.items():
        yield dead_letter_check(read_dead_letters(deployment, queue, output))
    yield alarms_check(read_alarms(deployment, resources))
    yield provider_check(probe_provider(deployment, secret))


def doctor(ctx: Context) -> int:
    checks = list(examine(ctx.deployment))
    failed = sum(c.status is Status.FAIL for c in checks)
    warned = sum(c.status is Status.WARN for c in checks)
    if ctx.json:
        render.print_json([c.record() for c in checks], ctx.out)
    else:
        print(render.table(["CHECK", "STATUS", "DETAIL"], [[c.name, c.status, c.detail] for c in checks]), file=ctx.out)
        if failed or warned:
            ctx.say(f"{failed} failed, {warned} to look at, of {len(checks)} checks")
        else:
            ctx.say(f"all {len(checks)} checks passed")
    return ExitCode.UNHEALTHY if failed else ExitCode.OK
