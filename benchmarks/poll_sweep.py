"""Poll sweep benchmark: concurrent sweep vs a sequential poll loop, and items read per sweep.

Run alone: ``python benchmarks/poll_sweep.py`` (from the repo root, in the test virtualenv).

Side by side, in one run, against the fake CometAPI (its own process, with injected latency):

1. the sweep (claim, poll, transition, publish, clear) at ``--concurrency`` over DynamoDB and
   EventBridge served by a moto server in its own process;
2. a plain sequential loop of status calls over the same API, the baseline;
3. DynamoDB items read by one sweep with ``--finished`` finished jobs in the table next to
   ``--due`` due ones (in-process moto: only item counts matter here).

Targets: sweep >= 80 % of concurrency / latency; >= 10x the sequential loop at
concurrency 16; items read <= 1.05 x jobs due.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT)]

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from benchmarks.machine import describe  # noqa: E402
from benchmarks.services import Service, fake_cometapi, moto_server  # noqa: E402
from grokvideo.backoff import PollSchedule  # noqa: E402
from grokvideo.cometapi import CometApiClient  # noqa: E402
from grokvideo.events import EventPublisher  # noqa: E402
from grokvideo.jobs import JobStore  # noqa: E402
from grokvideo.sweep import Sweeper  # noqa: E402
from tests.integration.conftest import create_jobs_table  # noqa: E402

API_KEY = "bench-key"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


def fake(latency: float) -> AbstractContextManager[Service]:
    """The fake CometAPI, every id a job that is ready at once, answering after ``latency`` s."""
    return fake_cometapi("--auto-jobs", "--ready-after", "0", "--latency", str(latency), "--api-key", API_KEY)


def sweep_throughput(base_url: str, endpoint: str, *, jobs: int, concurrency: int) -> tuple[float, Any]:
    config = Config(max_pool_connections=concurrency * 2, retries={"mode": "standard"})
    dynamodb = boto3.resource("dynamodb", endpoint_url=endpoint, config=config)
    create_jobs_table(dynamodb, "bench-jobs")
    events = boto3.client("events", endpoint_url=endpoint, config=config)
    events.create_event_bus(Name="bench-bus")
    store = JobStore("bench-jobs", first_poll_delay=0, dynamodb=dynamodb)
    now = int(time.time())
    for i in range(jobs):
        store.register(f"bench-{i:06d}", now=now)
    client = CometApiClient(base_url, lambda: API_KEY, maxsize=concurrency)
    sweeper = Sweeper(
        store,
        client,
        EventPublisher("bench-bus", "grokvideo", client=events),
        concurrency=concurrency,
        schedule=PollSchedule(first_delay=60, cap=60),
        sweep_seconds=0,
    )
    report = sweeper.run()
    assert report.polled == jobs and report.events_published == jobs, report
    return report.polled / report.duration_seconds, report


def sequential_throughput(base_url: str, *, jobs: int) -> float:
    client = CometApiClient(base_url, lambda: API_KEY, maxsize=1)
    started = time.perf_counter()
    for i in range(jobs):
        client.get_video(f"seq-{i:06d}")
    return jobs / (time.perf_counter() - started)


def items_read_per_sweep(base_url: str, *, finished: int, due: int) -> tuple[int, int]:
    from moto import mock_aws

    from tests.moto_threads import serialize_moto_dynamodb

    serialize_moto_dynamodb()
    with mock_aws():
        dynamodb = boto3.resource("dynamodb")
        table = create_jobs_table(dynamodb, "items-jobs")
        now = int(time.time())
        with table.batch_writer() as batch:
            for i in range(finished):
                batch.put_item(
                    Item={
                        "request_id": f"old-{i:07d}",
                        "state": "STORED",
                        "registered_at": now - 7200,
                        "deadline_at": now - 3600,
                        "expires_at": now + 86_400,
                    }
                )
        store = JobStore("items-jobs", first_poll_delay=0, dynamodb=dynamodb)
        for i in range(due):
            store.register(f"due-{i:06d}", now=now)
        boto3.client("events").create_event_bus(Name="items-bus")
        sweeper = Sweeper(
            store,
            CometApiClient(base_url, lambda: API_KEY),
            EventPublisher("items-bus", "grokvideo"),
            concurrency=16,
            sweep_seconds=0,
        )
        report = sweeper.run()
        assert report.polled == due, report
        return report.items_read, due


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.25, help="seconds the fake adds to each API answer")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=0, help="jobs in the throughput sweep (default: ~10 s worth)")
    parser.add_argument("--sequential-jobs", type=int, default=20)
    parser.add_argument("--finished", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=500)
    args = parser.parse_args()
    os.environ.update({k: v for k, v in CREDENTIALS.items() if k not in os.environ})
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    bound = args.concurrency / args.latency
    jobs = args.jobs or int(bound * 10)

    print(f"machine: {describe()}")
    print(
        f"fake CometAPI latency {args.latency * 1000:.0f} ms; concurrency {args.concurrency}; bound {bound:.1f} polls/s"
    )
    with fake(args.latency) as api, moto_server() as moto:
        swept, report = sweep_throughput(api.url, moto.url, jobs=jobs, concurrency=args.concurrency)
        sequential = sequential_throughput(api.url, jobs=args.sequential_jobs)
    with fake(0.0) as api:
        read, due = items_read_per_sweep(api.url, finished=args.finished, due=args.due)

    rows = [
        (
            "sweep throughput",
            f"{swept:.1f} polls/s ({jobs} jobs in {report.duration_seconds:.2f} s)",
            f">= {0.8 * bound:.1f} (80 % of bound)",
            swept >= 0.8 * bound,
        ),
        ("  share of bound", f"{swept / bound * 100:.1f} %", ">= 80 %", swept >= 0.8 * bound),
        ("sequential loop", f"{sequential:.2f} polls/s ({args.sequential_jobs} jobs)", "baseline", True),
        ("  sweep / sequential", f"{swept / sequential:.1f}x", ">= 10x", swept / sequential >= 10),
        (
            "items read per sweep",
            f"{read} for {due} due, {args.finished} finished in table ({read / due:.3f} x due)",
            "<= 1.05 x due",
            read <= 1.05 * due,
        ),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, target, ok in rows:
        print(f"{name:<{width}}  {value:<60}  target {target:<22} {'PASS' if ok else 'FAIL'}")
    return 0 if all(r[3] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
