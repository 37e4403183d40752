"""Job store: the jobs table behind a small interface.

Every write that moves a job is conditional on the state it leaves, so two pollers racing on one
job produce one transition. Jobs that need work (pending, or owing an event) carry the keys of
the sparse ``due`` index (``due_shard``, ``next_poll_at``); a sweep queries only those, and the
index holds no more of a job than a sweep needs to claim it (``DueJob``).

What a pending job's poll writes (a job of 1 KB or less; see ``claim_poll`` for why it is safe):

=========================  =====================================  ====================================
a poll that answers        table writes                           ``due`` index writes
=========================  =====================================  ====================================
pending, nothing new       1: the claim, which is the reschedule  2: ``next_poll_at`` moves (delete +
                                                                  put of a ~200-byte entry)
pending, progress moved    2: the claim, then the progress        2: the same (progress is not
                                                                  projected)
done                       3: the claim, the transition, the      6: three moves (the claim, the
                           outbox cleared once the event is out   transition, the copy watchdog)
=========================  =====================================  ====================================

Use (needs AWS or the provider, so not a doctest)::

    store = JobStore("grokvideo-jobs")
    store.register("4b2cd27e-0b0d", now=1_700_000_000)
    # -> True
    for page in store.due(now=1_700_000_010):
        for due in page:
            claimed = store.claim_poll(due, owner="sweep-1", now=1_700_000_010, next_poll_at=1_700_000_020)
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import ClientError

from grokvideo.dynamo import decode_item, encode, encode_item
from grokvideo.models import JobState

DUE_INDEX = "due"
STATE_INDEX = "by_state"  # state + registered_at, a few attributes projected: `grokvideo list`
REF_INDEX = "by_ref"  # client_ref + registered_at, keys only: `grokvideo status REF`
JSON_ATTRIBUTES = ("metadata", "request")  # objects stored as JSON strings
COPY_WATCHDOG = 6 * 3600
"""Seconds a ``SUCCEEDED`` job stays in the due index after its event went out: if no copy has
settled it by then (its copy message was lost), a sweep finds it (``polling.decide_stalled_copy``).
Longer than every retry of the copy queue, well within the provider URL's ~24 h."""
TERMINAL_STATES = frozenset({JobState.STORED, JobState.FAILED, JobState.ARCHIVE_FAILED})


@dataclass(frozen=True, slots=True)
class Job:
    """One item of the jobs table, typed. Times are epoch seconds."""

    request_id: str
    state: JobState
    registered_at: int
    deadline_at: int
    client_ref: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    submitted_at: int | None = None
    attempts: int = 0
    progress: int | None = None
    missing_url_polls: int = 0
    due_shard: int | None = None
    next_poll_at: int | None = None
    lease_owner: str | None = None
    lease_until: int | None = None
    outbox: str | None = None
    owed_since: int | None = None  # when the event in ``outbox`` became owed
    copy_reminders: int = 0  # times a sweep asked for the copy again (see COPY_WATCHDOG)
    reason: str | None = None
    message: str | None = None
    video_url: str | None = None
    duration: float | None = None
    cost_usd: float | None = None
    completed_at: int | None = None
    bucket: str | None = None
    key: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    content_type: str | None = None
    stored_at: int | None = None
    manifest_key: str | None = None
    expires_at: int | None = None
    # Submitted jobs (and their reservations) keep the request they came from.
    request: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    task_token: str | None = None
    submission_id: str | None = None  # on a submitted job: its reservation
    job_request_id: str | None = None  # on a SUBMITTED reservation: the provider's job
    request_digest: str | None = None  # on a reservation: what the key was first used for

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Job:
        """The job from an item of plain values (``dynamo.decode_item``'s, or the resource layer's)."""
        values = {k: _from_dynamo(v) for k, v in item.items() if k in _JOB_FIELDS}
        values["state"] = JobState(values["state"])
        for name in JSON_ATTRIBUTES:
            raw = item.get(name)
            values[name] = json.loads(raw) if isinstance(raw, str) else {}
        return cls(**values)


_JOB_FIELDS = frozenset(f.name for f in fields(Job))


@dataclass(frozen=True, slots=True)
class DueJob:
    """What the ``due`` index holds of a job: its keys, and what a sweep needs to claim it.

    The index projects ``state`` and ``attempts`` and nothing else (template.yaml; the tests
    hold the two to this class). A write touches the index only when it changes a key or a
    projected attribute, and rewrites just this small entry, never the whole item: with the whole
    item projected, every claim (``lease_owner``) was an index write too, of the item's full size.
    ``state`` picks the claim: a pending job's claim is also its reschedule (``claim_poll``),
    anything else is leased (``claim``). ``attempts`` is the count a poll claim is conditional on
    and the backoff grows with. Both change only in writes that move ``next_poll_at`` as well (a
    claim, a transition), so projecting them costs no index write of its own.
    """

    request_id: str
    state: JobState
    next_poll_at: int
    attempts: int | None = None  # None: the item has no count

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> DueJob:
        attempts = item.get("attempts")
        return cls(
            str(item["request_id"]),
            JobState(item["state"]),
            int(item["next_poll_at"]),
            None if attempts is None else int(attempts),
        )


@dataclass(frozen=True, slots=True)
class JobSummary:
    """What the ``by_state`` index holds of a job: enough for a line of ``grokvideo list``."""

    request_id: str
    state: JobState
    registered_at: int
    client_ref: str | None = None
    reason: str | None = None
    bucket: str | None = None
    key: str | None = None
    job_request_id: str | None = None  # a SUBMITTED reservation's provider job

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> JobSummary:
        known = {f.name for f in fields(cls)}
        values = {k: _from_dynamo(v) for k, v in item.items() if k in known}
        values["state"] = JobState(values["state"])
        return cls(**values)


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return value


class JobStore:
    """Data access for jobs. ``items_read`` counts items DynamoDB read for due queries.

    ``client`` is a low-level DynamoDB client (default: boto3's, from the environment): every call
    is made on it, with the wire format done by ``grokvideo.dynamo`` (why: that module's docstring).
    """

    def __init__(
        self,
        table_name: str,
        *,
        shards: int = 4,
        first_poll_delay: int = 5,
        max_job_age: int = 3600,
        finished_ttl_days: int = 30,
        client: Any = None,
    ) -> None:
        self.table_name = table_name
        self._client = client or boto3.client("dynamodb")
        self.shards = shards
        self.first_poll_delay = first_poll_delay
        self.max_job_age = max_job_age
        self.finished_ttl = finished_ttl_days * 86_400
        self.items_read = 0

    # --- create / read ----------------------------------------------------------------------

    def shard_of(self, request_id: str) -> int:
        return zlib.crc32(request_id.encode()) % self.shards

    def register(
        self,
        request_id: str,
        *,
        now: int,
        client_ref: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        outbox: str | None = None,
        **extra: Any,
    ) -> bool:
        """Add a pending job. Returns False (and changes nothing) when the id is already known.

        ``extra`` sets further ``Job`` attributes (``model``, ``submitted_at``, ``request``,
        ``task_token``...); ``outbox`` names an event the new job owes (``Video Generation Submitted``).
        """
        item = self.new_item(request_id, JobState.PENDING, now=now, client_ref=client_ref, metadata=metadata, **extra)
        item.update(attempts=0, due_shard=self.shard_of(request_id), next_poll_at=now + self.first_poll_delay)
        if outbox is not None:
            item.update(outbox=str(outbox), owed_since=now)
        return self.put_new(item)

    def put_new(self, item: Mapping[str, Any]) -> bool:
        """Write ``item`` unless its id exists; False when it did (nothing changed)."""
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=encode_item(item),
                ConditionExpression="attribute_not_exists(request_id)",
            )
        except ClientError as err:
            if is_conditional_failure(err):
                return False
            raise
        return True

    def new_item(
        self,
        request_id: str,
        state: JobState,
        *,
        now: int,
        client_ref: str | None,
        metadata: Mapping[str, Any] | None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A new item in ``state`` (no due-index keys): ``extra`` names further ``Job`` attributes."""
        known = {f.name for f in fields(Job)}
        unknown = extra.keys() - known
        if unknown:
            raise TypeError(f"not job attributes: {', '.join(sorted(unknown))}")
        item: dict[str, Any] = {
            "request_id": request_id,
            "state": state.value,
            "registered_at": now,
            "deadline_at": now + self.max_job_age,
            "metadata": _to_dynamo(dict(metadata or {})),
        }
        if client_ref is not None:
            item["client_ref"] = client_ref
        item.update({k: _to_dynamo(v) for k, v in extra.items() if v is not None and v != {}})
        return item

    def get(self, request_id: str) -> Job | None:
        item = self._client.get_item(
            TableName=self.table_name, Key={"request_id": {"S": request_id}}, ConsistentRead=True
        ).get("Item")
        return Job.from_item(decode_item(item)) if item else None

    @cached_property
    def table(self) -> Any:
        """A boto3 ``Table`` on the same endpoint, region and settings as the client (for stores
        that keep other item kinds in the same table); made on first use, so a poller never pays
        for the resource layer."""
        meta = self._client.meta
        resource = boto3.resource(
            "dynamodb", region_name=meta.region_name, endpoint_url=meta.endpoint_url, config=meta.config
        )
        return resource.Table(self.table_name)

    def _query(self, **kwargs: Any) -> dict[str, Any]:
        """One page of a query; counts the items DynamoDB read."""
        page: dict[str, Any] = self._client.query(TableName=self.table_name, **kwargs)
        self.items_read += page.get("ScannedCount", 0)
        return page

    def due(self, now: int, *, page_size: int = 100, shards: Iterable[int] | None = None) -> Iterator[list[DueJob]]:
        """Yield pages of jobs whose next poll time has come, shard by shard (as the index holds
        them); ``shards``: only those, for a sweep that shares the work with others (default all)."""
        for shard in range(self.shards) if shards is None else shards:
            for page in self._due_pages(shard, until=now, Limit=page_size):
                jobs = [DueJob.from_item(decode_item(item)) for item in page.get("Items", [])]
                if jobs:
                    yield jobs

    def due_count(self, shard: int, *, until: int) -> int:
        """How many jobs of ``shard`` are due by ``until``: the backlog a sweep would meet.

        A ``COUNT`` query: DynamoDB still reads the index entries (counted in ``items_read``) but
        sends none back.
        """
        return sum(int(page.get("Count", 0)) for page in self._due_pages(shard, until=until, Select="COUNT"))

    def occupied_shards(self, shards: Iterable[int]) -> list[int]:
        """Which of ``shards`` hold any job in the due index (one item read at most per shard).

        After ``DueShards`` was lowered, jobs written under the old count sit in shards no sweep
        reads; the scheduled sweep looks for them here and polls them, which moves them home.
        """
        return [shard for shard in shards if self._due_query(shard, Limit=1, Select="COUNT").get("Count", 0)]

    def next_due_at(self, shards: Iterable[int] | None = None) -> int | None:
        """Earliest ``next_poll_at`` in the due index (one item read per shard), or None if empty."""
        firsts = [
            int(decode_item(item)["next_poll_at"])
            for shard in (range(self.shards) if shards is None else shards)
            for item in self._due_query(shard, Limit=1, ProjectionExpression="next_poll_at").get("Items", [])
        ]
        return min(firsts, default=None)

    def _due_query(self, shard: int, *, until: int | None = None, **options: Any) -> dict[str, Any]:
        """One page of ``shard``'s entries in the due index, earliest first (due by ``until`` if given)."""
        condition, values = "due_shard = :s", {":s": encode(shard)}
        if until is not None:
            condition, values[":until"] = condition + " AND next_poll_at <= :until", encode(until)
        return self._query(
            IndexName=DUE_INDEX, KeyConditionExpression=condition, ExpressionAttributeValues=values, **options
        )

    def _due_pages(self, shard: int, *, until: int | None = None, **options: Any) -> Iterator[dict[str, Any]]:
        """Every page of ``_due_query``, following ``LastEvaluatedKey``."""
        while True:
            page = self._due_query(shard, until=until, **options)
            yield page
            if "LastEvaluatedKey" not in page:
                return
            options["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def newest(self, state: JobState, *, since: int | None = None, limit: int) -> list[JobSummary]:
        """Up to ``limit`` jobs in ``state``, newest first, registered at ``since`` or later.

        One query of the ``by_state`` index: it reads exactly the items it returns (counted in
        ``items_read``), however many older jobs the state holds. The jobs carry the projected
        attributes only (state, times, ``client_ref``, ``reason``, S3 location).
        """
        condition = "#state = :state" + ("" if since is None else " AND registered_at >= :since")
        values: dict[str, Any] = {":state": encode(state.value)}
        if since is not None:
            values[":since"] = encode(since)
        kwargs: dict[str, Any] = {
            "IndexName": STATE_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": limit,
        }
        jobs: list[JobSummary] = []
        while len(jobs) < limit:
            page = self._query(**kwargs)
            jobs.extend(JobSummary.from_item(decode_item(item)) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs.update(ExclusiveStartKey=page["LastEvaluatedKey"], Limit=limit - len(jobs))
        return jobs

    def with_ref(self, client_ref: str, *, limit: int = 100) -> list[str]:
        """Request ids of the jobs carrying ``client_ref``, newest first (the ``by_ref`` index)."""
        page = self._query(
            IndexName=REF_INDEX,
            KeyConditionExpression="client_ref = :ref",
            ExpressionAttributeValues={":ref": encode(client_ref)},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [str(decode_item(item)["request_id"]) for item in page.get("Items", [])]

    def get_many(self, request_ids: list[str]) -> dict[str, Job]:
        """The jobs among ``request_ids`` that exist (strongly consistent, 100 ids per call)."""
        found: dict[str, Job] = {}
        for start in range(0, len(request_ids), 100):
            keys: list[dict[str, Any]] = [
                {"request_id": {"S": rid}} for rid in dict.fromkeys(request_ids[start : start + 100])
            ]
            request = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
            while request:
                answer = self._client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table_name, []):
                    job = Job.from_item(decode_item(item))
                    found[job.request_id] = job
                request = answer.get("UnprocessedKeys") or {}
        return found

    # --- claims -----------------------------------------------------------------------------

    def claim_poll(self, due: DueJob, *, owner: str, now: int, next_poll_at: int) -> Job | None:
        """Claim a pending job for its polls; the same write reschedules it. None if another won.

        The claim moves the job to ``next_poll_at``, when it is due next should this poll answer
        "pending": the caller's backoff (``polling.reschedule_at``), or the end of a sweep that
        holds the job and polls it again from memory until then (``polling.follow_up``). It counts
        the attempt (one per claim, however many polls the claim covers). Most
        polls do answer pending, and then nothing more is written unless the answer changed what
        the job shows (its progress: ``reschedule``). A pending poll thus costs one conditional
        write, where a claim and then a reschedule cost two, and the ``due`` index sees one move of
        its entry where it saw a put (the lease, projected with the whole item) and a move.

        Every guarantee the two writes gave still holds:

        - The claim lasts until ``next_poll_at``: the condition ``next_poll_at <= now`` refuses any
          other claim before then, so sweeps racing on a job make one claim and one poll. The
          condition on ``attempts`` (the count the index showed) refuses a claim made on a stale
          index entry, and makes each claim's count its own.
        - A sweeper that dies after the claim leaves the job in the index, due at ``next_poll_at``:
          the end of its claim is the poll's own backoff, so the job is polled again when it would
          have been anyway (it used to wait out a 120 s lease). The invariant (terminal, due, or
          leased) holds at every step, since the job never leaves the index.
        - A poll that outlasts its backoff (a slow provider) lets another sweep claim the job and
          poll it again: a second poll, never a second transition. Transitions are conditional on
          the state they leave and on ``lease_owner``, which the newer claim took over, and this
          poll's ``reschedule`` or ``release`` is conditional on the attempt it counted.
        - Any other answer rewrites what the claim assumed: a finished job's transition moves it
          for its event, a 429 or a stopping sweep gives the claim back (``release``).

        ``lease_owner`` names the sweep that claimed the job last: a poll claim ends by time, not
        by a write, so it stays. ``lease_until`` belongs to the other claims (``claim``); one left
        by them (or by an older version) is respected and dropped.
        """
        values: dict[str, Any] = {
            ":owner": owner,
            ":next": next_poll_at,
            ":home": self.shard_of(due.request_id),
            ":attempts": (due.attempts or 0) + 1,
            ":now": now,
            ":pending": JobState.PENDING.value,
        }
        if due.attempts is None:
            counted = "attribute_not_exists(attempts)"
        else:
            counted = "attempts = :seen"
            values[":seen"] = due.attempts
        return self.conditional_update(
            due.request_id,
            # due_shard: the job's shard under the current DueShards (moves it home after a change;
            # the index entry moves anyway, for next_poll_at).
            "SET lease_owner = :owner, next_poll_at = :next, due_shard = :home, attempts = :attempts "
            "REMOVE lease_until",
            f"#state = :pending AND {counted} AND next_poll_at <= :now "
            "AND (attribute_not_exists(lease_until) OR lease_until <= :now)",
            values,
            names={"#state": "state"},
        )

    def claim(self, request_id: str, *, owner: str, now: int, lease_seconds: int) -> Job | None:
        """Lease a job that needs work other than a poll (an owed event, a stalled copy) for
        ``lease_seconds``; None when another worker holds it or it moved on.

        ``lease_until`` is not projected into the ``due`` index, so this claim writes the table
        only; the job stays where it is in the index until its work moves it.
        """
        return self.conditional_update(
            request_id,
            "SET lease_owner = :owner, lease_until = :until",
            "attribute_exists(due_shard) AND next_poll_at <= :now "
            "AND (attribute_not_exists(lease_until) OR lease_until <= :now)",
            {":owner": owner, ":until": now + lease_seconds, ":now": now},
        )

    def reschedule(
        self,
        job: Job,
        *,
        owner: str,
        next_poll_at: int | None = None,
        progress: int | None = None,
        missing_url_polls: int | None = None,
    ) -> Job | None:
        """Record what a pending answer changed on a job this poll claimed (``claim_poll``).

        Only the values given are set; with none, nothing is written. Conditional on the claim
        still being this poll's (``lease_owner`` and the attempt it counted): a newer claim's poll
        knows better. Only ``next_poll_at`` is in the ``due`` index; the others write the table alone.
        """
        sets = {
            name: value
            for name, value in (
                ("next_poll_at", next_poll_at),
                ("progress", progress),
                ("missing_url_polls", missing_url_polls),
            )
            if value is not None
        }
        if not sets:
            return job
        names = {f"#{k}": k for k in sets}
        values: dict[str, Any] = {f":{k}": v for k, v in sets.items()}
        values.update({":owner": owner, ":claimed": job.attempts, ":pending": JobState.PENDING.value})
        return self.conditional_update(
            job.request_id,
            "SET " + ", ".join(f"#{k} = :{k}" for k in sets),
            "#state = :pending AND lease_owner = :owner AND attempts = :claimed",
            values,
            names={**names, "#state": "state"},
        )

    def release(self, job: Job, *, owner: str, at: int) -> Job | None:
        """Give a poll's claim back unpolled: due again at ``at``, its attempt no longer counted.

        For a sweep that stops before the poll (``at`` = now), and for a poll the provider
        answered 429 or that cannot wait out a rate-limit pause (``at`` = the pause's end): no
        answer about the job came, so its backoff does not grow.
        """
        return self.conditional_update(
            job.request_id,
            "SET next_poll_at = :at, attempts = :before REMOVE lease_owner, lease_until",
            "#state = :pending AND lease_owner = :owner AND attempts = :claimed",
            {
                ":at": at,
                ":before": max(job.attempts - 1, 0),
                ":owner": owner,
                ":claimed": job.attempts,
                ":pending": JobState.PENDING.value,
            },
            names={"#state": "state"},
        )

    # --- transitions and the outbox ---------------------------------------------------------

    def transition(
        self,
        job: Job,
        *,
        to_state: JobState,
        outbox: str,
        now: int,
        relay_after: int,
        owner: str | None = None,
        changes: Mapping[str, Any] | None = None,
    ) -> Job | None:
        """Move ``job`` from its current state to ``to_state`` and owe the event ``outbox``.

        The job (re)enters the due index at ``now + relay_after``: if the caller dies before the
        event is accepted, a later sweep publishes it. Returns None when the job had already left
        ``job.state`` (another worker won) or ``owner`` no longer holds the lease.
        """
        sets: dict[str, Any] = {k: v for k, v in (changes or {}).items() if v is not None}
        sets.update(
            {
                "state": to_state.value,
                "outbox": str(outbox),  # a DetailType is stored as its plain name
                "owed_since": now,
                "due_shard": self.shard_of(job.request_id),
                "next_poll_at": now + relay_after,
            }
        )
        names = {f"#{k}": k for k in sets}
        values: dict[str, Any] = {f":{k}": _to_dynamo(v) for k, v in sets.items()}
        values[":from"] = job.state.value
        condition = "#state = :from"
        if owner is not None:
            condition += " AND lease_owner = :owner"
            values[":owner"] = owner
        expr = "SET " + ", ".join(f"#{k} = :{k}" for k in sets) + " REMOVE lease_owner, lease_until"
        return self.conditional_update(job.request_id, expr, condition, values, names=names)

    def clear_outbox(self, job: Job, *, now: int) -> Job | None:
        """The owed event was accepted: take the job out of the due index (and start its TTL).

        A pending job (it owed ``Video Generation Submitted``) stays in the index: it still needs
        polls. A succeeded one stays too, due again after ``COPY_WATCHDOG``: whatever happens to its
        copy message, a job is never out of the index before it is settled.
        """
        expr = "REMOVE outbox, owed_since, due_shard, next_poll_at, lease_owner, lease_until"
        values: dict[str, Any] = {":outbox": job.outbox, ":state": job.state.value}
        if job.state is JobState.PENDING:
            expr = "REMOVE outbox, owed_since"
        elif job.state is JobState.SUCCEEDED:
            # The copy is the copier's now; the job stays findable in case its message is lost.
            expr = "SET next_poll_at = :watch REMOVE outbox, owed_since, lease_owner, lease_until"
            values[":watch"] = now + COPY_WATCHDOG
        if job.state in TERMINAL_STATES:
            expr = "SET expires_at = :expires " + expr
            values[":expires"] = now + self.finished_ttl
        return self.conditional_update(
            job.request_id,
            expr,
            "outbox = :outbox AND #state = :state",
            values,
            names={"#state": "state"},
        )

    def watch(self, job: Job, *, at: int) -> Job | None:
        """Bring a ``SUCCEEDED`` job's next sweep forward to ``at`` (a copy attempt that may die
        without settling it); None if it is no longer ``SUCCEEDED``."""
        return self.conditional_update(
            job.request_id,
            "SET next_poll_at = :at",
            "#state = :succeeded AND attribute_exists(due_shard) AND attribute_not_exists(outbox)",
            {":at": at, ":succeeded": JobState.SUCCEEDED.value},
            names={"#state": "state"},
        )

    def retire(self, job: Job, *, owner: str) -> Job | None:
        """Take a settled job that owes nothing out of the due index (it has no work left)."""
        return self.conditional_update(
            job.request_id,
            "REMOVE due_shard, next_poll_at, lease_owner, lease_until",
            "lease_owner = :owner AND attribute_not_exists(outbox) AND #state <> :pending",
            {":owner": owner, ":pending": JobState.PENDING.value},
            names={"#state": "state"},
        )

    # --- plumbing ---------------------------------------------------------------------------

    def conditional_update(
        self,
        request_id: str,
        update: str,
        condition: str,
        values: Mapping[str, Any],
        *,
        names: Mapping[str, str] | None = None,
    ) -> Job | None:
        """One ``UpdateItem`` guarded by ``condition``: the job as it is now, or None when the condition failed."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"request_id": {"S": request_id}},
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": {name: encode(value) for name, value in values.items()},
            "ReturnValues": "ALL_NEW",
        }
        if names:
            kwargs["ExpressionAttributeNames"] = dict(names)
        try:
            return Job.from_item(decode_item(self._client.update_item(**kwargs)["Attributes"]))
        except ClientError as err:
            if is_conditional_failure(err):
                return None
            raise


def is_conditional_failure(err: ClientError) -> bool:
    """True when DynamoDB refused a write because its condition did not hold (someone else moved first)."""
    return err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
