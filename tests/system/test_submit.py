"""Submitted jobs on the deployed stack: a prompt on the bus ends as a stored video with its manifest.

The generation request was put twice (one idempotency key) by the ``jobs`` fixture right after
the deploy; the edit starts from the video that request stored.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from local.fake_cometapi import FakeCometAPI
from tests.system.conftest import EDIT, STORED, SUBMITTED, EventLog, Scenarios, Stack

pytestmark = pytest.mark.system


def submitted_for(events: EventLog, client_ref: str, *, count: int = 1, timeout: float = 60) -> list[dict[str, Any]]:
    return events.wait_for(
        lambda e: e["detail-type"] == SUBMITTED and e["detail"]["client_ref"] == client_ref,
        timeout,
        count=count,
        kick=False,
    )


def generated_job(events: EventLog, jobs: Scenarios) -> str:
    rid = str(submitted_for(events, jobs.generation["client_ref"])[0]["detail"]["request_id"])
    if rid not in jobs.submitted:
        jobs.submitted.append(rid)
    return rid


def read_json(stack: Stack, key: str) -> dict[str, Any]:
    body = stack.client("s3").get_object(Bucket=stack.bucket, Key=key)["Body"].read()
    return dict(json.loads(body))


def test_a_prompt_ends_as_a_stored_video_with_its_manifest(
    jobs: Scenarios, events: EventLog, stack: Stack, fake: FakeCometAPI
) -> None:
    request = jobs.generation
    rid = generated_job(events, jobs)
    submitted = events.of(rid, SUBMITTED)[0]["detail"]
    assert (submitted["idempotency_key"], submitted["duration"], submitted["resolution"]) == (
        request["idempotency_key"],
        1,
        "480p",
    )
    sent = fake.job(rid).request_body
    assert (sent["prompt"], sent["duration"], sent["resolution"]) == (request["prompt"], 1, "480p")

    stored = events.wait_for_event(rid, STORED, timeout=120)["detail"]

    video = stack.client("s3").get_object(Bucket=stack.bucket, Key=stored["key"])["Body"].read()
    assert hashlib.sha256(video).hexdigest() == stored["sha256"] == fake.video_sha256(rid)
    assert stored["manifest_key"] == stored["key"].removesuffix(".mp4") + ".json"
    manifest = read_json(stack, stored["manifest_key"])
    assert manifest["request_id"] == rid and manifest["origin"] == "submitted"
    assert manifest["request"]["prompt"] == request["prompt"]
    assert manifest["request"]["prompt_sha256"] == hashlib.sha256(request["prompt"].encode()).hexdigest()
    assert (manifest["request"]["duration"], manifest["request"]["aspect_ratio"]) == (1, "16:9")
    assert (manifest["idempotency_key"], manifest["client_ref"]) == (request["idempotency_key"], request["client_ref"])
    assert manifest["metadata"] == request["metadata"]
    assert manifest["video"]["sha256"] == stored["sha256"] and manifest["video"]["size_bytes"] == len(video)
    assert manifest["cost_usd"] is not None and manifest["submitted_at"] and manifest["stored_at"]
    item = stack.item(rid)
    assert item is not None and item["state"] == "STORED" and item["idempotency_key"] == request["idempotency_key"]


def test_a_request_sent_twice_creates_one_provider_job(jobs: Scenarios, events: EventLog, fake: FakeCometAPI) -> None:
    both = submitted_for(events, jobs.generation["client_ref"], count=2)
    assert {e["detail"]["request_id"] for e in both} == {generated_job(events, jobs)}
    created = [
        rid for _, route, rid in fake.create_log if fake.job(rid).request_body["prompt"] == jobs.generation["prompt"]
    ]
    assert len(created) == 1


def test_an_edit_of_a_stored_video_is_submitted_with_the_archived_video(
    jobs: Scenarios, events: EventLog, stack: Stack, fake: FakeCometAPI
) -> None:
    source = generated_job(events, jobs)
    events.wait_for_event(source, STORED, timeout=120)
    client_ref = jobs.client_ref("edit")
    prompt = f"make it snow harder, systemtest {jobs.run} [ready_after=2]"
    events.put(EDIT, {"prompt": prompt, "source_request_id": source, "client_ref": client_ref})

    rid = str(submitted_for(events, client_ref)[0]["detail"]["request_id"])
    jobs.submitted.append(rid)

    assert [route for _, route, r in fake.create_log if r == rid] == ["edits"]
    video_url = fake.job(rid).request_body["video"]["url"]
    assert f"{stack.bucket}" in video_url and f"{source}.mp4" in video_url and "X-Amz-Signature=" in video_url
    stored = events.wait_for_event(rid, STORED, timeout=120)["detail"]
    manifest = read_json(stack, stored["manifest_key"])
    assert manifest["request"]["kind"] == "edit" and manifest["request"]["source_request_id"] == source
    assert "X-Amz" not in json.dumps(manifest), "the presigned URL is never kept"
