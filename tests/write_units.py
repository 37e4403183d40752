"""What the DynamoDB calls of a test cost, by DynamoDB's published capacity rules.

moto reports no usable ``ConsumedCapacity`` (no index figures, a flat 1.0 per write), so a
``WriteLedger`` hooks a client's calls (botocore events) and, around each write, reads the item
as it was and as it is (with a client of its own), then prices the write as DynamoDB does:

- the table: ``ceil(max(size before, size after) / 1 KB)`` units, at least 1, also for a write
  refused by its condition (priced on the item as it was);
- each global secondary index, from the index's key schema and projection: an entry put when the
  item enters the index, or stays with a projected attribute changed; deleted when it leaves; a
  delete and a put when an index key changes; nothing when no key and no projected attribute
  changes. Each costs ``ceil(entry size / 1 KB)`` units, the entry being the projected
  attributes, the index keys and the table key.

Item sizes follow DynamoDB's rules for the types the table holds: an attribute's name plus its
value (a string's UTF-8 bytes; a number about one byte per two significant digits, plus one).

>>> item_bytes({"request_id": {"S": "4b2cd27e"}, "attempts": {"N": "12"}})
28
>>> index_writes(
...     Index("due", ("due_shard", "next_poll_at"), "INCLUDE", ("state",)),
...     {"due_shard": {"N": "1"}, "next_poll_at": {"N": "100"}, "state": {"S": "PENDING"}},
...     {"due_shard": {"N": "1"}, "next_poll_at": {"N": "160"}, "state": {"S": "PENDING"}},
...     table_key=("request_id",),
... )
2
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

KB = 1024
WRITES = ("PutItem", "UpdateItem", "DeleteItem")
READS = ("GetItem", "Query", "BatchGetItem", "Scan")

Item = Mapping[str, Mapping[str, Any]]


def value_bytes(value: Mapping[str, Any]) -> int:
    (kind, raw), *_ = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        digits = Decimal(raw).normalize().as_tuple().digits
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_bytes(v) + 1 for k, v in raw.items())
    if kind == "L":
        return 3 + sum(value_bytes(v) + 1 for v in raw)
    return sum(len(str(v).encode()) for v in raw)  # sets: close enough, never used by the table


def item_bytes(item: Item | None) -> int:
    """An item's size as DynamoDB counts it (0 for no item)."""
    return sum(len(name.encode()) + value_bytes(value) for name, value in (item or {}).items())


def units(size: int) -> int:
    return max(1, math.ceil(size / KB))


@dataclass(frozen=True)
class Index:
    """A global secondary index: its key attributes and what it projects."""

    name: str
    keys: tuple[str, ...]
    projection: str  # ALL, KEYS_ONLY or INCLUDE
    non_keys: tuple[str, ...] = ()

    def entry(self, item: Item | None, table_key: tuple[str, ...]) -> dict[str, Any] | None:
        """The item's entry in this index, or None when the item is not in it (sparse)."""
        if item is None or any(k not in item for k in self.keys):
            return None
        if self.projection == "ALL":
            return dict(item)
        kept = set(self.keys) | set(table_key) | (set(self.non_keys) if self.projection == "INCLUDE" else set())
        return {k: v for k, v in item.items() if k in kept}


def index_writes(index: Index, before: Item | None, after: Item | None, *, table_key: tuple[str, ...]) -> int:
    """Write units one write costs ``index`` (DynamoDB's rules, in this module's docstring)."""
    old, new = index.entry(before, table_key), index.entry(after, table_key)
    if old is None and new is None:
        return 0
    if old is None:
        return units(item_bytes(new))
    if new is None:
        return units(item_bytes(old))
    if any(old[k] != new[k] for k in index.keys):
        return units(item_bytes(old)) + units(item_bytes(new))
    return units(item_bytes(new)) if old != new else 0


@dataclass
class Write:
    """One write call and what it cost."""

    operation: str
    key: str
    succeeded: bool
    item_bytes: int  # the larger of the item before and after
    table_units: int
    index_units: dict[str, int]


@dataclass
class WriteLedger:
    """Every write a hooked client makes, priced; and how many reads it made.

    ``reader`` is a client of the same table that is not hooked (it reads the items around each
    write); ``description`` is the table's ``DescribeTable["Table"]``.
    """

    reader: Any
    description: Mapping[str, Any]
    writes: list[Write] = field(default_factory=list)
    reads: Counter[str] = field(default_factory=Counter)
    read_bytes: Counter[str] = field(default_factory=Counter)  # items returned, by operation

    def hook(self, client: Any) -> Any:
        """Record ``client``'s calls from now on; returns the client."""
        for operation in WRITES:
            client.meta.events.register(f"before-call.dynamodb.{operation}", self._before)
            client.meta.events.register(f"after-call.dynamodb.{operation}", self._after)
        for operation in READS:
            client.meta.events.register(f"after-call.dynamodb.{operation}", self._read)
        return client

    @property
    def table_key(self) -> tuple[str, ...]:
        return tuple(k["AttributeName"] for k in self.description["KeySchema"])

    @property
    def indexes(self) -> list[Index]:
        found = []
        for gsi in self.description.get("GlobalSecondaryIndexes", []):
            projection = gsi["Projection"]
            found.append(
                Index(
                    gsi["IndexName"],
                    tuple(k["AttributeName"] for k in gsi["KeySchema"]),
                    projection["ProjectionType"],
                    tuple(projection.get("NonKeyAttributes", ())),
                )
            )
        return found

    def mark(self) -> int:
        """A bookmark: ``since(mark)`` gives the writes made after it."""
        return len(self.writes)

    def since(self, mark: int) -> list[Write]:
        return self.writes[mark:]

    # --- hooks ----------------------------------------------------------------------------------

    def _current(self, key: Mapping[str, Any]) -> dict[str, Any] | None:
        got = self.reader.get_item(TableName=self.description["TableName"], Key=dict(key), ConsistentRead=True)
        item: dict[str, Any] | None = got.get("Item")
        return item

    def _before(self, params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        body = json.loads(params["body"])
        key = body.get("Key") or {k: body["Item"][k] for k in self.table_key}
        context["write-ledger"] = (key, self._current(key))

    def _after(self, http_response: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        key, before = context.pop("write-ledger")
        succeeded = http_response.status_code < 300
        after = self._current(key) if succeeded else before
        size = max(item_bytes(before), item_bytes(after))
        self.writes.append(
            Write(
                operation=model.name,
                key=str(next(iter(key.values()))["S"]),
                succeeded=succeeded,
                item_bytes=size,
                table_units=units(size),
                index_units={
                    ix.name: index_writes(ix, before, after, table_key=self.table_key) if succeeded else 0
                    for ix in self.indexes
                },
            )
        )

    def _read(self, http_response: Any, model: Any, **_: Any) -> None:
        # From the raw answer: a resource layer's hook may already have turned ``parsed`` into
        # plain values.
        answer = json.loads(http_response.content or b"{}")
        self.reads[model.name] += 1
        self.read_bytes[model.name] += sum(item_bytes(item) for item in answer.get("Items", []))
        if "Item" in answer:
            self.read_bytes[model.name] += item_bytes(answer["Item"])


def totals(writes: list[Write]) -> dict[str, int]:
    """Calls, table units and each index's units of ``writes``."""
    out: Counter[str] = Counter(calls=len(writes), table=sum(w.table_units for w in writes))
    for w in writes:
        out.update(w.index_units)
    return dict(out)
