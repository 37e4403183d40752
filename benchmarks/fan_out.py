"""Fan-out benchmark: 1, 2 and 4 pollers sweeping their shares of one table at the same time.

Run alone: ``python benchmarks/fan_out.py`` (from the repo root, in the test virtualenv).

Each sweeper is a process of its own, as each Lambda invocation is, sweeping the shard group
``grokvideo.fanout.plan_sweeps`` gives it, under one shared poll budget (``PollBudget``, as
deployed). DynamoDB is a moto server and the provider our fake, each in its own process; the fake
answers "pending" after ``--latency`` seconds, so every poll is the steady-state one (claim, GET,
reschedule). The settings are latency-bound on purpose (few calls in flight, a slow provider):
on this 2-core machine the figure must measure how the work spreads, not how the CPU is shared,
and the CPU used is printed to show it.

Targets: N sweepers poll >= 0.8 x N times as fast as one (median of the repeats); items read
<= 1.05 x jobs due.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT)]

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from benchmarks import figures  # noqa: E402
from benchmarks.machine import describe  # noqa: E402
from benchmarks.services import MOTO_CREDENTIALS, fake_cometapi, moto_server  # noqa: E402
from grokvideo.fanout import plan_sweeps  # noqa: E402
from grokvideo.jobs import JobStore  # noqa: E402
from tests.integration.conftest import create_jobs_table  # noqa: E402

API_KEY = "bench-key"
SHARDS = 4
FIGURE = ROOT / "docs" / "fan_out.png"


@dataclass(frozen=True)
class SweepResult:
    shards: tuple[int, ...]
    polled: int
    items_read: int
    started: float
    ended: float
    cpu_seconds: float


def sweep_share(
    endpoint: str, api_url: str, table: str, shards: tuple[int, ...], concurrency: int, rate: float, start_at: float
) -> SweepResult:
    """One sweeper process: its shards, one pass, the shared budget; what it did and its CPU."""
    os.environ.update(MOTO_CREDENTIALS)
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    from grokvideo.backoff import PollSchedule
    from grokvideo.cometapi import CometApiClient
    from grokvideo.events import EventPublisher
    from grokvideo.ratelimit import PollBudget, SharedRateLimiter
    from grokvideo.sweep import Sweeper

    config = Config(max_pool_connections=concurrency * 4, retries={"mode": "standard"})
    store = JobStore(table, shards=SHARDS, client=boto3.client("dynamodb", endpoint_url=endpoint, config=config))
    events = boto3.client("events", endpoint_url=endpoint, config=config)
    budget = PollBudget(SharedRateLimiter(store.table, "poll", per_second=rate), batch=concurrency)
    sweeper = Sweeper(
        store,
        CometApiClient(api_url, lambda: API_KEY, maxsize=concurrency),
        EventPublisher("bench-bus", "grokvideo", client=events),
        concurrency=concurrency,
        schedule=PollSchedule(first_delay=600, cap=600),  # polled once: the next poll is far away
        sweep_seconds=0,
        budget=budget,
    )
    time.sleep(max(0.0, start_at - time.time()))
    cpu = time.process_time()
    started = time.time()
    report = sweeper.run(shards=shards)
    return SweepResult(shards, report.polled, report.items_read, started, time.time(), time.process_time() - cpu)


def one_run(
    pool: Any, endpoint: str, api_url: str, *, sweepers: int, jobs: int, concurrency: int, rate: float
) -> tuple[list[SweepResult], float, int]:
    """A fresh table with ``jobs`` due, swept by ``sweepers`` processes at once."""
    table = f"fan-{uuid.uuid4().hex[:8]}"
    dynamodb = boto3.resource("dynamodb", endpoint_url=endpoint)
    create_jobs_table(dynamodb, table)
    store = JobStore(table, shards=SHARDS, first_poll_delay=0, client=boto3.client("dynamodb", endpoint_url=endpoint))
    now = int(time.time()) - 1
    for i in range(jobs):
        store.register(f"job-{uuid.uuid4().hex[:12]}-{i}", now=now)
    backlog = {shard: store.due_count(shard, until=now + 60) for shard in range(SHARDS)}
    plan = plan_sweeps(backlog, capacity=math.ceil(jobs / sweepers), max_sweepers=sweepers)
    groups = [plan.mine, *plan.others]
    start_at = time.time() + 3  # every process imported and waiting: they start together
    futures = [
        pool.apply_async(sweep_share, (endpoint, api_url, table, group, concurrency, rate, start_at))
        for group in groups
    ]
    results = [f.get(timeout=600) for f in futures]
    return results, start_at, len(groups)


def draw(rows: list[dict[str, Any]], path: Path) -> str:
    plt = figures.pyplot()
    if plt is None:
        return figures.not_drawn(path)
    ns = [r["sweepers"] for r in rows]
    one = rows[0]["median"]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(ns, [n * one for n in ns], "--", color="grey", label="N x one sweeper (ideal)")
    ax.plot(ns, [0.8 * n * one for n in ns], ":", color="grey", label="target: 0.8 x N x one")
    ax.errorbar(
        ns,
        [r["median"] for r in rows],
        yerr=[[r["median"] - r["min"] for r in rows], [0] * len(rows)],
        fmt="o-",
        capsize=4,
        label="measured (median, bar to min)",
    )
    ax.set_xticks(ns)
    ax.set_xlabel("sweepers in parallel (one shard group each)")
    ax.set_ylabel("polls per second, all sweepers")
    ax.set_title("Fan-out: sweepers sharing one table and one poll budget")
    ax.legend()
    ax.grid(alpha=0.3)
    return figures.save(fig, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.5, help="seconds the fake takes per status answer")
    parser.add_argument("--concurrency", type=int, default=4, help="calls in flight per sweeper")
    parser.add_argument("--jobs-per-sweeper", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0, help="the shared poll budget, polls/s")
    args = parser.parse_args()
    os.environ.update({k: v for k, v in MOTO_CREDENTIALS.items() if k not in os.environ})
    bound = args.concurrency / args.latency

    print(f"machine: {describe()}")
    print(
        f"fake latency {args.latency:.2f} s, {args.concurrency} calls in flight per sweeper (bound "
        f"{bound:.1f} polls/s each), {args.jobs_per_sweeper} jobs per sweeper, shared budget {args.rate:.0f}/s, "
        f"{args.repeats} repeats"
    )
    rows: list[dict[str, Any]] = []
    with (
        fake_cometapi(
            "--auto-jobs", "--ready-after", "3600", "--latency", str(args.latency), "--api-key", API_KEY
        ) as api,
        moto_server() as moto,
    ):
        boto3.client("events", endpoint_url=moto.url).create_event_bus(Name="bench-bus")
        with multiprocessing.get_context("spawn").Pool(4) as pool:
            for n in (1, 2, 4):
                rates, reads, cpus = [], [], []
                for _ in range(args.repeats):
                    jobs = args.jobs_per_sweeper * n
                    services_cpu = api.cpu() + moto.cpu()
                    results, start_at, groups = one_run(
                        pool, moto.url, api.url, sweepers=n, jobs=jobs, concurrency=args.concurrency, rate=args.rate
                    )
                    wall = max(r.ended for r in results) - start_at
                    polled = sum(r.polled for r in results)
                    assert polled == jobs and groups == n, (polled, jobs, groups, n)
                    rates.append(polled / wall)
                    reads.append(sum(r.items_read for r in results) / jobs)
                    cpu = sum(r.cpu_seconds for r in results) + api.cpu() + moto.cpu() - services_cpu
                    cpus.append(cpu / wall / (os.cpu_count() or 1))
                rows.append(
                    {
                        "sweepers": n,
                        "min": min(rates),
                        "median": statistics.median(rates),
                        "reads": max(reads),
                        "cpu": statistics.median(cpus),
                    }
                )

    one = rows[0]["median"]
    print(
        f"{'sweepers':>8}  {'polls/s min':>11}  {'median':>7}  {'vs N x one':>10}  {'items read/due':>14}  "
        f"{'CPU used':>8}"
    )
    for r in rows:
        print(
            f"{r['sweepers']:>8}  {r['min']:>11.2f}  {r['median']:>7.2f}  {r['median'] / (r['sweepers'] * one):>9.2f}x"
            f"  {r['reads']:>14.3f}  {r['cpu'] * 100:>7.0f}%"
        )
    print("CPU used: the sweepers, the fake and moto together, as a share of all cores (median)")
    checks = [
        (f"{r['sweepers']} sweepers >= 0.8 x {r['sweepers']} x one", r["median"] >= 0.8 * r["sweepers"] * one)
        for r in rows[1:]
    ]
    checks.append(("items read <= 1.05 x due", all(r["reads"] <= 1.05 for r in rows)))
    for name, ok in checks:
        print(f"{name:<40} {'PASS' if ok else 'FAIL'}")
    print(draw(rows, FIGURE))
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
