"""The create rate limit: a thread-safe token bucket."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``burst`` tokens, refilled at ``per_second`` tokens per second; starts full.

    >>> now = [0.0]
    >>> bucket = TokenBucket(2, burst=2, clock=lambda: now[0])
    >>> bucket.take(), bucket.take(), bucket.take()
    (0.0, 0.0, 0.5)
    >>> now[0] = 0.5; bucket.take(), bucket.take()
    (0.0, 0.5)
    """

    def __init__(self, per_second: float, burst: int = 1, *, clock: Callable[[], float] = time.monotonic) -> None:
        per_second = float(per_second)
        if not math.isfinite(per_second) or per_second <= 0:
            raise ValueError(f"per_second must be a positive number (None turns the limit off), not {per_second!r}")
        if type(burst) is not int or burst < 1:
            raise ValueError(f"burst must be an int >= 1, not {burst!r}")
        self.per_second = per_second
        self.burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._updated = clock()

    def take(self) -> float:
        """Take one token: 0.0 if there was one, else the seconds until one will be there (none taken)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.per_second)
            self._updated = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.per_second


def retry_after_seconds(wait: float) -> int:
    """Whole seconds for ``Retry-After``: ``wait`` rounded up, at least 1.

    >>> retry_after_seconds(0.2), retry_after_seconds(1.0), retry_after_seconds(2.01)
    (1, 1, 3)
    """
    return max(1, math.ceil(round(wait, 6)))
