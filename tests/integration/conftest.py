"""Integration fixtures: AWS in-process (moto ``mock_aws``) and the fake CometAPI over loopback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import decode
from moto import mock_aws
from moto.core.config import DefaultConfig

from grokvideo.backoff import PollSchedule
from grokvideo.cometapi import CometApiClient
from grokvideo.events import EventPublisher
from grokvideo.jobs import JobStore
from grokvideo.sweep import Sweeper
from local.fake_cometapi import FakeCometAPI
from tests.invariants import scan_all, violations
from tests.moto_threads import serialize_moto_dynamodb

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
TABLE = "grokvideo-jobs"
BUS = "grokvideo-bus"
SOURCE = "grokvideo"
API_KEY = "test-key"


def create_jobs_table(dynamodb: Any, name: str = TABLE, *, template_path: Path = TEMPLATE) -> Any:
    """The jobs table exactly as template.yaml declares it (keys, sparse due index), read from it
    (``template_path``: another revision's template, for a benchmark comparing two)."""
    template, errors = decode(str(template_path))
    assert template is not None, errors
    declared = template["Resources"]["JobsTable"]["Properties"]
    schema = ("BillingMode", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")
    return dynamodb.create_table(TableName=name, **{k: _plain(declared[k]) for k in schema})


def _plain(value: Any) -> Any:
    """cfn-lint's decoded nodes as plain dicts, lists and strings (boto3 validates types)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return str(value)


@dataclass
class EventCapture:
    """Every event our source puts on the bus, delivered by a rule into an SQS queue."""

    sqs: Any
    queue_url: str

    def drain(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = got.get("Messages", [])
            if not messages:
                return events
            for m in messages:
                events.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def of_type(self, events: list[dict[str, Any]], detail_type: str) -> list[dict[str, Any]]:
        return [e for e in events if e["detail-type"] == detail_type]


@pytest.fixture
def moto_config() -> DefaultConfig | None:
    """moto's configuration (``mock_aws(config=...)``): a test module overrides this fixture, e.g.
    to have Step Functions execute state machines."""
    return None


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, moto_config: DefaultConfig | None) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    serialize_moto_dynamodb()
    with mock_aws(config=moto_config):
        yield


@pytest.fixture
def table(aws: None) -> Any:
    return create_jobs_table(boto3.resource("dynamodb"))


@pytest.fixture
def capture(aws: None) -> EventCapture:
    events = boto3.client("events")
    sqs = boto3.client("sqs")
    events.create_event_bus(Name=BUS)
    queue_url = sqs.create_queue(QueueName="captured-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="capture", EventBusName=BUS, EventPattern=json.dumps({"source": [SOURCE]}))
    events.put_targets(Rule="capture", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
    return EventCapture(sqs, queue_url)


@pytest.fixture
def fake() -> Iterator[FakeCometAPI]:
    server = FakeCometAPI(api_key=API_KEY, ready_after=0.0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def store(table: Any) -> Iterator[JobStore]:
    """The job store on the moto table; after the test, every job must keep the invariant
    (tests/invariants.py), whatever faults the test injected."""
    yield JobStore(TABLE, first_poll_delay=0, max_job_age=3600)
    assert violations(scan_all(table)) == []


@pytest.fixture
def publisher(capture: EventCapture) -> EventPublisher:
    return EventPublisher(BUS, SOURCE)


@pytest.fixture
def submit_queue(aws: None, capture: EventCapture) -> tuple[str, str]:
    """The template's wiring: a rule on both request types from any source but ours -> the submit
    queue (its URL and ARN)."""
    sqs, bridge = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="grokvideo-submit", Attributes={"VisibilityTimeout": "360"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {
        "detail-type": ["Video Generation Requested", "Video Edit Requested"],
        "source": [{"anything-but": [SOURCE]}],
    }
    bridge.put_rule(Name="submit", EventBusName=BUS, EventPattern=json.dumps(pattern))
    bridge.put_targets(Rule="submit", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
    return url, arn


@pytest.fixture
def submit_handler(
    monkeypatch: pytest.MonkeyPatch, store: JobStore, fake: FakeCometAPI, submit_queue: tuple[str, str]
) -> Any:
    """The submit handler as deployed (runtime's factories), its environment on moto and the fake."""
    from tests.handlers import load_handler

    arn = boto3.client("secretsmanager").create_secret(Name="grokvideo/cometapi-key", SecretString=API_KEY)["ARN"]
    for name, value in {
        "TABLE_NAME": TABLE,
        "EVENT_BUS_NAME": BUS,
        "EVENT_SOURCE": SOURCE,
        "COMETAPI_BASE_URL": fake.base_url,
        "ALLOW_HTTP_PROVIDER": "true",  # the fake listens on http://127.0.0.1
        "COMETAPI_KEY_SECRET_ARN": arn,
        "SUBMIT_QUEUE_URL": submit_queue[0],
        "SUBMIT_RATE_PER_SECOND": "50",
        "FIRST_POLL_DELAY_SECONDS": "0",
    }.items():
        monkeypatch.setenv(name, value)
    return load_handler("submit")


@pytest.fixture
def make_sweeper(store: JobStore, publisher: EventPublisher, fake: FakeCometAPI) -> Iterator[Callable[..., Sweeper]]:
    """A sweeper wired to the fake over real HTTP; keyword arguments override its settings.

    At teardown every sweeper made must have met no unexpected error (those are swallowed per
    job at run time so one job cannot end a sweep, which would hide bugs from the tests).
    """
    made: list[Sweeper] = []

    def make(**overrides: Any) -> Sweeper:
        client = overrides.pop("client", None) or CometApiClient(fake.base_url, lambda: API_KEY, read_timeout=2.0)
        options: dict[str, Any] = {
            "concurrency": 8,
            "schedule": PollSchedule(first_delay=0.2, cap=0.5),
            "sweep_seconds": 0,
        }
        options.update(overrides)
        sweeper = Sweeper(store, client, publisher, **options)
        made.append(sweeper)
        return sweeper

    yield make
    assert [s.report.unexpected_errors for s in made] == [0] * len(made)


# --- the grokvideo command against moto ----------------------------------------------------------

STACK_OUTPUT_QUEUES = {
    "CopyQueueUrl": "grokvideo-copy",
    "CopyDeadLetterQueueUrl": "grokvideo-copy-dlq",
    "SubmitQueueUrl": "grokvideo-submit",
    "SubmitDeadLetterQueueUrl": "grokvideo-submit-dlq",
    "RegisterDeadLetterQueueUrl": "grokvideo-register-dlq",
    "PollerScheduleDeadLetterQueueUrl": "grokvideo-poller-dlq",
}
VIDEO_BUCKET = "grokvideo-videos"
INPUT_BUCKET = "grokvideo-inputs"


@pytest.fixture
def deployment(store: JobStore, capture: EventCapture) -> Any:
    """A stack's resources in moto (table, bus, queues, buckets, secret) and the ``Deployment`` the
    command would find for them."""
    from grokvideo.cli.deployment import Deployment

    sqs = boto3.client("sqs")
    s3 = boto3.client("s3")
    outputs = {
        "EventBusName": BUS,
        "EventBusArn": f"arn:aws:events:us-east-1:123456789012:event-bus/{BUS}",
        "EventSource": SOURCE,
        "JobsTableName": TABLE,
        "VideoBucketName": VIDEO_BUCKET,
        "VideoPrefix": "grokvideo/",
        "PollerFunctionName": "grokvideo-poller",
        "RegisterFunctionName": "grokvideo-register",
        "CopierFunctionName": "grokvideo-copier",
        "SubmitFunctionName": "grokvideo-submit",
    }
    for output, name in STACK_OUTPUT_QUEUES.items():
        outputs[output] = sqs.create_queue(QueueName=name)["QueueUrl"]
    for bucket in (VIDEO_BUCKET, INPUT_BUCKET):
        s3.create_bucket(Bucket=bucket)
    secret = boto3.client("secretsmanager").create_secret(Name="grokvideo/cometapi-key", SecretString=API_KEY)
    outputs["ApiKeySecretArn"] = secret["ARN"]
    parameters = {"InputBucketNames": INPUT_BUCKET, "CometApiBaseUrl": "https://api.cometapi.com"}
    return Deployment("grokvideo", outputs, parameters, boto3.Session())


@pytest.fixture
def cli(deployment: Any) -> Any:
    from tests.cli_harness import Cli

    return Cli(deployment)
