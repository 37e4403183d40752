"""Command line: ``python -m local.fake_cometapi --port 0`` serves until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from .fake import FakeCometAPI
from .jobs import SHAPES
from .video import DEFAULT_VIDEO_PATH


def main(argv: list[str] | None = None) -> int:
    """Run the fake until SIGTERM/SIGINT; the first stdout line names its base URL."""
    parser = argparse.ArgumentParser(
        prog="python -m local.fake_cometapi",
        description="Fake CometAPI (Grok video routes) for tests and the demo.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("FAKE_COMETAPI_KEY", "test-key"),
        help="key API calls must present (default $FAKE_COMETAPI_KEY or test-key)",
    )
    parser.add_argument("--ready-after", type=float, default=3.0, help="seconds until a job's outcome shows")
    parser.add_argument("--auto-jobs", action="store_true", help="create unknown ids on first poll")
    parser.add_argument("--shape", choices=SHAPES, default="envelope")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every API answer")
    parser.add_argument("--video-path", type=Path, default=DEFAULT_VIDEO_PATH)
    parser.add_argument(
        "--create-rate", type=float, default=None, help="creates allowed per second (past it: 429); default no limit"
    )
    parser.add_argument("--create-burst", type=int, default=1, help="creates allowed at once under --create-rate")
    parser.add_argument(
        "--fault-seed", type=int, default=None, help="seed of the draws of probabilistic faults (default: random)"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    try:
        fake = FakeCometAPI(
            args.host,
            args.port,
            api_key=args.api_key,
            ready_after=args.ready_after,
            video_path=args.video_path,
            auto_jobs=args.auto_jobs,
            shape=args.shape,
            verbose=args.verbose,
            create_rate=args.create_rate,
            create_burst=args.create_burst,
            fault_seed=args.fault_seed,
        )
    except ValueError as exc:
        parser.error(str(exc))
    fake.set_latency(args.latency)
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    with fake:
        print(f"fake CometAPI listening on {fake.base_url}", flush=True)
        while not done.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
