"""Copier: SQS messages carrying ``Video Generation Succeeded`` events become videos in S3.

Partial batch failures (Powertools BatchProcessor): a record that should be retried fails
alone, after its message's visibility is set to when it should come back (10 s, 60 s, 300 s by
receive count, never the copy queue's 30-minute timeout). On the last allowed receive the
copier settles the job and the message is made visible at once, so the queue moves it to the
dead-letter queue at its next receive.
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
from grokvideo.copier import RetryCopy, retry_delay
from grokvideo.telemetry import record_copy
from grokvideo.tracing import handler_tracer
from grokvideo.validation import validate_request_id

logger = Logger()
tracer = handler_tracer()  # Powertools' Tracer only when the stack traces (EnableTracing)
metrics = Metrics()
# A batch whose every record failed answers with batchItemFailures too, instead of raising.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# Seconds kept back from the Lambda timeout to abort an upload and report cleanly.
CLEANUP_MARGIN = 30


@tracer.capture_method(capture_response=False)
def copy_record(record: SQSRecord, lambda_context: LambdaContext | None = None) -> dict[str, Any]:
    receive_count = int(record.attributes.approximate_receive_count or 1)
    try:
        body = json.loads(record.body)
        request_id = validate_request_id(body.get("detail", {}).get("request_id"))
        logger.set_correlation_id(request_id)
        time_limit = lambda_context.get_remaining_time_in_millis() / 1000 - CLEANUP_MARGIN if lambda_context else None
        result = runtime.copier().copy(request_id, receive_count=receive_count, time_limit=time_limit)
    except RetryCopy as retry:
        _put_back(record, retry.retry_after)
        raise
    except Exception:
        # Before the copier could start (an unreadable message, a wiring failure): the same backoff,
        # then, after the last receive, the DLQ.
        _put_back(record, retry_delay(receive_count))
        raise
    record_copy(metrics, result)
    logger.info("copy settled", extra={"state": result.state.value, "uploaded": result.uploaded})
    return {"request_id": request_id, "state": result.state.value}


def _put_back(record: SQSRecord, seconds: int) -> None:
    """The record fails alone; its message comes back in ``seconds`` (0: on to the DLQ if it was the last)."""
    metrics.add_metric(name="CopyRetries", unit=MetricUnit.Count, value=1)
    runtime.copy_requeue().later(record.receipt_handle, seconds=seconds)
    logger.info("message put back", extra={"retry_in": seconds})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=copy_record, processor=processor, context=context)
