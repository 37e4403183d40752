"""The deploy onto the running emulator: the CometAPI key secret, the artifacts bucket, `sam build`
and `sam deploy` with the real template.yaml, the stack outputs, and what the emulator ignores."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import subprocess
from typing import Any

from local.common import LOCAL, REGION, REPO, STACK_NAME
from local.venvs import MINISTACK_VENV, SAM_VENV

# Local defaults (override with --parameter): the poll interval at the template's minimum, so local
# jobs move fast; no event archive, a resource type the emulator rejects.
LOCAL_PARAMETER_DEFAULTS = {"PollIntervalSeconds": "5", "EventArchiveRetentionDays": "0"}
ARTIFACTS_BUCKET = "grokvideo-local-artifacts"  # also in samconfig.toml [local]
SECRET_NAME = "grokvideo/cometapi-key"
DEFAULT_API_KEY = "test-key"  # what local/fake_cometapi accepts by default


def ensure_secret(boto3: Any, api_key: str) -> str:
    """What a user does: `aws secretsmanager create-secret --name grokvideo/cometapi-key ...`."""
    sm = boto3.client("secretsmanager")
    value = json.dumps({"api_key": api_key})
    try:
        arn = sm.describe_secret(SecretId=SECRET_NAME)["ARN"]
    except sm.exceptions.ResourceNotFoundException:
        return sm.create_secret(Name=SECRET_NAME, SecretString=value, Description="CometAPI key for grokvideo (local)")[
            "ARN"
        ]
    try:
        current = sm.get_secret_value(SecretId=arn).get("SecretString")
    except sm.exceptions.ResourceNotFoundException:
        current = None
    if current != value:
        sm.put_secret_value(SecretId=arn, SecretString=value)
    return arn


def ensure_artifacts_bucket(boto3: Any) -> None:
    s3 = boto3.client("s3")
    try:
        s3.head_bucket(Bucket=ARTIFACTS_BUCKET)
    except Exception:
        s3.create_bucket(Bucket=ARTIFACTS_BUCKET)


def _run(cmd: list[str], log_name: str, env: dict[str, str]) -> None:
    log_path = LOCAL / log_name
    with open(log_path, "w") as log:
        rc = subprocess.run(cmd, cwd=str(REPO), env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        tail = log_path.read_text(errors="replace")[-4000:]
        raise SystemExit(f"{' '.join(cmd[:2])} failed (exit {rc}); {log_path.relative_to(REPO)}:\n{tail}")


def sam_build(env: dict[str, str]) -> None:
    build_env = dict(env)
    # The makefile builds (layer and functions) pip-install for the Lambda target; any Python
    # with pip does, the ministack venv's is certain to exist.
    build_env["PYTHON"] = str(MINISTACK_VENV / "bin" / "python")
    _run([str(SAM_VENV / "bin" / "sam"), "build", "--config-env", "local"], "sam-build.log", build_env)


def sam_deploy(env: dict[str, str], overrides: dict[str, str]) -> None:
    params = [f"{k}={v}" for k, v in overrides.items()]
    _run(
        [
            str(SAM_VENV / "bin" / "sam"),
            "deploy",
            "--config-env",
            "local",
            "--stack-name",
            STACK_NAME,
            "--region",
            REGION,
            "--no-confirm-changeset",
            "--no-fail-on-empty-changeset",
            "--s3-bucket",
            ARTIFACTS_BUCKET,
            "--capabilities",
            "CAPABILITY_IAM",
            "CAPABILITY_AUTO_EXPAND",
            "--parameter-overrides",
            *params,
        ],
        "sam-deploy.log",
        env,
    )


def stack_outputs(boto3: Any) -> dict[str, str]:
    stack = boto3.client("cloudformation").describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def post_deploy_fixes(boto3: Any, outputs: dict[str, str]) -> list[str]:
    """Settings the emulator accepts in the template but does not apply (the unit tests check
    the template for them); applied here so the local stack behaves like the real one."""
    done = []
    ddb = boto3.client("dynamodb")
    table = outputs["JobsTableName"]
    ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING") or ttl.get("AttributeName") != "expires_at":
        ddb.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
        )
        done.append("dynamodb TTL expires_at")
    with contextlib.suppress(Exception):
        backups = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
        if backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus") != "ENABLED":
            ddb.update_continuous_backups(
                TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
            done.append("dynamodb PITR")
    s3 = boto3.client("s3")
    bucket = outputs["VideoBucketName"]
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except Exception:
        rules = []
    if not any("AbortIncompleteMultipartUpload" in r for r in rules):
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": "AbortIncompleteMultipartUploads",
                        "Status": "Enabled",
                        "Filter": {"Prefix": ""},
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                    }
                ]
            },
        )
        done.append("s3 lifecycle abort-incomplete-multipart")
    done += copier_concurrency(boto3, outputs)
    return done


def copier_concurrency(boto3: Any, outputs: dict[str, str]) -> list[str]:
    """CopierReservedConcurrency as AWS applies it. The emulator ignores the copier's
    ReservedConcurrentExecutions, and hands its queue mapping the MaximumConcurrency (!Ref of the
    Number parameter) as a string that its SQS poller cannot compare, so the mapping would never
    deliver: both are set again from the stack's parameter, as numbers."""
    stack = boto3.client("cloudformation").describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
    reserved = int(params.get("CopierReservedConcurrency") or 0)
    lam = boto3.client("lambda")
    function = outputs["CopierFunctionName"]
    done = []
    if reserved and lam.get_function_concurrency(FunctionName=function).get("ReservedConcurrentExecutions") != reserved:
        lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=reserved)
        done.append(f"copier reserved concurrency {reserved}")
    limit = reserved or 10  # the template's MaximumConcurrency when nothing is reserved
    for mapping in lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]:
        lam.update_event_source_mapping(UUID=mapping["UUID"], ScalingConfig={"MaximumConcurrency": limit})
        done.append(f"copy queue mapping MaximumConcurrency {limit} as a number")
    return done


def _is_private_host(host: str) -> bool:
    if host in ("localhost", "host.docker.internal") or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local
