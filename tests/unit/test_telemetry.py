"""A sweep's metrics: counts are sent only when they are not zero (each metric bills per hour
sent); the provider's latency once per sweep."""

from __future__ import annotations

from collections import Counter

from aws_lambda_powertools import Metrics

from grokvideo.sweep import SweepReport
from grokvideo.telemetry import record_sweep


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
