#!/usr/bin/env python3
"""The product end to end on the local stack: `make demo` (or `python local/demo.py`).

From a fresh clone it

1. brings up the local stack with our fake CometAPI (`python local/stack.py up`: virtualenvs,
   ministack, fake, sam build + deploy, PollIntervalSeconds=5),
2. puts six `Video Generation Requested` events on the stack's bus (source `com.example.demo`,
   client_ref `demo-N`, metadata {"demo": true}, an idempotency_key `demo-N-<run>` unique to this
   run, a duration of 1-6 s and a resolution) whose prompts steer the fake with its markers: four
   finish `done` after 8-25 s (`[ready_after=S]`, one with a 20 MB video: `[video_size=B]`), one
   `[moderated]`, one `[fail]`,
3. shows each job's progress live (redrawn in place on a terminal; a compact line every few
   seconds otherwise): SUBMITTING until its reservation (`submission_id(idempotency_key)` in the
   jobs table) names the provider's job (`job_request_id`), then that job's state; the poller is
   kicked (async invoke) once the first jobs are registered instead of waiting up to a minute for
   the schedule's first tick, and again whenever a pending job's poll is over 10 s late,
4. once demo-1 is submitted, puts its request a second time with the same idempotency_key (a user
   sending it again),
5. once demo-1 is STORED, puts a `Video Edit Requested` of it (`source_request_id` = its
   request_id, client_ref `demo-edit`), adds it to the live table, kicks the poller again when the
   edit is submitted unless the sweep kicked last is still going, and waits until every job is
   STORED or failed,
6. prints the final table with the `grokvideo` command (`grokvideo --local list --since ...`), each
   job's provider-done -> Video Stored latency against its bound (poll interval + copy time +
   5 s), demo-1's manifest (`<request_id>.json` beside its video), how many
   provider jobs the fake created for demo-1's two requests (`GET /_fake/creates`) and how the
   submit function handled the two (its log: submitted, then announced),
7. saves the smallest stored video with `grokvideo --local fetch` (which checks its sha256) and its
   manifest to ./out/, and leaves the stack running.

It exits non-zero, naming the stuck jobs, if they are not all finished within TIMEOUT seconds of
the first events being put, and if anything else is unexpected: a `done` job not STORED, a
moderated one not FAILED (MODERATED), a failed one not FAILED (PROVIDER_FAILED), the edit not
STORED, or more than one provider job for demo-1. Stop everything with `make local-down`
(`python local/stack.py down`).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "layers" / "shared"))  # grokvideo, as pyproject's pythonpath gives the tests

from local import stack  # noqa: E402

TIMEOUT = 180.0  # seconds after the first events are put (the edit included)
SOURCE = "com.example.demo"
GENERATE = "Video Generation Requested"
EDIT = "Video Edit Requested"
FINAL_STATES = ("STORED", "FAILED", "ARCHIVE_FAILED")
FAILED_STATES = ("FAILED", "ARCHIVE_FAILED")  # the provider's last progress means nothing there
EXPECTED_REASON = {"moderated": "MODERATED", "failed": "PROVIDER_FAILED"}
MARKER = {"done": "", "moderated": " [moderated]", "failed": " [fail]"}
KICK_WHEN_OVERDUE = 10  # s: a pending job whose poll is this late means nothing sweeps; kick again
MB = 1024 * 1024

# (prompt, outcome the markers ask the fake for, ready_after s, video_size bytes or None for the
# real 1 s MP4 fixture, duration s, resolution). Durations differ, so the fake's job summary
# (route, outcome, ready_after, size, duration) tells each request's provider jobs apart.
JOB_SPECS: list[tuple[str, str, float, int | None, int, str]] = [
    ("a red fox trotting through fresh snow at dawn", "done", 8, None, 6, "720p"),
    ("waves rolling onto a black sand beach, slow motion", "done", 14, None, 4, "480p"),
    ("a hot air balloon drifting over a canyon at sunrise", "done", 20, 20 * MB, 5, "720p"),
    ("a paper boat sailing down a rainy street", "done", 25, None, 3, "480p"),
    ("a scene the provider's moderation will refuse", "moderated", 10, None, 2, "480p"),
    ("a timelapse the model fails to render", "failed", 12, None, 1, "480p"),
]
EDIT_PROMPT = "make it snow harder"
EDIT_READY_AFTER = 8.0

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
    prompt: str
    outcome: str  # what the prompt's markers ask the fake for
    ready_after: float
    video_size: int | None
    idempotency_key: str
    duration: int | None = None  # generations only
    resolution: str | None = None
    source_request_id: str | None = None  # edits only
    put_mono: float | None = None  # when its event was put
    reservation: dict[str, Any] = field(default_factory=dict)  # the submission_id(idempotency_key) item
    request_id: str = ""  # the provider's job, once the reservation names it
    item: dict[str, Any] = field(default_factory=dict)  # the job item (a FAILED reservation: itself)
    finished_mono: float | None = None  # when the demo first saw a final state

    @property
    def kind(self) -> str:
        return "edit" if self.source_request_id else "generation"

    @property
    def state(self) -> str:
        return str(self.item["state"]) if self.item else "SUBMITTING"

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def detail(self) -> dict[str, Any]:
        """The input event's detail."""
        body: dict[str, Any] = {"prompt": self.prompt}
        if self.source_request_id:
            body["source_request_id"] = self.source_request_id
        else:
            body.update(duration=self.duration, resolution=self.resolution)
        body.update(client_ref=self.client_ref, metadata={"demo": True}, idempotency_key=self.idempotency_key)
        return body

    def unexpected(self) -> str | None:
        """Why this job's end is not what its prompt asked for, or None."""
        if self.outcome == "done":
            return None if self.state == "STORED" else f"{_state_text(self)}, expected STORED"
        want = EXPECTED_REASON[self.outcome]
        if self.state == "FAILED" and self.item.get("reason") == want:
            return None
        return f"{_state_text(self)}, expected FAILED ({want})"


def make_prompt(text: str, outcome: str, ready_after: float, video_size: int | None) -> str:
    size = f" [video_size={video_size}]" if video_size else ""
    return f"{text} [ready_after={ready_after:g}]{size}{MARKER[outcome]}"


def _plain(value: Any) -> Any:
    """DynamoDB JSON -> Python (numbers as int/float)."""
    from boto3.dynamodb.types import TypeDeserializer

    out = TypeDeserializer().deserialize(value)
    if hasattr(out, "as_integer_ratio") and not isinstance(out, (int, float)):
        out = int(out) if out == int(out) else float(out)
    return out


def get_item(ddb: Any, table: str, key: str) -> dict[str, Any]:
    raw = ddb.get_item(TableName=table, Key={"request_id": {"S": key}}, ConsistentRead=True)
    return {k: _plain(v) for k, v in raw.get("Item", {}).items()}


def refresh(ddb: Any, table: str, jobs: list[DemoJob], now: float) -> None:
    from grokvideo.submission import submission_id

    for job in jobs:
        if job.final or job.put_mono is None:
            continue
        if not job.request_id:
            # A submitted request is reserved under submission_id(idempotency_key): RESERVED, then
            # SUBMITTED naming the provider's job (job_request_id), or FAILED with a reason.
            job.reservation = get_item(ddb, table, submission_id(job.idempotency_key))
            if job.reservation.get("state") == "SUBMITTED" and job.reservation.get("job_request_id"):
                job.request_id = str(job.reservation["job_request_id"])
            elif job.reservation.get("state") == "FAILED":  # refused or uncertain: no provider job
                job.request_id = str(job.reservation["request_id"])
        if job.request_id:
            job.item = get_item(ddb, table, job.request_id)
        if job.final and job.finished_mono is None:
            job.finished_mono = now


# --------------------------------------------------------------------------- display


def _state_text(job: DemoJob) -> str:
    if not job.item:
        state = str(job.reservation.get("state", ""))
        return f"SUBMITTING ({state.lower()})" if state else "SUBMITTING"
    state = job.state
    if job.item.get("reason"):
        state += f" ({job.item['reason']})"
    return state


def _color(job: DemoJob, text: str) -> str:
    if job.state == "STORED":
        return f"{GREEN}{text}{RESET}"
    if job.state in FAILED_STATES:
        # an expected failure (the prompt asked the fake for it) is yellow, a surprise red
        return f"{RED if job.unexpected() else YELLOW}{text}{RESET}"
    if job.state == "SUCCEEDED":
        return f"{CYAN}{text}{RESET}"
    if job.state == "SUBMITTING":
        return f"{DIM}{text}{RESET}"
    return text


def _bar(progress: Any, width: int = 20) -> str:
    try:
        pct = max(0, min(100, int(progress)))
    except (TypeError, ValueError):
        return f"{'':{width}}    -" if width else "   -"
    filled = pct * width // 100
    return f"{'#' * filled}{'.' * (width - filled)} {pct:3d}%" if width else f"{pct:3d}%"


def _asked(job: DemoJob) -> str:
    """What the prompt's markers ask the fake for, short."""
    size = f", {job.video_size // MB} MB" if job.video_size else ""
    return f"{'edit ' if job.kind == 'edit' else ''}{job.outcome} @{job.ready_after:g}s{size}"


def live_lines(jobs: list[DemoJob], started: float, now: float, kicks: int) -> list[str]:
    # Lines must not wrap (the redraw counts lines): the bar shrinks to fit the terminal.
    bar = max(0, min(20, shutil.get_terminal_size().columns - 87))
    head = (
        f"{'client_ref':<10} {'request_id':<10} {'prompt asks':<18} {'state':<30} "
        f"{'provider progress':<{bar + 5}} {'elapsed':>7}"
    )
    lines = [f"{BOLD}{head}{RESET}"]
    for job in jobs:
        elapsed = (job.finished_mono or now) - (job.put_mono or now)
        state = _color(job, f"{_state_text(job):<30}")
        progress = job.item.get("progress") if job.state not in FAILED_STATES else None
        lines.append(
            f"{job.client_ref:<10} {job.request_id[:8]:<10} {_asked(job):<18} {state} "
            f"{_bar(progress, bar):<{bar + 5}} {elapsed:6.0f}s"
        )
    done = sum(job.final for job in jobs)
    lines.append(
        f"{DIM}{done}/{len(jobs)} finished, {now - started:.0f} s since the first events were put, "
        f"poller kicked {kicks}x{RESET}"
    )
    return lines


class LiveTable:
    """Redraws the table in place on a terminal; elsewhere (CI) prints one compact line every few seconds."""

    def __init__(self, every: float = 5.0) -> None:
        self.drawn = 0
        self.every = every
        self.last_line = 0.0
        self.last_text = ""

    def update(self, jobs: list[DemoJob], started: float, now: float, kicks: int, force: bool = False) -> None:
        if TTY:
            lines = live_lines(jobs, started, now, kicks)
            out = self._erase() if self.drawn else "\x1b[?25l"
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
            text = "; ".join(parts)
            if text != self.last_text or not force:  # the closing line only if something changed
                print(f"[demo] +{now - started:3.0f}s {text}", flush=True)
            self.last_text = text

    def note(self, msg: str) -> None:
        """A [demo] line in the middle of the live view: above the table, which is redrawn below it."""
        if TTY and self.drawn:
            sys.stdout.write(self._erase())
            self.drawn = 0
            sys.stdout.write("\x1b[?25h")
        say(msg)

    def _erase(self) -> str:
        return "".join("\x1b[1A\x1b[2K" for _ in range(self.drawn))

    def close(self) -> None:
        if TTY and self.drawn:
            sys.stdout.write("\x1b[?25h")
            sys.stdout.flush()


# --------------------------------------------------------------------------- the functions' logs


def log_messages(logs: Any, function_name: str, since_ms: int) -> list[str]:
    """Every message of `/aws/lambda/<function_name>` since `since_ms`; [] if the logs cannot be read."""
    kwargs: dict[str, Any] = {"logGroupName": f"/aws/lambda/{function_name}", "startTime": since_ms}
    found: list[str] = []
    try:
        while True:
            page = logs.filter_log_events(**kwargs)
            found.extend(event.get("message", "").strip() for event in page.get("events", []))
            token = page.get("nextToken")
            if not token or token == kwargs.get("nextToken"):
                return found
            kwargs["nextToken"] = token
    except Exception:  # the logs are a nicety: no figure rather than no demo
        return []


def _json_lines(messages: list[str]) -> list[dict[str, Any]]:
    docs = []
    for message in messages:
        if message.startswith("{"):
            try:
                doc = json.loads(message)
            except ValueError:
                continue
            if isinstance(doc, dict):
                docs.append(doc)
    return docs


def _report_fields(message: str) -> dict[str, str]:
    return {
        k.strip(): v.strip()
        for k, _, v in (part.strip().partition(": ") for part in message.split("\t"))
        if v and k.strip()
    }


def copy_durations(logs: Any, function_name: str, since_ms: int) -> dict[str, float]:
    """request_id -> seconds the copier invocation that stored it took (its REPORT Duration).

    The copier logs `copy settled` (Powertools JSON, correlation_id = the job's request_id,
    function_request_id = the invocation); the runtime's REPORT line carries that invocation's duration.
    """
    messages = log_messages(logs, function_name, since_ms)
    durations: dict[str, float] = {}  # invocation id -> seconds
    for message in messages:
        if message.startswith("REPORT RequestId:"):
            fields = _report_fields(message)
            rid = fields.get("REPORT RequestId", "")
            dur = fields.get("Duration", "").split()
            if rid and dur:
                durations[rid] = float(dur[0]) / 1000
    settled = {
        doc["function_request_id"]: doc["correlation_id"]
        for doc in _json_lines(messages)
        if doc.get("message") == "copy settled" and doc.get("correlation_id") and doc.get("function_request_id")
    }
    return {job_id: durations[inv] for inv, job_id in settled.items() if inv in durations}


def submit_outcomes(logs: Any, function_name: str, since_ms: int, submission: str) -> Counter[str]:
    """How the submit function handled each delivery of the request reserved as `submission`.

    `submitted` (the create) and `announced` (a repeated idempotency key: the job it already has)
    both send a `Video Generation Submitted`; `put back` is a delivery that found the key held by
    another one and went back to the queue.
    """
    return Counter(
        str(doc["message"]).removeprefix("request ")
        for doc in _json_lines(log_messages(logs, function_name, since_ms))
        if str(doc.get("message", "")).startswith("request ")
        and (doc.get("submission_id") == submission or submission in str(doc.get("why", "")))
    )


def show_deliveries(logs: Any, function_name: str, since_ms: int, job: DemoJob) -> None:
    """The submit function's log for `job`'s two deliveries (the emulator writes it as each invocation ends)."""
    submission = str(job.reservation.get("request_id", ""))
    if not submission:
        return
    until = time.monotonic() + 10
    while True:
        seen = submit_outcomes(logs, function_name, since_ms, submission)
        if seen["submitted"] + seen["announced"] >= 2 or time.monotonic() > until:
            break
        time.sleep(1)
    said = ", ".join(f"{n} {how}" for how, n in sorted(seen.items(), key=lambda kv: kv[0] != "submitted"))
    sent = seen["submitted"] + seen["announced"]
    print(
        f"  the submit function's log for {submission}: {said or 'nothing yet'} "
        f"(so {sent} x 'Video Generation Submitted' for {job.request_id})"
    )


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


def put(events: Any, bus: str, detail_type: str, jobs: list[DemoJob]) -> None:
    answer = events.put_events(
        Entries=[
            {"EventBusName": bus, "Source": SOURCE, "DetailType": detail_type, "Detail": json.dumps(job.detail())}
            for job in jobs
        ]
    )
    if answer.get("FailedEntryCount"):
        raise SystemExit(f"PutEvents refused entries: {answer['Entries']}")
    now = time.monotonic()
    for job in jobs:
        job.put_mono = job.put_mono or now


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="local/demo.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds after the first events are put")
    parser.add_argument("--skip-up", action="store_true", help="use the running stack and fake as they are")
    args = parser.parse_args(argv)
    t0 = time.monotonic()

    say("1/7 local stack: virtualenvs, ministack, fake CometAPI, sam build + deploy")
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

    run = secrets.token_hex(3)
    jobs = [
        DemoJob(
            f"demo-{n}",
            make_prompt(text, outcome, ready_after, size),
            outcome,
            ready_after,
            size,
            f"demo-{n}-{run}",
            duration=duration,
            resolution=resolution,
        )
        for n, (text, outcome, ready_after, size, duration, resolution) in enumerate(JOB_SPECS, 1)
    ]
    first = jobs[0]
    say(f"2/7 {len(jobs)} x '{GENERATE}' on bus {bus} (source {SOURCE}, metadata {{\"demo\": true}}):")
    for job in jobs:
        print(f"       {job.client_ref}  {job.idempotency_key}  {job.duration} s {job.resolution}  {job.prompt!r}")
    since_ms = int(time.time() * 1000) - 1000
    since_wall = since_ms / 1000
    put(events, bus, GENERATE, jobs)
    started = time.monotonic()
    deadline = started + args.timeout

    say(
        "3/7 progress: SUBMITTING until the reservation names the provider's job; "
        "the poller is kicked once the first jobs are registered"
    )
    live = LiveTable()
    repeated = False  # demo-1's request put a second time
    edit: DemoJob | None = None
    edit_kick_checked = False
    kicks: list[float] = []  # when the demo invoked the poller
    # One invocation sweeps for SWEEP_SECONDS while jobs are due and stops at once when none is.
    # (The emulator writes an invocation's log only when it ends: its START says nothing live.)
    poller_env = lam.get_function_configuration(FunctionName=outputs["PollerFunctionName"]).get("Environment", {})
    sweep_seconds = float(poller_env.get("Variables", {}).get("SWEEP_SECONDS", 50))
    due_all_along = False  # some demo job in the due index at every look since the last kick

    def kick() -> None:
        # One async invoke: the schedule's first tick comes up to a minute after the deploy.
        nonlocal due_all_along
        lam.invoke(FunctionName=outputs["PollerFunctionName"], InvocationType="Event", Payload=b"{}")
        kicks.append(time.monotonic())
        due_all_along = True

    try:
        while True:
            now = time.monotonic()
            refresh(ddb, table, jobs, now)
            due_all_along = due_all_along and any(job.item.get("due_shard") is not None for job in jobs)
            if not kicks and (any(job.state == "PENDING" for job in jobs) or now - started > 20):
                kick()
            if not repeated and first.request_id:
                # A user sending the request again once it was accepted. (Sent while the first
                # delivery still holds the key, it is put back in the queue for the lease, 60 s.)
                repeated = True
                how = f"submitted as {first.request_id}" if first.item.get("state") != "FAILED" else _state_text(first)
                live.note(
                    f"4/7 {first.client_ref} {how}: its request put again, same idempotency_key {first.idempotency_key}"
                )
                put(events, bus, GENERATE, [first])
            if edit is None and first.state == "STORED":
                edit = DemoJob(
                    "demo-edit",
                    f"{EDIT_PROMPT} [ready_after={EDIT_READY_AFTER:g}]",
                    "done",
                    EDIT_READY_AFTER,
                    None,
                    f"demo-edit-{run}",
                    source_request_id=first.request_id,
                )
                live.note(
                    f"5/7 {first.client_ref} is STORED: '{EDIT}' of it (source_request_id {first.request_id}, "
                    f"client_ref {edit.client_ref}, prompt {edit.prompt!r})"
                )
                put(events, bus, EDIT, [edit])
                jobs.append(edit)
            elif edit is not None and edit.reservation.get("state") == "SUBMITTED" and not edit_kick_checked:
                edit_kick_checked = True
                # The edit is submitted: kick again unless the sweep kicked last is still going.
                ago = now - kicks[-1] if kicks else None
                if ago is not None and due_all_along and ago < sweep_seconds - 5:
                    why = (
                        f"the sweep kicked {ago:.0f} s ago is still going (SWEEP_SECONDS={sweep_seconds:g} "
                        "while jobs are due), no kick"
                    )
                else:
                    kick()
                    why = "no sweep running: poller kicked again"
                live.note(f"   {edit.client_ref} submitted as {edit.request_id}: {why}")
            late = time.time() - KICK_WHEN_OVERDUE
            overdue = [j for j in jobs if j.state == "PENDING" and float(j.item.get("next_poll_at", late + 1)) < late]
            if overdue and kicks and now - kicks[-1] > KICK_WHEN_OVERDUE:
                kick()  # a poll is late: nothing is sweeping (a sweep ends when nothing is pending)
                live.note(
                    f"   {overdue[0].client_ref}'s poll is over {KICK_WHEN_OVERDUE} s late, so no sweep is running: "
                    "poller kicked again"
                )
            live.update(jobs, started, now, len(kicks))
            if all(job.final for job in jobs) and (edit is not None or first.final):
                break
            if now >= deadline:
                break
            time.sleep(0.5)
        live.update(jobs, started, time.monotonic(), len(kicks), force=True)
    finally:
        live.close()

    stuck = [job for job in jobs if not job.final]
    if stuck:
        print(f"{RED}[demo] FAILED: not finished {args.timeout:.0f} s after the events were put:{RESET}")
        for job in stuck:
            print(
                f"  {job.client_ref} {job.request_id or '(no request_id yet)'} state {_state_text(job)} "
                f"reservation {json.dumps(job.reservation, default=str)} item {json.dumps(job.item, default=str)}"
            )
        print(
            f"  look at {stack.LOG_FILE.relative_to(REPO)} (every Lambda's output) and "
            f"{stack.FAKE_LOG_FILE.relative_to(REPO)}; the stack is left running (make local-down stops it)"
        )
        return 1

    say("6/7 results")
    listed = grokvideo("list", "--since", datetime.fromtimestamp(since_wall, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    report(jobs, fake_url, poll_interval, logs, outputs, since_ms)
    manifest = show_manifest(s3, first)
    created = provider_jobs_for(first, fake_url, since_wall)
    print()
    print(f"{first.client_ref} was requested twice: {created} provider job(s) created")
    show_deliveries(logs, outputs["SubmitFunctionName"], since_ms, first)
    saved = save_video(s3, jobs)
    elapsed = time.monotonic() - t0
    print()
    say(f"7/7 done in {elapsed:.0f} s. The stack and the fake CometAPI keep running:")
    print(f"""
  play a video:   {saved or "(none stored)"}
  look around:    .venv/bin/grokvideo --local list        (status ID, wait ID, fetch ID, events --follow, doctor)
                  make local-status          (outputs, jobs by state, queue depths)
                  eval "$(python local/stack.py env)"   # AWS_ENDPOINT_URL + dummy credentials
                  aws s3 ls s3://{bucket} --recursive
                  aws dynamodb scan --table-name {table}
                  aws logs filter-log-events --log-group-name /aws/lambda/{outputs["PollerFunctionName"]}
                  (no aws CLI? the same with boto3, e.g. in .venv/bin/python:
                   boto3.client("s3").list_objects_v2(Bucket="{bucket}"))
                  fake CometAPI: curl {fake_url}/_fake/jobs ; curl {fake_url}/_fake/creates
                  every Lambda's output: {stack.LOG_FILE.relative_to(REPO)}
  stop it all:    make local-down             (python local/stack.py down)
""")
    problems = [f"{job.client_ref}: {wrong}" for job in jobs if (wrong := job.unexpected())]
    if listed.returncode != 0 or first.request_id not in listed.stdout:
        problems.append(
            f"grokvideo list: exit {listed.returncode}, {first.request_id} listed: {first.request_id in listed.stdout}"
        )
    if saved is None and any(job.state == "STORED" for job in jobs):
        problems.append("grokvideo fetch: no video saved")
    if edit is None:
        problems.append(f"demo-edit: never requested ({first.client_ref} did not end STORED)")
    if created != 1:
        problems.append(f"{first.client_ref}: {created} provider jobs for one idempotency_key, expected 1")
    if manifest is None and first.state == "STORED":
        problems.append(f"{first.client_ref}: no manifest")
    if problems:
        say(f"{RED}unexpected: {'; '.join(problems)}{RESET}")
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
    headers = ["client_ref", "request_id", "done->stored", "bound", ""]
    right = {"done->stored", "bound"}
    rows: list[list[str]] = []
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
        rows.append([job.client_ref, job.request_id, latency, bound, verdict])
    widths = [max(len(h), *(len(cells[i]) for cells in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> list[str]:
        return [c.rjust(w) if h in right else c.ljust(w) for h, c, w in zip(headers, cells, widths, strict=True)]

    print()
    print(BOLD + "  ".join(line(headers)).rstrip() + RESET)
    for cells in rows:
        out = line(cells)
        if out[-1].strip():
            out[-1] = f"{GREEN if cells[-1] == 'ok' else RED}{out[-1]}{RESET}"
        print("  ".join(out).rstrip())
    print(
        f"{DIM}done->stored: the fake's finish time (GET /_fake/jobs: created + ready_after) to the job's "
        f"stored_at (whole seconds, so up to 1 s low); bound = PollIntervalSeconds ({poll_interval}) + copy time "
        f"(the copier invocation's REPORT Duration) + 5 s. For failed jobs, in brackets: done -> completed_at.{RESET}"
    )


def read_manifest(s3: Any, job: DemoJob) -> dict[str, Any] | None:
    key = job.item.get("manifest_key")
    if job.state != "STORED" or not key:
        return None
    try:
        return dict(json.loads(s3.get_object(Bucket=job.item["bucket"], Key=key)["Body"].read()))
    except Exception as err:
        say(f"{RED}manifest s3://{job.item['bucket']}/{key} unreadable: {err}{RESET}")
        return None


def show_manifest(s3: Any, job: DemoJob) -> dict[str, Any] | None:
    manifest = read_manifest(s3, job)
    if manifest is None:
        return None
    request = manifest.get("request") or {}
    video = manifest.get("video") or {}
    print()
    print(f"{job.client_ref}'s manifest, s3://{job.item['bucket']}/{job.item['manifest_key']}:")
    for name, value in (
        ("origin", manifest.get("origin")),
        ("prompt", request.get("prompt")),
        (
            "model, duration",
            f"{manifest.get('model')}, {manifest.get('duration')} s, {request.get('resolution', '-')}",
        ),
        ("cost_usd", manifest.get("cost_usd")),
        ("idempotency_key", manifest.get("idempotency_key")),
        ("client_ref, metadata", f"{manifest.get('client_ref')}, {json.dumps(manifest.get('metadata'))}"),
        ("submitted -> stored", f"{manifest.get('submitted_at')} -> {manifest.get('stored_at')}"),
        ("video", f"{video.get('size_bytes'):,} bytes, sha256 {video.get('sha256')}"),
    ):
        print(f"  {name:<22} {value}")
    return manifest


def provider_jobs_for(job: DemoJob, fake_url: str, since_wall: float) -> int:
    """How many jobs the fake created, since `since_wall`, for the request `job` put (twice).

    `GET /_fake/creates` lists [time, route, request_id] of every create; `GET /_fake/jobs` tells
    what each was asked (outcome, ready_after, video_size, duration: unique to each demo request).
    """
    accepted = fake_call(fake_url, "GET", "/_fake/creates")["accepted"]
    fake_jobs = {j["request_id"]: j for j in fake_call(fake_url, "GET", "/_fake/jobs")["jobs"]}
    route = "edits" if job.kind == "edit" else "generations"
    per_id = Counter(rid for at, how, rid in accepted if float(at) >= since_wall and how == route)
    mine = [
        rid
        for rid in per_id
        if (f := fake_jobs.get(rid))
        and (f["outcome"], float(f["ready_after"]), f["video_size"]) == (job.outcome, job.ready_after, job.video_size)
        and (job.duration is None or f["duration"] == job.duration)
    ]
    if job.request_id not in mine:
        say(f"{RED}{job.request_id} is not among the fake's creates for {job.client_ref}: {mine}{RESET}")
    return sum(per_id[rid] for rid in mine)


def grokvideo(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``grokvideo --local <args>`` (this checkout's command, as a user types it) and show it."""
    print(f"\n{BOLD}$ grokvideo --local {' '.join(args)}{RESET}", flush=True)
    env = {**os.environ, "PYTHONPATH": str(REPO / "layers" / "shared"), "GROKVIDEO_LOCAL_DIR": str(stack.LOCAL)}
    result = subprocess.run(
        [sys.executable, "-m", "grokvideo.cli.app", "--local", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    print(result.stdout + result.stderr, end="", flush=True)
    if result.returncode != 0:
        say(f"{RED}grokvideo {args[0]} exited {result.returncode}{RESET}")
    return result


def save_video(s3: Any, jobs: list[DemoJob]) -> str | None:
    stored = [j for j in jobs if j.state == "STORED"]
    if not stored:
        return None
    job = min(stored, key=lambda j: int(j.item.get("size_bytes", 0)))  # the real (playable) 1 s MP4
    out_dir = Path.cwd() / "out"
    out_dir.mkdir(exist_ok=True)
    shown = (out_dir / f"{job.request_id}.mp4").relative_to(Path.cwd())
    if grokvideo("fetch", job.request_id, "-o", str(shown)).returncode != 0:
        return None
    manifest = read_manifest(s3, job)
    if manifest is not None:
        (out_dir / f"{job.request_id}.json").write_text(json.dumps(manifest, indent=2) + "\n")
        say(f"saved its manifest {job.item['manifest_key']} to ./{shown.with_suffix('.json')}")
    return f"./{shown}"


if __name__ == "__main__":
    sys.exit(main())
