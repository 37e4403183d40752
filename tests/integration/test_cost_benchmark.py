"""The cost benchmark on a few jobs: its counting must agree with what the stack did, or it has rotted.

``benchmarks/cost.py`` prices counts nobody checks by hand; these tests run a tiny version of it
(the real handlers, moto, the fake CometAPI in-process) and hold the counts to facts of the run.
"""

from __future__ import annotations

import doctest
import importlib
from collections import Counter
from collections.abc import Iterator

import pytest

from benchmarks.bill import Bill, price
from benchmarks.cost_sim import API_KEY, RunRecord, Workload, simulate
from local.fake_cometapi import FakeCometAPI

JOBS = 4


@pytest.fixture(scope="module")
def run() -> Iterator[RunRecord]:
    with FakeCometAPI(api_key=API_KEY, ready_after=1e9) as fake:
        yield simulate(Workload(jobs=JOBS, jobs_per_month=1_000_000, failed_share=0.0, idle_minutes=2), fake.base_url)


@pytest.fixture(scope="module")
def bill(run: RunRecord) -> Bill:
    return price(run)


def stack_calls(run: RunRecord, service: str, operation: str) -> list:
    return [c for c in run.calls if c.phase == "load" and c.service == service and c.operation == operation]


def test_every_job_is_stored_once_and_nothing_crashed(run: RunRecord) -> None:
    assert [i.error for i in run.invocations if i.error] == []
    stored = [e["detail"]["request_id"] for e in run.events_of("Video Stored")]
    assert len(stored) == len(set(stored)) == JOBS
    assert Counter(run.settled.values()) == {"Video Stored": JOBS}
    assert len(run.invocations_of("copier", "load")) == JOBS  # one copy each, no retry
    assert run.provider_calls["creates"] == JOBS


def test_the_counted_put_events_are_the_events_the_bus_delivered(run: RunRecord) -> None:
    from_stack = sum(c.entries for c in stack_calls(run, "events", "PutEvents") if c.payer != "app")
    assert from_stack == len(run.events)  # Submitted, Succeeded, Stored: each counted once, seen once
    assert sum(c.entries for c in stack_calls(run, "events", "PutEvents") if c.payer == "app") == JOBS


def test_each_stored_video_is_two_puts_its_tags_within_the_first(run: RunRecord) -> None:
    assert len(stack_calls(run, "s3", "PutObject")) == 2 * JOBS  # the video (5 MiB: one PUT) and its manifest
    assert stack_calls(run, "s3", "PutObjectTagging") == []


def test_dynamodb_writes_cost_units_on_the_table_and_the_due_index(run: RunRecord) -> None:
    writes = [c for c in run.calls if c.service == "dynamodb" and c.operation in ("PutItem", "UpdateItem")]
    assert writes and all(c.write_units.get("table", 0) >= 1 for c in writes)
    assert sum(c.write_units.get("due", 0) for c in writes) > 0
    queries = [c for c in run.calls if c.service == "dynamodb" and c.operation == "Query"]
    assert queries and all(c.read_units >= 0.5 for c in queries)


def test_the_idle_ticks_are_the_baseline(run: RunRecord) -> None:
    idle = run.invocations_of("poller", "idle")
    assert len(idle) == run.scheduler_ticks["idle"] == 2
    assert all(c.service == "dynamodb" and c.operation == "Query" for c in run.calls if c.phase == "idle")


def test_the_priced_total_is_the_sum_of_its_lines(bill: Bill) -> None:
    assert bill.usd_per_million_jobs == pytest.approx(sum(line.usd for line in bill.per_job))
    assert bill.usd_per_million_jobs == pytest.approx(sum(Bill.by_service(bill.per_job).values()))
    assert bill.idle_usd_per_month == pytest.approx(sum(Bill.by_service(bill.idle).values()))
    assert bill.usd_per_million_jobs > 0 and bill.idle_usd_per_month > 0
    services = set(Bill.by_service(bill.per_job))
    assert {"Lambda", "DynamoDB", "EventBridge", "SQS", "S3", "CloudWatch"} <= services


def test_the_per_job_counts_follow_from_the_run(run: RunRecord, bill: Bill) -> None:
    lines = {line.what.split(" (")[0]: line for line in bill.per_job}
    assert lines["PutEvents entries: the app's requests"].quantity == pytest.approx(1.0)
    assert lines["PutEvents entries: the stack's output events"].quantity == pytest.approx(3.0)
    assert lines["PUT-class requests"].quantity == pytest.approx(2.0)  # the video with its tags, its manifest
    invocations = next(line for line in bill.per_job if line.what.startswith("invocations"))
    assert invocations.quantity == pytest.approx(2.0, abs=0.5)  # a submit and a copy each; the poller is per tick


@pytest.mark.parametrize(
    "name", ["benchmarks.dynamodb_units", "benchmarks.aws_meter", "benchmarks.bill", "benchmarks.stack_facts"]
)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
