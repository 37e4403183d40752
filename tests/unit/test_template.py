"""template.yaml: linted by cfn-lint and `sam validate --lint`, and checked for what the local
emulator accepts but ignores (TTL, PITR, SSE, lifecycle, bucket policy, alarms), so the settings
the real account relies on cannot silently drop out of the template.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

CONTRACT_PARAMETERS = {
    "CometApiBaseUrl": "https://api.cometapi.com",
    "CometApiKeySecretArn": "",
    "EventSource": "grokvideo",
    "AllowedVideoHosts": "vidgen.x.ai",
    "AllowPrivateVideoHosts": "false",
    "PollIntervalSeconds": 60,
    "MaxJobAgeSeconds": 3600,
    "PollConcurrency": 16,
    "MaxVideoBytes": 2147483648,
    "VideoBucketName": "",
    "VideoPrefix": "videos/",
    "LogRetentionDays": 30,
    "EnableSchemaRegistry": "false",
}
CONTRACT_OUTPUTS = {
    "EventBusName",
    "JobsTableName",
    "VideoBucketName",
    "CopyDeadLetterQueueUrl",
    "PollerFunctionName",
    "EventBusArn",
    "CopyQueueUrl",
    "RegisterFunctionName",
    "CopierFunctionName",
    "PollerScheduleDeadLetterQueueUrl",
}
FUNCTIONS = {"PollerFunction": "poller", "RegisterFunction": "register", "CopierFunction": "copier"}


@pytest.fixture(scope="module")
def tpl() -> dict[str, Any]:
    template, matches = decode(str(TEMPLATE))
    assert not matches, [str(m) for m in matches]
    assert template is not None
    return template


@pytest.fixture(scope="module")
def res(tpl: dict[str, Any]) -> dict[str, Any]:
    return tpl["Resources"]


def props(res: dict[str, Any], name: str) -> dict[str, Any]:
    return res[name]["Properties"]


def of_type(res: dict[str, Any], type_: str) -> dict[str, Any]:
    return {k: v for k, v in res.items() if v["Type"] == type_}


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def function_statements(res: dict[str, Any], name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for policy in props(res, name).get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            out += as_list(policy["Statement"])
    return out


def all_allow_statements(res: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every Allow statement of the functions' inline policies and of IAM/queue/bucket policies."""
    found: list[tuple[str, dict[str, Any]]] = []
    for name, r in res.items():
        p = r.get("Properties", {})
        docs: list[Any] = []
        if r["Type"] == "AWS::Serverless::Function":
            docs += [pol for pol in p.get("Policies", []) if isinstance(pol, dict)]
        if r["Type"] in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs += [pol.get("PolicyDocument", {}) for pol in p.get("Policies", [])]
            docs.append(p.get("PolicyDocument", {}))
        if r["Type"] in ("AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy"):
            docs.append(p.get("PolicyDocument", {}))
        for doc in docs:
            for st in as_list(doc.get("Statement", [])):
                if st.get("Effect") == "Allow":
                    found.append((name, st))
    return found


# --------------------------------------------------------------------------- linters


def test_cfn_lint_reports_nothing() -> None:
    matches = lint_file(TEMPLATE, config=ManualArgs(regions=["us-east-1"]))
    serious = [m for m in matches if m.rule.id[0] in ("E", "W")]
    assert not serious, "\n".join(str(m) for m in serious)


def _sam_cli() -> str | None:
    for cand in (
        os.environ.get("SAM_CLI", ""),
        str(ROOT / ".venvs" / "sam" / "bin" / "sam"),
        shutil.which("sam"),
    ):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return None


def test_sam_validate_lint() -> None:
    sam = _sam_cli()
    if sam is None:
        msg = "SAM CLI not found (SAM_CLI, .venvs/sam/bin/sam or PATH): `python local/stack.py venvs` installs it"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        SAM_CLI_TELEMETRY="0",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    proc = subprocess.run(
        [sam, "validate", "--lint", "--template", str(TEMPLATE), "--region", "us-east-1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "is a valid SAM Template" in proc.stdout + proc.stderr


# --------------------------------------------------------------------------- contract


def test_contract_parameters_and_defaults(tpl: dict[str, Any]) -> None:
    params = tpl["Parameters"]
    for name, default in CONTRACT_PARAMETERS.items():
        assert name in params, name
        got = params[name].get("Default")
        assert str(got) == str(default), (name, got)
    assert set(params["AllowPrivateVideoHosts"]["AllowedValues"]) == {"true", "false"}
    assert set(params["EnableSchemaRegistry"]["AllowedValues"]) == {"true", "false"}


def test_contract_outputs(tpl: dict[str, Any]) -> None:
    assert CONTRACT_OUTPUTS <= set(tpl["Outputs"])


def test_globals_runtime_arch_tracing_layer(tpl: dict[str, Any]) -> None:
    g = tpl["Globals"]["Function"]
    assert g["Runtime"] == "python3.13"
    assert list(g["Architectures"]) == ["arm64"]
    assert g["Tracing"] == "Active"
    assert {"Ref": "SharedLayer"} in g["Layers"]
    env = g["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "grokvideo"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "GrokVideo"


def test_environment_names_are_ones_the_package_reads(res: dict[str, Any], tpl: dict[str, Any]) -> None:
    config = (ROOT / "layers" / "shared" / "grokvideo" / "config.py").read_text()
    read = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', config))
    names = set(tpl["Globals"]["Function"]["Environment"]["Variables"])
    per_fn: dict[str, set[str]] = {}
    for fn in FUNCTIONS:
        per_fn[fn] = names | set(props(res, fn).get("Environment", {}).get("Variables", {}))
    unknown = {n for s in per_fn.values() for n in s if n not in read and not n.startswith("POWERTOOLS_")}
    assert not unknown, f"env vars no setting reads: {unknown}"
    assert {
        "TABLE_NAME",
        "EVENT_BUS_NAME",
        "EVENT_SOURCE",
        "COMETAPI_BASE_URL",
        "COMETAPI_KEY_SECRET_ARN",
        "POLL_INTERVAL_SECONDS",
        "MAX_JOB_AGE_SECONDS",
        "POLL_CONCURRENCY",
    } <= per_fn["PollerFunction"]
    assert {
        "TABLE_NAME",
        "EVENT_BUS_NAME",
        "EVENT_SOURCE",
        "VIDEO_BUCKET",
        "VIDEO_PREFIX",
        "ALLOWED_VIDEO_HOSTS",
        "ALLOW_PRIVATE_VIDEO_HOSTS",
        "MAX_VIDEO_BYTES",
    } <= per_fn["CopierFunction"]
    assert {"TABLE_NAME", "EVENT_BUS_NAME", "EVENT_SOURCE"} <= per_fn["RegisterFunction"]
    # The key itself never sits in an environment variable: only the secret's ARN.
    assert not any("API_KEY" in n and not n.endswith("_ARN") for s in per_fn.values() for n in s)


# --------------------------------------------------------------------------- data


def test_jobs_table(res: dict[str, Any]) -> None:
    t = props(res, "JobsTable")
    assert t["BillingMode"] == "PAY_PER_REQUEST"
    assert t["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert t["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert t["SSESpecification"]["SSEEnabled"] is True
    assert list(t["KeySchema"]) == [{"AttributeName": "request_id", "KeyType": "HASH"}]
    attrs = {a["AttributeName"]: a["AttributeType"] for a in t["AttributeDefinitions"]}
    assert attrs == {"request_id": "S", "due_shard": "N", "next_poll_at": "N"}
    (gsi,) = t["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "due"
    assert list(gsi["KeySchema"]) == [
        {"AttributeName": "due_shard", "KeyType": "HASH"},
        {"AttributeName": "next_poll_at", "KeyType": "RANGE"},
    ]
    assert gsi["Projection"]["ProjectionType"] == "ALL"
    assert res["JobsTable"]["DeletionPolicy"] == "Retain"


def test_video_bucket_private_encrypted_and_cleaned(res: dict[str, Any]) -> None:
    b = props(res, "VideoBucket")
    assert res["VideoBucket"]["Condition"] == "CreateVideoBucket"
    assert all(
        b["PublicAccessBlockConfiguration"][k] is True
        for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    )
    (sse,) = b["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert b["OwnershipControls"]["Rules"][0]["ObjectOwnership"] == "BucketOwnerEnforced"
    assert b.get("VersioningConfiguration", {}).get("Status") != "Enabled"
    rules = b["LifecycleConfiguration"]["Rules"]
    assert any(
        r["Status"] == "Enabled" and r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1 for r in rules
    )


def test_bucket_policy_denies_plain_http(res: dict[str, Any]) -> None:
    pol = props(res, "VideoBucketPolicy")
    assert pol["Bucket"] == {"Ref": "VideoBucket"}
    denies = [s for s in pol["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(
        s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
        and s["Principal"] == "*"
        and len(as_list(s["Resource"])) == 2
        for s in denies
    )


def test_schema_registry_only_under_its_condition(res: dict[str, Any]) -> None:
    schemas = {k: v for k, v in res.items() if v["Type"].startswith("AWS::EventSchemas::")}
    assert all(v.get("Condition") == "SchemaRegistryEnabled" for v in schemas.values())


# --------------------------------------------------------------------------- queues and routing


def test_copy_queue_visibility_and_redrive(res: dict[str, Any], tpl: dict[str, Any]) -> None:
    q = props(res, "CopyQueue")
    timeout = int(props(res, "CopierFunction")["Timeout"])
    assert int(q["VisibilityTimeout"]) >= 6 * timeout
    max_receives = {"Fn::FindInMap": ["Copy", "Queue", "MaxReceiveCount"]}
    assert q["RedrivePolicy"]["maxReceiveCount"] == max_receives
    assert tpl["Mappings"]["Copy"]["Queue"]["MaxReceiveCount"] == 3
    # The copier knows which receive is its last, to settle the job instead of retrying.
    assert props(res, "CopierFunction")["Environment"]["Variables"]["COPY_MAX_RECEIVES"] == "3"
    assert q["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["CopyDeadLetterQueue", "Arn"]}
    assert int(q["MessageRetentionPeriod"]) == 4 * 86400


def test_environment_values_are_strings_or_intrinsics(res: dict[str, Any], tpl: dict[str, Any]) -> None:
    """Lambda takes strings only; ministack passes a literal or mapped number through as an int
    and the function then fails before its handler runs."""
    env_maps = [tpl["Globals"]["Function"]["Environment"]["Variables"]]
    env_maps += [props(res, fn).get("Environment", {}).get("Variables", {}) for fn in FUNCTIONS]
    for env in env_maps:
        for name, value in env.items():
            assert isinstance(value, str) or (isinstance(value, dict) and "Fn::FindInMap" not in value), name


def test_every_queue_encrypted_and_dead_letters_kept_14_days(res: dict[str, Any]) -> None:
    for name, q in of_type(res, "AWS::SQS::Queue").items():
        assert q["Properties"].get("SqsManagedSseEnabled") is True, name
        if "DeadLetter" in name:
            assert int(q["Properties"]["MessageRetentionPeriod"]) == 14 * 86400, name


def test_copier_sqs_event_reports_partial_failures(res: dict[str, Any]) -> None:
    (event,) = props(res, "CopierFunction")["Events"].values()
    assert event["Type"] == "SQS"
    p = event["Properties"]
    assert p["Queue"] == {"Fn::GetAtt": ["CopyQueue", "Arn"]}
    assert list(p["FunctionResponseTypes"]) == ["ReportBatchItemFailures"]
    assert 1 <= int(p["BatchSize"]) <= 10


def test_copy_rule_routes_our_succeeded_events(res: dict[str, Any]) -> None:
    rule = props(res, "CopyRule")
    assert rule["EventBusName"] == {"Ref": "EventBus"}
    assert rule["EventPattern"] == {
        "source": [{"Ref": "EventSource"}],
        "detail-type": ["Video Generation Succeeded"],
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["CopyQueue", "Arn"]}
    assert "DeadLetterConfig" in target and "RetryPolicy" in target


def test_queue_policies_admit_only_our_rules(res: dict[str, Any]) -> None:
    policies = of_type(res, "AWS::SQS::QueuePolicy")
    covered = set()
    for pol in policies.values():
        for st in pol["Properties"]["PolicyDocument"]["Statement"]:
            assert st["Principal"] == {"Service": "events.amazonaws.com"}
            assert st["Action"] == "sqs:SendMessage"
            assert "aws:SourceArn" in st["Condition"]["ArnEquals"]
        covered |= {q["Ref"] for q in pol["Properties"]["Queues"]}
    assert {"CopyQueue", "CopyDeadLetterQueue", "RegisterDeadLetterQueue"} <= covered


def test_register_rule_takes_track_requests_from_others(res: dict[str, Any]) -> None:
    (event,) = props(res, "RegisterFunction")["Events"].values()
    assert event["Type"] == "EventBridgeRule"
    p = event["Properties"]
    assert p["EventBusName"] == {"Ref": "EventBus"}
    assert p["Pattern"]["detail-type"] == ["Video Job Track Requested"]
    assert p["Pattern"]["source"] == [{"anything-but": [{"Ref": "EventSource"}]}]
    assert p["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["RegisterDeadLetterQueue", "Arn"]}
    assert "RetryPolicy" in p
    # Events the function itself fails on (async invoke) are not the rule's: they need the
    # function's own dead-letter queue, or Lambda drops them after its retries.
    fn = props(res, "RegisterFunction")
    assert fn["DeadLetterQueue"] == {"Type": "SQS", "TargetArn": {"Fn::GetAtt": ["RegisterDeadLetterQueue", "Arn"]}}


def test_poller_schedule_every_minute_with_dead_letters(res: dict[str, Any]) -> None:
    p = props(res, "PollerFunction")
    assert int(p["Timeout"]) > 60  # a sweep may use most of its minute
    (event,) = p["Events"].values()
    assert event["Type"] == "ScheduleV2"
    e = event["Properties"]
    assert e["ScheduleExpression"] == "rate(1 minute)"
    assert e["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["PollerScheduleDeadLetterQueue", "Arn"]}
    assert "RetryPolicy" in e


# --------------------------------------------------------------------------- IAM


def test_no_wildcard_actions_in_allow_statements(res: dict[str, Any]) -> None:
    for name, st in all_allow_statements(res):
        for action in as_list(st["Action"]):
            assert action != "*" and not str(action).endswith(":*"), (name, action)


def test_put_events_only_with_our_source(res: dict[str, Any]) -> None:
    count = 0
    for fn in FUNCTIONS:
        for st in function_statements(res, fn):
            if "events:PutEvents" in as_list(st["Action"]):
                count += 1
                assert st["Condition"]["StringEquals"]["events:source"] == {"Ref": "EventSource"}, fn
                assert st["Resource"] == {"Fn::GetAtt": ["EventBus", "Arn"]}, fn
    assert count == len(FUNCTIONS)


def test_least_privilege_per_function(res: dict[str, Any]) -> None:
    def actions(fn: str) -> set[str]:
        return {a for st in function_statements(res, fn) for a in as_list(st["Action"])}

    assert actions("PollerFunction") == {
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "events:PutEvents",
        "secretsmanager:GetSecretValue",
    }
    assert actions("RegisterFunction") == {"dynamodb:PutItem", "events:PutEvents"}
    assert actions("CopierFunction") == {
        "s3:PutObject",
        "s3:GetObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
        "s3:PutObjectTagging",
        "s3:GetObjectTagging",
        "s3:ListBucket",
        "s3:ListBucketMultipartUploads",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "events:PutEvents",
    }
    for fn in FUNCTIONS:
        for st in function_statements(res, fn):
            assert st["Resource"] != "*", (fn, st)
    query = [st for st in function_statements(res, "PollerFunction") if st["Action"] == "dynamodb:Query"]
    assert query[0]["Resource"] == {"Fn::Sub": "${JobsTable.Arn}/index/due"}
    (s3,) = [st for st in function_statements(res, "CopierFunction") if "s3:PutObject" in st["Action"]]
    assert "${VideoPrefix}*" in s3["Resource"]["Fn::Sub"][0]


# --------------------------------------------------------------------------- operations


def test_every_function_logs_to_its_own_group_with_retention(res: dict[str, Any]) -> None:
    for fn, short in FUNCTIONS.items():
        p = props(res, fn)
        assert p["FunctionName"] == {"Fn::Sub": f"${{AWS::StackName}}-{short}"}
        group_ref = p["LoggingConfig"]["LogGroup"]["Ref"]
        group = res[group_ref]
        assert group["Type"] == "AWS::Logs::LogGroup"
        assert group["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{short}"}
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert p["CodeUri"] == f"functions/{short}"
        assert p["Handler"] == "app.lambda_handler"
        assert res[fn]["Metadata"]["BuildMethod"] == "makefile"
        assert (ROOT / "functions" / short / "Makefile").is_file()


def test_dead_letter_queues_have_alarms(res: dict[str, Any]) -> None:
    alarms = of_type(res, "AWS::CloudWatch::Alarm")
    watched = set()
    for a in alarms.values():
        p = a["Properties"]
        if p.get("Namespace") == "AWS/SQS" and p["MetricName"] == "ApproximateNumberOfMessagesVisible":
            (dim,) = p["Dimensions"]
            watched.add(dim["Value"]["Fn::GetAtt"][0])
            assert p["Threshold"] == 0 and p["ComparisonOperator"] == "GreaterThanThreshold"
    assert {"CopyDeadLetterQueue", "PollerScheduleDeadLetterQueue", "RegisterDeadLetterQueue"} <= watched


def test_provider_auth_and_poller_error_alarms(res: dict[str, Any]) -> None:
    alarms = [a["Properties"] for a in of_type(res, "AWS::CloudWatch::Alarm").values()]
    auth = [a for a in alarms if a.get("MetricName") == "ProviderAuthFailures"]
    assert len(auth) == 1
    assert auth[0]["Namespace"] == "GrokVideo"
    assert list(auth[0]["Dimensions"]) == [{"Name": "service", "Value": "grokvideo"}]
    assert auth[0]["Threshold"] == 1 and auth[0]["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    errors = [a for a in alarms if a.get("Namespace") == "AWS/Lambda" and a["MetricName"] == "Errors"]
    assert any(a["Dimensions"][0]["Value"] == {"Ref": "PollerFunction"} for a in errors)
    assert all(a.get("AlarmActions") for a in alarms)


def test_shared_layer_is_built_by_makefile_without_boto(res: dict[str, Any]) -> None:
    layer = res["SharedLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["ContentUri"] == "layers/shared"
    assert list(layer["Properties"]["CompatibleRuntimes"]) == ["python3.13"]
    makefile = (ROOT / "layers" / "shared" / "Makefile").read_text()
    assert "build-SharedLayer:" in makefile
    assert "--platform manylinux2014_aarch64" in makefile and "--python-version 3.13" in makefile
    assert re.search(r"RUNTIME_PROVIDED :=.*\bboto3\b.*\bbotocore\b", makefile)
    reqs = (ROOT / "layers" / "shared" / "requirements.txt").read_text()
    assert not re.search(r"^\s*(boto3|botocore)\b", reqs, re.M)


def test_secret_arn_not_ref_of_a_name_when_given(res: dict[str, Any]) -> None:
    """The poller reads the secret by ARN: the parameter when given, else the stack's own secret."""
    env = props(res, "PollerFunction")["Environment"]["Variables"]
    assert env["COMETAPI_KEY_SECRET_ARN"] == {
        "Fn::If": ["CreateApiKeySecret", {"Ref": "ApiKeySecret"}, {"Ref": "CometApiKeySecretArn"}]
    }
    (st,) = [s for s in function_statements(res, "PollerFunction") if s["Action"] == "secretsmanager:GetSecretValue"]
    assert st["Resource"] == env["COMETAPI_KEY_SECRET_ARN"]
