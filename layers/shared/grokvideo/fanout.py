"""Spreading a sweep over several poller invocations when one cannot poll the whole backlog.

Each scheduled tick counts the jobs due within the coming sweep, shard by shard. When their sum
is more than one invocation polls in a sweep (``capacity``), the tick splits the shards into
groups, keeps one and invokes the poller asynchronously for each other group; each invocation
sweeps only its shards, and all of them share the provider's rate (``ratelimit.PollBudget``).
The split is a pure function (``plan_sweeps``); ``FanOut`` only counts and invokes.

Nothing is lost if a dispatch fails: the tick sweeps that group itself, and the next tick plans
again. Jobs stranded in shards beyond ``DueShards`` (after it was lowered) are found by the tick
and polled, which moves them home.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from grokvideo.config import MAX_DUE_SHARDS
from grokvideo.jobs import JobStore

logger = Logger(child=True)

SHARDS_KEY = "sweep_shards"  # a dispatched sweep's event: {"sweep_shards": [1, 3]}


@dataclass(frozen=True, slots=True)
class SweepPlan:
    """Which shards this invocation sweeps, and the groups other invocations sweep."""

    mine: tuple[int, ...]
    others: tuple[tuple[int, ...], ...] = ()


def plan_sweeps(backlog: Mapping[int, int], *, capacity: int, max_sweepers: int) -> SweepPlan:
    """Split the shards into as few groups as the backlog needs (at most ``max_sweepers``),
    balanced by backlog (largest shard first into the lightest group).

    >>> plan_sweeps({0: 100, 1: 80, 2: 90, 3: 70}, capacity=600, max_sweepers=4)
    SweepPlan(mine=(0, 1, 2, 3), others=())
    >>> plan_sweeps({0: 300, 1: 280, 2: 290, 3: 270}, capacity=600, max_sweepers=4)
    SweepPlan(mine=(0, 3), others=((1, 2),))
    >>> plan_sweeps({0: 900, 1: 900, 2: 900, 3: 900}, capacity=600, max_sweepers=2).others
    ((1, 3),)
    """
    shards = sorted(backlog)
    total = sum(backlog.values())
    busy = sum(1 for shard in shards if backlog[shard])  # a shard with nothing due needs no sweep of its own
    wanted = max(1, min(max_sweepers, busy, math.ceil(total / max(1, capacity))))
    if wanted == 1:
        return SweepPlan(tuple(shards))
    groups: list[list[int]] = [[] for _ in range(wanted)]
    loads = [0] * wanted
    for shard in sorted(shards, key=lambda s: (-backlog[s], s)):
        # The lightest group, and of those the one with fewest shards: no group stays empty.
        lightest = min(range(wanted), key=lambda g: (loads[g], len(groups[g]), g))
        groups[lightest].append(shard)
        loads[lightest] += backlog[shard]
    mine, *others = (tuple(sorted(g)) for g in groups)
    return SweepPlan(mine, tuple(others))


def dispatched_shards(event: Mapping[str, Any]) -> tuple[int, ...] | None:
    """The shards a dispatched sweep was given, or None for a scheduled tick.

    >>> dispatched_shards({"sweep_shards": [3, 1]}), dispatched_shards({"source": "aws.scheduler"})
    ((1, 3), None)
    >>> dispatched_shards({"sweep_shards": [99]})
    Traceback (most recent call last):
    ValueError: sweep_shards must be distinct shard numbers 0..15, got [99]
    """
    if SHARDS_KEY not in event:
        return None
    shards = event[SHARDS_KEY]
    if (
        not isinstance(shards, list)
        or not shards
        or len(set(shards)) != len(shards)
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < MAX_DUE_SHARDS for s in shards)
    ):
        raise ValueError(f"{SHARDS_KEY} must be distinct shard numbers 0..{MAX_DUE_SHARDS - 1}, got {shards!r}")
    return tuple(sorted(shards))


class FanOut:
    """The tick's side of a sweep: count the backlog, plan, dispatch the other groups."""

    def __init__(
        self,
        store: JobStore,
        lambda_client: Any,
        function_arn: str,
        *,
        capacity: int,
        max_sweepers: int,
        horizon: int,
    ) -> None:
        self.store, self.lambda_client, self.function_arn = store, lambda_client, function_arn
        self.capacity, self.max_sweepers, self.horizon = capacity, max_sweepers, horizon

    def start(self, now: int) -> SweepPlan:
        """Plan this tick's sweep, dispatch the other groups; returns the plan as carried out
        (``mine`` includes any group whose dispatch failed and any stranded shard)."""
        backlog = {shard: self.store.due_count(shard, until=now + self.horizon) for shard in range(self.store.shards)}
        plan = plan_sweeps(backlog, capacity=self.capacity, max_sweepers=self.max_sweepers)
        mine = list(plan.mine)
        sent: list[tuple[int, ...]] = []
        for group in plan.others:
            if self._dispatch(group):
                sent.append(group)
            else:
                mine.extend(group)
        stranded = self.store.occupied_shards(range(self.store.shards, MAX_DUE_SHARDS))
        if stranded:
            logger.warning("jobs in shards beyond DueShards: sweeping them home", extra={"shards": stranded})
        logger.info("sweep planned", extra={"backlog": sum(backlog.values()), "mine": mine, "dispatched": sent})
        return SweepPlan(tuple(sorted(mine + stranded)), tuple(sent))

    def _dispatch(self, shards: Sequence[int]) -> bool:
        try:
            self.lambda_client.invoke(
                FunctionName=self.function_arn,
                InvocationType="Event",
                Payload=json.dumps({SHARDS_KEY: list(shards)}).encode(),
            )
        except Exception:  # any failure: this invocation sweeps the group itself
            logger.exception("could not dispatch a sweep: sweeping its shards here", extra={"shards": list(shards)})
            return False
        return True
