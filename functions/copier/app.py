"""Copier: SQS messages carrying ``Video Generation Succeeded`` events become videos in S3.

Partial batch failures (Powertools BatchProcessor): a record that should be retried fails
alone; the queue redelivers it and, after ``maxReceiveCount``, moves it to the DLQ.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from grokvideo import runtime
from grokvideo.models import JobState
from grokvideo.validation import validate_request_id

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# A batch whose every record failed answers with batchItemFailures too, instead of raising.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# Seconds kept back from the Lambda timeout to abort an upload and report cleanly.
CLEANUP_MARGIN = 30


@tracer.capture_method(capture_response=False)
def copy_record(record: SQSRecord, lambda_context: LambdaContext | None = None) -> dict[str, Any]:
    try:
        body = json.loads(record.body)
        request_id = validate_request_id(body.get("detail", {}).get("request_id"))
        logger.set_correlation_id(request_id)
        time_limit = lambda_context.get_remaining_time_in_millis() / 1000 - CLEANUP_MARGIN if lambda_context else None
        result = runtime.copier().copy(
            request_id, receive_count=int(record.attributes.approximate_receive_count or 1), time_limit=time_limit
        )
    except Exception:
        # The record fails alone: the queue redelivers it, then moves it to the DLQ.
        metrics.add_metric(name="CopyRetries", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name=_outcome_metric(result.state, result.uploaded), unit=MetricUnit.Count, value=1)
    logger.info("copy settled", extra={"state": result.state.value, "uploaded": result.uploaded})
    return {"request_id": request_id, "state": result.state.value}


def _outcome_metric(state: JobState, uploaded: bool) -> str:
    if state is JobState.ARCHIVE_FAILED:
        return "ArchiveFailures"
    return "VideosStored" if uploaded else "CopiesSkipped"  # skipped: a duplicate or a crash retry


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=copy_record, processor=processor, context=context)
