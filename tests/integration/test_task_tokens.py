"""Step Functions task tokens end to end in-process: moto runs the example state machine
(examples/step-functions), whose ``events:putEvents.waitForTaskToken`` task puts the request on
the bus and waits; the submit handler, a sweep and the copier make the video; the stack resumes
the task. moto's Step Functions really executes the definition (``execute_state_machine``), so
SendTaskSuccess / SendTaskFailure move a real (moto) execution, and a token used twice is refused.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from moto.core.config import DefaultConfig

from grokvideo import runtime
from grokvideo.archive import VideoArchiver
from grokvideo.copier import Copier, RetryCopy
from grokvideo.errors import TaskResumeError
from grokvideo.events import EventPublisher
from grokvideo.jobs import Job, JobStore
from grokvideo.models import JobState
from grokvideo.sweep import Sweeper
from grokvideo.tasks import StepFunctionsCallbacks, TaskResumer
from grokvideo.urlguard import UrlGuard
from local.fake_cometapi import FakeCometAPI
from tests.handlers import FakeContext
from tests.integration.conftest import API_KEY, BUS, EventCapture
from tests.sqs_batches import receive_batch

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "step-functions" / "statemachine.asl.json"
BUCKET = "grokvideo-videos"
ROLE = "arn:aws:iam::123456789012:role/video-workflow"


@pytest.fixture
def moto_config() -> DefaultConfig:
    """conftest's moto, with Step Functions executing state machines (callbacks included)."""
    return {"stepfunctions": {"execute_state_machine": True}}


@pytest.fixture
def submit(submit_handler: Any) -> Any:
    """The submit handler as deployed: runtime's factories, hence runtime's task resumer."""
    return submit_handler


@pytest.fixture
def workflow(aws: None) -> str:
    """The example state machine on the test's bus."""
    definition = EXAMPLE.read_text().replace("${EventBusName}", BUS)
    sfn = boto3.client("stepfunctions")
    return str(sfn.create_state_machine(name="video-workflow", definition=definition, roleArn=ROLE)["stateMachineArn"])


@pytest.fixture
def resumer(submit: Any) -> TaskResumer:
    """The deployed functions' resumer (runtime.task_resumer): boto3's stepfunctions client, on moto."""
    return runtime.task_resumer()


@pytest.fixture
def bucket(aws: None) -> Any:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3


def make_copier(store: JobStore, publisher: EventPublisher, tasks: TaskResumer, **options: Any) -> Copier:
    archiver = VideoArchiver(UrlGuard(["127.0.0.1"], allow_private=True), boto3.client("s3"), max_video_bytes=2**26)
    return Copier(store, archiver, publisher, bucket=BUCKET, max_receives=3, tasks=tasks, **options)


def start(workflow: str, prompt: str) -> str:
    sfn = boto3.client("stepfunctions")
    name = f"video-{uuid.uuid4().hex[:12]}"  # named: moto names an unnamed execution "None"
    return str(
        sfn.start_execution(stateMachineArn=workflow, name=name, input=json.dumps({"prompt": prompt}))["executionArn"]
    )


def submit_the_request(submit: Any, queue: tuple[str, str]) -> None:
    """What Lambda does with the request the execution put on the bus."""
    batch = receive_batch(*queue, wait=10)
    assert len(batch["Records"]) == 1, "the execution put no request on the bus"
    assert submit.lambda_handler(batch, FakeContext(timeout_seconds=60)) == {"batchItemFailures": []}


def job_with(store: JobStore, fake: FakeCometAPI) -> Job:
    [(_, _, rid)] = fake.create_log
    job = store.get(rid)
    assert job is not None
    return job


def sweep_until_done(make_sweeper: Callable[..., Sweeper], store: JobStore, rid: str, tasks: TaskResumer) -> Job:
    for _ in range(40):
        make_sweeper(tasks=tasks).run()
        job = store.get(rid)
        assert job is not None
        if job.state is not JobState.PENDING:
            return job
        time.sleep(0.2)
    raise AssertionError(f"{rid} still pending")


@pytest.fixture
def run_workflow(
    workflow: str,
    submit: Any,
    submit_queue: tuple[str, str],
    resumer: TaskResumer,
    store: JobStore,
    fake: FakeCometAPI,
    make_sweeper: Callable[..., Sweeper],
) -> Callable[[str], tuple[str, Job]]:
    """Start an execution on a prompt, submit its request and sweep its job until it is no longer
    pending: the execution's ARN and the job."""

    def run(prompt: str) -> tuple[str, Job]:
        execution = start(workflow, prompt)
        submit_the_request(submit, submit_queue)
        return execution, sweep_until_done(make_sweeper, store, job_with(store, fake).request_id, resumer)

    return run


def finished(execution: str, timeout: float = 15) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.1)


def task_output(execution: str) -> dict[str, Any]:
    """What the waiting task was resumed with (its TaskSucceeded event)."""
    history = boto3.client("stepfunctions").get_execution_history(executionArn=execution)["events"]
    [succeeded] = [e for e in history if e["type"] == "TaskSucceeded"]
    return dict(json.loads(succeeded["taskSucceededEventDetails"]["output"]))


def stored_event(capture: EventCapture) -> dict[str, Any]:
    [event] = [e for e in capture.drain() if e["detail-type"] == "Video Stored"]
    return dict(event["detail"])


# --------------------------------------------------------------------------- the three endings


def test_a_stored_video_resumes_the_execution_with_the_video_stored_detail(
    run_workflow: Callable[[str], tuple[str, Job]],
    resumer: TaskResumer,
    store: JobStore,
    publisher: EventPublisher,
    fake: FakeCometAPI,
    capture: EventCapture,
    bucket: Any,
) -> None:
    execution, job = run_workflow("a red fox in fresh snow")
    assert job.task_token and job.client_ref == execution.rsplit(":", 1)[-1]  # $$.Execution.Name
    assert job.state is JobState.SUCCEEDED
    assert finished(execution, timeout=0.5)["status"] == "RUNNING", "a succeeded job does not end the task"

    make_copier(store, publisher, resumer).copy(job.request_id)

    described = finished(execution)
    assert described["status"] == "SUCCEEDED", described
    detail = stored_event(capture)
    assert task_output(execution) == detail  # the task's result is the event's detail, as sent
    assert detail["sha256"] == fake.video_sha256(job.request_id)
    assert json.loads(described["output"]) == {
        "request_id": job.request_id,
        "key": f"videos/{job.request_id}.mp4",
        "s3_uri": f"s3://{BUCKET}/videos/{job.request_id}.mp4",
        "sha256": detail["sha256"],
    }
    stored = store.get(job.request_id)
    assert stored is not None and stored.state is JobState.STORED and stored.outbox is None


def test_a_moderated_job_fails_the_execution_with_its_reason(run_workflow: Callable[[str], tuple[str, Job]]) -> None:
    execution, job = run_workflow("something the provider blocks [moderated]")
    assert (job.state, job.reason) == (JobState.FAILED, "MODERATED")

    described = finished(execution)
    # moto's SendTaskFailure passes the error on but drops the cause; the system test
    # (tests/system/test_task_tokens.py) sees the message arrive as the cause.
    assert (described["status"], described["error"]) == ("FAILED", "MODERATED")


def test_a_rejected_request_fails_the_execution_with_invalid_request(
    workflow: str, submit: Any, submit_queue: tuple[str, str], fake: FakeCometAPI, capture: EventCapture
) -> None:
    execution = start(workflow, "")  # an empty prompt: rejected by validation, nothing created
    submit_the_request(submit, submit_queue)

    described = finished(execution)
    assert (described["status"], described["error"]) == ("FAILED", "INVALID_REQUEST")
    assert fake.create_log == []
    assert [e["detail-type"] for e in capture.drain()] == ["Video Request Rejected"]


# --------------------------------------------------------------------------- at least once


class ClearOutboxCrashes(JobStore):
    """A process that dies after the task was resumed and before the outbox was cleared."""

    def __init__(self, inner: JobStore) -> None:
        self.__dict__.update(inner.__dict__)

    def clear_outbox(self, job: Job, *, now: int) -> Job | None:
        raise RuntimeError("simulated crash before the outbox was cleared")


def test_a_crash_before_the_outbox_is_cleared_resumes_again_and_the_closed_token_is_done(
    run_workflow: Callable[[str], tuple[str, Job]],
    resumer: TaskResumer,
    store: JobStore,
    publisher: EventPublisher,
    capture: EventCapture,
    bucket: Any,
    make_sweeper: Callable[..., Sweeper],
) -> None:
    execution, job = run_workflow("a red fox in fresh snow")
    rid = job.request_id
    with pytest.raises(RetryCopy):  # the copy message comes back; meanwhile the job owes its event
        make_copier(ClearOutboxCrashes(store), publisher, resumer, relay_after=0).copy(rid)
    assert finished(execution)["status"] == "SUCCEEDED"
    owing = store.get(rid)
    assert owing is not None and owing.outbox == "Video Stored"

    # The next sweep relays it: the event again, and SendTaskSuccess on a token Step Functions no
    # longer knows (moto: InvalidToken), which is done, not an error.
    make_sweeper(tasks=resumer).run()

    settled = store.get(rid)
    assert settled is not None and settled.outbox is None and settled.next_poll_at is None
    assert [e["detail-type"] for e in capture.drain()].count("Video Stored") == 2
    assert finished(execution)["status"] == "SUCCEEDED"


class Throttled:
    """Step Functions throttling past botocore's retries."""

    def send_task_success(self, token: str, output: str) -> None:
        raise TaskResumeError("SendTaskSuccess refused: ThrottlingException", code="ThrottlingException")

    def send_task_failure(self, token: str, error: str, cause: str) -> None:
        raise TaskResumeError("SendTaskFailure refused: ThrottlingException", code="ThrottlingException")


def test_a_throttled_resumption_leaves_the_event_owed_until_a_sweep_resumes_the_task(
    run_workflow: Callable[[str], tuple[str, Job]],
    resumer: TaskResumer,
    store: JobStore,
    publisher: EventPublisher,
    bucket: Any,
    make_sweeper: Callable[..., Sweeper],
) -> None:
    execution, job = run_workflow("a red fox in fresh snow")
    rid = job.request_id

    result = make_copier(store, publisher, TaskResumer(Throttled()), relay_after=0).copy(rid)

    assert result.state is JobState.STORED and result.uploaded and not result.announced
    owing = store.get(rid)
    assert owing is not None and owing.outbox == "Video Stored" and owing.next_poll_at is not None
    assert finished(execution, timeout=0.5)["status"] == "RUNNING"
    make_sweeper(tasks=resumer).run()
    assert finished(execution)["status"] == "SUCCEEDED"
    settled = store.get(rid)
    assert settled is not None and settled.outbox is None


# --------------------------------------------------------------------------- the boto3 side


def test_step_functions_errors_become_task_resume_errors_without_the_token(aws: None) -> None:
    client = boto3.client("stepfunctions", config=Config(retries={"total_max_attempts": 1}))
    token = "AQCEAAAAKgAAAAMAAAAAAAAAAf+/" * 30
    callbacks = StepFunctionsCallbacks(client=client)
    with Stubber(client) as stub:
        for code in ("TaskTimedOut", "ThrottlingException"):
            stub.add_client_error(
                "send_task_failure",
                service_error_code=code,
                service_message=f"task {token} gone",
                http_status_code=400,
                expected_params={"taskToken": token, "error": "MODERATED", "cause": "blocked"},
            )
            with pytest.raises(TaskResumeError) as info:
                callbacks.send_task_failure(token, "MODERATED", "blocked")
            assert info.value.code == code and token[:20] not in str(info.value)
        stub.add_response("send_task_success", {}, {"taskToken": token, "output": '{"key":"k"}'})
        callbacks.send_task_success(token, '{"key":"k"}')
        stub.assert_no_pending_responses()


def test_no_function_makes_a_stepfunctions_client_until_a_token_needs_it(aws: None) -> None:
    callbacks = StepFunctionsCallbacks(config=runtime.AWS_CONFIG)
    TaskResumer(callbacks)  # built at cold start, as runtime.task_resumer() is
    assert callbacks._client is None
    assert callbacks.client.meta.service_model.service_name == "stepfunctions"
    assert callbacks.client.meta.config.retries == runtime.AWS_CONFIG.retries


# --------------------------------------------------------------------------- rejections Step Functions did not take


def test_a_rejection_whose_task_was_not_resumed_comes_back(
    store: JobStore, publisher: EventPublisher, fake: FakeCometAPI, capture: EventCapture
) -> None:
    """No outbox holds a rejection: submit puts the request back (and rejects it again later),
    register fails its invocation (EventBridge retries it), as for a refused PutEvents."""
    from grokvideo.cometapi import CometApiClient
    from grokvideo.presign import S3Presigner
    from grokvideo.ratelimit import SharedRateLimiter
    from grokvideo.registration import Registrar
    from grokvideo.reservations import Reservations
    from grokvideo.submitter import RESUME_RETRY_SECONDS, RetryLater, Submitter

    submitter = Submitter(
        store,
        Reservations(store, lease_seconds=120),
        SharedRateLimiter(store.table, "submit", per_second=100),
        CometApiClient(fake.base_url, lambda: API_KEY),
        publisher,
        S3Presigner(boto3.client("s3")),
        tasks=TaskResumer(Throttled()),
    )
    token = "AQCEAAAAKgAAAAMAAAAA" * 20
    detail = {"prompt": "", "task_token": token}  # invalid (an empty prompt), with a valid token
    request = {"id": str(uuid.uuid4()), "detail-type": "Video Generation Requested", "detail": detail}
    with pytest.raises(RetryLater) as info:
        submitter.handle(request, time_left=lambda: 60)
    assert info.value.seconds == RESUME_RETRY_SECONDS

    registrar = Registrar(store, publisher, TaskResumer(Throttled()))
    with pytest.raises(TaskResumeError):
        registrar.register({"request_id": "../etc", "task_token": token}, now=0)
    assert [e["detail-type"] for e in capture.drain()] == ["Video Request Rejected"] * 2
    assert fake.create_log == []
