"""``fetch``: a stored video to a local file, checked against the sha256 recorded when it was
stored; or a presigned URL to hand to someone else."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from grokvideo.cli import render
from grokvideo.cli.context import Context
from grokvideo.cli.deployment import aws_errors
from grokvideo.cli.exits import CliError, ExitCode
from grokvideo.cli.query import resolve
from grokvideo.jobs import Job
from grokvideo.models import JobState

CHUNK = 1024 * 1024


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def stored_video(job: Job) -> tuple[str, str]:
    """The bucket and key of a stored job's video; a clear error for any other job.

    >>> stored_video(Job("r1", JobState.PENDING, registered_at=0, deadline_at=1))
    Traceback (most recent call last):
    grokvideo.cli.exits.CliError: r1 is PENDING: no video stored yet (grokvideo wait r1)
    """
    if job.state is not JobState.STORED or not job.bucket or not job.key:
        hint = (
            f"grokvideo wait {job.request_id}"
            if job.state in (JobState.PENDING, JobState.SUCCEEDED)
            else "grokvideo status " + job.request_id
        )
        raise CliError(f"{job.request_id} is {job.state.value}: no video stored yet ({hint})", ExitCode.NOT_FOUND)
    return job.bucket, job.key


def download(ctx: Context, job: Job, path: Path) -> Path:
    """Download ``job``'s video to ``path`` (through ``path.part``, renamed once its sha256 matches)."""
    bucket, key = stored_video(job)
    path = path.expanduser()
    part = path.with_name(path.name + ".part")
    total = job.size_bytes or 0
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        if ctx.interactive and total:
            ctx.err.write(
                f"\r\x1b[2K{path.name}  {render.bar(done / total)} {render.size(done)} / {render.size(total)}"
            )
            ctx.err.flush()

    with aws_errors(f"downloading s3://{bucket}/{key}"):
        ctx.deployment.client("s3").download_file(bucket, key, str(part), Callback=progress)
    if ctx.interactive and total:
        ctx.err.write("\n")
    actual = sha256_of(part)
    if job.sha256 and actual != job.sha256:
        part.unlink()
        raise CliError(
            f"s3://{bucket}/{key} does not match the sha256 recorded when it was stored ({actual} != {job.sha256}): "
            "the object was changed after it was stored; nothing written",
            ExitCode.CHECKSUM,
        )
    os.replace(part, path)
    ctx.say(
        f"{path}  {render.size(path.stat().st_size)}  sha256 {actual}"
        + (" (matches)" if job.sha256 else " (none recorded)")
    )
    return path


def fetch(ctx: Context) -> int:
    (job, *others) = resolve(ctx, [ctx.args.id])
    if others:
        raise CliError(f"{ctx.args.id!r} names {len(others) + 1} jobs: fetch one by its request id", ExitCode.USAGE)
    bucket, key = stored_video(job)
    if ctx.args.url:
        with aws_errors("signing the URL"):
            url = ctx.deployment.client("s3").generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=ctx.args.expires
            )
        if ctx.json:
            render.print_json({"request_id": job.request_id, "url": url, "expires_in": ctx.args.expires}, ctx.out)
        else:
            print(url, file=ctx.out)
        return ExitCode.OK
    path = download(ctx, job, Path(ctx.args.output or f"{job.request_id}.mp4"))
    if ctx.json:
        render.print_json(
            {"request_id": job.request_id, "path": str(path), "sha256": job.sha256, "size_bytes": path.stat().st_size},
            ctx.out,
        )
    else:
        print(path, file=ctx.out)
    return ExitCode.OK
