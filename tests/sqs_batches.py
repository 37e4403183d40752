"""An SQS event as Lambda's event source mapping hands it to a function, built from a real queue."""

from __future__ import annotations

import time
from typing import Any

import boto3


def receive_batch(url: str, arn: str, *, wait: float = 0, max_messages: int = 10) -> dict[str, Any]:
    """The visible messages of the queue at ``url`` as one Lambda SQS event (waiting up to ``wait`` s)."""
    deadline = time.monotonic() + wait
    while True:
        got = boto3.client("sqs").receive_message(
            QueueUrl=url, MaxNumberOfMessages=max_messages, AttributeNames=["All"], WaitTimeSeconds=0
        )
        messages = got.get("Messages", [])
        if messages or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }
