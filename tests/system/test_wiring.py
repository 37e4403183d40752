"""Wiring of the deployed stack: queues, logs, every captured event, and the poller's schedule.

This file runs last (after test_archive.py, test_submit.py and test_tracking.py), so the checks
over the whole session's events and logs see every scenario; the schedule test comes next to
last, and the scan for the API key last of all (it then sees everything the session produced).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
from boto3.dynamodb.conditions import Attr

from local.fake_cometapi import FakeCometAPI
from tests.system.conftest import (
    API_KEY,
    LOCAL,
    STORED,
    SUCCEEDED,
    TRACK,
    EventLog,
    Scenarios,
    Stack,
    event_key,
)

pytestmark = pytest.mark.system

SCHEDULE_BUDGET = 90.0  # seconds; the schedule fires every minute (first ~50-65 s after the deploy)
FUNCTIONS = ("PollerFunctionName", "RegisterFunctionName", "CopierFunctionName", "SubmitFunctionName")


def _json_lines(stack: Stack, function_output: str) -> list[dict[str, Any]]:
    lines = []
    for event in stack.log_messages(function_output):
        message = event["message"].strip()
        if message.startswith("{"):
            try:
                lines.append(json.loads(message))
            except ValueError:
                continue
    return lines


def _tracebacks(stack: Stack, function_output: str) -> list[str]:
    """Log lines of failed log calls or failed invocations (Python tracebacks and their cause)."""
    return [
        e["message"].strip()[:300]
        for e in stack.log_messages(function_output)
        if e["message"].startswith(("Traceback", "--- Logging error")) or "Error: " in e["message"][:120]
    ]


def test_every_captured_output_event_matches_its_schema_and_a_scenario(jobs: Scenarios, events: EventLog) -> None:
    events.drain(wait_seconds=1)
    assert events.events, "no output event captured at all"
    assert events.schema_problems == []
    known = {
        *jobs.tracked.values(),
        *jobs.submitted,
        *jobs.redriven,
        *jobs.redriven_copies,
        *jobs.moderated,
        jobs.refused,
        f"client_ref:{jobs.invalid_ref}",
        *events.expected_keys,
    }
    strays = [(e["detail-type"], event_key(e)) for e in events.events if event_key(e) not in known]
    assert strays == []


def test_dead_letter_queues_stay_empty(jobs: Scenarios, events: EventLog, stack: Stack) -> None:
    sqs = stack.client("sqs")
    for output in (
        "CopyDeadLetterQueueUrl",
        "RegisterDeadLetterQueueUrl",
        "PollerScheduleDeadLetterQueueUrl",
        "SubmitDeadLetterQueueUrl",
    ):
        attrs = sqs.get_queue_attributes(
            QueueUrl=stack.outputs[output],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert int(attrs.get("ApproximateNumberOfMessages", 0)) == 0, (output, attrs)
        assert int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)) == 0, (output, attrs)


def test_register_submit_and_copier_log_no_unexpected_error(jobs: Scenarios, events: EventLog, stack: Stack) -> None:
    errors = [line for line in _json_lines(stack, "RegisterFunctionName") if line.get("level") in ("ERROR", "CRITICAL")]
    assert errors == []
    # The copier's only error is the refused download of the URL-guard scenario.
    copier_errors = [
        line for line in _json_lines(stack, "CopierFunctionName") if line.get("level") in ("ERROR", "CRITICAL")
    ]
    assert all(jobs.refused in json.dumps(line) for line in copier_errors), copier_errors
    submit_errors = [
        line for line in _json_lines(stack, "SubmitFunctionName") if line.get("level") in ("ERROR", "CRITICAL")
    ]
    assert submit_errors == []
    for output in ("RegisterFunctionName", "CopierFunctionName", "SubmitFunctionName"):
        assert _tracebacks(stack, output) == [], output


def test_poller_invocations_log_no_unexpected_error(jobs: Scenarios, events: EventLog, stack: Stack) -> None:
    """Every sweep ends cleanly, failed jobs included (its summary once carried tuple-keyed Counters,
    which broke the 'sweep done' log line and the invocation's JSON response)."""
    expected = {"PROVIDER_FAILED": 1, "EXPIRED": 1, "TIMED_OUT": 1}
    if jobs.moderated:
        expected["MODERATED"] = len(jobs.moderated)
    finished = 2 + len(jobs.submitted) + len(jobs.redriven)  # tracked ok/ok_big, submitted, redriven
    # The emulator writes an invocation's log lines only when it ends, and a poller keeps sweeping
    # up to 60 s: wait (bounded) until every sweep that settled a job has reported.
    deadline = time.monotonic() + 90
    while True:
        sweeps = [
            line["sweep"] for line in _json_lines(stack, "PollerFunctionName") if line.get("message") == "sweep done"
        ]
        failed: Counter[str] = Counter()
        for sweep in sweeps:
            failed.update(sweep["failed"])
        succeeded = sum(sweep["succeeded"] for sweep in sweeps)
        if (failed == expected and succeeded == finished) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert sweeps, "no poller sweep finished"
    for sweep in sweeps:
        assert sweep["unexpected_errors"] == 0 and sweep["publish_errors"] == 0, sweep
        assert not sweep["auth_failed"], sweep
    # Racing pollers (kicks, retries, the schedule) made one transition per job between them.
    assert failed == expected, sweeps
    assert succeeded == finished, sweeps
    errors = [line for line in _json_lines(stack, "PollerFunctionName") if line.get("level") in ("ERROR", "CRITICAL")]
    assert errors == []
    assert _tracebacks(stack, "PollerFunctionName") == []


def _no_job_due(stack: Stack) -> bool:
    found = stack.table.scan(FilterExpression=Attr("due_shard").exists(), ConsistentRead=True)
    return not found["Items"]


def test_the_schedule_runs_the_poller_on_its_own(
    jobs: Scenarios, events: EventLog, stack: Stack, fake: FakeCometAPI
) -> None:
    """A job registered now, with nobody invoking the poller, is stored: the schedule did it.

    The poller does not log its input event, so `"source": "aws.scheduler"` cannot be read from
    its log group; instead every earlier job is finished (nothing due, so every poller the tests
    started has ended) before this job is registered, and the tests stop invoking the poller.
    """
    started = time.monotonic()
    while not _no_job_due(stack):
        assert time.monotonic() - started < 30, "jobs of earlier scenarios are still due"
        time.sleep(1)
    time.sleep(6)  # a poller sleeping towards a job that was due ends at its next loop (<= 5 s)
    kicks_before = events.kicks

    rid = fake.add_job(outcome="done", ready_after=0)
    client_ref = jobs.client_ref("scheduled")
    events.put(TRACK, {"request_id": rid, "client_ref": client_ref, "metadata": {}})
    budget = SCHEDULE_BUDGET - (time.monotonic() - started)
    stored = events.wait_for_event(rid, STORED, timeout=max(budget, 60.0), kick=False)
    assert stored["detail"]["client_ref"] == client_ref
    assert len(events.of(rid, SUCCEEDED)) == 1
    assert events.kicks == kicks_before
    assert fake.count("GET", f"/grok/v1/videos/{rid}") >= 1


# --------------------------------------------------------------------------- the API key


def _scan_table(stack: Stack) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"ConsistentRead": True}
    while True:
        page = stack.table.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _bucket_texts(stack: Stack) -> tuple[dict[str, str], int]:
    """{key: text} of the bucket: a manifest's body, a video's metadata and tags (not its bytes);
    and how many manifests there were."""
    s3 = stack.client("s3")
    texts: dict[str, str] = {}
    manifests = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.bucket):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            head = s3.head_object(Bucket=stack.bucket, Key=key)
            tags = s3.get_object_tagging(Bucket=stack.bucket, Key=key).get("TagSet", [])
            text = json.dumps({"key": key, "metadata": head.get("Metadata", {}), "tags": tags})
            if key.endswith(".json"):
                text += s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read().decode("utf-8")
                manifests += 1
            texts[key] = text
    return texts, manifests


def test_the_api_key_is_in_no_log_event_table_item_or_manifest(
    jobs: Scenarios, events: EventLog, stack: Stack, fake: FakeCometAPI
) -> None:
    """The session's key (a distinctive random secret, so "Bearer <key>" is covered too) appears in
    nothing the stack wrote: its functions' log events, the output events, the jobs table, the
    video bucket (manifests; videos' metadata and tags) or the emulator's own log. Every source
    must have held data, so an empty scan cannot pass."""
    assert API_KEY.startswith("sk-systemtest-") and len(API_KEY) > 40
    assert fake.api_key == API_KEY  # the key the stack really used: the fake accepts no other
    events.drain(wait_seconds=1)
    assert events.of(jobs.ok, STORED), "no video was stored: the provider never accepted the key"
    needles = (API_KEY, API_KEY.removeprefix("sk-systemtest-"))  # the key, or its random part alone

    found: list[str] = []
    seen: Counter[str] = Counter()

    def scan(kind: str, where: str, text: str) -> None:
        seen[kind] += 1
        if any(needle in text for needle in needles):
            found.append(f"{kind} {where}")

    for output in FUNCTIONS:
        log_events = stack.log_messages(output)
        assert log_events, f"{output}: no log event to scan"
        for i, event in enumerate(log_events):
            scan("log", f"{stack.outputs[output]} #{i}", event["message"])
    assert events.events, "no output event to scan"
    for event in events.events:
        scan("event", f"{event['detail-type']} {event_key(event)}", json.dumps(event, default=str))
    items = _scan_table(stack)
    assert items, "no table item to scan"
    for item in items:
        scan("item", str(item["request_id"]), json.dumps(item, default=str))
    texts, manifests = _bucket_texts(stack)
    assert manifests >= 2, f"only {manifests} manifests to scan"  # ok, ok_big and the submitted jobs
    for key, text in texts.items():
        scan("object", key, text)
    emulator_log = (LOCAL / "ministack.log").read_text(errors="replace")
    assert emulator_log.strip(), "the emulator's log is empty"
    scan("file", ".local/ministack.log", emulator_log)
    for path in sorted(LOCAL.glob("*.log")):  # sam build and deploy output too
        if path.name != "ministack.log":
            scan("file", f".local/{path.name}", path.read_text(errors="replace"))

    assert found == [], f"the API key appears in: {found}"
    assert {"log", "event", "item", "object", "file"} <= set(seen), seen
