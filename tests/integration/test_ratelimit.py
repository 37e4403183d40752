"""SharedRateLimiter over one item of the (moto) jobs table: slots, pauses, sharing, threads."""

from __future__ import annotations

import itertools
import threading
import time
from decimal import Decimal
from typing import Any

import boto3
import pytest

from grokvideo.errors import ValidationError
from grokvideo.ratelimit import SharedRateLimiter, Slot
from grokvideo.validation import validate_request_id
from tests.integration.conftest import TABLE
from tests.virtual_clock import VirtualClock

START = 1_700_000_000.0  # a whole number of milliseconds, so waits come out exact


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def limiter(table: Any, clock: VirtualClock) -> SharedRateLimiter:
    return SharedRateLimiter(table, "submit", per_second=2, headroom=1.0, clock=clock)


def items(table: Any) -> list[dict[str, Any]]:
    return table.scan(ConsistentRead=True)["Items"]


def next_slot_ms(table: Any) -> Decimal | None:
    found = items(table)
    assert len(found) <= 1, found
    return found[0]["next_slot_ms"] if found else None


def test_consecutive_takes_are_spaced_by_the_interval(limiter: SharedRateLimiter) -> None:
    assert limiter.interval_ms == 500
    assert [limiter.take(max_wait=10) for _ in range(6)] == [Slot(True, w) for w in (0, 0.5, 1.0, 1.5, 2.0, 2.5)]


def test_a_slot_exactly_at_max_wait_is_taken(limiter: SharedRateLimiter) -> None:
    assert [limiter.take(max_wait=1.0) for _ in range(3)] == [Slot(True, 0), Slot(True, 0.5), Slot(True, 1.0)]


def test_a_slot_beyond_max_wait_is_not_taken_and_writes_nothing(table: Any, limiter: SharedRateLimiter) -> None:
    for _ in range(3):
        assert limiter.take(max_wait=1.0).taken
    before = items(table)
    assert limiter.take(max_wait=1.0) == Slot(False, 1.5)
    assert limiter.take(max_wait=0) == Slot(False, 1.5)
    assert items(table) == before
    assert limiter.take(max_wait=10) == Slot(True, 1.5)  # the next caller still gets that slot


def test_max_wait_zero_takes_only_a_free_slot(limiter: SharedRateLimiter, clock: VirtualClock) -> None:
    assert limiter.take(max_wait=0) == Slot(True, 0)
    assert limiter.take(max_wait=0) == Slot(False, 0.5)
    clock.advance(0.5)
    assert limiter.take(max_wait=0) == Slot(True, 0)


def test_an_idle_gap_resets_the_wait(limiter: SharedRateLimiter, clock: VirtualClock) -> None:
    for _ in range(4):
        limiter.take(max_wait=10)  # backlog: the next slot is 2 s away
    clock.advance(10)
    assert limiter.take(max_wait=10) == Slot(True, 0)
    assert limiter.take(max_wait=10) == Slot(True, 0.5)


def test_the_backlog_drains_with_time(limiter: SharedRateLimiter, clock: VirtualClock) -> None:
    for _ in range(4):
        limiter.take(max_wait=10)
    clock.advance(0.75)
    assert limiter.take(max_wait=10) == Slot(True, 1.25)


def test_pause_pushes_the_next_slot(table: Any, limiter: SharedRateLimiter, clock: VirtualClock) -> None:
    limiter.take(max_wait=10)
    limiter.pause(5)
    assert next_slot_ms(table) == int(START * 1000) + 5000
    slot = limiter.take(max_wait=10)
    assert slot.taken and slot.wait >= 5
    assert slot == Slot(True, 5.0)
    assert limiter.take(max_wait=10) == Slot(True, 5.5)
    clock.advance(1)
    assert limiter.take(max_wait=3) == Slot(False, 5.0)  # still paused: 6 s from the start


def test_pause_before_any_take(table: Any, limiter: SharedRateLimiter) -> None:
    limiter.pause(5)
    assert limiter.take(max_wait=10) == Slot(True, 5.0)


def test_a_pause_shorter_than_the_backlog_changes_nothing(table: Any, limiter: SharedRateLimiter) -> None:
    for _ in range(7):
        limiter.take(max_wait=10)  # the next slot is 3.5 s away
    before = next_slot_ms(table)
    limiter.pause(1)
    limiter.pause(3.5)  # equal: nothing to push either
    assert next_slot_ms(table) == before
    assert limiter.take(max_wait=10) == Slot(True, 3.5)


def test_a_pause_longer_than_the_backlog_wins(limiter: SharedRateLimiter) -> None:
    for _ in range(7):
        limiter.take(max_wait=10)
    limiter.pause(4)
    assert limiter.take(max_wait=10) == Slot(True, 4.0)


def test_two_invocations_share_the_slots(table: Any, clock: VirtualClock) -> None:
    first = SharedRateLimiter(table, "submit", per_second=2, headroom=1.0, clock=clock)
    second = SharedRateLimiter(
        boto3.resource("dynamodb").Table(TABLE), "submit", per_second=2, headroom=1.0, clock=clock
    )
    assert first.take(max_wait=10) == Slot(True, 0)
    assert second.take(max_wait=10) == Slot(True, 0.5)
    assert first.take(max_wait=10) == Slot(True, 1.0)
    second.pause(5)
    assert first.take(max_wait=10) == Slot(True, 5.0)
    assert len(items(table)) == 1


def test_limiters_with_other_names_do_not_share(table: Any, clock: VirtualClock) -> None:
    submit = SharedRateLimiter(table, "submit", per_second=2, headroom=1.0, clock=clock)
    other = SharedRateLimiter(table, "other", per_second=2, headroom=1.0, clock=clock)
    assert submit.take(max_wait=10) == Slot(True, 0)
    assert other.take(max_wait=10) == Slot(True, 0)
    assert len(items(table)) == 2


def test_the_item_key_can_never_be_a_job(table: Any, limiter: SharedRateLimiter) -> None:
    limiter.take(max_wait=10)
    (item,) = items(table)
    with pytest.raises(ValidationError):
        validate_request_id(item["request_id"])
    assert set(item) == {"request_id", "next_slot_ms"}  # not in the due index, no state: no sweep sees it


@pytest.mark.parametrize("per_second", [0, -1])
def test_rate_must_be_positive(table: Any, per_second: float) -> None:
    with pytest.raises(ValueError, match="per_second"):
        SharedRateLimiter(table, "submit", per_second=per_second, headroom=1.0)


@pytest.mark.parametrize(("per_second", "interval_ms"), [(1, 1000), (2, 500), (3, 333), (50, 20), (5000, 1)])
def test_interval(table: Any, per_second: float, interval_ms: int) -> None:
    assert SharedRateLimiter(table, "submit", per_second=per_second, headroom=1.0).interval_ms == interval_ms


def test_threads_never_share_or_crowd_a_slot(table: Any) -> None:
    """8 concurrent callers, 5 slots each, real clock: every slot start is distinct and >= 20 ms apart."""
    threads_n, takes_n, per_second = 8, 5, 50
    seen = threading.local()

    def recording_clock() -> float:
        seen.now = time.time()  # the clock reading take() used for its last try
        return seen.now

    sessions = [boto3.session.Session() for _ in range(threads_n)]
    limiters = [
        SharedRateLimiter(
            s.resource("dynamodb").Table(TABLE), "submit", per_second=per_second, headroom=1.0, clock=recording_clock
        )
        for s in sessions
    ]
    starts: list[int] = []
    lost: list[int] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads_n)

    def run(limiter: SharedRateLimiter) -> None:
        try:
            barrier.wait()
            taken = 0
            for _ in range(200):
                slot = limiter.take(max_wait=30)
                if not slot.taken:  # lost every conditional write to the others: come back
                    with lock:
                        lost.append(1)
                    continue
                start = int(seen.now * 1000) + round(slot.wait * 1000)
                with lock:
                    starts.append(start)
                taken += 1
                if taken == takes_n:
                    return
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=run, args=(lim,)) for lim in limiters]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not failures, failures
    assert len(starts) == threads_n * takes_n, f"{len(starts)} slots taken ({len(lost)} lost rounds)"
    ordered = sorted(starts)
    assert len(set(ordered)) == len(ordered)
    gaps = [b - a for a, b in itertools.pairwise(ordered)]
    assert min(gaps) >= 1000 // per_second, gaps
    assert next_slot_ms(table) == ordered[-1] + 1000 // per_second


def test_slots_leave_headroom_below_the_providers_rate(table: Any) -> None:
    """Creates exactly 1/rate apart meet a provider allowing exactly the rate as 429s (any jitter
    between the two clocks): slots are 5 % wider by default."""
    assert SharedRateLimiter(table, "submit", per_second=2).interval_ms == 525
    assert SharedRateLimiter(table, "submit", per_second=1).interval_ms == 1050


def test_a_slot_says_when_it_starts(table: Any) -> None:
    clock = VirtualClock(1_700_000_000.0)
    limiter = SharedRateLimiter(table, "submit", per_second=2, headroom=1.0, clock=clock)
    assert limiter.take(max_wait=10).starts_at == 1_700_000_000.0
    assert limiter.take(max_wait=10).starts_at == 1_700_000_000.5
