"""The register Lambda handler: track requests become pending jobs, bad ones are rejected."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from grokvideo.jobs import JobStore
from grokvideo.models import JobState
from tests.handlers import FakeContext, load_handler
from tests.integration.conftest import BUS, TABLE, EventCapture
from tests.schema_check import assert_valid_event

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture
def register(monkeypatch: pytest.MonkeyPatch, store: JobStore, capture: EventCapture) -> Any:
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    monkeypatch.setenv("EVENT_SOURCE", "grokvideo")
    return load_handler("register")


def sample(name: str, **detail: Any) -> dict[str, Any]:
    event = json.loads((EVENTS / name).read_text())
    event = copy.deepcopy(event)
    event["detail"].update(detail)
    return event


def test_track_request_registers_a_pending_job_due_soon(register: Any, store: JobStore) -> None:
    event = sample("track-requested.json")
    result = register.lambda_handler(event, FakeContext())
    rid = event["detail"]["request_id"]
    assert result == {"request_id": rid, "created": True, "errors": []}
    job = store.get(rid)
    assert job is not None and job.state is JobState.PENDING
    assert job.client_ref == event["detail"].get("client_ref")
    assert job.metadata == event["detail"].get("metadata", {})
    assert job.next_poll_at is not None and job.next_poll_at - job.registered_at <= 5


def test_the_same_request_twice_registers_once_without_resetting_the_job(
    register: Any, store: JobStore, capture: EventCapture
) -> None:
    event = sample("track-requested.json")
    register.lambda_handler(event, FakeContext())
    first = store.get(event["detail"]["request_id"])
    again = register.lambda_handler(sample("track-requested.json", client_ref="other"), FakeContext())
    assert again["created"] is False
    assert store.get(event["detail"]["request_id"]) == first
    assert capture.drain() == []


@pytest.mark.parametrize(
    "bad_id",
    ["", "../etc/passwd", "a/b", "x" * 129, "id with space", "%2e%2e", None, 42, "é"],
)
def test_invalid_request_id_is_rejected_and_never_reaches_the_table(
    bad_id: Any, register: Any, store: JobStore, capture: EventCapture, table: Any
) -> None:
    event = sample("track-requested.json", request_id=bad_id, client_ref="my-ref", metadata={"a": 1})
    result = register.lambda_handler(event, FakeContext())
    assert result["created"] is False and result["errors"]
    assert table.scan()["Count"] == 0
    [rejection] = capture.drain()
    assert rejection["detail-type"] == "Video Request Rejected"
    detail = rejection["detail"]
    assert_valid_event("Video Request Rejected", detail)
    assert detail["reason"] == "INVALID_REQUEST"
    assert any(e.startswith("request_id") for e in detail["errors"])
    assert (detail["client_ref"], detail["metadata"]) == ("my-ref", {"a": 1})
    assert detail.get("request_id") is None


def test_a_rejection_echoes_a_well_formed_request_id_when_another_field_is_bad(
    register: Any, store: JobStore, capture: EventCapture, table: Any
) -> None:
    event = sample("track-requested.json", request_id="4b2cd27e-ok", client_ref="bad\u0007ref", metadata={"a": 1})
    result = register.lambda_handler(event, FakeContext())
    assert result["errors"] and table.scan()["Count"] == 0
    [rejection] = capture.drain()
    assert_valid_event("Video Request Rejected", rejection["detail"])
    assert rejection["detail"]["request_id"] == "4b2cd27e-ok"
    assert rejection["detail"]["client_ref"] is None and rejection["detail"]["metadata"] == {"a": 1}


def test_a_task_token_is_kept_on_the_job(register: Any, store: JobStore) -> None:
    event = sample("track-requested.json", request_id="with-token-1", task_token="AQCEAAAAKgAAAAMAAAAA" * 20)
    assert register.lambda_handler(event, FakeContext())["created"] is True
    job = store.get("with-token-1")
    assert job is not None and job.task_token == "AQCEAAAAKgAAAAMAAAAA" * 20


def test_the_invalid_sample_event_is_rejected(register: Any, capture: EventCapture) -> None:
    result = register.lambda_handler(json.loads((EVENTS / "track-requested-invalid.json").read_text()), FakeContext())
    assert result["errors"]
    assert [e["detail-type"] for e in capture.drain()] == ["Video Request Rejected"]


def test_a_table_error_fails_the_invocation_so_eventbridge_retries_then_dead_letters(
    monkeypatch: pytest.MonkeyPatch, capture: EventCapture
) -> None:
    from botocore.exceptions import ClientError

    monkeypatch.setenv("TABLE_NAME", "no-such-table")
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    handler = load_handler("register")
    with pytest.raises(ClientError):
        handler.lambda_handler(sample("track-requested.json"), FakeContext())
    assert capture.drain() == []
