"""Submit burst: N generation requests put on the bus at once, against a provider limited to R creates/s.

Run alone: ``python benchmarks/submit_burst.py [--requests 200 --rate 2 --latency 0.25 --repeat 3]``
(from the repo root, in the test virtualenv).

Each run, everything fresh:

1. the fake CometAPI in its own process, ``--create-rate R --latency L`` (a token bucket of one
   create, refilled at R/s: a create past it answers 429 with ``Retry-After``);
2. a moto server in its own process with the jobs table, the bus, the submit rule (its pattern)
   -> submit queue (its VisibilityTimeout, DLQ after its maxReceiveCount receives), all as
   template.yaml declares them, a capture rule -> queue for our own events (source grokvideo), and
   the CometAPI key secret;
3. Lambda's SQS event source mapping as the template configures it, emulated by ``--concurrency``
   (default: its MaximumConcurrency) worker processes: each receives up to ``--batch-size``
   (default: its BatchSize) messages, calls the real ``functions/submit/app.py`` handler with a
   context of the function's Timeout remaining, and deletes the records not listed in
   ``batchItemFailures``. SUBMIT_RATE_PER_SECOND = R (the stack's SubmitRatePerSecond set to the
   provider's rate), or ``--submit-rate`` to try headroom.

The requests go on the bus with PutEvents, 10 per call; the run ends when every request has its
``Video Generation Submitted`` event (or after ``--timeout-factor`` x the ideal time).

Targets: every request submitted, one provider job each (no duplicate); creates never above the
rate (the rule is printed); wall time within 15 % of requests / rate.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT)]

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from benchmarks import figures  # noqa: E402
from benchmarks.machine import describe  # noqa: E402
from benchmarks.services import fake_cometapi, moto_server  # noqa: E402
from grokvideo.config import DEFAULT_EVENT_SOURCE  # noqa: E402
from grokvideo.events import DetailType  # noqa: E402
from grokvideo.ratelimit import LIMITER_PREFIX  # noqa: E402
from grokvideo.validation import SUBMISSION_PREFIX  # noqa: E402

API_KEY = "bench-key"
BUS = "grokvideo-bench-bus"
TABLE = "grokvideo-bench-jobs"
SOURCE = DEFAULT_EVENT_SOURCE  # the stack's EventSource left at its default
INPUT_SOURCE = "com.example.bench"
REQUESTED = DetailType.GENERATION_REQUESTED
SUBMITTED = DetailType.SUBMITTED
WALL_TOLERANCE = 0.15
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}
DEFAULT_PNG = ROOT / "docs" / "submit_burst.png"


# --- what template.yaml declares for the submit path ---------------------------------------------


@dataclass(frozen=True)
class SubmitTemplate:
    visibility_timeout: int  # SubmitQueue VisibilityTimeout
    max_receive_count: int  # SubmitQueue RedrivePolicy maxReceiveCount
    function_timeout: float  # SubmitFunction Timeout
    batch_size: int  # SubmitFunction's SQS event: BatchSize
    maximum_concurrency: int  # SubmitFunction's SQS event: ScalingConfig MaximumConcurrency
    rule_pattern: dict[str, Any]  # SubmitRule EventPattern, EventSource resolved to SOURCE


@cache
def submit_template() -> SubmitTemplate:
    """The submit path's settings, read from template.yaml (as tests/integration reads the jobs table)."""
    from cfnlint.decode import decode

    from tests.integration.conftest import TEMPLATE

    template, errors = decode(str(TEMPLATE))
    assert template is not None, errors
    resources = template["Resources"]
    queue = resources["SubmitQueue"]["Properties"]
    function = resources["SubmitFunction"]["Properties"]
    mapping = function["Events"]["Submit"]["Properties"]
    return SubmitTemplate(
        visibility_timeout=int(queue["VisibilityTimeout"]),
        max_receive_count=int(queue["RedrivePolicy"]["maxReceiveCount"]),
        function_timeout=float(function["Timeout"]),
        batch_size=int(mapping["BatchSize"]),
        maximum_concurrency=int(mapping["ScalingConfig"]["MaximumConcurrency"]),
        rule_pattern=resolve_source(resources["SubmitRule"]["Properties"]["EventPattern"]),
    )


def resolve_source(value: Any) -> Any:
    """cfn-lint's decoded nodes as plain JSON values, ``!Ref EventSource`` as SOURCE."""
    if isinstance(value, dict):
        if dict(value) == {"Ref": "EventSource"}:
            return SOURCE
        return {str(k): resolve_source(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_source(v) for v in value]
    return str(value)


# --- the fake's admin API ------------------------------------------------------------------------


def fake_admin(base_url: str, path: str) -> Any:
    with urllib.request.urlopen(base_url + path, timeout=10) as answer:
        return json.load(answer)


# --- the AWS side ------------------------------------------------------------------------------


@dataclass
class Stack:
    submit_url: str
    submit_arn: str
    dlq_url: str
    capture_url: str
    secret_arn: str


def build_stack(endpoint: str) -> Stack:
    """What template.yaml wires for the submit path, on the moto server."""
    from tests.integration.conftest import create_jobs_table

    declared = submit_template()
    create_jobs_table(boto3.resource("dynamodb", endpoint_url=endpoint), TABLE)
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    bridge = boto3.client("events", endpoint_url=endpoint)
    bridge.create_event_bus(Name=BUS)

    def queue(name: str, **attributes: str) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    dlq_url, dlq_arn = queue("grokvideo-submit-dlq")
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": declared.max_receive_count})
    submit_url, submit_arn = queue(
        "grokvideo-submit", VisibilityTimeout=str(declared.visibility_timeout), RedrivePolicy=redrive
    )
    bridge.put_rule(Name="submit", EventBusName=BUS, EventPattern=json.dumps(declared.rule_pattern))
    bridge.put_targets(Rule="submit", EventBusName=BUS, Targets=[{"Id": "submit-queue", "Arn": submit_arn}])

    capture_url, capture_arn = queue("grokvideo-captured-events")
    bridge.put_rule(Name="capture", EventBusName=BUS, EventPattern=json.dumps({"source": [SOURCE]}))
    bridge.put_targets(Rule="capture", EventBusName=BUS, Targets=[{"Id": "capture", "Arn": capture_arn}])

    secrets = boto3.client("secretsmanager", endpoint_url=endpoint)
    secret_arn = secrets.create_secret(Name="grokvideo/cometapi-key", SecretString=API_KEY)["ARN"]
    return Stack(submit_url, submit_arn, dlq_url, capture_url, secret_arn)


def put_requests(endpoint: str, run: int, requests: int) -> float:
    """Every request on the bus, 10 entries per PutEvents call; returns the seconds it took."""
    bridge = boto3.client("events", endpoint_url=endpoint)
    started = time.perf_counter()
    for first in range(0, requests, 10):
        entries = [
            {
                "EventBusName": BUS,
                "Source": INPUT_SOURCE,
                "DetailType": REQUESTED,
                "Detail": json.dumps(
                    {
                        "prompt": f"burst {run}/{i:04d}: a red fox trotting through fresh snow, shot {i}",
                        "duration": 6,
                        "client_ref": f"burst-{i:04d}",
                        "idempotency_key": f"burst-{run}-{i:04d}",
                    }
                ),
            }
            for i in range(first, min(first + 10, requests))
        ]
        answer = bridge.put_events(Entries=entries)
        if answer["FailedEntryCount"]:
            raise RuntimeError(f"PutEvents refused {answer['FailedEntryCount']} entries: {answer['Entries']}")
    return time.perf_counter() - started


# --- the event source mapping: one worker process per concurrent invocation ---------------------


def worker_env(*, endpoint: str, base_url: str, stack: Stack, rate: float) -> dict[str, str]:
    return {
        **CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint,
        "TABLE_NAME": TABLE,
        "EVENT_BUS_NAME": BUS,
        "EVENT_SOURCE": SOURCE,
        "COMETAPI_BASE_URL": base_url,
        "ALLOW_HTTP_PROVIDER": "true",  # the fake listens on http://127.0.0.1
        "COMETAPI_KEY_SECRET_ARN": stack.secret_arn,
        "SUBMIT_QUEUE_URL": stack.submit_url,
        "SUBMIT_RATE_PER_SECOND": str(rate),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "GrokVideo",
        "POWERTOOLS_SERVICE_NAME": "grokvideo",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }


def invocations(
    index: int,
    env: dict[str, str],
    queue_url: str,
    queue_arn: str,
    batch_size: int,
    timeout_seconds: float,
    log_path: str,
    stop: Any,
    ready: Any,
    results: Any,
) -> None:
    """One of the mapping's concurrent invocations, in a process of its own: receive a batch,
    invoke the handler, delete what did not fail, until ``stop`` is set."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    os.environ.update(env)
    log = open(log_path, "w", buffering=1)  # open for the life of the process
    sys.stdout = sys.stderr = log  # the handler's JSON logs and EMF metrics, kept out of the report
    import importlib.util

    from tests.handlers import FakeContext

    spec = importlib.util.spec_from_file_location(f"submit_app_{index}", ROOT / "functions" / "submit" / "app.py")
    assert spec and spec.loader
    handler = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = handler
    spec.loader.exec_module(handler)
    sqs = boto3.client("sqs")  # AWS_ENDPOINT_URL: the moto server
    stats: dict[str, Any] = {
        "index": index,
        "invocations": 0,
        "records": 0,
        "failed_back": 0,
        "receive_counts": [],
        "handler_errors": [],
        "longest_invocation": 0.0,
    }
    cpu_start = time.process_time()
    ready.set()
    try:
        while not stop.is_set():
            # Short polls: moto's long poll wakes only on a new message, not on one whose shortened
            # visibility ran out, which SQS's long poll returns at once.
            messages = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=batch_size,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not messages:
                time.sleep(0.05)
                continue
            event = {
                "Records": [
                    {
                        "messageId": m["MessageId"],
                        "receiptHandle": m["ReceiptHandle"],
                        "body": m["Body"],
                        "attributes": m.get("Attributes", {}),
                        "messageAttributes": m.get("MessageAttributes", {}),
                        "md5OfBody": m["MD5OfBody"],
                        "eventSource": "aws:sqs",
                        "eventSourceARN": queue_arn,
                        "awsRegion": env["AWS_DEFAULT_REGION"],
                    }
                    for m in messages
                ]
            }
            stats["invocations"] += 1
            stats["records"] += len(messages)
            stats["receive_counts"] += [
                int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)) for m in messages
            ]
            started = time.monotonic()
            try:
                response = handler.lambda_handler(
                    event, FakeContext(function_name="grokvideo-submit", timeout_seconds=timeout_seconds)
                )
            except Exception as err:  # as Lambda: the whole batch comes back after the visibility timeout
                stats["handler_errors"].append(repr(err))
                continue
            finally:
                stats["longest_invocation"] = max(stats["longest_invocation"], time.monotonic() - started)
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            stats["failed_back"] += len(failed)
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
    finally:
        stats["cpu"] = time.process_time() - cpu_start
        results.put(stats)


# --- one run -----------------------------------------------------------------------------------


@dataclass
class RunResult:
    run: int
    t0: float
    put_seconds: float
    wall: float | None  # PutEvents -> the last request's Submitted event seen; None: timed out
    creates: list[float]  # accepted create times at the fake (epoch seconds)
    rate_limited: int
    create_attempts: int
    submitted_requests: int  # distinct client_refs with a Submitted event
    submitted_events: int
    other_events: Counter[str]
    reservations: Counter[str]
    jobs: int
    job_ids_match: bool
    requeued: int
    max_receives: int
    receives: int
    invocations: int
    longest_invocation: float
    handler_errors: list[str]
    dlq: int
    left_in_queue: int
    cpu: dict[str, float]
    log_lines: Counter[str]
    rate_limited_times: list[float] = field(default_factory=list)


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return out
        out += [json.loads(m["Body"]) for m in got]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
        )


def queue_depth(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(got.get(n, 0)) for n in names)


def read_logs(paths: list[Path]) -> tuple[Counter[str], list[float]]:
    """The workers' log lines by level and message (EMF metric lines left out), and when 429s came."""
    lines: Counter[str] = Counter()
    rate_limited: list[float] = []
    for path in paths:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                if line.strip():
                    lines["(not JSON) " + line.strip()[:80]] += 1
                continue
            if not isinstance(record, dict) or "_aws" in record:
                continue
            extra = f" ({record.get('error')} {record.get('status')})" if "error" in record else ""
            lines[f"{record.get('level')} {record.get('message')}{extra}"] += 1
            if record.get("status") == 429 and record.get("timestamp"):
                try:
                    stamp = datetime.strptime(str(record["timestamp"]), "%Y-%m-%d %H:%M:%S,%f%z")
                    rate_limited.append(stamp.timestamp())
                except ValueError:
                    pass
    return lines, rate_limited


def one_run(run: int, args: argparse.Namespace, workdir: Path) -> RunResult:
    ideal = args.requests / args.rate
    cpu_main = time.process_time()
    with ExitStack() as stack:
        fake = stack.enter_context(
            fake_cometapi(
                "--ready-after",
                "3600",
                "--create-rate",
                str(args.rate),
                "--create-burst",
                str(args.burst),
                "--latency",
                str(args.latency),
                "--api-key",
                API_KEY,
            )
        )
        moto = stack.enter_context(moto_server())
        wiring = build_stack(moto.url)
        env = worker_env(endpoint=moto.url, base_url=fake.url, stack=wiring, rate=args.submit_rate)

        spawn = multiprocessing.get_context("spawn")
        stop, results = spawn.Event(), spawn.Queue()
        readies, workers, logs = [], [], []
        for i in range(args.concurrency):
            ready = spawn.Event()
            log = workdir / f"run{run}-worker{i}.log"
            proc = spawn.Process(
                target=invocations,
                args=(
                    i,
                    env,
                    wiring.submit_url,
                    wiring.submit_arn,
                    args.batch_size,
                    submit_template().function_timeout,
                    str(log),
                    stop,
                    ready,
                    results,
                ),
                name=f"submit-invocation-{i}",
            )
            readies.append(ready)
            workers.append(proc)
            logs.append(log)

        def stop_workers() -> None:
            stop.set()
            for proc in workers:
                if proc.pid is not None:
                    proc.join(timeout=15)
                if proc.is_alive():
                    proc.terminate()
                    proc.join(timeout=5)
                if proc.is_alive():
                    proc.kill()
                    proc.join(timeout=5)

        stack.callback(stop_workers)
        for proc in workers:
            proc.start()
        for ready, proc in zip(readies, workers, strict=True):
            if not ready.wait(timeout=60):
                raise RuntimeError(f"{proc.name} did not start (exit code {proc.exitcode}); see {workdir}")

        sqs = boto3.client("sqs", endpoint_url=moto.url, config=Config(retries={"mode": "standard"}))
        t0 = time.time()
        put_seconds = put_requests(moto.url, run, args.requests)
        seen: dict[str, float] = {}
        events: list[dict[str, Any]] = []
        wall: float | None = None
        deadline = t0 + args.timeout_factor * ideal
        while time.time() < deadline:
            got = drain(sqs, wiring.capture_url)
            now = time.time()
            events += got
            for event in got:
                if event.get("detail-type") == SUBMITTED:
                    seen.setdefault(str(event["detail"].get("client_ref")), now)
            if len(seen) >= args.requests:
                wall = max(seen.values()) - t0
                break
            if any(not p.is_alive() for p in workers):
                raise RuntimeError(f"a worker died; see its log under {workdir}")
            time.sleep(0.1)

        stop_workers()
        worker_stats = [results.get(timeout=10) for _ in workers]
        cpu = {
            "main": time.process_time() - cpu_main,
            "workers": sum(s["cpu"] for s in worker_stats),
            "fake": fake.cpu(),
            "moto": moto.cpu(),
        }
        events += drain(sqs, wiring.capture_url)
        creates_log = fake_admin(fake.url, "/_fake/creates")
        posts = [r for r in fake_admin(fake.url, "/_fake/requests")["requests"] if r[0] == "POST"]
        items = scan(moto.url)
        dlq = queue_depth(sqs, wiring.dlq_url)
        left = queue_depth(sqs, wiring.submit_url)

    accepted = sorted(float(c[0]) for c in creates_log["accepted"])
    provider_ids = {str(c[2]) for c in creates_log["accepted"]}
    jobs = {i["request_id"] for i in items if not i["request_id"].startswith((SUBMISSION_PREFIX, LIMITER_PREFIX))}
    reservations = Counter(str(i.get("state")) for i in items if str(i["request_id"]).startswith(SUBMISSION_PREFIX))
    submitted = [e for e in events if e.get("detail-type") == SUBMITTED]
    lines, rate_limited_times = read_logs(logs)
    receive_counts = [c for s in worker_stats for c in s["receive_counts"]]
    return RunResult(
        run=run,
        t0=t0,
        put_seconds=put_seconds,
        wall=wall,
        creates=accepted,
        rate_limited=int(creates_log["rate_limited"]),
        create_attempts=len([p for p in posts if "/videos/" in p[1]]),
        submitted_requests=len({str(e["detail"].get("client_ref")) for e in submitted}),
        submitted_events=len(submitted),
        other_events=Counter(str(e.get("detail-type")) for e in events if e.get("detail-type") != SUBMITTED),
        reservations=reservations,
        jobs=len(jobs),
        job_ids_match=jobs == provider_ids,
        requeued=sum(s["failed_back"] for s in worker_stats),
        max_receives=max(receive_counts, default=0),
        receives=len(receive_counts),
        invocations=sum(s["invocations"] for s in worker_stats),
        longest_invocation=max((s["longest_invocation"] for s in worker_stats), default=0.0),
        handler_errors=[e for s in worker_stats for e in s["handler_errors"]],
        dlq=dlq,
        left_in_queue=left,
        cpu=cpu,
        log_lines=lines,
        rate_limited_times=sorted(rate_limited_times),
    )


def scan(endpoint: str) -> list[dict[str, Any]]:
    table = boto3.resource("dynamodb", endpoint_url=endpoint).Table(TABLE)
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"ProjectionExpression": "request_id, #s", "ExpressionAttributeNames": {"#s": "state"}}
    while True:
        page = table.scan(**kwargs)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --- figures -----------------------------------------------------------------------------------


def max_in_window(times: list[float], width: float) -> int:
    """Most creates in any closed window [t, t + width] (it may start at a create: that is the worst)."""
    best, j = 0, 0
    for i in range(len(times)):
        j = max(j, i)
        while j + 1 < len(times) and times[j + 1] <= times[i] + width:
            j += 1
        best = max(best, j - i + 1)
    return best


def mean_rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0


def min_gap(times: list[float]) -> float:
    return min((b - a for a, b in itertools.pairwise(times)), default=float("nan"))


def window_limit(rate: float, width: float) -> int:
    """Creates a window [t, t + width] may hold at ``rate``: one per 1/rate, counting both edges."""
    return int(rate * width + 1e-9) + 1


def draw(result: RunResult, args: argparse.Namespace, path: Path) -> str:
    plt = figures.pyplot()
    if plt is None:
        return figures.not_drawn(path)
    t = [c - result.t0 for c in result.creates]
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.step([0.0, *t], range(len(t) + 1), where="post", label="provider jobs created (fake's create log)")
    end = max(t[-1] if t else 0.0, args.requests / args.rate) * 1.05
    ideal = args.requests / args.rate
    ax.plot([0, ideal, end], [0, args.requests, args.requests], "--", color="grey", label=f"ideal: {args.rate:g}/s x t")
    ax.axhline(args.requests, color="grey", linewidth=0.5)
    if result.rate_limited_times:
        r = [x - result.t0 for x in result.rate_limited_times]
        heights = [sum(1 for c in t if c <= x) for x in r]
        ax.plot(r, heights, "x", color="red", label=f"429 answered ({len(r)}, from the handlers' logs)")
    ax.set_xlim(0, end)
    ax.set_ylim(0, args.requests * 1.1)
    ax.set_xlabel("seconds since the first PutEvents")
    ax.set_ylabel("cumulative creates")
    wall = f"{result.wall:.1f} s" if result.wall is not None else "timed out"
    ax.set_title(
        f"{args.requests} requests at once, provider limit {args.rate:g}/s, SubmitRatePerSecond {args.submit_rate:g}, "
        f"latency {args.latency * 1000:.0f} ms: all submitted in {wall}",
        fontsize=9,
    )
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return f"{figures.save(fig, path)} (run {result.run})"


# --- report ------------------------------------------------------------------------------------


def report(results: list[RunResult], args: argparse.Namespace) -> bool:
    ideal = args.requests / args.rate
    n = args.requests
    limit_1, limit_10 = window_limit(args.rate, 1), window_limit(args.rate, 10)
    max_receive_count = submit_template().max_receive_count

    print()
    header = (
        f"{'run':>3} {'wall s':>7} {'vs ideal':>8} {'creates':>7} {'429s':>5} {'mean/s':>7} {'max 1s':>6} "
        f"{'max 10s':>7} {'min gap ms':>10} {'requeued':>8} {'max recv':>8} {'invocations':>11} {'CPU s':>22}"
    )
    print(header)
    for r in results:
        wall = f"{r.wall:7.1f}" if r.wall is not None else "timeout"
        versus = f"{(r.wall / ideal - 1) * 100:+7.1f}%" if r.wall is not None else "       -"
        cpu = "/".join(f"{r.cpu[k]:.0f}" for k in ("main", "workers", "fake", "moto"))
        print(
            f"{r.run:>3} {wall:>7} {versus:>8} {len(r.creates):>7} {r.rate_limited:>5} {mean_rate(r.creates):>7.3f} "
            f"{max_in_window(r.creates, 1):>6} {max_in_window(r.creates, 10):>7} {min_gap(r.creates) * 1000:>10.1f} "
            f"{r.requeued:>8} {r.max_receives:>8} {r.invocations:>11} {cpu:>22}"
        )
    print("(CPU s: this process / worker processes / fake / moto server)")

    walls = [r.wall for r in results if r.wall is not None]
    means = [mean_rate(r.creates) for r in results]
    limited = [r.rate_limited for r in results]

    def spread(values: list[float], fmt: str) -> str:
        if not values:
            return "-"
        return f"min {min(values):{fmt}}, median {statistics.median(values):{fmt}}, max {max(values):{fmt}}"

    worst_1 = max(max_in_window(r.creates, 1) for r in results)
    worst_10 = max(max_in_window(r.creates, 10) for r in results)
    all_done = all(r.wall is not None for r in results)
    median_wall = statistics.median(walls) if walls else float("inf")
    rows = [
        (
            "requests submitted",
            ", ".join(f"{r.submitted_requests}" for r in results)
            + f" (reservations SUBMITTED: {', '.join(str(r.reservations['SUBMITTED']) for r in results)})",
            f"= {n} every run",
            all(r.submitted_requests == n and r.reservations["SUBMITTED"] == n for r in results),
        ),
        (
            "  Submitted events",
            ", ".join(str(r.submitted_events) for r in results) + " (one per request: a repeat is a duplicate)",
            f"= {n} every run",
            all(r.submitted_events == n for r in results),
        ),
        (
            "provider jobs created",
            ", ".join(str(len(r.creates)) for r in results)
            + f" (= jobs tracked: {', '.join('yes' if r.job_ids_match else 'NO' for r in results)})",
            f"= {n}, no duplicate",
            all(len(r.creates) == n and r.job_ids_match and r.jobs == n for r in results),
        ),
        ("429s answered by the fake", spread([float(x) for x in limited], ".0f"), "counted", True),
        (
            "creates/s, mean",
            spread(means, ".3f") + "  ((n-1)/(last-first))",
            f"<= {args.rate:g}",
            all(m <= args.rate for m in means),
        ),
        (
            "creates in any 1 s window",
            f"max {worst_1} over the runs",
            f"<= {limit_1} (rate+1)",
            worst_1 <= limit_1,
        ),
        (
            "creates in any 10 s window",
            f"max {worst_10} over the runs",
            f"<= {limit_10} (10*rate+1)",
            worst_10 <= limit_10,
        ),
        (
            "wall time, PutEvents -> last Submitted",
            spread(walls, ".1f") + f" s; ideal {ideal:.0f} s" + ("" if all_done else " (a run timed out)"),
            f"median <= {ideal * (1 + WALL_TOLERANCE):.0f} s (+15 %)",
            all_done and median_wall <= ideal * (1 + WALL_TOLERANCE),
        ),
        (
            "  median vs requests / rate",
            f"{(median_wall / ideal - 1) * 100:+.1f} %" if walls else "-",
            "within +-15 %",
            all_done and abs(median_wall / ideal - 1) <= WALL_TOLERANCE,
        ),
        (
            "messages requeued",
            ", ".join(str(r.requeued) for r in results) + " records failed back to the queue",
            "counted",
            True,
        ),
        (
            "receives per message, max",
            ", ".join(str(r.max_receives) for r in results)
            + f" ({', '.join(f'{r.receives / n:.2f}' for r in results)} mean)",
            f"< {max_receive_count} (DLQ)",
            all(r.max_receives < max_receive_count for r in results),
        ),
        (
            "dead-lettered / left in queue",
            ", ".join(f"{r.dlq}/{r.left_in_queue}" for r in results),
            "0/0",
            all(r.dlq == 0 and r.left_in_queue == 0 for r in results),
        ),
        (
            "handler errors (whole batch back)",
            ", ".join(str(len(r.handler_errors)) for r in results),
            "0",
            all(not r.handler_errors for r in results),
        ),
    ]
    print()
    width = max(len(r[0]) for r in rows)
    for name, value, target, ok in rows:
        print(f"{name:<{width}}  {value:<74}  target {target:<26} {'PASS' if ok else 'FAIL'}")

    print()
    print("rules: a window is closed, [t, t + W] for every create time t (the fake's create log, wall clock);")
    print(
        f"  at {args.rate:g}/s creates 1/rate apart, it holds floor(rate x W) + 1 (both edges): {limit_1} in 1 s, "
        f"{limit_10} in 10 s. Wall time: from just before the first PutEvents to when this process saw the last"
    )
    print("  request's Video Generation Submitted event on the capture queue (drained every 0.1 s).")
    for r in results:
        others = ", ".join(f"{k} {v}" for k, v in sorted(r.other_events.items())) or "none"
        first = r.creates[0] - r.t0 if r.creates else float("nan")
        last = r.creates[-1] - r.t0 if r.creates else float("nan")
        print(
            f"run {r.run}: PutEvents took {r.put_seconds:.2f} s; creates from +{first:.2f} s to +{last:.2f} s; "
            f"create calls {r.create_attempts} (accepted {len(r.creates)} + 429 {r.rate_limited}); "
            f"longest invocation {r.longest_invocation:.1f} s; other events: {others}"
        )
        for line, count in r.log_lines.most_common(6):
            print(f"    worker log: {count:>4} x {line[:140]}")
        for err in r.handler_errors[:3]:
            print(f"    handler error: {err[:160]}")
    return all(row[3] for row in rows)


def interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C: every ``finally`` stops what it started


def main() -> int:
    declared = submit_template()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rate", type=float, default=2.0, help="provider creates/s = SubmitRatePerSecond")
    parser.add_argument(
        "--submit-rate",
        type=float,
        default=None,
        help="SUBMIT_RATE_PER_SECOND (SubmitRatePerSecond) if not --rate: how much headroom the pacing needs",
    )
    parser.add_argument("--burst", type=int, default=1, help="the fake's create burst (--create-burst)")
    parser.add_argument("--latency", type=float, default=0.25, help="seconds the fake adds to each API answer")
    parser.add_argument(
        "--concurrency", type=int, default=declared.maximum_concurrency, help="the mapping's MaximumConcurrency"
    )
    parser.add_argument("--batch-size", type=int, default=declared.batch_size, help="the mapping's BatchSize")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout-factor", type=float, default=3.0, help="a run gives up after this x requests/rate")
    parser.add_argument("--png", type=Path, default=DEFAULT_PNG, help="figure of one run (needs matplotlib)")
    args = parser.parse_args()
    args.submit_rate = args.submit_rate or args.rate
    os.environ.update(CREDENTIALS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    signal.signal(signal.SIGTERM, interrupted)

    ideal = args.requests / args.rate
    print(f"machine: {describe()}")
    print(
        f"{args.requests} requests at once; fake CometAPI (own process): --create-rate {args.rate:g} "
        f"--create-burst {args.burst} --latency {args.latency:g}; SUBMIT_RATE_PER_SECOND={args.submit_rate:g}; "
        f"ideal {ideal:.0f} s"
    )
    print(
        "AWS: a moto server in its own process (DynamoDB, EventBridge, SQS, Secrets Manager); the SQS event "
        f"source mapping: {args.concurrency} worker processes (MaximumConcurrency), batches of up to "
        f"{args.batch_size}, {declared.function_timeout:.0f} s per invocation, the real functions/submit handler"
    )
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="submit-burst-") as tmp:
        for run in range(1, args.repeat + 1):
            result = one_run(run, args, Path(tmp))
            results.append(result)
            wall = f"{result.wall:.1f} s" if result.wall is not None else "timed out"
            print(
                f"run {run}/{args.repeat}: {result.submitted_requests} submitted in {wall}, "
                f"{len(result.creates)} creates, {result.rate_limited} x 429",
                flush=True,
            )
    ok = report(results, args)
    done = [r for r in results if r.wall is not None]
    if done:
        median_run = sorted(done, key=lambda r: r.wall or 0.0)[len(done) // 2]
        print(draw(median_run, args, args.png))
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: everything started was stopped", file=sys.stderr)
        sys.exit(130)
