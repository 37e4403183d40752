"""template.yaml: linted by cfn-lint and `sam validate --lint`, and checked for what the local
emulator accepts but ignores (TTL, PITR, SSE, lifecycle, bucket policy, alarms), so the settings
the real account relies on cannot silently drop out of the template.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file

from grokvideo.copier import RETRY_DELAYS
from grokvideo.jobs import DUE_INDEX, REF_INDEX, STATE_INDEX, DueJob, JobSummary
from grokvideo.ratelimit import LIMITER_PREFIX
from tests.schema_check import assert_valid_entry

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"

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
    "SubmitRatePerSecond": 1,
    "InputBucketNames": "",
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
    "SubmitQueueUrl",
    "SubmitDeadLetterQueueUrl",
    "SubmitFunctionName",
}
FUNCTIONS = {
    "PollerFunction": "poller",
    "RegisterFunction": "register",
    "CopierFunction": "copier",
    "SubmitFunction": "submit",
}
NO_VALUE = {"Ref": "AWS::NoValue"}


def props(res: dict[str, Any], name: str) -> dict[str, Any]:
    return res[name]["Properties"]


def of_type(res: dict[str, Any], type_: str) -> dict[str, Any]:
    return {k: v for k, v in res.items() if v["Type"] == type_}


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """A policy document's statements, a conditional one (``Fn::If [cond, st, AWS::NoValue]``)
    counted by each branch that is a statement, so no check can skip it."""
    out: list[dict[str, Any]] = []
    for st in as_list(doc.get("Statement", [])):
        if isinstance(st, dict) and set(st) == {"Fn::If"}:
            out += [branch for branch in st["Fn::If"][1:] if branch != NO_VALUE]
        else:
            out.append(st)
    return out


def function_role(res: dict[str, Any], name: str) -> str:
    """The logical id of the role a function runs as (the template's own, ``Role: !GetAtt X.Arn``)."""
    role = props(res, name)["Role"]
    assert set(role) == {"Fn::GetAtt"} and role["Fn::GetAtt"][1] == "Arn", (name, role)
    assert res[role["Fn::GetAtt"][0]]["Type"] == "AWS::IAM::Role", (name, role)
    return str(role["Fn::GetAtt"][0])


def function_policies(res: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The policy documents of a function's role."""
    return [pol["PolicyDocument"] for pol in props(res, function_role(res, name)).get("Policies", [])]


def conditional_statements(res: dict[str, Any], name: str) -> dict[str, list[Any]]:
    """A function's ``Fn::If`` statements by condition: {condition: [if-true, if-false]}."""
    out: dict[str, list[Any]] = {}
    for policy in function_policies(res, name):
        if isinstance(policy, dict):
            for st in as_list(policy.get("Statement", [])):
                if isinstance(st, dict) and set(st) == {"Fn::If"}:
                    cond, if_true, if_false = st["Fn::If"]
                    out[cond] = [if_true, if_false]
    return out


def function_statements(res: dict[str, Any], name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for policy in function_policies(res, name):
        if isinstance(policy, dict) and "Statement" in policy:
            out += statements(policy)
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
            for st in statements(doc):
                if st.get("Effect") == "Allow":
                    found.append((name, st))
    return found


class Intrinsics:
    """Resolves the few intrinsics the template's policies use, for given parameter values, so a
    test can read the ARNs CloudFormation would produce. A resource's Ref or attribute resolves to
    a placeholder: ``<VideoBucket>``, ``<JobsTable.Arn>``.

    >>> Intrinsics(tpl, {"InputBucketNames": "a,b"})({"Fn::Split": [",", {"Ref": "InputBucketNames"}]})
    ['a', 'b']
    """

    _SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")

    def __init__(self, tpl: dict[str, Any], parameters: dict[str, str] | None = None, *, partition: str = "aws"):
        self.params = {k: str(v.get("Default", "")) for k, v in tpl["Parameters"].items()}
        self.params.update(parameters or {})
        self.pseudo = {
            "AWS::Partition": partition,
            "AWS::Region": "us-east-1",
            "AWS::AccountId": "123456789012",
            "AWS::StackName": "grokvideo",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.conditions = tpl.get("Conditions", {})
        self.mappings = tpl.get("Mappings", {})

    def condition(self, name: str) -> bool:
        return bool(self(self.conditions[name]))

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        return f"<{name}>"

    def __call__(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self(n) for n in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) != 1 or not next(iter(node)).startswith(("Fn::", "Ref", "Condition")):
            return {k: v for k, v in ((k, self(v)) for k, v in node.items()) if v is not NO_VALUE}
        ((fn, arg),) = node.items()
        if fn == "Ref":
            return NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
        if fn == "Fn::GetAtt":
            return f"<{'.'.join(as_list(arg))}>"
        if fn == "Fn::Sub":
            template, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))

            def value(m: re.Match[str]) -> str:
                name = m[1]
                if name in variables:
                    return str(variables[name])
                return f"<{name}>" if "." in name else self.ref(name)  # ${Res.Attr}: a placeholder

            return self._SUB_VAR.sub(value, template).replace("${!", "${")  # ${!Literal}: ${Literal}
        if fn == "Fn::Join":
            delimiter, items = arg
            assert isinstance(delimiter, str), "Fn::Join takes a literal delimiter only"
            return delimiter.join(self(items))
        if fn == "Fn::Split":
            delimiter, value = arg
            assert isinstance(delimiter, str), "Fn::Split takes a literal delimiter only"
            return self(value).split(delimiter)
        if fn == "Fn::FindInMap":
            mapping, top, second = self(arg)
            return self.mappings[mapping][top][second]
        if fn == "Fn::If":
            cond, if_true, if_false = arg
            return self(if_true if self.condition(cond) else if_false)
        if fn == "Fn::Equals":
            left, right = self(arg)
            return str(left) == str(right)
        if fn == "Fn::Not":
            return not self(arg[0])
        if fn == "Condition":
            return self.condition(arg)
        raise AssertionError(f"Intrinsics does not know {fn}")


def pattern_matches(pattern: dict[str, Any], event: dict[str, Any], *, our_source: str = "grokvideo") -> bool:
    """EventBridge matching for what the template's rules use: lists of values, anything-but."""
    resolved = Intrinsics({"Parameters": {"EventSource": {"Default": our_source}}})(pattern)
    for key, allowed in resolved.items():
        value = event.get(key)
        ok = False
        for entry in allowed:
            if isinstance(entry, dict):
                ((op, values),) = entry.items()
                assert op == "anything-but", op
                ok |= value is not None and value not in as_list(values)
            else:
                ok |= value == entry
        if not ok:
            return False
    return True


def rule_patterns(res: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every rule on the bus: AWS::Events::Rule resources and functions' EventBridgeRule events."""
    out = {name: r["Properties"]["EventPattern"] for name, r in of_type(res, "AWS::Events::Rule").items()}
    for fn in of_type(res, "AWS::Serverless::Function"):
        for ev_name, ev in props(res, fn).get("Events", {}).items():
            if ev["Type"] == "EventBridgeRule":
                out[f"{fn}{ev_name}"] = ev["Properties"]["Pattern"]
    return out


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


def test_the_provider_url_is_https_or_a_loopback_http(tpl: dict[str, Any], res: dict[str, Any]) -> None:
    """The API key travels with every provider call. CloudFormation's rule functions compare whole
    values only (no "starts with"), so the template says it with the parameter's pattern: https
    anywhere, plain http only to a loopback host (the local emulator's fake); the functions add
    ALLOW_HTTP_PROVIDER (= AllowPrivateVideoHosts), without which they refuse http at their cold
    start (tests/unit/test_settings.py)."""
    pattern = re.compile(tpl["Parameters"]["CometApiBaseUrl"]["AllowedPattern"])
    for ok in (
        "https://api.cometapi.com",
        "https://api.cometapi.com/",
        "https://gateway.example:8443/comet/v1",
        "http://127.0.0.1:49152",
        "http://127.0.0.1",
        "http://localhost:8080/",
        "http://[::1]:8080",
    ):
        assert pattern.fullmatch(ok), ok
    for bad in (
        "http://api.cometapi.com",
        "http://10.0.0.5:8080",
        "http://192.168.1.10",
        "http://127.0.0.1.evil.example",
        "http://localhost.evil.example",
        "http://127.0.0.1@evil.example",
        "https://user:pass@api.cometapi.com",
        "ftp://api.cometapi.com",
        "api.cometapi.com",
        "https://api.cometapi.com/?x=1",
        "https://api.cometapi.com/#f",
        "https://api cometapi.com",
        "",
    ):
        assert not pattern.fullmatch(bad), bad
    for fn in ("PollerFunction", "SubmitFunction"):
        env = props(res, fn)["Environment"]["Variables"]
        assert env["ALLOW_HTTP_PROVIDER"] == {"Ref": "AllowPrivateVideoHosts"}, fn
    for fn in ("RegisterFunction", "CopierFunction"):
        assert "ALLOW_HTTP_PROVIDER" not in props(res, fn)["Environment"]["Variables"], fn


def test_submit_parameters(tpl: dict[str, Any]) -> None:
    rate = tpl["Parameters"]["SubmitRatePerSecond"]
    assert rate["Type"] == "Number"
    assert (rate["Default"], rate["MinValue"], rate["MaxValue"]) == (1, 0.01, 100)
    buckets = tpl["Parameters"]["InputBucketNames"]
    assert buckets["Type"] == "String"
    assert buckets["Default"] == ""
    pattern = re.compile(buckets["AllowedPattern"])
    for ok in ("", "my-input-bucket", "bucket-a,bucket-b", "my.bucket.example,abc,x-1"):
        assert pattern.fullmatch(ok), ok
    # A space or an empty name would become a bucket ARN that matches nothing (or too much).
    for bad in ("bucket-a, bucket-b", "bucket-a,", ",bucket-a", "Bucket", "ab", "bucket/key", "*", "a*b,cde"):
        assert not pattern.fullmatch(bad), bad
    assert tpl["Conditions"]["HasInputBuckets"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "InputBucketNames"}, ""]}]}


def test_every_parameter_sits_in_one_parameter_group(tpl: dict[str, Any]) -> None:
    groups = tpl["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for g in groups for name in g["Parameters"]]
    assert sorted(grouped) == sorted(tpl["Parameters"])
    (submit,) = [g for g in groups if g["Label"]["default"] == "Submit"]
    assert list(submit["Parameters"]) == ["SubmitRatePerSecond", "InputBucketNames"]


def test_contract_outputs(tpl: dict[str, Any]) -> None:
    assert CONTRACT_OUTPUTS <= set(tpl["Outputs"])


def test_globals_runtime_arch_tracing_layer(tpl: dict[str, Any]) -> None:
    g = tpl["Globals"]["Function"]
    assert g["Runtime"] == "python3.13"
    assert list(g["Architectures"]) == ["arm64"]
    # X-Ray costs per trace and the SDK slows every cold start: only when asked for (EnableTracing),
    # and then the handlers' Tracer traces too (POWERTOOLS_TRACE_DISABLED false).
    assert tpl["Parameters"]["EnableTracing"]["Default"] == "false"
    assert g["Tracing"] == {"Fn::If": ["TracingEnabled", "Active", "PassThrough"]}
    assert {"Ref": "SharedLayer"} in g["Layers"]
    env = g["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "grokvideo"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "GrokVideo"
    assert env["POWERTOOLS_TRACE_DISABLED"] == {"Fn::If": ["TracingEnabled", "false", "true"]}
    assert tpl["Conditions"]["TracingEnabled"] == {"Fn::Equals": [{"Ref": "EnableTracing"}, "true"]}


def test_environment_names_are_ones_each_function_reads(res: dict[str, Any], tpl: dict[str, Any]) -> None:
    """Each function is given exactly variables its own settings read (and all it cannot run without)."""
    from grokvideo.config import CopierSettings, PollerSettings, RegisterSettings, SubmitSettings

    reads = {
        "PollerFunction": PollerSettings.ENV,
        "RegisterFunction": RegisterSettings.ENV,
        "CopierFunction": CopierSettings.ENV,
        "SubmitFunction": SubmitSettings.ENV,
    }
    assert set(reads) == set(FUNCTIONS)
    names = set(tpl["Globals"]["Function"]["Environment"]["Variables"])
    for fn, read in reads.items():
        given = names | set(props(res, fn).get("Environment", {}).get("Variables", {}))
        unknown = {n for n in given if n not in read and not n.startswith("POWERTOOLS_")}
        assert not unknown, f"{fn}: env vars its settings do not read: {unknown}"
    # The key itself never sits in an environment variable: only the secret's ARN.
    every = {n for fn in FUNCTIONS for n in props(res, fn).get("Environment", {}).get("Variables", {})}
    assert not any("API_KEY" in n and not n.endswith("_ARN") for n in every)


# --------------------------------------------------------------------------- data


def test_jobs_table(res: dict[str, Any]) -> None:
    t = props(res, "JobsTable")
    assert t["BillingMode"] == "PAY_PER_REQUEST"
    assert t["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert t["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert t["SSESpecification"]["SSEEnabled"] is True
    assert list(t["KeySchema"]) == [{"AttributeName": "request_id", "KeyType": "HASH"}]
    attrs = {a["AttributeName"]: a["AttributeType"] for a in t["AttributeDefinitions"]}
    assert attrs == {
        "request_id": "S",
        "due_shard": "N",
        "next_poll_at": "N",
        "state": "S",
        "registered_at": "N",
        "client_ref": "S",
    }
    indexes = {g["IndexName"]: g for g in t["GlobalSecondaryIndexes"]}
    assert set(indexes) == {DUE_INDEX, STATE_INDEX, REF_INDEX}
    keys = {name: [(k["AttributeName"], k["KeyType"]) for k in g["KeySchema"]] for name, g in indexes.items()}
    assert keys[DUE_INDEX] == [("due_shard", "HASH"), ("next_poll_at", "RANGE")]
    assert keys[STATE_INDEX] == [("state", "HASH"), ("registered_at", "RANGE")]
    assert keys[REF_INDEX] == [("client_ref", "HASH"), ("registered_at", "RANGE")]
    # due projects exactly what a DueJob reads (a sweep claims from it), none of which changes
    # without next_poll_at moving too (so projecting it costs no index write of its own).
    due = indexes[DUE_INDEX]["Projection"]
    assert due["ProjectionType"] == "INCLUDE"
    needed = {f.name for f in fields(DueJob)} - {"request_id", "due_shard", "next_poll_at"}
    assert set(due["NonKeyAttributes"]) == needed
    assert indexes[REF_INDEX]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    # by_state projects exactly what a JobSummary reads, none of which changes on a poll (so a
    # poll writes nothing to it).
    projection = indexes[STATE_INDEX]["Projection"]
    assert projection["ProjectionType"] == "INCLUDE"
    summary = {f.name for f in fields(JobSummary)} - {"request_id", "state", "registered_at"}
    assert set(projection["NonKeyAttributes"]) == summary
    assert not summary & {"progress", "next_poll_at", "lease_owner", "lease_until", "attempts", "outbox"}
    assert res["JobsTable"]["DeletionPolicy"] == "Retain"


def test_video_bucket_private_encrypted_and_cleaned(tpl: dict[str, Any], res: dict[str, Any]) -> None:
    # The default parameters (KmsKeyArn and the bucket's options: tests/unit/test_template_security.py).
    b = Intrinsics(tpl)(props(res, "VideoBucket"))
    assert res["VideoBucket"]["Condition"] == "CreateVideoBucket"
    assert all(
        b["PublicAccessBlockConfiguration"][k] is True
        for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    )
    (sse,) = b["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert b["OwnershipControls"]["Rules"][0]["ObjectOwnership"] == "BucketOwnerEnforced"
    assert "VersioningConfiguration" not in b and "LoggingConfiguration" not in b  # both options, off by default
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
    # ... and puts a failed copy back on its own queue after a backoff far below the timeout.
    assert props(res, "CopierFunction")["Environment"]["Variables"]["COPY_QUEUE_URL"] == {"Ref": "CopyQueue"}
    assert max(RETRY_DELAYS) * 3 < int(q["VisibilityTimeout"])
    assert q["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["CopyDeadLetterQueue", "Arn"]}
    assert int(q["MessageRetentionPeriod"]) == 4 * 86400


def test_submit_queue_visibility_and_redrive(res: dict[str, Any]) -> None:
    q = props(res, "SubmitQueue")
    timeout = int(props(res, "SubmitFunction")["Timeout"])
    assert timeout == 60
    assert int(q["VisibilityTimeout"]) >= 6 * timeout
    assert q["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["SubmitDeadLetterQueue", "Arn"]},
        # A retry after a 429 or an unreachable provider is a receive of its own.
        "maxReceiveCount": 10,
    }
    assert int(q["MessageRetentionPeriod"]) == 4 * 86400


def test_submit_environment(res: dict[str, Any]) -> None:
    env = props(res, "SubmitFunction")["Environment"]["Variables"]
    poller = props(res, "PollerFunction")["Environment"]["Variables"]
    assert env["COMETAPI_BASE_URL"] == {"Ref": "CometApiBaseUrl"}
    assert env["COMETAPI_KEY_SECRET_ARN"] == poller["COMETAPI_KEY_SECRET_ARN"]
    # The job a request creates gets the deadline and backoff cap of a tracked one.
    assert env["MAX_JOB_AGE_SECONDS"] == poller["MAX_JOB_AGE_SECONDS"] == {"Ref": "MaxJobAgeSeconds"}
    assert env["SUBMIT_RATE_PER_SECOND"] == {"Ref": "SubmitRatePerSecond"}
    assert env["INPUT_BUCKET_NAMES"] == {"Ref": "InputBucketNames"}
    assert env["SUBMIT_QUEUE_URL"] == {"Ref": "SubmitQueue"}


def test_environment_values_are_strings_or_intrinsics(res: dict[str, Any], tpl: dict[str, Any]) -> None:
    """Lambda takes strings only; ministack passes a literal or mapped number through as an int
    and the function then fails before its handler runs."""
    env_maps = [tpl["Globals"]["Function"]["Environment"]["Variables"]]
    env_maps += [props(res, fn).get("Environment", {}).get("Variables", {}) for fn in FUNCTIONS]
    for env in env_maps:
        for name, value in env.items():
            assert isinstance(value, str) or (isinstance(value, dict) and "Fn::FindInMap" not in value), name


def test_every_queue_encrypted_and_dead_letters_kept_14_days(tpl: dict[str, Any], res: dict[str, Any]) -> None:
    """SQS managed keys by default (a customer managed key, KmsKeyArn: tests/unit/test_template_security.py)."""
    resolve = Intrinsics(tpl)
    for name, q in of_type(res, "AWS::SQS::Queue").items():
        assert resolve(q["Properties"]).get("SqsManagedSseEnabled") is True, name
        if "DeadLetter" in name:
            assert int(q["Properties"]["MessageRetentionPeriod"]) == 14 * 86400, name


def test_copier_sqs_event_reports_partial_failures(res: dict[str, Any]) -> None:
    (event,) = props(res, "CopierFunction")["Events"].values()
    assert event["Type"] == "SQS"
    p = event["Properties"]
    assert p["Queue"] == {"Fn::GetAtt": ["CopyQueue", "Arn"]}
    assert list(p["FunctionResponseTypes"]) == ["ReportBatchItemFailures"]
    assert 1 <= int(p["BatchSize"]) <= 10


def test_submit_sqs_event_reports_partial_failures_at_most_two_at_once(res: dict[str, Any]) -> None:
    p = props(res, "SubmitFunction")
    assert (int(p["Timeout"]), int(p["MemorySize"])) == (60, 256)
    (event,) = p["Events"].values()
    assert event["Type"] == "SQS"
    e = event["Properties"]
    assert e["Queue"] == {"Fn::GetAtt": ["SubmitQueue", "Arn"]}
    assert list(e["FunctionResponseTypes"]) == ["ReportBatchItemFailures"]
    assert int(e["BatchSize"]) == 5
    # Creates are paced by the shared rate anyway; 2 is also the least SQS mappings accept.
    assert e["ScalingConfig"] == {"MaximumConcurrency": 2}


def test_submit_rule_takes_generation_and_edit_requests_from_others(res: dict[str, Any]) -> None:
    rule = props(res, "SubmitRule")
    assert res["SubmitRule"]["Type"] == "AWS::Events::Rule"
    assert rule["EventBusName"] == {"Ref": "EventBus"}
    assert rule.get("State", "ENABLED") == "ENABLED"
    assert rule["EventPattern"] == {
        "detail-type": ["Video Generation Requested", "Video Edit Requested"],
        "source": [{"anything-but": [{"Ref": "EventSource"}]}],
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["SubmitQueue", "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["SubmitDeadLetterQueue", "Arn"]}}
    assert "RetryPolicy" in target
    # Our own events never loop back into a submit.
    ours = {"source": "grokvideo", "detail-type": "Video Generation Requested"}
    assert not pattern_matches(rule["EventPattern"], ours)
    assert pattern_matches(rule["EventPattern"], {**ours, "source": "com.example.app"})
    assert not pattern_matches(rule["EventPattern"], {"source": "x", "detail-type": "Video Job Track Requested"})


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
    assert {
        "CopyQueue",
        "CopyDeadLetterQueue",
        "RegisterDeadLetterQueue",
        "SubmitQueue",
        "SubmitDeadLetterQueue",
    } <= covered
    (st,) = props(res, "SubmitQueuesPolicy")["PolicyDocument"]["Statement"]
    assert st["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": ["SubmitRule", "Arn"]}
    assert st["Resource"] == [
        {"Fn::GetAtt": ["SubmitQueue", "Arn"]},
        {"Fn::GetAtt": ["SubmitDeadLetterQueue", "Arn"]},
    ]


def test_every_queue_a_rule_writes_to_has_a_queue_policy(res: dict[str, Any]) -> None:
    """Only the scheduler's dead-letter queue goes without one (the schedule's role writes to it)."""
    policies = of_type(res, "AWS::SQS::QueuePolicy").values()
    in_policies = {q["Ref"] for pol in policies for q in pol["Properties"]["Queues"]}
    assert set(of_type(res, "AWS::SQS::Queue")) - in_policies == {"PollerScheduleDeadLetterQueue"}


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


# Actions with no resource-level permissions: "*" is the only Resource they take (Service
# Authorization Reference, "Resource types" empty). Nothing else may be granted on "*".
ONLY_ON_ANY_RESOURCE = {
    # X-Ray: what Tracing: Active needs (SAM attaches AWSXrayWriteOnlyAccess, or in aws-cn and
    # aws-us-gov AWSXRayDaemonWriteAccess: these five actions on "*"); traces are not resources.
    "xray:PutTraceSegments": "segments are uploaded to the account, not to a resource",
    "xray:PutTelemetryRecords": "daemon telemetry, account-wide",
    "xray:GetSamplingRules": "the account's sampling rules are read as a whole",
    "xray:GetSamplingTargets": "sampling quotas, account-wide",
    "xray:GetSamplingStatisticSummaries": "account-wide statistics",
    # EMF metrics are written through the log group, but a direct PutMetricData could only be
    # narrowed by the cloudwatch:namespace condition, never by a resource.
    "cloudwatch:PutMetricData": "metrics have no ARN (narrow with cloudwatch:namespace instead)",
    # Step Functions callbacks: the task token names the task; the actions have no resource type.
    "states:SendTaskSuccess": "a task is named by its token, not by an ARN",
    "states:SendTaskFailure": "a task is named by its token, not by an ARN",
}


def _is_any_resource(resource: Any) -> bool:
    """ "*" itself, or an ARN whose every part after the service is a wildcard (arn:aws:sqs:*:*:*)."""
    if resource == "*":
        return True
    if isinstance(resource, str) and resource.startswith("arn:"):
        parts = resource.split(":", 5)
        return len(parts) == 6 and all(p in ("*", "") for p in parts[3:]) and parts[5] == "*"
    return False


def star_resource_findings(statements: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Allow statements granting on any resource an action that has a narrower one."""
    found = []
    for name, st in statements:
        resources = [r for r in as_list(st.get("Resource", [])) if _is_any_resource(r)]
        if "NotResource" in st:
            resources.append(f"NotResource {st['NotResource']}")
        if not resources:
            continue
        narrowable = [a for a in as_list(st.get("Action", [])) if a not in ONLY_ON_ANY_RESOURCE]
        if narrowable or "NotAction" in st:
            found.append(f"{name} {st.get('Sid', '')}: {narrowable or st.get('NotAction')} on {resources}")
    return found


def test_no_resource_wildcard_where_a_narrower_resource_exists(tpl: dict[str, Any], res: dict[str, Any]) -> None:
    """Every Allow statement of the template (functions, roles, queue and bucket policies), in
    every branch of its conditions and for the default and other parameter values, names its
    resources; "*" only for actions that take nothing else (ONLY_ON_ANY_RESOURCE)."""
    raw = all_allow_statements(res)
    assert len(raw) >= 20  # the checks below saw the template's statements, not an empty list
    assert star_resource_findings(raw) == []
    for params in ({}, {"VideoBucketName": "shared-media", "VideoPrefix": "", "InputBucketNames": "a-b,c-d"}):
        resolve = Intrinsics(tpl, params)
        resolved = [(name, resolve(st)) for name, st in raw]
        assert star_resource_findings(resolved) == [], params
    # The check itself: it catches "*" and all-wildcard ARNs, and lets the listed actions through.
    probes = [
        ("P", {"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": "*"}),
        ("P", {"Effect": "Allow", "Action": ["xray:PutTraceSegments", "logs:PutLogEvents"], "Resource": ["*"]}),
        ("P", {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "arn:aws:logs:*:*:*"}),
        ("P", {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::a/*"}),
    ]
    assert len(star_resource_findings(probes)) == len(probes)
    allowed = [("P", {"Effect": "Allow", "Action": list(ONLY_ON_ANY_RESOURCE), "Resource": "*"})]
    assert star_resource_findings(allowed) == []
    assert star_resource_findings([("P", {"Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"})]) == []


# The AWS managed policies SAM may attach to the roles it generates, as AWS publishes them (AWS
# Managed Policy Reference). SAM attaches AWSLambdaBasicExecutionRole to every generated function
# role, AWSXrayWriteOnlyAccess (aws) or AWSXRayDaemonWriteAccess (aws-cn, aws-us-gov) for
# Tracing: Active, and AWSLambdaSQSQueueExecutionRole for an SQS event; all of them on "*".
_XRAY = [
    {
        "Effect": "Allow",
        "Action": [
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
            "xray:GetSamplingStatisticSummaries",
        ],
        "Resource": ["*"],
    }
]
_LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
MANAGED_POLICIES = {
    "service-role/AWSLambdaBasicExecutionRole": [{"Effect": "Allow", "Action": _LOGS, "Resource": "*"}],
    "AWSXrayWriteOnlyAccess": _XRAY,
    "AWSXRayDaemonWriteAccess": _XRAY,
    "service-role/AWSLambdaSQSQueueExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", *_LOGS],
            "Resource": "*",
        }
    ],
}


def _sam_transformed() -> dict[str, Any]:
    """template.yaml after the SAM transform (tests/sam_transform.py, run by the SAM CLI's Python)."""
    sam = _sam_cli()
    python = Path(sam).parent / "python" if sam else None
    if python is None or not python.is_file():
        msg = "SAM CLI's Python not found (.venvs/sam): `python local/stack.py venvs` installs it"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    proc = subprocess.run(
        [str(python), str(ROOT / "tests" / "sam_transform.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout))


def test_the_roles_sam_generates_grant_nothing_on_any_resource_that_has_a_narrower_one() -> None:
    """What the template does not show: the roles and policies SAM writes for the functions and
    their events, managed policies included (as MANAGED_POLICIES spells them out). The same rule
    as above: "*" only for the actions in ONLY_ON_ANY_RESOURCE."""
    out = _sam_transformed()["Resources"]
    roles = of_type(out, "AWS::IAM::Role")
    assert roles, "the transform produced no IAM role at all"
    found: list[tuple[str, dict[str, Any]]] = []
    for name, role in roles.items():
        p = role["Properties"]
        for arn in p.get("ManagedPolicyArns", []):
            policy = str(arn).split(":policy/", 1)[-1]
            assert policy in MANAGED_POLICIES, f"{name}: unknown managed policy {arn}: add its document"
            found += [(f"{name} {policy}", st) for st in MANAGED_POLICIES[policy]]
        for pol in p.get("Policies", []):
            found += [(f"{name} {pol['PolicyName']}", st) for st in statements(pol["PolicyDocument"])]
    for name, pol in of_type(out, "AWS::IAM::Policy").items():
        found += [(name, st) for st in statements(pol["Properties"]["PolicyDocument"])]
    allow = [(name, st) for name, st in found if st.get("Effect") == "Allow"]
    assert star_resource_findings(allow) == []
    # Each function runs as a role of the template's own (SAM generates none for them).
    for fn in FUNCTIONS:
        role = out[fn]["Properties"]["Role"]
        assert role == {"Fn::GetAtt": [f"{fn.removesuffix('Function')}Role", "Arn"]}, fn


def test_put_events_only_with_our_source(res: dict[str, Any]) -> None:
    count = 0
    for fn in FUNCTIONS:
        for st in function_statements(res, fn):
            if "events:PutEvents" in as_list(st["Action"]):
                count += 1
                assert st["Condition"]["StringEquals"]["events:source"] == {"Ref": "EventSource"}, fn
                assert st["Resource"] == {"Fn::GetAtt": ["EventBus", "Arn"]}, fn
    assert count == len(FUNCTIONS)


# What every function's role holds besides its own work: its log group, X-Ray (kept whatever
# EnableTracing says, so turning tracing on or off changes no role) and, only when the stack has
# a KmsKeyArn, that key (tests/unit/test_template_security.py).
RUNNING = {
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
}
# What Lambda's SQS event source mapping does with the role of a function it feeds.
SQS_EVENTS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
# What resumes a Step Functions task waiting on a request's task_token (grokvideo.tasks): only
# these two, never SendTaskHeartbeat or anything that starts or reads executions.
TASK_CALLBACKS = ["states:SendTaskSuccess", "states:SendTaskFailure"]


def test_least_privilege_per_function(res: dict[str, Any]) -> None:
    def actions(fn: str) -> set[str]:
        return {a for st in function_statements(res, fn) for a in as_list(st["Action"])}

    # GetItem: the shared poll budget's item alone; InvokeFunction: itself, for dispatched sweeps.
    assert actions("PollerFunction") == RUNNING | set(TASK_CALLBACKS) | {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "events:PutEvents",
        "lambda:InvokeFunction",
        "secretsmanager:GetSecretValue",
    }
    poller = {st["Sid"]: st for st in function_statements(res, "PollerFunction") if "Sid" in st}
    assert poller["ReadPollRate"]["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [LIMITER_PREFIX + "poll"]}
    }
    assert poller["DispatchSweeps"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-poller"
    }
    assert props(res, "PollerFunction")["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-poller"}
    # sqs:SendMessage: the function's own dead-letter queue (DeadLetterQueue).
    assert actions("RegisterFunction") == RUNNING | set(TASK_CALLBACKS) | {
        "dynamodb:PutItem",
        "events:PutEvents",
        "sqs:SendMessage",
    }
    assert actions("SubmitFunction") == RUNNING | SQS_EVENTS | set(TASK_CALLBACKS) | {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "events:PutEvents",
        "secretsmanager:GetSecretValue",
        "sqs:ChangeMessageVisibility",
        "s3:GetObject",
    }
    assert actions("CopierFunction") == RUNNING | SQS_EVENTS | set(TASK_CALLBACKS) | {
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
        "sqs:ChangeMessageVisibility",
    }
    for fn in FUNCTIONS:
        assert star_resource_findings([(fn, st) for st in function_statements(res, fn)]) == [], fn
    query = [st for st in function_statements(res, "PollerFunction") if st["Action"] == "dynamodb:Query"]
    assert query[0]["Resource"] == {"Fn::Sub": "${JobsTable.Arn}/index/due"}
    (s3,) = [st for st in function_statements(res, "CopierFunction") if "s3:PutObject" in st["Action"]]
    assert "${VideoPrefix}*" in s3["Resource"]["Fn::Sub"][0]
    # Every statement has a Sid, unique within its function.
    for fn in FUNCTIONS:
        sids = [st["Sid"] for st in function_statements(res, fn)]
        assert len(sids) == len(set(sids)), (fn, sids)


def test_every_function_that_ends_a_task_may_send_only_its_success_or_failure(res: dict[str, Any]) -> None:
    """The poller (failures it finds, events it relays), the copier (stored, archive failed), submit
    (failed submissions, rejections) and register (rejections) each resume Step Functions tasks: with
    exactly SendTaskSuccess and SendTaskFailure, on "*" (the only resource they take), in one
    statement; no other Step Functions action anywhere."""
    for fn in FUNCTIONS:
        [resume] = [st for st in function_statements(res, fn) if st.get("Sid") == "ResumeWaitingTasks"]
        assert resume == {
            "Sid": "ResumeWaitingTasks",
            "Effect": "Allow",
            "Action": TASK_CALLBACKS,
            "Resource": "*",
        }, fn
    states = sorted(
        a for _, st in all_allow_statements(res) for a in as_list(st["Action"]) if str(a).startswith("states:")
    )
    assert states == sorted(TASK_CALLBACKS * len(FUNCTIONS))


def test_each_function_runs_as_its_own_role_writing_its_own_logs(res: dict[str, Any]) -> None:
    """SAM generates no role for a function with Role: the template's role is all it gets (no
    managed policy), and SAM ignores a function's Policies then, so none may be left there."""
    roles = set()
    for fn, short in FUNCTIONS.items():
        role = function_role(res, fn)
        roles.add(role)
        p = props(res, role)
        assert "Policies" not in props(res, fn), fn
        assert "ManagedPolicyArns" not in p and "PermissionsBoundary" not in p, role
        assert p["AssumeRolePolicyDocument"]["Statement"] == [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ], role
        [logs] = [st for st in function_statements(res, fn) if st["Sid"] == "WriteOwnLogs"]
        group = props(res, fn)["LoggingConfig"]["LogGroup"]["Ref"]
        assert logs["Resource"] == {
            "Fn::Sub": f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:${{{group}}}:*"
        }, fn
        assert group == f"{short.capitalize()}LogGroup", fn
    assert len(roles) == len(FUNCTIONS)  # one role each, shared by none
    for fn, queue in (("SubmitFunction", "SubmitQueue"), ("CopierFunction", "CopyQueue")):
        [receive] = [st for st in function_statements(res, fn) if "sqs:ReceiveMessage" in as_list(st["Action"])]
        assert set(as_list(receive["Action"])) == SQS_EVENTS and receive["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
    [dead] = [st for st in function_statements(res, "RegisterFunction") if "sqs:SendMessage" in as_list(st["Action"])]
    assert dead["Resource"] == props(res, "RegisterFunction")["DeadLetterQueue"]["TargetArn"]


def _copier_bucket_statements(tpl: dict[str, Any], res: dict[str, Any], **params: str) -> dict[str, Any]:
    """{Sid: resolved statement} of the copier's statements on the bucket itself (s3:List...)."""
    resolve = Intrinsics(tpl, params)
    return {
        st["Sid"]: st
        for policy in function_policies(res, "CopierFunction")
        for st in resolve(policy)["Statement"]
        if any(a in ("s3:ListBucket", "s3:ListBucketMultipartUploads") for a in as_list(st["Action"]))
    }


def test_the_copier_lists_only_its_own_prefix(tpl: dict[str, Any], res: dict[str, Any]) -> None:
    """ListBucket carries an s3:prefix condition (the bucket may be a shared one, VideoBucketName).
    ListBucketMultipartUploads cannot: the Service Authorization Reference lists s3:prefix for
    ListBucket and ListBucketVersions only, and a condition on a key a request does not carry never
    matches, so the copier could no longer find leftover uploads; it stays bucket-wide, alone."""
    sts = _copier_bucket_statements(tpl, res)
    assert set(sts) == {"ListOwnPrefix", "FindLeftoverUploads"}
    listing, uploads = sts["ListOwnPrefix"], sts["FindLeftoverUploads"]
    assert as_list(listing["Action"]) == ["s3:ListBucket"]
    assert listing["Resource"] == "arn:aws:s3:::<VideoBucket>"
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["videos/*"]}}
    assert as_list(uploads["Action"]) == ["s3:ListBucketMultipartUploads"]
    assert uploads["Resource"] == "arn:aws:s3:::<VideoBucket>" and "Condition" not in uploads
    given = _copier_bucket_statements(tpl, res, VideoBucketName="shared-media", VideoPrefix="archive/grok/")
    assert given["ListOwnPrefix"]["Resource"] == "arn:aws:s3:::shared-media"
    assert given["ListOwnPrefix"]["Condition"] == {"StringLike": {"s3:prefix": ["archive/grok/*"]}}
    # No other statement of any function lists a bucket.
    for fn in FUNCTIONS:
        for st in function_statements(res, fn):
            if "s3:ListBucket" in as_list(st["Action"]):
                assert (fn, st["Sid"]) == ("CopierFunction", "ListOwnPrefix")


def test_submit_iam_reads_and_writes_only_the_jobs_table_item(res: dict[str, Any]) -> None:
    (st,) = [
        st
        for st in function_statements(res, "SubmitFunction")
        if any(a.startswith("dynamodb:") for a in as_list(st["Action"]))
    ]
    assert sorted(as_list(st["Action"])) == ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    assert st["Resource"] == {"Fn::GetAtt": ["JobsTable", "Arn"]}  # the table, no index


def test_change_message_visibility_only_on_the_functions_own_queue(res: dict[str, Any]) -> None:
    found = {
        fn: st
        for fn in FUNCTIONS
        for st in function_statements(res, fn)
        if "sqs:ChangeMessageVisibility" in as_list(st["Action"])
    }
    assert set(found) == {"SubmitFunction", "CopierFunction"}
    for fn, queue in (("SubmitFunction", "SubmitQueue"), ("CopierFunction", "CopyQueue")):
        assert as_list(found[fn]["Action"]) == ["sqs:ChangeMessageVisibility"], fn
        assert found[fn]["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}, fn
        (event,) = props(res, fn)["Events"].values()
        assert event["Properties"]["Queue"] == {"Fn::GetAtt": [queue, "Arn"]}, fn


def _submit_s3_resources(
    tpl: dict[str, Any], res: dict[str, Any], *, partition: str = "aws", **params: str
) -> dict[str, Any]:
    """{Sid: resolved Resource} of the submit function's s3:GetObject statements for these values."""
    resolve = Intrinsics(tpl, params, partition=partition)
    out = {}
    for policy in function_policies(res, "SubmitFunction"):
        for st in resolve(policy)["Statement"]:
            if "s3:GetObject" in as_list(st["Action"]):
                assert as_list(st["Action"]) == ["s3:GetObject"], st
                out[st["Sid"]] = st["Resource"]
    return out


def test_submit_reads_stored_videos_under_the_prefix_only(tpl: dict[str, Any], res: dict[str, Any]) -> None:
    assert _submit_s3_resources(tpl, res)["PresignStoredVideos"] == "arn:aws:s3:::<VideoBucket>/videos/*"
    given = _submit_s3_resources(tpl, res, VideoBucketName="my-videos", VideoPrefix="archive/grok/")
    assert given["PresignStoredVideos"] == "arn:aws:s3:::my-videos/archive/grok/*"


def test_submit_reads_input_buckets_only_when_listed(tpl: dict[str, Any], res: dict[str, Any]) -> None:
    cond = conditional_statements(res, "SubmitFunction")
    assert set(cond) == {"HasInputBuckets", "UseKmsKey"}
    statement, otherwise = cond["HasInputBuckets"]
    assert otherwise == NO_VALUE
    assert statement["Sid"] == "PresignInputObjects" and statement["Effect"] == "Allow"
    assert statement["Action"] == "s3:GetObject"
    assert "Condition" not in statement

    # No buckets: no statement at all (not one on an empty or wildcard resource).
    assert set(_submit_s3_resources(tpl, res)) == {"PresignStoredVideos"}
    # Exactly the listed buckets' objects, nothing at bucket level, nothing else.
    for names, arns in [
        ("my-input-bucket", ["arn:aws:s3:::my-input-bucket/*"]),
        ("bucket-a,bucket-b", ["arn:aws:s3:::bucket-a/*", "arn:aws:s3:::bucket-b/*"]),
        ("a.b.c,d-e-f,ghi", ["arn:aws:s3:::a.b.c/*", "arn:aws:s3:::d-e-f/*", "arn:aws:s3:::ghi/*"]),
    ]:
        assert re.fullmatch(tpl["Parameters"]["InputBucketNames"]["AllowedPattern"], names)
        got = _submit_s3_resources(tpl, res, InputBucketNames=names)
        assert got["PresignInputObjects"] == arns, names
    # Every ARN in the stack's own partition.
    for partition in ("aws", "aws-cn", "aws-us-gov"):
        got = _submit_s3_resources(tpl, res, InputBucketNames="bucket-a,bucket-b", partition=partition)
        assert got["PresignInputObjects"] == [f"arn:{partition}:s3:::bucket-a/*", f"arn:{partition}:s3:::bucket-b/*"]


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
    dead_letter_queues = {name for name in of_type(res, "AWS::SQS::Queue") if "DeadLetter" in name}
    assert "SubmitDeadLetterQueue" in dead_letter_queues
    assert dead_letter_queues <= watched


def test_provider_auth_alarm(res: dict[str, Any]) -> None:
    alarms = [a["Properties"] for a in of_type(res, "AWS::CloudWatch::Alarm").values()]
    auth = [a for a in alarms if a.get("MetricName") == "ProviderAuthFailures"]
    assert len(auth) == 1
    assert auth[0]["Namespace"] == "GrokVideo"
    assert list(auth[0]["Dimensions"]) == [{"Name": "service", "Value": "grokvideo"}]
    assert auth[0]["Threshold"] == 1 and auth[0]["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_every_function_has_one_errors_alarm(res: dict[str, Any]) -> None:
    """A function error is a crash, a timeout or memory (a failed record is retried, not an
    error): one invocation in 5 minutes is worth a look, for each of the four."""
    alarms = [a["Properties"] for a in of_type(res, "AWS::CloudWatch::Alarm").values()]
    errors = [a for a in alarms if a.get("Namespace") == "AWS/Lambda" and a["MetricName"] == "Errors"]
    watched = []
    for alarm in errors:
        (dim,) = alarm["Dimensions"]
        assert dim["Name"] == "FunctionName"
        assert res[dim["Value"]["Ref"]]["Type"] == "AWS::Serverless::Function"  # its name, as Ref gives it
        watched.append(dim["Value"]["Ref"])
        assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 300, 1)
        assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert sorted(watched) == sorted(FUNCTIONS)


def test_every_alarm_tells_the_operator_and_calls_the_topic(res: dict[str, Any]) -> None:
    for name, alarm in of_type(res, "AWS::CloudWatch::Alarm").items():
        p = alarm["Properties"]
        assert len(p["AlarmDescription"]) > 20, name
        assert p["AlarmActions"] == p["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert p["TreatMissingData"] == "notBreaching", name  # no data is nothing wrong (counts sent only when > 0)


def test_shared_layer_is_built_by_makefile_without_boto(res: dict[str, Any]) -> None:
    layer = res["SharedLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["ContentUri"] == "layers/shared"
    assert list(layer["Properties"]["CompatibleRuntimes"]) == ["python3.13"]
    makefile = (ROOT / "layers" / "shared" / "Makefile").read_text()
    assert "build-SharedLayer:" in makefile
    # Pure Python for python3.13 whatever the builder runs (tests/integration/test_layer_build.py).
    assert "--platform any" in makefile and "--python-version 3.13" in makefile
    assert re.search(r"RUNTIME_PROVIDED :=.*\bboto3\b.*\bbotocore\b", makefile)
    reqs = (ROOT / "layers" / "shared" / "requirements.txt").read_text()
    assert not re.search(r"^\s*(boto3|botocore)\b", reqs, re.M)


def test_secret_arn_not_ref_of_a_name_when_given(res: dict[str, Any]) -> None:
    """The poller and the submit function read the secret by ARN: the parameter when given, else
    the stack's own secret; no other function reads it."""
    readers = []
    for fn in FUNCTIONS:
        reads = [s for s in function_statements(res, fn) if "secretsmanager:GetSecretValue" in as_list(s["Action"])]
        if not reads:
            continue
        readers.append(fn)
        env = props(res, fn)["Environment"]["Variables"]
        assert env["COMETAPI_KEY_SECRET_ARN"] == {
            "Fn::If": ["CreateApiKeySecret", {"Ref": "ApiKeySecret"}, {"Ref": "CometApiKeySecretArn"}]
        }, fn
        (st,) = reads
        assert st["Action"] == "secretsmanager:GetSecretValue"
        assert st["Resource"] == env["COMETAPI_KEY_SECRET_ARN"], fn
    assert readers == ["PollerFunction", "SubmitFunction"]


def test_submit_outputs_and_description(tpl: dict[str, Any]) -> None:
    out = tpl["Outputs"]
    assert out["SubmitQueueUrl"]["Value"] == {"Ref": "SubmitQueue"}
    assert out["SubmitDeadLetterQueueUrl"]["Value"] == {"Ref": "SubmitDeadLetterQueue"}
    assert out["SubmitFunctionName"]["Value"] == {"Ref": "SubmitFunction"}
    assert "prompts" in tpl["Description"]


# --------------------------------------------------------------------------- sample events


def _sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def _bus_events_in_samples() -> list[tuple[str, dict[str, Any]]]:
    """Every EventBridge event in events/: the files themselves and the bodies of SQS samples."""
    found = []
    for path in sorted(EVENTS.glob("*.json")):
        sample = json.loads(path.read_text())
        if "detail-type" in sample:
            found.append((path.name, sample))
        for i, record in enumerate(sample.get("Records", [])):
            found.append((f"{path.name}#Records[{i}]", json.loads(record["body"])))
    return found


def test_every_sample_bus_event_reaches_one_rule_and_matches_its_schema(res: dict[str, Any]) -> None:
    """Each sample input is taken by exactly one rule of ours and valid against its input schema
    (output events carried in SQS samples against the output schemas); `-invalid` samples fail."""
    patterns = rule_patterns(res)
    samples = _bus_events_in_samples()
    names = {name for name, _ in samples}
    assert {
        "generation-requested.json",
        "generation-requested-s3-image.json",
        "edit-requested.json",
        "edit-requested-source.json",
        "sqs-submit-message.json#Records[0]",
    } <= names
    for name, event in samples:
        taken_by = [rule for rule, pattern in patterns.items() if pattern_matches(pattern, event)]
        assert len(taken_by) == 1, (name, taken_by)
        input_event = event["source"] != "grokvideo"
        if "-invalid" in name:
            with pytest.raises(AssertionError):
                assert_valid_entry(event, input_event=input_event)
        else:
            assert_valid_entry(event, input_event=input_event)
        if event["detail-type"] in ("Video Generation Requested", "Video Edit Requested"):
            assert taken_by == ["SubmitRule"], name


def test_submit_samples_show_the_new_request_fields() -> None:
    assert _sample("generation-requested.json")["detail"]["idempotency_key"]
    assert _sample("generation-requested-s3-image.json")["detail"]["image_url"] == "s3://my-input-bucket/cats/cat.png"
    source = _sample("edit-requested-source.json")["detail"]
    assert "video_url" not in source
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,128}", source["source_request_id"])


def test_sqs_submit_message_is_what_the_submit_rule_delivers() -> None:
    """events/sqs-submit-message.json (sam local invoke SubmitFunction -e ...) carries the whole
    EventBridge event of generation-requested.json, as the rule hands it to the queue."""
    (record,) = _sample("sqs-submit-message.json")["Records"]
    assert record["eventSource"] == "aws:sqs"
    assert record["receiptHandle"] and record["messageId"]
    assert record["body"] == json.dumps(_sample("generation-requested.json"), separators=(",", ":"))
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
    assert record["attributes"]["ApproximateReceiveCount"] == "1"


def test_everything_that_means_a_job_may_be_stuck_has_an_alarm(res: dict[str, Any]) -> None:
    alarms = [a["Properties"] for a in of_type(res, "AWS::CloudWatch::Alarm").values()]

    def ours(metric: str) -> dict[str, Any]:
        [alarm] = [a for a in alarms if a.get("Namespace") == "GrokVideo" and a["MetricName"] == metric]
        assert list(alarm["Dimensions"]) == [{"Name": "service", "Value": "grokvideo"}]  # as Powertools emits it
        return alarm

    assert ours("UnexpectedErrors")["Threshold"] == 1
    owed = ours("OwedEventAge")
    assert owed["Statistic"] == "Maximum" and 60 < owed["Threshold"] <= 600  # "longer than a few minutes"
    ages = {
        a["Dimensions"][0]["Value"]["Fn::GetAtt"][0]: a["Threshold"]
        for a in alarms
        if a.get("MetricName") == "ApproximateAgeOfOldestMessage"
    }
    assert set(ages) == {"CopyQueue", "SubmitQueue"}
    assert all(a.get("AlarmActions") == [{"Ref": "AlarmTopic"}] for a in alarms)


def test_the_copy_queue_age_alarm_waits_out_the_copiers_own_retries(tpl: dict[str, Any], res: dict[str, Any]) -> None:
    """Its threshold follows from the copier's settings: a message's receives (at most the copier's
    timeout each), the put-back delays between them, and one death that hides the message for the
    queue's visibility timeout. Older than all that is a backlog or repeated crashes."""
    [alarm] = [
        a["Properties"]
        for a in of_type(res, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "ApproximateAgeOfOldestMessage"
        and a["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["CopyQueue", "QueueName"]}
    ]
    receives = tpl["Mappings"]["Copy"]["Queue"]["MaxReceiveCount"]
    timeout = props(res, "CopierFunction")["Timeout"]
    handled = receives * timeout + sum(RETRY_DELAYS[: receives - 1])  # 970 s
    one_death = int(props(res, "CopyQueue")["VisibilityTimeout"]) + handled  # 2770 s
    assert alarm["Statistic"] == "Maximum" and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert one_death < alarm["Threshold"] <= 2 * one_death
