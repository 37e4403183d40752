"""The ``grokvideo`` command on the deployed local stack, as a user runs it (``--local``).

``submit --wait`` goes the whole way: the request on the bus, the submit function, the provider
(our fake), the poller, the copier, and the video downloaded and checked. ``list`` is measured
on a table of 100,000 finished jobs: it reads what it prints.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from grokvideo.cli.deployment import Deployment
from tests.cli_harness import Cli
from tests.integration.conftest import create_jobs_table
from tests.system.conftest import OUTPUTS_FILE, EventLog, Scenarios, Stack

pytestmark = pytest.mark.system

FIXTURE_VIDEO = Path(__file__).resolve().parents[1] / "fixtures" / "sample-1s-480p.mp4"
FINISHED_JOBS = 100_000
KICK_EVERY = 10.0  # s: invoke the poller instead of waiting up to a minute for the schedule


@pytest.fixture(scope="module")
def deployment(stack: Stack) -> Deployment:
    """What ``grokvideo --local`` finds: the stack named in .local/outputs.json, via CloudFormation."""
    return Deployment.local(OUTPUTS_FILE)


def kicking(events: EventLog) -> Any:
    last = [0.0]

    def on_sleep(seconds: float) -> None:
        time.sleep(seconds)
        if time.monotonic() - last[0] >= KICK_EVERY:
            last[0] = time.monotonic()
            events.kick()

    return on_sleep


def test_local_finds_the_stack_by_its_outputs(deployment: Deployment, stack: Stack) -> None:
    assert deployment.output("JobsTableName") == stack.outputs["JobsTableName"]
    assert deployment.endpoint_url == stack.endpoint_url
    assert deployment.parameters["PollIntervalSeconds"] == "5"


def test_submit_wait_ends_with_the_video_on_disk(
    deployment: Deployment, stack: Stack, events: EventLog, jobs: Scenarios, tmp_path: Path
) -> None:
    cli = Cli(deployment, clock=time.time, on_sleep=kicking(events))
    ref = f"cli-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "lighthouse.mp4"
    prompt = f"a lighthouse at dusk, {ref} [ready_after=3]"
    result = cli(
        "submit",
        prompt,
        "--duration",
        "1",
        "--resolution",
        "480p",
        "--ref",
        ref,
        "--wait",
        "-o",
        str(out),
        "--interval",
        "1",
        "--timeout",
        "240",
    )
    assert result.code == 0, result.err
    assert result.out.strip() == str(out)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert digest == hashlib.sha256(FIXTURE_VIDEO.read_bytes()).hexdigest()
    # The progress the user saw, in order, and the check of the download.
    said = result.err.splitlines()
    labels = [line.split("]", 1)[1].split()[1] for line in said if "  [" in line]
    assert labels[0] in ("queued", "submitting", "submitted", "generating") and labels[-1] == "stored", said
    assert f"sha256 {digest} (matches)" in result.err

    (record,) = cli("status", ref, "--json").json()
    jobs.submitted.append(record["request_id"])  # the session's checks count it with the other submitted jobs
    assert record["state"] == "STORED" and record["sha256"] == digest
    assert record["s3_uri"] == f"s3://{stack.bucket}/{stack.outputs['VideoPrefix']}{record['request_id']}.mp4"
    listed = cli("list", "--state", "STORED", "--since", "10m", "--json").json()
    assert record["request_id"] in [row["request_id"] for row in listed]
    url = cli("fetch", record["request_id"], "--url").out.strip()
    assert url.startswith(stack.endpoint_url)


def test_list_reads_only_what_it_prints_on_100k_finished_jobs(stack: Stack, deployment: Deployment) -> None:
    """A table of its own (the template's schema) so the stack's table stays small for the others."""
    dynamodb = deployment.session.resource("dynamodb", endpoint_url=deployment.endpoint_url)
    name = f"grokvideo-list-{uuid.uuid4().hex[:6]}"
    table = create_jobs_table(dynamodb, name)
    start = 1_790_000_000
    t0 = time.monotonic()

    def write(chunk: range) -> None:
        with table.batch_writer() as batch:
            for i in chunk:
                batch.put_item(
                    Item={
                        "request_id": f"job-{i:06d}",
                        "state": "STORED",
                        "registered_at": start + i,
                        "deadline_at": start + i + 3600,
                        "bucket": "videos",
                        "key": f"grokvideo/job-{i:06d}.mp4",
                    }
                )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, [range(n, min(n + 5000, FINISHED_JOBS)) for n in range(0, FINISHED_JOBS, 5000)]))
    loaded = time.monotonic() - t0
    try:
        big = Deployment(
            deployment.name,
            {**deployment.outputs, "JobsTableName": name},
            deployment.parameters,
            deployment.session,
            deployment.endpoint_url,
        )
        cli = Cli(big)
        for args, expected in (
            (("--state", "STORED", "--limit", "20"), [f"job-{i:06d}" for i in range(99_999, 99_979, -1)]),
            (("--limit", "5"), [f"job-{i:06d}" for i in range(99_999, 99_994, -1)]),
            (
                ("--state", "STORED", "--since", "2026-09-22T12:00:00Z", "--limit", "3"),
                [f"job-{i:06d}" for i in range(99_999, 99_996, -1)],
            ),
        ):
            before = big.store.items_read
            t = time.monotonic()
            result = cli("list", *args, "--json")
            took = time.monotonic() - t
            assert result.code == 0, result.err
            assert [row["request_id"] for row in result.json()] == expected
            read = big.store.items_read - before
            assert read == len(expected), (args, read)
            print(
                f"list {' '.join(args)}: {len(expected)} printed, {read} items read, {took * 1000:.0f} ms "
                f"(table of {FINISHED_JOBS:,} loaded in {loaded:.0f} s)"
            )
    finally:
        table.delete()
