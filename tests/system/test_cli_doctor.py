"""``grokvideo doctor`` and ``grokvideo events`` against the stack deployed on the local emulator,
found as ``--local`` finds it (``.local/outputs.json``), run in-process through tests/cli_harness."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from grokvideo.cli.deployment import Deployment
from local.fake_cometapi import FakeCometAPI
from tests.cli_harness import Cli, CliResult
from tests.schema_check import assert_valid_event
from tests.system.conftest import API_KEY, OUTPUTS_FILE, REJECTED, TRACK, EventLog, Stack

pytestmark = pytest.mark.system


@pytest.fixture
def cli(stack: Stack) -> Cli:
    return Cli(Deployment.local(OUTPUTS_FILE))


def test_doctor_passes_on_the_healthy_stack(cli: Cli, stack: Stack, fake: FakeCometAPI) -> None:
    result = cli("doctor", "--json")
    checks = {c["name"]: c for c in result.json()}
    assert {name: c["status"] for name, c in checks.items()} == {
        "api key secret": "OK",
        "poller schedule": "OK",
        "dead letters: copy": "OK",
        "dead letters: submit": "OK",
        "dead letters: register": "OK",
        "dead letters: poller": "OK",
        "alarms": "OK",
        "provider": "OK",
    }, result.out
    assert result.code == 0
    assert checks["poller schedule"]["detail"].endswith(" is ENABLED")
    assert checks["provider"]["detail"].startswith(f"{fake.base_url} accepted the key")
    assert ("GET", "/grok/v1/videos/grokvideo-doctor-made-up-id") in fake.requests
    people = cli("doctor")
    assert people.code == 0 and people.err == "all 8 checks passed\n"
    assert API_KEY not in result.out + people.out + people.err


def _taps(stack: Stack) -> tuple[list[str], list[str]]:
    rules = stack.client("events").list_rules(EventBusName=stack.bus, NamePrefix="grokvideo-tail-")["Rules"]
    queues = stack.client("sqs").list_queues(QueueNamePrefix="grokvideo-tail-").get("QueueUrls", [])
    return [r["Name"] for r in rules], queues


def _listening(stack: Stack, timeout: float = 60) -> None:
    """Until the command's tap has its target on the bus (the last step before it listens)."""
    bridge = stack.client("events")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rules, _ = _taps(stack)
        if rules and bridge.list_targets_by_rule(Rule=rules[0], EventBusName=stack.bus)["Targets"]:
            return
        time.sleep(0.2)
    raise AssertionError(f"the events command put no tap on the bus within {timeout} s")


def test_events_prints_an_event_the_stack_produces(cli: Cli, stack: Stack, events: EventLog) -> None:
    """A track request the register function rejects (an invalid request id): its ``Video Request
    Rejected`` is the stack's own event, and the first one ``events --count 1`` prints."""
    ref = f"systemtest-cli-events-{uuid.uuid4().hex[:8]}"
    events.expected_keys.add(f"client_ref:{ref}")  # the session-wide checks accept it
    ran: dict[str, CliResult] = {}
    command = threading.Thread(
        target=lambda: ran.update(result=cli("events", "--count", "1", "--seconds", "120", "--json"))
    )
    started = time.time()
    command.start()
    try:
        _listening(stack)
        events.put(TRACK, {"request_id": "../not-an-id", "client_ref": ref, "metadata": {"test": "cli events"}})
    finally:
        command.join(timeout=180)
    result = ran["result"]
    assert result.code == 0, result.err
    assert result.err.startswith(f"listening on bus {stack.bus} for source {stack.source}; Ctrl-C to stop\n")
    (event,) = [json.loads(line) for line in result.out.splitlines()]
    assert event["source"] == stack.source
    assert_valid_event(event["detail-type"], event["detail"])
    ours = events.wait_for(lambda e: e["detail"].get("client_ref") == ref, kick=False)
    assert [(e["detail-type"], e["id"]) for e in ours] == [(REJECTED, ours[0]["id"])]
    # The first event printed is ours, unless another job of the session produced one meanwhile.
    meanwhile = [e for e in events.events if e["_received_at"] >= started and e["detail"].get("client_ref") != ref]
    if not meanwhile:
        assert event["id"] == ours[0]["id"]
    assert _taps(stack) == ([], [])
