"""What template.yaml does in a real account that the local emulator never shows: what `sam delete`
leaves behind and whether the next deploy of the same stack meets it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
README = ROOT / "README.md"

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


@pytest.fixture(scope="module")
def tpl() -> dict[str, Any]:
    template, matches = decode(str(TEMPLATE))
    assert not matches and template is not None
    return template


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
