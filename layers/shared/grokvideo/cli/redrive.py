"""``redrive``: move a dead-letter queue's messages back to where they can succeed.

Each dead-letter queue of the stack is fed from two sides (template.yaml), and has one way back:

========  ==========================================  ==============================================
queue     fed by                                      way back
========  ==========================================  ==============================================
copy      the copy queue (after 3 receives) and the   SendMessage to the copy queue (body: the
          copy rule (undeliverable events)            ``Video Generation Succeeded`` event)
submit    the submit queue (after 10 receives) and    SendMessage to the submit queue (body: the
          the submit rule                             request event)
register  the register function (after Lambda's      PutEvents of the original event: the track
          async retries) and the track rule           rule delivers it to the function again
poller    Scheduler ticks that could not invoke the   one asynchronous invoke of the poller (a
          poller                                      sweep catches up on every missed tick)
========  ==========================================  ==============================================

A message is sent (put, invoked) first and deleted only once that succeeded: every consumer is
idempotent, so a duplicate is harmless, and nothing is lost. What could not be sent, and what is
not an event of the queue's kind, stays in the dead-letter queue, visible again at once, and the
command exits non-zero. Only the messages there at the start are read, so what was just moved and
fails again at once is not moved around in a loop.

What to do with one message is decided by a pure function, ``plan``; ``Redrive`` only carries
the plans out.

>>> p = plan('{"detail-type": "Video Generation Succeeded", "time": "2026-11-27T08:00:00Z",'
...          ' "detail": {"request_id": "job-1"}}', {"RULE_ARN": "arn:..."}, Kind.COPY, now=1_795_939_200)
>>> p.source, p.destination, p.about
(<Source.RULE: 'rule'>, <Destination.COPY_QUEUE: 'copy queue'>, 'job-1')
>>> p.warning
'finished 2d00h ago: URL probably expired; the copier will end the job ARCHIVE_FAILED (URL_EXPIRED)'
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from grokvideo.cli import render
from grokvideo.cli.context import Context
from grokvideo.cli.deployment import Deployment, aws_errors
from grokvideo.cli.exits import CliError, ExitCode
from grokvideo.errors import ValidationError
from grokvideo.events import MAX_BATCH_ENTRIES, MAX_ENTRY_BYTES, DetailType, entry_size, serialize_detail
from grokvideo.validation import validate_request_id

VIDEO_URL_LIFETIME = 24 * 3600
"""Seconds a provider's video URL lives (about a day): a copy redriven later fails URL_EXPIRED."""
VISIBILITY_SECONDS = 60  # a received message stays hidden this long unless moved or released sooner
RECEIVE_WAIT_SECONDS = 1  # long polling asks every SQS server: an empty answer means empty
NOT_DELETED = "moved, but could not delete it from the dead-letter queue"


class Kind(StrEnum):
    """The dead-letter queue named on the command line."""

    COPY = "copy"
    REGISTER = "register"
    POLLER = "poller"
    SUBMIT = "submit"


class Source(StrEnum):
    """Who put a message in the dead-letter queue."""

    QUEUE = "queue"  # the queue's redrive policy: its consumer failed on every receive
    RULE = "rule"  # the EventBridge rule could not deliver the event (RULE_ARN, ERROR_CODE...)
    FUNCTION = "function"  # the register function failed after Lambda's async retries
    SCHEDULE = "schedule"  # EventBridge Scheduler could not invoke the poller


class Destination(StrEnum):
    COPY_QUEUE = "copy queue"
    SUBMIT_QUEUE = "submit queue"
    BUS = "event bus"
    POLLER = "poller"


class Result(StrEnum):
    MOVED = "moved"
    WOULD_MOVE = "would move"  # --dry-run
    FAILED = "failed"  # could not be sent: still in the dead-letter queue
    LEFT = "left"  # not something this queue's way back can take: still in the dead-letter queue

    @property
    def key(self) -> str:
        """Its name in JSON."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class DeadLetterQueue:
    """One dead-letter queue of the stack: its stack output, who feeds it, where it goes back."""

    kind: Kind
    url_output: str
    own_source: Source  # the feeder besides a rule
    destination: Destination
    destination_output: str
    detail_types: frozenset[str] = frozenset()  # the events that belong here (the poller's: any tick)

    @property
    def label(self) -> str:
        return f"{self.kind.value} dead-letter queue"


QUEUES: Mapping[Kind, DeadLetterQueue] = {
    Kind.COPY: DeadLetterQueue(
        Kind.COPY,
        "CopyDeadLetterQueueUrl",
        Source.QUEUE,
        Destination.COPY_QUEUE,
        "CopyQueueUrl",
        frozenset({DetailType.SUCCEEDED.value}),
    ),
    Kind.SUBMIT: DeadLetterQueue(
        Kind.SUBMIT,
        "SubmitDeadLetterQueueUrl",
        Source.QUEUE,
        Destination.SUBMIT_QUEUE,
        "SubmitQueueUrl",
        frozenset({DetailType.GENERATION_REQUESTED.value, DetailType.EDIT_REQUESTED.value}),
    ),
    Kind.REGISTER: DeadLetterQueue(
        Kind.REGISTER,
        "RegisterDeadLetterQueueUrl",
        Source.FUNCTION,
        Destination.BUS,
        "EventBusName",
        frozenset({DetailType.TRACK_REQUESTED.value}),
    ),
    Kind.POLLER: DeadLetterQueue(
        Kind.POLLER,
        "PollerScheduleDeadLetterQueueUrl",
        Source.SCHEDULE,
        Destination.POLLER,
        "PollerFunctionName",
    ),
}


# --- what to do with one message (pure) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BusEntry:
    """The original event, to put on the bus again (same source, detail-type and detail)."""

    source: str
    detail_type: str
    detail: str  # JSON

    def entry(self, bus: str) -> dict[str, Any]:
        return {"Source": self.source, "DetailType": self.detail_type, "Detail": self.detail, "EventBusName": bus}


@dataclass(frozen=True, slots=True)
class Plan:
    """Where one dead letter goes, and what to tell the person about it."""

    source: Source
    destination: Destination | None  # None: it stays in the dead-letter queue (``problem`` says why)
    about: str | None = None  # the job: its request_id, else the request's client_ref
    error: str | None = None  # why it was dead-lettered, when the sender said (rule, Lambda, Scheduler)
    warning: str | None = None
    problem: str | None = None
    bus_entry: BusEntry | None = None  # register: the event to put on the bus again


def message_source(attributes: Mapping[str, str], kind: Kind) -> Source:
    """A rule's dead letters carry ``RULE_ARN``; everything else came from the queue's other feeder.

    >>> message_source({"RULE_ARN": "arn:aws:events:...:rule/grokvideo/copy"}, Kind.COPY)
    <Source.RULE: 'rule'>
    >>> message_source({"ErrorCode": "200"}, Kind.REGISTER)
    <Source.FUNCTION: 'function'>
    """
    return Source.RULE if "RULE_ARN" in attributes else QUEUES[kind].own_source


def dead_letter_error(attributes: Mapping[str, str]) -> str | None:
    """What the sender said went wrong: EventBridge rules and Scheduler write ``ERROR_CODE`` and
    ``ERROR_MESSAGE``, Lambda's async dead letters ``ErrorCode`` and ``ErrorMessage``.

    >>> dead_letter_error({"ERROR_CODE": "SQS_NO_PERMISSION", "ERROR_MESSAGE": "denied"})
    'SQS_NO_PERMISSION: denied'
    >>> dead_letter_error({}) is None
    True
    """
    code = attributes.get("ERROR_CODE") or attributes.get("ErrorCode")
    message = attributes.get("ERROR_MESSAGE") or attributes.get("ErrorMessage")
    if code and message:
        return f"{code}: {message}"
    return code or message or None


def _epoch(value: object) -> float | None:
    """An ISO 8601 time (UTC unless it says otherwise) as epoch seconds; None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def expiry_warning(event: Mapping[str, Any], detail: Mapping[str, Any], now: float) -> str | None:
    """A warning when the provider's video URL is probably dead: the job finished (the older of
    ``completed_at`` and the event's ``time``, whichever can be read) over ``VIDEO_URL_LIFETIME`` ago.

    >>> midnight = 1_795_824_000  # 2026-11-28T00:00:00Z
    >>> expiry_warning({"time": "2026-11-28T00:00:00Z"}, {"completed_at": None}, now=midnight + 3600)
    >>> expiry_warning({}, {"completed_at": "2026-11-28T00:00:00Z"}, now=midnight + 30 * 3600)
    'finished 1d06h ago: URL probably expired; the copier will end the job ARCHIVE_FAILED (URL_EXPIRED)'
    """
    times = [t for t in (_epoch(detail.get("completed_at")), _epoch(event.get("time"))) if t is not None]
    if not times or now - min(times) <= VIDEO_URL_LIFETIME:
        return None
    age = render.span(now - min(times))
    return f"finished {age} ago: URL probably expired; the copier will end the job ARCHIVE_FAILED (URL_EXPIRED)"


def plan(body: str, attributes: Mapping[str, str], kind: Kind, now: float) -> Plan:
    """Where the dead letter ``body`` (with its SQS message attributes) goes back to, at ``now``.

    Only an event of the queue's kind moves: anything else would fail again or, on the bus, reach
    another rule; it stays where it is, for a person to look at.
    """
    queue = QUEUES[kind]
    source = message_source(attributes, kind)
    error = dead_letter_error(attributes)

    def stay(problem: str, about: str | None = None) -> Plan:
        return Plan(source, None, about=about, error=error, problem=problem)

    try:
        event = json.loads(body)
    except ValueError:
        return stay("not JSON")
    if kind is Kind.POLLER:  # the poller ignores its input: any JSON tick starts a sweep
        return Plan(source, queue.destination, error=error)
    detail = event.get("detail") if isinstance(event, dict) else None
    detail_type = event.get("detail-type") if isinstance(event, dict) else None
    if not isinstance(detail, dict) or not isinstance(detail_type, str):
        return stay("not an EventBridge event (no detail-type and detail)")
    about = _about(detail)
    if detail_type not in queue.detail_types:
        expected = " or ".join(sorted(queue.detail_types))
        return stay(f"a {detail_type!r} event does not belong here (expected {expected})", about)
    if kind is Kind.COPY:
        try:
            validate_request_id(detail.get("request_id"), "detail.request_id")
        except ValidationError as err:
            return stay(f"the copier cannot take it: {'; '.join(err.errors)}", about)
        return Plan(source, queue.destination, about, error, warning=expiry_warning(event, detail, now))
    if kind is Kind.REGISTER:
        event_source = event.get("source")
        if not isinstance(event_source, str) or not event_source:
            return stay("the event has no source to put it on the bus with", about)
        try:
            entry = BusEntry(event_source, detail_type, serialize_detail(detail))
        except ValueError:  # NaN or Infinity, which Python's JSON reads and EventBridge refuses
            return stay("its detail is not strict JSON", about)
        return Plan(source, queue.destination, about, error, bus_entry=entry)
    return Plan(source, queue.destination, about, error)


def _about(detail: Mapping[str, Any]) -> str | None:
    for key in ("request_id", "client_ref"):
        value = detail.get(key)
        if isinstance(value, str) and value:
            return value
    return None


# --- carrying the plans out -------------------------------------------------------------------


@dataclass
class Letter:
    """A received dead letter, its plan and what became of it."""

    message_id: str
    receipt_handle: str
    body: str
    sent_at: int  # SentTimestamp, epoch milliseconds
    plan: Plan
    result: Result = Result.LEFT  # until it has been moved (or would be)
    reason: str | None = None  # why it failed or stayed; or that its delete failed

    @classmethod
    def received(cls, message: Mapping[str, Any], kind: Kind, now: float) -> Letter:
        attributes = {
            name: str(value["StringValue"])
            for name, value in (message.get("MessageAttributes") or {}).items()
            if "StringValue" in value
        }
        body = message.get("Body", "")
        return cls(
            message["MessageId"],
            message["ReceiptHandle"],
            body,
            int((message.get("Attributes") or {}).get("SentTimestamp", 0)),
            plan(body, attributes, kind, now),
        )

    def record(self) -> dict[str, Any]:
        record = {
            "message_id": self.message_id,
            "sent_at": render.when(self.sent_at / 1000) if self.sent_at else None,
            "source": self.plan.source.value,
            "error": self.plan.error,
            "about": self.plan.about,
            "destination": self.plan.destination.value if self.plan.destination else None,
            "result": self.result.key,
            "reason": self.reason or self.plan.problem,
            "warning": self.plan.warning,
        }
        return {k: v for k, v in record.items() if v is not None}


@dataclass
class Report:
    """What one redrive did, for people and for scripts."""

    queue: DeadLetterQueue
    queue_url: str
    target: str
    dry_run: bool
    at_start: int = 0
    in_flight: int = 0
    letters: list[Letter] = field(default_factory=list)
    sweep_started: bool = False
    notes: list[str] = field(default_factory=list)

    def count(self, result: Result) -> int:
        return sum(1 for letter in self.letters if letter.result is result)

    @property
    def stuck(self) -> list[Letter]:
        """What is still in the dead-letter queue although it should not be (failed, or not movable)."""
        return [
            letter
            for letter in self.letters
            if letter.result in (Result.FAILED, Result.LEFT) or (letter.result is Result.MOVED and letter.reason)
        ]

    def record(self) -> dict[str, Any]:
        by_source: dict[str, Counter[str]] = {}
        by_destination: dict[str, Counter[str]] = {}
        for letter in self.letters:
            result = letter.result.key
            by_source.setdefault(letter.plan.source.value, Counter())[result] += 1
            if letter.plan.destination:
                by_destination.setdefault(letter.plan.destination.value, Counter())[result] += 1
        record: dict[str, Any] = {
            "queue": self.queue.kind.value,
            "dead_letter_queue_url": self.queue_url,
            "destination": {"name": self.queue.destination.value, "target": self.target},
            "dry_run": self.dry_run,
            "messages_at_start": self.at_start,
            "counts": {r.key: self.count(r) for r in Result},
            "by_source": {k: dict(v) for k, v in by_source.items()},
            "by_destination": {k: dict(v) for k, v in by_destination.items()},
            "messages": [letter.record() for letter in self.letters],
            "notes": self.notes,
        }
        if self.queue.kind is Kind.POLLER:
            record["missed_ticks"] = sum(1 for letter in self.letters if letter.plan.destination)
            record["sweep_started"] = self.sweep_started
        return record

    def text(self) -> str:
        rows = [
            [
                letter.message_id[:8],
                letter.plan.source.value,
                (letter.plan.error or "-").partition(":")[0],  # the code; --json has the message
                letter.plan.about or "-",
                letter.plan.destination.value if letter.plan.destination else "-",
                letter.result.value
                + (f": {letter.reason or letter.plan.problem}" if letter.reason or letter.plan.problem else ""),
            ]
            for letter in self.letters
        ]
        totals = Counter(
            (
                letter.plan.source.value,
                letter.plan.destination.value if letter.plan.destination else "-",
                letter.result.value,
            )
            for letter in self.letters
        )
        summary = [[*key, count] for key, count in sorted(totals.items())]
        parts = [
            f"{self.queue.label}: {_count(len(self.letters), 'message')}"
            + (" (dry run: nothing moved)" if self.dry_run else ""),
            render.table(["MESSAGE", "FROM", "ERROR", "ABOUT", "TO", "RESULT"], rows),
            "",
            render.table(["FROM", "TO", "RESULT", "COUNT"], summary),
        ]
        if self.queue.kind is Kind.POLLER:
            parts.append("")
            parts.append(self.sweep_line())
        return "\n".join(parts)

    def sweep_line(self) -> str:
        ticks = sum(1 for letter in self.letters if letter.plan.destination)
        missed = _count(ticks, "missed tick")
        if self.dry_run:
            return f"{missed}; a redrive would start one sweep" if ticks else missed
        return f"{missed}; one sweep started" if self.sweep_started else f"{missed}; no sweep started"


def _count(n: int, noun: str) -> str:
    """``n`` and its noun, plural unless one.

    >>> _count(1, "message"), _count(3, "missed tick")
    ('1 message', '3 missed ticks')
    """
    return f"{n} {noun}{'s' * (n != 1)}"


T = TypeVar("T")


def batches(items: Sequence[T], size: Callable[[T], int]) -> Iterator[list[T]]:
    """``items`` in requests of at most 10 entries and 256 KiB (PutEvents' limits, and the classic
    SendMessageBatch ones); an item larger than that goes alone.

    >>> [len(b) for b in batches(list(range(23)), lambda _: 1)]
    [10, 10, 3]
    >>> [len(b) for b in batches(["a" * 200_000] * 2, len)]
    [1, 1]
    """
    batch: list[T] = []
    total = 0
    for item in items:
        if batch and (len(batch) == MAX_BATCH_ENTRIES or total + size(item) > MAX_ENTRY_BYTES):
            yield batch
            batch, total = [], 0
        batch.append(item)
        total += size(item)
    if batch:
        yield batch


class Redrive:
    """Carries out the plans of one dead-letter queue's messages: send, then delete."""

    def __init__(self, deployment: Deployment, queue: DeadLetterQueue, *, dry_run: bool, now: float) -> None:
        self.deployment = deployment
        self.queue = queue
        self.dry_run = dry_run
        self.now = now
        self.sqs = deployment.client("sqs")
        # Both read before anything is received: a stack without them fails with nothing touched.
        self.queue_url = deployment.output(queue.url_output)
        self.target = deployment.output(queue.destination_output)
        self.report = Report(queue, self.queue_url, self.target, dry_run)
        self._held: list[Letter] = []  # received, to be made visible again at the end
        self._ticks: list[Letter] = []  # poller ticks, handled once all are read

    def run(self) -> Report:
        with aws_errors(f"reading the {self.queue.label}"):
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
        self.report.at_start = int(attributes.get("ApproximateNumberOfMessages", 0))
        self.report.in_flight = int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))
        try:
            self._drain()
            if self._ticks:
                self._sweep()
        except CliError as err:
            moved = self.report.count(Result.MOVED)
            raise CliError(
                f"{err.message} ({moved} moved before that; run the command again for the rest)", err.code
            ) from None
        finally:
            self._release()
        if self.report.in_flight:
            self.report.notes.append(
                f"{self.report.in_flight} more were in flight (being read elsewhere, or held by an earlier "
                f"run): they come back within their visibility timeout; run the command again then"
            )
        return self.report

    def _drain(self) -> None:
        """Receive until the queue is empty or every message there at the start has been read."""
        received = 0
        seen: set[str] = set()
        while True:
            with aws_errors(f"receiving from the {self.queue.label}"):
                messages = self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=10,
                    VisibilityTimeout=VISIBILITY_SECONDS,
                    WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
                    MessageSystemAttributeNames=["SentTimestamp"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            if not messages:
                return
            received += len(messages)
            letters = [Letter.received(m, self.queue.kind, self.now) for m in messages if m["MessageId"] not in seen]
            seen.update(letter.message_id for letter in letters)
            self.report.letters.extend(letters)
            self._handle(letters)
            if received >= self.report.at_start:
                return

    def _handle(self, letters: list[Letter]) -> None:
        movable = []
        for letter in letters:
            if letter.plan.destination is None:  # stays (Result.LEFT)
                self._held.append(letter)
            elif self.dry_run:
                letter.result = Result.WOULD_MOVE
                self._held.append(letter)
            elif letter.plan.destination is Destination.POLLER:
                self._ticks.append(letter)
            else:
                movable.append(letter)
        if not movable:
            return
        if self.queue.destination is Destination.BUS:
            self._put_events(movable)
        else:
            self._send_messages(movable)
        self._settle(movable)

    def _send_messages(self, letters: list[Letter]) -> None:
        """SendMessageBatch to the destination queue: the body only (a rule's ERROR_* attributes
        stay behind, so a message that comes back is not taken for the rule's)."""
        for batch in batches(letters, lambda letter: len(letter.body.encode("utf-8"))):
            entries = [{"Id": str(i), "MessageBody": letter.body} for i, letter in enumerate(batch)]
            try:
                with aws_errors(f"could not send to the {self.queue.destination.value}"):
                    answer = self.sqs.send_message_batch(QueueUrl=self.target, Entries=entries)
            except CliError as err:
                self._fail(batch, err.message)
                continue
            failed = _refusals(answer)
            for i, letter in enumerate(batch):
                if str(i) in failed:
                    self._fail([letter], f"the {self.queue.destination.value} refused it: {failed[str(i)]}")
                elif any(s["Id"] == str(i) for s in answer.get("Successful", [])):
                    letter.result = Result.MOVED
                else:  # neither: SQS did not say, so it may not be there
                    self._fail([letter], "SQS did not confirm it")

    def _put_events(self, letters: list[Letter]) -> None:
        """PutEvents of the original events; an entry refused (FailedEntryCount) stays."""
        pending = [(letter, letter.plan.bus_entry.entry(self.target)) for letter in letters if letter.plan.bus_entry]
        for batch in batches(pending, lambda pair: entry_size(pair[1])):
            try:
                with aws_errors("could not put it on the bus"):
                    answer = self.deployment.client("events").put_events(Entries=[entry for _, entry in batch])
            except CliError as err:
                self._fail([letter for letter, _ in batch], err.message)
                continue
            results = answer.get("Entries", [])
            for i, (letter, _) in enumerate(batch):
                outcome = results[i] if i < len(results) else {}
                if outcome.get("EventId") and not outcome.get("ErrorCode"):
                    letter.result = Result.MOVED
                else:
                    refusal = f"{outcome.get('ErrorCode', 'no event id')}: {outcome.get('ErrorMessage', '')}"
                    self._fail([letter], f"the bus refused it: {refusal.rstrip(': ')}")

    def _sweep(self) -> None:
        """One asynchronous poller invoke with the latest tick: a sweep catches up on them all."""
        latest = max(self._ticks, key=lambda letter: letter.sent_at)
        try:
            with aws_errors("could not invoke the poller"):
                self.deployment.client("lambda").invoke(
                    FunctionName=self.target, InvocationType="Event", Payload=latest.body.encode("utf-8")
                )
        except CliError as err:
            self._fail(self._ticks, err.message)
            return
        self.report.sweep_started = True
        for letter in self._ticks:
            letter.result = Result.MOVED
        self._settle(self._ticks)

    def _fail(self, letters: list[Letter], reason: str) -> None:
        for letter in letters:
            letter.result = Result.FAILED
            letter.reason = reason
        self._held.extend(letters)

    def _settle(self, letters: list[Letter]) -> None:
        """Delete what was moved. A failed delete leaves a copy behind, moved again by the next run
        (a harmless duplicate); it is reported, never retried blindly."""
        moved = [letter for letter in letters if letter.result is Result.MOVED]
        for batch in batches(moved, lambda _: 1):
            entries = [{"Id": str(i), "ReceiptHandle": letter.receipt_handle} for i, letter in enumerate(batch)]
            try:
                with aws_errors(NOT_DELETED):
                    answer = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
                failed = {i: f"{NOT_DELETED}: {refusal}" for i, refusal in _refusals(answer).items()}
            except CliError as err:
                failed = {str(i): err.message for i in range(len(batch))}
            for i, letter in enumerate(batch):
                if str(i) in failed:
                    letter.reason = failed[str(i)]  # its result stays MOVED: the copy left is a duplicate

    def _release(self) -> None:
        """Make what stays visible again at once (otherwise it would hide for VISIBILITY_SECONDS)."""
        unswept = [tick for tick in self._ticks if tick.result is Result.LEFT]  # the run stopped before
        for batch in batches([*self._held, *unswept], lambda _: 1):
            entries = [
                {"Id": str(i), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
                for i, letter in enumerate(batch)
            ]
            try:
                with aws_errors("could not make it visible again"):
                    answer = self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
                failed = answer.get("Failed", [])
            except CliError:
                failed = entries
            if failed:
                self.report.notes.append(
                    f"{len(failed)} messages left in the dead-letter queue stay hidden for up to {VISIBILITY_SECONDS} s"
                )


def _refusals(answer: Mapping[str, Any]) -> dict[str, str]:
    """The entries an SQS batch call refused, by ``Id``: ``{"0": "Code: Message"}``.

    >>> _refusals({"Successful": [{"Id": "0"}], "Failed": [{"Id": "1", "Code": "AccessDenied", "Message": "no"}]})
    {'1': 'AccessDenied: no'}
    """
    return {f["Id"]: f"{f.get('Code', 'error')}: {f.get('Message', '')}" for f in answer.get("Failed", [])}


# --- the command ------------------------------------------------------------------------------


def redrive(ctx: Context) -> int:
    queue = QUEUES[Kind(ctx.args.queue)]
    report = Redrive(ctx.deployment, queue, dry_run=bool(ctx.args.dry_run), now=ctx.clock()).run()
    if ctx.json:
        render.print_json(report.record(), ctx.out)
    elif report.letters:
        print(report.text(), file=ctx.out)
    else:
        ctx.say(f"the {queue.label} is empty: nothing to move")
    if not ctx.json:
        for letter in report.letters:
            if letter.plan.warning:
                ctx.say(f"warning: {letter.plan.about}: {letter.plan.warning}")
        for note in report.notes:
            ctx.say(f"note: {note}")
    if not report.dry_run and report.stuck:
        raise CliError(next_steps(report, ctx.deployment.name), ExitCode.STACK)
    return ExitCode.OK


def next_steps(report: Report, stack: str) -> str:
    """Why messages are still in the dead-letter queue, and what to do about each kind of them."""
    queue = report.queue
    failed = [letter for letter in report.stuck if letter.result is Result.FAILED]
    left = [letter for letter in report.stuck if letter.result is Result.LEFT]
    undeleted = [letter for letter in report.stuck if letter.result is Result.MOVED]
    lines = [f"{_count(len(report.stuck), 'message')} still in the {queue.label} of stack {stack!r}:"]
    if failed:
        reasons = sorted({letter.reason or "" for letter in failed})
        lines.append(
            f"- {len(failed)} could not be moved ({'; '.join(reasons)}): fix that, then run "
            f"`grokvideo redrive {queue.kind.value}` again"
        )
    if left:
        problems = sorted({letter.plan.problem or "" for letter in left})
        lines.append(
            f"- {len(left)} cannot go back ({'; '.join(problems)}): read them with `aws sqs receive-message "
            f"--queue-url {report.queue_url} --message-attribute-names All` and delete them once handled"
        )
    if undeleted:
        reasons = sorted({letter.reason or "" for letter in undeleted})
        lines.append(
            f"- {len(undeleted)} were moved but are still there ({'; '.join(reasons)}): the next redrive "
            "moves them again (a harmless duplicate): fix that first, or it leaves them behind again"
        )
    return "\n".join(lines)
