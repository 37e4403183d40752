"""DynamoDB's wire format (``{"S": ...}``, ``{"N": ...}``) for the values the jobs table holds.

The job store talks to the low-level DynamoDB client, not boto3's ``resource`` layer: the
resource walks every request and answer through ``TypeSerializer``/``TypeDeserializer`` by the
operation's shape, a quarter of a claim's CPU in the sweeping process (``benchmarks/poll_sweep.py``).
The table's items hold only strings and numbers (objects are stored as JSON strings), so the
conversion is a dictionary lookup per attribute. Numbers come back as ``int`` when integral and
``float`` otherwise, as ``Job`` expects; a number is sent as the exact decimal of its value.

>>> encode_item({"request_id": "4b2cd27e", "attempts": 2, "cost_usd": 0.05})
{'request_id': {'S': '4b2cd27e'}, 'attempts': {'N': '2'}, 'cost_usd': {'N': '0.05'}}
>>> decode_item({"attempts": {"N": "2"}, "cost_usd": {"N": "0.05"}, "done": {"BOOL": True}})
{'attempts': 2, 'cost_usd': 0.05, 'done': True}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any


def encode(value: Any) -> dict[str, Any]:
    """One attribute value on the wire: str, bool, int, finite float, Decimal, bytes, None, and
    lists and mappings of those.

    >>> encode(3), encode(1e-7), encode("PENDING"), encode(None)
    ({'N': '3'}, {'N': '1E-7'}, {'S': 'PENDING'}, {'NULL': True})
    """
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is int:
        return {"N": str(value)}
    if kind is bool:
        return {"BOOL": value}
    if kind is float:
        if not math.isfinite(value):
            raise TypeError(f"DynamoDB cannot store the number {value!r}")
        return {"N": str(Decimal(repr(value)))}
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"DynamoDB cannot store the number {value!r}")
        return {"N": str(value)}
    if isinstance(value, str):  # a StrEnum member
        return {"S": str(value)}
    if isinstance(value, int):  # an IntEnum member
        return {"N": str(int(value))}
    if value is None:
        return {"NULL": True}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": encode_item(value)}
    if isinstance(value, list | tuple):
        return {"L": [encode(v) for v in value]}
    raise TypeError(f"no DynamoDB type for {type(value).__name__}")


def encode_item(item: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every attribute of ``item`` on the wire."""
    return {name: encode(value) for name, value in item.items()}


def decode(value: Mapping[str, Any]) -> Any:
    """One attribute value off the wire (numbers: ``int`` when integral, else ``float``).

    >>> decode({"N": "1800000000"}), decode({"N": "1.0"}), decode({"N": "-0.5"}), decode({"L": [{"S": "a"}]})
    (1800000000, 1, -0.5, ['a'])
    """
    for kind, raw in value.items():
        if kind == "S":
            return raw
        if kind == "N":
            return _number(raw)
        if kind == "BOOL":
            return raw
        if kind == "NULL":
            return None
        if kind == "M":
            return decode_item(raw)
        if kind == "L":
            return [decode(v) for v in raw]
        if kind == "B":
            return raw
        if kind in ("SS", "BS"):
            return set(raw)
        if kind == "NS":
            return {_number(n) for n in raw}
    raise TypeError(f"not a DynamoDB attribute value: {value!r}")


def decode_item(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Every attribute of a wire item as a plain value."""
    return {name: decode(value) for name, value in item.items()}


def _number(raw: str) -> int | float:
    try:
        return int(raw)
    except ValueError:
        number = Decimal(raw)
        return int(number) if number == number.to_integral_value() else float(number)
