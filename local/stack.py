#!/usr/bin/env python3
"""The whole stack on ministack (a local AWS emulator on 127.0.0.1): no AWS account, no Docker.

    python local/stack.py up [--cometapi-base-url URL] [--allowed-video-hosts H,...]
                             (no URL: starts our fake CometAPI in the background and uses it)
    python local/stack.py status [--json]
    python local/stack.py env          # `eval "$(python local/stack.py env)"` points boto3/aws at it
    python local/stack.py down
    python local/stack.py venvs        # only create .venvs/ministack and .venvs/sam

`up` creates the virtualenvs when missing, starts ministack (state under .local/), stores the
CometAPI key in Secrets Manager as a user would, runs `sam build` and `sam deploy` with the real
template.yaml, applies what the emulator accepts but ignores (TTL, PITR, S3 lifecycle, the
copier's reserved concurrency and its queue mapping's limit as a number), and writes the stack
outputs to .local/outputs.json. Running it again redeploys (new code) onto the
running emulator. `down` stops the emulator by its PID (and the Lambda workers in its process
group) and clears its temp folders; it also stops the fake CometAPI `up` started. Both are safe
to run twice.

Everything talks to http://127.0.0.1:<port> with dummy credentials; the caller's AWS profile and
endpoint settings are masked, so nothing here can reach a real account.

This file is the CLI and the `up` / `down` / `status` orchestration; the parts live beside it:
venvs.py (the two virtualenvs, python3.13), emulator.py (the ministack process and the AWS
environment aimed at it), fake_process.py (our fake CometAPI as a background process),
deploy.py (secret, artifacts bucket, sam build/deploy, outputs, post-deploy fixes),
processes.py (PID files and liveness) and common.py (paths, names, `say`). Their names stay
importable from here (`from local import stack; stack.main([...])`, `stack.OUTPUTS_FILE`, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if not __package__:  # run by path (python local/stack.py): sys.path has local/, not the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local.common import ACCOUNT_ID, LOCAL, OUTPUTS_FILE, REGION, REPO, STACK_NAME, say
from local.deploy import (
    ARTIFACTS_BUCKET,
    DEFAULT_API_KEY,
    LOCAL_PARAMETER_DEFAULTS,
    SECRET_NAME,
    _is_private_host,
    _run,
    ensure_artifacts_bucket,
    ensure_secret,
    post_deploy_fixes,
    sam_build,
    sam_deploy,
    stack_outputs,
)
from local.emulator import (
    LOG_FILE,
    PID_FILE,
    PORT_FILE,
    TMP_DIR,
    _apply_aws_env,
    _clear_runtime_files,
    _healthy,
    _kill_strays,
    _running_port,
    _wait_healthy,
    aws_env,
    endpoint,
    start_ministack,
    stop_ministack,
)
from local.fake_process import (
    FAKE_ARGS,
    FAKE_LOG_FILE,
    FAKE_PID_FILE,
    FAKE_URL_FILE,
    _fake_healthy,
    _fake_pid,
    running_fake_url,
    start_fake,
    stop_fake,
)
from local.processes import _alive, _free_port, _read_int
from local.venvs import (
    MINISTACK_REQUIREMENTS,
    MINISTACK_VENV,
    SAM_REQUIREMENTS,
    SAM_VENV,
    VENVS,
    _ensure_venv,
    _python313,
    ensure_venvs,
)

# What local/stack.py offered before it was split (local/demo.py uses several): re-exported.
__all__ = [
    "ACCOUNT_ID",
    "ARTIFACTS_BUCKET",
    "DEFAULT_API_KEY",
    "FAKE_ARGS",
    "FAKE_LOG_FILE",
    "FAKE_PID_FILE",
    "FAKE_URL_FILE",
    "LOCAL",
    "LOCAL_PARAMETER_DEFAULTS",
    "LOG_FILE",
    "MINISTACK_REQUIREMENTS",
    "MINISTACK_VENV",
    "OUTPUTS_FILE",
    "PID_FILE",
    "PORT_FILE",
    "REGION",
    "REPO",
    "SAM_REQUIREMENTS",
    "SAM_VENV",
    "SECRET_NAME",
    "STACK_NAME",
    "TMP_DIR",
    "VENVS",
    "Timer",
    "_alive",
    "_apply_aws_env",
    "_boto3",
    "_clear_runtime_files",
    "_ensure_venv",
    "_fake_healthy",
    "_fake_pid",
    "_free_port",
    "_healthy",
    "_is_private_host",
    "_kill_strays",
    "_python313",
    "_read_int",
    "_run",
    "_running_port",
    "_wait_healthy",
    "aws_env",
    "cmd_down",
    "cmd_env",
    "cmd_status",
    "cmd_up",
    "cmd_venvs",
    "endpoint",
    "ensure_artifacts_bucket",
    "ensure_secret",
    "ensure_venvs",
    "main",
    "post_deploy_fixes",
    "running_fake_url",
    "sam_build",
    "sam_deploy",
    "say",
    "stack_outputs",
    "start_fake",
    "start_ministack",
    "stop_fake",
    "stop_ministack",
]


# --------------------------------------------------------------------------- helpers


class Timer:
    """Times named phases; `timings` is what `up` prints and stores in outputs.json."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        say(f"{name} ...")
        start = time.monotonic()
        try:
            yield
        finally:
            took = round(time.monotonic() - start, 2)
            self.timings[name] = took
            say(f"{name} done in {took:.2f} s")


def _boto3() -> Any:
    """boto3 from the caller's interpreter, else re-run this script on the ministack venv's."""
    try:
        import boto3
    except ImportError:
        ensure_venvs()
        py = str(MINISTACK_VENV / "bin" / "python")
        if Path(sys.prefix).resolve() == MINISTACK_VENV.resolve():
            raise
        os.execv(py, [py, __file__, *sys.argv[1:]])
    return boto3


# --------------------------------------------------------------------------- commands


def cmd_up(args: argparse.Namespace) -> int:
    timer = Timer()
    total = time.monotonic()
    LOCAL.mkdir(parents=True, exist_ok=True)
    with timer.phase("venvs"):
        ensure_venvs()
    boto3 = _boto3()
    if args.cometapi_base_url:
        base_url = args.cometapi_base_url.rstrip("/")
        if running_fake_url() not in (None, base_url):
            stop_fake()  # ours, and the stack no longer points at it
    else:
        with timer.phase("fake CometAPI"):
            base_url = start_fake()
    host = (urllib.parse.urlsplit(base_url).hostname or "").lower()
    allowed_hosts = args.allowed_video_hosts or host
    allow_private = args.allow_private_video_hosts
    if allow_private is None:
        # Also what lets the functions call a plain-http CometAPI (a loopback fake): ALLOW_HTTP_PROVIDER.
        private = any(_is_private_host(h.strip()) for h in allowed_hosts.split(","))
        allow_private = "true" if private or base_url.lower().startswith("http://") else "false"
    with timer.phase("ministack"):
        port = start_ministack(args.port)
    env = {**os.environ, **_apply_aws_env(port)}
    with timer.phase("secret"):
        secret_arn = ensure_secret(boto3, args.api_key)
        ensure_artifacts_bucket(boto3)
    if not args.skip_build:
        with timer.phase("sam build"):
            sam_build(env)
    overrides = {
        "CometApiBaseUrl": base_url,
        "CometApiKeySecretArn": secret_arn,
        "AllowedVideoHosts": allowed_hosts,
        "AllowPrivateVideoHosts": allow_private,
        **LOCAL_PARAMETER_DEFAULTS,
        **dict(kv.split("=", 1) for kv in args.parameter),
    }
    with timer.phase("sam deploy"):
        sam_deploy(env, overrides)
    with timer.phase("post-deploy"):
        outputs = stack_outputs(boto3)
        fixes = post_deploy_fixes(boto3, outputs)
        if fixes:
            say("applied what the emulator ignores: " + ", ".join(fixes))
    timer.timings["total"] = round(time.monotonic() - total, 2)
    doc = {
        "stack_name": STACK_NAME,
        "endpoint_url": endpoint(port),
        "region": REGION,
        "account_id": ACCOUNT_ID,
        "ministack_pid": _read_int(PID_FILE),
        "fake_cometapi_url": running_fake_url() if not args.cometapi_base_url else None,
        "api_key_secret_arn": secret_arn,
        "parameters": overrides,
        "outputs": outputs,
        "timings": timer.timings,
        "deployed_at": int(time.time()),
    }
    OUTPUTS_FILE.write_text(json.dumps(doc, indent=2) + "\n")
    say(
        f"outputs in {OUTPUTS_FILE.relative_to(REPO)}; timings (s): "
        + ", ".join(f"{k} {v}" for k, v in timer.timings.items())
    )
    say('use it: eval "$(python local/stack.py env)"; stop it: python local/stack.py down')
    return 0


def cmd_down(_args: argparse.Namespace) -> int:
    stop_ministack()
    stop_fake()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    port = _running_port()
    fake_url = running_fake_url()
    fake = {"url": fake_url, "pid": _read_int(FAKE_PID_FILE)} if fake_url else None
    if port is None:
        if args.json:
            print(json.dumps({"running": False, "fake_cometapi": fake}))
        else:
            print("ministack: not running")
            if fake:
                print(f"fake CometAPI: running (pid {fake['pid']}, {fake_url})")
        return 1
    _apply_aws_env(port)
    boto3 = _boto3()
    report: dict[str, Any] = {
        "running": True,
        "endpoint_url": endpoint(port),
        "pid": _read_int(PID_FILE),
        "fake_cometapi": fake,
    }
    with contextlib.suppress(OSError, ValueError):
        report["cometapi_base_url"] = json.loads(OUTPUTS_FILE.read_text())["parameters"]["CometApiBaseUrl"]
    try:
        outputs = stack_outputs(boto3)
    except Exception as exc:
        report["stack"] = f"not deployed ({exc.__class__.__name__})"
        print(json.dumps(report, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in report.items()))
        return 1
    report["outputs"] = outputs
    counts: dict[str, int] = {}
    pages = (
        boto3.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=outputs["JobsTableName"],
            ProjectionExpression="#s",
            ExpressionAttributeNames={"#s": "state"},
        )
    )
    for page in pages:
        for item in page.get("Items", []):
            state = item.get("state", {}).get("S", "?")
            counts[state] = counts.get(state, 0) + 1
    report["jobs_by_state"] = counts
    sqs = boto3.client("sqs")
    queues = {}
    for key in (
        "CopyQueueUrl",
        "CopyDeadLetterQueueUrl",
        "PollerScheduleDeadLetterQueueUrl",
        "RegisterDeadLetterQueueUrl",
    ):
        if key in outputs:
            attrs = sqs.get_queue_attributes(
                QueueUrl=outputs[key],
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            queues[key.removesuffix("Url")] = {
                "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
                "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
            }
    report["queues"] = queues
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"ministack: running (pid {report['pid']}, {report['endpoint_url']})")
        if fake:
            print(f"fake CometAPI: running (pid {fake['pid']}, {fake_url}; admin routes under /_fake/)")
        if "cometapi_base_url" in report:
            print(f"stack's CometApiBaseUrl: {report['cometapi_base_url']}")
        print("outputs:")
        for k, v in outputs.items():
            print(f"  {k}: {v}")
        print("jobs by state: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
        print(
            "queues: " + ", ".join(f"{k} {v['visible']} visible/{v['in_flight']} in flight" for k, v in queues.items())
        )
    return 0


def cmd_env(_args: argparse.Namespace) -> int:
    port = _running_port()
    if port is None:
        print("echo 'ministack is not running: python local/stack.py up' >&2; false")
        return 1
    for key, value in aws_env(port).items():
        print(f"export {key}={value}")
    return 0


def cmd_venvs(_args: argparse.Namespace) -> int:
    ensure_venvs()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="local/stack.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start ministack, build and deploy the stack (idempotent)")
    up.add_argument(
        "--cometapi-base-url",
        default=os.environ.get("COMETAPI_BASE_URL") or None,
        help="CometAPI-compatible server the poller calls (env COMETAPI_BASE_URL); default: start "
        "our fake CometAPI in the background (.local/fake.pid, .local/fake.url, .local/fake.log)",
    )
    up.add_argument(
        "--allowed-video-hosts",
        default=os.environ.get("ALLOWED_VIDEO_HOSTS") or "",
        help="hosts the copier may download from (default: the base URL's host)",
    )
    up.add_argument(
        "--allow-private-video-hosts",
        choices=["true", "false"],
        default=os.environ.get("ALLOW_PRIVATE_VIDEO_HOSTS") or None,
        help="default: true when an allowed host is loopback/private or the CometAPI URL is plain http",
    )
    up.add_argument(
        "--api-key",
        default=os.environ.get("COMETAPI_API_KEY") or os.environ.get("FAKE_COMETAPI_KEY") or DEFAULT_API_KEY,
        help="value stored in the grokvideo/cometapi-key secret (env COMETAPI_API_KEY)",
    )
    up.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("MINISTACK_PORT") or 0) or None,
        help="ministack port (default: a free one; env MINISTACK_PORT)",
    )
    up.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra template parameter override (repeatable), e.g. PollConcurrency=4; "
        "locally PollIntervalSeconds defaults to 5",
    )
    up.add_argument("--skip-build", action="store_true", help="deploy the last build as is")
    up.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop ministack and our fake CometAPI, clear their files (idempotent)").set_defaults(
        func=cmd_down
    )
    st = sub.add_parser("status", help="outputs, job counts by state, queue depths")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)
    sub.add_parser("env", help="print export lines aiming boto3/aws at the emulator").set_defaults(func=cmd_env)
    sub.add_parser("venvs", help="create .venvs/ministack and .venvs/sam").set_defaults(func=cmd_venvs)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
