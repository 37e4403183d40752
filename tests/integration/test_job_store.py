"""Job store against moto: registration, the sparse due index, claims and conditional transitions."""

from __future__ import annotations

from typing import Any

from grokvideo.jobs import COPY_WATCHDOG, DueJob, JobStore
from grokvideo.models import JobState

NOW = 1_800_000_000


def test_register_is_idempotent_and_keeps_the_first_registration(store: JobStore) -> None:
    assert store.register("job-1", now=NOW, client_ref="a", metadata={"k": 1}) is True
    assert store.register("job-1", now=NOW + 50, client_ref="b") is False
    job = store.get("job-1")
    assert job is not None
    assert (job.state, job.client_ref, job.metadata, job.registered_at) == (JobState.PENDING, "a", {"k": 1}, NOW)
    assert job.deadline_at == NOW + 3600


def test_due_reads_only_jobs_whose_time_has_come(store: JobStore) -> None:
    for i in range(30):
        store.register(f"now-{i}", now=NOW)
    for i in range(20):
        store.register(f"later-{i}", now=NOW + 1000)
    store.items_read = 0
    due = [job.request_id for page in store.due(NOW + 1, page_size=7) for job in page]
    assert sorted(due) == sorted(f"now-{i}" for i in range(30))
    assert store.items_read == 30  # the later jobs were never read
    assert store.next_due_at() == NOW  # first_poll_delay is 0 in these tests


def test_a_claimed_job_cannot_be_claimed_again_until_its_lease_ends(store: JobStore) -> None:
    store.register("job-1", now=NOW)
    assert store.claim("job-1", owner="a", now=NOW, lease_seconds=60) is not None
    assert store.claim("job-1", owner="b", now=NOW + 59, lease_seconds=60) is None
    again = store.claim("job-1", owner="b", now=NOW + 60, lease_seconds=60)
    assert again is not None and again.lease_owner == "b"


def test_transition_is_conditional_on_the_state_it_leaves(store: JobStore) -> None:
    store.register("job-1", now=NOW)
    job = store.claim("job-1", owner="a", now=NOW, lease_seconds=60)
    assert job is not None
    moved = store.transition(
        job,
        to_state=JobState.SUCCEEDED,
        outbox="Video Generation Succeeded",
        now=NOW,
        relay_after=30,
        owner="a",
        changes={"video_url": "https://vidgen.x.ai/v.mp4", "cost_usd": 0.05, "duration": 1},
    )
    assert moved is not None
    assert (moved.state, moved.outbox, moved.next_poll_at, moved.cost_usd) == (
        JobState.SUCCEEDED,
        "Video Generation Succeeded",
        NOW + 30,
        0.05,
    )
    assert moved.lease_owner is None
    # A second poller holding a stale copy (state PENDING) loses.
    assert (
        store.transition(job, to_state=JobState.FAILED, outbox="Video Generation Failed", now=NOW, relay_after=30)
        is None
    )
    assert store.get("job-1").state is JobState.SUCCEEDED  # type: ignore[union-attr]


def test_clear_outbox_takes_a_finished_job_out_of_the_index_and_keeps_a_succeeded_one_for_the_watchdog(
    store: JobStore, table: Any
) -> None:
    store.register("ok", now=NOW)
    store.register("bad", now=NOW)
    ok = store.transition(
        store.get("ok"),
        to_state=JobState.SUCCEEDED,
        outbox="Video Generation Succeeded",  # type: ignore[arg-type]
        now=NOW,
        relay_after=0,
    )
    bad = store.transition(
        store.get("bad"),
        to_state=JobState.FAILED,
        outbox="Video Generation Failed",  # type: ignore[arg-type]
        now=NOW,
        relay_after=0,
    )
    assert ok is not None and bad is not None
    store.clear_outbox(ok, now=NOW)
    store.clear_outbox(bad, now=NOW)
    raw_ok = table.get_item(Key={"request_id": "ok"})["Item"]
    raw_bad = table.get_item(Key={"request_id": "bad"})["Item"]
    assert not {"due_shard", "next_poll_at", "outbox", "lease_owner"} & raw_bad.keys()
    # Succeeded: the copy is the copier's now, but the job stays findable until the copy watchdog.
    assert not {"outbox", "lease_owner"} & raw_ok.keys()
    assert int(raw_ok["next_poll_at"]) == NOW + COPY_WATCHDOG
    assert "expires_at" not in raw_ok  # still to be archived
    assert int(raw_bad["expires_at"]) == NOW + 30 * 86_400
    assert [j for page in store.due(NOW + COPY_WATCHDOG - 1) for j in page] == []
    assert [j.request_id for page in store.due(NOW + COPY_WATCHDOG) for j in page] == ["ok"]


def due_now(store: JobStore, request_id: str, now: int) -> DueJob:
    """The job as the due index shows it at ``now`` (it must be due)."""
    [due] = [d for page in store.due(now) for d in page if d.request_id == request_id]
    return due


def test_the_due_index_gives_what_a_claim_needs(store: JobStore) -> None:
    store.register("job-1", now=NOW)
    assert due_now(store, "job-1", NOW) == DueJob("job-1", JobState.PENDING, next_poll_at=NOW, attempts=0)


def test_a_poll_claim_is_the_reschedule_and_lasts_until_the_next_poll(store: JobStore) -> None:
    store.register("job-1", now=NOW)
    seen = due_now(store, "job-1", NOW)
    claimed = store.claim_poll(seen, owner="a", now=NOW, next_poll_at=NOW + 7)
    assert claimed is not None
    assert (claimed.attempts, claimed.next_poll_at, claimed.lease_owner, claimed.lease_until) == (1, NOW + 7, "a", None)
    # Nobody else polls it before then, whatever the index showed them.
    assert store.claim_poll(seen, owner="b", now=NOW + 6, next_poll_at=NOW + 20) is None
    assert [d for page in store.due(NOW + 6) for d in page] == []
    # Its claimant died without another write: the job is due when its claim ends, as polled.
    again = due_now(store, "job-1", NOW + 7)
    assert again.attempts == 1
    taken = store.claim_poll(again, owner="b", now=NOW + 7, next_poll_at=NOW + 30)
    assert taken is not None and (taken.attempts, taken.lease_owner) == (2, "b")


def test_a_claim_on_a_stale_index_entry_is_refused(store: JobStore) -> None:
    store.register("job-1", now=NOW)
    stale = due_now(store, "job-1", NOW)
    assert store.claim_poll(stale, owner="a", now=NOW, next_poll_at=NOW + 5) is not None
    # Due again, but the entry read before that claim counts one attempt too few.
    assert store.claim_poll(stale, owner="b", now=NOW + 5, next_poll_at=NOW + 20) is None
    assert store.claim_poll(due_now(store, "job-1", NOW + 5), owner="b", now=NOW + 5, next_poll_at=NOW + 20)


def test_a_pending_job_without_a_count_can_be_claimed(store: JobStore, table: Any) -> None:
    store.register("job-1", now=NOW)
    table.update_item(Key={"request_id": "job-1"}, UpdateExpression="REMOVE attempts")
    due = due_now(store, "job-1", NOW)
    assert due.attempts is None
    claimed = store.claim_poll(due, owner="a", now=NOW, next_poll_at=NOW + 5)
    assert claimed is not None and claimed.attempts == 1


def test_a_poll_that_outlasts_its_claim_cannot_move_the_job(store: JobStore) -> None:
    store.register("job-1", now=NOW)
    slow = store.claim_poll(due_now(store, "job-1", NOW), owner="a", now=NOW, next_poll_at=NOW + 5)
    fresh = store.claim_poll(due_now(store, "job-1", NOW + 5), owner="b", now=NOW + 5, next_poll_at=NOW + 15)
    assert slow is not None and fresh is not None
    # The slow poll's answer comes in after the second claim: none of its writes goes through.
    assert store.reschedule(slow, owner="a", progress=40) is None
    assert store.release(slow, owner="a", at=NOW + 6) is None
    done = {"to_state": JobState.SUCCEEDED, "outbox": "Video Generation Succeeded", "now": NOW + 6, "relay_after": 30}
    assert store.transition(slow, owner="a", **done) is None  # type: ignore[arg-type]
    assert store.transition(fresh, owner="b", **done) is not None  # type: ignore[arg-type]


def test_reschedule_writes_what_the_answer_changed_under_the_claim(store: JobStore) -> None:
    store.register("job-1", now=NOW)
    job = store.claim_poll(due_now(store, "job-1", NOW), owner="a", now=NOW, next_poll_at=NOW + 9)
    assert job is not None
    assert store.reschedule(job, owner="intruder", progress=40) is None
    assert store.reschedule(job, owner="a") is job  # nothing to write: no write
    moved = store.reschedule(job, owner="a", progress=40)
    assert moved is not None
    assert (moved.next_poll_at, moved.attempts, moved.progress, moved.lease_owner) == (NOW + 9, 1, 40, "a")


def test_release_gives_the_claim_back_unpolled(store: JobStore) -> None:
    store.register("job-1", now=NOW)
    job = store.claim_poll(due_now(store, "job-1", NOW), owner="a", now=NOW, next_poll_at=NOW + 9)
    assert job is not None
    back = store.release(job, owner="a", at=NOW + 2)
    assert back is not None
    assert (back.next_poll_at, back.attempts, back.lease_owner) == (NOW + 2, 0, None)
    assert due_now(store, "job-1", NOW + 2).attempts == 0
