"""10,000 pending jobs at once: every one reaches its end within the deadline, and how fast.

Run alone: ``python benchmarks/ten_thousand.py`` (from the repo root, in the test virtualenv; about
15 minutes on a 2-core machine).

In-process stand-ins for what the emulator cannot take at this size: DynamoDB is a moto server
(its own process), the provider our fake (in this process, so its record of when each job was
first seen done can be read), and each poller invocation a process of a pool of ``--pool``. A
tick every 60 s does what the scheduled invocation does: ``FanOut.start`` counts the backlog,
plans, and "invokes" the other shard groups (here: hands them to the pool), then sweeps its own
group, each sweep running up to SWEEP_SECONDS with the deployed settings and the shared poll
budget. The jobs finish ``--ready-min`` to ``--ready-max`` seconds after they were registered
(uniform), all registered at once: the worst burst.

The copy into S3 is not part of this run (each job ends SUCCEEDED, its event owed and published);
``benchmarks/copy_video.py`` measures copies.

Reported: time until every job ended, polls per job, sweep throughput (polls per second over the
run, and per sweep), detection lag per job (the fake's finish to the first poll that saw it:
p50, p95, max), and how many sweeps the ticks dispatched. Target: every job ends before its
deadline (MaxJobAgeSeconds, 3600 s).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT)]

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from benchmarks.machine import describe  # noqa: E402
from benchmarks.services import MOTO_CREDENTIALS, moto_server  # noqa: E402
from grokvideo import config  # noqa: E402
from grokvideo.fanout import SHARDS_KEY, FanOut  # noqa: E402
from grokvideo.jobs import JobStore  # noqa: E402
from local.fake_cometapi import FakeCometAPI  # noqa: E402
from tests.integration.conftest import create_jobs_table  # noqa: E402

API_KEY = "bench-key"
TABLE = "ten-thousand"
TICK_SECONDS = 60
INVOCATION_SECONDS = 90  # the poller's timeout


@dataclass(frozen=True)
class Sweep:
    shards: tuple[int, ...]
    polled: int
    succeeded: int
    seconds: float
    cpu_seconds: float


def sweep(endpoint: str, api_url: str, shards: tuple[int, ...]) -> Sweep:
    """One poller invocation on ``shards``: the deployed settings, the shared budget, 90 s."""
    os.environ.update(MOTO_CREDENTIALS)
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    from grokvideo.backoff import PollSchedule
    from grokvideo.cometapi import CometApiClient
    from grokvideo.events import EventPublisher
    from grokvideo.ratelimit import PollBudget, SharedRateLimiter
    from grokvideo.schedule import ProgressSchedule
    from grokvideo.sweep import Sweeper

    cfg = Config(max_pool_connections=64, retries={"mode": "standard", "max_attempts": 6})
    store = JobStore(
        TABLE, shards=config.DUE_SHARDS, client=boto3.client("dynamodb", endpoint_url=endpoint, config=cfg)
    )
    limiter = SharedRateLimiter(store.table, "poll", per_second=config.POLL_RATE_PER_SECOND)
    sweeper = Sweeper(
        store,
        CometApiClient(api_url, lambda: API_KEY, maxsize=config.POLL_CONCURRENCY),
        EventPublisher("bench-bus", "grokvideo", client=boto3.client("events", endpoint_url=endpoint, config=cfg)),
        concurrency=config.POLL_CONCURRENCY,
        schedule=PollSchedule(first_delay=config.FIRST_POLL_DELAY_SECONDS, cap=config.POLL_INTERVAL_SECONDS),
        pending_schedule=ProgressSchedule(cap=config.POLL_INTERVAL_SECONDS),
        sweep_seconds=config.SWEEP_SECONDS,
        budget=PollBudget(limiter, batch=config.POLL_CONCURRENCY),
    )
    started, cpu = time.monotonic(), time.process_time()
    report = sweeper.run(time_left=lambda: INVOCATION_SECONDS - (time.monotonic() - started), shards=shards)
    return Sweep(shards, report.polled, report.succeeded, time.monotonic() - started, time.process_time() - cpu)


class PoolInvoker:
    """Stands in for the Lambda client: an async invoke is a sweep handed to the process pool."""

    def __init__(self, pool: Any, endpoint: str, api_url: str, running: list[Any]) -> None:
        self.pool, self.endpoint, self.api_url, self.running = pool, endpoint, api_url, running

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        import json

        shards = tuple(json.loads(kwargs["Payload"])[SHARDS_KEY])
        self.running.append(self.pool.apply_async(sweep, (self.endpoint, self.api_url, shards)))
        return {"StatusCode": 202}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--ready-min", type=float, default=60.0)
    parser.add_argument("--ready-max", type=float, default=300.0)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the fake takes per status answer")
    parser.add_argument("--pool", type=int, default=config.MAX_SWEEPERS)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    os.environ.update({k: v for k, v in MOTO_CREDENTIALS.items() if k not in os.environ})
    rng = random.Random(args.seed)
    deadline = config.MAX_JOB_AGE_SECONDS
    print(f"machine: {describe()}")
    print(
        f"{args.jobs} jobs registered at once, ready after U({args.ready_min:.0f}, {args.ready_max:.0f}) s; fake "
        f"latency {args.latency:.2f} s; deployed settings: {config.DUE_SHARDS} shards, up to {config.MAX_SWEEPERS} "
        f"sweeps, {config.POLL_CONCURRENCY} calls in flight each, budget {config.POLL_RATE_PER_SECOND:.0f} polls/s"
    )
    fake = FakeCometAPI(api_key=API_KEY).start()
    fake.inject("latency", count=-1, seconds=args.latency)
    sweeps: list[Sweep] = []
    try:
        with moto_server() as moto:
            endpoint = moto.url
            dynamodb = boto3.resource("dynamodb", endpoint_url=endpoint)
            create_jobs_table(dynamodb, TABLE)
            boto3.client("events", endpoint_url=endpoint).create_event_bus(Name="bench-bus")
            store = JobStore(
                TABLE,
                shards=config.DUE_SHARDS,
                first_poll_delay=config.FIRST_POLL_DELAY_SECONDS,
                client=boto3.client("dynamodb", endpoint_url=endpoint),
            )
            ids = [
                fake.add_job(outcome="done", ready_after=rng.uniform(args.ready_min, args.ready_max))
                for _ in range(args.jobs)
            ]
            t0 = time.time()
            for rid in ids:
                store.register(rid, now=int(time.time()))
            registered = time.time() - t0
            print(f"registered in {registered:.0f} s (the fake's clocks started when each job was added)")

            running: list[Any] = []
            ticks = dispatched = 0
            started = time.time()
            with multiprocessing.get_context("spawn").Pool(args.pool) as pool:
                invoker = PoolInvoker(pool, endpoint, fake.base_url, running)
                fan_out = FanOut(
                    store,
                    invoker,
                    "arn:bench",
                    capacity=config.PollerSettings.from_env(
                        {"TABLE_NAME": TABLE, "EVENT_BUS_NAME": "bench-bus", "COMETAPI_KEY_SECRET_ARN": "arn:bench"}
                    ).sweep_capacity,
                    max_sweepers=config.MAX_SWEEPERS,
                    horizon=config.SWEEP_SECONDS,
                )
                while True:
                    now = int(time.time())
                    left = sum(
                        store.due_count(s, until=now + 2 * config.POLL_INTERVAL_SECONDS)
                        for s in range(config.DUE_SHARDS)
                    )
                    done = sum(j["final_seen_after"] is not None for j in fake.jobs())
                    print(
                        f"  +{time.time() - started:5.0f} s: {left:5d} due within 2 min, {done:5d} seen done, "
                        f"{len(running)} sweeps so far",
                        flush=True,
                    )
                    for finished in running:
                        if finished.ready() and not finished.successful():
                            finished.get()  # a sweep that failed ends the run with its error
                    if left == 0 or time.time() - started > deadline:
                        break
                    plan = fan_out.start(now)
                    ticks += 1
                    dispatched += len(plan.others)
                    running.append(pool.apply_async(sweep, (endpoint, fake.base_url, plan.mine)))
                    time.sleep(max(0.0, started + ticks * TICK_SECONDS - time.time()))
                sweeps = [r.get(timeout=INVOCATION_SECONDS * 2) for r in running]
            wall = time.time() - started
            states: dict[str, int] = {}
            for page in store.due(now=int(time.time()) + 7 * 86400):
                for job in page:
                    states[job.state.value] = states.get(job.state.value, 0) + 1
    finally:
        jobs = fake.jobs()
        fake.stop()

    lags = [j["final_seen_after"] for j in jobs if j["final_seen_after"] is not None]
    polls = [j["polls"] for j in jobs]
    polled = sum(s.polled for s in sweeps)
    busy = [s.polled / s.seconds for s in sweeps if s.polled]
    ended = states.get("SUCCEEDED", 0)
    print()
    print(
        f"every job ended (SUCCEEDED, event published): {ended} of {args.jobs}, in {wall:.0f} s from the first tick; "
        f"states in the due index: {states}"
    )
    print(f"ticks {ticks}, sweeps {len(sweeps)} ({dispatched} dispatched by the ticks' fan-out)")
    print(f"polls per job: mean {statistics.mean(polls):.2f}, max {max(polls)}")
    cpu_ms = sum(s.cpu_seconds for s in sweeps) / polled * 1000
    print(
        f"sweep throughput: {polled / wall:.1f} polls/s over the run; per sweep median {statistics.median(busy):.1f}, "
        f"max {max(busy):.1f} polls/s; CPU per poll in the sweeps {cpu_ms:.1f} ms"
    )
    print(
        f"detection lag: p50 {percentile(lags, 50):.1f} s, p95 {percentile(lags, 95):.1f} s, max {max(lags):.1f} s "
        f"({len(lags)} jobs)"
    )
    ok = ended == args.jobs and wall < deadline
    print(f"all {args.jobs} ended within the deadline ({deadline} s)       {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
