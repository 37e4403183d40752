"""Register: a ``Video Job Track Requested`` event on the bus becomes a pending job."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from grokvideo import runtime
from grokvideo.tracing import handler_tracer

logger = Logger()
tracer = handler_tracer()  # Powertools' Tracer only when the stack traces (EnableTracing)
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    detail = event.detail if isinstance(event.detail, dict) else {}
    result = runtime.registrar().register(detail, now=int(time.time()))
    if result.rejected:
        logger.warning("track request rejected", extra={"errors": result.errors, "event_id": event.get_id})
        metrics.add_metric(name="RequestsRejected", unit=MetricUnit.Count, value=1)
    else:
        logger.set_correlation_id(result.request_id)
        logger.info("job registered" if result.created else "job already known", extra={"new_job": result.created})
        metrics.add_metric(name="JobsRegistered", unit=MetricUnit.Count, value=int(result.created))
    return {"request_id": result.request_id, "created": result.created, "errors": result.errors}
