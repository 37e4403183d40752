"""Poller: one sweep of due jobs per scheduled tick (EventBridge Scheduler, rate 1 minute)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from grokvideo import runtime
from grokvideo.telemetry import record_sweep
from grokvideo.tracing import handler_tracer

logger = Logger()
tracer = handler_tracer()  # Powertools' Tracer only when the stack traces (EnableTracing)
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = runtime.sweeper().run(time_left=lambda: context.get_remaining_time_in_millis() / 1000)
    record_sweep(metrics, report)
    summary = report.as_dict()
    logger.info("sweep done", extra={"sweep": summary})
    return summary
