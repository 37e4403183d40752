"""SQS partial batch responses: each message handled alone, the ones that failed reported back.

Lambda's SQS event source mapping, with ``ReportBatchItemFailures``, deletes every message of a
batch except those the function names in ``batchItemFailures``; those come back. The copier and
the submit function used Powertools' ``BatchProcessor`` for this, which at import brings asyncio
and every event class Powertools has (DynamoDB streams, Kinesis, API Gateway...): ~25 ms of a
cold start, for four fields of an SQS record (``benchmarks/cold_start.py``).

>>> def double(message, context):
...     return 2 * int(message.body)
>>> event = {"Records": [
...     {"messageId": "m1", "body": "21", "receiptHandle": "h1", "attributes": {"ApproximateReceiveCount": "2"}},
...     {"messageId": "m2", "body": "not a number", "receiptHandle": "h2", "attributes": {}},
... ]}
>>> process_batch(event, double, context=None)
{'batchItemFailures': [{'itemIdentifier': 'm2'}]}
>>> SqsMessage.from_record(event["Records"][0]).receive_count
2
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SqsMessage:
    """What the handlers read of one record of an SQS event."""

    message_id: str
    body: str
    receipt_handle: str
    receive_count: int  # ApproximateReceiveCount: 1 on the first delivery

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> SqsMessage:
        attributes = record.get("attributes") or {}
        try:
            receives = max(1, int(attributes.get("ApproximateReceiveCount") or 1))
        except (TypeError, ValueError):
            receives = 1
        return cls(
            message_id=str(record["messageId"]),
            body=str(record.get("body") or ""),
            receipt_handle=str(record.get("receiptHandle") or ""),
            receive_count=receives,
        )


def process_batch(
    event: Mapping[str, Any], handle: Callable[[SqsMessage, Any], object], *, context: Any
) -> dict[str, list[dict[str, str]]]:
    """Call ``handle(message, context)`` for each record; a record whose call raises is reported
    as failed (and comes back), the others are done. A batch never fails as a whole."""
    failures: list[dict[str, str]] = []
    for record in event.get("Records") or []:
        message = SqsMessage.from_record(record)
        try:
            handle(message, context)
        except Exception as err:  # noqa: BLE001 - the record fails alone; the handler logged why
            log.debug("record failed: %s", type(err).__name__)
            failures.append({"itemIdentifier": message.message_id})
    return {"batchItemFailures": failures}
