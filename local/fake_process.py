"""Our fake CometAPI (local/fake_cometapi) as a background process: `up` starts it when no CometAPI
URL is given (its own session, PID in .local/fake.pid, URL in .local/fake.url), `down` stops it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from local.common import LOCAL, REPO, say
from local.processes import _alive, _read_int, stop_process_group

# Our fake CometAPI (local/fake_cometapi), started by `up` when no CometAPI URL is given.
FAKE_PID_FILE = LOCAL / "fake.pid"
FAKE_URL_FILE = LOCAL / "fake.url"
FAKE_LOG_FILE = LOCAL / "fake.log"
FAKE_ARGS = ["--port", "0", "--auto-jobs", "--ready-after", "10"]


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
        stop_process_group(pid, grace=5.0, poll=0.05)
        say(f"fake CometAPI stopped (pid {pid})")
    elif not quiet:
        say("fake CometAPI not running")
    FAKE_PID_FILE.unlink(missing_ok=True)
    FAKE_URL_FILE.unlink(missing_ok=True)
