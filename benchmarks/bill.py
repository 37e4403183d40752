"""The bill of a simulated run: counts per job and $ per 1M jobs by service, and the idle month.

``price(run, prices)`` turns a ``RunRecord`` (``benchmarks.cost_sim``) into a ``Bill``:

- **per job** lines are what the load adds to the bill (the run's counts less the idle baseline
  measured in the same run, per Scheduler tick, over the load's ticks), divided by the jobs. Their
  ``usd`` is $ per 1M jobs at the run's rate (``jobs_per_month``).
- The poller is billed by the minute, not by the job: one invocation a minute that sweeps for up to
  60 s while anything is pending. Its per-job cost is (GB-s of a tick under the steady load - GB-s of
  an idle tick) x ticks in a month / jobs in a month, a tick under load being the mean of the ticks
  that started between a minute after the first arrival and the last arrival (the ramp-up and the
  tail after the last arrival are not a steady load).
- Custom metric series that appear only under load cost $/month whatever the number of jobs; they
  are shown per 1M jobs at the run's rate.
- **idle** lines are a month with nothing pending: the schedule, the poller's empty sweeps (as
  measured), the alarms, the dashboard, the secret, the metrics the empty sweeps emit, Lambda's
  SQS pollers.

Not in the bill: S3, DynamoDB and CloudWatch Logs storage, data transfer, the provider's own
price, free tiers.

>>> round(sampled_fraction(1 / 60), 3), round(sampled_fraction(10.0), 3)
(0.992, 0.145)
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.cost_sim import SECONDS_PER_MONTH, Invocation, RunRecord

PRICES = Path(__file__).resolve().parent / "prices.json"
S3_PUT_CLASS = frozenset(
    {
        "PutObject",
        "CopyObject",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPartCopy",
        "CompleteMultipartUpload",
        "PutObjectTagging",
        "ListObjects",
        "ListObjectsV2",
        "ListMultipartUploads",
        "ListParts",
    }
)
S3_FREE = frozenset({"DeleteObject", "DeleteObjects", "AbortMultipartUpload"})
STEADY_AFTER_SECONDS = 60  # the poller's ticks count as a steady load from a minute after the first arrival
GB = 1e9


@dataclass(frozen=True, slots=True)
class Price:
    usd: float
    per: float
    unit: str
    source: str

    def of(self, quantity: float) -> float:
        return quantity / self.per * self.usd


@dataclass(frozen=True)
class PriceList:
    written: str
    prices_as_of: str
    region: str
    prices: dict[str, Price]
    assumptions: dict[str, float]

    @classmethod
    def load(cls, path: Path = PRICES) -> PriceList:
        raw = json.loads(path.read_text())
        return cls(
            written=raw["written"],
            prices_as_of=raw["prices_as_of"],
            region=raw["region"],
            prices={k: Price(v["usd"], v["per"], v["unit"], v["source"]) for k, v in raw["prices"].items()},
            assumptions={k: float(v["value"]) for k, v in raw["assumptions"].items()},
        )

    def __getitem__(self, name: str) -> Price:
        return self.prices[name]


@dataclass(frozen=True, slots=True)
class Line:
    service: str
    what: str
    quantity: float  # per job (per-job lines) or per month (idle lines)
    unit: str
    usd: float  # per 1M jobs (per-job lines) or per month (idle lines)


@dataclass
class Bill:
    jobs: int
    jobs_per_month: float
    per_job: list[Line]
    idle: list[Line]
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def usd_per_million_jobs(self) -> float:
        return sum(line.usd for line in self.per_job)

    @property
    def idle_usd_per_month(self) -> float:
        return sum(line.usd for line in self.idle)

    @staticmethod
    def by_service(lines: Iterable[Line]) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for line in lines:
            totals[line.service] += line.usd
        return dict(totals)


def sampled_fraction(per_second: float, *, reservoir: float = 1.0, fixed_rate: float = 0.05) -> float:
    """Share of invocations X-Ray's default rule traces when they arrive at ``per_second`` (Poisson):
    the first ``reservoir`` of each second, then ``fixed_rate`` of the rest."""
    if per_second <= 0:
        return 1.0
    # Expected requests taken by the reservoir in one second, E[min(N, reservoir)], for N ~ Poisson.
    k = int(reservoir)
    p = [math.exp(-per_second) * per_second**n / math.factorial(n) for n in range(k)]
    taken = sum(n * p[n] for n in range(k)) + k * (1 - sum(p))
    return (taken + fixed_rate * (per_second - taken)) / per_second


def price(run: RunRecord, prices: PriceList | None = None) -> Bill:
    prices = prices or PriceList.load()
    return _Pricer(run, prices).bill()


class _Pricer:
    def __init__(self, run: RunRecord, prices: PriceList) -> None:
        self.run, self.p = run, prices
        self.jobs = len(run.arrivals)
        self.ticks_idle = max(1, run.scheduler_ticks.get("idle", 0))
        self.ticks_load = run.scheduler_ticks.get("load", 0)
        self.ticks_per_month = prices.assumptions["hours_per_month"] * 60 / run.facts.schedule_minutes
        self.jobs_per_month = run.workload.jobs_per_month
        self.million_jobs = 1e6 / self.jobs  # per-job -> per 1M jobs
        self.calls = {phase: [c for c in run.calls if c.phase == phase] for phase in ("idle", "load")}
        self.tracing = run.facts.tracing == "Active"

    def marginal(self, load: float, idle: float) -> float:
        """Per job: the load's count less the idle baseline over as many ticks."""
        return (load - idle / self.ticks_idle * self.ticks_load) / self.jobs

    def per_job(self, service: str, what: str, quantity: float, unit: str, price_name: str) -> Line:
        return Line(service, what, quantity, unit, self.p[price_name].of(quantity) * 1e6)

    def per_month(self, service: str, what: str, quantity: float, unit: str, price_name: str) -> Line:
        """An idle line: ``quantity`` a month at ``price_name``, named once so the two cannot drift."""
        return Line(service, what, quantity, unit, self.p[price_name].of(quantity))

    def bill(self) -> Bill:
        lines = [
            *self.lambda_lines(),
            *self.dynamodb_lines(),
            *self.eventbridge_lines(),
            *self.sqs_lines(),
            *self.s3_lines(),
            *self.secrets_lines(),
            *self.cloudwatch_lines(),
            *self.xray_lines(),
        ]
        facts = {
            "polls_per_job": self.run.provider_calls["polls"] / self.jobs,
            "creates_per_job": self.run.provider_calls["creates"] / self.jobs,
            "poller_busy_tick_seconds": self.busy_tick_seconds(),
            "idle_tick_ms": self.idle_tick_ms(),
        }
        return Bill(self.jobs, self.jobs_per_month, lines, self.idle_lines(), facts)

    # --- Lambda -------------------------------------------------------------------------------

    def gb_seconds(self, invocations: Iterable[Invocation]) -> float:
        memory = self.run.facts.memory_mb
        return sum(i.billed_ms / 1000 * memory[i.function] / 1024 for i in invocations)

    def idle_ticks(self) -> list[Invocation]:
        ticks = self.run.invocations_of("poller", "idle")
        return ticks[1:] or ticks  # the first one built the clients: a cold start's work

    def idle_tick_ms(self) -> float:
        return statistics.median(i.billed_ms for i in self.idle_ticks())

    def steady_ticks(self) -> list[Invocation]:
        if not self.run.arrivals:
            return []
        first, last = self.run.arrivals[0] + STEADY_AFTER_SECONDS, self.run.arrivals[-1]
        return [i for i in self.run.invocations_of("poller", "load") if first <= i.started <= last]

    def busy_tick_seconds(self) -> float:
        steady = self.steady_ticks() or self.run.invocations_of("poller", "load")
        return statistics.mean(i.billed_ms for i in steady) / 1000 if steady else 0.0

    def lambda_lines(self) -> list[Line]:
        lines = []
        invocations = Counter(i.function for i in self.run.invocations if i.phase == "load")
        requests = {f: n / self.jobs for f, n in invocations.items() if f != "poller"}
        requests["poller"] = self.marginal(invocations["poller"], self.run.scheduler_ticks.get("idle", 0))
        shown = ", ".join(f"{f} {n:.2f}" for f, n in sorted(requests.items()) if abs(n) >= 0.005)
        lines.append(
            self.per_job("Lambda", f"invocations ({shown})", sum(requests.values()), "requests", "lambda_request")
        )
        memory = self.run.facts.memory_mb
        for function in ("submit", "register", "copier"):
            ran = self.run.invocations_of(function, "load")
            if ran:
                gbs = self.gb_seconds(ran) / self.jobs
                what = f"GB-s {function} ({memory[function]} MB, {statistics.mean(i.billed_ms for i in ran):.0f} ms)"
                lines.append(self.per_job("Lambda", what, gbs, "GB-s", "lambda_gb_second_arm64"))
        idle_gbs = self.gb_seconds(self.idle_ticks()) / len(self.idle_ticks())
        steady = self.steady_ticks()
        if len(steady) >= 2:
            busy = self.gb_seconds(steady) / len(steady)
            poller = (busy - idle_gbs) * self.ticks_per_month / self.jobs_per_month
            how = f"{busy / (memory['poller'] / 1024):.1f} s a tick under load vs {self.idle_tick_ms():.0f} ms idle"
        else:  # too short a run for a steady load: the whole run's ticks
            poller = self.marginal(
                self.gb_seconds(self.run.invocations_of("poller", "load")), idle_gbs * self.ticks_idle
            )
            how = "the run's ticks (too short for a steady load)"
        lines.append(
            self.per_job(
                "Lambda", f"GB-s poller ({memory['poller']} MB; {how})", poller, "GB-s", "lambda_gb_second_arm64"
            )
        )
        lifetime = self.p.assumptions["lambda_environment_hours"]
        cold_starts = self.p.assumptions["hours_per_month"] / lifetime
        init_gbs = sum(
            cold_starts * self.p.assumptions["lambda_init_seconds"] * memory[f] / 1024
            for f in requests
            if f != "poller"
        )
        lines.append(
            self.per_job(
                "Lambda",
                f"GB-s of INIT (a cold start every {lifetime:.0f} h per busy function)",
                init_gbs / self.jobs_per_month,
                "GB-s",
                "lambda_gb_second_arm64",
            )
        )
        return lines

    # --- DynamoDB -----------------------------------------------------------------------------

    def dynamodb_lines(self) -> list[Line]:
        def units(phase: str) -> tuple[Counter[str], float, Counter[str]]:
            writes: Counter[str] = Counter()
            reads = 0.0
            operations: Counter[str] = Counter()
            for c in self.calls[phase]:
                if c.service == "dynamodb":
                    writes.update(c.write_units)
                    reads += c.read_units
                    operations[c.operation] += 1
            return writes, reads, operations

        load_w, load_r, load_ops = units("load")
        idle_w, idle_r, idle_ops = units("idle")
        ops = {op: self.marginal(load_ops[op], idle_ops[op]) for op in load_ops}
        calls = ", ".join(f"{op} {n:.1f}" for op, n in sorted(ops.items(), key=lambda kv: -kv[1]) if n >= 0.05)
        lines = []
        for target in sorted(load_w, key=lambda t: (t != "table", t)):
            label = "table" if target == "table" else f"index {target}"
            wru = self.marginal(load_w[target], idle_w[target])
            lines.append(self.per_job("DynamoDB", f"write units, {label}", wru, "WRU", "dynamodb_write_request_unit"))
        lines.append(
            self.per_job("DynamoDB", "read units", self.marginal(load_r, idle_r), "RRU", "dynamodb_read_request_unit")
        )
        lines.append(Line("DynamoDB", f"(calls per job: {calls})", sum(ops.values()), "calls", 0.0))
        return lines

    # --- EventBridge, SQS, S3, Secrets Manager ----------------------------------------------------

    def eventbridge_lines(self) -> list[Line]:
        chunks: Counter[str] = Counter()
        for c in self.calls["load"]:
            if c.service == "events" and c.operation == "PutEvents":
                chunks["app" if c.payer == "app" else "stack"] += c.chunks
        return [
            self.per_job(
                "EventBridge",
                "PutEvents entries: the app's requests",
                chunks["app"] / self.jobs,
                "events",
                "eventbridge_custom_event",
            ),
            self.per_job(
                "EventBridge",
                "PutEvents entries: the stack's output events",
                chunks["stack"] / self.jobs,
                "events",
                "eventbridge_custom_event",
            ),
        ]

    def sqs_lines(self) -> list[Line]:
        requests: Counter[str] = Counter()
        for phase, _queue, operation, billed in self.run.sqs_requests:
            if phase == "load":
                requests[operation] += billed
        for c in self.calls["load"]:
            if c.service == "sqs":
                requests[c.operation] += c.chunks
        shown = ", ".join(f"{op} {n / self.jobs:.2f}" for op, n in sorted(requests.items()))
        total = sum(requests.values()) / self.jobs
        return [self.per_job("SQS", f"requests ({shown})", total, "requests", "sqs_standard_request")]

    def s3_lines(self) -> list[Line]:
        put: Counter[str] = Counter()
        get: Counter[str] = Counter()
        for c in self.calls["load"]:
            if c.service == "s3" and c.operation not in S3_FREE:
                (put if c.operation in S3_PUT_CLASS else get)[c.operation] += 1

        def shown(ops: Counter[str]) -> str:
            return ", ".join(f"{op} {n / self.jobs:.2f}" for op, n in sorted(ops.items()))

        return [
            self.per_job(
                "S3",
                f"PUT-class requests ({shown(put)})",
                sum(put.values()) / self.jobs,
                "requests",
                "s3_put_class_request",
            ),
            self.per_job(
                "S3",
                f"GET-class requests ({shown(get)})",
                sum(get.values()) / self.jobs,
                "requests",
                "s3_get_class_request",
            ),
        ]

    def secrets_lines(self) -> list[Line]:
        def count(phase: str) -> int:
            return sum(1 for c in self.calls[phase] if c.service == "secretsmanager")

        calls = self.marginal(count("load"), count("idle"))
        return [self.per_job("Secrets Manager", "GetSecretValue", calls, "calls", "secretsmanager_api_call")]

    # --- CloudWatch and X-Ray -----------------------------------------------------------------

    def log_bytes(self, invocations: Iterable[Invocation]) -> float:
        overhead = self.p.assumptions["log_event_overhead_bytes"]
        lines = self.p.assumptions["lambda_platform_log_lines"]
        return sum(i.log_bytes + (i.log_lines + lines) * overhead for i in invocations)

    def cloudwatch_lines(self) -> list[Line]:
        load = [i for i in self.run.invocations if i.phase == "load"]
        idle = self.run.invocations_of("poller", "idle")
        per_job = self.marginal(self.log_bytes(load), self.log_bytes(idle))
        lines = [
            self.per_job(
                "CloudWatch",
                f"logs ingested ({per_job / 1000:.2f} KB a job)",
                per_job / GB,
                "GB",
                "cloudwatch_logs_ingested_gb",
            )
        ]
        extra = len(self.run.metric_series.get("load", set()) - self.run.metric_series.get("idle", set()))
        monthly = self.p["cloudwatch_custom_metric_month"].of(extra)
        lines.append(
            Line(
                "CloudWatch",
                f"custom metrics sent only under load ({extra}; $/month whatever the jobs)",
                extra,
                "metrics",
                monthly * 1e6 / self.jobs_per_month,
            )
        )
        return lines

    def xray_lines(self) -> list[Line]:
        if not self.tracing:
            return []
        per_second = self.jobs_per_month / SECONDS_PER_MONTH
        invocations = Counter(i.function for i in self.run.invocations if i.phase == "load" and i.function != "poller")
        traces = 0.0
        for count in invocations.values():
            per_job = count / self.jobs
            traces += per_job * sampled_fraction(
                per_job * per_second,
                reservoir=self.p.assumptions["xray_reservoir_per_second"],
                fixed_rate=self.p.assumptions["xray_fixed_rate"],
            )
        return [self.per_job("X-Ray", "traces recorded (Tracing: Active)", traces, "traces", "xray_trace_recorded")]

    # --- the idle month -----------------------------------------------------------------------

    def idle_lines(self) -> list[Line]:
        ticks = self.ticks_per_month
        memory_gb = self.run.facts.memory_mb["poller"] / 1024
        idle_ticks = self.idle_ticks()
        per_tick_gbs = self.gb_seconds(idle_ticks) / len(idle_ticks)
        calls = self.calls["idle"]
        rru = sum(c.read_units for c in calls) / self.ticks_idle
        wru = sum(sum(c.write_units.values()) for c in calls) / self.ticks_idle
        secret_calls = sum(1 for c in calls if c.service == "secretsmanager") / self.ticks_idle
        log_gb = self.log_bytes(self.run.invocations_of("poller", "idle")) / self.ticks_idle * ticks / GB
        series = len(self.run.metric_series.get("idle", set()))
        receives = self.run.facts.sqs_mappings * self.p.assumptions["idle_receives_per_sqs_mapping_month"]
        cold_starts = self.p.assumptions["hours_per_month"] / self.p.assumptions["lambda_environment_hours"]
        init_gbs = cold_starts * self.p.assumptions["lambda_init_seconds"] * memory_gb
        environment_hours = self.p.assumptions["lambda_environment_hours"]
        month = self.per_month
        lines = [
            month("Scheduler", "rate(1 minute) invocations", ticks, "invocations", "scheduler_invocation"),
            month("Lambda", "poller invocations", ticks, "requests", "lambda_request"),
            month(
                "Lambda",
                f"GB-s poller ({self.idle_tick_ms():.0f} ms an empty sweep)",
                per_tick_gbs * ticks,
                "GB-s",
                "lambda_gb_second_arm64",
            ),
            month(
                "Lambda",
                f"GB-s of the poller's INIT (a cold start every {environment_hours:.0f} h)",
                init_gbs,
                "GB-s",
                "lambda_gb_second_arm64",
            ),
            month(
                "DynamoDB",
                f"read units of empty sweeps ({rru:.1f} a sweep)",
                rru * ticks,
                "RRU",
                "dynamodb_read_request_unit",
            ),
            month("DynamoDB", "write units of empty sweeps", wru * ticks, "WRU", "dynamodb_write_request_unit"),
            month(
                "SQS",
                f"Lambda's pollers on {self.run.facts.sqs_mappings} empty queues (assumed)",
                receives,
                "requests",
                "sqs_standard_request",
            ),
            month("CloudWatch", "logs of empty sweeps", log_gb, "GB", "cloudwatch_logs_ingested_gb"),
            month(
                "CloudWatch",
                "custom metrics the empty sweeps send (EMF)",
                series,
                "metrics",
                "cloudwatch_custom_metric_month",
            ),
            month("CloudWatch", "alarms", self.run.facts.alarms, "alarms", "cloudwatch_alarm_month"),
            month(
                "CloudWatch",
                "dashboard (free if it is one of the account's first 3)",
                self.run.facts.dashboards,
                "dashboards",
                "cloudwatch_dashboard_month",
            ),
            month(
                "Secrets Manager",
                "the key's secret (the stack creates it by default)",
                int(self.run.facts.creates_secret),
                "secrets",
                "secretsmanager_secret_month",
            ),
            month(
                "Secrets Manager",
                "GetSecretValue of empty sweeps",
                secret_calls * ticks,
                "calls",
                "secretsmanager_api_call",
            ),
        ]
        if self.tracing:
            traces = ticks * sampled_fraction(1 / (60 * self.run.facts.schedule_minutes))
            lines.append(month("X-Ray", "traces of empty sweeps", traces, "traces", "xray_trace_recorded"))
        return lines
