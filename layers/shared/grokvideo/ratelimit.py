"""A rate shared by every process that uses one DynamoDB item: the provider's create limit, and
the pollers' budget of status calls (taken a batch of slots per write).

The item keeps the next free slot (GCRA's "theoretical arrival time", epoch milliseconds). A
caller takes the slot with a write conditional on the value it read, then waits until the slot
starts, so creates leave evenly spaced across all concurrent invocations, with no burst. Slots
are ``HEADROOM`` (5 %) wider than ``1 / per_second``: measured against a provider that allows
exactly the rate, one burst token, a few milliseconds of jitter between our clock and its own
turned a quarter of the creates into 429s. A 429 from the provider pushes the next slot past its
``Retry-After``, which pauses every caller.

Use (needs AWS or the provider, so not a doctest)::

    limiter = SharedRateLimiter(table, "submit", per_second=1)
    slot = limiter.take(max_wait=20)
    slot.taken, round(slot.wait, 1)
    # -> (True, 0.7)
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from grokvideo.jobs import is_conditional_failure

LIMITER_PREFIX = "#limiter#"  # '#' is never in a request id: no job can share the item's key
MAX_TRIES = 8  # conditional writes lost to other callers before giving up for now
HEADROOM = 1.05  # slots this much wider than 1 / per_second (see above)


@dataclass(frozen=True, slots=True)
class Slot:
    """``taken``: the caller owns a slot starting in ``wait`` seconds (at ``starts_at``, epoch
    seconds). Not taken: the next slot is ``wait`` seconds away, more than the caller would wait
    (nothing was written)."""

    taken: bool
    wait: float
    starts_at: float = field(default=0.0, compare=False)


class SharedRateLimiter:
    def __init__(
        self,
        table: Any,
        name: str,
        *,
        per_second: float,
        headroom: float = HEADROOM,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be > 0")
        self._table = table
        self._key = {"request_id": LIMITER_PREFIX + name}
        self.interval_ms = max(1, round(1000 * headroom / per_second))
        self.clock = clock

    def take(self, *, max_wait: float, count: int = 1) -> Slot:
        """Take the next ``count`` free slots (one write) if the first starts within ``max_wait``
        seconds; they follow each other ``interval_ms`` apart from ``starts_at``."""
        for _ in range(MAX_TRIES):
            seen = self._next_slot_ms()
            now_ms = int(self.clock() * 1000)
            start = max(seen or 0, now_ms)
            wait = (start - now_ms) / 1000
            if wait > max_wait:
                return Slot(False, wait)
            if self._move(seen, start + count * self.interval_ms):
                return Slot(True, wait, starts_at=start / 1000)
        return Slot(False, self.interval_ms / 1000)  # heavy contention: come back shortly

    def pause(self, seconds: float) -> None:
        """No slot starts before ``seconds`` from now (the provider said 429 / Retry-After)."""
        until = int((self.clock() + seconds) * 1000)
        try:
            self._table.update_item(
                Key=self._key,
                UpdateExpression="SET next_slot_ms = :until",
                ConditionExpression="attribute_not_exists(next_slot_ms) OR next_slot_ms < :until",
                ExpressionAttributeValues={":until": until},
            )
        except ClientError as err:
            if not is_conditional_failure(err):
                raise

    def _next_slot_ms(self) -> int | None:
        item = self._table.get_item(Key=self._key, ConsistentRead=True).get("Item")
        return int(item["next_slot_ms"]) if item and "next_slot_ms" in item else None

    def _move(self, seen: int | None, to: int) -> bool:
        """Set the next slot to ``to`` if nobody moved it since we read ``seen``."""
        condition = "attribute_not_exists(next_slot_ms)" if seen is None else "next_slot_ms = :seen"
        values: dict[str, Any] = {":to": to}
        if seen is not None:
            values[":seen"] = seen
        try:
            self._table.update_item(
                Key=self._key,
                UpdateExpression="SET next_slot_ms = :to",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as err:
            if is_conditional_failure(err):
                return False
            raise
        return True


class PollBudget:
    """One poller's share of the provider's status-call rate, shared by every poller.

    It takes ``batch`` slots of the shared limiter with one write and hands them out one per poll
    (``next_slot``: when that poll may start; the caller waits on its own clock). The rate holds
    across every concurrent sweep for one write per ``batch`` polls. A 429 pauses the shared rate
    (every poller waits) and drops the slots in hand.

    >>> class Limiter:  # a stand-in for the shared item: the next free slot, in seconds
    ...     interval_ms, next_at = 100, 0.0
    ...     def clock(self): return 0.0
    ...     def take(self, *, max_wait, count):
    ...         start, self.next_at = self.next_at, self.next_at + count * 0.1
    ...         return Slot(True, start, starts_at=start)
    ...     def pause(self, seconds): self.next_at += seconds
    >>> budget = PollBudget(Limiter(), batch=3)
    >>> [round(budget.next_slot(give_up_at=10), 1) for _ in range(4)]
    [0.0, 0.1, 0.2, 0.3]
    """

    def __init__(self, limiter: Any, *, batch: int) -> None:
        self.limiter, self.batch = limiter, max(1, batch)
        self._slots: deque[float] = deque()
        self._lock = threading.Lock()

    def next_slot(self, *, give_up_at: float) -> float | None:
        """When this poll may start (epoch seconds); None when no slot starts before ``give_up_at``."""
        with self._lock:
            if not self._slots:
                slot = self.limiter.take(max_wait=max(0.0, give_up_at - self.limiter.clock()), count=self.batch)
                if not slot.taken:
                    return None
                step = self.limiter.interval_ms / 1000
                self._slots.extend(slot.starts_at + i * step for i in range(self.batch))
            return self._slots.popleft()

    def pause(self, seconds: float) -> None:
        """The provider said 429: every poller waits ``seconds``; the slots in hand are void."""
        with self._lock:
            self._slots.clear()
        self.limiter.pause(seconds)
