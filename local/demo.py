#!/usr/bin/env python3
"""The product end to end on the local stack: `make demo` (or `python local/demo.py`).

From a fresh clone it

1. brings up the local stack with our fake CometAPI (`python local/stack.py up`: virtualenvs,
   ministack, fake, sam build + deploy, PollIntervalSeconds=5),
2. creates six jobs on the fake through its admin API (four finish `done` after 8-25 s, one of
   them with a 20 MB video; one `moderated`; one `failed`),
3. puts one `Video Job Track Requested` event per job on the stack's bus (source
   `com.example.demo`, client_ref `demo-N`, metadata {"demo": true}) and kicks the poller once
   (async invoke) instead of waiting up to a minute for the schedule's first tick,
4. shows each job's progress live (redrawn in place on a terminal; a compact line every few
   seconds otherwise) until every job is STORED or failed, then the final table with the
   provider-done -> Video Stored latency against its bound (poll interval + copy time + 5 s),
5. saves one stored video to ./out/<request_id>.mp4 and leaves the stack running.

It exits non-zero, naming the stuck jobs, if they are not all finished within TIMEOUT seconds of
the events being put. Stop everything with `make local-down` (`python local/stack.py down`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from local import stack  # noqa: E402

TIMEOUT = 150.0  # seconds after the events are put
SOURCE = "com.example.demo"
DETAIL_TYPE = "Video Job Track Requested"
FINAL_STATES = ("STORED", "FAILED", "ARCHIVE_FAILED")
FAILED_STATES = ("FAILED", "ARCHIVE_FAILED")  # the provider's last progress means nothing there
MB = 1024 * 1024

# (outcome on the fake, ready_after seconds, video_size bytes or None for the real 1 s MP4 fixture)
JOB_SPECS: list[tuple[str, float, int | None]] = [
    ("done", 8, None),
    ("done", 14, None),
    ("done", 20, 20 * MB),
    ("done", 25, None),
    ("moderated", 10, None),
    ("failed", 12, None),
]

TTY = sys.stdout.isatty()
BOLD, DIM, GREEN, RED, YELLOW, CYAN, RESET = (
    ("\x1b[1m", "\x1b[2m", "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[36m", "\x1b[0m") if TTY else ("",) * 7
)


def say(msg: str) -> None:
    print(f"{BOLD}[demo]{RESET} {msg}", flush=True)


# --------------------------------------------------------------------------- fake admin API


def fake_call(base_url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"{base_url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


# --------------------------------------------------------------------------- jobs


@dataclass
class DemoJob:
    client_ref: str
    outcome: str
    ready_after: float
    video_size: int | None
    request_id: str = ""
    item: dict[str, Any] = field(default_factory=dict)
    finished_mono: float | None = None  # when the demo first saw a final state

    @property
    def state(self) -> str:
        return str(self.item.get("state", "-"))

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def _plain(value: Any) -> Any:
    """DynamoDB JSON -> Python (numbers as int/float)."""
    from boto3.dynamodb.types import TypeDeserializer

    out = TypeDeserializer().deserialize(value)
    if hasattr(out, "as_integer_ratio") and not isinstance(out, (int, float)):
        out = int(out) if out == int(out) else float(out)
    return out


def refresh(ddb: Any, table: str, jobs: list[DemoJob], now: float) -> None:
    for job in jobs:
        if job.final:
            continue
        raw = ddb.get_item(TableName=table, Key={"request_id": {"S": job.request_id}}, ConsistentRead=True)
        job.item = {k: _plain(v) for k, v in raw.get("Item", {}).items()}
        if job.final and job.finished_mono is None:
            job.finished_mono = now


# --------------------------------------------------------------------------- display


def _state_text(job: DemoJob) -> str:
    state = job.state
    if job.item.get("reason"):
        state += f" ({job.item['reason']})"
    return state


def _color(job: DemoJob, text: str) -> str:
    if job.state == "STORED":
        return f"{GREEN}{text}{RESET}"
    if job.state in ("FAILED", "ARCHIVE_FAILED"):
        # an expected failure (the fake was told to fail it) is yellow, a surprise red
        expected = job.outcome != "done" and job.state == "FAILED"
        return f"{YELLOW if expected else RED}{text}{RESET}"
    if job.state == "SUCCEEDED":
        return f"{CYAN}{text}{RESET}"
    return text


def _bar(progress: Any, width: int = 20) -> str:
    try:
        pct = max(0, min(100, int(progress)))
    except (TypeError, ValueError):
        return f"{'':{width}}    -" if width else "   -"
    filled = pct * width // 100
    return f"{'#' * filled}{'.' * (width - filled)} {pct:3d}%" if width else f"{pct:3d}%"


def live_lines(jobs: list[DemoJob], started: float, now: float) -> list[str]:
    # Lines must not wrap (the redraw counts lines): the bar shrinks to fit the terminal.
    bar = max(0, min(20, shutil.get_terminal_size().columns - 85))
    head = (
        f"{'client_ref':<10} {'request_id':<10} {'fake outcome':<18} {'state':<28} "
        f"{'provider progress':<{bar + 5}} {'elapsed':>7}"
    )
    lines = [f"{BOLD}{head}{RESET}"]
    for job in jobs:
        elapsed = (job.finished_mono or now) - started
        size = f", {job.video_size // MB} MB" if job.video_size else ""
        fake = f"{job.outcome} @{job.ready_after:g}s{size}"
        state = _color(job, f"{_state_text(job):<28}")
        lines.append(
            f"{job.client_ref:<10} {job.request_id[:8]:<10} {fake:<18} {state} "
            f"{_bar(job.item.get('progress') if job.state not in FAILED_STATES else None, bar):<{bar + 5}} "
            f"{elapsed:6.0f}s"
        )
    done = sum(job.final for job in jobs)
    lines.append(f"{DIM}{done}/{len(jobs)} finished, {now - started:.0f} s since the events were put{RESET}")
    return lines


class LiveTable:
    """Redraws the table in place on a terminal; elsewhere (CI) prints one compact line every few seconds."""

    def __init__(self, every: float = 5.0) -> None:
        self.drawn = 0
        self.every = every
        self.last_line = 0.0

    def update(self, jobs: list[DemoJob], started: float, now: float, force: bool = False) -> None:
        if TTY:
            lines = live_lines(jobs, started, now)
            out = "".join("\x1b[1A\x1b[2K" for _ in range(self.drawn)) if self.drawn else "\x1b[?25l"
            sys.stdout.write(out + "\n".join(lines) + "\n")
            sys.stdout.flush()
            self.drawn = len(lines)
        elif force or now - self.last_line >= self.every:
            self.last_line = now
            parts = []
            for job in jobs:
                progress = job.item.get("progress")
                pct = f" {progress}%" if job.state == "PENDING" and progress is not None else ""
                parts.append(f"{job.client_ref} {_state_text(job)}{pct}")
            print(f"[demo] +{now - started:3.0f}s " + "; ".join(parts), flush=True)

    def close(self) -> None:
        if TTY and self.drawn:
            sys.stdout.write("\x1b[?25h")
            sys.stdout.flush()


# --------------------------------------------------------------------------- copy time from the logs


def copy_durations(logs: Any, function_name: str, since_ms: int) -> dict[str, float]:
    """request_id -> seconds the copier invocation that stored it took (its REPORT Duration).

    The copier logs `copy settled` (Powertools JSON, correlation_id = the job's request_id,
    function_request_id = the invocation); the runtime's REPORT line carries that invocation's duration.
    """
    group = f"/aws/lambda/{function_name}"
    settled: dict[str, str] = {}  # invocation id -> job request_id
    durations: dict[str, float] = {}  # invocation id -> seconds
    kwargs: dict[str, Any] = {"logGroupName": group, "startTime": since_ms}
    try:
        while True:
            page = logs.filter_log_events(**kwargs)
            for event in page.get("events", []):
                message = event.get("message", "").strip()
                if message.startswith("REPORT RequestId:"):
                    fields = dict(part.strip().split(": ", 1) for part in message.split("\t") if ": " in part.strip())
                    rid = fields.get("REPORT RequestId", "").strip()
                    dur = fields.get("Duration", "").split()[0] if fields.get("Duration") else ""
                    if rid and dur:
                        durations[rid] = float(dur) / 1000
                elif message.startswith("{") and '"copy settled"' in message:
                    try:
                        doc = json.loads(message)
                    except ValueError:
                        continue
                    if doc.get("correlation_id") and doc.get("function_request_id"):
                        settled[doc["function_request_id"]] = doc["correlation_id"]
            token = page.get("nextToken")
            if not token or token == kwargs.get("nextToken"):
                break
            kwargs["nextToken"] = token
    except Exception:  # the logs are a nicety: no figure rather than no demo
        return {}
    return {job_id: durations[inv] for inv, job_id in settled.items() if inv in durations}


# --------------------------------------------------------------------------- main


def ensure_boto3() -> None:
    """boto3 from this interpreter, else re-run the demo on the ministack venv's (it has boto3)."""
    try:
        import boto3  # noqa: F401
    except ImportError:
        stack.ensure_venvs()
        py = stack.MINISTACK_VENV / "bin" / "python"
        if Path(sys.prefix).resolve() == stack.MINISTACK_VENV.resolve():
            raise
        os.execv(str(py), [str(py), __file__, *sys.argv[1:]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="local/demo.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds after the events are put")
    parser.add_argument("--skip-up", action="store_true", help="use the running stack and fake as they are")
    args = parser.parse_args(argv)
    t0 = time.monotonic()

    say("1/5 local stack: virtualenvs, ministack, fake CometAPI, sam build + deploy")
    ensure_boto3()
    if args.skip_up:
        port = stack._running_port()
        if port is None or not stack.running_fake_url():
            raise SystemExit("--skip-up: the stack or the fake is not running (python local/stack.py up)")
        stack._apply_aws_env(port)
    else:
        # The demo runs against our fake: ignore a CometAPI the caller's environment points at.
        for key in ("COMETAPI_BASE_URL", "ALLOWED_VIDEO_HOSTS", "ALLOW_PRIVATE_VIDEO_HOSTS"):
            os.environ.pop(key, None)
        rc = stack.main(["up"])
        if rc:
            return rc
    import boto3

    doc = json.loads(stack.OUTPUTS_FILE.read_text())
    outputs = doc["outputs"]
    fake_url = stack.running_fake_url()
    if not fake_url or doc["parameters"].get("CometApiBaseUrl") != fake_url:
        raise SystemExit("the stack does not point at our fake CometAPI: python local/stack.py up (no URL)")
    poll_interval = int(doc["parameters"].get("PollIntervalSeconds", 60))
    table, bus, bucket = outputs["JobsTableName"], outputs["EventBusName"], outputs["VideoBucketName"]
    ddb, events, lam, s3, logs = (boto3.client(name) for name in ("dynamodb", "events", "lambda", "s3", "logs"))
    say(f"stack up in {time.monotonic() - t0:.0f} s: bus {bus}, table {table}, bucket {bucket}")
    say(f"fake CometAPI {fake_url}, PollIntervalSeconds={poll_interval}")

    say("2/5 six jobs on the fake CometAPI (POST /_fake/jobs)")
    jobs = [DemoJob(f"demo-{n}", *spec) for n, spec in enumerate(JOB_SPECS, 1)]
    for job in jobs:
        body: dict[str, Any] = {"outcome": job.outcome, "ready_after": job.ready_after}
        if job.video_size:
            body["video_size"] = job.video_size
        job.request_id = fake_call(fake_url, "POST", "/_fake/jobs", body)["request_id"]
    since_ms = int(time.time() * 1000) - 1000

    say(f"3/5 {len(jobs)} x '{DETAIL_TYPE}' on bus {bus} (source {SOURCE})")
    answer = events.put_events(
        Entries=[
            {
                "EventBusName": bus,
                "Source": SOURCE,
                "DetailType": DETAIL_TYPE,
                "Detail": json.dumps(
                    {"request_id": job.request_id, "client_ref": job.client_ref, "metadata": {"demo": True}}
                ),
            }
            for job in jobs
        ]
    )
    if answer.get("FailedEntryCount"):
        raise SystemExit(f"PutEvents refused entries: {answer['Entries']}")
    started = time.monotonic()
    deadline = started + args.timeout

    say("4/5 progress (the poller is kicked once the jobs are registered)")
    live = LiveTable()
    kicked = False
    try:
        while True:
            now = time.monotonic()
            refresh(ddb, table, jobs, now)
            if not kicked and (all(job.item for job in jobs) or now - started > 20):
                # One async invoke: the schedule's first tick comes up to a minute after the deploy.
                lam.invoke(FunctionName=outputs["PollerFunctionName"], InvocationType="Event", Payload=b"{}")
                kicked = True
            live.update(jobs, started, now)
            if all(job.final for job in jobs) or now >= deadline:
                break
            time.sleep(0.5)
        live.update(jobs, started, time.monotonic(), force=True)
    finally:
        live.close()

    stuck = [job for job in jobs if not job.final]
    if stuck:
        print(f"{RED}[demo] FAILED: not finished {args.timeout:.0f} s after the events were put:{RESET}")
        for job in stuck:
            print(f"  {job.client_ref} {job.request_id} state {job.state} item {json.dumps(job.item, default=str)}")
        print(
            f"  look at {stack.LOG_FILE.relative_to(REPO)} (every Lambda's output) and "
            f"{stack.FAKE_LOG_FILE.relative_to(REPO)}; the stack is left running (make local-down stops it)"
        )
        return 1

    report(jobs, fake_url, poll_interval, logs, outputs, since_ms)
    saved = save_video(s3, jobs)
    elapsed = time.monotonic() - t0
    print()
    say(f"5/5 done in {elapsed:.0f} s. The stack and the fake CometAPI keep running:")
    print(f"""
  play a video:   {saved or "(none stored)"}
  look around:    make local-status          (outputs, jobs by state, queue depths)
                  eval "$(python local/stack.py env)"   # AWS_ENDPOINT_URL + dummy credentials
                  aws s3 ls s3://{bucket} --recursive
                  aws dynamodb scan --table-name {table}
                  aws logs filter-log-events --log-group-name /aws/lambda/{outputs["PollerFunctionName"]}
                  (no aws CLI? the same with boto3, e.g. in .venv/bin/python:
                   boto3.client("s3").list_objects_v2(Bucket="{bucket}"))
                  fake CometAPI: curl {fake_url}/_fake/jobs
                  every Lambda's output: {stack.LOG_FILE.relative_to(REPO)}
  stop it all:    make local-down             (python local/stack.py down)
""")
    bad = [j for j in jobs if (j.outcome == "done") != (j.state == "STORED")]
    if bad:
        say(f"{RED}unexpected outcome for {', '.join(j.client_ref for j in bad)}{RESET}")
        return 1
    return 0


def report(
    jobs: list[DemoJob], fake_url: str, poll_interval: int, logs: Any, outputs: dict[str, str], since_ms: int
) -> None:
    fetched = time.time()
    fake_jobs = {j["request_id"]: j for j in fake_call(fake_url, "GET", "/_fake/jobs")["jobs"]}
    # The fake's finish time: created + ready_after (GET /_fake/jobs gives elapsed since creation).
    done_at = {
        rid: fetched - float(j["elapsed"]) + float(j["ready_after"]) for rid, j in fake_jobs.items() if j.get("final")
    }
    copy_secs = copy_durations(logs, outputs["CopierFunctionName"], since_ms)
    if len(copy_secs) < sum(j.state == "STORED" for j in jobs):
        time.sleep(1.5)  # log delivery lags a little
        copy_secs = copy_durations(logs, outputs["CopierFunctionName"], since_ms)
    headers = ["client_ref", "request_id", "state", "size", "sha256", "done->stored", "bound", ""]
    right = {"size", "done->stored", "bound"}
    rows: list[tuple[DemoJob, list[str]]] = []
    for job in jobs:
        it = job.item
        latency = bound = "-"
        verdict = ""
        if job.state == "STORED" and job.request_id in done_at:
            lat = float(it["stored_at"]) - done_at[job.request_id]
            copy = copy_secs.get(job.request_id)
            latency = f"{lat:.1f} s"
            if copy is not None:
                limit = poll_interval + copy + 5
                bound = f"{limit:.1f} s"
                verdict = "ok" if lat <= limit else "OVER"
        elif job.state == "FAILED" and job.request_id in done_at and it.get("completed_at"):
            latency = f"({float(it['completed_at']) - done_at[job.request_id]:.1f} s)"
        size = f"{int(it['size_bytes']):,}" if it.get("size_bytes") is not None else "-"
        cells = [job.client_ref, job.request_id, _state_text(job)]
        rows.append((job, [*cells, size, str(it.get("sha256", "-"))[:12], latency, bound, verdict]))
    widths = [max(len(h), *(len(cells[i]) for _, cells in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> list[str]:
        return [c.rjust(w) if h in right else c.ljust(w) for h, c, w in zip(headers, cells, widths, strict=True)]

    print()
    stored = next((j.item for j in jobs if j.state == "STORED"), None)
    if stored:  # one bucket, one key scheme: say it once instead of a column each
        prefix = str(stored["key"])[: -len(f"{stored['request_id']}.mp4")]
        print(f"stored videos: s3://{stored['bucket']}/{prefix}<request_id>.mp4")
    print(BOLD + "  ".join(line(headers)).rstrip() + RESET)
    for job, cells in rows:
        out = line(cells)
        out[2] = _color(job, out[2])
        if out[-1].strip():
            out[-1] = f"{GREEN if cells[-1] == 'ok' else RED}{out[-1]}{RESET}"
        print("  ".join(out).rstrip())
    print(
        f"{DIM}done->stored: the fake's finish time (GET /_fake/jobs: created + ready_after) to the job's "
        f"stored_at (whole seconds, so up to 1 s low); bound = PollIntervalSeconds ({poll_interval}) + copy time "
        f"(the copier invocation's REPORT Duration) + 5 s. For failed jobs, in brackets: done -> completed_at.{RESET}"
    )


def save_video(s3: Any, jobs: list[DemoJob]) -> str | None:
    stored = [j for j in jobs if j.state == "STORED"]
    if not stored:
        return None
    job = min(stored, key=lambda j: int(j.item.get("size_bytes", 0)))  # the real (playable) 1 s MP4
    out_dir = Path.cwd() / "out"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"{job.request_id}.mp4"
    tmp = path.with_suffix(".part")
    s3.download_file(job.item["bucket"], job.item["key"], str(tmp))
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    shutil.move(tmp, path)
    check = "matches" if digest == job.item.get("sha256") else f"{RED}DIFFERS from{RESET}"
    shown = path.relative_to(Path.cwd())
    say(f"saved s3://{job.item['bucket']}/{job.item['key']} to ./{shown} (sha256 {check} the job's)")
    return f"./{shown}"


if __name__ == "__main__":
    sys.exit(main())
