"""Wiring of the deployed stack: queues, logs, every captured event, and the poller's schedule.

This file runs last (after test_archive.py and test_tracking.py), so the checks over the whole
session's events and logs see every scenario; the schedule test comes last of all.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
from boto3.dynamodb.conditions import Attr

from local.fake_cometapi import FakeCometAPI
from tests.system.conftest import STORED, SUCCEEDED, TRACK, EventLog, Scenarios, Stack, event_key

pytestmark = pytest.mark.system

SCHEDULE_BUDGET = 90.0  # seconds; the schedule fires every minute (first ~50-65 s after the deploy)
FUNCTIONS = ("PollerFunctionName", "RegisterFunctionName", "CopierFunctionName")


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
    known = {*jobs.tracked.values(), *jobs.submitted, jobs.refused, f"client_ref:{jobs.invalid_ref}"}
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
        if (failed == expected and succeeded == 2 + len(jobs.submitted)) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert sweeps, "no poller sweep finished"
    for sweep in sweeps:
        assert sweep["unexpected_errors"] == 0 and sweep["publish_errors"] == 0, sweep
        assert not sweep["auth_failed"], sweep
    # Racing pollers (kicks, retries, the schedule) made one transition per job between them.
    assert failed == expected, sweeps
    assert succeeded == 2 + len(jobs.submitted), sweeps  # the tracked ones and the submitted ones
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
