"""Settings, typed per function, read once per cold start from the function's environment.

Each function reads only what it uses. What a function cannot run without (its table, its bus,
the key's secret, its bucket or queue) has no default: a missing one fails the cold start with a
``ConfigurationError`` that names the variable. Every other value has one default, defined here
once; template.yaml sets a variable only where a stack parameter chooses it (a test checks that
the parameters' defaults are these).

The API key is never in the settings: only the ARN of the secret that holds it, and
``api_key_from_secret``, the one reading of that secret's value (the functions and
``grokvideo doctor`` both use it).

>>> s = PollerSettings.from_env({"TABLE_NAME": "jobs", "EVENT_BUS_NAME": "bus", "COMETAPI_KEY_SECRET_ARN": "arn:k"})
>>> s.poll_concurrency, s.sweep_seconds, s.table.due_shards
(16, 60, 4)
>>> PollerSettings.from_env({"TABLE_NAME": "jobs"})
Traceback (most recent call last):
...
grokvideo.errors.ConfigurationError: EVENT_BUS_NAME is not set (see template.yaml, Environment)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from grokvideo.errors import ConfigurationError

DEFAULT_API_BASE_URL = "https://api.cometapi.com"
DEFAULT_EVENT_SOURCE = "grokvideo"
# Defaults, once. The stack parameters that choose some of them default to the same values.
FIRST_POLL_DELAY_SECONDS = 5
POLL_INTERVAL_SECONDS = 60  # cap of the per-job backoff (PollIntervalSeconds)
MAX_JOB_AGE_SECONDS = 3600  # deadline (MaxJobAgeSeconds)
POLL_CONCURRENCY = 16  # provider calls in flight per poller (PollConcurrency)
DUE_SHARDS = 4  # partitions of the sparse due index (DueShards)
MAX_DUE_SHARDS = 16  # the most DueShards may be: a scheduled sweep looks this far for stranded jobs
POLL_RATE_PER_SECOND = 50.0  # status calls per second across every poller (PollRatePerSecond; 0: unpaced)
MAX_SWEEPERS = 4  # invocations one scheduled sweep may spread over (MaxParallelSweeps)
# What one poller invocation sustains, polls per second: 16 calls in flight at ~1 s per poll
# (provider latency plus the table writes). A backlog beyond this times SWEEP_SECONDS fans out.
SWEEP_POLLS_PER_SECOND = 16.0
LEASE_SECONDS = 120  # how long a poller's claim keeps others off a job
SWEEP_SECONDS = 60  # how long one invocation keeps sweeping while jobs are due (timeout 90 s)
FINISHED_TTL_DAYS = 30
VIDEO_PREFIX = "videos/"
ALLOWED_VIDEO_HOSTS = ("vidgen.x.ai",)
MAX_VIDEO_BYTES = 2 * 1024**3
COPY_MAX_RECEIVES = 3  # the copy queue's maxReceiveCount: the last try settles the job
SUBMIT_RATE_PER_SECOND = 1.0  # creates per second across every submit invocation
SUBMIT_LEASE_SECONDS = 180  # > the submit function's timeout: a live lease means a live delivery


# --- readers ----------------------------------------------------------------------------------


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name} is not set (see template.yaml, Environment)")
    return value


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigurationError(f"{name} must be <= {maximum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if not value >= minimum:  # also refuses NaN
        raise ConfigurationError(f"{name} must be >= {minimum}, got {raw}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}")


def _names(raw: str) -> tuple[str, ...]:
    """A comma-separated list of host or bucket names, lower-cased, blanks dropped."""
    return tuple(h.strip().lower().rstrip(".") for h in raw.split(",") if h.strip())


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


# --- shared parts -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TableSettings:
    """The jobs table, as every function writes it."""

    table_name: str
    due_shards: int = DUE_SHARDS
    first_poll_delay_seconds: int = FIRST_POLL_DELAY_SECONDS
    max_job_age_seconds: int = MAX_JOB_AGE_SECONDS
    finished_ttl_days: int = FINISHED_TTL_DAYS

    ENV = ("TABLE_NAME", "DUE_SHARDS", "FIRST_POLL_DELAY_SECONDS", "MAX_JOB_AGE_SECONDS", "FINISHED_TTL_DAYS")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TableSettings:
        e = _env(env)
        return cls(
            table_name=_required(e, "TABLE_NAME"),
            due_shards=_int(e, "DUE_SHARDS", DUE_SHARDS, minimum=1, maximum=MAX_DUE_SHARDS),
            first_poll_delay_seconds=_int(e, "FIRST_POLL_DELAY_SECONDS", FIRST_POLL_DELAY_SECONDS),
            max_job_age_seconds=_int(e, "MAX_JOB_AGE_SECONDS", MAX_JOB_AGE_SECONDS, minimum=1),
            finished_ttl_days=_int(e, "FINISHED_TTL_DAYS", FINISHED_TTL_DAYS, minimum=1),
        )


@dataclass(frozen=True, slots=True)
class BusSettings:
    """Where output events go, and the ``source`` they carry."""

    event_bus_name: str
    event_source: str = DEFAULT_EVENT_SOURCE

    ENV = ("EVENT_BUS_NAME", "EVENT_SOURCE")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BusSettings:
        e = _env(env)
        return cls(_required(e, "EVENT_BUS_NAME"), e.get("EVENT_SOURCE", "") or DEFAULT_EVENT_SOURCE)


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """CometAPI: where it is and which secret holds the key.

    Every call carries the key (``Authorization: Bearer``), so the base URL must be https. Plain
    http is accepted only with ``ALLOW_HTTP_PROVIDER=true`` (the template sets it from
    AllowPrivateVideoHosts: the local emulator's fake CometAPI listens on http://127.0.0.1);
    anything else fails the cold start, checked on construction so no path can skip it.

    >>> ProviderSettings.from_env({"COMETAPI_KEY_SECRET_ARN": "arn:k", "COMETAPI_BASE_URL": "http://10.0.0.5"})
    Traceback (most recent call last):
    ...
    grokvideo.errors.ConfigurationError: COMETAPI_BASE_URL must be https ... ALLOW_HTTP_PROVIDER=true, got scheme 'http'
    """

    api_key_secret_arn: str
    api_base_url: str = DEFAULT_API_BASE_URL
    allow_http_provider: bool = False

    ENV = ("COMETAPI_KEY_SECRET_ARN", "COMETAPI_BASE_URL", "ALLOW_HTTP_PROVIDER")

    def __post_init__(self) -> None:
        scheme = self.api_base_url.split("://", 1)[0].lower() if "://" in self.api_base_url else ""
        if scheme == "https" or (scheme == "http" and self.allow_http_provider):
            return
        # The scheme only: the URL itself is not echoed (it might carry credentials).
        raise ConfigurationError(
            "COMETAPI_BASE_URL must be https (it carries the API key); http only with "
            f"ALLOW_HTTP_PROVIDER=true, got scheme {scheme!r}"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProviderSettings:
        e = _env(env)
        base = (e.get("COMETAPI_BASE_URL", "") or DEFAULT_API_BASE_URL).strip().rstrip("/")
        return cls(
            _required(e, "COMETAPI_KEY_SECRET_ARN"),
            base,
            allow_http_provider=_bool(e, "ALLOW_HTTP_PROVIDER", False),
        )


def api_key_from_secret(value: str | bytes) -> str:
    """The CometAPI key in the secret's value: the bare key, or JSON ``{"api_key": ...}``.

    Raises ``ConfigurationError`` (whose message never holds the value) when there is no key.

    >>> api_key_from_secret('{"api_key": " sk-123 "}'), api_key_from_secret(b"sk-456\\n")
    ('sk-123', 'sk-456')
    >>> api_key_from_secret('{"key": "sk-123"}')
    Traceback (most recent call last):
    ...
    grokvideo.errors.ConfigurationError: the API key secret is JSON but has no 'api_key' field
    """
    text = (value.decode() if isinstance(value, bytes) else str(value)).strip()
    if text.startswith("{"):
        try:
            text = str(json.loads(text)["api_key"]).strip()
        except (ValueError, KeyError, TypeError):
            raise ConfigurationError("the API key secret is JSON but has no 'api_key' field") from None
    if not text:
        raise ConfigurationError("the API key secret is empty: store the CometAPI key in it")
    return text


# --- per function -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PollerSettings:
    table: TableSettings
    bus: BusSettings
    provider: ProviderSettings
    poll_interval_seconds: int = POLL_INTERVAL_SECONDS
    poll_concurrency: int = POLL_CONCURRENCY
    lease_seconds: int = LEASE_SECONDS
    sweep_seconds: int = SWEEP_SECONDS
    poll_rate_per_second: float = POLL_RATE_PER_SECOND
    max_sweepers: int = MAX_SWEEPERS

    ENV = (
        *TableSettings.ENV,
        *BusSettings.ENV,
        *ProviderSettings.ENV,
        "POLL_INTERVAL_SECONDS",
        "POLL_CONCURRENCY",
        "LEASE_SECONDS",
        "SWEEP_SECONDS",
        "POLL_RATE_PER_SECOND",
        "MAX_SWEEPERS",
    )

    @property
    def sweep_capacity(self) -> int:
        """Polls one invocation makes in a sweep: a larger backlog is spread (``grokvideo.fanout``)."""
        return max(1, int(SWEEP_POLLS_PER_SECOND * self.poll_concurrency / POLL_CONCURRENCY * self.sweep_seconds))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PollerSettings:
        e = _env(env)
        return cls(
            TableSettings.from_env(e),
            BusSettings.from_env(e),
            ProviderSettings.from_env(e),
            poll_interval_seconds=_int(e, "POLL_INTERVAL_SECONDS", POLL_INTERVAL_SECONDS, minimum=1),
            poll_concurrency=_int(e, "POLL_CONCURRENCY", POLL_CONCURRENCY, minimum=1),
            lease_seconds=_int(e, "LEASE_SECONDS", LEASE_SECONDS, minimum=1),
            sweep_seconds=_int(e, "SWEEP_SECONDS", SWEEP_SECONDS),
            poll_rate_per_second=_float(e, "POLL_RATE_PER_SECOND", POLL_RATE_PER_SECOND, minimum=0),
            max_sweepers=_int(e, "MAX_SWEEPERS", MAX_SWEEPERS, minimum=1, maximum=MAX_DUE_SHARDS),
        )


@dataclass(frozen=True, slots=True)
class RegisterSettings:
    table: TableSettings
    bus: BusSettings

    ENV = (*TableSettings.ENV, *BusSettings.ENV)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RegisterSettings:
        e = _env(env)
        return cls(TableSettings.from_env(e), BusSettings.from_env(e))


@dataclass(frozen=True, slots=True)
class CopierSettings:
    table: TableSettings
    bus: BusSettings
    video_bucket: str
    copy_queue_url: str  # a failed copy is put back on it after its backoff
    video_prefix: str = VIDEO_PREFIX
    allowed_video_hosts: tuple[str, ...] = ALLOWED_VIDEO_HOSTS
    allow_private_video_hosts: bool = False
    max_video_bytes: int = MAX_VIDEO_BYTES
    copy_max_receives: int = COPY_MAX_RECEIVES

    ENV = (
        *TableSettings.ENV,
        *BusSettings.ENV,
        "VIDEO_BUCKET",
        "COPY_QUEUE_URL",
        "VIDEO_PREFIX",
        "ALLOWED_VIDEO_HOSTS",
        "ALLOW_PRIVATE_VIDEO_HOSTS",
        "MAX_VIDEO_BYTES",
        "COPY_MAX_RECEIVES",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CopierSettings:
        e = _env(env)
        prefix = e.get("VIDEO_PREFIX", VIDEO_PREFIX)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        hosts = e.get("ALLOWED_VIDEO_HOSTS", "")
        return cls(
            TableSettings.from_env(e),
            BusSettings.from_env(e),
            video_bucket=_required(e, "VIDEO_BUCKET"),
            copy_queue_url=_required(e, "COPY_QUEUE_URL"),
            video_prefix=prefix,
            allowed_video_hosts=_names(hosts) if hosts else ALLOWED_VIDEO_HOSTS,
            allow_private_video_hosts=_bool(e, "ALLOW_PRIVATE_VIDEO_HOSTS", False),
            max_video_bytes=_int(e, "MAX_VIDEO_BYTES", MAX_VIDEO_BYTES, minimum=1),
            copy_max_receives=_int(e, "COPY_MAX_RECEIVES", COPY_MAX_RECEIVES, minimum=1),
        )


@dataclass(frozen=True, slots=True)
class SubmitSettings:
    table: TableSettings
    bus: BusSettings
    provider: ProviderSettings
    submit_queue_url: str
    submit_rate_per_second: float = SUBMIT_RATE_PER_SECOND
    input_bucket_names: tuple[str, ...] = ()
    submit_lease_seconds: int = SUBMIT_LEASE_SECONDS

    ENV = (
        *TableSettings.ENV,
        *BusSettings.ENV,
        *ProviderSettings.ENV,
        "SUBMIT_QUEUE_URL",
        "SUBMIT_RATE_PER_SECOND",
        "INPUT_BUCKET_NAMES",
        "SUBMIT_LEASE_SECONDS",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SubmitSettings:
        e = _env(env)
        return cls(
            TableSettings.from_env(e),
            BusSettings.from_env(e),
            ProviderSettings.from_env(e),
            submit_queue_url=_required(e, "SUBMIT_QUEUE_URL"),
            submit_rate_per_second=_float(e, "SUBMIT_RATE_PER_SECOND", SUBMIT_RATE_PER_SECOND, minimum=0.01),
            input_bucket_names=_names(e.get("INPUT_BUCKET_NAMES", "")),
            submit_lease_seconds=_int(e, "SUBMIT_LEASE_SECONDS", SUBMIT_LEASE_SECONDS, minimum=1),
        )
