"""Poll schedule: detection lag and polls per job, by schedule, in a simulation (no stack).

Run alone: ``python benchmarks/poll_schedule.py [--jobs 2000 --seeds 5]`` (from the repo root, in
the test virtualenv); it takes seconds. Importable: ``simulate`` and ``compare`` serve a unit test.

The workload (one per seed and scenario, the same jobs for every schedule):

- videos of 1-15 s (uniform), half 480p and half 720p, model ``grok-imagine-video``, each
  submitted and registered at its start;
- each job's finish is lognormal: its median the expectation ``grokvideo.schedule`` has for its
  resolution and duration (FINISH_PRIORS), sigma 0.35 (90 % of jobs within 0.56x..1.78x of it).
  Lognormal because durations are positive and skewed to the right (a queue makes a few jobs much
  slower; none takes less than nothing) and the noise on a render is multiplicative. The median
  is our assumption, so the main scenario is the schedule's own world;
- progress as the fake CometAPI reports it (local/fake_cometapi/jobs.py): 0 for the first 25 % of
  the job's time, then the percent of the time gone, at most 99, then done;
- CometAPI's refresh: the provider's view of a job (its progress, its "done") changes only every
  15 s, at a phase of its own per job. A poll reads the view of the last refresh, so "done" becomes
  visible at the first refresh at or after the real finish.

Scenarios where the schedule's assumptions are wrong, reported beside the main one: "slow" (every
job 1.5x the table's figure, sigma 0.5), "no progress" (the provider never says), "irregular
refresh" (each interval 10-20 s), "progress lags" / "progress leads" (progress is the share of
time gone to the power 1.5 / 0.7, not linear).

Each schedule polls each job first ``FIRST_POLL_DELAY_SECONDS`` (5 s) after it starts (the job
store's first poll), then when it says, until a poll sees "done". Lag: from the moment "done" was
visible to a poll to the poll that saw it (what the issue calls the lag between the provider's
"done" and our Succeeded). The new schedule runs through ``grokvideo.polling.decide_poll`` (so
with its rounding to whole seconds), today's backoff as ``decide_poll`` computed it.

Target (main scenario, every seed): the progress-aware schedule's lag p95 <= 10 s at <= 8 polls
per job on average. For reference, xai-sdk polls every second (~0.5 s lag, ~100 polls per job).
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT)]

from benchmarks import figures  # noqa: E402
from benchmarks.machine import describe  # noqa: E402
from grokvideo.backoff import PollSchedule  # noqa: E402
from grokvideo.config import FIRST_POLL_DELAY_SECONDS, POLL_INTERVAL_SECONDS  # noqa: E402
from grokvideo.jobs import Job  # noqa: E402
from grokvideo.models import JobState, Pending  # noqa: E402
from grokvideo.polling import PollPolicy, Reschedule, decide_poll  # noqa: E402
from grokvideo.schedule import REFRESH_SECONDS, ProgressSchedule, finish_prior  # noqa: E402
from grokvideo.validation import DEFAULT_MODEL, DURATION_MAX, DURATION_MIN  # noqa: E402

DEFAULT_PNG = ROOT / "docs" / "poll_schedule.png"
TARGET_LAG_P95 = 10.0  # seconds
TARGET_POLLS = 8.0  # per job, mean
EPOCH = 1_700_000_000
RESOLUTIONS = ("480p", "720p")
QUEUED_SHARE = 0.25  # the fake reports 0 % for this share of a job's time


# --- the workload ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scenario:
    """How the simulated provider behaves (the defaults: the schedule's own assumptions)."""

    name: str
    slowdown: float = 1.0  # true median finish / the schedule's expectation
    spread: float = 0.35  # lognormal sigma of finish times
    progress: bool = True  # False: the provider never reports progress
    curve: float = 1.0  # progress = share of time gone ** curve (1: linear, as the fake)
    irregular: float = 0.0  # each refresh interval is refresh x U[1 - irregular, 1 + irregular]

    def describe(self) -> str:
        if not self.progress:
            progress = "never reported"
        elif self.curve == 1:
            progress = "as the fake reports it"
        else:
            progress = f"(share of time gone)^{self.curve:g}"
        refresh = f"{REFRESH_SECONDS:g} s" + (
            f" x U[{1 - self.irregular:.2f}, {1 + self.irregular:.2f}]" if self.irregular else ""
        )
        return (
            f"finish ~ lognormal(median = table x {self.slowdown:g}, sigma {self.spread:g}); progress {progress}; "
            f"refresh every {refresh}"
        )


SCENARIOS = (
    Scenario("main"),
    Scenario("slow", slowdown=1.5, spread=0.5),
    Scenario("no progress", progress=False),
    Scenario("irregular refresh", irregular=0.33),
    Scenario("progress lags", curve=1.5),
    Scenario("progress leads", curve=0.7),
)


@dataclass(frozen=True, slots=True)
class SimJob:
    """One provider job: what our record knows, when it really finishes, when its view refreshes."""

    record: Job
    finish: float  # seconds after the start
    refreshes: tuple[float, ...]  # seconds after the start, the last one shows "done"

    @property
    def visible_done(self) -> float:
        """Seconds after the start at which a poll first sees "done" (the first refresh >= finish)."""
        return self.refreshes[-1]

    def view(self, elapsed: float, scenario: Scenario) -> tuple[bool, int | None]:
        """``(done, progress)`` a poll ``elapsed`` s after the start reads."""
        if elapsed >= self.refreshes[-1]:
            return True, 100
        if not scenario.progress:
            return False, None
        i = bisect.bisect_right(self.refreshes, elapsed)
        share = (self.refreshes[i - 1] if i else 0.0) / self.finish
        if share < QUEUED_SHARE:
            return False, 0
        return False, max(1, min(99, int(share**scenario.curve * 100)))


def workload(jobs: int, seed: int, scenario: Scenario, refresh: float = REFRESH_SECONDS) -> list[SimJob]:
    """``jobs`` provider jobs, the same for the same seed and scenario (see the module docstring)."""
    rng = random.Random(seed)
    out: list[SimJob] = []
    for i in range(jobs):
        duration = rng.randint(DURATION_MIN, DURATION_MAX)
        resolution = rng.choice(RESOLUTIONS)
        median = finish_prior(DEFAULT_MODEL, resolution, duration).expected * scenario.slowdown
        start = EPOCH + i * 7  # no two jobs share a second: the rounding of times does not line up
        record = Job(
            f"sim-{seed}-{i:05d}",
            JobState.PENDING,
            registered_at=start,
            deadline_at=start + 3600,
            submitted_at=start,
            model=DEFAULT_MODEL,
            request={"duration": duration, "resolution": resolution, "model": DEFAULT_MODEL},
        )
        finish = median * math.exp(rng.gauss(0.0, scenario.spread))
        ticks = [rng.uniform(0, refresh)]
        while ticks[-1] < finish:
            ticks.append(ticks[-1] + refresh * rng.uniform(1 - scenario.irregular, 1 + scenario.irregular))
        out.append(SimJob(record, finish=finish, refreshes=tuple(ticks)))
    return out


# --- the schedules -----------------------------------------------------------------------------

# (the job as registered, its polls so far, the progress just read, now) -> the next poll (epoch s)
NextPoll = Callable[[Job, int, int | None, float], float]


def fixed(seconds: float) -> NextPoll:
    return lambda job, attempts, progress, now: now + seconds


def todays_backoff(seed: int) -> NextPoll:
    """The pending row before this change: ``int(now + PollSchedule.delay(attempts + 1)) + 1``."""
    schedule = PollSchedule(first_delay=FIRST_POLL_DELAY_SECONDS, cap=POLL_INTERVAL_SECONDS, rng=random.Random(seed))
    return lambda job, attempts, progress, now: int(now + schedule.delay(attempts + 1)) + 1


def progress_aware(schedule: ProgressSchedule) -> NextPoll:
    """The new pending row, through ``decide_poll`` itself."""
    policy = PollPolicy(pending=schedule)

    def next_poll(job: Job, attempts: int, progress: int | None, now: float) -> float:
        claimed = replace(job, attempts=attempts)  # as the sweep claims it (the schedule reads no more)
        action = decide_poll(claimed, Pending(progress=progress), now=now, policy=policy)
        assert isinstance(action, Reschedule), action
        return action.at

    return next_poll


def schedules(seed: int) -> dict[str, NextPoll]:
    return {
        "fixed 5 s": fixed(5),
        "fixed 60 s": fixed(60),
        "today's backoff": todays_backoff(seed),
        "progress-aware": progress_aware(ProgressSchedule()),
    }


REFERENCE = ("fixed 1 s (xai-sdk)", fixed(1))


# --- one run -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """One schedule over one workload: polls and lag (s) per job."""

    polls: list[int]
    lags: list[float]

    @property
    def mean_polls(self) -> float:
        return statistics.fmean(self.polls)

    def lag(self, q: float) -> float:
        return percentile(self.lags, q)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank: the smallest value with at least ``q`` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def simulate(jobs: Sequence[SimJob], next_poll: NextPoll, scenario: Scenario) -> Outcome:
    """Poll every job as ``next_poll`` says, from the store's first poll until one sees "done"."""
    polls: list[int] = []
    lags: list[float] = []
    for job in jobs:
        start = float(job.record.registered_at)
        visible = start + job.visible_done
        now, count = start + FIRST_POLL_DELAY_SECONDS, 0
        while True:
            done, seen = job.view(now - start, scenario)
            count += 1
            if done:
                break
            now = next_poll(job.record, count - 1, seen, now)
        polls.append(count)
        lags.append(now - visible)
    return Outcome(polls, lags)


def compare(jobs: int, seed: int, scenario: Scenario, *, reference: bool = False) -> dict[str, Outcome]:
    """Every schedule over the same workload (and xai-sdk's 1 s polling if ``reference``)."""
    work = workload(jobs, seed, scenario)
    chosen = dict(schedules(seed))
    if reference:
        chosen[REFERENCE[0]] = REFERENCE[1]
    return {name: simulate(work, f, scenario) for name, f in chosen.items()}


# --- report ------------------------------------------------------------------------------------


def spread(values: Sequence[float], fmt: str) -> str:
    return f"{min(values):{fmt}} / {statistics.median(values):{fmt}} / {max(values):{fmt}}"


def table(scenario: Scenario, runs: list[dict[str, Outcome]]) -> None:
    print(f"\nscenario {scenario.name!r}: {scenario.describe()}")
    print(f"{'schedule':<22} {'polls/job mean':>20} {'lag p50 s':>20} {'lag p95 s':>20} {'lag max s':>8}")
    print(f"{'':<22} {'min / median / max over seeds':>62}")
    for name in runs[0]:
        outs = [run[name] for run in runs]
        print(
            f"{name:<22} {spread([o.mean_polls for o in outs], '6.1f'):>20} "
            f"{spread([o.lag(0.5) for o in outs], '6.1f'):>20} {spread([o.lag(0.95) for o in outs], '6.1f'):>20} "
            f"{max(max(o.lags) for o in outs):8.1f}"
        )


def draw(runs: list[dict[str, Outcome]], scenario: Scenario, path: Path) -> str:
    plt = figures.pyplot()
    if plt is None:
        return figures.not_drawn(path)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    for name in runs[0]:
        outs = [run[name] for run in runs]
        x, y = [o.mean_polls for o in outs], [o.lag(0.95) for o in outs]
        (points,) = left.plot(x, y, "o", alpha=0.7, label=name)
        left.annotate(name, (statistics.median(x), statistics.median(y)), textcoords="offset points", xytext=(6, 6))
        lags = sorted(lag for o in outs for lag in o.lags)
        right.plot(lags, [(i + 1) / len(lags) for i in range(len(lags))], color=points.get_color(), label=name)
    left.axhline(TARGET_LAG_P95, color="grey", linestyle="--", linewidth=0.8)
    left.axvline(TARGET_POLLS, color="grey", linestyle="--", linewidth=0.8)
    left.fill_between([0.8, TARGET_POLLS], 0, TARGET_LAG_P95, color="green", alpha=0.08, label="target")
    left.set_xscale("log")
    left.set_xlabel("polls per job, mean (log scale)")
    left.set_ylabel("detection lag p95, s")
    left.set_title(f"each point a seed ({len(runs)}): lower left is better", fontsize=9)
    left.legend(fontsize=8, loc="upper right")
    right.set_xlabel("detection lag, s (visible 'done' -> the poll that sees it)")
    right.set_ylabel("share of jobs")
    right.set_xlim(0, 60)
    right.set_title("CDF of the lag, every seed's jobs together", fontsize=9)
    right.grid(alpha=0.3)
    right.legend(fontsize=8, loc="lower right")
    fig.suptitle(
        f"Poll schedules, simulated: {sum(len(next(iter(r.values())).polls) for r in runs)} jobs, scenario "
        f"{scenario.name!r}, CometAPI refresh {REFRESH_SECONDS:g} s",
        fontsize=10,
    )
    return figures.save(fig, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per seed")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--png", type=Path, default=DEFAULT_PNG)
    args = parser.parse_args()
    print(f"machine: {describe()}")
    print(
        f"{args.jobs} jobs per seed, seeds 1..{args.seeds}; first poll {FIRST_POLL_DELAY_SECONDS} s after the start; "
        f"CometAPI refresh every {REFRESH_SECONDS:g} s; new schedule {ProgressSchedule()}"
    )
    main_runs: list[dict[str, Outcome]] = []
    for scenario in SCENARIOS:
        first = scenario is SCENARIOS[0]  # the reference only where the target applies: it is slow to run
        runs = [compare(args.jobs, seed, scenario, reference=first) for seed in range(1, args.seeds + 1)]
        table(scenario, runs)
        if first:
            main_runs = runs
    new = [run["progress-aware"] for run in main_runs]
    lags, polls = [o.lag(0.95) for o in new], [o.mean_polls for o in new]
    ok = max(lags) <= TARGET_LAG_P95 and max(polls) <= TARGET_POLLS
    print()
    print(draw(main_runs, SCENARIOS[0], args.png))
    print(
        f"{'PASS' if ok else 'FAIL'}: progress-aware, scenario 'main', every seed: lag p95 {max(lags):.1f} s at worst "
        f"(median {statistics.median(lags):.1f}; target <= {TARGET_LAG_P95:g}), {max(polls):.2f} polls per job at "
        f"worst (median {statistics.median(polls):.2f}; target <= {TARGET_POLLS:g})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
