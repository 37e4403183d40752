"""moto's in-process DynamoDB is not thread-safe; the sweep is. Serialise moto, not our code.

A query sorting a GSI while another thread removes an item's index key raises ``KeyError`` inside
moto (real DynamoDB has no such race). Tests and benchmarks that sweep with many threads against
in-process moto call ``serialize_moto_dynamodb()`` once.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_LOCK = threading.RLock()
_OPERATIONS = ("query", "scan", "get_item", "put_item", "update_item", "delete_item", "batch_write_item")


def serialize_moto_dynamodb() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    for name in _OPERATIONS:
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "_serialized", False):
            continue

        @functools.wraps(original)
        def locked(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _LOCK:
                return __original(*args, **kwargs)

        locked._serialized = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, locked)
