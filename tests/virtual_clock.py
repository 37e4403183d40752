"""A clock that moves only when code under test sleeps or a test advances it."""

from __future__ import annotations


class VirtualClock:
    """``clock()`` reads it; ``clock.sleep(s)`` and ``clock.advance(s)`` move it forward.

    >>> clock = VirtualClock(100.0)
    >>> clock.sleep(2.5)
    >>> clock()
    102.5
    """

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    sleep = advance
