"""``grokvideo submit / edit / track / wait / fetch`` against moto: what goes on the bus, what a
wait sees as the stack moves a job along, and what lands on disk."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from grokvideo.cli.exits import ExitCode
from grokvideo.jobs import JobStore
from grokvideo.models import JobState
from grokvideo.submission import submission_id
from tests.integration.conftest import BUS, INPUT_BUCKET, VIDEO_BUCKET, EventCapture

NOW = 1_800_000_000
VIDEO = Path(__file__).resolve().parents[1] / "fixtures" / "sample-1s-480p.mp4"


@pytest.fixture
def requests(aws: None) -> EventCapture:
    """What the command puts on the bus (its source is grokvideo.cli, not the stack's)."""
    events, sqs = boto3.client("events"), boto3.client("sqs")
    url = sqs.create_queue(QueueName="cli-requests")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="cli", EventBusName=BUS, EventPattern=json.dumps({"source": ["grokvideo.cli"]}))
    events.put_targets(Rule="cli", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
    return EventCapture(sqs, url)


class Clock:
    """A clock the command's sleeps move forward, running the stack's next step on each sleep."""

    def __init__(self) -> None:
        self.now = float(NOW)
        self.steps: list[Any] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.steps:
            self.steps.pop(0)()


@pytest.fixture
def clock(cli: Any) -> Clock:
    c = Clock()
    cli.clock = c
    cli.on_sleep = c.sleep
    return c


def store_video(store: JobStore, rid: str, *, data: bytes, sha256: str | None = None, ref: str | None = None) -> None:
    key = f"grokvideo/{rid}.mp4"
    boto3.client("s3").put_object(Bucket=VIDEO_BUCKET, Key=key, Body=data)
    item = store.new_item(
        rid,
        JobState.STORED,
        now=NOW,
        client_ref=ref,
        metadata=None,
        bucket=VIDEO_BUCKET,
        key=key,
        size_bytes=len(data),
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
        stored_at=NOW + 60,
    )
    store.table.put_item(Item=item)


def put_job(store: JobStore, rid: str, state: JobState, **attrs: Any) -> None:
    store.table.put_item(Item=store.new_item(rid, state, now=NOW, client_ref=None, metadata=None, **attrs))


# --- submit / edit / track: the events ---------------------------------------------------------


def test_submit_puts_a_generation_request_and_prints_its_submission(cli: Any, requests: EventCapture) -> None:
    result = cli(
        "submit",
        "a red fox in snow",
        "--duration",
        "5",
        "--resolution",
        "720p",
        "--ref",
        "ad-1",
        "--metadata",
        '{"team": "ads"}',
        "--idempotency-key",
        "order-1042",
    )
    assert result.code == 0, result.err
    assert result.out.strip() == submission_id("order-1042")
    (event,) = requests.drain()
    assert event["detail-type"] == "Video Generation Requested" and event["source"] == "grokvideo.cli"
    assert event["detail"] == {
        "prompt": "a red fox in snow",
        "duration": 5,
        "resolution": "720p",
        "client_ref": "ad-1",
        "metadata": {"team": "ads"},
        "idempotency_key": "order-1042",
    }


def test_submit_without_a_key_gets_a_fresh_one_each_time(cli: Any, requests: EventCapture) -> None:
    first = cli("submit", "a", "--json").json()
    second = cli("submit", "a", "--json").json()
    assert first["idempotency_key"] != second["idempotency_key"]
    assert first["submission_id"] == submission_id(first["idempotency_key"])
    assert {e["detail"]["idempotency_key"] for e in requests.drain()} == {
        first["idempotency_key"],
        second["idempotency_key"],
    }


def test_a_request_the_stack_would_reject_is_refused_before_sending(cli: Any, requests: EventCapture) -> None:
    result = cli("submit", "a fox", "--resolution", "1080p")
    assert result.code == 2
    assert "the stack would reject this request" in result.err and "1080p" in result.err
    assert cli("submit", "a fox", "--metadata", "[1]").code == 2
    assert requests.drain() == []


def test_a_local_image_is_uploaded_to_the_input_bucket(cli: Any, requests: EventCapture, tmp_path: Path) -> None:
    image = tmp_path / "fox.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    assert cli("submit", "animate this", "--image", str(image)).code == 0
    (event,) = requests.drain()
    key = f"grokvideo-cli/{hashlib.sha256(image.read_bytes()).hexdigest()}.png"
    assert event["detail"]["image_url"] == f"s3://{INPUT_BUCKET}/{key}"
    head = boto3.client("s3").head_object(Bucket=INPUT_BUCKET, Key=key)
    assert head["ContentType"] == "image/png"


def test_a_local_image_without_an_input_bucket_is_a_clear_error(
    cli: Any, deployment: Any, tmp_path: Path, requests: EventCapture
) -> None:
    deployment.parameters = {**deployment.parameters, "InputBucketNames": ""}
    image = tmp_path / "fox.png"
    image.write_bytes(b"png")
    result = cli("submit", "animate this", "--image", str(image))
    assert result.code == 2
    assert "no input bucket" in result.err and "InputBucketNames" in result.err
    assert cli("submit", "x", "--image", str(tmp_path / "missing.png")).code == 4
    assert requests.drain() == []


def test_an_image_url_goes_as_it_is(cli: Any, requests: EventCapture) -> None:
    assert cli("submit", "animate", "--image", "https://example.com/fox.png").code == 0
    assert requests.drain()[0]["detail"]["image_url"] == "https://example.com/fox.png"


def test_edit_needs_a_stored_source(cli: Any, store: JobStore, requests: EventCapture) -> None:
    store.register("still-running", now=NOW)
    result = cli("edit", "make it snow", "--source", "still-running")
    assert result.code == 4 and "only a STORED job can be edited (it is PENDING)" in result.err
    assert cli("edit", "make it snow", "--source", "nope").code == 4
    store_video(store, "done-1", data=b"video")
    assert cli("edit", "make it snow", "--source", "done-1", "--model", "grok-imagine-video").code == 0
    (event,) = requests.drain()
    assert event["detail-type"] == "Video Edit Requested"
    assert event["detail"]["source_request_id"] == "done-1"
    assert cli("edit", "make it snow").code == 2  # --source or --video


def test_track_puts_a_track_request(cli: Any, requests: EventCapture) -> None:
    result = cli("track", "4b2cd27e-0b0d", "--ref", "r1")
    assert result.code == 0 and result.out.strip() == "4b2cd27e-0b0d"
    (event,) = requests.drain()
    assert event["detail-type"] == "Video Job Track Requested"
    assert event["detail"] == {"request_id": "4b2cd27e-0b0d", "client_ref": "r1"}
    assert cli("track", "not a valid id!").code == 2


@pytest.mark.parametrize("argv", [("submit", "a kite over a beach"), ("track", "4b2cd27e-0b0d")])
def test_a_request_the_bus_refuses_is_a_stack_error_with_the_bus_reason(
    cli: Any, requests: EventCapture, argv: tuple[str, ...]
) -> None:
    refused = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]}
    with Stubber(cli.deployment.client("events")) as bus:
        bus.add_response("put_events", refused)
        result = cli(*argv)
    assert result.code == ExitCode.STACK, result
    assert "the bus refused the request: InternalFailure: try again" in result.err
    assert result.out == ""  # no id printed: nothing was sent that a script could follow
    assert requests.drain() == []


# --- waiting ----------------------------------------------------------------------------------


def test_submit_wait_follows_the_submission_to_its_video_on_disk(
    cli: Any, store: JobStore, requests: EventCapture, clock: Clock, tmp_path: Path
) -> None:
    sid = submission_id("k-1")
    data = VIDEO.read_bytes()
    clock.steps = [
        lambda: None,  # the request is still queued
        lambda: put_job(store, sid, JobState.RESERVED),
        lambda: (
            put_job(store, sid, JobState.SUBMITTED, job_request_id="job-9"),
            put_job(store, "job-9", JobState.PENDING, progress=40),
        ),
        lambda: put_job(store, "job-9", JobState.SUCCEEDED),
        lambda: store_video(store, "job-9", data=data),
    ]
    out = tmp_path / "fox.mp4"
    result = cli("submit", "a fox", "--idempotency-key", "k-1", "--wait", "-o", str(out), "--interval", "2")
    assert result.code == 0, result.err
    assert result.out.strip() == str(out)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    progress = [line for line in result.err.splitlines() if line.startswith((sid, "job-9"))]
    # id, bar, percent, what is happening, time since the job was registered (clock: +2 s a look)
    assert [line.split("]")[1].split(maxsplit=1)[1] for line in progress] == [
        "queued",
        "submitting  4s",
        "generating  6s",
        "copying to S3  8s",
        "stored  10s",
    ]
    assert " 40%  generating" in progress[2]


def test_submit_wait_json_reports_the_outcome_and_path(
    cli: Any, store: JobStore, requests: EventCapture, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sid = submission_id("k-2")
    clock.steps = [
        lambda: (
            put_job(store, sid, JobState.SUBMITTED, job_request_id="job-2"),
            store_video(store, "job-2", data=b"mp4"),
        )
    ]
    record = cli("submit", "a fox", "--idempotency-key", "k-2", "--wait", "--json").json()
    assert record["outcome"] == "stored" and record["submission_id"] == sid
    assert record["path"] == "job-2.mp4" and (tmp_path / "job-2.mp4").read_bytes() == b"mp4"


def test_a_submission_that_fails_exits_1_with_its_reason(
    cli: Any, store: JobStore, requests: EventCapture, clock: Clock
) -> None:
    sid = submission_id("k-3")
    clock.steps = [lambda: put_job(store, sid, JobState.FAILED, reason="REJECTED", message="prompt refused")]
    result = cli("submit", "a fox", "--idempotency-key", "k-3", "--wait")
    assert result.code == 1
    assert "failed: REJECTED" in result.err


def test_a_request_never_taken_says_where_to_look_then_times_out(
    cli: Any, requests: EventCapture, clock: Clock
) -> None:
    result = cli("submit", "a fox", "--wait", "--timeout", "120", "--interval", "10")
    assert result.code == 5
    assert "has not taken the request yet" in result.err and "still running after 2m00s" in result.err


def test_wait_exit_code_is_the_worst_outcome(cli: Any, store: JobStore, clock: Clock) -> None:
    store_video(store, "ok", data=b"v")
    put_job(store, "bad", JobState.ARCHIVE_FAILED, reason="URL_EXPIRED")
    assert cli("wait", "ok").code == 0
    assert cli("wait", "ok", "bad").code == 3
    put_job(store, "worse", JobState.FAILED, reason="MODERATED")
    result = cli("wait", "ok", "bad", "worse", "--json")
    assert result.code == 1
    assert [(r["request_id"], r["outcome"]) for r in result.json()] == [
        ("ok", "stored"),
        ("bad", "archive_failed"),
        ("worse", "failed"),
    ]


def test_wait_on_a_ref_follows_its_jobs_and_times_out(cli: Any, store: JobStore, clock: Clock) -> None:
    store.register("a", now=NOW, client_ref="batch-7")
    store.register("b", now=NOW + 1, client_ref="batch-7")
    clock.steps = [lambda: store_video(store, "a", data=b"v", ref="batch-7")]
    result = cli("wait", "batch-7", "--timeout", "30", "--interval", "5")
    assert result.code == 5
    assert "still running after 30s: grokvideo wait b" in result.err
    assert cli("wait", "unknown-id").code == 4


# --- fetch --------------------------------------------------------------------------------------


def test_fetch_downloads_and_checks_the_sha256(cli: Any, store: JobStore, tmp_path: Path) -> None:
    data = VIDEO.read_bytes()
    store_video(store, "job-1", data=data)
    out = tmp_path / "v.mp4"
    result = cli("fetch", "job-1", "-o", str(out))
    assert result.code == 0, result.err
    assert out.read_bytes() == data and "(matches)" in result.err
    assert not (tmp_path / "v.mp4.part").exists()


def test_fetch_refuses_a_video_that_does_not_match(cli: Any, store: JobStore, tmp_path: Path) -> None:
    store_video(store, "job-1", data=b"changed after it was stored", sha256="0" * 64)
    out = tmp_path / "v.mp4"
    result = cli("fetch", "job-1", "-o", str(out))
    assert result.code == 8 and "does not match" in result.err
    assert list(tmp_path.iterdir()) == []


def test_fetch_url_prints_a_presigned_url(cli: Any, store: JobStore) -> None:
    store_video(store, "job-1", data=b"v")
    result = cli("fetch", "job-1", "--url", "--expires", "600")
    assert result.code == 0
    assert result.out.startswith(f"https://{VIDEO_BUCKET}.s3.amazonaws.com/grokvideo/job-1.mp4?")
    assert "Expires=" in result.out or "X-Amz-Expires=600" in result.out


def test_fetch_of_a_job_without_a_video_says_what_to_do(cli: Any, store: JobStore) -> None:
    store.register("job-1", now=NOW)
    result = cli("fetch", "job-1")
    assert result.code == 4 and "grokvideo wait job-1" in result.err


def test_on_a_terminal_the_bars_are_redrawn_in_place(cli: Any, store: JobStore, clock: Clock) -> None:
    """Two jobs, three looks: each look after the first moves the cursor up two lines and redraws."""
    import io

    from grokvideo.cli import app
    from grokvideo.cli.context import Context

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    store.register("a", now=NOW)
    store.register("b", now=NOW)
    clock.steps = [
        lambda: store.table.update_item(
            Key={"request_id": "a"}, UpdateExpression="SET progress = :p", ExpressionAttributeValues={":p": 50}
        ),
        lambda: (store_video(store, "a", data=b"v"), store_video(store, "b", data=b"v")),
    ]
    err = Terminal()

    def context(args: Any) -> Context:
        return Context(args, lambda: cli.deployment, out=io.StringIO(), err=err, clock=clock, sleep=clock.sleep)

    assert app.main(["wait", "a", "b"], context=context) == 0
    frames = err.getvalue().split("\x1b[2F")
    assert len(frames) == 3
    assert "a  [????" in frames[0] and "generating" in frames[0]
    assert " 50%  generating" in frames[1]
    assert frames[2].count("stored") == 2
