"""A month of grokvideo in minutes: the real handlers, run in-process in virtual time, metered.

``simulate(workload, provider_url)`` runs the four handlers (``functions/*/app.py``, imported as
Lambda does) against in-process moto and a fake CometAPI, and returns what they did: every AWS
call (``benchmarks.aws_meter``), every invocation with the duration Lambda would bill, the bytes
they logged and the metrics they emitted, and the output events.

What is real and what is modelled:

- Real: the handlers and the package, their AWS calls (answered by moto, counted with their units
  by the meter), the provider calls (answered by the fake over HTTP), the video download and its
  upload to S3, the logs and EMF metrics the handlers print.
- Virtual time: the clock the package reads (``time.time`` through the constructors' ``clock``,
  the register handler's ``time``, Powertools' secret cache) starts at the wall clock and moves
  only when the simulation moves it; a ``sleep`` of the package moves it at once. So a run of
  hours of schedule takes seconds, and a rate limiter or a sweep loop waits without waiting.
- Around the functions, what AWS does is emulated and counted by hand: EventBridge's rules
  (moto routes the events to queues of the simulation's own, which are not counted), the SQS
  queues and Lambda's event source mappings (a batch is one ReceiveMessage and, when anything
  succeeded, one DeleteMessageBatch; each message the rule delivers is one SendMessage; a record
  that fails comes back when its visibility runs out, or when the function said with
  ChangeMessageVisibility, which the meter intercepts), and the Scheduler (one poller invocation
  every minute; a tick that comes while the poller still runs waits for it).
- The poller runs as the template deploys it: a sweep loop of ``SWEEP_SECONDS`` per invocation.
  When it sleeps until the next due job, the simulation runs whatever else happens meanwhile
  (arrivals, provider jobs finishing, submit and copier invocations), then wakes it.
- Billed duration of an invocation = its compute time in this process (wall time, less what its
  nested invocations and the meter's hooks took; moto in-process stands in for AWS's latency)
  + its virtual waits (sleeps) + modelled latency: ``create_latency`` per create call, the video's
  bytes at ``download_mib_per_s`` per copy. Polls add none (16 run at once inside a loop that
  waits for the next due job anyway). Rounded up to the millisecond, as Lambda bills.

The workload (``Workload``): ``jobs`` generation requests put on the bus one by one by the app
(one PutEvents each), arriving as a Poisson process at ``jobs_per_month``; each provider job is
ready ``ready_after`` seconds (uniform) after it is created; ``failed_share`` of them fail at the
provider (half failed, half moderated); the others' videos are ``video_bytes``. Before the first
arrival the poller runs ``idle_minutes`` ticks with nothing pending: the idle baseline.

Use (starts moto in-process and needs the fake CometAPI, so not a doctest)::

    with FakeCometAPI(api_key=API_KEY, ready_after=1e9) as fake:
        run = simulate(Workload(jobs=5), fake.base_url)
    len(run.invocations_of("copier"))
    # -> 5 (minus the jobs that failed at the provider)
"""

from __future__ import annotations

import contextlib
import heapq
import io
import itertools
import json
import math
import os
import random
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (str(ROOT / "layers" / "shared"), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from benchmarks.aws_meter import AwsMeter, Call, TableShape  # noqa: E402
from benchmarks.stack_facts import StackFacts, stack_facts  # noqa: E402

API_KEY = "cost-key"
BUS = "grokvideo-cost-bus"
TABLE = "grokvideo-cost-jobs"
BUCKET = "grokvideo-cost-videos"
SOURCE = "grokvideo"
APP_SOURCE = "com.example.app"
SECONDS_PER_MONTH = 730 * 3600  # AWS prices a month as 730 hours
MiB = 1 << 20
# A prompt of ~400 characters, as video prompts go (it is kept in the job item: its size counts).
PROMPT = (
    "A red fox trots through fresh snow at dawn, breath steaming in the cold air; the camera tracks "
    "low beside it through a birch forest, soft golden light filtering between the trunks, snow "
    "crystals sparkling, shallow depth of field, gentle wind moving the branches, cinematic colour "
    "grading, 35 mm film look, slow and steady movement, the fox pauses, looks toward the lens, "
    "then bounds away into the trees"
)


@dataclass(frozen=True, slots=True)
class Workload:
    jobs: int = 300
    jobs_per_month: float = 1_000_000
    ready_after: tuple[float, float] = (60.0, 180.0)
    video_bytes: int = 5 * MiB
    failed_share: float = 0.05
    create_latency: float = 1.0
    download_mib_per_s: float = 25.0
    idle_minutes: int = 5
    seed: int = 1

    @property
    def arrivals_per_second(self) -> float:
        return self.jobs_per_month / SECONDS_PER_MONTH


@dataclass(slots=True)
class Invocation:
    """One Lambda invocation and the duration Lambda would bill for it."""

    function: str
    phase: str  # idle | load
    started: float  # virtual epoch seconds
    compute_seconds: float = 0.0
    waited_seconds: float = 0.0  # virtual: sleeps and modelled latency
    records: int = 0
    log_bytes: int = 0
    log_lines: int = 0
    billed_ms: int = 0
    error: str | None = None


@dataclass
class RunRecord:
    """What one simulated run did."""

    workload: Workload
    facts: StackFacts
    calls: list[Call]
    invocations: list[Invocation]
    events: list[dict[str, Any]]  # every output event of ours, as the bus delivered it
    metric_series: dict[str, set[tuple[str, ...]]]  # phase -> (namespace, dimensions..., metric name)
    provider_calls: dict[str, int]  # creates, polls
    sqs_requests: list[tuple[str, str, str, int]]  # (phase, queue, operation, billed requests)
    scheduler_ticks: dict[str, int]  # phase -> Scheduler invocations
    arrivals: list[float]  # virtual time of each request
    settled: dict[str, str]  # request_id -> final detail-type
    pending_seconds: list[float]  # each job: from its request to its generation outcome (virtual)
    idle_ticks: int
    virtual_seconds: float
    wall_seconds: float

    def invocations_of(self, function: str, phase: str | None = None) -> list[Invocation]:
        return [i for i in self.invocations if i.function == function and (phase is None or i.phase == phase)]

    def events_of(self, detail_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("detail-type") == detail_type]


def client_ref(number: int) -> str:
    """The app's reference (and idempotency key) of its ``number``-th request."""
    return f"order-{number:07d}"


# --- virtual time ------------------------------------------------------------------------------


class VirtualClock:
    """Epoch seconds that move only when the simulation moves them."""

    def __init__(self, start: float) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def advance_to(self, moment: float) -> None:
        self.now = max(self.now, moment)


def virtual_datetime(clock: VirtualClock) -> type[datetime]:
    """A ``datetime`` whose ``now()`` is the virtual clock (Powertools' parameter cache reads it)."""

    class VirtualDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> VirtualDatetime:  # type: ignore[override]
            moment = datetime.fromtimestamp(clock.time(), tz)
            return cls(*moment.timetuple()[:6], moment.microsecond, tzinfo=moment.tzinfo)

    return VirtualDatetime


# --- queues and the event source mapping ---------------------------------------------------------


@dataclass(slots=True)
class Message:
    body: str
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    receives: int = 0
    visible_at: float = 0.0


@dataclass(slots=True)
class VirtualQueue:
    """An SQS queue feeding a function through an event source mapping (or, for ``batch_size``
    0, a rule invoking the function directly, one event per invocation)."""

    name: str
    function: str
    batch_size: int
    visibility_timeout: float
    max_receives: int
    messages: list[Message] = field(default_factory=list)
    dead_letters: list[Message] = field(default_factory=list)

    def visible(self, now: float) -> list[Message]:
        return [m for m in self.messages if m.visible_at <= now]

    def next_visible_at(self) -> float | None:
        return min((m.visible_at for m in self.messages), default=None)


@dataclass(order=True)
class _Timed:
    at: float
    seq: int
    kind: str = field(compare=False)
    action: Callable[[], None] = field(compare=False)


class LogSink(io.TextIOBase):
    """Where the functions' stdout and stderr go: bytes and lines counted per current invocation,
    EMF metric series collected (CloudWatch bills each distinct one as a custom metric)."""

    def __init__(self) -> None:
        self.current: Invocation | None = None
        self.series: dict[str, set[tuple[str, ...]]] = {}
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        invocation = self.current
        if invocation is not None:
            invocation.log_bytes += len(text.encode("utf-8"))
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            if invocation is not None and line.strip():
                invocation.log_lines += 1
            if '"_aws"' in line and invocation is not None:
                self._collect_series(line, invocation.phase)
        return len(text)

    def _collect_series(self, line: str, phase: str) -> None:
        try:
            blob = json.loads(line)
        except ValueError:
            return
        for directive in blob.get("_aws", {}).get("CloudWatchMetrics", []):
            for dimension_set in directive.get("Dimensions", [[]]):
                dims = tuple(f"{d}={blob.get(d)}" for d in dimension_set)
                for metric in directive.get("Metrics", []):
                    self.series.setdefault(phase, set()).add((directive["Namespace"], *dims, metric["Name"]))


# --- the simulation ------------------------------------------------------------------------------


class Simulation:
    def __init__(self, workload: Workload, provider_url: str, facts: StackFacts) -> None:
        self.workload = workload
        self.provider_url = provider_url.rstrip("/")
        self.facts = facts
        self.rng = random.Random(workload.seed)
        self.clock = VirtualClock(float(int(time.time())))
        self._phase = "setup"
        self.timeline: list[_Timed] = []
        self._seq = itertools.count()
        self.invocations: list[Invocation] = []
        self.stack: list[Invocation] = []
        self.nested_wall: list[float] = []
        self.sink = LogSink()
        self.events: list[dict[str, Any]] = []
        self.settled: dict[str, str] = {}
        self.sqs_requests: list[tuple[str, str, str, int]] = []
        self.scheduler_ticks: dict[str, int] = {}
        self.provider_calls = {"creates": 0, "polls": 0}
        self.arrivals: list[float] = []
        self.visibility: dict[str, float] = {}  # receipt handle -> seconds (ChangeMessageVisibility)
        self.queues: dict[str, VirtualQueue] = {}
        self.routes: dict[str, str] = {}  # moto queue URL -> virtual queue name
        self.meter: AwsMeter
        self.handlers: dict[str, ModuleType] = {}
        self.env_providers: dict[str, dict[str, Any]] = {}
        self.start = self.clock.time()
        self.routed_at = -1
        self.outcome_at: dict[str, float] = {}  # client_ref -> when its generation outcome went out
        self.harness_sqs: Any = None
        self.app_events: Any = None
        self.polls_lock = threading.Lock()

    @property
    def phase(self) -> str:
        """setup, idle (the baseline ticks) or load; the meter labels every call with it."""
        return self._phase

    @phase.setter
    def phase(self, value: str) -> None:
        self._phase = value
        self.meter.phase = value

    # --- scheduling ---------------------------------------------------------------------------

    def at(self, moment: float, kind: str, action: Callable[[], None]) -> None:
        heapq.heappush(self.timeline, _Timed(moment, next(self._seq), kind, action))

    def run_until(self, moment: float, *, nested: bool = False) -> None:
        """Run everything due up to ``moment`` (queued deliveries first), then set the clock to it.

        ``nested`` (inside a sleeping poller): a Scheduler tick is left for later; it waits for the
        running poller (the work it would find is the running one's).
        """
        while True:
            self.dispatch_queues()
            item = self._next(moment, skip_ticks=nested)
            if item is None:
                break
            self.clock.advance_to(item.at)
            item.action()
        self.clock.advance_to(moment)

    def _next(self, moment: float, *, skip_ticks: bool) -> _Timed | None:
        """Take the earliest timed action at or before ``moment`` off the timeline."""
        due = [t for t in self.timeline if t.at <= moment and not (skip_ticks and t.kind == "tick")]
        if not due:
            return None
        item = min(due)
        self.timeline.remove(item)
        heapq.heapify(self.timeline)
        return item

    # --- invocations --------------------------------------------------------------------------

    def invoke(self, function: str, event: Any, *, records: int = 0) -> Any:
        """Call ``function``'s handler as Lambda would, timing what Lambda would bill."""
        invocation = Invocation(function, self.phase, self.clock.time(), records=records)
        parent_sink = self.sink.current
        parent_payer = self.meter.payer
        self.stack.append(invocation)
        self.sink.current = invocation
        self.meter.payer = function
        self.nested_wall.append(0.0)
        saved = self._swap_environment(function)
        context = VirtualContext(function, self.facts.memory_mb[function], self.facts.timeout_seconds[function], self)
        hooks_before = self.meter.hook_seconds
        started = time.perf_counter()
        result: Any = None
        try:
            with contextlib.redirect_stdout(self.sink), contextlib.redirect_stderr(self.sink):
                result = self.handlers[function].lambda_handler(event, context)
        except Exception as err:  # a crashed invocation is billed too; the batch comes back
            invocation.error = f"{type(err).__name__}: {err}"
        wall = time.perf_counter() - started
        nested = self.nested_wall.pop()
        invocation.compute_seconds = max(0.0, wall - nested - (self.meter.hook_seconds - hooks_before))
        invocation.billed_ms = math.ceil((invocation.compute_seconds + invocation.waited_seconds) * 1000)
        self._restore_environment(function, saved)
        self.stack.pop()
        self.sink.current = parent_sink
        self.meter.payer = parent_payer
        if self.nested_wall:
            self.nested_wall[-1] += wall
        self.invocations.append(invocation)
        return result

    def wait(self, seconds: float) -> None:
        """A virtual wait of the running invocation, charged to it (sleeps, modelled latency)."""
        if seconds <= 0:
            return
        if self.stack:
            self.stack[-1].waited_seconds += seconds
        self.clock.advance_to(self.clock.time() + seconds)

    def poller_sleep(self, seconds: float) -> None:
        """The sweep loop waits for the next due job: everything else runs meanwhile."""
        if seconds <= 0:
            return
        if self.stack:
            self.stack[-1].waited_seconds += seconds
        self.run_until(self.clock.time() + seconds, nested=True)

    def _swap_environment(self, function: str) -> dict[str, Any]:
        """Each function has an execution environment of its own: its own Powertools secret cache."""
        from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

        saved = dict(DEFAULT_PROVIDERS)
        DEFAULT_PROVIDERS.clear()
        DEFAULT_PROVIDERS.update(self.env_providers.get(function, {}))
        return saved

    def _restore_environment(self, function: str, saved: dict[str, Any]) -> None:
        from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

        self.env_providers[function] = dict(DEFAULT_PROVIDERS)
        DEFAULT_PROVIDERS.clear()
        DEFAULT_PROVIDERS.update(saved)

    # --- AWS around the functions -------------------------------------------------------------

    def route(self) -> None:
        """Move what the bus's rules delivered (moto queues, not counted) into the virtual queues."""
        if self.meter.events_put == self.routed_at:
            return  # no event was put since the last look: the rules delivered nothing new
        self.routed_at = self.meter.events_put
        for url, name in self.routes.items():
            while True:
                got = self.harness_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
                messages = got.get("Messages", [])
                if not messages:
                    break
                for m in messages:
                    self.harness_sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                    self._deliver(name, m["Body"])

    def _deliver(self, name: str, body: str) -> None:
        if name == "events":
            event = json.loads(body)
            self.events.append(event)
            request_id = event.get("detail", {}).get("request_id")
            kind = event.get("detail-type")
            if kind in ("Video Stored", "Video Archive Failed", "Video Generation Failed") and request_id:
                self.settled[str(request_id)] = str(kind)
            if kind in ("Video Generation Succeeded", "Video Generation Failed"):
                self.outcome_at.setdefault(str(event["detail"].get("client_ref")), self.clock.time())
            return
        queue = self.queues[name]
        queue.messages.append(Message(body, visible_at=self.clock.time()))
        if queue.batch_size:  # the rule's delivery to an SQS queue: one SendMessage
            chunks = max(1, math.ceil(len(body.encode()) / (64 * 1024)))
            self.sqs_requests.append((self.phase, name, "SendMessage", chunks))

    def dispatch_queues(self) -> None:
        """Lambda's pollers hand every visible message to its function, batch by batch."""
        self.route()
        for queue in self.queues.values():
            while visible := queue.visible(self.clock.time()):
                spent = [m for m in visible if queue.batch_size and m.receives >= queue.max_receives]
                for m in spent:  # received maxReceiveCount times already: SQS moves it to the DLQ
                    queue.messages.remove(m)
                    queue.dead_letters.append(m)
                batch = [m for m in visible if m not in spent][: max(queue.batch_size, 1)]
                if batch:
                    self._run_batch(queue, batch)
                self.route()

    def _run_batch(self, queue: VirtualQueue, batch: list[Message]) -> None:
        now = self.clock.time()
        for m in batch:
            m.receives += 1
            m.visible_at = now + queue.visibility_timeout
        if not queue.batch_size:  # a rule invoking the function (asynchronously): the event itself
            for m in batch:
                queue.messages.remove(m)
                self.invoke(queue.function, json.loads(m.body))
            return
        handles = {m.message_id: f"{m.message_id}#{m.receives}" for m in batch}
        self.sqs_requests.append((self.phase, queue.name, "ReceiveMessage", 1))
        event = {"Records": [self._record(queue, m, handles[m.message_id]) for m in batch]}
        answer = self.invoke(queue.function, event, records=len(batch))
        if isinstance(answer, dict):
            failed = {str(f["itemIdentifier"]) for f in answer.get("batchItemFailures", [])}
        else:  # the invocation crashed: the whole batch comes back
            failed = {m.message_id for m in batch}
        if any(m.message_id not in failed for m in batch):
            self.sqs_requests.append((self.phase, queue.name, "DeleteMessageBatch", 1))
        for m in batch:
            if m.message_id not in failed:
                queue.messages.remove(m)
                continue
            back_in = self.visibility.pop(handles[m.message_id], queue.visibility_timeout)
            m.visible_at = self.clock.time() + back_in
            self.at(m.visible_at, "redelivery", lambda: None)  # wakes the loop when it is visible

    def _record(self, queue: VirtualQueue, m: Message, handle: str) -> dict[str, Any]:
        return {
            "messageId": m.message_id,
            "receiptHandle": handle,
            "body": m.body,
            "attributes": {
                "ApproximateReceiveCount": str(m.receives),
                "SentTimestamp": str(int(self.clock.time() * 1000)),
            },
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{queue.name}",
            "awsRegion": "us-east-1",
        }

    def change_visibility(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """What the meter answers for ChangeMessageVisibility: the simulation's queue takes note."""
        self.visibility[str(request.get("ReceiptHandle"))] = float(request.get("VisibilityTimeout", 0))
        return {}

    def tick(self) -> None:
        """The Scheduler invokes the poller (one a minute)."""
        self.scheduler_ticks[self.phase] = self.scheduler_ticks.get(self.phase, 0) + 1
        self.invoke("poller", {"source": "aws.scheduler"})

    # --- the provider -------------------------------------------------------------------------

    def provider_ready(self, request_id: str) -> None:
        request = urllib.request.Request(f"{self.provider_url}/_fake/jobs/{request_id}/finish", method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:  # the fake on loopback
            answer.read()

    def created(self, request_id: str) -> None:
        low, high = self.workload.ready_after
        self.at(self.clock.time() + self.rng.uniform(low, high), "provider", partial(self.provider_ready, request_id))

    # --- the app ------------------------------------------------------------------------------

    def arrive(self, number: int) -> None:
        """The app asks for a video: one PutEvents of one entry (billed to the account too)."""
        self.arrivals.append(self.clock.time())
        markers = f" [video_size={self.workload.video_bytes}]"
        if self.rng.random() < self.workload.failed_share:
            markers += " [fail]" if self.rng.random() < 0.5 else " [moderated]"
        detail = {
            "prompt": PROMPT + markers,
            "duration": 6,
            "resolution": "720p",
            "aspect_ratio": "16:9",
            "client_ref": client_ref(number),
            "idempotency_key": client_ref(number),
            "metadata": {"customer": "c-1042", "campaign": "winter"},
        }
        payer, self.meter.payer = self.meter.payer, "app"
        try:
            self.app_events.put_events(
                Entries=[
                    {
                        "EventBusName": BUS,
                        "Source": APP_SOURCE,
                        "DetailType": "Video Generation Requested",
                        "Detail": json.dumps(detail),
                    }
                ]
            )
        finally:
            self.meter.payer = payer


@dataclass
class VirtualContext:
    """The Lambda context the handlers and Powertools read, on the virtual clock."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: float
    simulation: Simulation
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = self.simulation.clock.time()

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return int((self.timeout_seconds - (self.simulation.clock.time() - self.started)) * 1000)


class MeteredProvider:
    """The CometAPI client the functions get: the real one, with the create latency modelled (a
    virtual wait), each provider job's readiness scheduled, and creates and polls counted."""

    def __init__(self, client: Any, simulation: Simulation) -> None:
        self._client, self._sim = client, simulation

    @property
    def max_call_seconds(self) -> float:
        return float(self._client.max_call_seconds)

    def get_video(self, request_id: str) -> Any:
        with self._sim.polls_lock:
            self._sim.provider_calls["polls"] += 1
        return self._client.get_video(request_id)

    def create_generation(self, prompt: str, **options: Any) -> str:
        self._sim.wait(self._sim.workload.create_latency)
        request_id = str(self._client.create_generation(prompt, **options))
        self._sim.provider_calls["creates"] += 1
        self._sim.created(request_id)
        return request_id

    def create_edit(self, prompt: str, video_url: str, **options: Any) -> str:
        self._sim.wait(self._sim.workload.create_latency)
        request_id = str(self._client.create_edit(prompt, video_url, **options))
        self._sim.provider_calls["creates"] += 1
        self._sim.created(request_id)
        return request_id


# --- wiring ------------------------------------------------------------------------------------


def function_environment(
    provider_url: str, queue_urls: Mapping[str, str], secret_arn: str, facts: StackFacts
) -> dict[str, str]:
    """Every function's variables as template.yaml sets them, with the parameters' defaults (each
    function reads only its own); the provider is the fake on loopback."""
    parameters = facts.parameters
    host = provider_url.split("://", 1)[1].split(":", 1)[0].split("/", 1)[0]
    return {
        "TABLE_NAME": TABLE,
        "EVENT_BUS_NAME": BUS,
        "EVENT_SOURCE": SOURCE,
        "POWERTOOLS_SERVICE_NAME": "grokvideo",
        "POWERTOOLS_METRICS_NAMESPACE": "GrokVideo",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "COMETAPI_BASE_URL": provider_url,
        "COMETAPI_KEY_SECRET_ARN": secret_arn,
        "ALLOW_HTTP_PROVIDER": "true",
        "POLL_INTERVAL_SECONDS": parameters["PollIntervalSeconds"],
        "MAX_JOB_AGE_SECONDS": parameters["MaxJobAgeSeconds"],
        "POLL_CONCURRENCY": parameters["PollConcurrency"],
        "SUBMIT_RATE_PER_SECOND": parameters["SubmitRatePerSecond"],
        "INPUT_BUCKET_NAMES": "",
        "SUBMIT_QUEUE_URL": queue_urls["submit"],
        "VIDEO_BUCKET": BUCKET,
        "VIDEO_PREFIX": parameters["VideoPrefix"],
        "ALLOWED_VIDEO_HOSTS": host,
        "ALLOW_PRIVATE_VIDEO_HOSTS": "true",
        "MAX_VIDEO_BYTES": parameters["MaxVideoBytes"],
        "COPY_MAX_RECEIVES": str(facts.max_receives["copy"]),
        "COPY_QUEUE_URL": queue_urls["copy"],
    }


@contextlib.contextmanager
def virtual_runtime(sim: Simulation) -> Iterator[None]:
    """The package's clocks, sleeps and provider client, pointed at the simulation.

    ``grokvideo.runtime`` builds every object the handlers use, importing each class from its
    module when its factory first runs; the constructors take ``clock`` and ``sleep``, so the
    classes are wrapped in their modules to pass the virtual ones.
    """
    from unittest import mock

    from aws_lambda_powertools.utilities.parameters import base as parameters_base

    from grokvideo import archive, copier, ratelimit, runtime, submitter, sweep

    clock = sim.clock.time
    download_seconds = sim.workload.video_bytes / (sim.workload.download_mib_per_s * MiB)

    class ModelledArchiver(archive.VideoArchiver):
        def archive(self, *args: Any, **kwargs: Any) -> Any:
            stored = super().archive(*args, **kwargs)
            sim.wait(download_seconds)
            return stored

    original_cometapi = runtime.cometapi
    with contextlib.ExitStack() as patches:
        for module, name, options in (
            (sweep, "Sweeper", {"clock": clock, "sleep": sim.poller_sleep}),
            (submitter, "Submitter", {"clock": clock, "sleep": sim.wait}),
            (ratelimit, "SharedRateLimiter", {"clock": clock}),
            (copier, "Copier", {"clock": clock}),
        ):
            patches.enter_context(mock.patch.object(module, name, partial(getattr(module, name), **options)))
        patches.enter_context(mock.patch.object(archive, "VideoArchiver", ModelledArchiver))
        patches.enter_context(
            mock.patch.object(runtime, "cometapi", lambda *a, **k: MeteredProvider(original_cometapi(*a, **k), sim))
        )
        patches.enter_context(mock.patch.object(parameters_base, "datetime", virtual_datetime(sim.clock)))
        register = sim.handlers["register"]
        patches.enter_context(mock.patch.object(register, "time", SimpleNamespace(time=clock)))
        yield


def moto_item_reader(account: str = "123456789012", region: str = "us-east-1") -> Any:
    """Read an item straight from in-process moto's table (the meter's images; not an API call)."""
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[account][region]

    def read(table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        item = backend.get_item(table, key)
        return item.to_json()["Attributes"] if item is not None else None

    return read


def simulate(workload: Workload, provider_url: str, *, facts: StackFacts | None = None) -> RunRecord:
    """One run of ``workload`` (see the module docstring); AWS is in-process moto."""
    import boto3
    from moto import mock_aws

    from tests.handlers import load_handler
    from tests.integration.conftest import create_jobs_table
    from tests.moto_threads import serialize_moto_dynamodb

    facts = facts or stack_facts()
    started_wall = time.perf_counter()
    credentials = {
        "AWS_ACCESS_KEY_ID": "cost",
        "AWS_SECRET_ACCESS_KEY": "cost",
        "AWS_SESSION_TOKEN": "cost",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved_env = dict(os.environ)
    os.environ.update(credentials)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    serialize_moto_dynamodb()
    sim = Simulation(workload, provider_url, facts)
    try:
        with mock_aws():
            table = create_jobs_table(boto3.resource("dynamodb"), TABLE)
            shape = TableShape.from_description(table.meta.client.describe_table(TableName=TABLE)["Table"])
            sim.meter = AwsMeter({TABLE: shape}, read_item=moto_item_reader())
            sim.meter.intercept("sqs", "ChangeMessageVisibility", sim.change_visibility)
            sim.harness_sqs = boto3.client("sqs")
            queue_urls, secret_arn = _build_stack(sim, facts)
            os.environ.update(function_environment(provider_url, queue_urls, secret_arn, facts))
            with sim.meter.installed():
                sim.app_events = boto3.client("events")
                for function in ("submit", "register", "poller", "copier"):
                    sim.handlers[function] = load_handler(function)
                _point_logs_at(sim.sink)
                with virtual_runtime(sim):
                    _run(sim)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
    return RunRecord(
        workload=workload,
        facts=facts,
        calls=sim.meter.calls,
        invocations=sim.invocations,
        events=sim.events,
        metric_series=sim.sink.series,
        provider_calls=dict(sim.provider_calls),
        sqs_requests=sim.sqs_requests,
        scheduler_ticks=dict(sim.scheduler_ticks),
        arrivals=sim.arrivals,
        settled=sim.settled,
        pending_seconds=[
            sim.outcome_at[client_ref(n)] - at for n, at in enumerate(sim.arrivals) if client_ref(n) in sim.outcome_at
        ],
        idle_ticks=sim.scheduler_ticks.get("idle", 0),
        virtual_seconds=sim.clock.time() - sim.start,
        wall_seconds=time.perf_counter() - started_wall,
    )


def _build_stack(sim: Simulation, facts: StackFacts) -> tuple[dict[str, str], str]:
    """The bus, its rules (to moto queues the simulation drains), the bucket and the key secret."""
    import boto3

    events, sqs = boto3.client("events"), sim.harness_sqs
    events.create_event_bus(Name=BUS)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    secret_arn = boto3.client("secretsmanager").create_secret(Name="grokvideo/cometapi-key", SecretString=API_KEY)[
        "ARN"
    ]
    patterns = {
        "submit": {"detail-type": ["Video Generation Requested", "Video Edit Requested"], "source": [APP_SOURCE]},
        "register": {"detail-type": ["Video Job Track Requested"], "source": [APP_SOURCE]},
        "copy": {"source": [SOURCE], "detail-type": ["Video Generation Succeeded"]},
        "events": {"source": [SOURCE]},
    }
    urls: dict[str, str] = {}
    for name, pattern in patterns.items():
        url = sqs.create_queue(QueueName=f"cost-route-{name}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=f"route-{name}", EventBusName=BUS, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=f"route-{name}", EventBusName=BUS, Targets=[{"Id": name, "Arn": arn}])
        sim.routes[url] = name
        urls[name] = url
    sim.queues = {
        "submit": VirtualQueue(
            "submit",
            "submit",
            facts.batch_size["submit"],
            facts.visibility_timeout["submit"],
            facts.max_receives["submit"],
        ),
        "copy": VirtualQueue(
            "copy", "copier", facts.batch_size["copier"], facts.visibility_timeout["copy"], facts.max_receives["copy"]
        ),
        "register": VirtualQueue("register", "register", 0, 0, 3),
    }
    return urls, secret_arn


def _point_logs_at(sink: LogSink) -> None:
    """The service logger's handler writes where it was pointed at import: point it at the sink."""
    import logging

    service = logging.getLogger(os.environ.get("POWERTOOLS_SERVICE_NAME", "grokvideo"))
    for handler in service.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = sink


def _run(sim: Simulation) -> None:
    """Idle ticks first (the baseline), then the arrivals and the ticks until every job settled."""
    workload = sim.workload
    sim.start = sim.clock.time()
    period = 60 * sim.facts.schedule_minutes
    sim.phase = "idle"
    for tick in range(workload.idle_minutes):
        sim.at(sim.start + period * tick, "tick", sim.tick)
    sim.run_until(sim.start + period * workload.idle_minutes - 1)
    sim.phase = "load"
    load_start = sim.start + period * workload.idle_minutes
    sim.at(load_start, "arrival", partial(_arrive_and_schedule_next, sim, 0))
    limit = load_start + workload.jobs / workload.arrivals_per_second + 4 * 3600
    tick = workload.idle_minutes
    settled = False
    while sim.clock.time() < limit:
        tick_at = sim.start + period * tick
        sim.at(tick_at, "tick", sim.tick)
        sim.run_until(tick_at)
        tick += 1
        if settled:
            return  # the tick after the last job settled found nothing to do
        settled = len(sim.arrivals) == workload.jobs and _all_settled(sim)
    raise RuntimeError(f"{workload.jobs - len(sim.settled)} jobs not settled 4 h after the last arrival")


def _arrive_and_schedule_next(sim: Simulation, number: int) -> None:
    """One arrival; the next one is put on the timeline only now (it stays short)."""
    sim.arrive(number)
    if number + 1 < sim.workload.jobs:
        gap = sim.rng.expovariate(sim.workload.arrivals_per_second)
        sim.at(sim.clock.time() + gap, "arrival", partial(_arrive_and_schedule_next, sim, number + 1))


def _all_settled(sim: Simulation) -> bool:
    created = sim.provider_calls["creates"]
    return (
        created == sim.workload.jobs
        and len(sim.settled) >= created
        and not any(q.messages for q in sim.queues.values())
    )
