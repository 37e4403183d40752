"""Cold-start wiring for the Lambda handlers: settings, clients and the API key, built once.

Each handler calls its one factory (``sweeper()``, ``registrar()``, ``copier()``, ``submitter()``),
which reads that function's settings and builds its object on first use; clients are shared while
the execution environment stays warm.

Each factory imports what it builds when it first runs, not this module: a handler's import then
costs only its own function's modules (the poller never loads the archive, URL guard, submitter
or the S3 transfer machinery), which keeps the cold start near a bare ``import boto3``
(``benchmarks/cold_start.py``).

Use (needs AWS or the provider, so not a doctest)::

    report = sweeper().run(time_left=lambda: 60)
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from grokvideo.config import (
    BusSettings,
    CopierSettings,
    PollerSettings,
    ProviderSettings,
    RegisterSettings,
    SubmitSettings,
    TableSettings,
    api_key_from_secret,
)

if TYPE_CHECKING:
    from grokvideo.cometapi import CometApiClient
    from grokvideo.copier import Copier
    from grokvideo.events import EventPublisher
    from grokvideo.fanout import FanOut
    from grokvideo.jobs import JobStore
    from grokvideo.queues import SqsRequeue
    from grokvideo.ratelimit import PollBudget
    from grokvideo.registration import Registrar
    from grokvideo.submitter import Submitter
    from grokvideo.sweep import Sweeper
    from grokvideo.tasks import TaskResumer

# The key is re-read from Secrets Manager at most every 5 minutes, so a rotated key is picked up
# without a redeploy.
API_KEY_MAX_AGE = 300
AWS_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 4})
# A create answers slower than a poll, and a create that times out after sending ends
# SUBMIT_UNCERTAIN: give it longer than a poll.
CREATE_READ_TIMEOUT = 30.0


@cache
def job_store(table: TableSettings) -> JobStore:
    from grokvideo.jobs import JobStore

    return JobStore(
        table.table_name,
        shards=table.due_shards,
        first_poll_delay=table.first_poll_delay_seconds,
        max_job_age=table.max_job_age_seconds,
        finished_ttl_days=table.finished_ttl_days,
        client=boto3.client("dynamodb", config=AWS_CONFIG),
    )


@cache
def publisher(bus: BusSettings) -> EventPublisher:
    from grokvideo.events import EventPublisher

    return EventPublisher(bus.event_bus_name, bus.event_source)


@cache
def task_resumer() -> TaskResumer:
    """Step Functions for jobs that carry a ``task_token``: one per execution environment, whose
    stepfunctions client is made when a first token needs it (most jobs have none)."""
    from grokvideo.tasks import StepFunctionsCallbacks, TaskResumer

    return TaskResumer(StepFunctionsCallbacks(config=AWS_CONFIG))


def read_api_key(secret_arn: str) -> str:
    """The CometAPI key from Secrets Manager: the bare key, or JSON ``{"api_key": ...}``."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_arn, max_age=API_KEY_MAX_AGE)
    return api_key_from_secret(value if isinstance(value, bytes) else str(value))


def cometapi(provider: ProviderSettings, **options: Any) -> CometApiClient:
    """A client reading the key through Secrets Manager (cached) on every call; ``options`` go to
    ``CometApiClient`` (``maxsize``, ``read_timeout``)."""
    from grokvideo.cometapi import CometApiClient

    return CometApiClient(provider.api_base_url, lambda: read_api_key(provider.api_key_secret_arn), **options)


# --- one factory per function -----------------------------------------------------------------


@cache
def poller_settings() -> PollerSettings:
    return PollerSettings.from_env()


@cache
def poll_client() -> CometApiClient:
    s = poller_settings()
    return cometapi(s.provider, maxsize=max(s.poll_concurrency, 10))


def sweeper() -> Sweeper:
    """A fresh sweeper per invocation (it carries the invocation's report), on shared clients."""
    from grokvideo.backoff import PollSchedule
    from grokvideo.schedule import ProgressSchedule
    from grokvideo.sweep import Sweeper

    s = poller_settings()
    store = job_store(s.table)
    return Sweeper(
        store,
        poll_client(),
        publisher(s.bus),
        concurrency=s.poll_concurrency,
        schedule=PollSchedule(first_delay=s.table.first_poll_delay_seconds, cap=s.poll_interval_seconds),
        pending_schedule=ProgressSchedule(cap=s.poll_interval_seconds),
        lease_seconds=s.lease_seconds,
        sweep_seconds=s.sweep_seconds,
        budget=poll_budget(store, s.poll_rate_per_second, s.poll_concurrency),
        tasks=task_resumer(),
    )


def poll_budget(store: JobStore, per_second: float, batch: int) -> PollBudget | None:
    """The provider's status-call rate shared by every poller (None when unpaced: rate 0)."""
    from grokvideo.ratelimit import PollBudget, SharedRateLimiter

    if per_second <= 0:
        return None
    return PollBudget(SharedRateLimiter(store.table, "poll", per_second=per_second), batch=batch)


@cache
def fan_out(function_arn: str) -> FanOut:
    """The scheduled tick's planner: spreads a large backlog over ``MaxParallelSweeps`` invocations."""
    from grokvideo.fanout import FanOut

    s = poller_settings()
    return FanOut(
        job_store(s.table),
        boto3.client("lambda", config=AWS_CONFIG),
        function_arn,
        capacity=s.sweep_capacity,
        max_sweepers=s.max_sweepers,
        horizon=s.sweep_seconds,
    )


@cache
def registrar() -> Registrar:
    from grokvideo.registration import Registrar

    s = RegisterSettings.from_env()
    return Registrar(job_store(s.table), publisher(s.bus), task_resumer())


@cache
def submit_settings() -> SubmitSettings:
    return SubmitSettings.from_env()


@cache
def submitter() -> Submitter:
    from grokvideo.presign import SIGNING, S3Presigner
    from grokvideo.ratelimit import SharedRateLimiter
    from grokvideo.reservations import Reservations
    from grokvideo.submitter import Submitter

    s = submit_settings()
    store = job_store(s.table)
    return Submitter(
        store,
        Reservations(store, lease_seconds=s.submit_lease_seconds),
        SharedRateLimiter(store.table, "submit", per_second=s.submit_rate_per_second),
        cometapi(s.provider, read_timeout=CREATE_READ_TIMEOUT, maxsize=4),
        publisher(s.bus),
        S3Presigner(boto3.client("s3", config=AWS_CONFIG.merge(SIGNING))),
        input_buckets=s.input_bucket_names,
        tasks=task_resumer(),
    )


@cache
def submit_requeue() -> SqsRequeue:
    from grokvideo.queues import SqsRequeue

    return SqsRequeue(boto3.client("sqs", config=AWS_CONFIG), submit_settings().submit_queue_url)


@cache
def copier_settings() -> CopierSettings:
    return CopierSettings.from_env()


@cache
def copy_requeue() -> SqsRequeue:
    from grokvideo.queues import SqsRequeue

    return SqsRequeue(boto3.client("sqs", config=AWS_CONFIG), copier_settings().copy_queue_url)


@cache
def copier() -> Copier:
    from grokvideo.archive import VideoArchiver
    from grokvideo.copier import Copier
    from grokvideo.urlguard import UrlGuard

    s = copier_settings()
    guard = UrlGuard(s.allowed_video_hosts, allow_private=s.allow_private_video_hosts)
    archiver = VideoArchiver(guard, boto3.client("s3", config=AWS_CONFIG), max_video_bytes=s.max_video_bytes)
    return Copier(
        job_store(s.table),
        archiver,
        publisher(s.bus),
        bucket=s.video_bucket,
        prefix=s.video_prefix,
        max_receives=s.copy_max_receives,
        tasks=task_resumer(),
    )
