"""Spreading a sweep over several invocations, against the moto table and the fake provider:
the tick's plan and dispatch, sweeps of a few shards, stranded shards, and the shared poll rate."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from grokvideo.fanout import FanOut
from grokvideo.jobs import JobStore
from grokvideo.ratelimit import PollBudget, SharedRateLimiter
from grokvideo.sweep import Sweeper
from local.fake_cometapi import FakeCometAPI
from tests.integration.conftest import TABLE

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:grokvideo-poller"


class Invocations:
    """A Lambda client that records async invokes (moto cannot run the function)."""

    def __init__(self, fail: bool = False) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.fail = fail

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["InvocationType"] == "Event" and kwargs["FunctionName"] == FUNCTION
        if self.fail:
            raise RuntimeError("throttled")
        self.payloads.append(json.loads(kwargs["Payload"]))
        return {"StatusCode": 202}


def register(store: JobStore, count: int, *, now: int, prefix: str = "job") -> list[str]:
    ids = [f"{prefix}-{i:04d}" for i in range(count)]
    for rid in ids:
        assert store.register(rid, now=now)
    return ids


def test_a_small_backlog_is_swept_by_the_tick_alone(store: JobStore) -> None:
    register(store, 40, now=1000)
    lam = Invocations()
    plan = FanOut(store, lam, FUNCTION, capacity=600, max_sweepers=4, horizon=60).start(now=1000)
    assert plan.mine == (0, 1, 2, 3) and plan.others == ()
    assert lam.payloads == []


def test_a_large_backlog_is_spread_and_every_shard_swept_once(store: JobStore) -> None:
    ids = register(store, 200, now=1000)
    lam = Invocations()
    plan = FanOut(store, lam, FUNCTION, capacity=60, max_sweepers=4, horizon=60).start(now=1000)
    dispatched = [tuple(p["sweep_shards"]) for p in lam.payloads]
    assert dispatched == list(plan.others) and len(dispatched) == 3
    assert sorted(plan.mine + sum(dispatched, ())) == [0, 1, 2, 3]
    # What each would sweep covers every job once.
    seen = [
        job.request_id for group in [plan.mine, *dispatched] for page in store.due(1000, shards=group) for job in page
    ]
    assert sorted(seen) == ids


def test_a_failed_dispatch_is_swept_by_the_tick(store: JobStore) -> None:
    register(store, 200, now=1000)
    plan = FanOut(store, Invocations(fail=True), FUNCTION, capacity=60, max_sweepers=4, horizon=60).start(now=1000)
    assert plan.mine == (0, 1, 2, 3) and plan.others == ()


def test_only_jobs_due_within_the_sweep_count_as_backlog(store: JobStore) -> None:
    register(store, 200, now=10_000)  # first poll at 10_005
    lam = Invocations()
    plan = FanOut(store, lam, FUNCTION, capacity=60, max_sweepers=4, horizon=60).start(now=9_000)
    assert plan.others == () and lam.payloads == []


def test_a_sweep_of_some_shards_polls_only_their_jobs(
    store: JobStore, fake: FakeCometAPI, make_sweeper: Callable[..., Sweeper]
) -> None:
    ids = [fake.add_job(outcome="done", ready_after=0) for _ in range(24)]
    for rid in ids:
        store.register(rid, now=int(time.time()) - 10)
    report = make_sweeper().run(shards=[1, 3])
    mine = [rid for rid in ids if store.shard_of(rid) in (1, 3)]
    assert report.succeeded == len(mine) and 0 < len(mine) < len(ids)
    left = {job.request_id for page in store.due(int(time.time()) + 1) for job in page if job.state.value == "PENDING"}
    assert left == set(ids) - set(mine)


def test_lowering_due_shards_strands_no_job(
    table: Any, fake: FakeCometAPI, make_sweeper: Callable[..., Sweeper], store: JobStore
) -> None:
    """Jobs written with 8 shards, swept with 4: the tick finds shards 4..7 and its sweep moves
    each job home (its next poll is in a shard the sweep reads)."""
    wide = JobStore(TABLE, shards=8, first_poll_delay=0)
    ids = [fake.add_job(outcome="done", ready_after=3600) for _ in range(32)]
    for rid in ids:
        wide.register(rid, now=int(time.time()) - 10)
    stranded = sorted({wide.shard_of(rid) for rid in ids} - {0, 1, 2, 3})
    assert stranded
    plan = FanOut(store, Invocations(), FUNCTION, capacity=600, max_sweepers=4, horizon=60).start(int(time.time()))
    assert plan.mine == (0, 1, 2, 3, *stranded)
    report = make_sweeper().run(shards=plan.mine)
    assert report.rescheduled == len(ids)
    assert store.occupied_shards(range(4, 16)) == []
    assert {store.get(rid).due_shard for rid in ids} <= {0, 1, 2, 3}  # type: ignore[union-attr]


def test_pollers_share_one_rate(store: JobStore, fake: FakeCometAPI, make_sweeper: Callable[..., Sweeper]) -> None:
    """Two sweepers on halves of the shards, 20 polls/s between them in batches of 4: together
    they keep to the rate (at most one batch each ahead of it)."""
    ids = [fake.add_job(outcome="done", ready_after=3600) for _ in range(60)]
    for rid in ids:
        store.register(rid, now=int(time.time()) - 10)
    limiter = SharedRateLimiter(store.table, "poll", per_second=20, headroom=1.0)
    sweepers = [make_sweeper(budget=PollBudget(limiter, batch=4), concurrency=4) for _ in range(2)]
    threads = [
        threading.Thread(target=s.run, kwargs={"shards": shards})
        for s, shards in zip(sweepers, [(0, 1), (2, 3)], strict=True)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    assert sum(s.report.polled for s in sweepers) == len(ids)
    assert took >= (len(ids) - 2 * 4) / 20


def test_a_429_to_one_poller_pauses_every_poller(
    store: JobStore, fake: FakeCometAPI, make_sweeper: Callable[..., Sweeper]
) -> None:
    rid = fake.add_job(outcome="done", ready_after=3600)
    store.register(rid, now=int(time.time()) - 10)
    fake.inject("429", retry_after=3, count=1)
    limiter = SharedRateLimiter(store.table, "poll", per_second=20)
    seen = time.time()
    report = make_sweeper(budget=PollBudget(limiter, batch=4)).run()
    assert report.rate_limited
    # Another poller's next slot now starts after the provider's Retry-After.
    slot = SharedRateLimiter(store.table, "poll", per_second=20).take(max_wait=10)
    assert slot.taken and slot.starts_at >= seen + 3 - 0.5
