"""Chaos run ("No job left behind"): N jobs through the deployed local stack while the provider
misbehaves at random and Lambda workers are killed mid-work; then every invariant is checked.

Run alone: ``python benchmarks/chaos.py [--jobs 500 --seed 1]`` (from the repo root, in the test
virtualenv; ``python local/stack.py venvs`` first on a fresh clone). It takes the local stack
(``.local/``) for itself: whatever runs there is replaced, and it is stopped at the end
(``--keep-up`` leaves it running for a look). The opt-in system test ``tests/system/test_chaos.py``
runs a smaller one (``pytest -m chaos``).

What it does:

1. The fake CometAPI in its own process (``--fault-seed`` = the seed), then ``local/stack.py down``
   and ``up`` against it with ``PollIntervalSeconds=5`` and ``SubmitRatePerSecond=20`` (the fake
   has no create rate). The copy queue's visibility timeout is lowered from 1800 s to
   ``--copy-visibility`` (90 s): a copier killed mid-copy gives its message back only when that
   runs out, by design, and 30 minutes is longer than the run. A capture rule on the bus
   (``source: grokvideo``) feeds a queue this script drains all along, as tests/system does (both
   through ``EventTap``, the tap of ``grokvideo events``).
2. Faults for the whole run, at random (the fake's probabilistic faults, seeded): of the API
   calls, 20 % answer 5xx, 10 % time out, 5 % answer 429 (Retry-After 1), 2 % a 200 HTML page. A
   poll's timeout outlasts the client's read timeout (10 s), a create's the create timeout (30 s);
   of the create 5xx, half come before the job is made and half after (``after_create``), so a
   ``SUBMIT_UNCERTAIN`` request may or may not have a provider job. 10 % of the videos have their
   first download cut mid-stream (``disconnect``).
3. The jobs: half tracked (``POST /_fake/jobs``, then ``Video Job Track Requested``), half
   submitted (``Video Generation Requested`` with the fake's prompt markers), each half with the
   same mix of provider outcomes: done (5 % of them hostile: duration 1e200, cost 1e-200 ticks,
   finish time 3e11), failed, expired, moderated, no_url, not_found; ready after 3-30 s; videos
   of the fixture's size, 64 KiB-4 MiB, or (6 %) ``--big-size`` (24 MiB, a multipart upload).
   The events go on the bus ``--put-batch`` at a time with ``--put-pause`` between, so the
   emulator never runs hundreds of register invocations (one worker process each) at once.
4. The chaos, by progress: pollers and copiers killed while they work (SIGKILL to the emulator's
   worker process of that function: in ministack's process group, its command line runs from
   ``ministack-lambda-<function>-*`` and its environment names the function; past its cold start,
   and in an invocation: its main thread not blocked reading stdin, where the emulator writes the
   next event), and the poller invoked 2 and later 4 times at once.
   Besides, the poller is kicked every ``--kick-every`` seconds while requests are open.
5. Every ``--sample-every`` seconds the jobs table is scanned: a job must be finished, in the due
   index, leased, or ``SUCCEEDED`` with its ``Video Generation Succeeded`` out (then the copy queue
   holds it: such jobs may not outnumber the copy queue's messages two samples in a row).
6. Once every request is settled (and the due index, the submit and copy queues are empty), when
   nothing can move any more (requests open, nothing due, the queues empty, for 60 s), or at
   ``--deadline`` seconds after the first put: the checks, printed as a table; exit 1 if one fails.
   ``.local/chaos-<run>.json`` and ``.local/chaos-<run>-ministack.log`` keep the evidence.

A duplicate event is allowed only where a crash explains it: a worker of a function that sends
that event was killed by this script within 5 s after the first copy's envelope time (a crash
between PutEvents and the write that clears the outbox; the relay sends it again). A function
the emulator kills at its own timeout explains nothing: that is a failure of its time budget,
and a row of its own.

``--crash-last-copy`` adds a reproducer: one job's first two downloads answer 503 and its third,
the last the copy queue allows, trickles; the copier streaming it is killed. With no receive left,
only a sweep can settle that job: the last attempt brings its next sweep forward (6 minutes), which
asks for the copy again.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT)]

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from benchmarks.machine import describe  # noqa: E402
from benchmarks.services import fake_cometapi  # noqa: E402
from grokvideo.cli.tail import EventTap  # noqa: E402
from grokvideo.cometapi import CometApiClient  # noqa: E402
from grokvideo.config import LEASE_SECONDS  # noqa: E402
from grokvideo.jobs import TERMINAL_STATES  # noqa: E402
from grokvideo.outbox import RELAY_AFTER  # noqa: E402
from grokvideo.runtime import CREATE_READ_TIMEOUT  # noqa: E402
from grokvideo.validation import SUBMISSION_PREFIX  # noqa: E402
from local.fake_cometapi.video import DEFAULT_VIDEO_PATH, VideoSource  # noqa: E402
from tests.schema_check import errors_for  # noqa: E402

LOCAL = ROOT / ".local"
OUTPUTS_FILE = LOCAL / "outputs.json"
MINISTACK_PID_FILE = LOCAL / "ministack.pid"
MINISTACK_LOG = LOCAL / "ministack.log"
API_KEY = "chaos-key"
SOURCE = "com.example.chaos"
TRACK = "Video Job Track Requested"
GENERATE = "Video Generation Requested"
SUBMITTED = "Video Generation Submitted"
SUCCEEDED = "Video Generation Succeeded"
FAILED = "Video Generation Failed"
STORED = "Video Stored"
ARCHIVE_FAILED = "Video Archive Failed"
TERMINAL = frozenset(s.value for s in TERMINAL_STATES)
MiB = 1 << 20
STUCK_AFTER = 60.0  # seconds with requests open but nothing due and the queues empty: nothing will move
READ_SYSCALL = {"x86_64": 0, "aarch64": 63}.get(platform.machine(), 0)
WARM_AGE = 15.0  # seconds a worker process has lived before it may be killed (its cold start is over)
BOTO = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=60)
POLL_READ_TIMEOUT = float(inspect.signature(CometApiClient.__init__).parameters["read_timeout"].default)
CRASH_WINDOW = 5.0  # seconds after the first copy of an event in which a kill explains a second copy
# Which functions send an event (the poller relays every owed event, so it may send any of them).
EMITTERS = {
    SUCCEEDED: ("poller",),
    FAILED: ("poller", "submit"),
    STORED: ("copier", "poller"),
    ARCHIVE_FAILED: ("copier", "poller"),
}

# Provider outcomes, in shares of each half (tracked, submitted); "hostile" is done with hostile numbers.
OUTCOME_SHARES = {
    "done": 0.55,
    "hostile": 0.05,
    "failed": 0.08,
    "expired": 0.08,
    "moderated": 0.08,
    "no_url": 0.08,
    "not_found": 0.08,
}
EXPECTED = {  # provider outcome -> (state, reason) the job must end in
    "done": ("STORED", None),
    "hostile": ("STORED", None),
    "failed": ("FAILED", "PROVIDER_FAILED"),
    "expired": ("FAILED", "EXPIRED"),
    "moderated": ("FAILED", "MODERATED"),
    "no_url": ("FAILED", "PROVIDER_FAILED"),
    "not_found": ("FAILED", "NOT_FOUND"),
}
MARKERS = {"done": "", "hostile": "[hostile]", **{o: f"[{o}]" for o in ("failed", "expired", "moderated")}}
MARKERS |= {"no_url": "[no_url]", "not_found": "[not_found]"}


def api_faults(seconds_past_timeout: float) -> list[tuple[str, float, dict[str, Any]]]:
    """The poll faults: 20 % 5xx, 10 % timeouts, 5 % 429, 2 % malformed (one draw per call)."""
    return [
        ("500", 0.07, {}),
        ("502", 0.07, {"body": "html"}),
        ("503", 0.06, {}),
        ("timeout", 0.10, {"seconds": POLL_READ_TIMEOUT + seconds_past_timeout}),
        ("429", 0.05, {"retry_after": 1}),
        ("malformed", 0.02, {}),
    ]


def create_faults(seconds_past_timeout: float) -> list[tuple[str, float, dict[str, Any]]]:
    """The same rates on creates; half the 5xx come after the job is made."""
    return [
        ("500", 0.10, {}),
        ("503", 0.10, {"after_create": True}),
        ("timeout", 0.10, {"seconds": CREATE_READ_TIMEOUT + seconds_past_timeout}),
        ("429", 0.05, {"retry_after": 1}),
        ("malformed", 0.02, {}),
    ]


VIDEO_FAULT = ("disconnect", 0.10)  # of first downloads


# --------------------------------------------------------------------------- options and plan


@dataclass(frozen=True)
class Options:
    jobs: int = 500
    seed: int = 1
    poll_interval: int = 5
    submit_rate: float = 20.0
    deadline: float = 900.0
    put_batch: int = 5
    put_pause: float = 0.5
    kick_every: float = 30.0
    sample_every: float = 5.0
    poller_kills: int = 2
    copier_kills: int = 2
    copy_visibility: int = 90
    big_share: float = 0.06
    big_size: int = 24 * MiB
    keep_up: bool = False
    crash_last_copy: bool = False  # the reproducer: kill the copier on one job's last allowed receive


@dataclass
class Request:
    """One job of the run, as planned."""

    index: int
    kind: str  # "tracked" | "submitted"
    outcome: str  # a key of OUTCOME_SHARES
    ready_after: float
    video_size: int | None
    client_ref: str
    request_id: str | None = None  # tracked: known before the put; submitted: from its Submitted event
    prompt: str = ""
    put_at: float = 0.0

    @property
    def fake_outcome(self) -> str:
        return "done" if self.outcome == "hostile" else self.outcome


def plan(options: Options, run: str) -> list[Request]:
    """Half tracked, half submitted, each half with the outcome shares exactly, in a seeded order."""
    rng = random.Random(options.seed)
    requests: list[Request] = []
    halves = {"tracked": options.jobs - options.jobs // 2, "submitted": options.jobs // 2}
    for kind, count in halves.items():
        outcomes: list[str] = []
        for outcome, share in OUTCOME_SHARES.items():
            outcomes += [outcome] * max(1, round(share * count))
        while len(outcomes) > count:
            outcomes.remove("done")
        outcomes += ["done"] * (count - len(outcomes))
        rng.shuffle(outcomes)
        for outcome in outcomes:
            draw = rng.random()
            if outcome in ("done", "hostile") and draw < options.big_share:
                size: int | None = options.big_size
            elif draw < 0.5:
                size = None  # the fixture MP4
            else:
                size = rng.randint(64 * 1024, 4 * MiB)
            requests.append(
                Request(
                    index=0,
                    kind=kind,
                    outcome=outcome,
                    ready_after=round(rng.uniform(3, 30), 1),
                    video_size=size,
                    client_ref="",
                )
            )
    rng.shuffle(requests)
    for i, req in enumerate(requests):
        req.index = i
        req.client_ref = f"chaos-{run}-{i:04d}"
        if req.kind == "submitted":
            markers = [MARKERS[req.outcome], f"[ready_after={req.ready_after}]"]
            if req.video_size is not None:
                markers.append(f"[video_size={req.video_size}]")
            req.prompt = f"chaos {run} #{i:04d}: a red fox trotting through fresh snow " + " ".join(
                m for m in markers if m
            )
    return requests


# --------------------------------------------------------------------------- the stack


def run_stack(*args: str, timeout: float = 900) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "local" / "stack.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"local/stack.py {' '.join(args)} exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-4000:]}"
        )


class Stack:
    """The deployed stack (``.local/outputs.json``) with boto3 clients aimed at it."""

    def __init__(self) -> None:
        doc = json.loads(OUTPUTS_FILE.read_text())
        self.endpoint = doc["endpoint_url"]
        self.region = doc.get("region", "us-east-1")
        self.outputs: dict[str, str] = doc["outputs"]
        self.parameters: dict[str, str] = doc.get("parameters", {})
        self._local = threading.local()

    def client(self, service: str) -> Any:
        """A client per thread (boto3 clients are thread-safe, but their creation is not)."""
        cache = self._local.__dict__.setdefault("clients", {})
        if service not in cache:
            session = boto3.session.Session()
            kwargs = {
                "endpoint_url": self.endpoint,
                "region_name": self.region,
                "aws_access_key_id": "test",
                "aws_secret_access_key": "test",
                "config": BOTO,
            }
            cache[service] = (
                session.resource("dynamodb", **kwargs) if service == "ddb" else session.client(service, **kwargs)
            )
        return cache[service]

    @property
    def table(self) -> Any:
        return self.client("ddb").Table(self.outputs["JobsTableName"])

    @property
    def bus(self) -> str:
        return self.outputs["EventBusName"]

    @property
    def source(self) -> str:
        return self.outputs.get("EventSource", "grokvideo")

    def function(self, name: str) -> str:
        return self.outputs[f"{name.capitalize()}FunctionName"]

    def scan(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"ConsistentRead": True}
        while True:
            page = self.table.scan(**kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def queue_depth(self, url: str) -> int:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        got = self.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(got.get(n, 0)) for n in names)

    def kick(self, source: str = "chaos.kick") -> None:
        self.client("lambda").invoke(
            FunctionName=self.function("poller"),
            InvocationType="Event",
            Payload=json.dumps({"source": source, "detail-type": "Scheduled Event", "detail": {}}),
        )


def fake_call(base_url: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as answer:
        return json.load(answer)


# --------------------------------------------------------------------------- output events


def event_time(event: dict[str, Any]) -> float:
    return datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


class Capture:
    """A rule on the bus (``source``: the stack's) into a queue, ``grokvideo events``' ``EventTap``,
    drained by a thread all along; removed when stopped."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.tap = EventTap(
            stack.client("events"), stack.client("sqs"), bus=stack.bus, source=stack.source, name="chaos-output-events"
        )
        self.tap.open()
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.succeeded_ids: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="capture", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.drain()
        for leftover in self.tap.close():
            print(f"  capture: {leftover}", flush=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.drain(wait=1)
            except Exception as err:  # the emulator is busy: try again
                print(f"  capture: {type(err).__name__}: {err}", flush=True)
                time.sleep(1)

    def drain(self, wait: int = 0) -> int:
        got = 0
        while True:
            batch = self.tap.receive(wait_seconds=wait)
            if not batch:
                return got
            wait = 0
            for event in batch:
                event["_received_at"] = time.time()
            with self.lock:
                self.events += batch
                self.succeeded_ids |= {e["detail"].get("request_id") for e in batch if e["detail-type"] == SUCCEEDED}
            got += len(batch)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.events)

    def has_succeeded(self, request_id: str) -> bool:
        with self.lock:
            return request_id in self.succeeded_ids


# --------------------------------------------------------------------------- the emulator's workers


@dataclass
class Kill:
    function: str
    pid: int
    at: float  # epoch seconds
    evidence: str
    log_offset: int
    by: str = "chaos"  # "chaos" (SIGKILL from here) or "emulator" (its timeout)


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def lambda_workers(ministack_pid: int, function_name: str) -> list[int]:
    """PIDs of the emulator's worker processes for ``function_name``: in ministack's process group,
    run from its ``ministack-lambda-<function>-*`` folder, with the function's name in their environment."""
    marker = f"ministack-lambda-{function_name}-".encode()
    env_line = f"AWS_LAMBDA_FUNCTION_NAME={function_name}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker not in (entry / "cmdline").read_bytes():
                continue
            if int(_stat(int(entry.name))[2]) != ministack_pid:  # pgrp
                continue
            if env_line not in (entry / "environ").read_bytes().split(b"\0"):
                continue
        except (OSError, ValueError, IndexError):
            continue
        pids.append(int(entry.name))
    return pids


def cpu_ticks(pid: int) -> int:
    try:
        fields = _stat(pid)
        return int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return -1


def between_invocations(pid: int) -> bool:
    """True when the worker's main thread waits for its next invocation: blocked in read() on fd 0,
    where the emulator writes the next event (``/proc/<pid>/syscall``: number, then arguments)."""
    try:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
        return int(fields[0]) == READ_SYSCALL and int(fields[1], 16) == 0
    except (OSError, ValueError, IndexError):
        return False  # running, or unreadable


def connections_to(pid: int, port: int) -> set[int]:
    """Socket inodes of ``pid``'s established TCP connections to ``port`` on this host (from /proc)."""
    try:
        mine = {
            int(link[8:-1])
            for fd in Path(f"/proc/{pid}/fd").iterdir()
            if (link := os.readlink(fd)).startswith("socket:[")
        }
    except OSError:
        return set()
    found = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port and int(fields[9]) in mine:
                found.add(int(fields[9]))
    return found


def age(pid: int) -> float:
    """Seconds since the process started (from /proc: its start time in ticks after boot, and the uptime)."""
    try:
        started = int(_stat(pid)[19]) / os.sysconf("SC_CLK_TCK")
        return float(Path("/proc/uptime").read_text().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return 0.0


def log_size() -> int:
    try:
        return MINISTACK_LOG.stat().st_size
    except OSError:
        return 0


# --------------------------------------------------------------------------- the run


@dataclass
class Sample:
    at: float
    jobs: int
    violations: list[str]


@dataclass
class Result:
    options: Options
    run: str
    requests: list[Request]
    started: float
    first_put: float = 0.0
    last_put: float = 0.0
    settled_at: float | None = None
    finished: float = 0.0
    deploy_seconds: float = 0.0
    items: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    fake_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    fake_read_at: float = 0.0
    injected: list[dict[str, Any]] = field(default_factory=list)
    creates: int = 0
    kills: list[Kill] = field(default_factory=list)
    bursts: list[tuple[float, int, int]] = field(default_factory=list)  # (at, invoked, poller workers working)
    kicks: int = 0
    samples: list[Sample] = field(default_factory=list)
    objects: dict[str, tuple[str, int]] = field(default_factory=dict)  # key -> (sha256, size) of the bytes in S3
    uploads_in_progress: list[str] = field(default_factory=list)
    dlq: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    queues_left: dict[str, int] = field(default_factory=dict)
    emulator_timeouts: list[Kill] = field(default_factory=list)
    log_lines: dict[int, list[str]] = field(default_factory=dict)  # kill pid -> the emulator's lines after it
    expected_digest: dict[int | None, tuple[str, int]] = field(default_factory=dict)
    put_failures: int = 0
    evidence: Path | None = None


class ChaosRun:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.run_id = f"{options.seed:x}{random.Random().getrandbits(24):06x}"
        self.result = Result(options, self.run_id, plan(options, self.run_id), started=time.time())
        self.fake_url = ""
        self.fake_port = 0
        self.stack: Stack | None = None
        self.capture: Capture | None = None
        self.ministack_pid = 0
        self._latest_items: list[dict[str, Any]] = []
        self._items_lock = threading.Lock()
        self._stop = threading.Event()
        self.done = 0  # requests settled, as the main loop last counted
        self.log_start = 0
        self.last_copy: Request | None = None
        if options.crash_last_copy:
            self.last_copy = next(q for q in self.result.requests if q.kind == "tracked" and q.outcome == "done")
            self.last_copy.request_id = f"chaos-lastcopy-{self.run_id}"
            self.last_copy.video_size = options.big_size
        self._excess = 0  # SUCCEEDED jobs off the due index beyond the copy queue, at the last sample

    # -- setup

    def deploy(self, fake_url: str) -> None:
        self.fake_url = fake_url
        self.fake_port = int(fake_url.rsplit(":", 1)[1])
        say("local/stack.py down, then up against the fake (sam build + deploy) ...")
        started = time.time()
        run_stack("down", timeout=180)
        run_stack(
            "up",
            "--cometapi-base-url",
            fake_url,
            "--allowed-video-hosts",
            "127.0.0.1",
            "--api-key",
            API_KEY,
            "--parameter",
            f"PollIntervalSeconds={self.o.poll_interval}",
            "--parameter",
            f"SubmitRatePerSecond={self.o.submit_rate:g}",
        )
        self.result.deploy_seconds = time.time() - started
        self.stack = Stack()
        self.ministack_pid = int(MINISTACK_PID_FILE.read_text().strip())
        self.log_start = log_size()  # this run's part of the emulator's log starts here
        self.stack.client("sqs").set_queue_attributes(
            QueueUrl=self.stack.outputs["CopyQueueUrl"], Attributes={"VisibilityTimeout": str(self.o.copy_visibility)}
        )
        self.capture = Capture(self.stack)
        self.capture.start()
        self.stack.kick("chaos.warmup")  # the poller's cold start, before the clock matters
        say(f"deployed in {self.result.deploy_seconds:.0f} s; ministack pid {self.ministack_pid}")

    def inject_faults(self) -> None:
        base = self.fake_url
        if self.last_copy is not None:
            # Its first two downloads answer 503 (retried after 10 s, then 60 s); the third, the
            # last the copy queue allows, trickles in, long enough to kill the copier while it works.
            path = f"/videos/{self.last_copy.request_id}.mp4"
            fake_call(base, "POST", "/_fake/faults", {"fault": "503", "count": 2, "path": path})
            fake_call(base, "POST", "/_fake/faults", {"fault": "slow_body", "count": 1, "path": path, "delay": 0.25})
        for fault, p, params in api_faults(1.0):
            fake_call(
                base,
                "POST",
                "/_fake/faults",
                {"fault": fault, "count": -1, "probability": p, "method": "GET", "path": "/grok/v1/videos/", **params},
            )
        for fault, p, params in create_faults(1.0):
            fake_call(
                base,
                "POST",
                "/_fake/faults",
                {"fault": fault, "count": -1, "probability": p, "method": "POST", "path": "/grok/v1/videos/", **params},
            )
        name, p = VIDEO_FAULT
        fake_call(
            base,
            "POST",
            "/_fake/faults",
            {"fault": name, "count": -1, "probability": p, "first_per_path": True, "path": "/videos/"},
        )

    # -- input

    def put_all(self) -> None:
        """Tracked jobs are made at the fake just before their event; every entry goes on the bus."""
        assert self.stack is not None
        bridge = self.stack.client("events")
        reqs = self.result.requests
        self.result.first_put = time.time()
        for first in range(0, len(reqs), self.o.put_batch):
            batch = reqs[first : first + self.o.put_batch]
            entries = []
            for req in batch:
                if req.kind == "tracked":
                    body: dict[str, Any] = {
                        "outcome": req.fake_outcome,
                        "ready_after": req.ready_after,
                        "hostile": req.outcome == "hostile",
                    }
                    if req.video_size is not None:
                        body["video_size"] = req.video_size
                    if req.request_id:
                        body["request_id"] = req.request_id
                    req.request_id = fake_call(self.fake_url, "POST", "/_fake/jobs", body)["request_id"]
                    detail = {
                        "request_id": req.request_id,
                        "client_ref": req.client_ref,
                        "metadata": {"chaos": self.run_id, "i": req.index},
                    }
                    entries.append((req, TRACK, detail))
                else:
                    detail = {
                        "prompt": req.prompt,
                        "duration": 1,
                        "resolution": "480p",
                        "client_ref": req.client_ref,
                        "idempotency_key": req.client_ref,
                        "metadata": {"chaos": self.run_id, "i": req.index},
                    }
                    entries.append((req, GENERATE, detail))
            answer = bridge.put_events(
                Entries=[
                    {"EventBusName": self.stack.bus, "Source": SOURCE, "DetailType": dt, "Detail": json.dumps(detail)}
                    for _, dt, detail in entries
                ]
            )
            now = time.time()
            for (req, _, _), entry in zip(entries, answer["Entries"], strict=True):
                req.put_at = now
                if "ErrorCode" in entry:
                    self.result.put_failures += 1
            self._stop.wait(self.o.put_pause)
        self.result.last_put = time.time()

    # -- sampling the table

    def sampler(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.sample()
            except Exception as err:
                print(f"  sampler: {type(err).__name__}: {err}", flush=True)
            self._stop.wait(max(0.0, self.o.sample_every - (time.monotonic() - started)))

    def sample(self) -> None:
        assert self.stack is not None and self.capture is not None
        depth_before = self.stack.queue_depth(self.stack.outputs["CopyQueueUrl"])
        items = self.stack.scan()
        now = time.time()
        with self._items_lock:
            self._latest_items = items
        suspects: dict[str, str] = {}
        jobs = 0
        for item in items:
            rid = item["request_id"]
            if rid.startswith((SUBMISSION_PREFIX, "#")):
                continue
            jobs += 1
            problem = outside_invariant(item, now, self.capture.has_succeeded)
            if problem:
                suspects[rid] = problem
        violations = []
        if suspects:
            time.sleep(2)  # the capture may lag the table by a receive: look again
            self.capture.drain()
            for rid in suspects:
                item = self.stack.table.get_item(Key={"request_id": rid}, ConsistentRead=True).get("Item")
                problem = outside_invariant(item, time.time(), self.capture.has_succeeded) if item else "vanished"
                if problem:
                    violations.append(f"{rid}: {problem}")
        # A SUCCEEDED job with its event out is the copy queue's: there must be at least as many
        # messages in it (visible, in flight or delayed, read before and after the scan) as such
        # jobs. An excess that lasts two samples is a job the queue no longer holds.
        parked = [
            i["request_id"]
            for i in items
            if i.get("state") == "SUCCEEDED" and "due_shard" not in i and "lease_until" not in i
        ]
        held = max(depth_before, self.stack.queue_depth(self.stack.outputs["CopyQueueUrl"]))
        excess = len(parked) - held
        if excess > 0 and self._excess > 0:
            violations.append(
                f"{excess} SUCCEEDED job(s) off the due index beyond the copy queue's {held}: {parked[:5]}"
            )
        self._excess = excess
        self.result.samples.append(Sample(now, jobs, violations))
        if violations:
            print(f"  !! {len(violations)} job(s) outside the invariant: {violations[:3]}", flush=True)

    def latest_items(self) -> list[dict[str, Any]]:
        with self._items_lock:
            return list(self._latest_items)

    # -- progress

    def settled(self, items: list[dict[str, Any]]) -> tuple[int, list[str]]:
        """How many requests are settled, and up to 10 that are not (with why)."""
        by_id = {i["request_id"]: i for i in items}
        by_ref = {i.get("client_ref"): i for i in items if i["request_id"].startswith(SUBMISSION_PREFIX)}
        done, open_ = 0, []
        for req in self.result.requests:
            if req.kind == "tracked":
                item = by_id.get(req.request_id or "")
            else:
                reservation = by_ref.get(req.client_ref)
                item = reservation
                if reservation and reservation.get("state") == "SUBMITTED":
                    req.request_id = reservation.get("job_request_id")
                    item = by_id.get(req.request_id or "")
            if item is not None and item.get("state") in TERMINAL and "outbox" not in item:
                done += 1
            elif len(open_) < 10:
                open_.append(f"{req.client_ref} ({req.kind}, {req.outcome}): {describe_item(item)}")
        return done, open_

    # -- chaos

    def kill_one(self, function: str, give_up_at: float) -> Kill | None:
        """SIGKILL one worker of ``function`` that is in an invocation (waits for one until ``give_up_at``)."""
        assert self.stack is not None
        name = self.stack.function(function)
        while time.time() < give_up_at and not self._stop.is_set():
            pids = lambda_workers(self.ministack_pid, name)
            # Only a warm worker: one killed during its cold start makes the emulator drop every
            # worker of the function (invalidate_worker), which no real crash does.
            warm = [pid for pid in pids if age(pid) >= WARM_AGE]
            # In an invocation: its main thread is not waiting for the next one (a read on stdin),
            # at two looks 0.1 s apart.
            first = {pid: cpu_ticks(pid) for pid in warm if not between_invocations(pid)}
            time.sleep(0.1)
            busy = {pid: ticks for pid, ticks in first.items() if not between_invocations(pid)}
            if busy:
                pid = max(busy, key=lambda p: cpu_ticks(p) - busy[p])
                offset, worker_age, cpu = log_size(), age(pid), cpu_ticks(pid) / os.sysconf("SC_CLK_TCK")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                kill = Kill(
                    function,
                    pid,
                    time.time(),
                    f"{len(pids)} worker(s), {len(busy)} in an invocation; this one {worker_age:.0f} s old, "
                    f"{cpu:.1f} s CPU in all",
                    offset,
                )
                self.result.kills.append(kill)
                say(f"killed a {function} worker (pid {pid}, {kill.evidence})")
                return kill
        say(f"no {function} worker was in an invocation before the give-up time: none killed")
        return None

    def kill_last_copy(self, deadline: float) -> None:
        """The reproducer: once the chosen job's third download (the last receive) is under way, kill
        the copier streaming it (the one connected to the fake for 2 s on end: only that one trickles)."""
        assert self.stack is not None and self.last_copy is not None
        path = f"/videos/{self.last_copy.request_id}.mp4"
        name = self.stack.function("copier")
        while time.time() < deadline and not self._stop.is_set():
            self._stop.wait(2)
            gets = sum(1 for m, p in fake_call(self.fake_url, "GET", "/_fake/requests")["requests"] if p == path)
            if gets < 3:
                continue
            first = {pid: connections_to(pid, self.fake_port) for pid in lambda_workers(self.ministack_pid, name)}
            time.sleep(2)
            for pid, inodes in first.items():
                if inodes and inodes & connections_to(pid, self.fake_port):
                    offset = log_size()
                    os.kill(pid, signal.SIGKILL)
                    kill = Kill(
                        "copier", pid, time.time(), f"streaming {path}, its 3rd download (the last receive)", offset
                    )
                    self.result.kills.append(kill)
                    say(f"killed the copier streaming {self.last_copy.client_ref}'s last allowed copy (pid {pid})")
                    return
        say("the chosen job's last copy was never seen under way: not killed")

    def burst(self, count: int) -> None:
        assert self.stack is not None
        at = time.time()
        threads = [threading.Thread(target=self.stack.kick, args=(f"chaos.burst{count}",)) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.result.kicks += count
        time.sleep(3)  # cold starts of the extra workers
        best = 0
        for _ in range(20):
            pids = lambda_workers(self.ministack_pid, self.stack.function("poller"))
            best = max(best, sum(1 for pid in pids if not between_invocations(pid)))
            if best >= count:
                break
            time.sleep(0.5)
        self.result.bursts.append((at, count, best))
        say(f"{count} pollers invoked at once: {best} poller workers seen working at once")

    # -- the whole run

    def chaos(self, deadline: float) -> list[threading.Thread]:
        """The kills and the bursts, each in a thread of its own that acts once its share of the
        requests has settled (a kill may wait a while for a worker in an invocation)."""
        o, n = self.o, len(self.result.requests)
        kills = [("poller", 0.05), ("copier", 0.10), ("poller", 0.35), ("copier", 0.60)]
        actions = [(frac, "kill", fn) for fn, frac in [k for k in kills if k[0] == "poller"][: o.poller_kills]]
        actions += [(frac, "kill", fn) for fn, frac in [k for k in kills if k[0] == "copier"][: o.copier_kills]]
        actions += [(0.20, "burst", "2"), (0.50, "burst", "4")]

        def act(frac: float, kind: str, arg: str) -> None:
            while self.done < frac * n and not self._stop.is_set():
                self._stop.wait(0.5)
            if self._stop.is_set():
                return
            if kind == "kill":
                self.kill_one(arg, give_up_at=min(deadline, time.time() + 120))
            else:
                self.burst(int(arg))

        threads = [threading.Thread(target=act, args=a, name=f"{a[1]}-{a[2]}", daemon=True) for a in sorted(actions)]
        for thread in threads:
            thread.start()
        return threads

    def execute(self) -> Result:
        r, o = self.result, self.o
        assert self.stack is not None
        self.inject_faults()
        say(
            f"faults injected; putting {len(r.requests)} requests, {o.put_batch} per PutEvents, {o.put_pause:g} s apart"
        )
        putter = threading.Thread(target=self.put_all, name="putter", daemon=True)
        putter.start()
        while not r.first_put:
            time.sleep(0.05)
        deadline = r.first_put + o.deadline
        sampler = threading.Thread(target=self.sampler, name="sampler", daemon=True)
        sampler.start()
        actors = self.chaos(deadline)
        if self.last_copy is not None:
            threading.Thread(target=self.kill_last_copy, args=(deadline,), name="last-copy", daemon=True).start()
        n = len(r.requests)
        last_kick = time.time()
        last_report = 0.0
        quiet_since: float | None = None
        stuck_since: float | None = None
        while True:
            items = self.latest_items()
            done, open_ = self.settled(items) if items else (0, ["(no scan yet)"])
            self.done = done
            now = time.time()
            if now - last_report >= 15:
                last_report = now
                states = Counter(str(i.get("state")) for i in items if not i["request_id"].startswith("#"))
                say(f"+{now - r.first_put:5.0f} s: {done}/{n} settled; items {dict(sorted(states.items()))}")
            if done >= n and not putter.is_alive():
                if quiet_since is None:
                    quiet_since = now
                if self.quiescent(items) or now - quiet_since > 120:
                    r.settled_at = quiet_since
                    break
            else:
                quiet_since = None
            if done < n and not putter.is_alive() and items and self.quiescent(items):
                stuck_since = stuck_since or now
                if now - stuck_since >= STUCK_AFTER:
                    say(f"{n - done} request(s) can no longer settle: nothing is due and no queue holds them, e.g.:")
                    for line in open_:
                        print(f"    {line}", flush=True)
                    break
            else:
                stuck_since = None
            if now >= deadline:
                say(f"deadline: {n - done} request(s) not settled after {o.deadline:.0f} s, e.g.:")
                for line in open_:
                    print(f"    {line}", flush=True)
                break
            if done < n and now - last_kick >= o.kick_every:
                self.stack.kick()
                r.kicks += 1
                last_kick = now
            self._stop.wait(2)
        time.sleep(5)  # a late duplicate would come right behind
        self._stop.set()
        for thread in (sampler, putter, *actors):
            thread.join(timeout=150)
        assert self.capture is not None
        self.capture.stop()
        r.finished = time.time()
        self.collect()
        return r

    def quiescent(self, items: list[dict[str, Any]]) -> bool:
        """Nothing left to do: no item in the due index, the submit and copy queues empty."""
        assert self.stack is not None
        if any("due_shard" in i for i in items):
            return False
        return all(self.stack.queue_depth(self.stack.outputs[q]) == 0 for q in ("SubmitQueueUrl", "CopyQueueUrl"))

    # -- afterwards

    def collect(self) -> None:
        r = self.result
        assert self.stack is not None and self.capture is not None
        s3 = self.stack.client("s3")
        r.items = self.stack.scan()
        r.events = self.capture.snapshot()
        r.fake_read_at = time.time()
        r.fake_jobs = {j["request_id"]: j for j in fake_call(self.fake_url, "GET", "/_fake/jobs")["jobs"]}
        r.injected = fake_call(self.fake_url, "GET", "/_fake/faults")["injected"]
        r.creates = len(fake_call(self.fake_url, "GET", "/_fake/creates")["accepted"])
        bucket = self.stack.outputs["VideoBucketName"]
        source = VideoSource(DEFAULT_VIDEO_PATH)
        for item in r.items:
            if item.get("state") != "STORED":
                continue
            key = str(item["key"])
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            digest, size = hashlib.sha256(), 0
            for piece in iter(lambda b=body: b.read(MiB), b""):
                digest.update(piece)
                size += len(piece)
            r.objects[key] = (digest.hexdigest(), size)
            fake_size = (r.fake_jobs.get(item["request_id"]) or {}).get("video_size")
            if fake_size not in r.expected_digest:
                d = hashlib.sha256()
                for piece in source.chunks(fake_size):
                    d.update(piece)
                r.expected_digest[fake_size] = (d.hexdigest(), source.length(fake_size))
        uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        r.uploads_in_progress = [f"{u['Key']} ({u['UploadId'][:12]}..., started {u.get('Initiated')})" for u in uploads]
        sqs = self.stack.client("sqs")
        for name in (
            "CopyDeadLetterQueueUrl",
            "SubmitDeadLetterQueueUrl",
            "PollerScheduleDeadLetterQueueUrl",
            "RegisterDeadLetterQueueUrl",
        ):
            url = self.stack.outputs.get(name)
            if not url:
                continue
            bodies: list[dict[str, Any]] = []
            while True:
                got = sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300, WaitTimeSeconds=0
                ).get("Messages", [])
                if not got:
                    break
                for m in got:
                    try:
                        bodies.append(json.loads(m["Body"]))
                    except ValueError:
                        bodies.append({"unreadable": m["Body"][:200]})
            r.dlq[name] = bodies
        for name in ("SubmitQueueUrl", "CopyQueueUrl"):
            r.queues_left[name] = self.stack.queue_depth(self.stack.outputs[name])
        r.emulator_timeouts, r.log_lines = read_emulator_log(r.kills, self.stack, self.log_start)
        self.keep_evidence()

    def keep_evidence(self) -> None:
        """The run's raw material, for a post-mortem: ``.local/chaos-<run>.json`` and the emulator's log
        (every Lambda's output) as ``.local/chaos-<run>-ministack.log`` (the next ``up`` starts a new one)."""
        r = self.result
        doc = {
            "options": vars(r.options),
            "requests": [vars(req) for req in r.requests],
            "items": r.items,
            "events": r.events,
            "fake_jobs": r.fake_jobs,
            "fake_read_at": r.fake_read_at,
            "injected": r.injected,
            "kills": [vars(k) for k in r.kills + r.emulator_timeouts],
            "bursts": r.bursts,
            "samples": [vars(s) for s in r.samples],
        }
        r.evidence = LOCAL / f"chaos-{r.run}.json"
        r.evidence.write_text(json.dumps(doc, default=str))
        try:
            with MINISTACK_LOG.open("rb") as log:
                log.seek(self.log_start)
                (LOCAL / f"chaos-{r.run}-ministack.log").write_bytes(log.read())
        except OSError:
            pass


def read_emulator_log(kills: list[Kill], stack: Stack, start: int) -> tuple[list[Kill], dict[int, list[str]]]:
    """The emulator's own kills (an invocation past its timeout) and, per kill of ours, the lines it
    logged about that function after it; from ``start`` (the log outlives ``down``: earlier runs precede)."""
    try:
        with MINISTACK_LOG.open("rb") as log:
            log.seek(start)
            raw = log.read()
    except OSError:
        return [], {}
    text = raw.decode(errors="replace")
    names = {stack.function(f): f for f in ("poller", "copier", "submit", "register")}
    timeouts = []
    stamp = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:,(\d{3}))? ")
    for line in text.splitlines():
        match = re.search(r"Lambda (\S+) timed out after (\d+)s", line)
        when = stamp.match(line)
        if match and when and match.group(1) in names:
            at = datetime.strptime(when.group(1), "%Y-%m-%d %H:%M:%S").timestamp() + int(when.group(2) or 0) / 1000
            timeouts.append(Kill(names[match.group(1)], 0, at, line[:200], 0, by="emulator"))
    after: dict[int, list[str]] = {}
    for kill in kills:
        tail = raw[kill.log_offset - start : kill.log_offset - start + 400_000].decode(errors="replace").splitlines()
        name = stack.function(kill.function)
        lines = [
            ln.strip()[:200]
            for ln in tail
            if stamp.match(ln) and name in ln and re.search(r"died|exited|failed processing|attempt 2", ln)
        ]
        after[kill.pid] = lines[:3]
    return timeouts, after


def outside_invariant(item: dict[str, Any], now: float, has_succeeded: Callable[[str], bool]) -> str | None:
    """Why a job item is outside "finished, in the due index, leased, or SUCCEEDED with its event out"."""
    state = item.get("state")
    due = "due_shard" in item and "next_poll_at" in item
    if "outbox" in item and not due:
        return f"{state} owes {item['outbox']} but is not in the due index"
    if state in TERMINAL or due:
        return None
    if "lease_until" in item:
        return None
    if state == "SUCCEEDED" and has_succeeded(item["request_id"]):
        return None  # the copy queue holds it
    return f"{state}, not due, not leased" + (", its Succeeded event not seen" if state == "SUCCEEDED" else "")


def describe_item(item: dict[str, Any] | None) -> str:
    if item is None:
        return "no item"
    keys = ("state", "reason", "outbox", "due_shard", "next_poll_at", "lease_until", "attempts")
    return ", ".join(f"{k}={item[k]}" for k in keys if k in item)


def say(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------- checks


@dataclass
class Row:
    name: str
    value: str
    target: str
    ok: bool | None  # None: reported, not judged


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def explained(kills: list[Kill], emitters: tuple[str, ...], first_at: float) -> Kill | None:
    """A kill of an emitting function within its crash window after the first copy (whole-second envelope time)."""
    for kill in kills:
        if kill.function in emitters and first_at - 1 <= kill.at <= first_at + 1 + CRASH_WINDOW:
            return kill
    return None


def check(r: Result) -> tuple[list[Row], list[str], dict[str, Any]]:
    """The invariants as table rows, notes (details of anything odd), and the figures for the summary."""
    rows: list[Row] = []
    notes: list[str] = []
    items = {i["request_id"]: i for i in r.items}
    reservations = {i.get("client_ref"): i for i in r.items if i["request_id"].startswith(SUBMISSION_PREFIX)}
    ours = [e for e in r.events if (e.get("detail") or {}).get("client_ref", "").startswith(f"chaos-{r.run}-")]
    by_ref: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in ours:
        by_ref[event["detail"]["client_ref"]].append(event)
    crashes = r.kills  # only ours: a function past its own timeout is a failure of its time budget

    # Final state of every request.
    final: dict[int, tuple[str, str | None, dict[str, Any] | None]] = {}
    for req in r.requests:
        reservation = reservations.get(req.client_ref) if req.kind == "submitted" else None
        if reservation is not None and reservation.get("state") == "SUBMITTED":
            req.request_id = reservation.get("job_request_id")
        item = items.get(req.request_id or "") if req.request_id else None
        if req.kind == "submitted" and (reservation is None or reservation.get("state") != "SUBMITTED"):
            item = reservation
        state = str(item.get("state")) if item else "MISSING"
        final[req.index] = (state, item.get("reason") if item else None, item)
    n = len(r.requests)
    states = Counter(s for s, _, _ in final.values())
    stuck = [req for req in r.requests if final[req.index][0] not in TERMINAL]
    leftover = Counter(str(i.get("state")) for i in r.items if i.get("state") in ("PENDING", "SUCCEEDED", "RESERVED"))
    rows.append(
        Row(
            "every job terminal",
            f"{n - len(stuck)}/{n}: "
            + ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
            + (f"; table: {dict(leftover)}" if leftover else ""),
            "all STORED/FAILED/ARCHIVE_FAILED; none RESERVED/PENDING/SUCCEEDED",
            not stuck and not leftover,
        )
    )
    for req in stuck[:10]:
        notes.append(
            f"not terminal: {req.client_ref} {req.kind} {req.outcome} {req.request_id}: "
            f"{describe_item(final[req.index][2])}"
        )

    # Outcomes against what the provider said.
    uncertain = [req for req in r.requests if final[req.index][1] == "SUBMIT_UNCERTAIN"]
    wrong = []
    for req in r.requests:
        state, reason, _ = final[req.index]
        if req.kind == "submitted" and reason == "SUBMIT_UNCERTAIN":
            continue
        if (state, reason) != EXPECTED[req.outcome]:
            wrong.append(f"{req.client_ref} {req.kind} {req.outcome}: {state} {reason}")
    rows.append(
        Row(
            "outcome as the provider said",
            f"{n - len(wrong) - len(uncertain)} as expected + {len(uncertain)} SUBMIT_UNCERTAIN, {len(wrong)} other",
            "0 other",
            not wrong,
        )
    )
    notes += [f"unexpected outcome: {w}" for w in wrong[:10]]

    # SUBMIT_UNCERTAIN: created at the provider or not (the fake's jobs carry the prompt).
    tags: Counter[str] = Counter()
    for job in r.fake_jobs.values():
        m = re.match(rf"chaos {r.run} #(\d+):", job.get("prompt") or "")
        if m:
            tags[m.group(1)] += 1
    created_uncertain = sum(1 for req in uncertain if tags.get(f"{req.index:04d}"))
    twice = [t for t, c in tags.items() if c > 1]
    submitted_reqs = [req for req in r.requests if req.kind == "submitted"]
    rows.append(
        Row(
            "  SUBMIT_UNCERTAIN (a create not answered)",
            f"{len(uncertain)} of {len(submitted_reqs)} submitted: {created_uncertain} made at the provider, "
            f"{len(uncertain) - created_uncertain} not",
            "counted (correct by design)",
            None,
        )
    )
    rows.append(
        Row(
            "  provider jobs per submitted request",
            f"{sum(tags.values())} jobs for {len(tags)} requests; {len(twice)} with more than one",
            "<= 1 (never created twice)",
            not twice,
        )
    )

    # Exactly one terminal generation event per request.
    missing, dup_explained, dup_unexplained = [], [], []
    for req in r.requests:
        evs = [e for e in by_ref.get(req.client_ref, []) if e["detail-type"] in (SUCCEEDED, FAILED)]
        if not evs:
            missing.append(req)
            continue
        keys = Counter((e["detail-type"], e["detail"].get("request_id")) for e in evs)
        if len(keys) > 1:
            dup_unexplained.append(f"{req.client_ref}: different terminal events {dict(keys)}")
            continue
        if len(evs) > 1:
            ((dt, rid),) = keys
            first = min(event_time(e) for e in evs)
            emitters = ("submit",) if str(rid).startswith(SUBMISSION_PREFIX) else EMITTERS[dt]
            why = explained(crashes, emitters, first)
            line = f"{req.client_ref} {rid}: {len(evs)} x {dt}, first at {iso(first)}"
            if why:
                dup_explained.append(f"{line}; {why.by} kill of {why.function} at {iso(why.at)}")
            else:
                dup_unexplained.append(line)
    rows.append(
        Row(
            "one Succeeded or Failed per job",
            f"{n - len(missing)}/{n} have one; {len(dup_explained)} duplicated after a crash, "
            f"{len(dup_unexplained)} otherwise",
            "none missing; duplicates only after a crash",
            not missing and not dup_unexplained,
        )
    )
    notes += [f"no terminal event: {m.client_ref} {m.kind} {m.outcome} ({final[m.index][0]})" for m in missing[:10]]
    notes += [f"duplicate after a crash: {d}" for d in dup_explained]
    notes += [f"duplicate WITHOUT a crash: {d}" for d in dup_unexplained]

    # Video Stored per stored job; Video Archive Failed per archive failure.
    for dt, state in ((STORED, "STORED"), (ARCHIVE_FAILED, "ARCHIVE_FAILED")):
        holders = [req for req in r.requests if final[req.index][0] == state]
        miss, ok_dup, bad_dup, extra = [], [], [], []
        for req in holders:
            evs = [e for e in by_ref.get(req.client_ref, []) if e["detail-type"] == dt]
            if not evs:
                miss.append(req.client_ref)
            elif len(evs) > 1:
                first = min(event_time(e) for e in evs)
                why = explained(crashes, EMITTERS[dt], first)
                line = f"{req.client_ref} {req.request_id}: {len(evs)} x {dt}, first at {iso(first)}"
                (ok_dup if why else bad_dup).append(
                    line + (f"; {why.by} kill of {why.function} at {iso(why.at)}" if why else "")
                )
        for req in r.requests:
            if final[req.index][0] != state and any(e["detail-type"] == dt for e in by_ref.get(req.client_ref, [])):
                extra.append(f"{req.client_ref} is {final[req.index][0]} but has a {dt}")
        rows.append(
            Row(
                f"a {dt} per {state} job",
                f"{len(holders) - len(miss)}/{len(holders)}; {len(ok_dup)} duplicated after a crash, "
                f"{len(bad_dup)} otherwise; {len(extra)} on other jobs",
                "none missing; duplicates only after a crash",
                not miss and not bad_dup and not extra,
            )
        )
        notes += [f"no {dt}: {m}" for m in miss[:10]] + [f"{dt} duplicate after a crash: {d}" for d in ok_dup]
        notes += [f"{dt} duplicate WITHOUT a crash: {d}" for d in bad_dup] + extra[:10]

    # The bytes.
    stored = [(req, final[req.index][2]) for req in r.requests if final[req.index][0] == "STORED"]
    bad_bytes = []
    stored_events = {e["detail"]["request_id"]: e["detail"] for e in ours if e["detail-type"] == STORED}
    for req, item in stored:
        assert item is not None
        fake_size = (r.fake_jobs.get(item["request_id"]) or {}).get("video_size")
        expected = r.expected_digest.get(fake_size)
        got = r.objects.get(str(item["key"]))
        announced = (stored_events.get(item["request_id"]) or {}).get("sha256")
        if not expected or not got or got != expected or item.get("sha256") != expected[0] or announced != expected[0]:
            bad_bytes.append(
                f"{req.client_ref}: object {got}, expected {expected}, item {item.get('sha256')}, event {announced}"
            )
    rows.append(
        Row(
            "stored bytes = the fake's bytes (sha256)",
            f"{len(stored) - len(bad_bytes)}/{len(stored)} objects (read back from S3; = item = Video Stored)",
            "all equal",
            bool(stored) and not bad_bytes,
        )
    )
    notes += [f"bytes differ: {b}" for b in bad_bytes[:10]]

    # The table and the bucket at rest.
    due = [i["request_id"] for i in r.items if "due_shard" in i or "next_poll_at" in i]
    rows.append(Row("due index empty", f"{len(due)} item(s) with due_shard", "0", not due))
    notes += [f"still due: {d}: {describe_item(items.get(d))}" for d in due[:10]]
    rows.append(
        Row(
            "no incomplete multipart upload",
            f"{len(r.uploads_in_progress)} in the video bucket",
            "0",
            not r.uploads_in_progress,
        )
    )
    notes += [f"multipart upload left: {u}" for u in r.uploads_in_progress[:10]]

    # Dead-letter queues.
    copy_dlq = r.dlq.get("CopyDeadLetterQueueUrl", [])
    copy_ids = {((m.get("detail") or {}).get("request_id")) for m in copy_dlq}
    archive_failed_ids = {str(i["request_id"]) for i in r.items if i.get("state") == "ARCHIVE_FAILED"} & {
        e["detail"]["request_id"] for e in ours if e["detail-type"] == ARCHIVE_FAILED
    }
    others = {k: len(v) for k, v in r.dlq.items() if k != "CopyDeadLetterQueueUrl" and v}
    rows.append(
        Row(
            "DLQs hold only reported archive failures",
            f"copy DLQ {len(copy_dlq)} message(s), {len(copy_ids - archive_failed_ids)} not ARCHIVE_FAILED+announced; "
            f"other DLQs {others or 'empty'}; queues left {r.queues_left}",
            "copy DLQ ids ⊆ Video Archive Failed; others empty",
            copy_ids <= archive_failed_ids and not others,
        )
    )

    # No job ever left behind.
    violations = [v for s in r.samples for v in s.violations]
    distinct = list(dict.fromkeys(violations))
    rows.append(
        Row(
            "no job left behind (table samples)",
            f"{len(r.samples)} samples every {r.options.sample_every:g} s, up to "
            f"{max((s.jobs for s in r.samples), default=0)} jobs: {len(violations)} violation(s)",
            "0 (finished, due, leased, or SUCCEEDED with its event out)",
            bool(r.samples) and not violations,
        )
    )
    notes += [f"outside the invariant ({violations.count(v)} samples): {v}" for v in distinct[:10]]

    # Events against their schemas.
    schema = [
        f"{e['detail-type']} {e['detail'].get('request_id')}: {errors_for(e['detail-type'], e['detail'])}" for e in ours
    ]
    schema = [s for s, e in zip(schema, ours, strict=True) if errors_for(e["detail-type"], e["detail"])]
    rows.append(
        Row(
            "every output event matches its schema",
            f"{len(ours)} events, {len(schema)} invalid",
            "0 invalid",
            not schema,
        )
    )
    notes += [f"schema: {s}" for s in schema[:5]]

    # The chaos done.
    done_kills = Counter(k.function for k in r.kills)
    want = {"poller": r.options.poller_kills, "copier": r.options.copier_kills}
    rows.append(
        Row(
            "workers killed while working",
            f"poller {done_kills['poller']}, copier {done_kills['copier']}",
            f">= 1 each (planned {want['poller']}/{want['copier']})",
            done_kills["poller"] >= min(1, want["poller"]) and done_kills["copier"] >= min(1, want["copier"]),
        )
    )
    rows.append(
        Row(
            "no invocation ran past its timeout",
            f"{len(r.emulator_timeouts)} killed by the emulator at their timeout"
            + (f" ({dict(Counter(k.function for k in r.emulator_timeouts))})" if r.emulator_timeouts else ""),
            "0 (each function's time budget ends its work first)",
            not r.emulator_timeouts,
        )
    )
    notes += [f"ran past its timeout: {k.function} at {iso(k.at)}: {k.evidence}" for k in r.emulator_timeouts]
    for count in (2, 4):
        seen = [b for b in r.bursts if b[1] == count]
        rows.append(
            Row(
                f"{count} pollers sweeping at once",
                f"invoked {count} at once: {seen[0][2] if seen else 0} poller workers seen working together"
                if seen
                else "not reached",
                f">= {count}",
                bool(seen) and seen[0][2] >= count,
            )
        )

    # Latency: provider done -> Video Stored (and its two legs, through Video Generation Succeeded).
    latencies, detect, copy = [], [], []
    slow: list[tuple[float, str]] = []
    for req, item in stored:
        assert item is not None
        job = r.fake_jobs.get(item["request_id"])
        evs = [e for e in by_ref.get(req.client_ref, []) if e["detail-type"] == STORED]
        succ = [e for e in by_ref.get(req.client_ref, []) if e["detail-type"] == SUCCEEDED]
        if not job or not evs or not succ:
            continue
        done_at = r.fake_read_at - float(job["elapsed"]) + float(job["ready_after"])
        stored_at, succeeded_at = min(event_time(e) for e in evs), min(event_time(e) for e in succ)
        latencies.append(stored_at - done_at)
        detect.append(succeeded_at - done_at)
        copy.append(stored_at - succeeded_at)
        slow.append(
            (
                stored_at - done_at,
                f"slowest: {req.client_ref} {item['request_id']}: done -> Succeeded {succeeded_at - done_at:.0f} s, "
                f"-> Stored {stored_at - succeeded_at:.0f} s ({item.get('size_bytes')} B)",
            )
        )
    notes += [line for _, line in sorted(slow, reverse=True)[:5]]
    figures = {
        "latency": latencies,
        "p50": percentile(latencies, 0.5),
        "p95": percentile(latencies, 0.95),
        "max": max(latencies, default=float("nan")),
    }

    def spread(values: list[float]) -> str:
        return (
            f"p50 {percentile(values, 0.5):.0f}, p95 {percentile(values, 0.95):.0f}, max {max(values, default=0):.0f} s"
        )

    bound = r.options.poll_interval + 5
    rows.append(
        Row(
            "provider done -> Video Stored",
            f"p50 {figures['p50']:.1f} s, p95 {figures['p95']:.1f} s, max {figures['max']:.1f} s "
            f"({len(latencies)} videos)",
            f"max <= {max_latency(r.options):.0f} s (a crash's worst case); p50, p95 reported "
            f"(one job alone: <= {bound} s + copy)",
            bool(latencies) and figures["max"] <= max_latency(r.options),
        )
    )
    rows.append(
        Row(
            "  done -> Succeeded | Succeeded -> Stored",
            f"{spread(detect)} | {spread(copy)}",
            "reported (event times: whole seconds)",
            None,
        )
    )
    if r.put_failures:
        rows.insert(0, Row("PutEvents entries refused", str(r.put_failures), "0", False))
    return rows, notes, figures


def max_latency(o: Options) -> float:
    """The longest done -> stored a crash can explain: a killed poller's lease (its jobs wait for it),
    then a killed copier's message (back after the copy queue's visibility), then a cut download's
    retry (10 s), each followed by a poll interval and a relay, plus a minute of slack for the emulator."""
    return LEASE_SECONDS + o.copy_visibility + 10 + 2 * (o.poll_interval + RELAY_AFTER) + 60


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")


# --------------------------------------------------------------------------- report


def report(r: Result) -> bool:
    rows, notes, _ = check(r)
    o = r.options
    print()
    print(f"machine: {describe()}")
    print(
        f"options: --jobs {o.jobs} --seed {o.seed} (run {r.run}); PollIntervalSeconds={o.poll_interval}, "
        f"SubmitRatePerSecond={o.submit_rate:g}, copy queue visibility {o.copy_visibility} s (template 1800); puts "
        f"{o.put_batch} per call, {o.put_pause:g} s apart; kicks every {o.kick_every:g} s; deadline {o.deadline:.0f} s"
    )
    wall = r.finished - r.started
    settle = (r.settled_at - r.first_put) if r.settled_at else None
    print(
        f"wall time {wall:.0f} s (deploy {r.deploy_seconds:.0f} s; puts {r.last_put - r.first_put:.0f} s; "
        f"first put -> all settled {f'{settle:.0f} s' if settle is not None else 'NOT SETTLED'}); "
        f"poller kicks {r.kicks}"
    )
    by_kind: dict[str, Counter[str]] = {"tracked": Counter(), "submitted": Counter()}
    items = {i["request_id"]: i for i in r.items}
    reservations = {i.get("client_ref"): i for i in r.items if i["request_id"].startswith(SUBMISSION_PREFIX)}
    for req in r.requests:
        item = items.get(req.request_id or "")
        if req.kind == "submitted":
            res = reservations.get(req.client_ref)
            if res is not None and res.get("state") != "SUBMITTED":
                item = res
        label = (
            f"{item.get('state')}" + (f" {item.get('reason')}" if item and item.get("reason") else "")
            if item
            else "MISSING"
        )
        by_kind[req.kind][label] += 1
    print("outcomes:")
    for label in sorted(set(by_kind["tracked"]) | set(by_kind["submitted"])):
        print(f"  {label:<34} tracked {by_kind['tracked'][label]:>4}   submitted {by_kind['submitted'][label]:>4}")
    asked = Counter(req.outcome for req in r.requests)
    print(
        "  asked of the provider: "
        + ", ".join(f"{k} {asked[k]}" for k in OUTCOME_SHARES)
        + f"; provider creates {r.creates}"
    )
    print("faults injected by the fake (requests that took each):")
    groups: dict[str, list[str]] = defaultdict(list)
    for f in sorted(r.injected, key=lambda f: (str(f["path"]), str(f["method"]), str(f["fault"]))):
        where = (
            "video downloads"
            if f["path"].startswith("/videos/")
            else ("creates (POST)" if f["method"] == "POST" else "polls (GET)")
        )
        groups[where].append(f"{f['fault']} {f['count']}")
    for where, parts in groups.items():
        print(f"  {where:<16} " + ", ".join(parts))
    print("kills:")
    for kill in r.kills + r.emulator_timeouts:
        print(f"  +{kill.at - r.first_put:6.1f} s {kill.by:>8} {kill.function:<7} pid {kill.pid:<7} {kill.evidence}")
        for line in r.log_lines.get(kill.pid, []) if kill.by == "chaos" else []:
            print(f"      emulator: {line}")
    for at, count, seen in r.bursts:
        print(f"  +{at - r.first_put:6.1f} s {count} pollers invoked at once ({seen} seen working together)")
    print()
    width = max(len(row.name) for row in rows)
    for row in rows:
        verdict = "" if row.ok is None else ("PASS" if row.ok else "FAIL")
        print(f"{row.name:<{width}}  {verdict:<4}  {row.value}")
        print(f"{'':<{width}}        target: {row.target}")
    if notes:
        print()
        for note in notes[:60]:
            print(f"  - {note}")
    if r.evidence:
        print(f"\nevidence: {r.evidence.relative_to(ROOT)} and {r.evidence.stem}-ministack.log beside it")
    return all(row.ok is not False for row in rows)


# --------------------------------------------------------------------------- main


def run(options: Options) -> Result:
    """One chaos run, everything started and stopped here (the stack too, unless ``keep_up``)."""
    chaos = ChaosRun(options)
    with ExitStack() as stack:
        fake = stack.enter_context(
            fake_cometapi("--api-key", API_KEY, "--ready-after", "10", "--fault-seed", str(options.seed))
        )
        if not options.keep_up:
            stack.callback(lambda: (say("local/stack.py down"), run_stack("down", timeout=180)))
        chaos.deploy(fake.url)
        return chaos.execute()


def parse(argv: list[str] | None = None) -> Options:
    d = Options()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=d.jobs, help="requests, half tracked and half submitted")
    p.add_argument("--seed", type=int, default=d.seed, help="the plan's and the fake's fault draws' seed")
    p.add_argument("--deadline", type=float, default=d.deadline, help="seconds after the first put for all to settle")
    p.add_argument("--submit-rate", type=float, default=d.submit_rate, help="SubmitRatePerSecond")
    p.add_argument("--poller-kills", type=int, default=d.poller_kills)
    p.add_argument("--copier-kills", type=int, default=d.copier_kills)
    p.add_argument("--copy-visibility", type=int, default=d.copy_visibility, help="the copy queue's visibility timeout")
    p.add_argument("--big-size", type=int, default=d.big_size, help="bytes of the big videos (6 %% of done jobs)")
    p.add_argument("--kick-every", type=float, default=d.kick_every)
    p.add_argument("--keep-up", action="store_true", help="leave the stack running afterwards")
    p.add_argument(
        "--crash-last-copy",
        action="store_true",
        help="also kill the copier on one job's last allowed receive (its first two downloads fail)",
    )
    a = p.parse_args(argv)
    return Options(
        jobs=a.jobs,
        seed=a.seed,
        deadline=a.deadline,
        submit_rate=a.submit_rate,
        poller_kills=a.poller_kills,
        copier_kills=a.copier_kills,
        copy_visibility=a.copy_visibility,
        big_size=a.big_size,
        kick_every=a.kick_every,
        keep_up=a.keep_up,
        crash_last_copy=a.crash_last_copy,
    )


def interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C: the stack and the fake are stopped


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    signal.signal(signal.SIGTERM, interrupted)
    print(f"machine: {describe()}", flush=True)
    result = run(options)
    return 0 if report(result) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: the stack and the fake were stopped", file=sys.stderr)
        sys.exit(130)
