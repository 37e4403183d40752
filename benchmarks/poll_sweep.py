"""Poll sweep benchmark: throughput and CPU per poll of the sweep, a sequential loop, items read.

Run alone: ``python benchmarks/poll_sweep.py`` (from the repo root, in the test virtualenv);
``--compare REV`` measures the code of git revision ``REV`` in the same run, interleaved with
this tree's, so both see the same machine noise (``--compare HEAD~3``).

Side by side, in one run, against the fake CometAPI (its own process, with injected latency):

1. the sweep at ``--concurrency`` over DynamoDB and EventBridge served by a moto server in its
   own process, three kinds of poll, each sweep in a fresh process of its own:
   - *finishing*: the provider says done (claim, GET, transition, PutEvents, clear the outbox);
   - *pending*: the provider says pending with the progress the job already has;
   - *pending, progress moved*: the same, but the provider's progress differs from the job's;
   The sweeping process's own CPU (``time.process_time()`` around ``Sweeper.run``, every thread,
   set-up excluded) is divided by the polls; the emulator's and the fake's CPU are their own
   processes' and are shown apart, never counted in. ``--repeats`` sweeps of each kind: min and
   median. With ``--traced`` each sweep runs as in Lambda with active tracing: the poller's
   handler module (``functions/poller/app.py``) is loaded, so its Tracer patches what it patches,
   and the invocation is sampled, its segments sent to a local UDP port nobody reads.
   A typical job is 6 pending polls and 1 finishing one; a 512 MB Lambda has
   512 / 1769 of a vCPU, so a poller invocation's ceiling is that share / CPU per poll (also
   bounded by concurrency / latency).
2. a plain sequential loop of status calls over the same API, the baseline;
3. DynamoDB items read by one sweep with ``--finished`` finished jobs in the table next to
   ``--due`` due ones (in-process moto: only item counts matter here).

Targets: sweep >= 80 % of concurrency / latency; >= 10x the sequential loop at
concurrency 16; items read <= 1.05 x jobs due.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The code under test: this tree's, or (in a worker of --compare) another revision's, extracted.
CODE = Path(os.environ.get("POLL_SWEEP_CODE", ROOT))
sys.path[:0] = [str(CODE / "layers" / "shared"), str(ROOT)]

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from benchmarks.machine import describe  # noqa: E402
from benchmarks.services import MOTO_CREDENTIALS, Service, cpu_seconds, fake_cometapi, moto_server  # noqa: E402
from grokvideo.backoff import PollSchedule  # noqa: E402
from grokvideo.cometapi import CometApiClient  # noqa: E402
from grokvideo.events import EventPublisher  # noqa: E402
from grokvideo.jobs import JobStore  # noqa: E402
from grokvideo.sweep import Sweeper  # noqa: E402
from tests.integration.conftest import create_jobs_table  # noqa: E402

API_KEY = "bench-key"
LAMBDA_MB_PER_VCPU = 1769  # Lambda gives a function CPU in proportion to memory: 1769 MB = 1 vCPU
TYPICAL_PENDING_POLLS = 6  # a typical job: 6 pending polls, then the one that finds it done
KINDS = ("finishing", "pending", "progress")
KIND_NAMES = {"finishing": "finishing", "pending": "pending", "progress": "pending, progress moved"}
NEVER = "1000000"  # --ready-after for the pending fake: its jobs stay pending, progress 0


def fake(latency: float, ready_after: str = "0") -> AbstractContextManager[Service]:
    """The fake CometAPI, every id a job (ready after ``ready_after`` s), answering after ``latency`` s."""
    return fake_cometapi("--auto-jobs", "--ready-after", ready_after, "--latency", str(latency), "--api-key", API_KEY)


# --- one sweep, in a worker process -------------------------------------------------------------


def job_store(name: str, endpoint: str, config: Config) -> JobStore:
    """The store under test on the emulator (code from before the store took a plain client, as
    ``--compare`` may run, took a boto3 resource)."""
    if "client" in inspect.signature(JobStore).parameters:
        return JobStore(name, first_poll_delay=0, client=boto3.client("dynamodb", endpoint_url=endpoint, config=config))
    resource = boto3.resource("dynamodb", endpoint_url=endpoint, config=config)
    return JobStore(name, first_poll_delay=0, dynamodb=resource)  # type: ignore[call-arg]


def sweep_once(kind: str, base_url: str, endpoint: str, *, jobs: int, concurrency: int) -> dict[str, float]:
    """One sweep of ``jobs`` due jobs of ``kind``: its polls, seconds and the CPU this process spent."""
    config = Config(max_pool_connections=concurrency * 2, retries={"mode": "standard"})
    name = f"bench-{kind}-{uuid.uuid4().hex[:8]}"
    create_jobs_table(
        boto3.resource("dynamodb", endpoint_url=endpoint, config=config), name, template_path=CODE / "template.yaml"
    )
    events = boto3.client("events", endpoint_url=endpoint, config=config)
    events.create_event_bus(Name=name)
    store = job_store(name, endpoint, config)
    now = int(time.time())
    # "pending": the job already shows the provider's progress (0 while the fake's job has not
    # started), so the answer changes nothing; "progress": the job has none yet, so it does.
    extra = {"progress": 0} if kind == "pending" else {}
    for _ in range(jobs):
        store.register(f"bench-{uuid.uuid4().hex}", now=now, **extra)
    sweeper = Sweeper(
        store,
        CometApiClient(base_url, lambda: API_KEY, maxsize=concurrency),
        EventPublisher(name, "grokvideo", client=events),
        concurrency=concurrency,
        schedule=PollSchedule(first_delay=60, cap=60),
        sweep_seconds=0,
    )
    cpu = time.process_time()
    report = sweeper.run()
    cpu = time.process_time() - cpu
    finishing = kind == "finishing"
    assert report.polled == jobs and report.events_published == (jobs if finishing else 0), report
    # (A lost claim is no error: moto's due query may list a job again on a later page once a
    # poll has moved it, and the claim then finds it gone, as a stale index read would.)
    assert report.unexpected_errors == 0, report
    return {"polled": report.polled, "seconds": report.duration_seconds, "cpu": cpu}


def as_traced_lambda() -> socket.socket:
    """Set this process up as a poller invocation sampled by X-Ray: its handler module loaded (its
    Tracer patches what the poller's does), segments sent to a UDP port that only drops them."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    os.environ.pop("POWERTOOLS_TRACE_DISABLED", None)
    os.environ.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": "grokvideo-poller",
            "LAMBDA_TASK_ROOT": str(CODE / "functions" / "poller"),
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{sink.getsockname()[1]}",
            "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        }
    )
    spec = importlib.util.spec_from_file_location("poller_app", CODE / "functions" / "poller" / "app.py")
    assert spec and spec.loader
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return sink


def worker(args: argparse.Namespace) -> int:
    """``--worker KIND``: one sweep; prints its figures (JSON) with the emulator's and the fake's CPU."""
    if args.traced:
        as_traced_lambda()
    pids = {"emulator": args.emulator_pid, "fake": args.fake_pid}
    before = {k: cpu_seconds(pid) for k, pid in pids.items()}
    result = sweep_once(args.worker, args.api, args.endpoint, jobs=args.jobs, concurrency=args.concurrency)
    result.update({k: cpu_seconds(pid) - before[k] for k, pid in pids.items()})
    print(json.dumps(result))
    return 0


# --- the comparison -------------------------------------------------------------------------------


@dataclass
class Code:
    """A version of the code under test: this tree, or a revision extracted from git."""

    label: str
    root: Path
    memory_mb: int  # the poller's MemorySize in its template
    runs: dict[str, list[dict[str, float]]] = field(default_factory=lambda: {k: [] for k in KINDS})

    def cpu_ms(self, kind: str) -> list[float]:
        return [r["cpu"] * 1000 / r["polled"] for r in self.runs[kind]]

    def other_ms(self, kind: str, what: str) -> list[float]:
        return [r[what] * 1000 / r["polled"] for r in self.runs[kind]]

    def rates(self, kind: str) -> list[float]:
        return [r["polled"] / r["seconds"] for r in self.runs[kind]]

    def typical_ms(self, pending_kind: str) -> list[float]:
        """CPU ms per poll of a typical job, one figure per repeat."""
        n = TYPICAL_PENDING_POLLS
        return [(n * p + f) / (n + 1) for p, f in zip(self.cpu_ms(pending_kind), self.cpu_ms("finishing"), strict=True)]


@contextmanager
def revision(rev: str) -> Iterator[Code]:
    """``rev``'s template.yaml, layers/shared and poller handler, extracted (``git archive``) into a
    temporary folder."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "template.yaml", "layers/shared", "functions/poller"],
        capture_output=True,
        check=True,
    ).stdout
    label = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", rev], capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="poll-sweep-") as folder:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        yield Code(f"{rev} ({label})", Path(folder), template_memory(Path(folder)))


def run_worker(code: Code, kind: str, api: Service, emulator: Service, args: argparse.Namespace, jobs: int) -> None:
    command = [
        sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--api", api.url,
        "--endpoint", emulator.url, "--emulator-pid", str(emulator.proc.pid), "--fake-pid", str(api.proc.pid),
        "--jobs", str(jobs), "--concurrency", str(args.concurrency), *(["--traced"] if args.traced else []),
    ]  # fmt: skip
    env = {**os.environ, "POLL_SWEEP_CODE": str(code.root)}
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{code.label} {kind} sweep failed:\n{out.stderr[-3000:]}")
    code.runs[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))


def lambda_ceiling(cpu_ms_per_poll: float, memory_mb: int) -> float:
    """Polls/s one poller invocation's CPU allows: its vCPU share over the CPU one poll takes.

    >>> round(lambda_ceiling(4.0, 512), 1)
    72.4
    """
    return memory_mb / LAMBDA_MB_PER_VCPU / (cpu_ms_per_poll / 1000)


def memory_for(cpu_ms_per_poll: float, polls_per_second: float) -> int:
    """The smallest MemorySize (MB) whose CPU share sustains ``polls_per_second``.

    >>> memory_for(4.0, 64.0)
    453
    """
    return int(-(-LAMBDA_MB_PER_VCPU * cpu_ms_per_poll / 1000 * polls_per_second // 1))


def template_memory(root: Path) -> int:
    """The poller's MemorySize in ``root``'s template.yaml."""
    from cfnlint.decode import decode

    template, errors = decode(str(root / "template.yaml"))
    assert template is not None, errors
    return int(template["Resources"]["PollerFunction"]["Properties"]["MemorySize"])


def spread(values: list[float], digits: int = 2) -> str:
    return f"{min(values):.{digits}f} / {statistics.median(values):.{digits}f}"


# --- the other measurements ----------------------------------------------------------------------


def sequential_throughput(base_url: str, *, jobs: int) -> float:
    client = CometApiClient(base_url, lambda: API_KEY, maxsize=1)
    started = time.perf_counter()
    for i in range(jobs):
        client.get_video(f"seq-{i:06d}")
    return jobs / (time.perf_counter() - started)


def items_read_per_sweep(base_url: str, *, finished: int, due: int) -> tuple[int, int]:
    from moto import mock_aws

    from tests.moto_threads import serialize_moto_dynamodb

    serialize_moto_dynamodb()
    with mock_aws():
        dynamodb = boto3.resource("dynamodb")
        table = create_jobs_table(dynamodb, "items-jobs")
        now = int(time.time())
        with table.batch_writer() as batch:
            for i in range(finished):
                batch.put_item(
                    Item={
                        "request_id": f"old-{i:07d}",
                        "state": "STORED",
                        "registered_at": now - 7200,
                        "deadline_at": now - 3600,
                        "expires_at": now + 86_400,
                    }
                )
        store = JobStore("items-jobs", first_poll_delay=0)
        for i in range(due):
            store.register(f"due-{i:06d}", now=now)
        boto3.client("events").create_event_bus(Name="items-bus")
        sweeper = Sweeper(
            store,
            CometApiClient(base_url, lambda: API_KEY),
            EventPublisher("items-bus", "grokvideo"),
            concurrency=16,
            sweep_seconds=0,
        )
        report = sweeper.run()
        assert report.polled == due, report
        return report.items_read, due


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.25, help="seconds the fake adds to each API answer")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=0, help="jobs per sweep (default: ~10 s worth at the bound)")
    parser.add_argument("--repeats", type=int, default=3, help="sweeps of each kind (min and median are shown)")
    parser.add_argument("--compare", metavar="REV", help="also measure git revision REV, interleaved with this tree")
    parser.add_argument("--traced", action="store_true", help="sweep as a Lambda invocation sampled by X-Ray")
    parser.add_argument("--sequential-jobs", type=int, default=20)
    parser.add_argument("--finished", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=500)
    # A worker: one sweep of one kind, in a process of its own (the parent starts these).
    parser.add_argument("--worker", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--emulator-pid", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--fake-pid", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.update({k: v for k, v in MOTO_CREDENTIALS.items() if k not in os.environ})
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    if args.worker:
        return worker(args)
    bound = args.concurrency / args.latency
    jobs = args.jobs or int(bound * 10)

    print(f"machine: {describe()}")
    print(
        f"fake CometAPI latency {args.latency * 1000:.0f} ms; concurrency {args.concurrency}; bound {bound:.1f} "
        f"polls/s; {jobs} jobs per sweep, {args.repeats} sweeps of each kind; figures: min / median"
    )
    if args.traced:
        print("every sweep traced as a sampled Lambda invocation (the poller handler's Tracer, X-Ray segments sent)")
    with ExitStack() as stack:
        versions = [stack.enter_context(revision(args.compare))] if args.compare else []
        versions.append(Code("this tree", ROOT, template_memory(ROOT)))
        done = stack.enter_context(fake(args.latency))
        pending = stack.enter_context(fake(args.latency, NEVER))
        emulator = stack.enter_context(moto_server())
        for _ in range(args.repeats):
            for kind in KINDS:
                for code in versions:
                    run_worker(code, kind, done if kind == "finishing" else pending, emulator, args, jobs)
        sequential = sequential_throughput(done.url, jobs=args.sequential_jobs)
    with fake(0.0) as api:
        read, due = items_read_per_sweep(api.url, finished=args.finished, due=args.due)

    print()
    columns = ("polls/s", 15), ("CPU ms/poll", 15), ("emulator ms/poll", 17), ("fake ms/poll", 13)
    print(f"{'code':<22} {'poll':<24} " + " ".join(f"{name:>{width}}" for name, width in columns))
    for code in versions:
        for kind in KINDS:
            print(
                f"{code.label:<22} {KIND_NAMES[kind]:<24} {spread(code.rates(kind), 1):>15} "
                f"{spread(code.cpu_ms(kind)):>15} {spread(code.other_ms(kind, 'emulator')):>17} "
                f"{spread(code.other_ms(kind, 'fake')):>13}"
            )
    print()
    n = TYPICAL_PENDING_POLLS
    print(f"a typical job ({n} pending polls, then the finishing one): CPU ms per poll, min / median")
    for code in versions:
        memory = code.memory_mb
        for kind, what in (("pending", "progress unchanged"), ("progress", "progress moved every poll")):
            typical = code.typical_ms(kind)
            ceiling = lambda_ceiling(statistics.median(typical), memory)
            print(
                f"  {code.label:<20} {what:<25} {spread(typical)} ms; at MemorySize {memory} MB "
                f"({memory / LAMBDA_MB_PER_VCPU:.3f} vCPU): {ceiling:.0f} polls/s of CPU, "
                f"{min(ceiling, bound):.0f} with the bound; {memory_for(statistics.median(typical), bound)} MB "
                f"for the bound"
            )
    print("  (a Lambda vCPU taken as one core of this machine)")
    print()

    current = versions[-1]
    swept = statistics.median(current.rates("finishing"))
    pending_rate = statistics.median(current.rates("pending"))
    # The emulator is one Python process: at ~1 core it, not the sweep, sets the finishing rate.
    emulator_cores = statistics.median(current.other_ms("finishing", "emulator")) * swept / 1000
    print(
        f"the emulator's process used {emulator_cores:.2f} of a core during the finishing sweeps; "
        f"the sweeping process {statistics.median(current.cpu_ms('finishing')) * swept / 1000:.2f}"
    )
    print()
    rows = [
        (
            "sweep throughput",
            f"{swept:.1f} polls/s (median of {args.repeats} finishing sweeps of {jobs} jobs)",
            f">= {0.8 * bound:.1f} (80 % of bound)",
            swept >= 0.8 * bound,
        ),
        ("  share of bound", f"{swept / bound * 100:.1f} %", ">= 80 %", swept >= 0.8 * bound),
        ("  pending polls", f"{pending_rate:.1f} polls/s ({pending_rate / bound * 100:.1f} % of bound)", "info", True),
        ("sequential loop", f"{sequential:.2f} polls/s ({args.sequential_jobs} jobs)", "baseline", True),
        ("  sweep / sequential", f"{swept / sequential:.1f}x", ">= 10x", swept / sequential >= 10),
        (
            "items read per sweep",
            f"{read} for {due} due, {args.finished} finished in table ({read / due:.3f} x due)",
            "<= 1.05 x due",
            read <= 1.05 * due,
        ),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, target, ok in rows:
        print(f"{name:<{width}}  {value:<60}  target {target:<22} {'PASS' if ok else 'FAIL'}")
    return 0 if all(r[3] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
