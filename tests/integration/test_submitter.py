"""The submitter against moto (table, bus, S3) and the fake CometAPI over HTTP: one paid job per request."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from grokvideo.cometapi import CometApiClient
from grokvideo.events import EventPublisher
from grokvideo.jobs import JobStore
from grokvideo.models import JobState
from grokvideo.presign import SIGNING, S3Presigner
from grokvideo.ratelimit import SharedRateLimiter
from grokvideo.reservations import Reservations
from grokvideo.submission import submission_id
from grokvideo.submitter import RetryLater, Submitter
from local.fake_cometapi import FakeCometAPI
from tests.integration.conftest import API_KEY, EventCapture
from tests.schema_check import assert_valid_event

GENERATIONS = "/grok/v1/videos/generations"
EDITS = "/grok/v1/videos/edits"
INPUTS = "grokvideo-inputs"
VIDEOS = "grokvideo-videos"


def request_event(detail: dict[str, Any], *, detail_type: str = "Video Generation Requested") -> dict[str, Any]:
    """An input event as EventBridge delivers it (its id is the default idempotency key)."""
    return {"id": str(uuid.uuid4()), "detail-type": detail_type, "source": "com.example.app", "detail": detail}


def creates(fake: FakeCometAPI, path: str = GENERATIONS) -> int:
    return fake.count("POST", path)


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3")
    client.create_bucket(Bucket=INPUTS)
    client.create_bucket(Bucket=VIDEOS)
    return client


@pytest.fixture
def make_submitter(store: JobStore, publisher: EventPublisher, fake: FakeCometAPI, s3: Any) -> Callable[..., Submitter]:
    def make(**overrides: Any) -> Submitter:
        options: dict[str, Any] = {
            "client": CometApiClient(fake.base_url, lambda: API_KEY, read_timeout=1.0),
            "limiter": SharedRateLimiter(store.table, "submit", per_second=100),
            "reservations": Reservations(store, lease_seconds=120),
            "input_buckets": (INPUTS,),
        }
        options.update(overrides)
        return Submitter(
            store,
            options.pop("reservations"),
            options.pop("limiter"),
            options.pop("client"),
            publisher,
            S3Presigner(boto3.client("s3", config=SIGNING), expires_in=600),
            **options,
        )

    return make


@pytest.fixture
def submitter(make_submitter: Callable[..., Submitter]) -> Submitter:
    return make_submitter()


def plenty() -> float:
    return 50.0


def only(capture: EventCapture, detail_type: str) -> dict[str, Any]:
    events = capture.drain()
    assert [e["detail-type"] for e in events] == [detail_type], events
    assert_valid_event(detail_type, events[0]["detail"])
    return events[0]["detail"]


def assert_resting(store: JobStore, request_id: str) -> None:
    """The invariant after any fault: terminal, or in the due index, or leased with an expiry."""
    job = store.get(request_id)
    assert job is not None
    terminal = job.state in (JobState.STORED, JobState.FAILED, JobState.ARCHIVE_FAILED, JobState.SUBMITTED)
    owing = job.outbox is not None
    assert (terminal and not owing) or job.next_poll_at is not None or job.lease_until is not None, job


# --------------------------------------------------------------------------- the happy path


def test_a_generation_request_becomes_one_provider_job_tracked_like_any_other(
    submitter: Submitter, store: JobStore, fake: FakeCometAPI, capture: EventCapture
) -> None:
    detail = {
        "prompt": "a red fox in fresh snow",
        "duration": 4,
        "resolution": "480p",
        "aspect_ratio": "16:9",
        "client_ref": "order-1",
        "metadata": {"team": "video"},
        "idempotency_key": "order-1/v1",
        "task_token": "opaque-token-123",
    }

    result = submitter.handle(request_event(detail), time_left=plenty)

    assert result.outcome == "submitted" and creates(fake) == 1
    [(_, route, rid)] = fake.create_log
    assert (route, rid) == ("generations", result.request_id)
    sent = fake.job(rid).request_body
    assert sent == {
        "model": "grok-imagine-video",
        "prompt": "a red fox in fresh snow",
        "duration": 4,
        "aspect_ratio": "16:9",
        "resolution": "480p",
    }
    job = store.get(rid)
    assert job is not None and job.state is JobState.PENDING and job.outbox is None
    assert job.next_poll_at is not None, "still in the due index: the poller will poll it"
    assert job.request["prompt"] == detail["prompt"] and job.request["duration"] == 4
    assert (job.idempotency_key, job.task_token, job.client_ref) == ("order-1/v1", "opaque-token-123", "order-1")
    assert job.submission_id == submission_id("order-1/v1")
    reservation = store.get(submission_id("order-1/v1"))
    assert reservation is not None and reservation.state is JobState.SUBMITTED
    assert reservation.job_request_id == rid and reservation.lease_until is None
    announced = only(capture, "Video Generation Submitted")
    assert announced["request_id"] == rid
    assert (announced["idempotency_key"], announced["duration"], announced["resolution"]) == ("order-1/v1", 4, "480p")
    assert (announced["client_ref"], announced["metadata"]) == ("order-1", {"team": "video"})
    assert "task_token" not in announced


def test_duration_is_always_sent_even_when_the_request_leaves_it_out(submitter: Submitter, fake: FakeCometAPI) -> None:
    result = submitter.handle(request_event({"prompt": "a fox"}), time_left=plenty)
    assert fake.job(str(result.request_id)).request_body["duration"] == 6


# --------------------------------------------------------------------------- one job per key


def test_a_second_delivery_of_the_same_event_creates_nothing_and_announces_the_job_again(
    submitter: Submitter, fake: FakeCometAPI, capture: EventCapture
) -> None:
    event = request_event({"prompt": "a fox"})
    first = submitter.handle(event, time_left=plenty)
    capture.drain()

    again = submitter.handle(event, time_left=plenty)

    assert again.outcome == "announced" and again.request_id == first.request_id
    assert creates(fake) == 1
    assert only(capture, "Video Generation Submitted")["request_id"] == first.request_id


def test_a_user_resending_with_the_same_key_pays_once(
    submitter: Submitter, fake: FakeCometAPI, capture: EventCapture
) -> None:
    detail = {"prompt": "a fox", "idempotency_key": "k-1"}
    first = submitter.handle(request_event(detail), time_left=plenty)
    second = submitter.handle(request_event(detail), time_left=plenty)  # another event id, same key
    assert (first.outcome, second.outcome) == ("submitted", "announced")
    assert second.request_id == first.request_id and creates(fake) == 1


def test_a_key_reused_for_another_request_is_rejected_and_costs_nothing(
    submitter: Submitter, fake: FakeCometAPI, capture: EventCapture
) -> None:
    submitter.handle(request_event({"prompt": "a fox", "idempotency_key": "k-1"}), time_left=plenty)
    capture.drain()
    other = submitter.handle(
        request_event({"prompt": "a cat", "idempotency_key": "k-1", "client_ref": "c2"}), time_left=plenty
    )
    assert other.outcome == "rejected" and creates(fake) == 1
    rejected = only(capture, "Video Request Rejected")
    assert rejected["client_ref"] == "c2" and "idempotency_key" in rejected["errors"][0]


def test_concurrent_deliveries_of_one_key_make_one_post(
    make_submitter: Callable[..., Submitter], store: JobStore, fake: FakeCometAPI, capture: EventCapture
) -> None:
    fake.set_latency(0.3)  # the first create is still in flight when the others arrive
    event = request_event({"prompt": "a fox", "idempotency_key": "same"})
    outcomes: list[str] = []
    retries: list[float] = []
    barrier = threading.Barrier(4)

    def deliver() -> None:
        submitter = make_submitter()  # each delivery its own invocation (owner)
        barrier.wait()
        try:
            outcomes.append(submitter.handle(event, time_left=plenty).outcome)
        except RetryLater as later:
            retries.append(later.seconds)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert creates(fake) == 1
    assert outcomes.count("submitted") == 1
    assert len(retries) + outcomes.count("announced") == 3
    assert all(1 <= s <= 120 for s in retries), retries
    # The ones told to wait come back and get the job announced, still one POST.
    for _ in retries:
        assert make_submitter().handle(event, time_left=plenty).outcome == "announced"
    assert creates(fake) == 1


# --------------------------------------------------------------------------- the rate and retries


def test_a_429_puts_the_request_back_for_retry_after_and_pauses_every_submitter(
    make_submitter: Callable[..., Submitter], store: JobStore, fake: FakeCometAPI, capture: EventCapture
) -> None:
    fake.inject("429", path=GENERATIONS, retry_after=3)
    limiter = SharedRateLimiter(store.table, "submit", per_second=100)
    submitter = make_submitter(limiter=limiter)
    event = request_event({"prompt": "a fox"})

    with pytest.raises(RetryLater) as later:
        submitter.handle(event, time_left=plenty)

    assert later.value.seconds == 3
    assert limiter.take(max_wait=0).taken is False, "the next create slot is >= 3 s away for everyone"
    reservation = store.get(submission_id(event["id"]))
    assert reservation is not None and reservation.state is JobState.RESERVED and reservation.lease_until is None
    assert capture.drain() == []

    # Redelivered after Retry-After: the create goes out and the job is submitted.
    retried = make_submitter(
        limiter=SharedRateLimiter(store.table, "submit", per_second=100, clock=lambda: time.time() + 4)
    )
    assert retried.handle(event, time_left=plenty).outcome == "submitted"
    assert creates(fake) == 2  # the refused one and the accepted one: one job
    assert len(fake.create_log) == 1


def test_a_provider_that_cannot_be_reached_is_tried_again_later_without_uncertainty(
    make_submitter: Callable[..., Submitter], store: JobStore, capture: EventCapture
) -> None:
    unreachable = CometApiClient("http://127.0.0.1:9", lambda: API_KEY, connect_timeout=0.5)
    event = request_event({"prompt": "a fox"})
    with pytest.raises(RetryLater):
        make_submitter(client=unreachable).handle(event, time_left=plenty)
    reservation = store.get(submission_id(event["id"]))
    assert reservation is not None and reservation.state is JobState.RESERVED and reservation.lease_until is None
    assert capture.drain() == []


def test_a_refused_key_fails_no_request(
    make_submitter: Callable[..., Submitter], store: JobStore, fake: FakeCometAPI, capture: EventCapture
) -> None:
    fake.set_api_key("rotated")
    event = request_event({"prompt": "a fox"})
    with pytest.raises(RetryLater) as later:
        make_submitter().handle(event, time_left=plenty)
    assert later.value.seconds >= 60
    assert capture.drain() == []
    fake.set_api_key(API_KEY)
    assert make_submitter().handle(event, time_left=plenty).outcome == "submitted"


def test_no_slot_within_the_time_left_releases_the_reservation_and_requeues(
    make_submitter: Callable[..., Submitter], store: JobStore, fake: FakeCometAPI
) -> None:
    limiter = SharedRateLimiter(store.table, "submit", per_second=100)
    limiter.pause(30)
    event = request_event({"prompt": "a fox"})
    with pytest.raises(RetryLater) as later:
        make_submitter(limiter=limiter).handle(event, time_left=plenty)
    assert 25 <= later.value.seconds <= 31
    assert creates(fake) == 0
    reservation = store.get(submission_id(event["id"]))
    assert reservation is not None and reservation.lease_until is None


def test_a_create_that_could_outlast_the_invocation_is_not_started(
    make_submitter: Callable[..., Submitter], store: JobStore, fake: FakeCometAPI, capture: EventCapture
) -> None:
    # The chaos run: a batch whose first create took its whole read timeout started another with
    # 21 s left; the invocation was killed at its 60 s timeout and its batch came back 6 minutes
    # later, its settled requests announced again. Here the client's longest call is 3 connects
    # of 3.05 s, 0.4 s of backoff and a 1 s read: 10.55 s, plus the 10 s margin.
    submitter = make_submitter()
    event = request_event({"prompt": "a fox"})
    with pytest.raises(RetryLater) as later:
        submitter.handle(event, time_left=lambda: 20.0)
    assert later.value.seconds == 0  # the slot was free: back in the queue at once, for a fresh invocation
    assert creates(fake) == 0 and capture.drain() == []
    reservation = store.get(submission_id(event["id"]))
    assert reservation is not None and reservation.state is JobState.RESERVED and reservation.lease_until is None
    assert submitter.handle(event, time_left=lambda: 21.0).outcome == "submitted"
    assert creates(fake) == 1


# --------------------------------------------------------------------------- ambiguous creates


@pytest.mark.parametrize(
    "fault",
    [
        {"fault": "503", "after_create": True},
        {"fault": "500", "after_create": True},
        {"fault": "drop", "after_create": True},
        {"fault": "timeout", "seconds": 2},
    ],
    ids=["503-after-create", "500-after-create", "reset-after-create", "timeout-after-send"],
)
def test_an_ambiguous_create_is_never_sent_again_and_ends_submit_uncertain(
    make_submitter: Callable[..., Submitter],
    store: JobStore,
    fake: FakeCometAPI,
    capture: EventCapture,
    fault: dict[str, Any],
) -> None:
    params = dict(fault)
    fake.inject(params.pop("fault"), path=GENERATIONS, **params)
    event = request_event({"prompt": "a fox", "idempotency_key": "amb-1", "client_ref": "c1"})
    submitter = make_submitter()

    result = submitter.handle(event, time_left=plenty)

    assert result.outcome == "failed" and creates(fake) == 1
    sid = submission_id("amb-1")
    failed = only(capture, "Video Generation Failed")
    assert (failed["request_id"], failed["reason"], failed["client_ref"]) == (sid, "SUBMIT_UNCERTAIN", "c1")
    message = failed["message"]
    assert "amb-1" in message and store.get(sid).request["prompt_sha256"] in message  # type: ignore[union-attr]
    assert "Video Job Track Requested" in message
    reservation = store.get(sid)
    assert reservation is not None and reservation.state is JobState.FAILED and reservation.outbox is None
    assert_resting(store, sid)

    # Every later delivery of the key announces the outcome again and never posts.
    assert make_submitter().handle(event, time_left=plenty).outcome == "announced"
    assert only(capture, "Video Generation Failed")["reason"] == "SUBMIT_UNCERTAIN"
    assert creates(fake) == 1


def test_a_delivery_that_died_holding_the_key_settles_uncertain_without_posting(
    make_submitter: Callable[..., Submitter], store: JobStore, fake: FakeCometAPI, capture: EventCapture
) -> None:
    event = request_event({"prompt": "a fox"})
    sid = submission_id(event["id"])
    # A reservation as a crashed delivery leaves it: held, its lease run out.
    crashed = Reservations(store, lease_seconds=1)
    held = crashed.reserve(sid, owner="dead", now=int(time.time()) - 10, fields={"request": {"prompt": "a fox"}})
    assert held is not None

    result = make_submitter().handle(event, time_left=plenty)

    assert result.outcome == "failed" and creates(fake) == 0
    assert only(capture, "Video Generation Failed")["reason"] == "SUBMIT_UNCERTAIN"


def test_a_delivery_meeting_a_live_lease_waits_for_it(
    make_submitter: Callable[..., Submitter], store: JobStore, fake: FakeCometAPI, capture: EventCapture
) -> None:
    event = request_event({"prompt": "a fox"})
    Reservations(store, lease_seconds=40).reserve(
        submission_id(event["id"]), owner="alive", now=int(time.time()), fields={}
    )
    waits = []
    for receive in (1, 2, 3, 4):
        with pytest.raises(RetryLater) as later:
            make_submitter().handle(event, time_left=plenty, receive_count=receive)
        waits.append(later.value.seconds)
    # Short first (most holders finish within a second or two), doubling, never past the lease.
    assert waits[:3] == [5, 10, 20] and 30 <= waits[3] <= 40
    assert creates(fake) == 0 and capture.drain() == []


@pytest.mark.parametrize(
    ("fault", "reason"),
    [({"fault": "400", "code": "invalid_request"}, "REJECTED"), ({"fault": "422"}, "REJECTED")],
)
def test_a_create_the_provider_refuses_fails_without_a_retry(
    make_submitter: Callable[..., Submitter],
    fake: FakeCometAPI,
    capture: EventCapture,
    fault: dict[str, Any],
    reason: str,
) -> None:
    params = dict(fault)
    fake.inject(params.pop("fault"), path=GENERATIONS, **params)
    result = make_submitter().handle(request_event({"prompt": "a fox"}), time_left=plenty)
    assert result.outcome == "failed"
    assert only(capture, "Video Generation Failed")["reason"] == reason
    assert fake.create_log == []


def test_a_crash_between_the_reservation_and_the_job_is_repaired_by_the_next_delivery(
    make_submitter: Callable[..., Submitter], store: JobStore, fake: FakeCometAPI, capture: EventCapture
) -> None:
    event = request_event({"prompt": "a fox", "client_ref": "c9"})
    submitter = make_submitter()
    submitter._track = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("killed"))  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        submitter.handle(event, time_left=plenty)
    [(_, _, rid)] = fake.create_log
    assert store.get(rid) is None  # the provider job exists, our record of it does not (yet)

    result = make_submitter().handle(event, time_left=plenty)

    assert (result.outcome, result.request_id) == ("announced", rid) and creates(fake) == 1
    job = store.get(rid)
    assert job is not None and job.state is JobState.PENDING and job.client_ref == "c9"
    assert only(capture, "Video Generation Submitted")["request_id"] == rid


# --------------------------------------------------------------------------- invalid requests


def test_an_invalid_request_is_rejected_naming_every_field_and_costs_nothing(
    submitter: Submitter, fake: FakeCometAPI, capture: EventCapture
) -> None:
    detail = {
        "prompt": " ",
        "duration": 16,
        "aspect_ratio": "5:4",
        "resolution": "4k",
        "image_url": "http://example.com/a.png",
        "client_ref": "order-9",
        "metadata": {"k": 1},
        "idempotency_key": "has space",
    }
    result = submitter.handle(request_event(detail), time_left=plenty)
    assert result.outcome == "rejected"
    rejected = only(capture, "Video Request Rejected")
    fields = [e.split(":")[0] for e in rejected["errors"]]
    assert fields == ["prompt", "duration", "aspect_ratio", "resolution", "image_url", "idempotency_key"]
    assert (rejected["client_ref"], rejected["metadata"]) == ("order-9", {"k": 1})
    assert fake.requests == []


def test_an_event_that_is_not_a_request_is_rejected(submitter: Submitter, capture: EventCapture) -> None:
    assert submitter.handle({"id": "x"}, time_left=plenty).outcome == "rejected"
    assert only(capture, "Video Request Rejected")["errors"] == ["detail: must be an object"]


# --------------------------------------------------------------------------- inputs from S3


def test_an_s3_image_reaches_the_provider_as_a_short_lived_presigned_url(
    submitter: Submitter, store: JobStore, fake: FakeCometAPI, s3: Any
) -> None:
    s3.put_object(Bucket=INPUTS, Key="cats/cat.png", Body=b"\x89PNG")
    result = submitter.handle(
        request_event({"prompt": "the cat dances", "image_url": f"s3://{INPUTS}/cats/cat.png"}), time_left=plenty
    )
    sent = fake.job(str(result.request_id)).request_body["image"]["url"]
    parts = urlsplit(sent)
    assert INPUTS in sent and parts.path.endswith("/cats/cat.png")
    assert "X-Amz-Signature=" in parts.query and "X-Amz-Expires=600" in parts.query
    job = store.get(str(result.request_id))
    assert job is not None and job.request["image"] == f"s3://{INPUTS}/cats/cat.png"  # never the signed URL


def test_an_s3_input_outside_the_listed_buckets_is_rejected(
    submitter: Submitter, fake: FakeCometAPI, capture: EventCapture
) -> None:
    result = submitter.handle(request_event({"prompt": "p", "image_url": "s3://someone-else/x.png"}), time_left=plenty)
    assert result.outcome == "rejected" and fake.requests == []
    assert "InputBucketNames" in only(capture, "Video Request Rejected")["errors"][0]


def test_an_edit_of_a_stored_job_sends_its_archived_video_presigned(
    submitter: Submitter, store: JobStore, fake: FakeCometAPI, capture: EventCapture
) -> None:
    source = "src-" + uuid.uuid4().hex
    store.register(source, now=int(time.time()))
    job = store.get(source)
    assert job is not None
    store.transition(
        job,
        to_state=JobState.STORED,
        outbox="Video Stored",
        now=int(time.time()),
        relay_after=30,
        changes={"bucket": VIDEOS, "key": f"videos/{source}.mp4"},
    )

    result = submitter.handle(
        request_event({"prompt": "make it snow", "source_request_id": source}, detail_type="Video Edit Requested"),
        time_left=plenty,
    )

    assert result.outcome == "submitted" and creates(fake, EDITS) == 1
    sent = fake.job(str(result.request_id)).request_body["video"]["url"]
    assert f"videos/{source}.mp4" in sent and "X-Amz-Signature=" in sent
    edit = store.get(str(result.request_id))
    assert edit is not None and edit.request["source_request_id"] == source
    announced = only(capture, "Video Generation Submitted")
    assert (announced["duration"], announced["resolution"]) == (None, None)


def test_an_edit_of_a_job_that_is_not_stored_is_rejected(
    submitter: Submitter, store: JobStore, fake: FakeCometAPI, capture: EventCapture
) -> None:
    store.register("still-pending", now=int(time.time()))
    result = submitter.handle(
        request_event({"prompt": "p", "source_request_id": "still-pending"}, detail_type="Video Edit Requested"),
        time_left=plenty,
    )
    assert result.outcome == "rejected" and fake.requests == []
    assert "not a stored video" in only(capture, "Video Request Rejected")["errors"][0]


# --------------------------------------------------------------------------- after the create


def test_a_submitted_job_is_polled_and_finishes_like_a_tracked_one(
    submitter: Submitter, make_sweeper: Callable[..., Any], store: JobStore, fake: FakeCometAPI, capture: EventCapture
) -> None:
    result = submitter.handle(request_event({"prompt": "a fox [ready_after=0]"}), time_left=plenty)
    capture.drain()
    rid = str(result.request_id)
    store.table.update_item(
        Key={"request_id": rid}, UpdateExpression="SET next_poll_at = :n", ExpressionAttributeValues={":n": 0}
    )

    make_sweeper().run()

    job = store.get(rid)
    assert job is not None and job.state is JobState.SUCCEEDED
    assert [e["detail-type"] for e in capture.drain()] == ["Video Generation Succeeded"]


def test_the_poller_relays_a_submitted_event_eventbridge_refused(
    make_submitter: Callable[..., Submitter],
    make_sweeper: Callable[..., Any],
    store: JobStore,
    publisher: EventPublisher,
    capture: EventCapture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from grokvideo.errors import EventPublishError

    submitter = make_submitter()
    real = publisher.publish_one
    monkeypatch.setattr(publisher, "publish_one", lambda e: (_ for _ in ()).throw(EventPublishError("down")))
    result = submitter.handle(request_event({"prompt": "a fox [ready_after=600]"}), time_left=plenty)
    rid = str(result.request_id)
    job = store.get(rid)
    assert job is not None and job.outbox == "Video Generation Submitted" and job.next_poll_at is not None
    monkeypatch.setattr(publisher, "publish_one", real)
    store.table.update_item(
        Key={"request_id": rid}, UpdateExpression="SET next_poll_at = :n", ExpressionAttributeValues={":n": 0}
    )

    make_sweeper().run()

    assert [e["detail-type"] for e in capture.drain()] == ["Video Generation Submitted"]
    job = store.get(rid)
    assert job is not None and job.outbox is None and job.state is JobState.PENDING
    assert job.next_poll_at is not None and job.lease_until is None, "relayed, then polled and rescheduled"


@pytest.mark.parametrize("broken", ["limiter", "presigner"])
def test_a_failure_before_the_create_frees_the_key_so_the_retry_is_not_uncertain(
    make_submitter: Callable[..., Submitter], store: JobStore, fake: FakeCometAPI, s3: Any, broken: str
) -> None:
    event = request_event({"prompt": "a fox", "image_url": f"s3://{INPUTS}/cat.png"})
    submitter = make_submitter()

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{broken} is down")

    target = submitter.limiter if broken == "limiter" else submitter.presigner
    setattr(target, "take" if broken == "limiter" else "presign", boom)
    with pytest.raises(RuntimeError):
        submitter.handle(event, time_left=plenty)

    reservation = store.get(submission_id(event["id"]))
    assert reservation is not None and reservation.state is JobState.RESERVED and reservation.lease_until is None
    assert creates(fake) == 0
    assert make_submitter().handle(event, time_left=plenty).outcome == "submitted"
    assert creates(fake) == 1
