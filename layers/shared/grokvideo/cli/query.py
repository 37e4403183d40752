"""``status`` and ``list``: read jobs from the table, never by scanning it.

``status`` takes request ids, submission ids and client refs (found through the ``by_ref``
index); ``list`` reads the ``by_state`` index newest first, so it reads what it prints.
"""

from __future__ import annotations

import heapq
import re
from datetime import UTC, datetime

from grokvideo.cli import render
from grokvideo.cli.context import Context
from grokvideo.cli.deployment import aws_errors
from grokvideo.cli.exits import CliError, ExitCode
from grokvideo.jobs import Job, JobSummary
from grokvideo.models import JobState

_AGO = re.compile(r"\A(\d+)([smhdw])\Z")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(value: str, *, now: float) -> int:
    """``--since``: an age (``90s``, ``30m``, ``12h``, ``7d``, ``2w``) or an ISO 8601 date/time (UTC
    unless it says otherwise); returns epoch seconds.

    >>> parse_since("2h", now=10_000)
    2800
    >>> parse_since("2023-11-14T22:13:20Z", now=0)
    1700000000
    >>> parse_since("yesterday", now=0)
    Traceback (most recent call last):
    grokvideo.cli.exits.CliError: --since 'yesterday': give an age like 30m, 12h, 7d or a date like 2026-11-29T12:00Z
    """
    match = _AGO.match(value.strip())
    if match:
        return int(now) - int(match[1]) * _UNIT[match[2]]
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            f"--since {value!r}: give an age like 30m, 12h, 7d or a date like 2026-11-29T12:00Z", ExitCode.USAGE
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def resolve(ctx: Context, ids: list[str]) -> list[Job]:
    """The jobs named by ``ids`` (request id, submission id or client ref), in order; a clear
    error for any that matches nothing. A ref stands for its jobs and unfinished submissions."""
    store = ctx.deployment.store
    with aws_errors("reading the jobs table"):
        found = store.get_many(ids)
        jobs: list[Job] = []
        missing: list[str] = []
        for name in ids:
            if name in found:
                jobs.append(found[name])
                continue
            refs = store.with_ref(name)
            if not refs:
                missing.append(name)
                continue
            by_ref = store.get_many(refs)
            # A submission that started a job carries the ref too; the job stands for both.
            jobs.extend(by_ref[rid] for rid in refs if rid in by_ref and by_ref[rid].state is not JobState.SUBMITTED)
    if missing:
        raise CliError(
            f"no job, submission or client_ref {', '.join(map(repr, missing))} in stack {ctx.deployment.name!r}: "
            "check the id (grokvideo list shows recent jobs) or the stack (--stack/--local)",
            ExitCode.NOT_FOUND,
        )
    return jobs


def status(ctx: Context) -> int:
    jobs = resolve(ctx, ctx.args.ids)
    if ctx.json:
        render.print_json([render.job_record(job) for job in jobs], ctx.out)  # a list, however many
    else:
        print("\n\n".join(render.status_text(job, now=ctx.clock()) for job in jobs), file=ctx.out)
    return ExitCode.OK


def newest_jobs(ctx: Context, states: list[JobState], *, since: int | None, limit: int) -> list[JobSummary]:
    """The ``limit`` newest jobs over ``states``: one index query per state, merged by time. With
    one state it reads exactly what it returns; with several, at most ``limit`` items per state."""
    store = ctx.deployment.store
    with aws_errors("reading the jobs table"):
        per_state = [store.newest(state, since=since, limit=limit) for state in states]
    merged = heapq.merge(*per_state, key=lambda j: (j.registered_at, j.request_id), reverse=True)
    return list(merged)[:limit]


LISTED_STATES = [JobState.PENDING, JobState.SUCCEEDED, JobState.STORED, JobState.FAILED, JobState.ARCHIVE_FAILED]
"""What ``list`` shows without ``--state``: jobs. A submission's record (RESERVED, then SUBMITTED
beside the job it started) is listed only when asked for; one that failed is FAILED, so listed."""


def list_jobs(ctx: Context) -> int:
    states = [JobState(s) for s in ctx.args.state] if ctx.args.state else LISTED_STATES
    since = parse_since(ctx.args.since, now=ctx.clock()) if ctx.args.since else None
    jobs = newest_jobs(ctx, states, since=since, limit=ctx.args.limit)
    if ctx.json:
        render.print_json([render.summary_record(j) for j in jobs], ctx.out)
    elif jobs:
        print(render.list_text(jobs), file=ctx.out)
    else:
        ctx.say(
            "no jobs"
            + (f" in {', '.join(s.value for s in states)}" if ctx.args.state else "")
            + (" since then" if since else "")
        )
    return ExitCode.OK
