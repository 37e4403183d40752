"""The fake CometAPI (local/fake_cometapi/) speaks the provider's shapes and injects every fault.

Real HTTP over loopback with urllib3, the same client library the package uses.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
import urllib3
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from local.fake_cometapi import FakeCometAPI, FaultBook, outcome_from_id

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
GEN = "/grok/v1/videos/generations"
EDITS = "/grok/v1/videos/edits"
MiB = 1 << 20


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def fake():
    with FakeCometAPI(ready_after=0) as server:
        yield server


@pytest.fixture
def http():
    pool = urllib3.PoolManager(maxsize=8, retries=False, timeout=urllib3.Timeout(connect=2, read=10))
    yield pool
    pool.clear()


def call(http, fake, method: str, path: str, body: Any = None, headers: dict | None = None, **kwargs):
    """One request to the fake; JSON-encodes ``body``; the key is sent unless ``headers`` is given."""
    hdrs = dict(AUTH if headers is None else headers)
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    return http.request(method, fake.base_url + path, body=data, headers=hdrs, redirect=False, **kwargs)


def poll(http, fake, request_id: str, **kwargs):
    return call(http, fake, "GET", f"/grok/v1/videos/{request_id}", **kwargs)


def create(http, fake, path: str = GEN, **kwargs):
    """A valid create on ``path`` (generations or edits)."""
    body = {"prompt": "a cat"} if path == GEN else {"prompt": "make it blue", "video": {"url": "https://x/v.mp4"}}
    return call(http, fake, "POST", path, body, **kwargs)


def key_tree(value: Any) -> Any:
    """The keys at every level, with the JSON type of each leaf."""
    if isinstance(value, dict):
        return {key: key_tree(item) for key, item in value.items()}
    return type(value).__name__


def success_fixture() -> dict:
    return json.loads((FIXTURES / "get-video-success.json").read_text())


def rss_bytes() -> int:
    """Resident set size of this process (the in-process fake included)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


# --- job states and outcomes --------------------------------------------------------------------


def test_states_progress_to_the_fixture_success_shape(http):
    with FakeCometAPI(ready_after=1.0) as fake:
        created = call(http, fake, "POST", GEN, {"prompt": "a cat", "duration": 1})
        assert created.status == 200
        request_id = created.json()["request_id"]
        seen = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            answer = poll(http, fake, request_id)
            assert answer.status == 200
            data = answer.json()["data"]
            seen.append((data["status"], data["data"]["status"], data["progress"]))
            if data["status"] == "SUCCESS":
                break
            time.sleep(0.02)
        final = answer.json()

    wrappers = [w for w, _, _ in seen]
    nested = {n for _, n, _ in seen}
    assert wrappers[0] in ("NOT_START", "SUBMITTED")
    assert "IN_PROGRESS" in wrappers and wrappers[-1] == "SUCCESS"
    assert {"queued", "processing"} <= nested
    assert all(re.fullmatch(r"\d{1,3}%", p) for _, _, p in seen)
    percents = [int(p[:-1]) for _, _, p in seen]
    assert percents == sorted(percents) and 0 < max(percents[:-1]) < 100 and percents[-1] == 100

    assert key_tree(final) == key_tree(success_fixture())
    data = final["data"]
    url = fake.video_url(request_id)
    assert data["task_id"] == request_id and data["action"] == "VIDEO_GENERATION"
    assert data["fail_reason"] == url and data["data"]["video"]["url"] == url
    assert data["data"]["video"] == {"url": url, "duration": 1, "respect_moderation": True}
    assert data["data"]["usage"] == {"cost_in_usd_ticks": 500000000}
    assert data["data"]["status"] == "done" and data["progress"] == "100%"
    assert data["finish_time"] >= data["submit_time"] > 0


def test_pending_envelope_keeps_the_envelope_keys(http, fake):
    request_id = fake.add_job(ready_after=60)
    body = poll(http, fake, request_id).json()
    assert body["code"] == "success"
    assert set(body["data"]) == set(success_fixture()["data"])
    assert body["data"]["finish_time"] == 0 and body["data"]["fail_reason"] == ""


@pytest.mark.parametrize(
    ("outcome", "wrapper", "nested"),
    [
        ("failed", "FAILURE", "failed"),
        ("expired", "FAILURE", "expired"),
        ("moderated", "SUCCESS", "done"),
        ("no_url", "SUCCESS", "done"),
    ],
)
def test_each_outcome(http, fake, outcome, wrapper, nested):
    request_id = fake.add_job(outcome=outcome)
    answer = poll(http, fake, request_id)
    assert answer.status == 200
    data = answer.json()["data"]
    assert (data["status"], data["data"]["status"], data["progress"]) == (wrapper, nested, "100%")
    assert "http" not in json.dumps(answer.json())  # no URL anywhere
    if outcome in ("failed", "expired"):
        assert data["fail_reason"] and "usage" not in data["data"]
    else:
        assert data["fail_reason"] == ""
        video = data["data"]["video"]
        assert video["respect_moderation"] is (outcome != "moderated")
        assert data["data"]["usage"]["cost_in_usd_ticks"] == 500000000


def test_not_found_outcome_and_unknown_id_answer_400_task_not_exist(http, fake):
    expected = {"code": "task_not_exist", "message": "task_not_exist", "data": None}
    request_id = fake.add_job(outcome="not_found")
    for rid in (request_id, request_id, "never-created"):
        answer = poll(http, fake, rid)
        assert (answer.status, answer.json()) == (400, expected)


def test_fresh_job_can_answer_task_not_exist_first(http, fake):
    request_id = fake.add_job(not_found_for=0.3)
    assert poll(http, fake, request_id).status == 400
    time.sleep(0.35)
    assert poll(http, fake, request_id).json()["data"]["status"] == "SUCCESS"


def test_finish_now_shows_the_outcome_at_once(http, fake):
    request_id = fake.add_job(ready_after=3600)
    assert poll(http, fake, request_id).json()["data"]["status"] in ("NOT_START", "SUBMITTED")
    fake.finish_now(request_id)
    assert poll(http, fake, request_id).json()["data"]["status"] == "SUCCESS"
    with pytest.raises(KeyError):
        fake.finish_now("nope")


@pytest.mark.parametrize(
    ("request_id", "outcome"),
    [
        ("job-ok-1", "done"),
        ("x-fail-2", "failed"),
        ("MODERATED_3", "moderated"),
        ("was-expired", "expired"),
        ("nourl-4", "no_url"),
        ("a-notfound", "not_found"),
    ],
)
def test_auto_jobs_create_unknown_ids_with_outcome_from_id(http, request_id, outcome):
    assert outcome_from_id(request_id) == outcome
    with FakeCometAPI(ready_after=0, auto_jobs=True) as fake:
        answer = poll(http, fake, request_id)
        if outcome == "not_found":
            assert answer.status == 400
        else:
            assert answer.status == 200
            assert answer.json()["data"]["task_id"] == request_id
        assert [job["outcome"] for job in fake.jobs()] == [outcome]


def test_auto_jobs_refuse_ids_that_do_not_look_like_ids(http):
    with FakeCometAPI(ready_after=0, auto_jobs=True) as fake:
        assert poll(http, fake, "x" * 129).status == 400
        assert poll(http, fake, "bad.id").status == 400
        assert fake.jobs() == []


def test_bare_shape(http):
    with FakeCometAPI(ready_after=60, shape="bare") as fake:
        running = poll(http, fake, fake.add_job())
        assert running.status == 202
        body = running.json()
        assert body["status"] == "pending" and body["model"] == "grok-imagine-video"
        assert isinstance(body["progress"], int)
        request_id = fake.add_job(ready_after=0, duration=3)
        done = poll(http, fake, request_id)
        assert done.status == 200
        assert done.json() == {
            "model": "grok-imagine-video",
            "usage": {"cost_in_usd_ticks": 500000000},
            "video": {"url": fake.video_url(request_id), "duration": 3, "respect_moderation": True},
            "status": "done",
        }


def test_request_id_only_shape_while_pending(http, fake):
    request_id = fake.add_job(ready_after=60, shape="request_id_only")
    answer = poll(http, fake, request_id)
    assert (answer.status, answer.json()) == (202, {"request_id": request_id})
    fake.finish_now(request_id)
    assert poll(http, fake, request_id).json()["status"] == "done"


# --- creating jobs ------------------------------------------------------------------------------


def test_create_answers_the_fixture_shape_and_records_the_body(http, fake):
    sent = {"prompt": "a dog", "model": "grok-imagine-video-1.5", "duration": 5, "resolution": "720p"}
    answer = call(http, fake, "POST", GEN, sent)
    assert answer.status == 200
    body = answer.json()
    assert set(body) == {"request_id"}  # as create-video.json
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", body["request_id"])
    job = fake.job(body["request_id"])
    assert job.request_body == sent and job.model == "grok-imagine-video-1.5" and job.duration == 5


def test_create_without_duration_reports_the_billed_8_seconds(http, fake):
    request_id = call(http, fake, "POST", GEN, {"prompt": "x"}).json()["request_id"]
    assert poll(http, fake, request_id).json()["data"]["data"]["video"]["duration"] == 8


def test_edits(http, fake):
    answer = call(http, fake, "POST", EDITS, {"prompt": "make it blue", "video": {"url": "https://x/v.mp4"}})
    assert answer.status == 200
    assert poll(http, fake, answer.json()["request_id"]).json()["data"]["status"] == "SUCCESS"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        (GEN, {}, 400),
        (GEN, {"prompt": ""}, 400),
        (GEN, {"prompt": 3}, 400),
        (GEN, {"prompt": "x", "duration": 0}, 400),
        (GEN, {"prompt": "x", "duration": 16}, 400),
        (GEN, {"prompt": "x", "duration": "5"}, 400),
        (GEN, {"prompt": "x", "duration": True}, 400),
        (GEN, {"prompt": "x", "size": "1280x720"}, 422),
        (GEN, {"prompt": "x", "seconds": 5}, 422),
        (GEN, b"{not json", 400),
        (GEN, b"[1, 2]", 400),
        (EDITS, {"prompt": "x"}, 400),
        (EDITS, {"prompt": "x", "video": {"url": ""}}, 400),
    ],
)
def test_create_validation(http, fake, path, body, status):
    answer = call(http, fake, "POST", path, body)
    assert answer.status == status
    error = answer.json()["error"]
    assert error["type"] == "comet_api_error" and error["param"] == ""
    assert fake.jobs() == []


def test_chunked_request_body_is_read(http, fake):
    answer = http.request(
        "POST",
        fake.base_url + GEN,
        body=iter([b'{"prompt": ', b'"x [fail]"}']),
        headers={**AUTH, "Content-Type": "application/json"},
        chunked=True,
    )
    assert answer.status == 200
    assert fake.job(answer.json()["request_id"]).outcome == "failed"


def test_multipart_is_refused(http, fake):
    multipart = {**AUTH, "Content-Type": "multipart/form-data; boundary=b"}
    answer = call(http, fake, "POST", GEN, b"--b\r\n", headers=multipart)
    assert answer.status == 400


@pytest.mark.parametrize(
    ("marker", "outcome"),
    [
        ("[fail]", "failed"),
        ("[moderated]", "moderated"),
        ("[expired]", "expired"),
        ("[no_url]", "no_url"),
        ("[not_found]", "not_found"),
        ("", "done"),
    ],
)
def test_prompt_markers_pick_the_outcome(http, fake, marker, outcome):
    answer = call(http, fake, "POST", GEN, {"prompt": f"a cat {marker}", "duration": 1})
    request_id = answer.json()["request_id"]
    assert fake.job(request_id).outcome == outcome


def test_prompt_markers_set_ready_after_and_video_size(http, fake):
    prompt = "a cat [ready_after=42.5] [video_size=123456]"
    job = fake.job(call(http, fake, "POST", GEN, {"prompt": prompt}).json()["request_id"])
    assert (job.ready_after, job.video_size) == (42.5, 123456)


def test_hostile_job_answers_numbers_no_real_job_has(http, fake):
    request_id = fake.add_job(outcome="done", hostile=True, ready_after=60)
    pending = poll(http, fake, request_id).json()["data"]
    assert pending["finish_time"] == 0  # only the final answer is hostile
    fake.finish_now(request_id)
    data = poll(http, fake, request_id).json()["data"]
    assert data["finish_time"] == 3e11
    assert data["data"]["video"]["duration"] == 1e200
    assert data["data"]["usage"]["cost_in_usd_ticks"] == 1e-200
    assert data["data"]["video"]["url"] == fake.video_url(request_id)
    assert fake.jobs()[0]["hostile"] is True
    created = call(http, fake, "POST", GEN, {"prompt": "a cat [hostile] [ready_after=0]"}).json()["request_id"]
    assert fake.job(created).hostile and not fake.job(request_id).request_body
    assert poll(http, fake, created).json()["data"]["data"]["video"]["duration"] == 1e200
    assert {job["request_id"]: job["prompt"] for job in fake.jobs()}[created] == "a cat [hostile] [ready_after=0]"
    with pytest.raises(ValueError, match="hostile"):
        fake.add_job(hostile="yes")


# --- create rate limit and create log ----------------------------------------------------------


@pytest.mark.parametrize(("per_second", "retry_after"), [(0.5, "2"), (0.25, "4"), (10, "1")])
def test_create_past_the_rate_answers_429_with_retry_after_and_makes_no_job(http, per_second, retry_after):
    with FakeCometAPI(ready_after=0, create_rate=per_second) as fake:
        assert create(http, fake).status == 200
        for path in (GEN, EDITS):  # one bucket for both routes
            refused = create(http, fake, path)
            assert refused.status == 429
            assert refused.headers["Retry-After"] == retry_after
            assert set(refused.json()) == {"error"}
            error = refused.json()["error"]
            assert (error["type"], error["param"], error["code"]) == ("comet_api_error", "", "rate_limit_exceeded")
        assert len(fake.jobs()) == 1 and len(fake.create_log) == 1
        assert fake.rate_limited_creates == 2


def test_create_tokens_refill(http, fake):
    fake.set_create_rate(10)
    assert [create(http, fake).status for _ in range(2)] == [200, 429]
    time.sleep(0.11)
    assert [create(http, fake, EDITS).status for _ in range(2)] == [200, 429]
    assert fake.create_rate == (10.0, 1)


def test_create_burst_is_the_bucket_size(http, fake):
    fake.set_create_rate(10, burst=3)
    assert [create(http, fake).status for _ in range(4)] == [200, 200, 200, 429]
    time.sleep(0.35)  # 3.5 tokens' worth of time: the bucket holds 3
    assert [create(http, fake).status for _ in range(4)] == [200, 200, 200, 429]
    assert (len(fake.create_log), fake.rate_limited_creates) == (6, 2)


def test_concurrent_creates_take_exactly_the_burst(fake):
    fake.set_create_rate(1, burst=5)
    pool = urllib3.PoolManager(maxsize=20, retries=False, timeout=10)
    statuses: list[int] = []
    barrier = threading.Barrier(20)

    def worker():
        barrier.wait()
        statuses.append(create(pool, fake).status)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 5 + [429] * 15
    assert (len(fake.create_log), fake.rate_limited_creates, len(fake.jobs())) == (5, 15, 5)


def test_create_rate_limit_spares_polls(http, fake):
    request_id = fake.add_job()
    fake.set_create_rate(0.5)
    assert create(http, fake).status == 200
    assert create(http, fake).status == 429
    assert [poll(http, fake, request_id).status for _ in range(20)] == [200] * 20
    assert poll(http, fake, "unknown").status == 400


def test_refused_creates_take_no_token(http, fake):
    fake.set_create_rate(0.5)
    assert call(http, fake, "POST", GEN, {}).status == 400
    assert call(http, fake, "POST", GEN, {"prompt": "x", "size": "1280x720"}).status == 422
    assert call(http, fake, "POST", EDITS, {"prompt": "x"}).status == 400
    assert create(http, fake, headers={"Authorization": "Bearer wrong"}).status == 401
    fake.inject("429", path=GEN)
    assert create(http, fake).status == 429  # injected: no token taken, not counted
    assert fake.rate_limited_creates == 0
    assert [create(http, fake).status for _ in range(2)] == [200, 429]
    assert fake.rate_limited_creates == 1


def test_create_log_and_reset(http):
    with FakeCometAPI(ready_after=0, create_rate=0.5) as fake:
        before = time.time()
        first = create(http, fake).json()["request_id"]
        after = time.time()
        assert create(http, fake, EDITS).status == 429
        fake.set_create_rate(None)
        assert fake.create_rate is None
        second = create(http, fake, EDITS).json()["request_id"]
        log = fake.create_log
        assert [(route, rid) for _, route, rid in log] == [("generations", first), ("edits", second)]
        assert before <= log[0][0] <= after <= log[1][0] <= time.time()
        assert fake.rate_limited_creates == 1
        fake.reset()
        assert (fake.create_log, fake.rate_limited_creates, fake.create_rate) == ([], 0, (0.5, 1))
        assert [create(http, fake).status for _ in range(2)] == [200, 429]  # the constructor's limit, full


def test_set_create_rate_rejects_bad_values(fake):
    for per_second, burst in ((0, 1), (-1, 1), (float("inf"), 1), (1, 0), (1, 1.5)):
        with pytest.raises(ValueError):
            fake.set_create_rate(per_second, burst)
    with pytest.raises(ValueError):
        FakeCometAPI(create_rate=0)


# --- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}, {"Authorization": "Basic x"}]
)
def test_api_calls_without_the_right_key_answer_401(http, fake, headers):
    request_id = fake.add_job()
    attempts = (("GET", f"/grok/v1/videos/{request_id}", None), ("POST", GEN, {"prompt": "x"}))
    for method, path, body in attempts:
        answer = call(http, fake, method, path, body, headers=headers)
        assert answer.status == 401
        error = answer.json()["error"]
        assert set(answer.json()) == {"error"}
        assert (error["type"], error["param"], error["code"]) == ("comet_api_error", "", "invalid_api_key")
        assert re.fullmatch(r"invalid token \(request id: \w+\)", error["message"])
    assert len(fake.jobs()) == 1


def test_key_can_be_changed_and_revoked_at_runtime(http, fake):
    request_id = fake.add_job()
    fake.set_api_key(None)
    assert poll(http, fake, request_id).status == 401
    fake.set_api_key("rotated")
    assert poll(http, fake, request_id).status == 401
    assert poll(http, fake, request_id, headers={"Authorization": "Bearer rotated"}).status == 200
    fake.reset()
    assert fake.api_key == KEY


# --- video bytes --------------------------------------------------------------------------------


def test_video_is_the_fixture_and_needs_no_key(http, fake):
    request_id = fake.add_job()
    answer = http.request("GET", fake.video_url(request_id))
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "video/mp4"
    assert answer.data == (FIXTURES / "sample-1s-480p.mp4").read_bytes()
    assert int(answer.headers["Content-Length"]) == 48925
    head = http.request("HEAD", fake.video_url(request_id))
    assert (head.status, head.headers["Content-Length"], head.data) == (200, "48925", b"")
    assert http.request("GET", fake.video_url("unknown")).status == 404


def test_sized_video_has_exact_length_starts_with_ftyp_and_is_deterministic(http, fake):
    size = 3 * MiB + 5
    request_id = fake.add_job(video_size=size)
    first = http.request("GET", fake.video_url(request_id)).data
    second = http.request("GET", fake.video_url(request_id)).data
    assert len(first) == size and first == second
    assert first[4:8] == b"ftyp"
    assert first[:48925] == (FIXTURES / "sample-1s-480p.mp4").read_bytes()
    assert sha256(first).hexdigest() == fake.video_sha256(request_id)
    assert fake.video_length(request_id) == size
    tiny = fake.add_job(video_size=10)
    assert http.request("GET", fake.video_url(tiny)).data == first[:10]


def test_one_gib_video_streams_fast_with_bounded_memory(http, fake):
    size = 1 << 30
    request_id = fake.add_job(video_size=size)
    peak = [rss_bytes()]
    baseline = peak[0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    try:
        answer = http.request("GET", fake.video_url(request_id), preload_content=False)
        assert int(answer.headers["Content-Length"]) == size
        received = 0
        first = b""
        for piece in answer.stream(MiB):
            if not first:
                first = piece
            received += len(piece)
        answer.release_conn()
    finally:
        done.set()
        sampler.join()
    elapsed = time.monotonic() - started
    assert received == size and first[4:8] == b"ftyp"
    assert peak[0] - baseline < 50 * MiB, f"RSS grew by {(peak[0] - baseline) / MiB:.1f} MiB"
    assert elapsed < 20, f"1 GiB took {elapsed:.1f} s"


# --- faults -------------------------------------------------------------------------------------


def _is_json(answer) -> bool:
    try:
        json.loads(answer.data)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    ("fault", "params", "status", "check"),
    [
        (
            "429",
            {"retry_after": 7},
            429,
            lambda a: a.headers["Retry-After"] == "7" and a.json()["error"]["code"] == "rate_limit_exceeded",
        ),
        ("429", {"retry_after": None}, 429, lambda a: "Retry-After" not in a.headers),
        ("400", {}, 400, lambda a: a.json()["code"] == "task_not_exist"),
        ("422", {}, 422, lambda a: a.json()["error"]["type"] == "comet_api_error"),
        ("500", {"code": "invalid_request"}, 500, lambda a: a.json()["error"]["code"] == "invalid_request"),
        ("502", {"body": "html"}, 502, lambda a: a.data.startswith(b"<html>") and not _is_json(a)),
        ("503", {}, 503, _is_json),
        ("504", {"body": "html"}, 504, lambda a: b"504" in a.data),
        ("524", {}, 524, _is_json),
        (
            "malformed",
            {},
            200,
            lambda a: a.data.startswith(b"<html>") and a.headers["Content-Type"].startswith("text/html"),
        ),
        ("empty_202", {}, 202, lambda a: a.data == b"" and a.headers["Content-Length"] == "0"),
        ("401", {}, 401, lambda a: a.json()["error"]["code"] == "invalid_api_key"),
        ("403", {}, 403, lambda a: a.json()["error"]["type"] == "comet_api_error"),
    ],
)
def test_api_fault_replaces_one_answer(http, fake, fault, params, status, check):
    request_id = fake.add_job()
    fake.inject(fault, **params)
    faulty = poll(http, fake, request_id)
    assert faulty.status == status
    assert check(faulty)
    assert poll(http, fake, request_id).status == 200  # consumed


def test_latency_fault_delays_one_answer(http, fake):
    request_id = fake.add_job()
    fake.inject("latency", seconds=0.4)
    started = time.monotonic()
    assert poll(http, fake, request_id).status == 200
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    poll(http, fake, request_id)
    assert time.monotonic() - started < 0.3


def test_timeout_fault_outlasts_the_client_read_timeout(http, fake):
    request_id = fake.add_job()
    fake.inject("timeout", seconds=3)
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        poll(http, fake, request_id, timeout=urllib3.Timeout(connect=2, read=0.3))
    assert time.monotonic() - started < 2
    assert poll(http, fake, request_id).status == 200


def test_stop_is_prompt_while_a_timeout_fault_sleeps(http):
    fake = FakeCometAPI(ready_after=0).start()
    request_id = fake.add_job()
    fake.inject("timeout", seconds=60)
    outcome = {}

    def client():
        try:
            answer = poll(http, fake, request_id, timeout=urllib3.Timeout(connect=2, read=30))
            outcome["status"] = answer.status
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=client)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 2
    thread.join(5)
    assert not thread.is_alive() and "error" in outcome


def test_faults_count_path_and_method_scope(http, fake):
    request_id = fake.add_job()
    fake.inject("503", count=2, path=GEN)
    assert poll(http, fake, request_id).status == 200  # another path: untouched
    assert [call(http, fake, "POST", GEN, {"prompt": "x"}).status for _ in range(3)] == [503, 503, 200]
    fake.inject("500", method="POST")
    assert poll(http, fake, request_id).status == 200
    assert call(http, fake, "POST", GEN, {"prompt": "x"}).status == 500
    fake.inject("502", count=-1)
    assert [poll(http, fake, request_id).status for _ in range(3)] == [502] * 3
    assert len(fake.faults.pending()) == 1
    fake.clear_faults()
    assert poll(http, fake, request_id).status == 200
    fake.inject("503")
    assert http.request("GET", fake.video_url(request_id)).status == 200  # API faults spare videos
    fake.inject("status", code=410)
    assert poll(http, fake, request_id).status == 503  # ... and video faults spare the API


def test_probabilistic_faults_share_one_draw_and_hit_their_share(http, fake):
    request_id = fake.add_job()
    fake.seed_faults(7)
    fake.inject("500", count=-1, probability=0.3, method="GET")
    fake.inject("429", count=-1, probability=0.2, method="GET")
    statuses = [poll(http, fake, request_id).status for _ in range(1000)]
    assert 250 <= statuses.count(500) <= 350 and 150 <= statuses.count(429) <= 250
    assert statuses.count(200) == 1000 - statuses.count(500) - statuses.count(429)
    injected = {f["fault"]: f["count"] for f in fake.faults_injected()}
    assert injected == {"500": statuses.count(500), "429": statuses.count(429)}
    assert [f["probability"] for f in fake.faults.pending()] == [0.3, 0.2]
    # The same seed gives the same sequence (requests made one after another).
    fake.seed_faults(7)
    assert [poll(http, fake, request_id).status for _ in range(200)] == statuses[:200]
    fake.clear_faults()
    assert {f["fault"]: f["count"] for f in fake.faults_injected()}["500"] > statuses.count(500)  # tally stays
    fake.reset()
    assert fake.faults_injected() == []


def test_probabilistic_fault_with_a_count_and_a_deterministic_one_before_it(http, fake):
    request_id = fake.add_job()
    fake.inject("503", count=1)
    fake.inject("502", count=2, probability=1.0)
    assert [poll(http, fake, request_id).status for _ in range(4)] == [503, 502, 502, 200]


def test_first_per_path_considers_only_each_paths_first_request(http, fake):
    ids = [fake.add_job(video_size=200_000) for _ in range(3)]
    fake.inject("disconnect", count=-1, probability=1.0, first_per_path=True, after=1000)
    for request_id in ids:
        answer = http.request("GET", fake.video_url(request_id), preload_content=False)
        with pytest.raises(ProtocolError):
            for _ in answer.stream(1000):
                pass
        assert len(http.request("GET", fake.video_url(request_id)).data) == 200_000  # the second is whole
    assert fake.faults_injected() == [{"fault": "disconnect", "path": "/videos/", "method": None, "count": 3}]
    assert fake.faults.pending()[0]["first_per_path"] is True


def test_probability_and_first_per_path_are_checked(fake):
    for bad in (0, 1.5, -0.1, "half", True):
        with pytest.raises(ValueError, match="probability"):
            fake.inject("500", probability=bad)
    with pytest.raises(ValueError, match="first_per_path"):
        fake.inject("500", first_per_path="yes")
    assert fake.faults.pending() == []


def test_admin_probabilistic_faults_tally_and_seed(http, fake):
    base = fake.base_url
    request_id = fake.add_job()
    assert admin(http, base, "POST", "/_fake/fault_seed", {"seed": 3}).json() == {"seed": 3}
    assert admin(http, base, "POST", "/_fake/fault_seed", {"seed": "x"}).status == 400
    path = f"/grok/v1/videos/{request_id}"
    body = {"fault": "timeout", "count": -1, "probability": 1.0, "seconds": 0.05, "path": path}
    added = admin(http, base, "POST", "/_fake/faults", body).json()["faults"]
    assert added[0]["probability"] == 1.0 and added[0]["seconds"] == 0.05
    assert poll(http, fake, request_id).status == 200  # slept, then answered
    listed = admin(http, base, "GET", "/_fake/faults").json()
    assert listed["injected"] == [{"fault": "timeout", "path": path, "method": None, "count": 1}]
    assert admin(http, base, "POST", "/_fake/faults", {"fault": "500", "probability": 2}).status == 400


@pytest.mark.parametrize(
    ("fault", "body"), [("500", "json"), ("502", "html"), ("503", "json"), ("504", "html"), ("524", "json")]
)
def test_5xx_after_create_leaves_a_pollable_logged_job(http, fake, fault, body):
    fake.inject(fault, path=GEN, body=body)
    assert create(http, fake).status == int(fault)
    assert fake.jobs() == [] and fake.create_log == []  # without after_create: nothing made
    fake.inject(fault, path=GEN, body=body, after_create=True)
    answer = create(http, fake)
    assert answer.status == int(fault) and b"request_id" not in answer.data
    assert _is_json(answer) is (body == "json")
    [(_, route, request_id)] = fake.create_log
    assert route == "generations" and [job["request_id"] for job in fake.jobs()] == [request_id]
    assert poll(http, fake, request_id).json()["data"]["status"] == "SUCCESS"
    assert create(http, fake).status == 200  # consumed


@pytest.mark.parametrize("after_create", [False, True])
def test_drop_closes_the_connection_without_an_answer(http, fake, after_create):
    fake.inject("drop", path=EDITS, after_create=after_create)
    with pytest.raises(ProtocolError):
        create(http, fake, EDITS)
    log = fake.create_log
    assert len(log) == len(fake.jobs()) == (1 if after_create else 0)
    if after_create:
        assert log[0][1] == "edits" and poll(http, fake, log[0][2]).status == 200
    assert create(http, fake, EDITS).status == 200  # consumed
    fake.inject("drop")  # any API call, polls too
    with pytest.raises(ProtocolError):
        poll(http, fake, fake.add_job())


def test_timeout_fault_on_create_still_makes_the_job(http, fake):
    fake.inject("timeout", path=GEN, seconds=0.4)
    started = time.time()
    with pytest.raises(ReadTimeoutError):
        create(http, fake, timeout=urllib3.Timeout(connect=2, read=0.1))
    assert fake.create_log == []  # still sleeping
    deadline = time.monotonic() + 2
    while not fake.create_log and time.monotonic() < deadline:
        time.sleep(0.02)
    [(accepted, _, request_id)] = fake.create_log
    assert accepted >= started + 0.4
    assert poll(http, fake, request_id).status == 200


def test_latency_delays_creates(http, fake):
    fake.inject("latency", path=GEN, seconds=0.3)
    started = time.monotonic()
    assert create(http, fake).status == 200
    assert time.monotonic() - started >= 0.3
    fake.set_latency(0.2)
    started = time.monotonic()
    assert create(http, fake, EDITS).status == 200
    assert time.monotonic() - started >= 0.2
    fake.set_latency(0)
    started = time.monotonic()
    assert create(http, fake).status == 200
    assert time.monotonic() - started < 0.15
    assert len(fake.create_log) == 3


def test_after_create_only_on_5xx_and_drop(fake):
    for fault in ("429", "400", "latency", "timeout", "malformed", "status"):
        with pytest.raises(ValueError, match="after_create"):
            fake.inject(fault, after_create=True)
    with pytest.raises(ValueError, match="after_create"):
        fake.inject("503", after_create="yes")
    fake.inject("429", after_create=False)
    fake.inject("drop", after_create=True)
    assert [f["fault"] for f in fake.faults.pending()] == ["429", "drop"]
    assert fake.faults.pending()[1]["after_create"] is True


def test_inject_rejects_unknown_faults_and_bad_paths(fake):
    with pytest.raises(ValueError, match="unknown fault"):
        fake.inject("teapot")
    with pytest.raises(ValueError):
        fake.inject("500", path="/_fake/jobs")
    with pytest.raises(ValueError):
        fake.inject("500", count=0)
    book = FaultBook()
    book.add("503")
    assert book.take("GET", "/videos/x.mp4") is None
    assert book.take("GET", "/grok/v1/videos/x").name == "503"


@pytest.mark.parametrize("announce", [48925 + 1000, 1000])
def test_video_wrong_length(http, fake, announce):
    request_id = fake.add_job()
    fake.inject("wrong_length", announce=announce)
    answer = http.request("GET", fake.video_url(request_id), preload_content=False)
    assert answer.headers["Content-Length"] == str(announce)
    if announce > 48925:
        with pytest.raises(ProtocolError):
            answer.read()
    else:
        assert len(answer.read()) == announce  # the client cannot tell: a truncated video
    answer.release_conn()
    assert len(http.request("GET", fake.video_url(request_id)).data) == 48925


def test_video_content_type_and_html_body(http, fake):
    request_id = fake.add_job()
    fake.inject("content_type", value="text/html")
    answer = http.request("GET", fake.video_url(request_id))
    assert answer.headers["Content-Type"] == "text/html" and len(answer.data) == 48925
    fake.inject("html_body")
    answer = http.request("GET", fake.video_url(request_id))
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/html")
    assert answer.data.startswith(b"<html>")


def test_video_slow_body(http, fake):
    request_id = fake.add_job(video_size=4 * 65536)
    fake.inject("slow_body", delay=0.1)
    started = time.monotonic()
    assert len(http.request("GET", fake.video_url(request_id)).data) == 4 * 65536
    assert time.monotonic() - started >= 0.3


def test_video_disconnect_mid_stream(http, fake):
    request_id = fake.add_job(video_size=2 * MiB)
    fake.inject("disconnect", after=100_000)
    answer = http.request("GET", fake.video_url(request_id), preload_content=False)
    received = 0
    with pytest.raises(ProtocolError):
        for piece in answer.stream(1000):  # 100_000 is a multiple: every byte sent is seen
            received += len(piece)
    assert received == 100_000
    assert len(http.request("GET", fake.video_url(request_id)).data) == 2 * MiB


def test_video_redirect_and_status(http, fake):
    request_id = fake.add_job()
    fake.inject("redirect", location="https://elsewhere.example/v.mp4")
    answer = http.request("GET", fake.video_url(request_id), redirect=False)
    assert (answer.status, answer.headers["Location"]) == (302, "https://elsewhere.example/v.mp4")
    fake.inject("redirect")  # default: to the same URL, so a follower gets the video next time
    answer = http.request("GET", fake.video_url(request_id), redirect=False)
    assert answer.headers["Location"] == f"/videos/{request_id}.mp4"
    for code in (403, 404, 410, 503):
        fake.inject("status", code=code)
        assert http.request("GET", fake.video_url(request_id)).status == code
    assert http.request("GET", fake.video_url(request_id)).status == 200


# --- concurrency, keep-alive, bookkeeping -------------------------------------------------------


def test_64_concurrent_polls_with_latency_run_in_parallel(fake):
    fake.set_latency(0.2)
    request_id = fake.add_job()
    pool = urllib3.PoolManager(maxsize=64, retries=False, timeout=10)
    statuses: list[int] = []
    barrier = threading.Barrier(64)

    def worker():
        barrier.wait()
        answer = pool.request("GET", f"{fake.base_url}/grok/v1/videos/{request_id}", headers=AUTH)
        statuses.append(answer.status)

    threads = [threading.Thread(target=worker) for _ in range(64)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert statuses == [200] * 64
    assert elapsed < 3.0, f"64 x 0.2 s took {elapsed:.2f} s (serialized would be 12.8 s)"
    assert http_video_unaffected_by_latency(fake, request_id, pool)


def http_video_unaffected_by_latency(fake, request_id, pool) -> bool:
    started = time.monotonic()
    pool.request("GET", fake.video_url(request_id))
    return time.monotonic() - started < 0.2


def test_keep_alive_reuses_one_connection(fake):
    request_id = fake.add_job()
    pool = urllib3.HTTPConnectionPool("127.0.0.1", fake.port, maxsize=1, retries=False)
    for _ in range(10):
        assert pool.request("GET", f"/grok/v1/videos/{request_id}", headers=AUTH).status == 200
        assert pool.request("GET", f"/videos/{request_id}.mp4").status == 200
        assert pool.request("GET", "/grok/v1/videos/unknown", headers=AUTH).status == 400
        assert pool.request("POST", GEN, body=b"{}", headers=AUTH).status == 400
    assert fake.connections_accepted == 1


def test_requests_are_recorded_and_reset_forgets_everything(http, fake):
    request_id = fake.add_job()
    call(http, fake, "POST", GEN, {"prompt": "x"})
    poll(http, fake, request_id)
    http.request("HEAD", fake.video_url(request_id))
    http.request("GET", fake.base_url + "/_fake/jobs")  # admin: not recorded
    assert fake.requests == [
        ("POST", GEN),
        ("GET", f"/grok/v1/videos/{request_id}"),
        ("HEAD", f"/videos/{request_id}.mp4"),
    ]
    assert fake.count("GET", "/grok/v1/") == 1 and fake.count() == 3
    assert fake.job(request_id).polls == 1
    fake.inject("503")
    fake.set_latency(1)
    fake.reset()
    assert fake.requests == [] and fake.jobs() == [] and fake.faults.pending() == []
    started = time.monotonic()
    assert poll(http, fake, request_id).status == 400
    assert time.monotonic() - started < 0.5


def test_unknown_routes_answer_html_404(http, fake):
    answer = call(http, fake, "GET", "/grok/v1/nothing/here")
    assert answer.status == 404 and answer.data.startswith(b"<html>")
    assert call(http, fake, "GET", "/").status == 404
    assert call(http, fake, "DELETE", f"/grok/v1/videos/{fake.add_job()}").status == 405
    assert call(http, fake, "GET", GEN).status == 405


def test_restart_keeps_the_port(http):
    fake = FakeCometAPI(ready_after=0).start()
    try:
        url = fake.base_url
        fake.stop()
        fake.start()
        assert fake.base_url == url
        assert poll(http, fake, fake.add_job()).status == 200
    finally:
        fake.stop()


# --- admin routes and the command line ----------------------------------------------------------


def admin(http, base_url: str, method: str, path: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    return http.request(method, base_url + path, body=data, headers={"Content-Type": "application/json"})


def exercise_admin(http, base_url: str, key: str, *, auto_jobs: bool = False) -> None:
    """Drive a fake purely over HTTP, as the demo and system tests do."""
    auth = {"Authorization": f"Bearer {key}"}
    created = admin(
        http, base_url, "POST", "/_fake/jobs", {"outcome": "done", "ready_after": 60, "video_size": 100_000}
    ).json()
    request_id = created["request_id"]
    assert created["video_url"] == f"{base_url}/videos/{request_id}.mp4"
    listed = {job["request_id"]: job for job in admin(http, base_url, "GET", "/_fake/jobs").json()["jobs"]}
    assert (listed[request_id]["final"], listed[request_id]["status"]) == (False, "NOT_START")
    assert admin(http, base_url, "POST", f"/_fake/jobs/{request_id}/finish").json()["final"] is True
    poll_url = f"{base_url}/grok/v1/videos/{request_id}"
    assert http.request("GET", poll_url, headers=auth).json()["data"]["status"] == "SUCCESS"
    assert len(http.request("GET", created["video_url"]).data) == 100_000

    faults = admin(http, base_url, "POST", "/_fake/faults", {"fault": "429", "count": 2, "retry_after": 3})
    assert faults.json()["faults"][0]["remaining"] == 2
    assert [http.request("GET", poll_url, headers=auth).status for _ in range(3)] == [429, 429, 200]
    assert admin(http, base_url, "POST", "/_fake/faults", {"fault": "nope"}).status == 400
    assert admin(http, base_url, "POST", "/_fake/jobs", {"outcome": "weird"}).status == 400
    assert admin(http, base_url, "POST", "/_fake/jobs/missing/finish").status == 404

    assert admin(http, base_url, "POST", "/_fake/api_key", {"api_key": None}).json() == {"revoked": True}
    assert http.request("GET", poll_url, headers=auth).status == 401
    seen = admin(http, base_url, "GET", "/_fake/requests").json()["requests"]
    assert ["GET", f"/grok/v1/videos/{request_id}"] in seen
    assert admin(http, base_url, "POST", "/_fake/reset").json() == {"ok": True}
    assert admin(http, base_url, "GET", "/_fake/jobs").json() == {"jobs": []}
    # the key is back; the job is gone (or re-created on sight with --auto-jobs)
    assert http.request("GET", poll_url, headers=auth).status == (200 if auto_jobs else 400)


def test_admin_routes_in_process(http, fake):
    exercise_admin(http, fake.base_url, KEY)


def test_admin_create_rate_and_creates(http, fake):
    base = fake.base_url
    set_rate = admin(http, base, "POST", "/_fake/create_rate", {"per_second": 20, "burst": 2})
    assert (set_rate.status, set_rate.json()) == (200, {"per_second": 20.0, "burst": 2})
    assert fake.create_rate == (20.0, 2)
    statuses = [create(http, fake, path).status for path in (GEN, EDITS, GEN)]
    assert statuses == [200, 200, 429]
    creates = admin(http, base, "GET", "/_fake/creates").json()
    assert creates["rate_limited"] == 1
    assert [[route, rid] for _, route, rid in creates["accepted"]] == [[r, rid] for _, r, rid in fake.create_log]
    assert [route for _, route, _ in creates["accepted"]] == ["generations", "edits"]
    assert all(isinstance(t, float) for t, _, _ in creates["accepted"])
    off = admin(http, base, "POST", "/_fake/create_rate", {"per_second": None})
    assert off.json() == {"per_second": None, "burst": None} and fake.create_rate is None
    assert [create(http, fake).status for _ in range(5)] == [200] * 5
    for bad in ({"per_second": 0}, {"per_second": 1, "burst": 0}, {"per_second": "fast"}, {"rate": 1}):
        assert admin(http, base, "POST", "/_fake/create_rate", bad).status == 400
    assert fake.create_rate is None
    faults = admin(http, base, "POST", "/_fake/faults", {"fault": "drop", "path": GEN, "after_create": True})
    assert faults.json()["faults"] == [
        {"fault": "drop", "remaining": 1, "path": GEN, "method": None, "after_create": True}
    ]
    assert admin(http, base, "POST", "/_fake/faults", {"fault": "429", "after_create": True}).status == 400
    admin(http, base, "POST", "/_fake/reset")
    assert admin(http, base, "GET", "/_fake/creates").json() == {"accepted": [], "rate_limited": 0}


def _start_cli(*args: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "local.fake_cometapi", "--port", "0", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(10)
    match = re.fullmatch(r"fake CometAPI listening on (http://127\.0\.0\.1:\d+)\n", line[0] if line else "")
    if match is None:
        proc.kill()
        raise AssertionError(f"unexpected first line {line!r}: {proc.stderr.read()}")
    return proc, match.group(1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_until_signalled(http, signum):
    proc, base_url = _start_cli(
        "--auto-jobs", "--ready-after", "0", "--latency", "0.05", env={"FAKE_COMETAPI_KEY": "cli-key"}
    )
    try:
        auth = {"Authorization": "Bearer cli-key"}
        answer = http.request("GET", f"{base_url}/grok/v1/videos/job-fail-1", headers=auth)
        assert answer.json()["data"]["status"] == "FAILURE"
        exercise_admin(http, base_url, "cli-key", auto_jobs=True)
    finally:
        http.clear()
        os.kill(proc.pid, signum)
        try:
            assert proc.wait(timeout=5) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.stderr.read() == ""  # quiet by default
    proc.stdout.close()
    proc.stderr.close()


def test_cli_flags_shape_key_and_verbose(http):
    proc, base_url = _start_cli("--shape", "bare", "--api-key", "k2", "--ready-after", "60", "--auto-jobs", "--verbose")
    try:
        answer = http.request("GET", f"{base_url}/grok/v1/videos/abc", headers={"Authorization": "Bearer k2"})
        assert answer.status == 202 and answer.json()["status"] == "pending"
    finally:
        http.clear()
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    log = proc.stderr.read()
    assert "/grok/v1/videos/abc" in log and "k2" not in log
    proc.stdout.close()
    proc.stderr.close()


def test_cli_create_rate_and_burst(http):
    proc, base_url = _start_cli("--create-rate", "0.5", "--create-burst", "2")
    try:
        url, body = f"{base_url}{GEN}", json.dumps({"prompt": "a cat"}).encode()
        answers = [http.request("POST", url, body=body, headers=AUTH) for _ in range(3)]
        assert [a.status for a in answers] == [200, 200, 429]
        assert answers[2].headers["Retry-After"] == "2"
        creates = admin(http, base_url, "GET", "/_fake/creates").json()
        assert (len(creates["accepted"]), creates["rate_limited"]) == (2, 1)
    finally:
        http.clear()
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    proc.stdout.close()
    proc.stderr.close()


def test_the_fake_records_when_a_poll_first_saw_the_outcome(http, fake) -> None:
    """``final_seen_after``: seconds from the job's finish to the first poll that got it (the
    detection lag a benchmark reports); None until such a poll."""
    rid = fake.add_job(outcome="done", ready_after=0.3)
    poll(http, fake, rid)  # still running
    assert fake.jobs()[0]["final_seen_after"] is None
    time.sleep(0.5)
    poll(http, fake, rid)
    poll(http, fake, rid)  # a later poll does not move it
    lag = fake.jobs()[0]["final_seen_after"]
    assert 0.15 <= lag <= 0.5
