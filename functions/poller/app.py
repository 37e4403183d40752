"""Poller: a sweep of due jobs per scheduled tick (EventBridge Scheduler, rate 1 minute).

A tick sweeps every shard, or, when the backlog is more than one invocation polls in a sweep,
keeps some shards and invokes this function for the others (``grokvideo.fanout``); such a
dispatched invocation (``{"sweep_shards": [...]}``) sweeps only its shards.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from grokvideo import runtime
from grokvideo.fanout import dispatched_shards
from grokvideo.telemetry import record_sweep
from grokvideo.tracing import handler_tracer

logger = Logger()
# Powertools' Tracer only when the stack traces (EnableTracing). Then the invocation is traced,
# but its AWS calls are not patched into subsegments: a sweep makes thousands of them, each cost
# ~0.3 ms of CPU (a traced pending poll 3.2 ms against 2.4: benchmarks/poll_sweep.py --traced).
tracer = handler_tracer(auto_patch=False)
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    shards = dispatched_shards(event)
    if shards is None:  # the scheduled tick: plan, and hand other shards to other invocations
        plan = runtime.fan_out(context.invoked_function_arn).start(int(time.time()))
        shards = plan.mine
        if plan.others:
            metrics.add_metric(name="SweepsDispatched", unit="Count", value=len(plan.others))
    report = runtime.sweeper().run(time_left=lambda: context.get_remaining_time_in_millis() / 1000, shards=shards)
    if not report.idle:  # an idle minute sends no metric: custom metrics bill by the hour they are sent
        record_sweep(metrics, report)
    summary = {**report.as_dict(), "shards": list(shards)}
    logger.info("sweep done", extra={"sweep": summary})
    return summary
