"""Cold-start wiring for the Lambda handlers: settings, clients and the API key, built once.

Handlers call these factories; each builds its object on first use and reuses it while the
execution environment stays warm.

Use (needs AWS or the provider, so not a doctest)::

    store = job_store()
"""

from __future__ import annotations

import json
from functools import cache

import boto3
from aws_lambda_powertools.utilities import parameters
from botocore.config import Config

from grokvideo.archive import VideoArchiver
from grokvideo.backoff import PollSchedule
from grokvideo.cometapi import CometApiClient
from grokvideo.config import Settings
from grokvideo.copier import Copier
from grokvideo.errors import ConfigurationError
from grokvideo.events import EventPublisher
from grokvideo.jobs import JobStore
from grokvideo.presign import SIGNING, S3Presigner
from grokvideo.queues import SqsRequeue
from grokvideo.ratelimit import SharedRateLimiter
from grokvideo.reservations import Reservations
from grokvideo.submitter import Submitter
from grokvideo.sweep import Sweeper
from grokvideo.urlguard import UrlGuard

# The key is re-read from Secrets Manager at most every 5 minutes, so a rotated key is picked up
# without a redeploy.
API_KEY_MAX_AGE = 300
AWS_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 4})
# A create answers slower than a poll, and a create that times out after sending ends
# SUBMIT_UNCERTAIN: give it longer than a poll.
CREATE_READ_TIMEOUT = 30.0


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def job_store() -> JobStore:
    s = settings().require("table_name")
    return JobStore(
        s.table_name,
        shards=s.due_shards,
        first_poll_delay=s.first_poll_delay_seconds,
        max_job_age=s.max_job_age_seconds,
        finished_ttl_days=s.finished_ttl_days,
        dynamodb=boto3.resource("dynamodb", config=AWS_CONFIG),
    )


@cache
def publisher() -> EventPublisher:
    s = settings().require("event_bus_name")
    return EventPublisher(s.event_bus_name, s.event_source)


def api_key() -> str:
    """The CometAPI key from Secrets Manager: the bare key, or JSON ``{"api_key": ...}``."""
    arn = settings().require("api_key_secret_arn").api_key_secret_arn
    value = parameters.get_secret(arn, max_age=API_KEY_MAX_AGE)
    if isinstance(value, bytes):
        value = value.decode()
    value = str(value).strip()
    if value.startswith("{"):
        try:
            value = str(json.loads(value)["api_key"]).strip()
        except (ValueError, KeyError, TypeError):
            raise ConfigurationError("the API key secret is JSON but has no 'api_key' field") from None
    if not value:
        raise ConfigurationError("the API key secret is empty: store the CometAPI key in it")
    return value


@cache
def cometapi() -> CometApiClient:
    s = settings()
    return CometApiClient(s.api_base_url, api_key, maxsize=max(s.poll_concurrency, 10))


@cache
def submitter() -> Submitter:
    s = settings().require("table_name", "event_bus_name")
    store = job_store()
    return Submitter(
        store,
        Reservations(store, lease_seconds=s.submit_lease_seconds),
        SharedRateLimiter(store.table, "submit", per_second=s.submit_rate_per_second),
        CometApiClient(s.api_base_url, api_key, read_timeout=CREATE_READ_TIMEOUT, maxsize=4),
        publisher(),
        S3Presigner(boto3.client("s3", config=AWS_CONFIG.merge(SIGNING))),
        input_buckets=s.input_bucket_names,
    )


@cache
def submit_requeue() -> SqsRequeue:
    s = settings().require("submit_queue_url")
    return SqsRequeue(boto3.client("sqs", config=AWS_CONFIG), s.submit_queue_url)


def sweeper() -> Sweeper:
    """A fresh sweeper per invocation (it carries the invocation's report), on shared clients."""
    s = settings()
    return Sweeper(
        job_store(),
        cometapi(),
        publisher(),
        concurrency=s.poll_concurrency,
        schedule=PollSchedule(first_delay=s.first_poll_delay_seconds, cap=s.poll_interval_seconds),
        lease_seconds=s.lease_seconds,
        sweep_seconds=s.sweep_seconds,
    )


@cache
def copier() -> Copier:
    s = settings().require("video_bucket", "table_name", "event_bus_name")
    guard = UrlGuard(s.allowed_video_hosts, allow_private=s.allow_private_video_hosts)
    archiver = VideoArchiver(guard, boto3.client("s3", config=AWS_CONFIG), max_video_bytes=s.max_video_bytes)
    return Copier(
        job_store(),
        archiver,
        publisher(),
        bucket=s.video_bucket,
        prefix=s.video_prefix,
        max_receives=s.copy_max_receives,
    )
