"""template.yaml as a scanner and a careful reviewer see it: checkov finds nothing it does not
explain, the stack's optional KMS key reaches everything that can take one (and the roles may use
it only when it is set), and the archive bucket's options and the copier's concurrency do what
their parameters say.

checkov runs from its own virtualenv (`make checkov`, pinned by requirements-checkov.lock); a
skipped check must say why in the template (``Metadata: checkov: skip: [{id, comment}]``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_template import (
    FUNCTIONS,
    NO_VALUE,
    TEMPLATE,
    Intrinsics,
    as_list,
    function_role,
    function_statements,
    of_type,
    props,
)

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venvs" / "checkov" / "bin" / "checkov"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
STACK_KEY = {"kms:Decrypt", "kms:GenerateDataKey"}
# Queues that stay on SQS managed keys whatever KmsKeyArn says (the template says why).
SQS_MANAGED_ONLY = {"PollerScheduleDeadLetterQueue"}


# --------------------------------------------------------------------------- checkov


def _checkov() -> Path | None:
    given = os.environ.get("CHECKOV", "")
    for cand in (Path(given) if given else None, CHECKOV):
        if cand is not None and cand.is_file() and os.access(cand, os.X_OK):
            return cand
    return None


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, Any]:
    checkov = _checkov()
    if checkov is None:
        msg = "checkov not found (CHECKOV or .venvs/checkov/bin/checkov): `make checkov` installs it"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    proc = subprocess.run(
        # --skip-download: the checks as installed, nothing fetched from the vendor's platform.
        [str(checkov), "--file", str(TEMPLATE), "--framework", "cloudformation", "--output", "json", "--skip-download"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # 1: some check failed, reported below
    return dict(json.loads(proc.stdout))


def test_checkov_finds_nothing_the_template_does_not_explain(checkov_report: dict[str, Any]) -> None:
    summary, results = checkov_report["summary"], checkov_report["results"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= 40 and summary["passed"] >= 50  # it read the whole template
    failed = [
        f"{c['check_id']} {c['resource']} (template.yaml:{c['file_line_range'][0]}): {c['check_name']}"
        for c in results["failed_checks"]
    ]
    assert not failed, "checkov failed (fix it, or skip it in the resource's Metadata with why):\n" + "\n".join(failed)


def test_every_skipped_check_says_why(checkov_report: dict[str, Any]) -> None:
    skipped = checkov_report["results"]["skipped_checks"]
    assert skipped  # the template's skips were read
    for check in skipped:
        why = (check.get("check_result") or {}).get("suppress_comment", "")
        assert len(why.split()) >= 8, f"{check['check_id']} {check['resource']}: give the reason ({why!r})"
        assert why != "No comment provided", check["resource"]


# --------------------------------------------------------------------------- the stack's KMS key


def _keys_named(tpl: dict[str, Any], **params: str) -> dict[str, Any]:
    """{resource or place: the key it is encrypted under} for the given parameter values."""
    resolve = Intrinsics(tpl, params)
    res = tpl["Resources"]
    found: dict[str, Any] = {
        "Globals.Function": resolve(tpl["Globals"]["Function"]).get("KmsKeyArn"),
        "JobsTable": resolve(props(res, "JobsTable")["SSESpecification"]).get("KMSMasterKeyId"),
        "ApiKeySecret": resolve(props(res, "ApiKeySecret")).get("KmsKeyId"),
        "AlarmTopic": resolve(props(res, "AlarmTopic")).get("KmsMasterKeyId"),
    }
    for name in of_type(res, "AWS::Logs::LogGroup"):
        found[name] = resolve(props(res, name)).get("KmsKeyId")
    for name in of_type(res, "AWS::SQS::Queue"):
        found[name] = resolve(props(res, name)).get("KmsMasterKeyId")
    (rule,) = resolve(props(res, "VideoBucket")["BucketEncryption"])["ServerSideEncryptionConfiguration"]
    found["VideoBucket"] = rule["ServerSideEncryptionByDefault"].get("KMSMasterKeyID")
    return found


def test_a_given_key_encrypts_everything_that_can_take_one(tpl: dict[str, Any], res: dict[str, Any]) -> None:
    named = _keys_named(tpl, KmsKeyArn=KEY)
    assert len(named) >= 14  # table, secret, topic, environment, 4 log groups, 5 queues, bucket
    assert {place for place, key in named.items() if key != KEY} == SQS_MANAGED_ONLY
    resolve = Intrinsics(tpl, {"KmsKeyArn": KEY})
    for name in set(of_type(res, "AWS::SQS::Queue")) - SQS_MANAGED_ONLY:
        assert "SqsManagedSseEnabled" not in resolve(props(res, name)), name  # one or the other
    (rule,) = resolve(props(res, "VideoBucket")["BucketEncryption"])["ServerSideEncryptionConfiguration"]
    assert rule == {
        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY},
        "BucketKeyEnabled": True,  # a bucket key: a few KMS calls per object, not one per part
    }
    assert resolve(props(res, "JobsTable")["SSESpecification"]) == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": KEY,
    }


def test_without_a_key_aws_keys_and_no_alias_the_alarms_cannot_use(tpl: dict[str, Any], res: dict[str, Any]) -> None:
    assert tpl["Parameters"]["KmsKeyArn"]["Default"] == ""
    assert set(_keys_named(tpl).values()) == {None}
    resolve = Intrinsics(tpl)
    for name, queue in of_type(res, "AWS::SQS::Queue").items():
        assert resolve(queue["Properties"])["SqsManagedSseEnabled"] is True, name
    (rule,) = resolve(props(res, "VideoBucket")["BucketEncryption"])["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert resolve(props(res, "JobsTable")["SSESpecification"])["SSEEnabled"] is True  # aws/dynamodb
    # Never SNS's AWS managed key: CloudWatch alarms cannot publish to a topic under alias/aws/sns.
    assert "aws/sns" not in json.dumps(props(res, "AlarmTopic"))


def test_the_key_parameter_takes_a_key_arn_only(tpl: dict[str, Any]) -> None:
    """A key ARN: IAM grants on it (an alias ARN would grant nothing), and no wildcard."""
    pattern = tpl["Parameters"]["KmsKeyArn"]["AllowedPattern"]
    for ok in ("", KEY, "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"):
        assert re.fullmatch(pattern, ok), ok
    alias = "arn:aws:kms:us-east-1:123456789012:alias/mine"
    for bad in ("*", "alias/aws/sns", alias, "arn:aws:kms:*:*:key/*", KEY + " "):
        assert not re.fullmatch(pattern, bad), bad


def test_roles_use_the_key_only_when_the_stack_has_one(tpl: dict[str, Any], res: dict[str, Any]) -> None:
    for fn in FUNCTIONS:
        policies = props(res, function_role(res, fn))["Policies"]
        conditional = [
            st["Fn::If"] for pol in policies for st in pol["PolicyDocument"]["Statement"] if set(st) == {"Fn::If"}
        ]
        [(_, statement, otherwise)] = [c for c in conditional if c[0] == "UseKmsKey"]
        assert otherwise == NO_VALUE, fn
        assert statement["Sid"] == "UseStackKey" and statement["Effect"] == "Allow", fn
        assert set(as_list(statement["Action"])) == STACK_KEY, fn
        assert statement["Resource"] == {"Ref": "KmsKeyArn"}, fn
        # No other statement names KMS.
        others = [st for st in function_statements(res, fn) if st is not statement]
        assert not any(str(a).startswith("kms:") for st in others for a in as_list(st["Action"])), fn
        for params, granted in (({}, False), ({"KmsKeyArn": KEY}, True)):
            resolved = [st for pol in Intrinsics(tpl, params)(policies) for st in pol["PolicyDocument"]["Statement"]]
            key_statements = [st for st in resolved if st.get("Sid") == "UseStackKey"]
            assert bool(key_statements) is granted, (fn, params)
            if granted:
                assert key_statements[0]["Resource"] == KEY


# --------------------------------------------------------------------------- the bucket's options


def test_video_bucket_versioning_and_access_logs_are_options_off_by_default(tpl: dict[str, Any]) -> None:
    params = tpl["Parameters"]
    assert params["EnableVideoBucketVersioning"]["Default"] == "false"
    assert params["VideoBucketAccessLogBucketName"]["Default"] == ""
    bucket = tpl["Resources"]["VideoBucket"]["Properties"]
    default = Intrinsics(tpl)(bucket)
    assert "VersioningConfiguration" not in default and "LoggingConfiguration" not in default
    on = Intrinsics(tpl, {"EnableVideoBucketVersioning": "true", "VideoBucketAccessLogBucketName": "my-logs"})(bucket)
    assert on["VersioningConfiguration"] == {"Status": "Enabled"}
    assert on["LoggingConfiguration"] == {"DestinationBucketName": "my-logs", "LogFilePrefix": "grokvideo-videos/"}
    assert re.fullmatch(params["VideoBucketAccessLogBucketName"]["AllowedPattern"], "my-logs")
    assert not re.fullmatch(params["VideoBucketAccessLogBucketName"]["AllowedPattern"], "s3://my-logs")


# --------------------------------------------------------------------------- the copier's concurrency


def _copier_concurrency(tpl: dict[str, Any], **params: str) -> tuple[Any, Any]:
    """(reserved concurrency, the copy queue mapping's maximum concurrency) for these parameters."""
    fn = Intrinsics(tpl, params)(props(tpl["Resources"], "CopierFunction"))
    (event,) = fn["Events"].values()
    return fn.get("ReservedConcurrentExecutions"), event["Properties"]["ScalingConfig"]["MaximumConcurrency"]


def test_the_copier_is_reserved_what_its_queue_mapping_may_run(tpl: dict[str, Any]) -> None:
    """Reserved concurrency below the mapping's maximum would throttle deliveries, and a throttled
    delivery still counts as a receive (3 and the copy is dead-lettered): the two stay equal."""
    param = tpl["Parameters"]["CopierReservedConcurrency"]
    assert param["Default"] == 10
    assert _copier_concurrency(tpl) == ("10", "10")
    assert _copier_concurrency(tpl, CopierReservedConcurrency="25") == ("25", "25")
    # 0: unreserved (accounts whose limit is still 10 can reserve nothing), the mapping at 10.
    assert _copier_concurrency(tpl, CopierReservedConcurrency="0") == (None, 10)
    # Within what a mapping takes (2..1000), 0 aside; 1 is refused by the mapping itself.
    assert param["MinValue"] == 0 and param["MaxValue"] <= 1000
