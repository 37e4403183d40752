"""Backoff: when to ask the provider about a job again after a poll that told us nothing.

After an error (5xx, a timeout, an unreadable answer, a fresh id the provider does not know yet)
or a "done" without a URL, the gap grows from ``first_delay`` exponentially with the job's
attempts, with "equal jitter" (half fixed, half random) up to ``cap``, so a crowd of jobs failing
together spreads out instead of polling in lockstep. (A pending answer is timed by its progress
instead: ``grokvideo.schedule``.)

>>> import random
>>> schedule = PollSchedule(first_delay=5, cap=60, rng=random.Random(7))
>>> [round(schedule.delay(n)) for n in range(6)]
[3, 6, 17, 21, 46, 41]
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# CometAPI refreshes its view of a job about every 15 s; gaps grow from the first delay by
# this factor per attempt.
GROWTH = 2.0


@dataclass(slots=True)
class PollSchedule:
    first_delay: float = 5.0
    cap: float = 60.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempts: int) -> float:
        """Seconds to wait before the next poll of a job that has been polled ``attempts`` times."""
        # The exponent is clamped: past ~30 doublings every gap is the cap anyway, and 2.0**1024
        # overflows.
        ceiling = min(self.cap, self.first_delay * GROWTH ** min(max(0, attempts), 30))
        ceiling = max(ceiling, 1.0)
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)
