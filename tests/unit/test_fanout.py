"""plan_sweeps and dispatched_shards, row by row and by property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grokvideo.fanout import SweepPlan, dispatched_shards, plan_sweeps

ROWS = [
    # backlog per shard, capacity, max sweepers -> plan
    ({0: 0, 1: 0, 2: 0, 3: 0}, 600, 4, SweepPlan((0, 1, 2, 3))),
    ({0: 150, 1: 150, 2: 150, 3: 150}, 600, 4, SweepPlan((0, 1, 2, 3))),  # exactly one sweep's worth
    ({0: 151, 1: 150, 2: 150, 3: 150}, 600, 4, SweepPlan((0, 3), ((1, 2),))),
    ({0: 1000, 1: 0, 2: 0, 3: 0}, 600, 4, SweepPlan((0, 1, 2, 3))),  # one hot shard: no split helps
    ({0: 900, 1: 900, 2: 900, 3: 900}, 600, 4, SweepPlan((0,), ((1,), (2,), (3,)))),
    ({0: 900, 1: 900, 2: 900, 3: 900}, 600, 1, SweepPlan((0, 1, 2, 3))),  # fan-out switched off
    ({0: 5000}, 600, 4, SweepPlan((0,))),  # one shard cannot be split
    ({0: 0, 1: 0, 2: 3}, 1, 3, SweepPlan((0, 1, 2))),  # idle shards get no sweep of their own
    ({0: 0, 1: 700, 2: 700, 3: 0}, 600, 4, SweepPlan((0, 1), ((2, 3),))),
    ({0: 10, 1: 10, 2: 10, 3: 10, 4: 10, 5: 10}, 20, 3, SweepPlan((0, 3), ((1, 4), (2, 5)))),
]


@pytest.mark.parametrize(("backlog", "capacity", "max_sweepers", "plan"), ROWS)
def test_plan(backlog: dict[int, int], capacity: int, max_sweepers: int, plan: SweepPlan) -> None:
    assert plan_sweeps(backlog, capacity=capacity, max_sweepers=max_sweepers) == plan


@given(
    st.dictionaries(st.integers(0, 15), st.integers(0, 5000), min_size=1),
    st.integers(1, 2000),
    st.integers(1, 16),
)
def test_every_shard_is_swept_once_by_no_more_sweeps_than_needed(
    backlog: dict[int, int], capacity: int, max_sweepers: int
) -> None:
    plan = plan_sweeps(backlog, capacity=capacity, max_sweepers=max_sweepers)
    groups = [plan.mine, *plan.others]
    swept = [shard for group in groups for shard in group]
    assert sorted(swept) == sorted(backlog)
    assert all(groups) and len(groups) <= max_sweepers
    total = sum(backlog.values())
    assert len(groups) == 1 or (len(groups) - 1) * capacity < total  # never one sweep more than needed


@pytest.mark.parametrize(
    "event",
    [
        {"sweep_shards": []},
        {"sweep_shards": [1, 1]},
        {"sweep_shards": [-1]},
        {"sweep_shards": [16]},
        {"sweep_shards": ["1"]},
        {"sweep_shards": [True]},
        {"sweep_shards": 3},
    ],
)
def test_a_malformed_dispatch_is_refused(event: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"sweep_shards must be distinct shard numbers 0\.\.15"):
        dispatched_shards(event)
