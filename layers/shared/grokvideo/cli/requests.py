"""``submit``, ``edit`` and ``track``: the stack's input events, built from the command line,
checked by the stack's own validator before anything is sent, and put on its bus.

The stack answers a submission asynchronously; the command knows where to look because a
submission's record is named after its idempotency key (``submission_id``), which the command
chooses when the user does not. ``--wait`` follows that record to the job and the job to its
video, then downloads it.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from grokvideo.cli import render
from grokvideo.cli.context import Context
from grokvideo.cli.deployment import aws_errors
from grokvideo.cli.exits import CliError, ExitCode, Outcome
from grokvideo.cli.fetch import download
from grokvideo.cli.watch import follow
from grokvideo.errors import ValidationError
from grokvideo.models import JobState
from grokvideo.submission import submission_id
from grokvideo.validation import parse_edit_request, parse_generation_request, parse_track_request

SOURCE = "grokvideo.cli"  # the stack takes requests from any source but its own
GENERATE = "Video Generation Requested"
EDIT = "Video Edit Requested"
TRACK = "Video Job Track Requested"
UPLOAD_PREFIX = "grokvideo-cli/"  # where local --image / --video files go in the input bucket
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


def new_idempotency_key() -> str:
    """A fresh key for a request the user gave none: the command must know it to follow the job.

    >>> len(new_idempotency_key())
    36
    """
    return "cli-" + secrets.token_hex(16)


def request_detail(args: Any, *, key: str) -> dict[str, Any]:
    """The event detail for ``submit`` / ``edit`` options (``None`` values left out).

    >>> from argparse import Namespace
    >>> request_detail(Namespace(prompt="a fox", duration=5, ref="ad-1", metadata='{"team": "ads"}'), key="k1")
    {'prompt': 'a fox', 'duration': 5, 'client_ref': 'ad-1', 'metadata': {'team': 'ads'}, 'idempotency_key': 'k1'}
    """
    detail = {
        "prompt": args.prompt,
        "duration": getattr(args, "duration", None),
        "resolution": getattr(args, "resolution", None),
        "aspect_ratio": getattr(args, "aspect_ratio", None),
        "model": getattr(args, "model", None),
        "source_request_id": getattr(args, "source", None),
        "client_ref": getattr(args, "ref", None),
        "metadata": parse_metadata(getattr(args, "metadata", None)),
        "idempotency_key": key,
    }
    return {k: v for k, v in detail.items() if v is not None}


def parse_metadata(text: str | None) -> dict[str, Any] | None:
    """``--metadata``: a JSON object.

    >>> parse_metadata('[1]')
    Traceback (most recent call last):
    grokvideo.cli.exits.CliError: --metadata must be a JSON object, like '{"campaign": "spring"}'
    """
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise CliError("""--metadata must be a JSON object, like '{"campaign": "spring"}'""", ExitCode.USAGE)
    return value


def upload_input(ctx: Context, path: Path, *, kind: str) -> str:
    """Put a local image or video into the stack's first input bucket; returns its ``s3://`` URI.

    The key is the file's sha256, so uploading the same file twice stores it once.
    """
    buckets = ctx.deployment.input_buckets
    if not buckets:
        raise CliError(
            f"--{kind} {path}: the stack has no input bucket for local files. Pass an https URL or an s3:// URI "
            "instead, or redeploy with InputBucketNames=<a bucket you own>",
            ExitCode.USAGE,
        )
    data = path.read_bytes()
    content_type = IMAGE_TYPES.get(path.suffix.lower()) if kind == "image" else "video/mp4"
    if content_type is None:
        raise CliError(f"--image {path}: use a .png, .jpg or .webp file", ExitCode.USAGE)
    suffix = path.suffix.lower() or mimetypes.guess_extension(content_type) or ""
    key = f"{UPLOAD_PREFIX}{hashlib.sha256(data).hexdigest()}{suffix}"
    with aws_errors(f"uploading {path} to s3://{buckets[0]}"):
        ctx.deployment.client("s3").put_object(Bucket=buckets[0], Key=key, Body=data, ContentType=content_type)
    ctx.say(f"uploaded {path} ({render.size(len(data))}) to s3://{buckets[0]}/{key}")
    return f"s3://{buckets[0]}/{key}"


def input_location(ctx: Context, value: str | None, *, kind: str) -> str | None:
    """``--image`` / ``--video``: a URL or ``s3://`` URI as given, a local file uploaded."""
    if value is None or value.startswith(("https://", "http://", "s3://", "data:")):
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise CliError(f"--{kind} {value}: no such file (or give an https URL or s3://bucket/key)", ExitCode.NOT_FOUND)
    return upload_input(ctx, path, kind=kind)


def check(parse: Callable[..., Any], detail: Mapping[str, Any], **options: Any) -> None:
    """The stack's own validator, run here first: a bad field is a usage error, and nothing is sent."""
    try:
        parse(detail, **options)
    except ValidationError as err:
        raise CliError("the stack would reject this request:\n  " + "\n  ".join(err.errors), ExitCode.USAGE) from None


def put_request(ctx: Context, detail_type: str, detail: Mapping[str, Any]) -> str:
    """Put one input event on the stack's bus; returns its event id."""
    entry = {
        "Source": SOURCE,
        "DetailType": detail_type,
        "Detail": json.dumps(detail),
        "EventBusName": ctx.deployment.output("EventBusName"),
    }
    with aws_errors("putting the request on the bus"):
        answer = ctx.deployment.client("events").put_events(Entries=[entry])
    result = answer["Entries"][0]
    if answer.get("FailedEntryCount") or "EventId" not in result:
        raise CliError(
            f"the bus refused the request: {result.get('ErrorCode')}: {result.get('ErrorMessage')}", ExitCode.STACK
        )
    return str(result["EventId"])


def submit(ctx: Context) -> int:
    detail, key = checked_request(ctx, parse_generation_request, ctx.args.image, kind="image")
    return _send(ctx, GENERATE, detail, key)


def edit(ctx: Context) -> int:
    detail, key = checked_request(ctx, parse_edit_request, ctx.args.video, kind="video")
    if ctx.args.source:
        with aws_errors("reading the jobs table"):
            source = ctx.deployment.store.get(ctx.args.source)
        if source is None or source.state is not JobState.STORED:
            state = "no such job" if source is None else f"it is {source.state.value}"
            raise CliError(f"--source {ctx.args.source}: only a STORED job can be edited ({state})", ExitCode.NOT_FOUND)
    return _send(ctx, EDIT, detail, key)


def checked_request(
    ctx: Context, parse: Callable[..., Any], given: str | None, *, kind: str
) -> tuple[dict[str, Any], str]:
    """A generation or edit request from the arguments, its ``kind`` input (``image``/``video``: a
    URL as given, or a local file uploaded) as ``<kind>_url``, checked as the stack would check it;
    and its idempotency key (the one given, else a fresh one)."""
    key = ctx.args.idempotency_key or new_idempotency_key()
    detail = request_detail(ctx.args, key=key)
    location = input_location(ctx, given, kind=kind)
    if location:
        detail[f"{kind}_url"] = location
    check(parse, detail, input_buckets=ctx.deployment.input_buckets)
    return detail, key


def track(ctx: Context) -> int:
    detail = {
        "request_id": ctx.args.request_id,
        "client_ref": ctx.args.ref,
        "metadata": parse_metadata(ctx.args.metadata),
    }
    detail = {k: v for k, v in detail.items() if v is not None}
    check(parse_track_request, detail)
    event_id = put_request(ctx, TRACK, detail)
    return _announce_and_wait(ctx, {"request_id": ctx.args.request_id, "event_id": event_id}, ctx.args.request_id)


def _send(ctx: Context, detail_type: str, detail: Mapping[str, Any], key: str) -> int:
    event_id = put_request(ctx, detail_type, detail)
    sid = submission_id(key)
    sent = {"submission_id": sid, "idempotency_key": key, "event_id": event_id}
    return _announce_and_wait(ctx, sent, sid)


def _announce_and_wait(ctx: Context, sent: dict[str, str], follow_id: str) -> int:
    if not ctx.args.wait:
        if ctx.json:
            render.print_json(sent, ctx.out)
        else:
            print(follow_id, file=ctx.out)
            ctx.say(f"sent; follow it with: grokvideo wait {follow_id}")
        return ExitCode.OK
    ctx.say(f"sent ({follow_id}); waiting for the video")
    (result,) = follow(ctx, [follow_id], timeout=ctx.args.timeout, interval=ctx.args.interval, arriving=True)
    record: dict[str, Any] = {**sent, **result.record()}
    if result.ended is Outcome.STORED and result.job:
        path = download(ctx, result.job, Path(ctx.args.output or f"{result.job.request_id}.mp4"))
        record["path"] = str(path)
        if not ctx.json:
            print(path, file=ctx.out)
    if ctx.json:
        render.print_json(record, ctx.out)
    return ExitCode.for_outcomes([result.ended])
