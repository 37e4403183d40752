"""The poller's sweep over real HTTP (fake CometAPI on loopback) and moto (table, bus)."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from grokvideo.errors import EventPublishError
from grokvideo.events import EventPublisher, OutputEvent
from grokvideo.jobs import COPY_WATCHDOG, DueJob, JobStore
from grokvideo.models import JobState
from grokvideo.schedule import ProgressSchedule
from grokvideo.sweep import Sweeper
from local.fake_cometapi import FakeCometAPI
from tests.integration.conftest import EventCapture
from tests.schema_check import assert_valid_event

SUCCEEDED = "Video Generation Succeeded"
FAILED = "Video Generation Failed"


def register(store: JobStore, fake: FakeCometAPI, outcome: str = "done", *, age: int = 0, **kw: Any) -> str:
    request_id = fake.add_job(outcome=outcome, ready_after=0, **kw)
    store.register(request_id, now=int(time.time()) - age, client_ref=f"ref-{outcome}", metadata={"o": outcome})
    return request_id


def events_by_id(capture: EventCapture) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in capture.drain():
        assert event["source"] == "grokvideo"
        assert_valid_event(event["detail-type"], event["detail"])
        grouped.setdefault(event["detail"]["request_id"], []).append(event)
    return grouped


def test_done_job_succeeds_with_one_event_and_leaves_the_due_index(
    store: JobStore, fake: FakeCometAPI, capture: EventCapture, make_sweeper: Callable[..., Sweeper]
) -> None:
    rid = register(store, fake)
    report = make_sweeper().run()
    assert (report.polled, report.succeeded, report.events_published) == (1, 1, 1)
    [event] = events_by_id(capture)[rid]
    assert event["detail-type"] == SUCCEEDED
    detail = event["detail"]
    assert detail["video_url"] == fake.video_url(rid)
    assert (detail["duration"], detail["model"], detail["cost_usd"]) == (1, "grok-imagine-video", 0.05)
    assert (detail["client_ref"], detail["metadata"]) == ("ref-done", {"o": "done"})
    job = store.get(rid)
    assert job is not None and job.state is JobState.SUCCEEDED and job.outbox is None
    assert job.next_poll_at is not None and job.next_poll_at >= time.time() + COPY_WATCHDOG - 5  # the copy's now


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [("failed", "PROVIDER_FAILED"), ("expired", "EXPIRED"), ("moderated", "MODERATED")],
)
def test_each_provider_failure_ends_failed_with_its_reason(
    outcome: str,
    reason: str,
    store: JobStore,
    fake: FakeCometAPI,
    capture: EventCapture,
    make_sweeper: Callable[..., Sweeper],
) -> None:
    rid = register(store, fake, outcome)
    report = make_sweeper().run()
    assert report.failed == Counter({reason: 1})
    [event] = events_by_id(capture)[rid]
    assert event["detail-type"] == FAILED
    assert event["detail"]["reason"] == reason and event["detail"]["message"]
    job = store.get(rid)
    assert job is not None and (job.state, job.reason) == (JobState.FAILED, reason)
    assert job.expires_at is not None  # finished: TTL started


def test_unknown_id_is_pending_while_fresh_then_not_found(
    store: JobStore, fake: FakeCometAPI, capture: EventCapture, make_sweeper: Callable[..., Sweeper]
) -> None:
    fresh = "unknown-fresh"
    stale = "unknown-stale"
    store.register(fresh, now=int(time.time()))
    store.register(stale, now=int(time.time()) - 120)
    report = make_sweeper().run()
    assert report.failed == Counter({"NOT_FOUND": 1})
    assert store.get(fresh).state is JobState.PENDING  # type: ignore[union-attr]
    assert store.get(fresh).attempts == 1  # type: ignore[union-attr]
    assert [e["detail"]["reason"] for e in events_by_id(capture)[stale]] == ["NOT_FOUND"]


def test_done_without_url_is_polled_again_then_failed(
    store: JobStore, fake: FakeCometAPI, capture: EventCapture, make_sweeper: Callable[..., Sweeper]
) -> None:
    rid = register(store, fake, "no_url")
    sweeper = make_sweeper(sweep_seconds=10)
    report = sweeper.run()
    assert report.polled == 3  # missing_url_limit
    [event] = events_by_id(capture)[rid]
    assert event["detail"]["reason"] == "PROVIDER_FAILED"
    assert "without a video URL" in event["detail"]["message"]


def test_a_job_past_its_deadline_gets_one_last_poll_that_decides(
    store: JobStore, fake: FakeCometAPI, capture: EventCapture, make_sweeper: Callable[..., Sweeper]
) -> None:
    pending = fake.add_job(outcome="done", ready_after=3600)
    store.register(pending, now=int(time.time()) - 3601)
    done = register(store, fake, "done", age=3601)

    report = make_sweeper().run()

    assert report.polled == 2 and report.failed == Counter({"TIMED_OUT": 1}) and report.succeeded == 1
    by_id = events_by_id(capture)
    assert [e["detail"]["reason"] for e in by_id[pending]] == ["TIMED_OUT"]
    assert [e["detail-type"] for e in by_id[done]] == [SUCCEEDED], "a finished video is never timed out"


def test_a_key_outage_longer_than_the_deadline_times_out_no_job(
    store: JobStore, fake: FakeCometAPI, capture: EventCapture, make_sweeper: Callable[..., Sweeper]
) -> None:
    rid = register(store, fake, "done", age=3601)  # its deadline passed while our key was refused
    refused = make_sweeper(concurrency=1, client=_client_with_key(fake, "revoked-key")).run()
    assert refused.auth_failed and refused.failed == Counter()
    job = store.get(rid)
    assert job is not None and job.state is JobState.PENDING and job.lease_owner is None
    assert capture.drain() == []

    restored = make_sweeper().run()

    assert restored.succeeded == 1 and restored.failed == Counter()
    assert [e["detail-type"] for e in events_by_id(capture)[rid]] == [SUCCEEDED]


def test_a_pending_job_is_rescheduled_by_the_progress_schedule_not_the_error_backoff(
    store: JobStore, fake: FakeCometAPI, capture: EventCapture, make_sweeper: Callable[..., Sweeper]
) -> None:
    rid = fake.add_job(outcome="done", ready_after=3600)
    store.register(rid, now=int(time.time()))
    polled_at = time.time()
    report = make_sweeper().run()
    swept_at = time.time()
    job = store.get(rid)
    assert job is not None
    assert (job.state, job.attempts, report.rescheduled) == (JobState.PENDING, 1, 1)
    # Within the pending schedule's floor and cap (5..60 s), not the tests' 0.5 s error backoff
    # that the claim wrote; its end is that time, no lease outlives it.
    default = ProgressSchedule()
    assert job.next_poll_at is not None
    assert polled_at + default.floor <= job.next_poll_at <= math.ceil(swept_at + default.cap)
    assert job.lease_until is None
    assert capture.drain() == []


def test_the_sweeper_times_pending_jobs_with_the_schedule_it_is_given(
    store: JobStore, fake: FakeCometAPI, make_sweeper: Callable[..., Sweeper]
) -> None:
    rid = fake.add_job(outcome="done", ready_after=3600)
    store.register(rid, now=int(time.time()))
    polled_at = time.time()
    make_sweeper(pending_schedule=ProgressSchedule(floor=1, near=1, cap=1)).run()
    swept_at = time.time()
    job = store.get(rid)
    assert job is not None and job.next_poll_at is not None
    assert polled_at + 1 <= job.next_poll_at <= math.ceil(swept_at + 1)


def test_server_errors_back_off_the_job_alone(
    store: JobStore, fake: FakeCometAPI, capture: EventCapture, make_sweeper: Callable[..., Sweeper]
) -> None:
    sick = register(store, fake)
    healthy = register(store, fake)
    fake.inject("503", count=1, path=f"/grok/v1/videos/{sick}")
    report = make_sweeper().run()
    assert report.poll_errors == Counter({"RetryableError": 1}) and report.unexpected_errors == 0
    backed_off = store.get(sick)
    assert backed_off is not None and backed_off.state is JobState.PENDING
    assert (backed_off.attempts, backed_off.lease_until) == (1, None)
    assert store.get(healthy).state is JobState.SUCCEEDED  # type: ignore[union-attr]
    assert list(events_by_id(capture)) == [healthy]


def test_rate_limit_pauses_the_whole_sweep_for_retry_after(
    store: JobStore, fake: FakeCometAPI, capture: EventCapture, make_sweeper: Callable[..., Sweeper]
) -> None:
    ids = [register(store, fake) for _ in range(4)]
    fake.inject("429", count=1, retry_after=2)
    started = time.monotonic()
    report = make_sweeper(concurrency=1, sweep_seconds=15).run()
    elapsed = time.monotonic() - started
    assert report.rate_limited and report.poll_errors["RateLimitedError"] == 1
    assert elapsed >= 2.0  # nobody polled during the pause
    assert report.succeeded == 4
    assert sorted(events_by_id(capture)) == sorted(ids)


def test_auth_outage_stops_the_sweep_and_fails_no_job(
    store: JobStore, fake: FakeCometAPI, capture: EventCapture, make_sweeper: Callable[..., Sweeper]
) -> None:
    ids = [register(store, fake) for _ in range(10)]
    sweeper = make_sweeper(concurrency=1, client=_client_with_key(fake, "revoked-key"))
    report = sweeper.run()
    assert report.auth_failed
    assert report.poll_errors == Counter({"AuthError": 1})  # stopped at the first refusal
    assert report.failed == Counter() and report.succeeded == 0
    for rid in ids:
        job = store.get(rid)
        assert job is not None and job.state is JobState.PENDING and job.lease_owner is None
    assert capture.drain() == []


def test_two_pollers_racing_produce_one_transition_and_one_event_per_job(
    store: JobStore, fake: FakeCometAPI, capture: EventCapture, make_sweeper: Callable[..., Sweeper]
) -> None:
    ids = [register(store, fake) for _ in range(30)]
    fake.set_latency(0.02)
    sweepers = [make_sweeper(concurrency=8), make_sweeper(concurrency=8)]
    reports: list[Any] = []
    threads = [threading.Thread(target=lambda s=s: reports.append(s.run())) for s in sweepers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(r.succeeded for r in reports) == 30
    grouped = events_by_id(capture)
    assert sorted(grouped) == sorted(ids)
    assert all(len(events) == 1 for events in grouped.values())


class CrashingPublisher:
    """Accepts nothing: stands for a process that died between the state write and PutEvents."""

    def publish_one(self, event: OutputEvent) -> None:
        raise EventPublishError("simulated crash before PutEvents")


def test_event_lost_to_a_crash_after_the_state_write_goes_out_on_the_next_sweep(
    store: JobStore,
    fake: FakeCometAPI,
    capture: EventCapture,
    publisher: EventPublisher,
    make_sweeper: Callable[..., Sweeper],
) -> None:
    rid = register(store, fake)
    first = Sweeper(store, make_sweeper().client, CrashingPublisher(), sweep_seconds=0)
    report = first.run()
    assert report.succeeded == 1 and report.publish_errors == 1
    job = store.get(rid)
    assert job is not None and job.state is JobState.SUCCEEDED and job.outbox == SUCCEEDED
    assert capture.drain() == []

    fake.reset()
    later = make_sweeper(clock=lambda: time.time() + 31)  # the next scheduled tick
    report = later.run()
    assert report.polled == 0 and report.events_published == 1  # relayed, not polled again
    assert 31 <= report.oldest_owed_seconds <= 33  # the OwedEventAge metric: how late it went out
    [event] = events_by_id(capture)[rid]
    assert event["detail-type"] == SUCCEEDED and event["detail"]["video_url"] == fake.video_url(rid)
    job = store.get(rid)
    assert job is not None and job.outbox is None and job.next_poll_at >= time.time() + COPY_WATCHDOG - 5
    assert not [r for r in fake.requests if rid in r[1]]


def _client_with_key(fake: FakeCometAPI, key: str) -> Any:
    from grokvideo.cometapi import CometApiClient

    return CometApiClient(fake.base_url, lambda: key, read_timeout=2.0)


class FlakyStore(JobStore):
    """DynamoDB refusing one job's claim (throttled past the SDK's retries)."""

    def __init__(self, inner: JobStore, broken: str) -> None:
        self.__dict__.update(inner.__dict__)
        self.broken = broken

    def claim_poll(self, due: DueJob, **kwargs: Any) -> Any:
        if due.request_id == self.broken:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem")
        return super().claim_poll(due, **kwargs)


def test_an_aws_error_on_one_job_does_not_end_the_sweep(
    store: JobStore,
    fake: FakeCometAPI,
    capture: EventCapture,
    publisher: EventPublisher,
    make_sweeper: Callable[..., Sweeper],
) -> None:
    broken = register(store, fake)
    healthy = register(store, fake)
    client = make_sweeper().client
    report = Sweeper(FlakyStore(store, broken), client, publisher, sweep_seconds=0).run()
    assert report.unexpected_errors == 1 and report.succeeded == 1
    assert list(events_by_id(capture)) == [healthy]
    # The job is untouched and still due: the next sweep takes it.
    assert store.get(broken).state is JobState.PENDING  # type: ignore[union-attr]
    make_sweeper().run()
    assert list(events_by_id(capture)) == [broken]


def test_a_settled_job_stranded_in_the_due_index_is_retired_not_polled(
    store: JobStore, fake: FakeCometAPI, capture: EventCapture, table: Any, make_sweeper: Callable[..., Sweeper]
) -> None:
    now = int(time.time())
    table.put_item(
        Item={
            "request_id": "stranded",
            "state": "STORED",
            "registered_at": now,
            "deadline_at": now + 60,
            "due_shard": store.shard_of("stranded"),
            "next_poll_at": now - 1,
        }
    )
    report = make_sweeper().run()
    assert report.polled == 0 and fake.requests == [] and capture.drain() == []
    item = table.get_item(Key={"request_id": "stranded"})["Item"]
    assert item["state"] == "STORED" and "due_shard" not in item and "next_poll_at" not in item


def test_a_stopped_sweep_reads_no_further_due_pages(
    store: JobStore, fake: FakeCometAPI, capture: EventCapture, make_sweeper: Callable[..., Sweeper]
) -> None:
    for _ in range(40):  # ~10 per shard: one page each
        register(store, fake)
    sweeper = make_sweeper(concurrency=1, client=_client_with_key(fake, "revoked-key"))
    report = sweeper.run()
    assert report.auth_failed
    # The first shard's page was read before the refusal; the other shards never were.
    assert report.items_read < 40


def test_a_pause_longer_than_the_time_left_reschedules_instead_of_waiting(
    store: JobStore, fake: FakeCometAPI, capture: EventCapture, make_sweeper: Callable[..., Sweeper]
) -> None:
    ids = [register(store, fake) for _ in range(3)]
    fake.inject("429", count=1, retry_after=30)
    started = time.monotonic()
    report = make_sweeper(concurrency=1).run(time_left=lambda: 20, safety_margin=15)  # 5 s of budget
    assert time.monotonic() - started < 5  # did not sit out a 30 s pause
    assert report.rate_limited and report.polled == 0
    assert fake.count("GET", "/grok/v1/videos/") == 1  # only the call that got the 429
    for rid in ids:
        job = store.get(rid)
        assert job is not None and job.state is JobState.PENDING and job.lease_owner is None
        assert job.next_poll_at is not None and job.next_poll_at >= time.time() + 25
    assert capture.drain() == []


def test_a_succeeded_job_no_copy_settled_is_announced_again_then_failed(
    store: JobStore, fake: FakeCometAPI, capture: EventCapture, make_sweeper: Callable[..., Sweeper]
) -> None:
    """Its copy message lost (or dead-lettered without settling it), a succeeded job is never
    forgotten: after the watchdog the copy is asked for again, and after a second one it fails."""
    rid = register(store, fake)
    make_sweeper().run()
    assert [e["detail-type"] for e in events_by_id(capture)[rid]] == [SUCCEEDED]

    # Nobody copies it. One watchdog later, a sweep announces it again (the copy rule acts on it).
    report = make_sweeper(clock=lambda: time.time() + COPY_WATCHDOG + 1).run()
    assert report.stalled_copies == 1 and report.polled == 0
    assert [e["detail-type"] for e in events_by_id(capture)[rid]] == [SUCCEEDED]
    job = store.get(rid)
    assert job is not None and job.state is JobState.SUCCEEDED and job.copy_reminders == 1
    assert job.next_poll_at is not None and job.next_poll_at > time.time() + 2 * COPY_WATCHDOG - 5

    # Still not copied one more watchdog later: the job ends ARCHIVE_FAILED, announced.
    report = make_sweeper(clock=lambda: time.time() + 2 * COPY_WATCHDOG + 2).run()
    assert report.stalled_copies == 1
    [event] = events_by_id(capture)[rid]
    assert event["detail-type"] == "Video Archive Failed" and event["detail"]["reason"] == "TRANSFER_FAILED"
    job = store.get(rid)
    assert job is not None and job.state is JobState.ARCHIVE_FAILED and job.next_poll_at is None


def test_the_report_carries_the_provider_latency_of_its_status_calls(
    store: JobStore, fake: FakeCometAPI, make_sweeper: Callable[..., Sweeper]
) -> None:
    """The p90 of the sweep's calls over real HTTP, answered or failed (ProviderLatency); none when no call."""
    assert make_sweeper().run().provider_latency_ms == 0.0  # nothing due: no call
    fake.set_latency(0.2)
    register(store, fake)
    register(store, fake)
    fake.inject("500", count=1)
    report = make_sweeper().run()
    assert (report.polled, report.poll_errors) == (1, Counter({"RetryableError": 1}))
    assert 200 <= report.provider_latency_ms < 2000
