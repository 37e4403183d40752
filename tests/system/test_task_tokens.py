"""Step Functions on the deployed stack: the example workflow (examples/step-functions) waits for a
video without polling, and the stack's functions resume it from inside the emulator.

The emulator runs Step Functions: the example's ``events:putEvents.waitForTaskToken`` task puts
``Video Generation Requested`` (its token in the detail) on the stack's bus and waits; the submit
function creates the job, the poller and the copier finish it, and SendTaskSuccess (the copier,
for a stored video) or SendTaskFailure (the poller, for a moderated job) resumes the execution.
Locally, tokens are 36-character UUIDs and TimeoutSeconds is enforced (HeartbeatSeconds is not).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from local.fake_cometapi import FakeCometAPI
from tests.system.conftest import FAILED, STORED, SUBMITTED, EventLog, Scenarios, Stack

pytestmark = pytest.mark.system

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "step-functions" / "statemachine.asl.json"


@pytest.fixture(scope="module")
def workflow(stack: Stack) -> str:
    """The example state machine, created on the emulator as `sam deploy` of the example would."""
    iam = stack.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    name = f"systemtest-video-workflow-{uuid.uuid4().hex[:8]}"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    definition = EXAMPLE.read_text().replace("${EventBusName}", stack.bus)
    created = stack.client("stepfunctions").create_state_machine(name=name, definition=definition, roleArn=role)
    return str(created["stateMachineArn"])


def start(stack: Stack, workflow: str, prompt: str) -> tuple[str, str]:
    """Start an execution; returns its ARN and its name (the request's ``client_ref``)."""
    name = f"systemtest-{uuid.uuid4().hex[:12]}"
    started = stack.client("stepfunctions").start_execution(
        stateMachineArn=workflow, name=name, input=json.dumps({"prompt": prompt})
    )
    return str(started["executionArn"]), name


def provider_job(events: EventLog, client_ref: str) -> str:
    """The request_id of the job the execution's request became (its Submitted event)."""
    [submitted] = events.wait_for(
        lambda e: e["detail-type"] == SUBMITTED and e["detail"]["client_ref"] == client_ref, 60, kick=False
    )
    return str(submitted["detail"]["request_id"])


def finished(stack: Stack, execution: str, timeout: float = 60) -> dict[str, Any]:
    sfn = stack.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.5)


def test_a_stored_video_resumes_the_waiting_execution_with_its_detail(
    workflow: str, jobs: Scenarios, events: EventLog, stack: Stack, fake: FakeCometAPI
) -> None:
    execution, name = start(stack, workflow, f"a red fox in fresh snow, systemtest {jobs.run} [ready_after=2]")
    rid = provider_job(events, name)
    jobs.submitted.append(rid)  # the session's checks count it with the submitted jobs
    item = stack.item(rid)
    assert item is not None and len(item["task_token"]) == 36  # the emulator's token: a UUID

    stored = events.wait_for_event(rid, STORED, timeout=120)["detail"]

    described = finished(stack, execution)
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])  # the example's next state, on the task's output
    assert output == {key: stored[key] for key in ("request_id", "key", "s3_uri", "sha256")}
    assert output["sha256"] == fake.video_sha256(rid)
    assert output["s3_uri"] == f"s3://{stack.bucket}/{stored['key']}"


def test_a_moderated_job_fails_the_waiting_execution_with_its_reason(
    workflow: str, jobs: Scenarios, events: EventLog, stack: Stack
) -> None:
    execution, name = start(stack, workflow, f"something blocked, systemtest {jobs.run} [moderated] [ready_after=2]")
    rid = provider_job(events, name)
    jobs.moderated.append(rid)

    failed = events.wait_for_event(rid, FAILED, timeout=90)["detail"]
    assert failed["reason"] == "MODERATED"

    described = finished(stack, execution)
    assert (described["status"], described.get("error")) == ("FAILED", "MODERATED"), described
    assert described.get("cause") == failed["message"]
