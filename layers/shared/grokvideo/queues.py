"""SQS: hand a message back to its queue for later, without waiting out the long visibility timeout.

Use (needs AWS or the provider, so not a doctest)::

    SqsRequeue(boto3.client("sqs"), queue_url).later(record.receipt_handle, seconds=7)
"""

from __future__ import annotations

import math
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

logger = Logger(child=True)

MAX_VISIBILITY_SECONDS = 43_200  # SQS's limit (12 h)


class SqsRequeue:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self.queue_url = queue_url

    def later(self, receipt_handle: str, *, seconds: float) -> bool:
        """Make the message visible again in ``seconds`` (whole, 0..12 h); False if SQS refused.

        On False the message still comes back, after the queue's own visibility timeout.
        """
        timeout = min(max(math.ceil(seconds), 0), MAX_VISIBILITY_SECONDS)
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=timeout
            )
        except (ClientError, BotoCoreError) as err:
            logger.warning("could not shorten the message's visibility", extra={"error": type(err).__name__})
            return False
        return True
