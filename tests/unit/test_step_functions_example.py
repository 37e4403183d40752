"""examples/step-functions: the "generate, wait, then use the video" workflow is valid and keeps to
the contract (the request it puts, the token it passes, every error the stack can fail it with).
moto runs it in tests/integration/test_task_tokens.py, the local emulator in tests/system."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint, lint_file
from cfnlint.decode import decode

from grokvideo.events import INVALID_REQUEST, DetailType
from grokvideo.models import ArchiveFailureReason, FailureReason
from grokvideo.validation import parse_generation_request

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "step-functions"
ASL = EXAMPLE / "statemachine.asl.json"
SAM = EXAMPLE / "template.yaml"
MAX_JOB_AGE_SECONDS = 3600  # the stack's default MaxJobAgeSeconds: a job ends TIMED_OUT by then


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    return dict(json.loads(ASL.read_text()))


@pytest.fixture(scope="module")
def wait(asl: dict[str, Any]) -> dict[str, Any]:
    return dict(asl["States"][asl["StartAt"]])


def test_the_sam_snippet_passes_cfn_lint() -> None:
    matches = lint_file(SAM, config=ManualArgs(regions=["us-east-1"]))
    assert [str(m) for m in matches] == []


def test_the_definition_passes_cfn_lints_state_machine_checks(asl: dict[str, Any]) -> None:
    """The ASL inline in a plain state machine, where cfn-lint validates its structure (E3601)."""

    def lint_definition(definition: dict[str, Any]) -> list[str]:
        machine = {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "RoleArn": "arn:aws:iam::123456789012:role/video-workflow",
                "Definition": definition,
                "DefinitionSubstitutions": {"EventBusName": "grokvideo-bus"},
            },
        }
        template = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"VideoWorkflow": machine}}
        return [str(m) for m in lint(json.dumps(template), config=ManualArgs(regions=["us-east-1"]))]

    assert lint_definition(asl) == []
    broken = json.loads(json.dumps(asl))
    broken["States"]["NoVideo"]["Type"] = "Fial"
    assert any("E3601" in m for m in lint_definition(broken))  # the check looks at the definition


def test_the_snippet_is_a_standard_workflow_on_the_stacks_exported_bus() -> None:
    template, errors = decode(str(SAM))
    assert template is not None, errors
    [machine] = template["Resources"].values()
    props = machine["Properties"]
    assert machine["Type"] == "AWS::Serverless::StateMachine"
    assert props["Type"] == "STANDARD"  # Express workflows cannot wait for a callback
    assert props["DefinitionUri"] == ASL.name
    bus = {"Fn::ImportValue": "grokvideo-EventBusName"}
    assert props["DefinitionSubstitutions"] == {"EventBusName": bus}
    assert props["Policies"] == [{"EventBridgePutEventsPolicy": {"EventBusName": bus}}]


def test_the_task_puts_a_generation_request_with_its_token_and_waits(wait: dict[str, Any]) -> None:
    assert wait["Type"] == "Task"
    assert wait["Resource"] == "arn:aws:states:::events:putEvents.waitForTaskToken"
    [entry] = wait["Parameters"]["Entries"]
    assert entry["EventBusName"] == "${EventBusName}"
    assert entry["DetailType"] == DetailType.GENERATION_REQUESTED
    assert entry["Source"] != "grokvideo"  # the submit rule takes requests from any source but the stack's
    assert entry["Detail"]["task_token.$"] == "$$.Task.Token"
    # What the detail becomes once Step Functions fills in the paths is a valid request.
    filled = {k.removesuffix(".$"): "x" for k in entry["Detail"]}
    assert parse_generation_request(filled).task_token == "x"


def test_the_wait_has_a_timeout_beyond_the_stacks_own_deadline(wait: dict[str, Any]) -> None:
    assert "HeartbeatSeconds" not in wait  # nothing sends heartbeats
    assert wait["TimeoutSeconds"] > MAX_JOB_AGE_SECONDS + 1800  # a TIMED_OUT job, then a slow copy


def test_every_error_the_stack_fails_a_task_with_is_caught(asl: dict[str, Any], wait: dict[str, Any]) -> None:
    [catch] = wait["Catch"]
    reasons = {r.value for r in FailureReason} | {r.value for r in ArchiveFailureReason} | {INVALID_REQUEST}
    assert set(catch["ErrorEquals"]) == reasons | {"States.Timeout"}
    failed = asl["States"][catch["Next"]]
    assert failed["Type"] == "Fail"
    assert (failed["ErrorPath"], failed["CausePath"]) == (
        f"{catch['ResultPath']}.Error",
        f"{catch['ResultPath']}.Cause",
    )


def test_the_next_state_uses_the_stored_video(asl: dict[str, Any], wait: dict[str, Any]) -> None:
    assert "ResultPath" not in wait  # the task's output is the Video Stored detail itself
    use = asl["States"][wait["Next"]]
    assert use["Parameters"]["key.$"] == "$.key" and use["Parameters"]["s3_uri.$"] == "$.s3_uri"
    assert use.get("End") is True
