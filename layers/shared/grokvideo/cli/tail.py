"""``events``: print the stack's output events as they happen.

EventBridge keeps no history a command could read, so ``events`` puts a temporary tap on the
stack's bus: a rule matching the stack's ``source`` that copies every event into a temporary SQS
queue, read by long polling. The tap is removed when the command ends, however it ends (the
time or the count reached, an error, Ctrl-C); what could not be removed is named on stderr with
the command that removes it. ``EventTap`` is that tap, for anything that needs to see the output
events as delivered (the system tests and the chaos run use it too).

Use (needs AWS, so not a doctest)::

    with EventTap(events_client, sqs_client, bus="grokvideo-bus", source="grokvideo",
                  name=EventTap.name_for("grokvideo")) as tap:
        for event in tap.receive(wait_seconds=20):
            print(event["detail-type"], event["detail"]["request_id"])
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable
from types import TracebackType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from grokvideo.cli import render
from grokvideo.cli.context import Context
from grokvideo.cli.deployment import aws_errors
from grokvideo.cli.exits import ExitCode

LONG_POLL_SECONDS = 20  # SQS's longest wait for a receive
TARGET_ID = "tap"
# Encrypted like the stack's queues; should the tap outlive its reader (a killed process), it keeps
# an hour of events, not the default four days.
QUEUE_ATTRIBUTES = {"SqsManagedSseEnabled": "true", "MessageRetentionPeriod": "3600"}


class EventTap:
    """A temporary rule on ``bus`` (pattern ``{"source": [source]}``) into a temporary queue, both
    called ``name``. ``open`` sets them up, ``receive`` returns the events delivered since (each
    once: the messages are deleted), ``close`` removes them. As a context manager it opens and
    always closes, removing what was set up even when ``open`` fails halfway."""

    def __init__(self, events: Any, sqs: Any, *, bus: str, source: str, name: str) -> None:
        self.events = events
        self.sqs = sqs
        self.bus = bus
        self.source = source
        self.name = name
        self.queue_url: str | None = None
        self.rule_arn: str | None = None
        self.targeted = False
        self.leftovers: list[str] = []  # what the last close could not remove, and how to

    @staticmethod
    def name_for(stack: str) -> str:
        """``<stack>-tail-<random>``, within the limits of rule (64) and queue (80) names.

        >>> name = EventTap.name_for("grokvideo")
        >>> name.startswith("grokvideo-tail-"), len(name)
        (True, 23)
        """
        return f"{stack[:48]}-tail-{secrets.token_hex(4)}"

    def open(self) -> EventTap:
        self.queue_url = self.sqs.create_queue(QueueName=self.name, Attributes=QUEUE_ATTRIBUTES)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.rule_arn = self.events.put_rule(
            Name=self.name,
            EventBusName=self.bus,
            EventPattern=json.dumps({"source": [self.source]}),
            State="ENABLED",
            Description="a temporary tap of grokvideo's output events, removed when its reader ends",
        )["RuleArn"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": self.rule_arn}},
                }
            ],
        }
        self.sqs.set_queue_attributes(QueueUrl=self.queue_url, Attributes={"Policy": json.dumps(policy)})
        self.events.put_targets(Rule=self.name, EventBusName=self.bus, Targets=[{"Id": TARGET_ID, "Arn": queue_arn}])
        self.targeted = True
        return self

    def receive(self, wait_seconds: int = 0, limit: int = 10) -> list[dict[str, Any]]:
        """The events delivered so far (at most ``limit``, up to 10), waiting up to ``wait_seconds``
        for the first; each EventBridge envelope as delivered."""
        if self.queue_url is None:
            raise RuntimeError("the tap is not open")
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=max(1, min(limit, 10)), WaitTimeSeconds=wait_seconds
        ).get("Messages", [])
        if messages:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        return [json.loads(m["Body"]) for m in messages]

    def close(self) -> list[str]:
        """Remove the target, the rule and the queue, each tried even when one before it failed.
        Returns (and keeps in ``leftovers``) what is left, each with the command that removes it."""
        self.leftovers = []
        bus = f"--event-bus-name {self.bus}"
        if self.targeted and self._removed(
            "the target of rule",
            f"aws events remove-targets --rule {self.name} {bus} --ids {TARGET_ID}",
            lambda: self.events.remove_targets(Rule=self.name, EventBusName=self.bus, Ids=[TARGET_ID]),
        ):
            self.targeted = False
        if self.rule_arn and self._removed(
            "the rule",
            f"aws events delete-rule --name {self.name} {bus}",
            lambda: self.events.delete_rule(Name=self.name, EventBusName=self.bus),
        ):
            self.rule_arn = None
        if self.queue_url and self._removed(
            "the queue",
            f"aws sqs delete-queue --queue-url {self.queue_url}",
            lambda: self.sqs.delete_queue(QueueUrl=self.queue_url),
        ):
            self.queue_url = None
        return self.leftovers

    def _removed(self, what: str, command: str, remove: Callable[[], object]) -> bool:
        try:
            remove()
        except (ClientError, BotoCoreError) as err:
            self.leftovers.append(f"could not remove {what} {self.name} ({err}): remove it with `{command}`")
            return False
        return True

    def __enter__(self) -> EventTap:
        try:
            return self.open()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def listen(ctx: Context, tap: EventTap) -> int:
    """Print each event as it arrives until ``--count`` events, the end of ``--seconds`` (unless
    ``--follow``), or Ctrl-C; returns how many were printed."""
    args = ctx.args
    deadline = None if args.follow else ctx.clock() + args.seconds
    seen = 0
    while args.count is None or seen < args.count:
        wait = LONG_POLL_SECONDS
        if deadline is not None:
            left = deadline - ctx.clock()
            if left <= 0:
                break
            wait = min(wait, math.ceil(left))
        limit = 10 if args.count is None else args.count - seen
        with aws_errors(f"reading events from the tap {tap.name}"):
            batch = tap.receive(wait_seconds=wait, limit=limit)
        for event in batch:
            print(json.dumps(event) if ctx.json else render.event_line(event), file=ctx.out, flush=True)
        seen += len(batch)
    return seen


def events(ctx: Context) -> int:
    deployment = ctx.deployment
    bus, source = deployment.output("EventBusName"), deployment.output("EventSource")
    tap = EventTap(
        deployment.client("events"),
        deployment.client("sqs"),
        bus=bus,
        source=source,
        name=EventTap.name_for(deployment.name),
    )
    try:
        with aws_errors(f"putting a temporary rule and queue on bus {bus}"):
            tap.open()
        ctx.say(f"listening on bus {bus} for source {source}; Ctrl-C to stop")
        seen = listen(ctx, tap)
    finally:
        for leftover in tap.close():
            ctx.say(leftover)
    ctx.say(f"{seen} event{'' if seen == 1 else 's'}")
    return ExitCode.OK
