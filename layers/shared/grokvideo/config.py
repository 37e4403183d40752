"""Settings, read once per cold start from the function's environment.

The API key is never here: only the ARN of the secret that holds it.

>>> s = Settings.from_env({"TABLE_NAME": "jobs", "EVENT_BUS_NAME": "bus"})
>>> s.poll_concurrency
16
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from grokvideo.errors import ConfigurationError

DEFAULT_API_BASE_URL = "https://api.cometapi.com"
DEFAULT_EVENT_SOURCE = "grokvideo"


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be >= {minimum}, got {value}")
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


def _hosts(raw: str) -> tuple[str, ...]:
    """A comma-separated list of host or bucket names, lower-cased, blanks dropped."""
    return tuple(h.strip().lower().rstrip(".") for h in raw.split(",") if h.strip())


@dataclass(frozen=True, slots=True)
class Settings:
    table_name: str = ""
    event_bus_name: str = ""
    event_source: str = DEFAULT_EVENT_SOURCE
    api_base_url: str = DEFAULT_API_BASE_URL
    api_key_secret_arn: str = ""
    # Polling
    first_poll_delay_seconds: int = 5
    poll_interval_seconds: int = 60  # cap of the per-job backoff
    max_job_age_seconds: int = 3600  # deadline: older pending jobs end TIMED_OUT
    poll_concurrency: int = 16
    due_shards: int = 4  # partitions of the sparse due index
    lease_seconds: int = 120  # how long a claim keeps other pollers off a job
    sweep_seconds: int = 50  # how long one invocation keeps sweeping while jobs are due
    finished_ttl_days: int = 30
    # Archive
    video_bucket: str = ""
    video_prefix: str = "videos/"
    allowed_video_hosts: tuple[str, ...] = field(default=("vidgen.x.ai",))
    allow_private_video_hosts: bool = False
    max_video_bytes: int = 2 * 1024**3
    copy_max_receives: int = 3  # the copy queue's maxReceiveCount: the last try settles the job
    # Submit
    submit_rate_per_second: float = 1.0  # creates per second across every submit invocation
    input_bucket_names: tuple[str, ...] = ()  # buckets s3:// inputs may come from
    submit_queue_url: str = ""
    submit_lease_seconds: int = 180  # > the submit function's timeout: a live lease means a live delivery

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables; raise ``ConfigurationError`` naming a bad one."""
        env = os.environ if env is None else env
        prefix = env.get("VIDEO_PREFIX", "videos/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return cls(
            table_name=env.get("TABLE_NAME", ""),
            event_bus_name=env.get("EVENT_BUS_NAME", ""),
            event_source=env.get("EVENT_SOURCE", DEFAULT_EVENT_SOURCE) or DEFAULT_EVENT_SOURCE,
            api_base_url=(env.get("COMETAPI_BASE_URL", "") or DEFAULT_API_BASE_URL).rstrip("/"),
            api_key_secret_arn=env.get("COMETAPI_KEY_SECRET_ARN", ""),
            first_poll_delay_seconds=_int(env, "FIRST_POLL_DELAY_SECONDS", 5),
            poll_interval_seconds=_int(env, "POLL_INTERVAL_SECONDS", 60, minimum=1),
            max_job_age_seconds=_int(env, "MAX_JOB_AGE_SECONDS", 3600, minimum=1),
            poll_concurrency=_int(env, "POLL_CONCURRENCY", 16, minimum=1),
            due_shards=_int(env, "DUE_SHARDS", 4, minimum=1),
            lease_seconds=_int(env, "LEASE_SECONDS", 120, minimum=1),
            sweep_seconds=_int(env, "SWEEP_SECONDS", 50, minimum=0),
            finished_ttl_days=_int(env, "FINISHED_TTL_DAYS", 30, minimum=1),
            video_bucket=env.get("VIDEO_BUCKET", ""),
            video_prefix=prefix,
            allowed_video_hosts=_hosts(env.get("ALLOWED_VIDEO_HOSTS", "vidgen.x.ai")),
            allow_private_video_hosts=_bool(env, "ALLOW_PRIVATE_VIDEO_HOSTS", False),
            max_video_bytes=_int(env, "MAX_VIDEO_BYTES", 2 * 1024**3, minimum=1),
            copy_max_receives=_int(env, "COPY_MAX_RECEIVES", 3, minimum=1),
            submit_rate_per_second=_float(env, "SUBMIT_RATE_PER_SECOND", 1.0, minimum=0.01),
            input_bucket_names=_hosts(env.get("INPUT_BUCKET_NAMES", "")),
            submit_queue_url=env.get("SUBMIT_QUEUE_URL", ""),
            submit_lease_seconds=_int(env, "SUBMIT_LEASE_SECONDS", 180, minimum=1),
        )

    def require(self, *names: str) -> Settings:
        """Fail fast at cold start when a setting a function needs is empty."""
        missing = [n for n in names if not getattr(self, n)]
        if missing:
            raise ConfigurationError(f"missing settings: {', '.join(missing)} (see template.yaml Environment)")
        return self
