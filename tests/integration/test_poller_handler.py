"""The poller Lambda handler end to end in-process: env, secret, table, bus, real HTTP."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from grokvideo.errors import ConfigurationError
from grokvideo.jobs import JobStore
from local.fake_cometapi import FakeCometAPI
from tests.handlers import FakeContext, load_handler
from tests.integration.conftest import API_KEY, BUS, TABLE, EventCapture
from tests.schema_check import assert_valid_event

SEED_ID = "4b2cd27e-0b0d-3dec-c31c-7572daf74bb3"
SEED_URL = "https://vidgen.x.ai/xai-vidgen-bucket/xai-video-72924fdc-e6d7-4885-b318-8a367aaa9a02.mp4"


class SeedHandler(http.server.BaseHTTPRequestHandler):
    """Answers the status call with the provider's documented response, byte for byte."""

    body = b""
    seen_auth: list[str] = []

    def do_GET(self) -> None:
        self.seen_auth.append(self.headers.get("Authorization", ""))
        code, payload = (200, self.body) if self.path == f"/grok/v1/videos/{SEED_ID}" else (404, b"{}")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def seed_server(fixtures_dir: Path) -> Iterator[str]:
    SeedHandler.body = (fixtures_dir / "get-video-success.json").read_bytes()
    SeedHandler.seen_auth = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SeedHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def deploy_env(monkeypatch: pytest.MonkeyPatch, base_url: str, secret_value: str = API_KEY) -> None:
    arn = boto3.client("secretsmanager").create_secret(Name="grokvideo/cometapi-key", SecretString=secret_value)["ARN"]
    for name, value in {
        "TABLE_NAME": TABLE,
        "EVENT_BUS_NAME": BUS,
        "EVENT_SOURCE": "grokvideo",
        "COMETAPI_BASE_URL": base_url,
        "ALLOW_HTTP_PROVIDER": "true",  # the fake listens on http://127.0.0.1
        "COMETAPI_KEY_SECRET_ARN": arn,
        "SWEEP_SECONDS": "0",
        "FIRST_POLL_DELAY_SECONDS": "0",
    }.items():
        monkeypatch.setenv(name, value)


def test_seed_response_yields_one_succeeded_event_with_the_documented_fields(
    monkeypatch: pytest.MonkeyPatch, seed_server: str, store: JobStore, capture: EventCapture, capsys: Any
) -> None:
    deploy_env(monkeypatch, seed_server, secret_value=json.dumps({"api_key": API_KEY}))
    store.register(SEED_ID, now=int(time.time()), client_ref="seed", metadata={"team": "video"})
    poller = load_handler("poller")

    summary = poller.lambda_handler({"source": "aws.scheduler"}, FakeContext())

    assert summary["succeeded"] == 1 and summary["events_published"] == 1
    assert SeedHandler.seen_auth == [f"Bearer {API_KEY}"]
    [event] = capture.drain()
    assert event["detail-type"] == "Video Generation Succeeded"
    detail = event["detail"]
    assert_valid_event(event["detail-type"], detail)
    assert detail["request_id"] == SEED_ID
    assert detail["video_url"] == SEED_URL
    assert (detail["duration"], detail["model"], detail["cost_usd"]) == (1, "grok-imagine-video", 0.05)
    assert (detail["client_ref"], detail["metadata"]) == ("seed", {"team": "video"})
    # The provider's submit_time / finish_time (1773297002 / 1773297014), as ISO 8601 UTC.
    assert (detail["submitted_at"], detail["completed_at"]) == ("2026-03-12T06:30:02Z", "2026-03-12T06:30:14Z")
    # A second sweep finds nothing to do: no second event.
    poller.lambda_handler({}, FakeContext())
    assert capture.drain() == []
    out = capsys.readouterr().out
    assert API_KEY not in out  # the key never reaches a log line
    assert '"JobsSucceeded"' in out  # EMF metrics were emitted
    emitted = {k for line in out.splitlines() if '"_aws"' in line for k in json.loads(line)}
    # What the stuck-job alarms watch is sent only when there is trouble (a zero would bill an hour).
    assert not {"UnexpectedErrors", "LostClaims", "OwedEventAge", "EventPublishErrors"} & emitted


def test_revoked_key_fails_no_job_and_reports_the_auth_failure_metric(
    monkeypatch: pytest.MonkeyPatch, store: JobStore, capture: EventCapture, capsys: Any
) -> None:
    with FakeCometAPI(api_key="the-real-key", ready_after=0) as fake:
        deploy_env(monkeypatch, fake.base_url, secret_value="a-revoked-key")
        rid = fake.add_job(outcome="done", ready_after=0)
        store.register(rid, now=int(time.time()))
        summary = load_handler("poller").lambda_handler({}, FakeContext())
    assert summary["auth_failed"] is True
    assert json.loads(json.dumps(summary))["poll_errors"] == {"AuthError": 1}  # Lambda serialises it
    assert store.get(rid).state.value == "PENDING"  # type: ignore[union-attr]
    assert capture.drain() == []
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(m.get("ProviderAuthFailures") in (1.0, [1.0]) for m in metrics)
    assert "a-revoked-key" not in json.dumps(metrics)


def test_sweep_summary_with_failures_is_json_for_lambda_and_the_log(
    monkeypatch: pytest.MonkeyPatch, store: JobStore, capture: EventCapture, capsys: Any
) -> None:
    with FakeCometAPI(api_key=API_KEY, ready_after=0) as fake:
        deploy_env(monkeypatch, fake.base_url)
        for outcome in ("moderated", "failed"):
            store.register(fake.add_job(outcome=outcome, ready_after=0), now=int(time.time()))
        summary = load_handler("poller").lambda_handler({}, FakeContext())
    assert json.loads(json.dumps(summary))["failed"] == {"MODERATED": 1, "PROVIDER_FAILED": 1}
    err = capsys.readouterr().err
    assert "Logging error" not in err, err[-800:]
    assert len(capture.drain()) == 2


def test_unusable_secret_stops_the_sweep_like_a_refused_key_and_fails_no_job(
    monkeypatch: pytest.MonkeyPatch, store: JobStore, capture: EventCapture
) -> None:
    with FakeCometAPI(api_key=API_KEY, ready_after=0) as fake:
        deploy_env(monkeypatch, fake.base_url, secret_value=json.dumps({"key": "misnamed field"}))
        rid = fake.add_job(outcome="done", ready_after=0)
        store.register(rid, now=int(time.time()))
        summary = load_handler("poller").lambda_handler({}, FakeContext())
        assert fake.requests == []  # nothing was sent without a key
    assert summary["auth_failed"] is True
    assert store.get(rid).state.value == "PENDING"  # type: ignore[union-attr]
    assert capture.drain() == []


def test_a_plain_http_provider_without_the_switch_fails_the_cold_start_before_any_call(
    monkeypatch: pytest.MonkeyPatch, store: JobStore, capture: EventCapture
) -> None:
    """The key travels with every call: an http CometAPI is refused unless ALLOW_HTTP_PROVIDER
    (AllowPrivateVideoHosts) says this is the local emulator; the error names the variable."""
    with FakeCometAPI(api_key=API_KEY, ready_after=0) as fake:
        deploy_env(monkeypatch, fake.base_url)
        monkeypatch.delenv("ALLOW_HTTP_PROVIDER")
        store.register(fake.add_job(outcome="done", ready_after=0), now=int(time.time()))
        poller = load_handler("poller")
        with pytest.raises(ConfigurationError, match="ALLOW_HTTP_PROVIDER"):
            poller.lambda_handler({"source": "aws.scheduler"}, FakeContext())
        assert fake.count() == 0  # nothing was sent, the key least of all
        assert capture.drain() == []


def test_a_dispatched_sweep_polls_only_its_shards(
    monkeypatch: pytest.MonkeyPatch, fake: FakeCometAPI, store: JobStore, capture: EventCapture
) -> None:
    deploy_env(monkeypatch, fake.base_url)
    ids = [fake.add_job(outcome="done", ready_after=0) for _ in range(16)]
    for rid in ids:
        store.register(rid, now=int(time.time()) - 10)
    poller = load_handler("poller")
    summary = poller.lambda_handler({"sweep_shards": [2]}, FakeContext())
    assert summary["shards"] == [2]
    assert summary["succeeded"] == sum(store.shard_of(rid) == 2 for rid in ids) > 0
    with pytest.raises(ValueError, match="sweep_shards"):
        poller.lambda_handler({"sweep_shards": [2, 2]}, FakeContext())
    tick = poller.lambda_handler({"source": "aws.scheduler"}, FakeContext())
    assert tick["shards"] == [0, 1, 2, 3] and summary["succeeded"] + tick["succeeded"] == len(ids)


def test_an_idle_tick_sends_no_metric_and_a_busy_one_does(
    monkeypatch: pytest.MonkeyPatch, fake: FakeCometAPI, store: JobStore, capture: EventCapture, capsys: Any
) -> None:
    """Custom metrics bill by the hour they are sent: a minute with nothing due must send none."""
    deploy_env(monkeypatch, fake.base_url)
    poller = load_handler("poller")
    poller.lambda_handler({}, FakeContext())
    assert '"_aws"' not in capsys.readouterr().out
    store.register(fake.add_job(outcome="done", ready_after=0), now=int(time.time()) - 10)
    poller.lambda_handler({}, FakeContext())
    assert '"JobsSucceeded"' in capsys.readouterr().out
