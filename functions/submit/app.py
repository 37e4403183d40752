"""Submit: generation and edit requests from the SQS submit queue become provider jobs.

Partial batch failures (Powertools BatchProcessor): a request to try again fails alone, after
its message's visibility is set to when it should come back (a 429's Retry-After, never the
queue's long timeout). Its idempotency key makes every redelivery safe.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from grokvideo import runtime
from grokvideo.submitter import RetryLater
from grokvideo.tracing import handler_tracer

logger = Logger()
tracer = handler_tracer()  # Powertools' Tracer only when the stack traces (EnableTracing)
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
OUTCOME_METRICS = {
    "submitted": "JobsSubmitted",
    "announced": "DuplicateRequests",
    "rejected": "RequestsRejected",
    "failed": "SubmissionsFailed",
}


@tracer.capture_method(capture_response=False)
def submit_record(record: SQSRecord, lambda_context: LambdaContext | None = None) -> dict[str, Any]:
    try:
        event = json.loads(record.body)
    except ValueError:
        event = None  # rejected below as a request without a detail
    event = event if isinstance(event, dict) else {}
    time_left = (lambda: lambda_context.get_remaining_time_in_millis() / 1000) if lambda_context else (lambda: 60.0)
    try:
        receives = int(record.attributes.approximate_receive_count or 1)
        result = runtime.submitter().handle(event, time_left=time_left, receive_count=receives)
    except RetryLater as later:
        runtime.submit_requeue().later(record.receipt_handle, seconds=later.seconds)
        metrics.add_metric(name="SubmitRetries", unit=MetricUnit.Count, value=1)
        if later.cause == "AuthError":  # the ProviderAuthFailures alarm: the key was refused
            metrics.add_metric(name="ProviderAuthFailures", unit=MetricUnit.Count, value=1)
        logger.info("request put back", extra={"retry_in": later.seconds, "why": str(later)})
        raise
    metrics.add_metric(name=OUTCOME_METRICS[result.outcome], unit=MetricUnit.Count, value=1)
    logger.info(
        f"request {result.outcome}",
        extra={"request_id": result.request_id, "submission_id": result.submission_id, "errors": result.errors},
    )
    return {"outcome": result.outcome, "request_id": result.request_id}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=submit_record, processor=processor, context=context)
