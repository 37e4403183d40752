"""``wait`` (and ``submit --wait``): follow jobs in the table until each is stored or has failed.

What one look at a job means is a pure function (``sight``); ``follow`` only looks, draws and
sleeps. A submission is followed through its record to the provider job it started.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grokvideo.cli import render
from grokvideo.cli.context import Context
from grokvideo.cli.deployment import aws_errors
from grokvideo.cli.exits import ExitCode, Outcome
from grokvideo.cli.query import resolve
from grokvideo.jobs import Job
from grokvideo.models import JobState

ARRIVAL_NOTICE = 60  # seconds without a record of a sent request before the command says where to look


@dataclass(frozen=True, slots=True)
class Sighting:
    """What one look at the table says about a followed id."""

    label: str
    fraction: float | None = None  # how far along, when known
    outcome: Outcome | None = None  # set once the job has ended
    then: str | None = None  # a submission that started a job: follow that job next


def sight(job: Job | None) -> Sighting:
    """Read a job's item (or its absence) as progress.

    >>> sight(None).label
    'queued'
    >>> s = sight(Job("r1", JobState.PENDING, registered_at=0, deadline_at=1, progress=40))
    >>> (s.label, s.fraction, s.outcome)
    ('generating', 0.4, None)
    >>> sight(Job("submission-1", JobState.SUBMITTED, registered_at=0, deadline_at=1, job_request_id="r1")).then
    'r1'
    >>> sight(Job("r1", JobState.FAILED, registered_at=0, deadline_at=1, reason="MODERATED")).label
    'failed: MODERATED'
    """
    if job is None:
        return Sighting("queued", 0.0)
    match job.state:
        case JobState.RESERVED:
            return Sighting("submitting", 0.0)
        case JobState.SUBMITTED:
            return Sighting("submitted", 0.0, then=job.job_request_id)
        case JobState.PENDING:
            return Sighting("generating", None if job.progress is None else job.progress / 100)
        case JobState.SUCCEEDED:
            return Sighting("copying to S3", 1.0)
        case JobState.STORED:
            return Sighting("stored", 1.0, Outcome.STORED)
        case JobState.ARCHIVE_FAILED:
            return Sighting(f"not stored: {job.reason}", 1.0, Outcome.ARCHIVE_FAILED)
        case JobState.FAILED:
            return Sighting(f"failed: {job.reason}", None, Outcome.FAILED)
    raise AssertionError(f"unknown state {job.state}")


@dataclass
class Followed:
    """One id the user asked about, and where it has got to."""

    name: str
    current: str  # the item looked up: the submission, then the job it started
    job: Job | None = None
    seen: Sighting = Sighting("queued", 0.0)
    outcome: Outcome | None = None
    said: tuple[str, str] | None = None  # the last (id, label) printed without a terminal

    @property
    def ended(self) -> Outcome:
        """How the wait ended for this id (still running counts as timed out)."""
        return self.outcome or Outcome.TIMED_OUT

    def record(self) -> dict[str, Any]:
        """The end of the wait for ``--json``: the job's status and how it ended."""
        base = render.job_record(self.job) if self.job else {"request_id": self.current}
        return {**base, "outcome": self.ended.value}

    def line(self, *, now: float) -> str:
        fraction = self.seen.fraction
        percent = "  ? " if fraction is None else f"{round(fraction * 100):3d}%"
        elapsed = render.span(now - self.job.registered_at) if self.job else ""
        return f"{self.current}  {render.bar(fraction)} {percent}  {self.seen.label}  {elapsed}".rstrip()


def follow(ctx: Context, ids: list[str], *, timeout: float, interval: float, arriving: bool = False) -> list[Followed]:
    """Look at every id each ``interval`` seconds until each has ended or ``timeout`` has passed.

    ``arriving``: the ids were just sent and may not be in the table yet (otherwise they are
    resolved first: a client_ref stands for its jobs, an unknown id is an error).
    """
    if arriving:
        followed = [Followed(i, i) for i in ids]
    else:
        followed = [Followed(j.request_id, j.request_id) for j in resolve(ctx, ids)]
    started = ctx.clock()
    drawn = 0
    noticed = False
    while True:
        _look(ctx, [f for f in followed if f.outcome is None])
        now = ctx.clock()
        drawn = _draw(ctx, followed, drawn, now=now)
        if all(f.outcome for f in followed):
            return followed
        if now - started >= timeout:
            for f in followed:
                if f.outcome is None:
                    f.outcome = Outcome.TIMED_OUT
            running = " ".join(f.current for f in followed if f.outcome is Outcome.TIMED_OUT)
            ctx.say(f"still running after {render.span(timeout)}: grokvideo wait {running}")
            return followed
        if arriving and not noticed and now - started >= ARRIVAL_NOTICE and any(f.job is None for f in followed):
            noticed = True
            ctx.say(
                "the stack has not taken the request yet: it may be queued behind others (SubmitRatePerSecond) or "
                "rejected (grokvideo events shows 'Video Request Rejected'; grokvideo doctor checks the queues)"
            )
        ctx.sleep(interval)


def _look(ctx: Context, pending: list[Followed]) -> None:
    """One look at the table for every id still running, following submissions to their jobs."""
    while pending:
        with aws_errors("reading the jobs table"):
            found = ctx.deployment.store.get_many([f.current for f in pending])
        moved: list[Followed] = []
        for f in pending:
            f.job = found.get(f.current)
            f.seen = sight(f.job)
            f.outcome = f.seen.outcome
            if f.seen.then:
                f.current = f.seen.then
                moved.append(f)
        pending = moved


def _draw(ctx: Context, followed: list[Followed], drawn: int, *, now: float) -> int:
    """Redraw the bars in place on a terminal; elsewhere print a line when a label changes."""
    lines = [f.line(now=now) for f in followed]
    if ctx.interactive:
        if drawn:
            ctx.err.write(f"\x1b[{drawn}F")
        ctx.err.write("".join(f"\x1b[2K{line}\n" for line in lines))
        ctx.err.flush()
        return len(lines)
    for f in followed:
        if f.said != (f.current, f.seen.label):
            f.said = (f.current, f.seen.label)
            ctx.say(f.line(now=now))
    return 0


def wait(ctx: Context) -> int:
    results = follow(ctx, ctx.args.ids, timeout=ctx.args.timeout, interval=ctx.args.interval)
    if ctx.json:
        render.print_json([r.record() for r in results], ctx.out)
    else:
        print(
            render.table(
                ["REQUEST_ID", "OUTCOME", "VIDEO / REASON"],
                [
                    [
                        r.current,
                        r.ended.value,
                        (render.s3_uri(r.job.bucket, r.job.key) or r.job.reason or "-") if r.job else "-",
                    ]
                    for r in results
                ],
            ),
            file=ctx.out,
        )
    return ExitCode.for_outcomes(r.ended for r in results)
