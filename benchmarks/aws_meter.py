"""Every AWS API call the code under test makes, counted with what it bills.

``AwsMeter.installed()`` wraps botocore's ``Session.create_client``, so every client created
while it is active (boto3's default session, Powertools' own sessions, resources' clients) gets a
``before-call`` and an ``after-call`` hook. Each call is recorded with who made it (``payer``: the
function being run, set by the caller), its service and operation, whether it succeeded, the
64 KB chunks its payload bills as (PutEvents entries, SQS message bodies), and for DynamoDB the
request units it costs, computed from the item as it was before and after the call
(``benchmarks.dynamodb_units``; moto reports no real consumed capacity). Those images are read
with a client of the meter's own, which is not counted, or with ``read_item`` (the simulation reads
in-process moto's tables directly: a tenth of the time); the time spent in the hooks is kept in
``hook_seconds`` so a caller timing a handler can leave the meter's own work out.

``intercept(service, operation, answer)`` answers a call without sending it (the simulation owns
the SQS queues the functions change the visibility of); the call is still counted.

Use (needs AWS, so not a doctest)::

    meter = AwsMeter(tables={"jobs": shape})
    with meter.installed():
        meter.payer = "poller"
        boto3.client("events").put_events(Entries=[...])
    meter.calls[-1].operation
    # -> 'PutEvents'
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import botocore.session

from benchmarks.dynamodb_units import Index, read_units, write_units
from grokvideo.events import entry_size

CHUNK_BYTES = 64 * 1024  # EventBridge and SQS bill a payload per started 64 KB
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
Answer = Callable[[Mapping[str, Any]], dict[str, Any]]
ItemReader = Callable[[str, dict[str, Any]], dict[str, Any] | None]  # (table, key) -> item, wire format


@dataclass(frozen=True, slots=True)
class TableShape:
    """What the unit rules need of a table: its key attributes and its global secondary indexes."""

    keys: tuple[str, ...]
    indexes: tuple[Index, ...]

    @classmethod
    def from_description(cls, table: Mapping[str, Any]) -> TableShape:
        """From DescribeTable's ``Table`` (or the template's table properties)."""
        return cls(
            keys=tuple(str(k["AttributeName"]) for k in table["KeySchema"]),
            indexes=tuple(Index.from_description(g) for g in table.get("GlobalSecondaryIndexes", ())),
        )


@dataclass(slots=True)
class Call:
    """One API call and what it bills."""

    payer: str
    phase: str
    service: str  # botocore's service name: dynamodb, events, sqs, s3, secretsmanager, ...
    operation: str
    ok: bool
    chunks: int = 1  # billed requests: PutEvents entries and SQS payloads per started 64 KB
    entries: int = 0  # PutEvents entries
    write_units: dict[str, int] = field(default_factory=dict)  # DynamoDB, by "table" and index name
    read_units: float = 0.0


@dataclass(frozen=True, slots=True)
class _Reply:
    """The HTTP side of an intercepted call (botocore reads its status code)."""

    status_code: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    text: str = ""
    content: bytes = b""


class AwsMeter:
    def __init__(
        self, tables: Mapping[str, TableShape], *, region: str = "us-east-1", read_item: ItemReader | None = None
    ) -> None:
        self.tables = dict(tables)
        self.region = region
        self.payer = "harness"
        self.phase = "setup"
        self.calls: list[Call] = []
        self.hook_seconds = 0.0
        self.events_put = 0  # successful PutEvents calls so far (a rule may have delivered something)
        self._answers: dict[tuple[str, str], Answer] = {}
        self._lock = threading.Lock()
        self._read_item = read_item

    def intercept(self, service: str, operation: str, answer: Answer) -> None:
        """Answer ``service``/``operation`` with ``answer(request)`` instead of sending it (still counted)."""
        self._answers[(service, operation)] = answer

    @contextmanager
    def installed(self) -> Iterator[AwsMeter]:
        """Hook every botocore client created inside the block."""
        original = botocore.session.Session.create_client
        if self._read_item is None:
            reader = original(botocore.session.get_session(), "dynamodb", region_name=self.region)
            self._read_item = lambda table, key: reader.get_item(TableName=table, Key=key, ConsistentRead=True).get(
                "Item"
            )
        meter = self

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            # First, and on the service's own event name: boto3's DynamoDB resource registers a hook
            # there that turns the answer into Python values; the meter reads the wire format.
            service_id = client.meta.service_model.service_id.hyphenize()
            client.meta.events.register_first(f"before-call.{service_id}", meter.before_call)
            client.meta.events.register_first(f"after-call.{service_id}", meter.after_call)
            return client

        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
        try:
            yield self
        finally:
            botocore.session.Session.create_client = original  # type: ignore[method-assign]

    # --- hooks --------------------------------------------------------------------------------

    def before_call(self, model: Any, params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> Any:
        started = time.perf_counter()
        try:
            service, operation = model.service_model.service_name, model.name
            request = decode_body(params.get("body"))
            context["meter_request"] = request
            if service == "dynamodb" and operation in DYNAMODB_WRITES:
                context["meter_before"] = self._image(request)
            answer = self._answers.get((service, operation))
            if answer is not None:
                return _Reply(), answer(request)
            return None
        finally:
            self._spent(started)

    def after_call(self, http_response: Any, parsed: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any):
        started = time.perf_counter()
        try:
            service, operation = model.service_model.service_name, model.name
            request = context.get("meter_request", {})
            ok = int(getattr(http_response, "status_code", 500)) < 300
            call = Call(self.payer, self.phase, service, operation, ok)
            if service == "events" and operation == "PutEvents":
                entries = request.get("Entries", [])
                call.entries = len(entries)
                call.chunks = sum(max(1, math.ceil(entry_size(e) / CHUNK_BYTES)) for e in entries)
            elif service == "sqs" and operation in ("SendMessage", "SendMessageBatch"):
                bodies = [request.get("MessageBody", "")] + [
                    e.get("MessageBody", "") for e in request.get("Entries", [])
                ]
                call.chunks = max(1, math.ceil(sum(len(str(b).encode()) for b in bodies) / CHUNK_BYTES))
            elif service == "dynamodb":
                self._dynamodb_units(call, request, parsed, context)
            with self._lock:
                self.calls.append(call)
                self.events_put += int(call.entries > 0 and call.ok)
        finally:
            self._spent(started)

    # --- DynamoDB -----------------------------------------------------------------------------

    def _dynamodb_units(self, call: Call, request: Mapping[str, Any], parsed: Mapping[str, Any], context: Any) -> None:
        operation = call.operation
        if operation in DYNAMODB_WRITES:
            shape = self.tables.get(str(request.get("TableName")))
            if shape is None:
                return
            before = context.get("meter_before")
            failed = not call.ok and parsed.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
            after = before if not call.ok else self._image(request)
            if call.ok or failed:
                call.write_units = write_units(
                    before, after, table_keys=shape.keys, indexes=shape.indexes, condition_failed=failed
                )
        elif operation == "GetItem":
            item = parsed.get("Item")
            call.read_units = read_units([item] if item else [], consistent=bool(request.get("ConsistentRead")))
        elif operation in ("Query", "Scan"):
            consistent = bool(request.get("ConsistentRead")) and not request.get("IndexName")
            call.read_units = read_units(parsed.get("Items", []), consistent=consistent)
        elif operation == "BatchGetItem":
            for table, items in parsed.get("Responses", {}).items():
                consistent = bool(request.get("RequestItems", {}).get(table, {}).get("ConsistentRead"))
                call.read_units += read_units(items, consistent=consistent) if items else 0.0
        elif operation == "BatchWriteItem":
            writes = sum(len(v) for v in request.get("RequestItems", {}).values())
            call.write_units = {"table": writes}  # no batch writes in the functions; counted at 1 unit each

    def _image(self, request: Mapping[str, Any]) -> dict[str, Any] | None:
        """The item the request names, as it is now (read with the meter's own, uncounted client)."""
        name = str(request.get("TableName"))
        shape = self.tables.get(name)
        if shape is None:
            return None
        source = request.get("Key") or request.get("Item") or {}
        key = {k: source[k] for k in shape.keys if k in source}
        if len(key) != len(shape.keys):
            return None
        assert self._read_item is not None, "read_item is set by installed()"
        item = self._read_item(name, key)
        return dict(item) if item else None

    def _spent(self, started: float) -> None:
        with self._lock:
            self.hook_seconds += time.perf_counter() - started


def decode_body(body: Any) -> dict[str, Any]:
    """The request's parameters from a JSON or query-string body ({} for anything else, e.g. S3's).

    >>> decode_body(b'{"TableName": "jobs"}'), decode_body("Action=SendMessage&QueueUrl=q")
    ({'TableName': 'jobs'}, {'Action': 'SendMessage', 'QueueUrl': 'q'})
    """
    if isinstance(body, bytes | bytearray):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            return {}
    if not isinstance(body, str) or not body:
        return {}
    if body.startswith("{"):
        try:
            value = json.loads(body)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    return {k: v[0] for k, v in parse_qs(body).items()}
