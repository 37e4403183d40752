"""Progress-aware poll schedule: poll a pending job around the time its "done" should show.

Backing off to the cap whatever the job says costs a long job half the cap in lag on average,
and more polls the longer it runs. Instead, each pending answer gives a ``Forecast`` of when a poll
will first see "done", and the next poll is chosen around it (``ProgressSchedule``):

1. **Prior** (no progress yet, or a provider that reports none): the finish is expected within
   ``Prior.window`` of the start, around ``FINISH_PRIORS``' figure for the job's model,
   resolution and duration; "done" shows up to a refresh later.
2. **Progress** ``p`` (1-99 %): CometAPI refreshes its view of a job about every 15 s (taken as
   ``refresh`` give or take ``tolerance`` of it: 10-20 s), so ``p`` is the view of some refresh in
   the last 20 s. Reading progress as the share of the job's time gone, that refresh and ``p``
   bound the finish, and "done" shows at a later refresh, a whole number of refreshes after the one
   read. That window replaces the prior's and narrows as progress rises (to about 30 s near the end).
3. **Next poll**: one ``near`` gap into the window, but no later than its end (before the window:
   its start plus ``near``; inside: ``near`` from now). Whenever "done" shows inside the window,
   the lag to our poll is at most ``near``. A **late** job, past the prior's window without progress
   or past ``OVERDUE`` times it with progress (stuck at 99 %), gets gaps that grow by
   ``late_growth`` per second late.
4. **Jitter**: every gap shrinks by up to ``jitter`` of itself, by a fraction fixed by the job's id
   and attempt: a pure function, yet a crowd registered together polls spread out. Gaps only
   shrink, so jitter never makes a poll later than the rule. ``floor`` and ``cap`` bound the gap
   (the cap wins if they conflict).

Everything here is pure: the same job, answer and time give the same next poll.

>>> from grokvideo.jobs import Job
>>> from grokvideo.models import JobState
>>> job = Job("4b2cd27e", JobState.PENDING, registered_at=0, deadline_at=3600, submitted_at=0,
...           model="grok-imagine-video", request={"duration": 6, "resolution": "480p"})
>>> job_prior(job)  # 6 s at 480p: 42 s expected
Prior(expected=42.0, spread=0.35)
>>> def window(progress, now):
...     seen = forecast(job, progress, now=now)
...     return round(seen.earliest, 1), round(seen.latest, 1)
>>> window(None, 5)  # no progress: the prior's window (0.5x to 2x), "done" up to a refresh later
(20.9, 104.6)
>>> window(30, 40)  # 30 % at 40 s: "done" shows between 70 s and 140 s
(70.0, 140.0)
>>> window(90, 40)  # 90 % at 40 s: between 30 s and 60 s
(30.0, 60.0)
>>> schedule = ProgressSchedule()
>>> round(schedule.gap(job, 30, now=40), 1)  # to 10 s into the window (80 s), less 16 % jitter
33.4
>>> round(schedule.gap(job, 90, now=40), 1)  # inside it: 10 s, less the same jitter
8.4
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any

from grokvideo.jobs import Job
from grokvideo.validation import DEFAULT_MODEL, DURATION_MAX

REFRESH_SECONDS = 15.0
"""CometAPI refreshes its view of a job about every 15 s (docs/PROVIDER.md, *inferred*)."""
REFRESH_TOLERANCE = 1 / 3
"""How far one refresh interval may stray from ``REFRESH_SECONDS``: 10 to 20 s."""

# Expected seconds from submission to "done", as ``fixed + per_second * duration`` for each
# (model, resolution). These are OUR ASSUMPTIONS, not measurements: the only public figures are
# CometAPI's own test (a 1 s 480p video took about 12 s end to end) and "most jobs finish within 1
# to 3 minutes" (docs/PROVIDER.md). We assume time grows with the video's length and with its
# pixels, and that 1.5 is a little slower. Replace them with measured medians once we have some
# (``completed_at - submitted_at`` of stored jobs): progress corrects a wrong figure, but a good one
# saves polls before the first progress arrives (benchmarks/poll_schedule.py, scenario "slow").
FINISH_PRIORS: dict[tuple[str, str], tuple[float, float]] = {
    ("grok-imagine-video", "480p"): (6.0, 6.0),  # 1 s: 12 s (CometAPI's test); 6 s: 42 s; 15 s: 96 s
    ("grok-imagine-video", "720p"): (10.0, 10.0),  # 6 s: 70 s; 15 s: 160 s
    ("grok-imagine-video-1.5", "480p"): (8.0, 8.0),  # 6 s: 56 s
    ("grok-imagine-video-1.5", "720p"): (12.0, 12.0),  # 6 s: 84 s
    ("grok-imagine-video-1.5", "1080p"): (20.0, 20.0),  # 6 s: 140 s; 15 s: 320 s
}
PRIOR_RESOLUTION = "480p"  # when none was sent: the provider's default (our assumption)
PRIOR_DURATION = 8  # seconds, when unknown: what the provider bills an omitted duration as
KNOWN_SPREAD = 0.35
"""Log-scale spread of finish times around a prior (a lognormal's sigma): ours, not measured."""
UNKNOWN_SPREAD = 0.6
"""The spread when a fact was guessed (a tracked job, an edit, an unknown model)."""
PRIOR_WINDOW = 2.0  # the prior's window: e^(-2 spread) .. e^(2 spread) times its expectation
OVERDUE = 3.0  # a job reporting progress is late past this many times the end of the prior's window


@dataclass(frozen=True, slots=True)
class Prior:
    """Expected seconds from the start to "done", and the log-scale ``spread`` around it."""

    expected: float
    spread: float

    @property
    def window(self) -> tuple[float, float]:
        """Seconds after the start within which the prior expects the finish.

        >>> Prior(42.0, 0.35).window
        (20.8..., 84.5...)
        """
        factor = math.exp(PRIOR_WINDOW * self.spread)
        return self.expected / factor, self.expected * factor


@dataclass(frozen=True, slots=True)
class Forecast:
    """When a poll should first see "done" (epoch seconds): from ``earliest`` to ``latest``.

    ``late_after``: a job still pending past it is late, and polled less and less often.
    """

    started_at: float
    earliest: float
    latest: float
    late_after: float


def finish_prior(model: str | None, resolution: str | None, duration: float | None) -> Prior:
    """The prior for a job; a missing or unknown fact is guessed, with a wider spread.

    >>> finish_prior("grok-imagine-video", "720p", 15)
    Prior(expected=160.0, spread=0.35)
    >>> finish_prior(None, None, None)  # a tracked job we know nothing about: 480p, 8 s, wide
    Prior(expected=54.0, spread=0.6)
    """
    guessed = model is None or (model, PRIOR_RESOLUTION) not in FINISH_PRIORS
    known = DEFAULT_MODEL if model is None or guessed else model
    if resolution is None:
        resolution = PRIOR_RESOLUTION
    elif (known, resolution) not in FINISH_PRIORS:  # e.g. 1080p on a model that does not render it
        resolution, guessed = PRIOR_RESOLUTION, True
    if duration is None or not 0 < duration <= DURATION_MAX:
        duration, guessed = PRIOR_DURATION, True
    fixed, per_second = FINISH_PRIORS[(known, resolution)]
    return Prior(fixed + per_second * duration, UNKNOWN_SPREAD if guessed else KNOWN_SPREAD)


def job_prior(job: Job) -> Prior:
    """``finish_prior`` from what the job record knows (a submitted job keeps its request)."""
    request = job.request
    model = job.model or _text(request.get("model"))
    return finish_prior(model, _text(request.get("resolution")), _number(request.get("duration")))


def forecast(
    job: Job,
    progress: int | None,
    *,
    now: float,
    refresh: float = REFRESH_SECONDS,
    tolerance: float = REFRESH_TOLERANCE,
) -> Forecast:
    """When a poll should first see ``job`` done, given the ``progress`` (percent) read at ``now``.

    Without progress (None, or 0: not started): the prior's window, from ``now`` at the earliest.
    With ``p`` %: the refresh read was ``e`` seconds after the start, ``now - 20 s < e <= now``,
    and the finish ``f`` satisfies ``p <= 100 e / f < p + 1``; "done" shows at the first refresh at
    or after ``f``, a whole number of refreshes (each 10 to 20 s) after ``e``.
    """
    started = float(job.submitted_at or job.registered_at)
    low, high = job_prior(job).window
    shortest, longest = refresh * (1 - tolerance), refresh * (1 + tolerance)
    elapsed = max(now - started, 0.0)
    if progress is None or progress <= 0:
        earliest, latest = max(low, elapsed), high + longest
        late = latest
    else:
        least, most = min(progress, 99) / 100, min(progress + 1, 100) / 100  # share of time gone
        oldest = max(elapsed - longest, 0.0)  # the refresh read, at the oldest
        earliest = oldest + shortest * _refreshes(oldest * (1 / most - 1) / shortest)
        latest = elapsed + longest * _refreshes(elapsed * (1 / least - 1) / longest)
        late = OVERDUE * high
    return Forecast(started, started + earliest, started + latest, started + late)


@dataclass(frozen=True, slots=True)
class ProgressSchedule:
    """When to poll a job the provider says is pending (the module docstring says how). Seconds."""

    floor: float = 5.0  # never sooner: polling much faster than CometAPI refreshes gains little
    near: float = 10.0  # the gap while "done" may show: it bounds the lag
    cap: float = 60.0  # never later (PollIntervalSeconds)
    refresh: float = REFRESH_SECONDS
    tolerance: float = REFRESH_TOLERANCE
    jitter: float = 0.2  # a gap shrinks by up to this share of itself
    late_growth: float = 0.25  # a late job's gap grows by this many seconds per second late

    def gap(self, job: Job, progress: int | None, *, now: float) -> float:
        """Seconds from ``now`` to the next poll of ``job``, whose latest answer said ``progress``."""
        seen = forecast(job, progress, now=now, refresh=self.refresh, tolerance=self.tolerance)
        gap = min(max(seen.earliest, now) + self.near, seen.latest) - now
        if now >= seen.late_after:
            gap = max(gap, self.near + self.late_growth * (now - seen.late_after))
        gap *= 1 - self.jitter * jitter_fraction(job.request_id, job.attempts)
        return min(self.cap, max(self.floor, gap))

    def next_poll_at(self, job: Job, progress: int | None, *, now: float) -> float:
        """Epoch seconds of the next poll: ``now + gap``."""
        return now + self.gap(job, progress, now=now)


def jitter_fraction(request_id: str, attempts: int) -> float:
    """A fraction in [0, 1) fixed by the job and its attempt: spreads a crowd, repeatably.

    >>> jitter_fraction("4b2cd27e", 3) == jitter_fraction("4b2cd27e", 3) != jitter_fraction("4b2cd27f", 3)
    True
    """
    return zlib.crc32(f"{request_id}/{attempts}".encode()) / 2**32


def _refreshes(steps: float) -> int:
    """Whole refreshes to cover ``steps`` of them, at least one (not done at the one read); the
    nanosecond of slack keeps a float like 1.0000000002 from counting as two."""
    return max(1, math.ceil(steps - 1e-9))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
