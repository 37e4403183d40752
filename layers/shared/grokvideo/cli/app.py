"""The ``grokvideo`` command line: every command and option, and the dispatch to the module that
runs it (imported only when its command runs, so ``--help`` stays fast).

>>> main(["--version"])
grokvideo ...
0
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from grokvideo import __version__
from grokvideo.validation import ASPECT_RATIOS, DEFAULT_DURATION, MODELS, RESOLUTIONS

PROG = "grokvideo"
STACK_ENV = "GROKVIDEO_STACK"

EPILOG = """\
exit codes: 0 ok, 1 a job failed, 2 bad command line, 3 a video could not be stored,
4 not found, 5 --timeout ran out, 6 stack unreachable (credentials, region, emulator),
7 doctor found a problem, 8 sha256 mismatch, 130 interrupted.

examples:
  grokvideo --local submit "a red fox running through snow" --wait
  grokvideo status 4b2cd27e-0b0d   |   grokvideo list --state FAILED --since 1d
  grokvideo fetch 4b2cd27e-0b0d -o fox.mp4   |   grokvideo doctor
"""


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return number


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Where the stack is and how to print: accepted before or after the command."""
    default: Callable[[Any], Any] = (lambda _v: argparse.SUPPRESS) if suppress else (lambda v: v)
    where = parser.add_argument_group("which stack")
    where.add_argument(
        "--stack",
        default=default(os.environ.get(STACK_ENV, "grokvideo")),
        metavar="NAME",
        help=f"CloudFormation stack name (default: ${STACK_ENV} or grokvideo)",
    )
    where.add_argument(
        "--local",
        action="store_true",
        default=default(False),
        help="the stack on the local emulator (make local-up / make demo)",
    )
    where.add_argument("--region", default=default(None), help="AWS region (default: the usual chain)")
    where.add_argument("--profile", default=default(None), help="AWS profile (default: the usual chain)")
    parser.add_argument("--json", action="store_true", default=default(False), help="print JSON for scripts")


def _request_options(parser: argparse.ArgumentParser) -> None:
    """What a generation and an edit both take."""
    parser.add_argument("prompt", help="what the video should show (or how to change it)")
    parser.add_argument("--model", choices=MODELS)
    parser.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="one provider job per key; sending the same key again creates nothing (default: a new random key)",
    )
    _tracking_options(parser)


def _generation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=int, default=None, help=f"seconds, 1-15 (default {DEFAULT_DURATION})")
    parser.add_argument("--resolution", choices=RESOLUTIONS, help="1080p needs --model grok-imagine-video-1.5")
    parser.add_argument("--aspect-ratio", choices=ASPECT_RATIOS)
    parser.add_argument(
        "--image",
        metavar="FILE|URL|s3://",
        help="start from an image: a local file (uploaded to the stack's first input bucket), "
        "an https URL or s3://bucket/key in an input bucket",
    )


def _tracking_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ref", metavar="REF", help="your own reference (client_ref), echoed in every event")
    parser.add_argument("--metadata", metavar="JSON", help="a JSON object echoed in every event")
    _wait_options(parser, flag=True)


def _wait_options(parser: argparse.ArgumentParser, *, flag: bool) -> None:
    if flag:
        parser.add_argument("--wait", action="store_true", help="follow the job to its end and download the video")
        parser.add_argument(
            "-o", "--output", metavar="FILE", help="with --wait: where the video goes (default: ./<request_id>.mp4)"
        )
    parser.add_argument(
        "--timeout",
        type=_positive,
        default=3600,
        metavar="SECONDS",
        help="stop waiting after this long (exit 5; default 3600)",
    )
    parser.add_argument(
        "--interval", type=float, default=3.0, metavar="SECONDS", help="seconds between looks at the table (default 3)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Start, follow and fetch Grok videos on a deployed grokvideo stack, and operate it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _common(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _common(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, handler: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    p = command("submit", "grokvideo.cli.requests:submit", "start a video from a prompt")
    _request_options(p)
    _generation_options(p)
    p = command("edit", "grokvideo.cli.requests:edit", "change a video: a stored job's (--source) or another (--video)")
    _request_options(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--source", metavar="REQUEST_ID", help="a STORED job of this stack")
    source.add_argument(
        "--video",
        metavar="FILE|URL|s3://",
        help="a local file (uploaded to the first input bucket), an https URL or s3://bucket/key in an input bucket",
    )
    p = command("track", "grokvideo.cli.requests:track", "follow a request_id started elsewhere to the end")
    p.add_argument("request_id")
    _tracking_options(p)
    p = command("status", "grokvideo.cli.query:status", "state, progress, timings, cost and S3 location of jobs")
    p.add_argument("ids", nargs="+", metavar="ID|REF", help="request id, submission id or client_ref")
    p = command("list", "grokvideo.cli.query:list_jobs", "recent jobs, newest first (an index, never a scan)")
    p.add_argument(
        "--state",
        action="append",
        type=str.upper,
        metavar="STATE",
        choices=["PENDING", "SUCCEEDED", "STORED", "FAILED", "ARCHIVE_FAILED", "RESERVED", "SUBMITTED"],
        help="only this state (repeatable)",
    )
    p.add_argument("--since", metavar="AGE|DATE", help="registered since: 30m, 12h, 7d or 2026-11-29T12:00Z")
    p.add_argument("--limit", type=_positive, default=20, help="at most this many (default 20)")
    p = command("wait", "grokvideo.cli.watch:wait", "live progress until each job is stored or failed")
    p.add_argument("ids", nargs="+", metavar="ID|REF")
    _wait_options(p, flag=False)
    p = command("fetch", "grokvideo.cli.fetch:fetch", "download a stored video and check its sha256, or print a URL")
    p.add_argument("id", metavar="ID|REF")
    out = p.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", metavar="FILE", help="where to write it (default: ./<request_id>.mp4)")
    out.add_argument("--url", action="store_true", help="print a presigned URL instead of downloading")
    p.add_argument(
        "--expires", type=_positive, default=3600, metavar="SECONDS", help="with --url: its lifetime (default 3600)"
    )
    p = command(
        "redrive", "grokvideo.cli.redrive:redrive", "move a dead-letter queue's messages back to where they can succeed"
    )
    p.add_argument("queue", choices=["copy", "register", "poller", "submit"])
    p.add_argument("--dry-run", action="store_true", help="say what would move, move nothing")
    p = command("events", "grokvideo.cli.tail:events", "print the stack's output events as they happen")
    p.add_argument("--follow", action="store_true", help="keep going until Ctrl-C (default: stop after --seconds)")
    p.add_argument("--seconds", type=_positive, default=60, help="without --follow: listen this long (default 60)")
    p.add_argument("--count", type=_positive, metavar="N", help="stop after N events")
    command(
        "doctor",
        "grokvideo.cli.doctor:doctor",
        "check the deployment: secret, schedule, dead letters, alarms, provider",
    )
    return parser


def _find(args: argparse.Namespace) -> Callable[[], Any]:
    def find() -> Any:
        from grokvideo.cli.deployment import Deployment

        if args.local:
            return Deployment.local()
        return Deployment.from_stack(args.stack, region=args.region, profile=args.profile)

    return find


def main(argv: Sequence[str] | None = None, *, context: Callable[[argparse.Namespace], Any] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return its exit code.

    ``context`` builds the ``Context`` from the parsed options (tests give one around moto).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a command line argparse refused
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    if not getattr(args, "handler", None):
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: no command given (see {PROG} --help)", file=sys.stderr)
        return 2

    from grokvideo.cli.context import Context
    from grokvideo.cli.exits import CliError, ExitCode

    ctx = context(args) if context else Context(args, _find(args))
    module, _, name = args.handler.partition(":")
    handler = getattr(importlib.import_module(module), name)
    try:
        return int(handler(ctx))
    except CliError as err:
        print(f"{PROG}: {err.message}", file=ctx.err)
        return int(err.code)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=ctx.err)
        return int(ExitCode.INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
