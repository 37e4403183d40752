"""``grokvideo status`` and ``list`` against the jobs table in moto."""

from __future__ import annotations

from typing import Any

from grokvideo.jobs import JobStore
from grokvideo.models import JobState

NOW = 1_800_000_000


def _stored(store: JobStore, rid: str, *, at: int, ref: str | None = None) -> None:
    item = store.new_item(
        rid,
        JobState.STORED,
        now=at,
        client_ref=ref,
        metadata={"team": "ads"},
        bucket="grokvideo-videos",
        key=f"grokvideo/{rid}.mp4",
        size_bytes=1_591_000,
        sha256="ab" * 32,
        stored_at=at + 90,
        completed_at=at + 80,
        duration=6.0,
        cost_usd=0.05,
        model="grok-imagine-video",
    )
    assert store.put_new(item)


def _failed(store: JobStore, rid: str, *, at: int) -> None:
    assert store.put_new(
        store.new_item(
            rid,
            JobState.FAILED,
            now=at,
            client_ref=None,
            metadata=None,
            reason="MODERATED",
            message="blocked by moderation",
        )
    )


def test_status_shows_state_times_cost_and_location(cli: Any, store: JobStore) -> None:
    _stored(store, "job-1", at=NOW, ref="ad-7")
    result = cli("status", "job-1")
    assert result.code == 0, result.err
    assert "STORED" in result.out
    assert "s3://grokvideo-videos/grokvideo/job-1.mp4 (1.5 MiB)" in result.out
    assert "$0.0500" in result.out and "ad-7" in result.out


def test_status_json_for_scripts(cli: Any, store: JobStore) -> None:
    _stored(store, "job-1", at=NOW)
    (record,) = cli("status", "job-1", "--json").json()
    assert record["state"] == "STORED"
    assert record["s3_uri"] == "s3://grokvideo-videos/grokvideo/job-1.mp4"
    assert record["sha256"] == "ab" * 32 and record["cost_usd"] == 0.05
    assert record["registered_at"] == "2027-01-15T08:00:00Z"


def test_status_finds_jobs_by_client_ref(cli: Any, store: JobStore) -> None:
    _stored(store, "job-1", at=NOW, ref="campaign-9")
    _stored(store, "job-2", at=NOW + 5, ref="campaign-9")
    # job-2's submission: SUBMITTED records stand aside for their job; one still submitting does not
    store.put_new(
        store.new_item(
            "submission-2",
            JobState.SUBMITTED,
            now=NOW + 4,
            client_ref="campaign-9",
            metadata=None,
            job_request_id="job-2",
        )
    )
    store.put_new(
        store.new_item("submission-3", JobState.RESERVED, now=NOW + 6, client_ref="campaign-9", metadata=None)
    )
    records = cli("status", "campaign-9", "--json").json()
    assert [r["request_id"] for r in records] == ["submission-3", "job-2", "job-1"]


def test_status_of_an_unknown_id_says_so_and_exits_4(cli: Any, store: JobStore) -> None:
    result = cli("status", "nope")
    assert result.code == 4
    assert "no job, submission or client_ref 'nope'" in result.err


def test_list_is_newest_first_across_states(cli: Any, store: JobStore) -> None:
    _stored(store, "old", at=NOW)
    _failed(store, "mid", at=NOW + 10)
    store.register("new", now=NOW + 20)
    rows = cli("list", "--json").json()
    assert [r["request_id"] for r in rows] == ["new", "mid", "old"]
    assert rows[1]["reason"] == "MODERATED"
    table = cli("list").out.splitlines()
    assert table[0].split() == ["REQUEST_ID", "STATE", "REGISTERED", "REF", "VIDEO", "/", "REASON"]
    assert table[1].startswith("new ") and "PENDING" in table[1]


def test_list_filters_by_state_since_and_limit(cli: Any, store: JobStore) -> None:
    for i in range(10):
        _stored(store, f"s{i}", at=NOW + i)
    _failed(store, "f", at=NOW + 100)
    cli.clock = lambda: NOW + 105
    assert [r["request_id"] for r in cli("list", "--state", "stored", "--limit", "3", "--json").json()] == [
        "s9",
        "s8",
        "s7",
    ]
    assert [r["request_id"] for r in cli("list", "--since", "100s", "--json").json()] == [
        "f",
        "s9",
        "s8",
        "s7",
        "s6",
        "s5",
    ]
    assert cli("list", "--state", "PENDING").err.strip() == "no jobs in PENDING"


def test_list_reads_only_what_it_prints(cli: Any, store: JobStore, deployment: Any) -> None:
    for i in range(300):
        _stored(store, f"s{i:03d}", at=NOW + i)
    before = deployment.store.items_read
    rows = cli("list", "--state", "STORED", "--limit", "7", "--json").json()
    assert len(rows) == 7
    assert deployment.store.items_read - before == 7


def test_a_bad_since_is_a_usage_error(cli: Any, store: JobStore) -> None:
    result = cli("list", "--since", "yesterday")
    assert result.code == 2
