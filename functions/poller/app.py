"""Poller: one sweep of due jobs per scheduled tick (EventBridge Scheduler, rate 1 minute)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from grokvideo import runtime
from grokvideo.telemetry import record_sweep

logger = Logger()
# The invocation is traced (its segment times the sweep), but its AWS calls are not patched into
# subsegments: a sweep makes thousands of them, and each cost the poller ~0.3 ms of CPU, a third
# of a vCPU at 512 MB (a traced pending poll 3.2 ms against 2.4, a finishing one ~8 against ~7:
# benchmarks/poll_sweep.py --traced), and piled thousands of subsegments into one trace. The
# scheduled invocation is sampled nearly every time: it is the first request of its second.
tracer = Tracer(auto_patch=False)
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
