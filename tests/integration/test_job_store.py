"""Job store against moto: registration, the sparse due index, claims and conditional transitions."""

from __future__ import annotations

from typing import Any

from grokvideo.jobs import COPY_WATCHDOG, JobStore
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


def test_reschedule_requires_the_lease(store: JobStore) -> None:
    store.register("job-1", now=NOW)
    job = store.claim("job-1", owner="a", now=NOW, lease_seconds=60)
    assert job is not None
    assert store.reschedule(job, owner="intruder", next_poll_at=NOW + 5) is None
    moved = store.reschedule(job, owner="a", next_poll_at=NOW + 5, attempts=1, progress=40)
    assert moved is not None
    assert (moved.next_poll_at, moved.attempts, moved.progress, moved.lease_owner) == (NOW + 5, 1, 40, None)
