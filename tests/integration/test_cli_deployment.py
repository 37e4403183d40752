"""How the command finds a deployed stack (``Deployment.from_stack``), against moto's CloudFormation."""

from __future__ import annotations

import json

import boto3
import pytest

from grokvideo.cli.deployment import Deployment
from grokvideo.cli.exits import CliError, ExitCode

QUEUE_STACK = {
    "Parameters": {"EventSource": {"Type": "String", "Default": "grokvideo"}},
    "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
    "Outputs": {"CopyQueueUrl": {"Value": {"Ref": "Queue"}}},
}


def test_a_stack_that_is_there_gives_its_outputs_and_parameters(aws: None) -> None:
    boto3.client("cloudformation").create_stack(
        StackName="videos-prod",
        TemplateBody=json.dumps(QUEUE_STACK),
        Parameters=[{"ParameterKey": "EventSource", "ParameterValue": "acme.videos"}],
    )
    deployment = Deployment.from_stack("videos-prod", region="us-east-1")
    assert boto3.client("sqs").list_queues()["QueueUrls"] == [deployment.output("CopyQueueUrl")]
    assert deployment.parameters["EventSource"] == "acme.videos"


def test_a_stack_that_is_not_there_says_what_to_do(aws: None) -> None:
    with pytest.raises(CliError) as refused:
        Deployment.from_stack("no-such-stack", region="eu-west-1")
    assert refused.value.code == ExitCode.STACK
    assert refused.value.message == (
        "no stack named 'no-such-stack' in eu-west-1: deploy it (sam deploy) or pass --stack/--region"
    )


def test_an_output_an_older_stack_lacks_is_a_clear_stack_error(aws: None) -> None:
    boto3.client("cloudformation").create_stack(StackName="old", TemplateBody=json.dumps(QUEUE_STACK))
    deployment = Deployment.from_stack("old", region="us-east-1")
    with pytest.raises(CliError) as missing:
        deployment.output("JobsTableName")
    assert missing.value.code == ExitCode.STACK
    assert "has no output JobsTableName: redeploy it" in missing.value.message
