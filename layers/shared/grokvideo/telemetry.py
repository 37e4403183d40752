"""Turn a sweep's report, or a copy's result, into CloudWatch metrics (EMF, via Powertools Metrics).

A count is sent only when it is not zero: CloudWatch bills a custom metric for every hour it
receives a value, a zero adds nothing to a Sum, and the alarms treat missing data as not
breaching. So the signs of trouble (errors, lost claims, owed events) cost nothing while there
is none. The dashboard (template.yaml, ``Dashboard``) plots these names: rename one in both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from grokvideo.models import JobState

# Annotations only: the poller and the copier both import this module, and neither should pay
# at its cold start for the other's modules (the sweep's alone is ~10 % of the copier's import).
if TYPE_CHECKING:
    from grokvideo.copier import CopyResult
    from grokvideo.sweep import SweepReport


def record_sweep(metrics: Metrics, report: SweepReport) -> None:
    """Jobs polled/succeeded/failed (and by reason), poll errors by class, sweep duration, alarms."""
    counts = {
        "JobsPolled": report.polled,
        "JobsSucceeded": report.succeeded,
        "JobsFailed": sum(report.failed.values()),
        "EventsPublished": report.events_published,
        "EventPublishErrors": report.publish_errors,
        "DueItemsRead": report.items_read,
        # The ProviderAuthFailures alarm watches this one: 401/403 is an outage of ours.
        "ProviderAuthFailures": int(report.auth_failed),
        # Signs that a job may be stuck: the UnexpectedErrors and OwedEventAge alarms watch these.
        "UnexpectedErrors": report.unexpected_errors,
        "LostClaims": report.lost_claims,
        "StalledCopies": report.stalled_copies,
    }
    for name, value in counts.items():
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.add_metric(name="SweepDuration", unit=MetricUnit.Seconds, value=report.duration_seconds)
    if report.oldest_owed_seconds:
        metrics.add_metric(name="OwedEventAge", unit=MetricUnit.Seconds, value=report.oldest_owed_seconds)
    if report.provider_latency_ms:
        # One value per sweep, its calls' p90 (``sweep.tail_ms``), not one per call: Powertools
        # prints an EMF line per 100 values, so per-call values would add log ingestion with every
        # poll. The cost: a percentile over sweeps is not one over calls; the dashboard plots the
        # mean and the worst of the sweeps' p90s.
        metrics.add_metric(name="ProviderLatency", unit=MetricUnit.Milliseconds, value=report.provider_latency_ms)
    for dimension, metric, counter in (
        ("reason", "JobsFailedByReason", report.failed),
        ("error", "PollErrors", report.poll_errors),
    ):
        for label, n in counter.items():
            with single_metric(
                name=metric, unit=MetricUnit.Count, value=n, default_dimensions=metrics.default_dimensions
            ) as one:
                one.add_dimension(name=dimension, value=label)


def record_copy(metrics: Metrics, result: CopyResult) -> None:
    """The copy's outcome; for the delivery that stored the video, its done -> stored time.

    ``StoredLatency`` is seconds from the job's ``completed_at`` (the provider's "done") to the
    ``STORED`` write: detection by the sweep, the event's way to the copy queue, the download and
    upload. One value per stored video, so its percentiles are the videos' percentiles.
    """
    metrics.add_metric(name=outcome_metric(result), unit=MetricUnit.Count, value=1)
    if result.stored_at is not None and result.completed_at is not None:
        latency = max(result.stored_at - result.completed_at, 0)  # the provider's clock may run ahead
        metrics.add_metric(name="StoredLatency", unit=MetricUnit.Seconds, value=latency)


def outcome_metric(result: CopyResult) -> str:
    """The outcome's count; a delivery that had nothing to upload (a duplicate, a crash retry) is skipped.

    >>> from grokvideo.copier import CopyResult
    >>> [outcome_metric(CopyResult("r1", JobState.STORED, uploaded=up)) for up in (True, False)]
    ['VideosStored', 'CopiesSkipped']
    """
    if result.state is JobState.ARCHIVE_FAILED:
        return "ArchiveFailures"
    return "VideosStored" if result.uploaded else "CopiesSkipped"
