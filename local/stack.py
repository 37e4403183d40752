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
template.yaml, applies what the emulator accepts but ignores (TTL, PITR, S3 lifecycle), and
writes the stack outputs to .local/outputs.json. Running it again redeploys (new code) onto the
running emulator. `down` stops the emulator by its PID (and the Lambda workers in its process
group) and clears its temp folders; it also stops the fake CometAPI `up` started. Both are safe
to run twice.

Everything talks to http://127.0.0.1:<port> with dummy credentials; the caller's AWS profile and
endpoint settings are masked, so nothing here can reach a real account.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LOCAL = REPO / ".local"
VENVS = REPO / ".venvs"
MINISTACK_VENV = VENVS / "ministack"
SAM_VENV = VENVS / "sam"
PID_FILE = LOCAL / "ministack.pid"
PORT_FILE = LOCAL / "ministack.port"
LOG_FILE = LOCAL / "ministack.log"
TMP_DIR = LOCAL / "tmp"  # ministack's TMPDIR: unpacked Lambda code and layers of warm workers
OUTPUTS_FILE = LOCAL / "outputs.json"
# Our fake CometAPI (local/fake_cometapi.py), started by `up` when no CometAPI URL is given.
FAKE_PID_FILE = LOCAL / "fake.pid"
FAKE_URL_FILE = LOCAL / "fake.url"
FAKE_LOG_FILE = LOCAL / "fake.log"
FAKE_ARGS = ["--port", "0", "--auto-jobs", "--ready-after", "10"]
# Local default: the template's minimum, so local jobs move fast (override with --parameter).
LOCAL_PARAMETER_DEFAULTS = {"PollIntervalSeconds": "5"}

# Pinned: the emulator, the SAM transform it applies server-side, and the boto3 that Lambda code
# imports there (ministack runs handlers on its own interpreter; boto3 must match its botocore).
MINISTACK_REQUIREMENTS = ["ministack==1.5.33", "aws-sam-translator==1.115.0", "boto3==1.43.106"]
SAM_REQUIREMENTS = ["aws-sam-cli==1.170.0"]

REGION = "us-east-1"
ACCOUNT_ID = "000000000000"
STACK_NAME = "grokvideo"
ARTIFACTS_BUCKET = "grokvideo-local-artifacts"  # also in samconfig.toml [local]
SECRET_NAME = "grokvideo/cometapi-key"
DEFAULT_API_KEY = "test-key"  # what local/fake_cometapi.py accepts by default


# --------------------------------------------------------------------------- helpers


def say(msg: str) -> None:
    print(f"[stack] {msg}", flush=True)


class Timer:
    """Times named phases; `timings` is what `up` prints and stores in outputs.json."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str):
        say(f"{name} ...")
        start = time.monotonic()
        try:
            yield
        finally:
            took = round(time.monotonic() - start, 2)
            self.timings[name] = took
            say(f"{name} done in {took:.2f} s")


def _python313() -> str:
    """A working python3.13: $PYTHON313, PATH (pyenv shims may lie), then pyenv's versions."""
    candidates = [os.environ.get("PYTHON313", ""), shutil.which("python3.13") or ""]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(str(p) for p in pyenv_root.glob("versions/3.13*/bin/python3.13"))
    candidates += ["/usr/local/bin/python3.13", "/usr/bin/python3.13"]
    for cand in filter(None, candidates):
        try:
            out = subprocess.run(
                [cand, "-c", "import sys, venv; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == "(3, 13)":
            return cand
    raise SystemExit(
        "python3.13 not found (Lambda runs python3.13 and ministack runs handlers on "
        "its own interpreter): install it or set PYTHON313=/path/to/python3.13"
    )


def _ensure_venv(path: Path, requirements: list[str], python: str | None = None) -> None:
    marker = path / ".requirements"
    wanted = "\n".join(requirements)
    if (path / "bin" / "python").exists() and marker.exists() and marker.read_text() == wanted:
        return
    if not (path / "bin" / "python").exists():
        say(f"creating {path.relative_to(REPO)}")
        subprocess.run([python or _python313(), "-m", "venv", str(path)], check=True)
    say(f"installing {' '.join(requirements)} into {path.relative_to(REPO)}")
    subprocess.run(
        [
            str(path / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-qq",  # errors only: this machine's pip config warns about every package otherwise
            "--disable-pip-version-check",
            *requirements,
        ],
        check=True,
    )
    marker.write_text(wanted)


def ensure_venvs() -> None:
    _ensure_venv(MINISTACK_VENV, MINISTACK_REQUIREMENTS)
    _ensure_venv(SAM_VENV, SAM_REQUIREMENTS)


def _boto3():
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


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not reaped) is not alive.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def endpoint(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint(port)}/_ministack/health", timeout=2) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def aws_env(port: int) -> dict[str, str]:
    """Environment for boto3 / SAM CLI / aws CLI aimed at the emulator only."""
    LOCAL.mkdir(parents=True, exist_ok=True)
    cfg, creds = LOCAL / "aws-config", LOCAL / "aws-credentials"
    cfg.write_text(f"[default]\nregion = {REGION}\n")
    creds.write_text("[default]\naws_access_key_id = test\naws_secret_access_key = test\n")
    return {
        "AWS_ENDPOINT_URL": endpoint(port),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": str(cfg),
        "AWS_SHARED_CREDENTIALS_FILE": str(creds),
        "SAM_CLI_TELEMETRY": "0",
        # SAM polls the change set and stack every 5 s by default; the emulator answers at once.
        "SAM_CLI_POLL_DELAY": os.environ.get("SAM_CLI_POLL_DELAY", "0.5"),
    }


def _apply_aws_env(port: int) -> dict[str, str]:
    for key in list(os.environ):
        if key in (
            "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN",
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
        ) or key.startswith("AWS_ENDPOINT_URL_"):
            del os.environ[key]
    env = aws_env(port)
    os.environ.update(env)
    return env


# --------------------------------------------------------------------------- ministack


def start_ministack(port_wanted: int | None) -> int:
    """Start ministack (or reuse the running one); return its port."""
    pid, port = _read_int(PID_FILE), _read_int(PORT_FILE)
    if _alive(pid) and port:
        if port_wanted and port_wanted != port:
            raise SystemExit(f"ministack already runs on port {port} (pid {pid}); run `down` first")
        if _wait_healthy(port, pid, timeout=30):
            say(f"ministack already running (pid {pid}, {endpoint(port)})")
            return port
        raise SystemExit(f"ministack pid {pid} does not answer on port {port}; see {LOG_FILE}")
    _clear_runtime_files()
    port = port_wanted or _free_port()
    TMP_DIR.mkdir(parents=True, exist_ok=True)
    # A clean environment: ministack passes its own environment on to every Lambda worker.
    env = {
        "PATH": f"{MINISTACK_VENV / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(Path.home()),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "TMPDIR": str(TMP_DIR),
        "GATEWAY_PORT": str(port),
        "BIND_HOST": "127.0.0.1",
        "MINISTACK_REGION": REGION,
        "MINISTACK_ACCOUNT_ID": ACCOUNT_ID,
        "S3_DATA_DIR": str(LOCAL / "s3"),
        "STATE_DIR": str(LOCAL / "state"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    for passthrough in (
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "LAMBDA_WARM_TTL_SECONDS",
        "LOG_LEVEL",
    ):
        if passthrough in os.environ:
            env[passthrough] = os.environ[passthrough]
    with open(LOG_FILE, "ab") as log:
        proc = subprocess.Popen(
            [str(MINISTACK_VENV / "bin" / "ministack")],
            cwd=str(LOCAL),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    PID_FILE.write_text(str(proc.pid))
    PORT_FILE.write_text(str(port))
    if not _wait_healthy(port, proc.pid, timeout=60):
        tail = LOG_FILE.read_text(errors="replace")[-2000:]
        stop_ministack()
        raise SystemExit(f"ministack did not become healthy on port {port}:\n{tail}")
    say(f"ministack started (pid {proc.pid}, {endpoint(port)}, log {LOG_FILE.relative_to(REPO)})")
    return port


def _wait_healthy(port: int, pid: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _healthy(port):
            return True
        if pid and not _alive(pid):
            return False
        time.sleep(0.2)
    return False


def _clear_runtime_files() -> None:
    shutil.rmtree(TMP_DIR, ignore_errors=True)
    for path in (PID_FILE, PORT_FILE, OUTPUTS_FILE):
        path.unlink(missing_ok=True)


def stop_ministack() -> None:
    pid = _read_int(PID_FILE)
    if _alive(pid):
        assert pid is not None
        # ministack runs in its own session (start_new_session), so its process group is its pid:
        # that takes the Lambda worker subprocesses along with it.
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)
            if not _alive(pid):
                break
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        # Workers that outlived the group signal (none expected) go by their own pid.
        _kill_strays()
        say(f"ministack stopped (pid {pid})")
    else:
        say("ministack not running")
    _clear_runtime_files()
    shutil.rmtree(LOCAL / "s3", ignore_errors=True)
    shutil.rmtree(LOCAL / "state", ignore_errors=True)


def _kill_strays() -> None:
    """Lambda workers whose command line points into our TMP_DIR (matched by pid, never by name)."""
    marker = str(TMP_DIR).encode()
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc_dir / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                os.kill(int(proc_dir.name), signal.SIGKILL)


# --------------------------------------------------------------------------- fake CometAPI


def _fake_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_fake/health", timeout=2) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _fake_pid() -> int | None:
    """PID in .local/fake.pid if that process is alive and really is our fake (PIDs get reused)."""
    pid = _read_int(FAKE_PID_FILE)
    if not _alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid  # no /proc (macOS): trust the file
    return pid if b"local.fake_cometapi" in cmdline else None


def running_fake_url() -> str | None:
    """Base URL of the fake CometAPI `up` started, if it runs and answers; else None."""
    try:
        url = FAKE_URL_FILE.read_text().strip()
    except OSError:
        return None
    return url if _fake_pid() and url and _fake_healthy(url) else None


def start_fake() -> str:
    """Start our fake CometAPI in its own session (or reuse the running one); return its URL."""
    url = running_fake_url()
    if url:
        say(f"fake CometAPI already running (pid {_read_int(FAKE_PID_FILE)}, {url})")
        return url
    stop_fake(quiet=True)  # a stale pid/url from a crash
    LOCAL.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONUNBUFFERED"] = "1"
    with open(FAKE_LOG_FILE, "ab") as log:
        start = log.tell()
        proc = subprocess.Popen(
            [sys.executable, "-m", "local.fake_cometapi", *FAKE_ARGS],
            cwd=str(REPO),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    FAKE_PID_FILE.write_text(str(proc.pid))
    deadline = time.monotonic() + 20
    url = ""
    while time.monotonic() < deadline and proc.poll() is None:
        with open(FAKE_LOG_FILE, "rb") as log:
            log.seek(start)
            for line in log.read().decode(errors="replace").splitlines():
                if "listening on " in line:
                    url = line.rsplit("listening on ", 1)[1].strip().rstrip("/")
        if url and _fake_healthy(url):
            break
        time.sleep(0.1)
    else:
        tail = FAKE_LOG_FILE.read_text(errors="replace")[-2000:]
        stop_fake(quiet=True)
        raise SystemExit(f"the fake CometAPI did not start; {FAKE_LOG_FILE.relative_to(REPO)}:\n{tail}")
    FAKE_URL_FILE.write_text(url + "\n")
    say(f"fake CometAPI started (pid {proc.pid}, {url}, log {FAKE_LOG_FILE.relative_to(REPO)})")
    return url


def stop_fake(quiet: bool = False) -> None:
    """Stop the fake CometAPI `up` started (by its PID; it runs in its own session)."""
    pid = _fake_pid()
    if pid:
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.05)
            if not _alive(pid):
                break
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        say(f"fake CometAPI stopped (pid {pid})")
    elif not quiet:
        say("fake CometAPI not running")
    FAKE_PID_FILE.unlink(missing_ok=True)
    FAKE_URL_FILE.unlink(missing_ok=True)


# --------------------------------------------------------------------------- deploy


def ensure_secret(boto3, api_key: str) -> str:
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


def ensure_artifacts_bucket(boto3) -> None:
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


def stack_outputs(boto3) -> dict[str, str]:
    stack = boto3.client("cloudformation").describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def post_deploy_fixes(boto3, outputs: dict[str, str]) -> list[str]:
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
    return done


def _is_private_host(host: str) -> bool:
    if host in ("localhost", "host.docker.internal") or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local


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
        allow_private = "true" if any(_is_private_host(h.strip()) for h in allowed_hosts.split(",")) else "false"
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


def _running_port() -> int | None:
    pid, port = _read_int(PID_FILE), _read_int(PORT_FILE)
    return port if _alive(pid) and port and _healthy(port) else None


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
        help="default: true when an allowed host is loopback/private",
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
