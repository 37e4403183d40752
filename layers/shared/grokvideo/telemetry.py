"""Turn a sweep's report into CloudWatch metrics (EMF, via Powertools Metrics)."""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from grokvideo.sweep import SweepReport


def record_sweep(metrics: Metrics, report: SweepReport) -> None:
    """Jobs polled/succeeded/failed (and by reason), poll errors by class, sweep duration, alarms."""
    count = MetricUnit.Count
    metrics.add_metric(name="JobsPolled", unit=count, value=report.polled)
    metrics.add_metric(name="JobsSucceeded", unit=count, value=report.succeeded)
    metrics.add_metric(name="JobsFailed", unit=count, value=sum(report.failed.values()))
    metrics.add_metric(name="EventsPublished", unit=count, value=report.events_published)
    metrics.add_metric(name="EventPublishErrors", unit=count, value=report.publish_errors)
    metrics.add_metric(name="DueItemsRead", unit=count, value=report.items_read)
    # The ProviderAuthFailures alarm watches this one: 401/403 is an outage of ours.
    metrics.add_metric(name="ProviderAuthFailures", unit=count, value=int(report.auth_failed))
    metrics.add_metric(name="SweepDuration", unit=MetricUnit.Seconds, value=report.duration_seconds)
    # Signs that a job may be stuck: the UnexpectedErrors and OwedEventAge alarms watch these.
    metrics.add_metric(name="UnexpectedErrors", unit=count, value=report.unexpected_errors)
    metrics.add_metric(name="LostClaims", unit=count, value=report.lost_claims)
    metrics.add_metric(name="StalledCopies", unit=count, value=report.stalled_copies)
    metrics.add_metric(name="OwedEventAge", unit=MetricUnit.Seconds, value=report.oldest_owed_seconds)
    for dimension, metric, counter in (
        ("reason", "JobsFailedByReason", report.failed),
        ("error", "PollErrors", report.poll_errors),
    ):
        for value, n in counter.items():
            with single_metric(name=metric, unit=count, value=n, default_dimensions=metrics.default_dimensions) as one:
                one.add_dimension(name=dimension, value=value)
