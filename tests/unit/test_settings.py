"""Settings per function: built from exactly what template.yaml gives each function, one default each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grokvideo import config
from grokvideo.config import CopierSettings, PollerSettings, RegisterSettings, SubmitSettings
from grokvideo.errors import ConfigurationError

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
SETTINGS = {
    "PollerFunction": PollerSettings,
    "RegisterFunction": RegisterSettings,
    "CopierFunction": CopierSettings,
    "SubmitFunction": SubmitSettings,
}


def resolve(value: Any, tpl: dict[str, Any]) -> str:
    """An environment value as a default deploy sets it (resources become placeholders)."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        name = value["Ref"]
        params = tpl["Parameters"]
        if name in params:
            return str(params[name].get("Default", ""))
        return f"placeholder-{name}"
    if "Fn::If" in value:
        _, yes, no = value["Fn::If"]
        condition = value["Fn::If"][0]
        # Default parameters: every "create it" condition holds (no secret, no bucket given).
        return resolve(yes if condition.startswith("Create") else no, tpl)
    if "Fn::GetAtt" in value or "Fn::Sub" in value or "Fn::FindInMap" in value:
        return "placeholder"
    raise AssertionError(f"cannot resolve {value!r}")


def deployed_env(tpl: dict[str, Any], function: str) -> dict[str, str]:
    env = dict(tpl["Globals"]["Function"]["Environment"]["Variables"])
    env.update(tpl["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {}))
    return {name: resolve(value, tpl) for name, value in env.items()}


@pytest.mark.parametrize("function", list(SETTINGS))
def test_every_function_starts_with_what_the_template_gives_it(tpl: dict[str, Any], function: str) -> None:
    SETTINGS[function].from_env(deployed_env(tpl, function))


def test_the_stack_parameters_default_to_the_codes_defaults(tpl: dict[str, Any]) -> None:
    poller = PollerSettings.from_env(deployed_env(tpl, "PollerFunction"))
    assert poller.poll_interval_seconds == config.POLL_INTERVAL_SECONDS
    assert poller.poll_concurrency == config.POLL_CONCURRENCY
    assert poller.table.max_job_age_seconds == config.MAX_JOB_AGE_SECONDS
    assert poller.sweep_seconds == config.SWEEP_SECONDS
    assert poller.provider.api_base_url == config.DEFAULT_API_BASE_URL
    assert poller.provider.allow_http_provider is False
    assert poller.bus.event_source == config.DEFAULT_EVENT_SOURCE
    assert poller.poll_rate_per_second == config.POLL_RATE_PER_SECOND
    assert poller.max_sweepers == config.MAX_SWEEPERS
    assert poller.table.due_shards == config.DUE_SHARDS
    params = tpl["Parameters"]
    assert int(params["DueShards"]["MaxValue"]) == config.MAX_DUE_SHARDS
    assert int(params["MaxParallelSweeps"]["MaxValue"]) == config.MAX_DUE_SHARDS
    copier = CopierSettings.from_env(deployed_env(tpl, "CopierFunction"))
    assert copier.video_prefix == config.VIDEO_PREFIX
    assert copier.allowed_video_hosts == config.ALLOWED_VIDEO_HOSTS
    assert copier.max_video_bytes == config.MAX_VIDEO_BYTES
    assert copier.allow_private_video_hosts is False
    assert copier.copy_max_receives == int(tpl["Mappings"]["Copy"]["Queue"]["MaxReceiveCount"])
    submit = SubmitSettings.from_env(deployed_env(tpl, "SubmitFunction"))
    assert submit.submit_rate_per_second == config.SUBMIT_RATE_PER_SECOND
    assert submit.input_bucket_names == ()
    assert submit.table.max_job_age_seconds == config.MAX_JOB_AGE_SECONDS
    assert submit.provider.allow_http_provider is False


def test_the_sweep_fits_in_the_pollers_timeout(tpl: dict[str, Any]) -> None:
    timeout = int(tpl["Resources"]["PollerFunction"]["Properties"]["Timeout"])
    assert config.SWEEP_SECONDS + 15 <= timeout  # the sweep stops starting polls 15 s before the end


def test_a_submission_lease_outlives_a_submit_invocation(tpl: dict[str, Any]) -> None:
    timeout = int(tpl["Resources"]["SubmitFunction"]["Properties"]["Timeout"])
    assert config.SUBMIT_LEASE_SECONDS > timeout


REQUIRED = [
    (PollerSettings, "TABLE_NAME"),
    (PollerSettings, "EVENT_BUS_NAME"),
    (PollerSettings, "COMETAPI_KEY_SECRET_ARN"),
    (RegisterSettings, "TABLE_NAME"),
    (RegisterSettings, "EVENT_BUS_NAME"),
    (CopierSettings, "VIDEO_BUCKET"),
    (CopierSettings, "TABLE_NAME"),
    (SubmitSettings, "SUBMIT_QUEUE_URL"),
    (SubmitSettings, "COMETAPI_KEY_SECRET_ARN"),
]


@pytest.mark.parametrize(("settings", "name"), REQUIRED, ids=[f"{s.__name__}-{n}" for s, n in REQUIRED])
def test_what_a_function_cannot_run_without_has_no_default(settings: Any, name: str, tpl: dict[str, Any]) -> None:
    function = next(fn for fn, cls in SETTINGS.items() if cls is settings)
    env = deployed_env(tpl, function)
    env[name] = ""
    with pytest.raises(ConfigurationError, match=name):
        settings.from_env(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("POLL_CONCURRENCY", "0"),
        ("POLL_CONCURRENCY", "many"),
        ("SWEEP_SECONDS", "-1"),
        ("DUE_SHARDS", "0"),
        ("DUE_SHARDS", "17"),
        ("MAX_SWEEPERS", "0"),
        ("POLL_RATE_PER_SECOND", "-1"),
    ],
)
def test_a_malformed_value_is_named(name: str, value: str, tpl: dict[str, Any]) -> None:
    env = deployed_env(tpl, "PollerFunction")
    env[name] = value
    with pytest.raises(ConfigurationError, match=name):
        PollerSettings.from_env(env)


@pytest.mark.parametrize("value", ["0", "nan", "-1", "fast"])
def test_a_submit_rate_must_be_a_positive_number(value: str, tpl: dict[str, Any]) -> None:
    env = deployed_env(tpl, "SubmitFunction")
    env["SUBMIT_RATE_PER_SECOND"] = value
    with pytest.raises(ConfigurationError, match="SUBMIT_RATE_PER_SECOND"):
        SubmitSettings.from_env(env)


# --------------------------------------------------------------------------- the provider's scheme

PROVIDER_READERS = {"PollerFunction": PollerSettings, "SubmitFunction": SubmitSettings}


@pytest.mark.parametrize("function", list(PROVIDER_READERS))
@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080", "HTTP://api.cometapi.com", "ftp://api.cometapi.com", "api.cometapi.com", "//x.example"],
)
def test_a_provider_url_that_is_not_https_fails_the_cold_start(tpl: dict[str, Any], function: str, url: str) -> None:
    """The API key travels with every call: without ALLOW_HTTP_PROVIDER only https is accepted."""
    env = deployed_env(tpl, function)
    env["COMETAPI_BASE_URL"] = url
    for allow in (None, "false", ""):
        if allow is not None:
            env["ALLOW_HTTP_PROVIDER"] = allow
        with pytest.raises(ConfigurationError, match=r"COMETAPI_BASE_URL.*ALLOW_HTTP_PROVIDER") as err:
            PROVIDER_READERS[function].from_env(env)
        assert "8080" not in str(err.value) and "cometapi.com" not in str(err.value)  # the scheme only


@pytest.mark.parametrize("function", list(PROVIDER_READERS))
def test_http_only_with_allow_http_provider(tpl: dict[str, Any], function: str) -> None:
    env = deployed_env(tpl, function)
    env.update(COMETAPI_BASE_URL="http://127.0.0.1:8080/", ALLOW_HTTP_PROVIDER="true")
    settings = PROVIDER_READERS[function].from_env(env)
    assert settings.provider.api_base_url == "http://127.0.0.1:8080"
    assert settings.provider.allow_http_provider is True
    # ... and never anything else than http(s), allowed or not.
    env["COMETAPI_BASE_URL"] = "ftp://127.0.0.1"
    with pytest.raises(ConfigurationError, match="ALLOW_HTTP_PROVIDER"):
        PROVIDER_READERS[function].from_env(env)
    env.update(COMETAPI_BASE_URL="https://api.cometapi.com", ALLOW_HTTP_PROVIDER="maybe")
    with pytest.raises(ConfigurationError, match="ALLOW_HTTP_PROVIDER"):
        PROVIDER_READERS[function].from_env(env)


def test_https_needs_nothing_and_the_check_holds_however_settings_are_built() -> None:
    assert config.ProviderSettings("arn:k").api_base_url.startswith("https://")
    assert config.ProviderSettings("arn:k", "HTTPS://api.example").allow_http_provider is False
    with pytest.raises(ConfigurationError, match="ALLOW_HTTP_PROVIDER"):
        config.ProviderSettings("arn:k", "http://127.0.0.1:8080")  # not only through from_env
    assert config.ProviderSettings("arn:k", "http://127.0.0.1:8080", allow_http_provider=True)


def test_the_copier_and_register_do_not_read_the_provider_switch() -> None:
    assert "ALLOW_HTTP_PROVIDER" in PollerSettings.ENV and "ALLOW_HTTP_PROVIDER" in SubmitSettings.ENV
    assert "ALLOW_HTTP_PROVIDER" not in CopierSettings.ENV and "ALLOW_HTTP_PROVIDER" not in RegisterSettings.ENV
