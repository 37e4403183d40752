"""The services a benchmark runs beside itself, each in a process of its own.

- ``fake_cometapi(*args)``: ``python -m local.fake_cometapi --port 0 *args``; its URL is read from
  the first line it prints;
- ``moto_server()``: ``python -m moto.server`` on a free loopback port, waited for until it answers.

Both yield a ``Service`` (its URL, its process and the CPU that process has used) and stop the
process when the ``with`` block ends. Standard library only: a benchmark imports this before it
has put the project on ``sys.path``.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 30.0
MOTO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
"""What boto3 needs to sign a request to ``moto_server()``: moto checks none of it."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (Linux /proc), 0.0 where unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """Terminate, then kill if it is still there after 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class Service:
    url: str
    proc: subprocess.Popen[Any]

    def cpu(self) -> float:
        """CPU seconds the service's process has used so far (read it before the ``with`` ends)."""
        return cpu_seconds(self.proc.pid)


@contextmanager
def fake_cometapi(*args: str) -> Iterator[Service]:
    """The fake CometAPI with ``args`` added to its command line (``--latency 0.25``, ``--api-key K`` ...),
    in its own process, so its threads don't compete with the benchmark for a GIL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "local.fake_cometapi", "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        match = re.search(r"(http://\S+)", line)
        if not match:
            raise RuntimeError(f"fake CometAPI did not start: {line!r}")
        yield Service(match.group(1), proc)
    finally:
        stop_process(proc)


@contextmanager
def moto_server() -> Iterator[Service]:
    """moto as a real HTTP endpoint on 127.0.0.1 (every service it emulates), in its own process."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start within {START_SECONDS:.0f} s") from None
                time.sleep(0.1)
        yield Service(f"http://127.0.0.1:{port}", proc)
    finally:
        stop_process(proc)
