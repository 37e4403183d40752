"""The one invariant every fault must keep: a job is never anywhere it can be forgotten.

Each job is terminal (and owes no event), or in the due index (a sweep will find it), or leased
with an expiry (its holder is working on it; when the lease runs out it is due again). A
submission's reservation is either settled (``SUBMITTED`` / ``FAILED``) or ``RESERVED``, in which
case its request is still in the submit queue (put back for later, or being handled).

>>> violations([{"request_id": "a", "state": "PENDING"}])
['a: PENDING, not in the due index and not leased']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from grokvideo.jobs import TERMINAL_STATES
from grokvideo.ratelimit import LIMITER_PREFIX

SETTLED = {s.value for s in TERMINAL_STATES} | {"SUBMITTED"}


def violations(items: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every item of the jobs table that breaks the invariant, described."""
    found = []
    for item in items:
        rid = str(item["request_id"])
        if rid.startswith(LIMITER_PREFIX):
            continue
        state = str(item.get("state"))
        if state == "RESERVED":
            continue  # its request is in the submit queue
        if state in SETTLED and "outbox" not in item:
            continue
        if "next_poll_at" in item and "due_shard" in item:
            continue
        if "lease_until" in item:
            continue
        owed = f" owing {item['outbox']}" if "outbox" in item else ""
        found.append(f"{rid}: {state}{owed}, not in the due index and not leased")
    return found


def scan_all(table: Any) -> list[dict[str, Any]]:
    """Every item of a (test-sized) table."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"ConsistentRead": True}
    while True:
        page = table.scan(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
