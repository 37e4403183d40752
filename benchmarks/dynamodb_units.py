"""DynamoDB request units from item images: what an on-demand table bills for one request.

moto answers ``ReturnConsumedCapacity`` with a fixed 0.5 or 1.0 whatever the item and ignores the
indexes, so the cost benchmark computes the units itself, from the item as it was before a write
and as it is after, with DynamoDB's published rules
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations):

- item size: attribute names plus values; a string is its UTF-8 bytes, a number about one byte per
  two significant digits plus one, a binary its bytes, a boolean or null one byte, a list or map
  3 bytes plus its elements (one more byte each);
- a write: 1 unit per started KB of the larger of the item before and after (at least 1); a write
  whose condition fails still costs the item's size (no index is written);
- each global secondary index the write touches: an entry put or deleted costs its size in KB; an
  entry whose index keys change costs a delete plus a put; an entry whose projected attributes change
  costs the larger size; an index entry is its projected attributes, keys included, plus 100 bytes;
- a read: 1 unit per started 4 KB (strongly consistent) or half of it (eventually consistent, and
  every index query), a query paying for the items it read all together, at least half a unit.

Items are in DynamoDB's wire format (``{"S": "..."}``), as botocore sends and receives them.

>>> job = {"request_id": {"S": "r1"}, "state": {"S": "PENDING"}, "due_shard": {"N": "2"}, "next_poll_at": {"N": "1700"}}
>>> item_size(job)
49
>>> due = Index("due", keys=("due_shard", "next_poll_at"), projection="ALL")
>>> claimed = {**job, "lease_owner": {"S": "sweep-1"}}
>>> write_units(job, claimed, table_keys=("request_id",), indexes=[due])
{'table': 1, 'due': 1}
>>> gone = {k: v for k, v in claimed.items() if k not in due.keys}
>>> write_units(claimed, gone, table_keys=("request_id",), indexes=[due])
{'table': 1, 'due': 1}
>>> read_units([job], consistent=True), read_units([], consistent=False)
(1.0, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

Item = Mapping[str, Any]  # one item in the wire format: name -> {"S": ...} | {"N": ...} | ...

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
INDEX_ENTRY_OVERHEAD = 100


@dataclass(frozen=True, slots=True)
class Index:
    """A global secondary index: its key attributes and what it projects."""

    name: str
    keys: tuple[str, ...]
    projection: str  # ALL | KEYS_ONLY | INCLUDE
    include: tuple[str, ...] = ()

    @classmethod
    def from_description(cls, gsi: Mapping[str, Any]) -> Index:
        """From one entry of DescribeTable's (or the template's) ``GlobalSecondaryIndexes``."""
        projection = gsi.get("Projection", {})
        return cls(
            name=str(gsi["IndexName"]),
            keys=tuple(str(k["AttributeName"]) for k in gsi["KeySchema"]),
            projection=str(projection.get("ProjectionType", "ALL")),
            include=tuple(str(a) for a in projection.get("NonKeyAttributes", ())),
        )

    def holds(self, item: Item | None) -> bool:
        """True when the item has every key attribute of the index (the index is sparse otherwise)."""
        return item is not None and all(k in item for k in self.keys)

    def entry(self, item: Item, table_keys: Sequence[str]) -> dict[str, Any]:
        """The index's copy of ``item``: its projected attributes, the table's and the index's keys."""
        if self.projection == "ALL":
            return dict(item)
        wanted = {*table_keys, *self.keys, *(self.include if self.projection == "INCLUDE" else ())}
        return {k: v for k, v in item.items() if k in wanted}


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value in the wire format.

    >>> value_size({"S": "héllo"}), value_size({"N": "1700000000"}), value_size({"BOOL": True})
    (6, 2, 1)
    >>> value_size({"M": {"a": {"S": "xy"}}}), value_size({"L": []})
    (7, 3)
    """
    (kind, raw), *_ = value.items()
    if kind == "S":
        return len(str(raw).encode("utf-8"))
    if kind == "N":
        return number_size(str(raw))
    if kind == "B":
        return len(raw if isinstance(raw, bytes | bytearray) else str(raw).encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(s).encode("utf-8")) for s in raw)
    if kind == "NS":
        return sum(number_size(str(n)) for n in raw)
    if kind == "BS":
        return sum(len(b) for b in raw)
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in raw)
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + value_size(v) + 1 for k, v in raw.items())
    raise ValueError(f"unknown attribute type {kind!r}")


def number_size(text: str) -> int:
    """About one byte per two significant digits, plus one.

    >>> number_size("5"), number_size("1700000000"), number_size("12345.678"), number_size("0")
    (2, 2, 5, 2)
    """
    digits = Decimal(text).normalize().as_tuple().digits
    return math.ceil(max(len(digits), 1) / 2) + 1


def item_size(item: Item | None) -> int:
    """Bytes of an item: every attribute's name and value (0 for no item)."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def units(size: int, unit_bytes: int) -> int:
    """Started units of ``unit_bytes`` in ``size`` bytes (0 for nothing)."""
    return math.ceil(size / unit_bytes) if size > 0 else 0


def write_units(
    before: Item | None,
    after: Item | None,
    *,
    table_keys: Sequence[str],
    indexes: Iterable[Index],
    condition_failed: bool = False,
) -> dict[str, int]:
    """Write request units of one write, by table and by index (indexes that cost nothing left out).

    ``before``/``after``: the item before and after (None where there is none). A failed condition
    writes nothing but still costs the item's size on the table.
    """
    charged = {"table": max(1, units(max(item_size(before), item_size(after)), WRITE_UNIT_BYTES))}
    if condition_failed:
        charged["table"] = max(1, units(item_size(before), WRITE_UNIT_BYTES))
        return charged
    for index in indexes:
        cost = index_write_units(index, before, after, table_keys)
        if cost:
            charged[index.name] = cost
    return charged


def index_write_units(index: Index, before: Item | None, after: Item | None, table_keys: Sequence[str]) -> int:
    """What one write costs on one index (0 when the index's copy does not change)."""
    old = index.entry(before, table_keys) if index.holds(before) and before is not None else None
    new = index.entry(after, table_keys) if index.holds(after) and after is not None else None

    def entry_units(entry: Item) -> int:
        return max(1, units(item_size(entry) + INDEX_ENTRY_OVERHEAD, WRITE_UNIT_BYTES))

    if old is None and new is None:
        return 0
    if old is None and new is not None:
        return entry_units(new)
    if new is None and old is not None:
        return entry_units(old)
    assert old is not None and new is not None
    if any(old.get(k) != new.get(k) for k in index.keys):
        return entry_units(old) + entry_units(new)
    if old != new:
        return max(entry_units(old), entry_units(new))
    return 0


def read_units(items: Iterable[Item], *, consistent: bool) -> float:
    """Read request units of a GetItem or Query that read ``items`` (at least half a unit, or one
    when strongly consistent)."""
    started = max(1, units(sum(item_size(i) for i in items), READ_UNIT_BYTES))
    return float(started) if consistent else started / 2
