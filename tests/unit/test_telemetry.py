"""A sweep's and a copy's metrics: counts are sent only when they are not zero (each metric bills
per hour sent); the latencies once per sweep and once per stored video."""

from __future__ import annotations

from collections import Counter

from aws_lambda_powertools import Metrics

from grokvideo.copier import CopyResult
from grokvideo.models import JobState
from grokvideo.sweep import SweepReport
from grokvideo.telemetry import record_copy, record_sweep


def sent(report: SweepReport) -> set[str]:
    metrics = Metrics(namespace="GrokVideo", service="test-telemetry")
    try:
        record_sweep(metrics, report)
        return set(metrics.metric_set)
    finally:
        metrics.clear_metrics()


def test_a_quiet_busy_sweep_sends_its_counts_and_no_sign_of_trouble() -> None:
    names = sent(SweepReport(polled=7, succeeded=2, events_published=2, items_read=9, duration_seconds=3.5))
    assert names == {"JobsPolled", "JobsSucceeded", "EventsPublished", "DueItemsRead", "SweepDuration"}


def test_trouble_is_sent_when_there_is_some() -> None:
    report = SweepReport(
        polled=3,
        lost_claims=1,
        unexpected_errors=2,
        publish_errors=1,
        stalled_copies=1,
        oldest_owed_seconds=400,
        auth_failed=True,
        failed=Counter({"MODERATED": 1}),
    )
    assert {
        "LostClaims",
        "UnexpectedErrors",
        "EventPublishErrors",
        "StalledCopies",
        "OwedEventAge",
        "ProviderAuthFailures",
        "JobsFailed",
    } <= sent(report)


def test_provider_latency_is_one_value_per_sweep_and_only_when_it_called() -> None:
    metrics = Metrics(namespace="GrokVideo", service="test-telemetry")
    try:
        record_sweep(metrics, SweepReport(polled=40, provider_latency_ms=850.0))
        assert metrics.metric_set["ProviderLatency"]["Value"] == [850.0]
        assert metrics.metric_set["ProviderLatency"]["Unit"] == "Milliseconds"
    finally:
        metrics.clear_metrics()
    assert "ProviderLatency" not in sent(SweepReport(lost_claims=1))  # no status call: no value


def copy_metrics(result: CopyResult) -> dict[str, list[float]]:
    metrics = Metrics(namespace="GrokVideo", service="test-telemetry")
    try:
        record_copy(metrics, result)
        return {name: metric["Value"] for name, metric in metrics.metric_set.items()}
    finally:
        metrics.clear_metrics()


def test_the_delivery_that_stores_a_video_sends_its_done_to_stored_seconds() -> None:
    stored = CopyResult("r1", JobState.STORED, uploaded=True, completed_at=1_000, stored_at=1_042)
    assert copy_metrics(stored) == {"VideosStored": [1.0], "StoredLatency": [42.0]}
    # An upload an earlier (crashed) delivery made: stored now, so counted now, once.
    crash_retry = CopyResult("r1", JobState.STORED, completed_at=1_000, stored_at=1_300)
    assert copy_metrics(crash_retry) == {"CopiesSkipped": [1.0], "StoredLatency": [300.0]}
    # The provider's clock ahead of ours is not a negative latency.
    ahead = CopyResult("r1", JobState.STORED, uploaded=True, completed_at=1_005, stored_at=1_000)
    assert copy_metrics(ahead)["StoredLatency"] == [0.0]


def test_a_copy_that_stored_nothing_sends_only_its_outcome() -> None:
    assert copy_metrics(CopyResult("r1", JobState.STORED)) == {"CopiesSkipped": [1.0]}  # a duplicate delivery
    assert copy_metrics(CopyResult("r1", JobState.ARCHIVE_FAILED)) == {"ArchiveFailures": [1.0]}
