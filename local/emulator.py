"""The ministack process: start it (or reuse it) by PID, wait for health, stop it with its Lambda
workers, clear its temp folders; and the environment that aims boto3 / SAM CLI / aws at it only."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from local.common import ACCOUNT_ID, LOCAL, OUTPUTS_FILE, REGION, REPO, say
from local.processes import _alive, _free_port, _read_int, stop_process_group
from local.venvs import MINISTACK_VENV

PID_FILE = LOCAL / "ministack.pid"
PORT_FILE = LOCAL / "ministack.port"
LOG_FILE = LOCAL / "ministack.log"
TMP_DIR = LOCAL / "tmp"  # ministack's TMPDIR: unpacked Lambda code and layers of warm workers


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
        stop_process_group(pid, grace=10.0)
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


def _running_port() -> int | None:
    pid, port = _read_int(PID_FILE), _read_int(PORT_FILE)
    return port if _alive(pid) and port and _healthy(port) else None
