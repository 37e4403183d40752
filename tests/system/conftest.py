"""System-test fixtures: the real template deployed on the local emulator, driven from outside.

The session starts the fake CometAPI in-process, deploys the stack onto ministack with
``local/stack.py`` (its CLI, as a user would), and talks to it only through its public surface:
PutEvents on the bus, the stack outputs, the jobs table, the video bucket, the functions' log
groups and the output events. Those are captured by a test-only rule on the bus
(``source: [<EventSource>]``) into a test-only SQS queue: the ``EventTap`` of ``grokvideo events``.

Every scenario is registered at once right after the deploy (``jobs``), so the suite waits for
all of them in parallel; the tests then only wait for (and check) their own outcome.

``make test`` (or ``python local/stack.py venvs && python -m pytest tests/system``) runs them;
the finalizers always run ``stack.py down`` and stop the fake, even when the deploy fails.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from grokvideo.cli.tail import EventTap
from local.fake_cometapi import FakeCometAPI
from tests.schema_check import assert_valid_event, errors_for

REPO = Path(__file__).resolve().parents[2]
LOCAL = REPO / ".local"
OUTPUTS_FILE = LOCAL / "outputs.json"
LATENCY_FILE = LOCAL / "system-latency.txt"

# A distinctive secret per session, so the end-of-session scan (test_wiring.py) can tell it from
# anything else: the fake accepts only it, and `stack.py up --api-key` stores it in the secret.
API_KEY = f"sk-systemtest-{secrets.token_hex(16)}"
POLL_INTERVAL = 5  # PollIntervalSeconds: the template's minimum
TEST_SOURCE = "com.example.systemtest"
TRACK = "Video Job Track Requested"
GENERATE = "Video Generation Requested"
EDIT = "Video Edit Requested"
SUBMITTED = "Video Generation Submitted"
SUCCEEDED = "Video Generation Succeeded"
FAILED = "Video Generation Failed"
STORED = "Video Stored"
ARCHIVE_FAILED = "Video Archive Failed"
REJECTED = "Video Request Rejected"
BIG_VIDEO = 12 * 1024 * 1024  # above boto3's 8 MiB multipart threshold: a real multipart upload
KICK_AFTER = 15.0  # seconds without a new event before wait_for invokes the poller again

LATENCY_KEY = pytest.StashKey[list[dict[str, Any]]]()
BOTO_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60)


# --------------------------------------------------------------------------- the stack


def run_stack(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python local/stack.py <args>``; on failure the error carries the tail of its output."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "local" / "stack.py"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-4000:]
        raise RuntimeError(f"local/stack.py {' '.join(args)} exited {proc.returncode}:\n{tail}")
    return proc


@dataclass
class Stack:
    """The deployed stack as ``.local/outputs.json`` describes it, with boto3 clients aimed at it."""

    endpoint_url: str
    region: str
    outputs: dict[str, str]
    parameters: dict[str, str]
    deployed_at: float
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id="test",  # dummy credentials, as `stack.py env` prints them
                aws_secret_access_key="test",
                config=BOTO_CONFIG,
            )
        return self._clients[service]

    @property
    def table(self) -> Any:
        if "_table" not in self._clients:
            resource = boto3.resource(
                "dynamodb",
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id="test",
                aws_secret_access_key="test",
                config=BOTO_CONFIG,
            )
            self._clients["_table"] = resource.Table(self.outputs["JobsTableName"])
        return self._clients["_table"]

    @property
    def bus(self) -> str:
        return self.outputs["EventBusName"]

    @property
    def source(self) -> str:
        return self.outputs.get("EventSource", "grokvideo")

    @property
    def bucket(self) -> str:
        return self.outputs["VideoBucketName"]

    def item(self, request_id: str) -> dict[str, Any] | None:
        """The job's table item (strongly consistent read), or None."""
        return self.table.get_item(Key={"request_id": request_id}, ConsistentRead=True).get("Item")

    def log_messages(self, function_output: str, start_ms: int = 0) -> list[dict[str, Any]]:
        """Every log event of ``/aws/lambda/<function name>`` (output key, e.g. PollerFunctionName)."""
        logs = self.client("logs")
        group = f"/aws/lambda/{self.outputs[function_output]}"
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start_ms}
        seen_tokens: set[str] = set()
        while True:
            page = logs.filter_log_events(**kwargs)
            found.extend(page.get("events", []))
            token = page.get("nextToken")
            if not token or token in seen_tokens:
                return found
            seen_tokens.add(token)
            kwargs["nextToken"] = token


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeCometAPI]:
    server = FakeCometAPI(host="127.0.0.1", port=0, api_key=API_KEY, ready_after=3).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def stack(fake: FakeCometAPI, request: pytest.FixtureRequest) -> Stack:
    """A fresh emulator with the stack deployed against the fake; torn down whatever happens."""
    # Registered before `up`, so a deploy that fails halfway still stops the emulator.
    request.addfinalizer(lambda: run_stack("down", check=False, timeout=120))
    run_stack("down", check=False, timeout=120)  # a fresh emulator: no state from earlier runs
    run_stack(
        "up",
        "--cometapi-base-url",
        fake.base_url,
        "--allowed-video-hosts",
        "127.0.0.1",
        "--api-key",
        API_KEY,
        "--parameter",
        f"PollIntervalSeconds={POLL_INTERVAL}",
    )
    doc = json.loads(OUTPUTS_FILE.read_text())
    return Stack(
        endpoint_url=doc["endpoint_url"],
        region=doc.get("region", "us-east-1"),
        outputs=doc["outputs"],
        parameters=doc.get("parameters", {}),
        deployed_at=float(doc.get("deployed_at") or time.time()),
    )


# --------------------------------------------------------------------------- output events


def event_key(event: dict[str, Any]) -> str:
    """What an output event is about: its request_id, else (a rejection) ``client_ref:<ref>``."""
    detail = event.get("detail") or {}
    return detail.get("request_id") or f"client_ref:{detail.get('client_ref')}"


def event_time(event: dict[str, Any]) -> float:
    """The envelope's ``time`` (whole seconds, set when PutEvents accepted it) as epoch seconds."""
    return datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


class EventLog:
    """Output events captured from the bus, kept for the whole session.

    Draining moves every captured event here (by key), so a test never steals another's events.
    Events the tests put with the stack's own source (forged redeliveries) are recorded as
    ``injected`` and left out of :meth:`of` unless asked for.
    """

    def __init__(self, stack: Stack, tap: EventTap) -> None:
        self.stack = stack
        self.tap = tap
        self.events: list[dict[str, Any]] = []
        self.by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.injected_ids: set[str] = set()
        # Keys (see event_key) of events other tests make the stack emit on purpose (the CLI's),
        # which the session-wide checks accept besides the scenarios'.
        self.expected_keys: set[str] = set()
        self.schema_problems: list[str] = []
        self.kicks = 0
        self.last_kick = 0.0
        self.last_event_at = time.monotonic()

    # -- the poller

    def kick(self) -> None:
        """Invoke the poller asynchronously (as the schedule would) instead of waiting for a tick."""
        self.stack.client("lambda").invoke(
            FunctionName=self.stack.outputs["PollerFunctionName"],
            InvocationType="Event",
            Payload=json.dumps({"source": "systemtest.kick", "detail-type": "Scheduled Event", "detail": {}}),
        )
        self.kicks += 1
        self.last_kick = time.monotonic()

    # -- input

    def put(self, detail_type: str, detail: dict[str, Any], *, source: str = TEST_SOURCE) -> str:
        """PutEvents one entry on the stack's bus; returns the event id."""
        result = self.stack.client("events").put_events(
            Entries=[
                {
                    "EventBusName": self.stack.bus,
                    "Source": source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                }
            ]
        )
        assert result["FailedEntryCount"] == 0, result
        event_id = result["Entries"][0]["EventId"]
        if source == self.stack.source:
            self.injected_ids.add(event_id)
        return event_id

    # -- output

    def drain(self, wait_seconds: int = 1) -> int:
        """Move every captured event into the log; returns how many arrived."""
        arrived = 0
        wait = wait_seconds
        while True:
            batch = self.tap.receive(wait_seconds=wait)
            if not batch:
                return arrived
            wait = 0
            for event in batch:
                event["_received_at"] = time.time()
                event["_injected"] = event.get("id") in self.injected_ids
                problems = errors_for(event["detail-type"], event.get("detail"))
                if problems:
                    self.schema_problems.append(f"{event['detail-type']} {event_key(event)}: {problems}")
                self.events.append(event)
                self.by_key[event_key(event)].append(event)
                arrived += 1
            self.last_event_at = time.monotonic()

    def of(self, key: str, detail_type: str | None = None, *, injected: bool = False) -> list[dict[str, Any]]:
        """Events received so far about ``key`` (a request_id), of ``detail_type`` if given."""
        return [
            e
            for e in self.by_key.get(key, [])
            if (detail_type is None or e["detail-type"] == detail_type) and (injected or not e["_injected"])
        ]

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 90, *, count: int = 1, kick: bool = True
    ) -> list[dict[str, Any]]:
        """Drain until ``count`` received events match ``predicate``; returns them (schema-checked).

        Invokes the poller again when nothing has arrived for a while (one invocation stops once
        no job is pending; concurrent pollers are safe by design), unless ``kick`` is False.
        """
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            matches = [e for e in self.events if predicate(e)]
            if len(matches) >= count:
                for event in matches:
                    assert_valid_event(event["detail-type"], event["detail"])
                return matches
            now = time.monotonic()
            if now >= deadline:
                seen = [(e["detail-type"], event_key(e)) for e in self.events]
                raise AssertionError(f"no matching event within {timeout} s; received so far: {seen}")
            if kick and now - max(self.last_event_at, self.last_kick) > KICK_AFTER:
                self.kick()

    def wait_for_event(self, key: str, detail_type: str, timeout: float = 90, *, kick: bool = True) -> dict[str, Any]:
        """The first (non-injected) ``detail_type`` event about ``key``."""
        return self.wait_for(
            lambda e: event_key(e) == key and e["detail-type"] == detail_type and not e["_injected"],
            timeout,
            kick=kick,
        )[0]


@pytest.fixture(scope="session")
def events(stack: Stack) -> Iterator[EventLog]:
    """A test-only queue fed by a rule on the stack's bus matching the stack's EventSource."""
    tap = EventTap(
        stack.client("events"), stack.client("sqs"), bus=stack.bus, source=stack.source, name="systemtest-output-events"
    )
    with tap:
        yield EventLog(stack, tap)


# --------------------------------------------------------------------------- the scenarios


@dataclass
class Scenarios:
    """Request ids (or, for the invalid request, the client_ref) of every scenario of the session."""

    run: str
    ok: str  # small video, provider done 3 s after creation
    ok_big: str  # 12 MiB video (multipart upload), done 10 s after creation, while being polled
    failed: str
    expired: str
    deadline: str  # never finishes at the provider; its deadline_at is moved into the past
    refused: str  # written SUCCEEDED into the table with a metadata-service URL
    invalid_ref: str  # client_ref of the track request with request_id "../etc/passwd"
    refused_url: str = "https://169.254.169.254/latest/meta-data/"
    invalid_request_id: str = "../etc/passwd"
    registered_at: float = 0.0
    # Submitted from a prompt (twice, with one idempotency key): the request, and the provider
    # jobs the submit tests saw created (they add them, so the session-wide checks know them).
    generation: dict[str, Any] = field(default_factory=dict)
    submitted: list[str] = field(default_factory=list)
    # Jobs the redrive tests (test_cli_redrive.py) sent through the stack from a dead-letter queue:
    # ``redriven`` ones were finished by a poller (they count with its successes); ``redriven_copies``
    # were written SUCCEEDED into the table and only copied.
    redriven: list[str] = field(default_factory=list)
    redriven_copies: list[str] = field(default_factory=list)
    # Provider jobs of Step Functions executions (test_task_tokens.py) that a poller ended
    # MODERATED; the stored one is in ``submitted``.
    moderated: list[str] = field(default_factory=list)

    def client_ref(self, name: str) -> str:
        return f"systemtest-{name}-{self.run}"

    def metadata(self, name: str) -> dict[str, Any]:
        return {"scenario": name, "run": self.run, "nested": {"n": 1, "tags": ["a", "b"]}}

    @property
    def tracked(self) -> dict[str, str]:
        return {
            "ok": self.ok,
            "ok_big": self.ok_big,
            "failed": self.failed,
            "expired": self.expired,
            "deadline": self.deadline,
        }


def _wait_for_items(stack: Stack, request_ids: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    missing = list(request_ids)
    while missing:
        missing = [rid for rid in missing if stack.item(rid) is None]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"track requests not registered within {timeout} s: {missing}")
        time.sleep(0.3)


@pytest.fixture(scope="session")
def jobs(stack: Stack, events: EventLog, fake: FakeCometAPI) -> Scenarios:
    """Every scenario submitted at once right after the deploy, then the poller kicked."""
    # Warm-up: the first invocation pays the poller's cold start (~4 s here) while the track
    # requests are registered; it ends at once (nothing pending) and leaves a warm worker, so the
    # measured latencies are the product's, not the emulator's cold start.
    events.kick()
    run = uuid.uuid4().hex[:8]
    sc = Scenarios(
        run=run,
        ok=fake.add_job(outcome="done", ready_after=3),
        ok_big=fake.add_job(outcome="done", ready_after=10, video_size=BIG_VIDEO),
        failed=fake.add_job(outcome="failed", ready_after=3),
        expired=fake.add_job(outcome="expired", ready_after=3),
        deadline=fake.add_job(outcome="done", ready_after=3600),
        refused=f"systemtest-refused-{run}",
        invalid_ref=f"systemtest-invalid-{run}",
    )
    for name, rid in sc.tracked.items():
        events.put(TRACK, {"request_id": rid, "client_ref": sc.client_ref(name), "metadata": sc.metadata(name)})
    events.put(
        TRACK,
        {"request_id": sc.invalid_request_id, "client_ref": sc.invalid_ref, "metadata": sc.metadata("invalid")},
    )
    sc.generation = {
        "prompt": f"a red fox in fresh snow, systemtest {run} [ready_after=3]",
        "duration": 1,
        "resolution": "480p",
        "aspect_ratio": "16:9",
        "client_ref": sc.client_ref("generated"),
        "metadata": sc.metadata("generated"),
        "idempotency_key": f"systemtest-generated-{run}",
    }
    events.put(GENERATE, sc.generation)
    events.put(GENERATE, sc.generation)  # a user sending it again: same key, one paid job
    sc.registered_at = time.time()

    # A job the provider "finished" with a URL on a host the stack does not allow (the metadata
    # service): written into the table as the poller would, then announced with the stack's own
    # source, as anyone allowed to put events on the bus could. The copier reads the URL from the
    # table, never from the event.
    now = int(time.time())
    stack.table.put_item(
        Item={
            "request_id": sc.refused,
            "state": "SUCCEEDED",
            "registered_at": now,
            "deadline_at": now + 3600,
            "attempts": 1,
            "client_ref": sc.client_ref("refused"),
            "metadata": json.dumps(sc.metadata("refused"), separators=(",", ":"), sort_keys=True),
            "model": "grok-imagine-video",
            "video_url": sc.refused_url,
            "duration": 1,
            "cost_usd": Decimal("0.05"),
            "completed_at": now,
        },
        ConditionExpression="attribute_not_exists(request_id)",
    )
    events.put(SUCCEEDED, forged_succeeded(sc.refused, sc.refused_url, sc, "refused"), source=stack.source)

    _wait_for_items(stack, list(sc.tracked.values()))
    # The deadline scenario: MaxJobAgeSeconds keeps its default (1 h); move this job's deadline
    # into the past instead (the table is part of the stack's public surface).
    stack.table.update_item(
        Key={"request_id": sc.deadline},
        UpdateExpression="SET deadline_at = :past",
        ConditionExpression="#s = :pending",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":past": int(time.time()) - 1, ":pending": "PENDING"},
    )
    events.kick()
    return sc


def forged_succeeded(request_id: str, video_url: str, sc: Scenarios, name: str) -> dict[str, Any]:
    """A schema-valid ``Video Generation Succeeded`` detail, for events the tests put themselves."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "request_id": request_id,
        "client_ref": sc.client_ref(name),
        "metadata": sc.metadata(name),
        "schema_version": "1",
        "video_url": video_url,
        "duration": 1,
        "model": "grok-imagine-video",
        "cost_usd": 0.05,
        "submitted_at": None,
        "completed_at": stamp,
    }


# --------------------------------------------------------------------------- latency report


@pytest.fixture(scope="session")
def latencies(request: pytest.FixtureRequest) -> Iterator[list[dict[str, Any]]]:
    """Provider-done -> Video Stored measurements; written to .local/system-latency.txt at the end."""
    rows = request.config.stash.setdefault(LATENCY_KEY, [])
    yield rows
    if rows:
        LOCAL.mkdir(parents=True, exist_ok=True)
        LATENCY_FILE.write_text("\n".join(format_latency(r) for r in rows) + "\n")


def format_latency(row: dict[str, Any]) -> str:
    return (
        f"{row['scenario']:<7} video {row['size_bytes']:>9} B: provider done -> Succeeded event "
        f"{row['detect_s']:5.1f} s, Succeeded -> Stored event {row['copy_s']:4.1f} s, "
        f"done -> stored_at {row['total_s']:5.1f} s (bound {row['bound_s']:.1f} s = "
        f"poll interval {POLL_INTERVAL} + copy + 5 + 1 s rounding)"
    )


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    rows = config.stash.get(LATENCY_KEY, [])
    if rows:
        terminalreporter.section("system: provider done -> Video Stored latency")
        for row in rows:
            terminalreporter.write_line(format_latency(row))
        terminalreporter.write_line(f"(also in {os.path.relpath(LATENCY_FILE, REPO)})")
