"""What template.yaml does in a real account that the local emulator never shows: what `sam delete`
leaves behind and whether the next deploy of the same stack meets it.
"""

from __future__ import annotations

import doctest
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from local.deploy import LOCAL_PARAMETER_DEFAULTS
from tests.schema_check import sample_output_events
from tests.unit.test_template import Intrinsics, pattern_matches

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
README = ROOT / "README.md"
EVENTS = ROOT / "events"

# Resource types the local emulator (ministack) refuses to deploy: locally their conditions are off.
REJECTED_LOCALLY = ("AWS::EventSchemas::", "AWS::Events::Archive", "AWS::Events::EventBusPolicy")

# The property that fixes a resource's physical name, per type. A retained resource of a type not
# listed here fails the test below until its name property is added (or found to have none).
NAME_PROPERTY = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::KMS::Key": "",  # keys have no name (aliases are separate resources)
}


def retained(tpl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Resources a stack deletion leaves behind (DeletionPolicy Retain or RetainExceptOnCreate)."""
    return {k: v for k, v in tpl["Resources"].items() if v.get("DeletionPolicy", "Delete").startswith("Retain")}


def refers_to(node: Any, logical_id: str) -> bool:
    """Whether a value reads the resource (Ref, GetAtt, or ${Id} / ${Id.Attr} in a Sub).

    >>> refers_to({"Fn::If": ["C", {"Ref": "Secret"}, {"Ref": "Param"}]}, "Secret")
    True
    >>> refers_to({"Fn::Sub": "${SecretX.Arn}"}, "Secret")
    False
    """
    if isinstance(node, list):
        return any(refers_to(n, logical_id) for n in node)
    if isinstance(node, str):
        return False
    if not isinstance(node, dict):
        return False
    if node.get("Ref") == logical_id:
        return True
    att = node.get("Fn::GetAtt")
    if isinstance(att, list) and att and att[0] == logical_id:
        return True
    sub = node.get("Fn::Sub")
    text = sub if isinstance(sub, str) else sub[0] if isinstance(sub, list) else None
    if text is not None and re.search(r"\$\{" + re.escape(logical_id) + r"(\.[^}]*)?\}", text):
        return True
    return any(refers_to(v, logical_id) for v in node.values())


def readme_section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"README.md has no section '## {title}'"
    return match[1]


def test_no_retained_resource_has_a_fixed_name(tpl: dict[str, Any]) -> None:
    """A retained resource outlives `sam delete`; with a fixed name, deploying the same stack again
    would fail creating it (the name is taken by the one left behind)."""
    found = retained(tpl)
    assert {"JobsTable", "VideoBucket", "ApiKeySecret"} <= set(found)
    for name, resource in found.items():
        assert resource["Type"] in NAME_PROPERTY, f"{name}: add the name property of {resource['Type']}"
        prop = NAME_PROPERTY[resource["Type"]]
        assert not prop or prop not in resource.get("Properties", {}), f"{name} is retained and named ({prop})"


def test_the_stack_secret_is_found_through_an_output(tpl: dict[str, Any]) -> None:
    """With no name to guess, the secret's ARN comes from ApiKeySecretArn, the given one or the stack's."""
    secret = tpl["Resources"]["ApiKeySecret"]
    assert secret["Condition"] == "CreateApiKeySecret"
    assert "Name" not in secret["Properties"]
    assert tpl["Conditions"]["CreateApiKeySecret"] == {"Fn::Equals": [{"Ref": "CometApiKeySecretArn"}, ""]}
    assert tpl["Outputs"]["ApiKeySecretArn"]["Value"] == {
        "Fn::If": ["CreateApiKeySecret", {"Ref": "ApiKeySecret"}, {"Ref": "CometApiKeySecretArn"}]
    }


def test_the_readme_no_longer_promises_a_fixed_secret_name() -> None:
    """The README told users the stack creates `<stack>/cometapi-key`; it must say where the key goes now."""
    deploy = readme_section("Deploy to AWS")
    assert "ApiKeySecretArn" in deploy and "put-secret-value" in deploy
    assert not re.search(r"creates an empty\s+secret `<stack>/cometapi-key`", deploy)


def test_clean_up_removes_every_retained_resource(tpl: dict[str, Any]) -> None:
    """Each retained resource is named in "Clean up" by the output that holds its name or ARN, with
    a command that deletes it."""
    section = readme_section("Clean up")
    outputs = tpl["Outputs"]
    for name in retained(tpl):
        holders = [out for out, spec in outputs.items() if refers_to(spec["Value"], name)]
        assert holders, f"{name} is retained but no output names it: nobody could find it to delete it"
        assert any(out in section for out in holders), f"Clean up does not say how to find {name} ({holders})"
    for command in ("aws dynamodb delete-table", "aws s3 rb", "aws secretsmanager delete-secret"):
        assert command in section, command


# --------------------------------------------------------------------------- archive and replay


def _input_samples() -> list[dict[str, Any]]:
    out = []
    for path in sorted(EVENTS.glob("*.json")):
        event = json.loads(path.read_text())
        if "detail-type" in event:
            out.append(event)
    return out


def test_the_archive_keeps_every_output_event_and_no_input(tpl: dict[str, Any]) -> None:
    archive = tpl["Resources"]["EventArchive"]
    assert archive["Type"] == "AWS::Events::Archive"
    props = archive["Properties"]
    assert props["SourceArn"] == {"Fn::GetAtt": ["EventBus", "Arn"]}
    assert props["RetentionDays"] == {"Ref": "EventArchiveRetentionDays"}
    pattern = props["EventPattern"]
    outputs = [{"source": "grokvideo", "detail-type": e.detail_type.value} for e in sample_output_events().values()]
    assert len(outputs) == 6
    assert all(pattern_matches(pattern, e) for e in outputs)
    inputs = _input_samples()
    assert inputs and not any(pattern_matches(pattern, e) for e in inputs)


def test_archive_retention_zero_means_no_archive(tpl: dict[str, Any]) -> None:
    """EventBridge reads RetentionDays 0 as "keep forever"; the stack reads it as "no archive"."""
    assert tpl["Parameters"]["EventArchiveRetentionDays"]["Default"] == 14
    assert tpl["Resources"]["EventArchive"]["Condition"] == "ArchiveEvents"
    assert Intrinsics(tpl).condition("ArchiveEvents")
    assert Intrinsics(tpl, {"EventArchiveRetentionDays": "1"}).condition("ArchiveEvents")
    assert not Intrinsics(tpl, {"EventArchiveRetentionDays": "0"}).condition("ArchiveEvents")
    arn = tpl["Outputs"]["EventArchiveArn"]
    assert arn["Condition"] == "ArchiveEvents" and arn["Value"] == {"Fn::GetAtt": ["EventArchive", "Arn"]}


def test_every_output_the_readme_reads_exists(tpl: dict[str, Any]) -> None:
    """The README's commands read outputs by name (OutputKey=='X', `out X`): each is a real output."""
    text = README.read_text(encoding="utf-8")
    named = set(re.findall(r"OutputKey=='(\w+)'", text)) | set(re.findall(r"\$\(out (\w+)\)", text))
    named.discard("$1")
    assert {"EventArchiveArn", "EventBusArn", "ApiKeySecretArn", "JobsTableName"} <= named
    assert named <= set(tpl["Outputs"]), sorted(named - set(tpl["Outputs"]))


def test_the_replay_recipe_replays_to_the_callers_rule_only() -> None:
    replay = re.search(r"^### Replay\n(.*?)(?=^##)", README.read_text(encoding="utf-8"), re.S | re.M)
    assert replay
    command = re.search(r"aws events start-replay.*?\n(?=\S)", replay[1], re.S)
    assert command, "no start-replay command"
    for option in ('--event-source-arn "$(out EventArchiveArn)"', "$(out EventBusArn)", "FilterArns"):
        assert option in command[0], option


# --------------------------------------------------------------------------- other accounts


def test_no_bus_policy_without_consumer_accounts(tpl: dict[str, Any]) -> None:
    assert tpl["Parameters"]["ConsumerAccountIds"]["Default"] == ""
    assert tpl["Resources"]["ConsumerRulesPolicy"]["Condition"] == "HasConsumerAccounts"
    assert not Intrinsics(tpl).condition("HasConsumerAccounts")
    assert Intrinsics(tpl, {"ConsumerAccountIds": "111122223333"}).condition("HasConsumerAccounts")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("", True),
        ("111122223333", True),
        ("111122223333,444455556666", True),
        ("111122223333, 444455556666", False),
        ("111122223333,", False),
        ("11112222333", False),
        ("arn:aws:iam::111122223333:root", False),
    ],
)
def test_consumer_account_ids_are_twelve_digit_ids(tpl: dict[str, Any], value: str, ok: bool) -> None:
    pattern = tpl["Parameters"]["ConsumerAccountIds"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is ok


def test_consumer_accounts_manage_only_their_own_rules_on_our_source(tpl: dict[str, Any]) -> None:
    """EventBridge's documented statement for rules other accounts create on a bus: the listed
    accounts, rule actions only, rules of this bus only, each account its own rules (creatorAccount
    is the caller's account), and rules that name a source name ours."""
    policy = tpl["Resources"]["ConsumerRulesPolicy"]
    assert policy["Type"] == "AWS::Events::EventBusPolicy"
    props = Intrinsics(tpl, {"ConsumerAccountIds": "111122223333,444455556666"})(policy["Properties"])
    assert props["EventBusName"] == "<EventBus>"
    st = props["Statement"]
    assert st["Effect"] == "Allow"
    assert st["Principal"] == {"AWS": ["111122223333", "444455556666"]}
    actions = set(st["Action"])
    assert {"events:PutRule", "events:PutTargets", "events:DeleteRule", "events:RemoveTargets"} <= actions
    assert all(a.startswith("events:") and "*" not in a for a in actions)
    assert not actions & {"events:PutEvents", "events:PutPermission", "events:StartReplay"}
    assert st["Resource"] == "arn:aws:events:us-east-1:123456789012:rule/<EventBus>/*"
    assert st["Condition"] == {
        "StringEqualsIfExists": {"events:creatorAccount": "${aws:PrincipalAccount}", "events:source": "grokvideo"}
    }


def test_the_local_stack_leaves_off_what_the_emulator_rejects(tpl: dict[str, Any]) -> None:
    """`local/stack.py up` deploys with LOCAL_PARAMETER_DEFAULTS: ministack refuses these types
    ("Unrecognized resource types") unless their condition is off."""
    local = Intrinsics(tpl, dict(LOCAL_PARAMETER_DEFAULTS))
    on = [
        name
        for name, r in tpl["Resources"].items()
        if r["Type"].startswith(REJECTED_LOCALLY) and ("Condition" not in r or local.condition(r["Condition"]))
    ]
    assert on == []
    assert Intrinsics(tpl).condition("ArchiveEvents"), "the archive is on by default in a real account"


# --------------------------------------------------------------------------- SAM workflows


def test_sam_workflow_commands_name_real_functions_and_sample_files(tpl: dict[str, Any]) -> None:
    section = readme_section("SAM workflows")
    functions = {k for k, v in tpl["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    invoked = re.findall(r"sam remote invoke (\w+) --stack-name \S+ --event-file (\S+)", section)
    assert {"PollerFunction", "RegisterFunction"} <= {name for name, _ in invoked}
    for name, path in invoked:
        assert name in functions, name
        assert (ROOT / path).is_file(), path
    logged = set(re.findall(r"sam logs --stack-name \S+ -n (\w+)", section))
    assert logged and logged <= functions, logged - functions
    for command in ("sam sync --watch", "sam logs --stack-name grokvideo --tail"):
        assert command in section, command


def test_license_is_the_mit_text_pyproject_declares() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert 'license = "MIT"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n\nCopyright (c) 2026 The grokvideo authors\n")
    assert "Permission is hereby granted, free of charge" in text


def test_the_helpers_examples_run() -> None:
    result = doctest.testmod(sys.modules[__name__])
    assert result.attempted and not result.failed
