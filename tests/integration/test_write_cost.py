"""What a typical job costs in DynamoDB writes, priced by DynamoDB's rules (tests/write_units.py)
on the calls the real sweep and copier make, against moto and the table as template.yaml declares it.

A typical job: registered, 6 polls that find it pending, the poll that finds it done (its event
published), then copied into S3 (``Video Stored``). A pending poll must cost one write (its claim,
which is its reschedule) and one move of a small ``due`` entry; a second write only when the
provider's progress moved.
"""

from __future__ import annotations

import doctest
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from grokvideo.archive import VideoArchiver
from grokvideo.backoff import PollSchedule
from grokvideo.copier import Copier
from grokvideo.events import EventPublisher
from grokvideo.jobs import DUE_INDEX, JobStore
from grokvideo.models import Pending, PollStatus, Succeeded
from grokvideo.sweep import Sweeper
from grokvideo.urlguard import UrlGuard
from local.fake_cometapi import FakeCometAPI
from tests import write_units
from tests.integration.conftest import TABLE, EventCapture
from tests.virtual_clock import VirtualClock
from tests.write_units import Write, WriteLedger, totals

PENDING_POLLS = 6
BUCKET = "grokvideo-write-cost"


@dataclass
class Script:
    """A provider answering each poll with the next answer of a script."""

    answers: list[PollStatus] = field(default_factory=list)

    def get_video(self, request_id: str) -> PollStatus:
        return self.answers.pop(0)


def typical_job(
    store: JobStore,
    ledger: WriteLedger,
    publisher: EventPublisher,
    fake: FakeCometAPI,
    s3: Any,
    *,
    progress: Callable[[int], int | None],
    **registration: Any,
) -> Iterator[tuple[str, list[Write]]]:
    """Take one job through its life with the real sweep and copier; yield each step and its writes.

    ``progress(n)`` is the provider's progress at the ``n``-th pending poll; ``registration`` adds
    job attributes (a submitted job's ``request``...). Uses only what every version of the store,
    sweep and copier offers, so a comparison can run it on older code.
    """
    rid = fake.add_job(outcome="done", ready_after=0)  # serves the video; the answers are scripted
    now = int(time.time())
    mark = ledger.mark()
    attributes: dict[str, Any] = {"client_ref": "order-1044", "metadata": {"team": "video", "campaign": "spring"}}
    store.register(rid, now=now, **{**attributes, **registration})
    yield "register", ledger.since(mark)
    answers: list[PollStatus] = [Pending("IN_PROGRESS/processing", progress(n)) for n in range(PENDING_POLLS)]
    answers.append(Succeeded(fake.video_url(rid), duration=1, model="grok-imagine-video", cost_usd=0.05))
    script = Script(answers)
    for n in range(PENDING_POLLS + 1):
        at = int(ledger.reader.get_item(TableName=TABLE, Key={"request_id": {"S": rid}})["Item"]["next_poll_at"]["N"])
        sweeper = Sweeper(
            store,
            script,
            publisher,
            concurrency=1,
            schedule=PollSchedule(first_delay=5, cap=60),
            sweep_seconds=0,
            clock=lambda at=at: float(at),
        )
        mark = ledger.mark()
        report = sweeper.run()
        assert report.polled == 1 and report.unexpected_errors == 0, report
        yield ("poll, pending" if n < PENDING_POLLS else "poll, done"), ledger.since(mark)
    archiver = VideoArchiver(UrlGuard(["127.0.0.1"], allow_private=True), s3, max_video_bytes=2**20)
    mark = ledger.mark()
    Copier(store, archiver, publisher, bucket=BUCKET, max_receives=3).copy(rid)
    yield "copy", ledger.since(mark)


@pytest.fixture
def ledger(table: Any) -> WriteLedger:
    reader = boto3.client("dynamodb")
    return WriteLedger(reader, reader.describe_table(TableName=TABLE)["Table"])


@pytest.fixture
def costed_store(store: JobStore, ledger: WriteLedger) -> JobStore:
    """A store on the same table whose every call the ledger prices."""
    return JobStore(TABLE, first_poll_delay=5, client=ledger.hook(boto3.client("dynamodb")))


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def steps(
    costed_store: JobStore,
    ledger: WriteLedger,
    publisher: EventPublisher,
    fake: FakeCometAPI,
    s3: Any,
    progress: Callable[[int], int | None],
) -> list[tuple[str, dict[str, int]]]:
    return [
        (name, totals(writes))
        for name, writes in typical_job(costed_store, ledger, publisher, fake, s3, progress=progress)
    ]


def test_a_pending_poll_is_one_write_and_one_move_in_the_due_index(
    costed_store: JobStore,
    ledger: WriteLedger,
    publisher: EventPublisher,
    capture: EventCapture,
    fake: FakeCometAPI,
    s3: Any,
) -> None:
    done = steps(costed_store, ledger, publisher, fake, s3, progress=lambda n: 40)
    pending = [cost for name, cost in done if name == "poll, pending"]
    assert len(pending) == PENDING_POLLS
    # The claim writes the backoff as its end; a pending answer then records the time its progress
    # forecasts (grokvideo.schedule) when it differs, which moves the index entry a second time.
    # The first answer also records the job's first progress.
    assert pending[0]["calls"] == 2 and pending[0]["table"] == 2 and pending[0][DUE_INDEX] in (2, 4)
    assert all(p["calls"] <= 2 and p["table"] <= 2 and p[DUE_INDEX] <= 4 for p in pending[1:])
    assert all(p["by_state"] == p["by_ref"] == 0 for p in pending)
    assert [e["detail-type"] for e in capture.drain()] == ["Video Generation Succeeded", "Video Stored"]


def test_a_pending_poll_whose_progress_moved_writes_it_beside_the_claim(
    costed_store: JobStore,
    ledger: WriteLedger,
    publisher: EventPublisher,
    capture: EventCapture,
    fake: FakeCometAPI,
    s3: Any,
) -> None:
    done = steps(costed_store, ledger, publisher, fake, s3, progress=lambda n: 10 * (n + 1))
    pending = [cost for name, cost in done if name == "poll, pending"]
    # Progress is not projected; the forecast time it brings moves the index entry again, unless
    # it happens to equal the claim's jittered backoff.
    assert len(pending) == PENDING_POLLS
    assert all(p["calls"] == 2 and p["table"] == 2 and p[DUE_INDEX] in (2, 4) for p in pending), pending
    assert all(p["by_state"] == p["by_ref"] == 0 for p in pending)


def test_the_rest_of_a_job_writes_what_its_transitions_need(
    costed_store: JobStore,
    ledger: WriteLedger,
    publisher: EventPublisher,
    capture: EventCapture,
    fake: FakeCometAPI,
    s3: Any,
) -> None:
    cost = dict(steps(costed_store, ledger, publisher, fake, s3, progress=lambda n: None))
    assert cost["register"] == {"calls": 1, "table": 1, DUE_INDEX: 1, "by_state": 1, "by_ref": 1}
    # The claim, the transition (owing its event) and the outbox cleared once the event is out:
    # three moves in the due index (the claim's, the relay time's, the copy watchdog's); the new
    # state moves the job in by_state (a key there).
    assert cost["poll, done"] == {"calls": 3, "table": 3, DUE_INDEX: 6, "by_state": 2, "by_ref": 0}
    # STORED, owing Video Stored (a move), then out of the due index once it is out (a delete).
    assert cost["copy"] == {"calls": 2, "table": 2, DUE_INDEX: 3, "by_state": 2, "by_ref": 0}


def test_the_pricing_examples_run() -> None:
    assert doctest.testmod(write_units).failed == 0


def test_a_sweep_that_holds_a_pending_job_writes_its_claim_once_however_often_it_polls(
    costed_store: JobStore,
    ledger: WriteLedger,
    publisher: EventPublisher,
    capture: EventCapture,
    fake: FakeCometAPI,
) -> None:
    """A scheduled poller's sweep claims a pending job until its end and polls it again from
    memory: five pending answers whose progress moves, then "done", in one sweep (the gaps near
    the end are 8-10 s, jittered by the job's id: the sweep is long enough for any id)."""
    rid = fake.add_job(outcome="done", ready_after=0)
    start = float(int(time.time()))
    costed_store.register(rid, now=int(start) - 60, client_ref="order-1044")
    answers: list[PollStatus] = [Pending("IN_PROGRESS/processing", 80 + 3 * n) for n in range(5)]
    answers.append(Succeeded(fake.video_url(rid), duration=1, model="grok-imagine-video", cost_usd=0.05))
    script = Script(answers)
    clock = VirtualClock(start)
    sweeper = Sweeper(
        costed_store,
        script,
        publisher,
        concurrency=1,
        schedule=PollSchedule(first_delay=5, cap=60),
        sweep_seconds=120,
        clock=clock,
        sleep=clock.sleep,
    )
    mark = ledger.mark()
    report = sweeper.run()
    writes = ledger.since(mark)

    assert report.polled == 6 and report.held == 5 and report.unexpected_errors == 0, report
    assert clock() - start < 120  # every poll within the one sweep
    # The claim, then the transition and the outbox cleared: nothing for the five pending answers.
    assert totals(writes)["calls"] == 3, [w.operation for w in writes]
    assert [e["detail-type"] for e in capture.drain()] == ["Video Generation Succeeded"]


def test_a_held_job_is_due_again_at_the_sweeps_end_if_the_sweep_dies(
    costed_store: JobStore, publisher: EventPublisher, fake: FakeCometAPI
) -> None:
    """Holding writes nothing after the claim; the claim's end is the sweep's, so a poller that
    dies mid-sweep leaves the job due when the next sweep starts."""
    rid = fake.add_job(outcome="done", ready_after=0)
    start = float(int(time.time()))
    costed_store.register(rid, now=int(start) - 60)
    clock = VirtualClock(start)

    class DiesOnSecondPoll(Script):
        def get_video(self, request_id: str) -> PollStatus:
            if not self.answers:
                raise SystemExit("the poller's process died")
            return super().get_video(request_id)

    sweeper = Sweeper(
        costed_store,
        DiesOnSecondPoll([Pending("IN_PROGRESS/processing", 95)]),
        publisher,
        concurrency=1,
        sweep_seconds=50,
        clock=clock,
        sleep=clock.sleep,
    )
    with pytest.raises(SystemExit):
        sweeper.run()
    job = costed_store.get(rid)
    assert job is not None and job.state.value == "PENDING"
    assert job.next_poll_at == int(start) + 50
