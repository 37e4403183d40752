"""Reservations: the idempotency record of a submission, an item of the jobs table.

A reservation is keyed by ``submission_id(idempotency_key)`` and written before the create call.
While a delivery may be talking to the provider it carries a lease (``lease_owner``,
``lease_until``); a reservation without a lease is one whose create is known not to have been
accepted (after a 429), so a later delivery may send it. It ends ``SUBMITTED`` (pointing at the
provider's job in ``job_request_id``) or ``FAILED`` (owing its ``Video Generation Failed``, which
the outbox delivers like any other job's).

Use (needs AWS or the provider, so not a doctest)::

    held = reservations.reserve("submission-ab12", owner="me", now=0, fields=fields)
    reservations.mark_submitted(held, owner="me", request_id="4b2cd27e", now=1)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grokvideo.events import DetailType
from grokvideo.jobs import Job, JobStore
from grokvideo.models import FailureReason, JobState
from grokvideo.outbox import RELAY_AFTER

MESSAGE_LIMIT = 1000


class Reservations:
    def __init__(self, store: JobStore, *, lease_seconds: int, relay_after: int = RELAY_AFTER) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self.relay_after = relay_after

    def reserve(self, submission_id: str, *, owner: str, now: int, fields: Mapping[str, Any]) -> Job | None:
        """Write a new reservation held by ``owner``; None when the key is already reserved.

        ``fields`` are the job attributes the submission keeps (``client_ref``, ``metadata``,
        ``request``, ``request_digest``, ``idempotency_key``, ``task_token``, ``model``).
        """
        values = dict(fields)
        item = self.store.new_item(
            submission_id,
            JobState.RESERVED,
            now=now,
            client_ref=values.pop("client_ref", None),
            metadata=values.pop("metadata", None),
            lease_owner=owner,
            lease_until=now + self.lease_seconds,
            **values,
        )
        return Job.from_item(item) if self.store.put_new(item) else None

    def claim(self, reservation: Job, *, owner: str, now: int) -> Job | None:
        """Take a reservation nobody holds (no lease, or the lease seen has expired); None if another won."""
        values: dict[str, Any] = {":owner": owner, ":until": now + self.lease_seconds, ":reserved": JobState.RESERVED}
        if reservation.lease_until is None:
            lease = "attribute_not_exists(lease_until)"
        else:
            lease = "lease_until = :seen"
            values[":seen"] = reservation.lease_until
        return self.store.conditional_update(
            reservation.request_id,
            "SET lease_owner = :owner, lease_until = :until",
            f"#state = :reserved AND {lease}",
            values,
            names={"#state": "state"},
        )

    def release(self, reservation: Job, *, owner: str) -> Job | None:
        """Drop the lease: the create was not accepted, a later delivery may send it."""
        return self.store.conditional_update(
            reservation.request_id,
            "REMOVE lease_owner, lease_until",
            "#state = :reserved AND lease_owner = :owner",
            {":owner": owner, ":reserved": JobState.RESERVED},
            names={"#state": "state"},
        )

    def mark_submitted(self, reservation: Job, *, owner: str, request_id: str, now: int) -> Job | None:
        """The provider accepted the create: point the reservation at its job (kept until the TTL)."""
        return self.store.conditional_update(
            reservation.request_id,
            "SET #state = :submitted, job_request_id = :rid, submitted_at = :now, expires_at = :expires "
            "REMOVE lease_owner, lease_until",
            "#state = :reserved AND lease_owner = :owner",
            {
                ":submitted": JobState.SUBMITTED,
                ":rid": request_id,
                ":now": now,
                ":expires": now + self.store.finished_ttl,
                ":reserved": JobState.RESERVED,
                ":owner": owner,
            },
            names={"#state": "state"},
        )

    def fail(self, reservation: Job, *, owner: str, reason: FailureReason, message: str, now: int) -> Job | None:
        """End the submission ``FAILED`` and owe its ``Video Generation Failed`` (the outbox delivers it)."""
        return self.store.transition(
            reservation,
            to_state=JobState.FAILED,
            outbox=DetailType.FAILED,
            now=now,
            relay_after=self.relay_after,
            owner=owner,
            changes={"reason": reason.value, "message": message[:MESSAGE_LIMIT], "completed_at": now},
        )
