"""The bill: what a million jobs cost, by service, and what the stack costs a month doing nothing.

Run alone: ``python benchmarks/cost.py [--jobs 150 --repeat 3 --jobs-per-month 1000000]`` (from the
repo root, in the test virtualenv); ``--png docs/cost.png`` is drawn from the median run.

Each run (``benchmarks.cost_sim``): the four real handlers in-process against moto and the fake
CometAPI (its own process), in virtual time. First ``--idle-minutes`` Scheduler ticks with nothing
pending (the idle baseline, in the same run), then ``--jobs`` generation requests put on the bus
one at a time by the app, arriving as a Poisson process at ``--jobs-per-month``; each provider
job is ready 60-180 s after its create, 5 % fail at the provider, the others' videos are 5 MiB.
Every AWS call is counted with its billed units (``benchmarks.aws_meter``), every invocation
with its billed milliseconds, and priced with ``benchmarks/prices.json`` (``benchmarks.bill``).

Targets (the issue): <= $10 per 1M jobs (S3 storage and the provider's own price excluded) and
<= $1 a month idle.

The counts per job are the same run to run (one seed); the billed durations are measured, so
the totals are printed as min and median over ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT)]

from benchmarks import figures  # noqa: E402
from benchmarks.bill import Bill, Line, PriceList, price, sampled_fraction  # noqa: E402
from benchmarks.cost_sim import API_KEY, SECONDS_PER_MONTH, MiB, RunRecord, Workload, simulate  # noqa: E402
from benchmarks.machine import describe  # noqa: E402
from benchmarks.services import fake_cometapi  # noqa: E402

TARGET_PER_MILLION = 10.0
TARGET_IDLE = 1.0
DEFAULT_PNG = ROOT / "docs" / "cost.png"


def run_once(workload: Workload) -> RunRecord:
    with fake_cometapi("--ready-after", "1e9", "--api-key", API_KEY) as fake:
        return simulate(workload, fake.url)


def check(run: RunRecord) -> list[str]:
    """What must hold of every run, or its counts mean nothing."""
    problems = []
    crashed = [i for i in run.invocations if i.error]
    if crashed:
        problems.append(f"{len(crashed)} invocations crashed, e.g. {crashed[0].function}: {crashed[0].error}")
    stored = {e["detail"]["request_id"] for e in run.events_of("Video Stored")}
    if len(run.events_of("Video Stored")) != len(stored):
        problems.append("a job was announced Video Stored twice")
    if len(run.settled) != len(run.arrivals):
        problems.append(f"{len(run.arrivals) - len(run.settled)} jobs never settled")
    return problems


# --- printing ----------------------------------------------------------------------------------


def money(usd: float) -> str:
    return f"{usd:,.2f}" if abs(usd) >= 0.01 or usd == 0 else f"{usd:.4f}"


def count(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 0.1:
        return f"{value:.2f}"
    return f"{value:.2g}"


def print_lines(title: str, lines: list[Line], quantity: str, usd: str) -> None:
    print()
    print(title)
    width = max(len(line.what) for line in lines)
    print(f"  {'service':<16} {'what':<{width}}  {quantity:>12} {'unit':<8} {usd:>12}")
    service = ""
    for line in lines:
        shown = line.service if line.service != service else ""
        service = line.service
        print(f"  {shown:<16} {line.what:<{width}}  {count(line.quantity):>12} {line.unit:<8} {money(line.usd):>12}")


def print_bill(bill: Bill, runs: list[RunRecord], bills: list[Bill], prices: PriceList) -> bool:
    print_lines(
        f"per job, at {bill.jobs_per_month:,.0f} jobs a month (what the load adds to the idle month):",
        bill.per_job,
        "count/job",
        "$/1M jobs",
    )
    print()
    print("  by service ($ per 1M jobs):")
    for service, usd in sorted(Bill.by_service(bill.per_job).items(), key=lambda kv: -kv[1]):
        print(f"    {service:<16} {money(usd):>10}")
    facts = bill.facts
    print(
        f"  provider (not priced): {facts['polls_per_job']:.2f} polls and {facts['creates_per_job']:.2f} creates a job;"
        " "
        f"a poller tick under load bills {facts['poller_busy_tick_seconds']:.1f} s, an idle one "
        f"{facts['idle_tick_ms']:.0f} ms"
    )
    print_lines("idle month (the schedule firing every minute, nothing pending):", bill.idle, "per month", "$/month")
    totals = [b.usd_per_million_jobs for b in bills]
    idles = [b.idle_usd_per_month for b in bills]
    per_million, idle = statistics.median(totals), statistics.median(idles)
    print()
    ok_jobs, ok_idle = per_million <= TARGET_PER_MILLION, idle <= TARGET_IDLE
    print(
        f"$ per 1M jobs: min {money(min(totals))}, median {money(per_million)} over {len(bills)} runs"
        f"   target <= {TARGET_PER_MILLION:.0f}   {'PASS' if ok_jobs else 'FAIL'}"
    )
    print(
        f"idle $ per month: min {money(min(idles))}, median {money(idle)} over {len(bills)} runs"
        f"   target <= {TARGET_IDLE:.0f}   {'PASS' if ok_idle else 'FAIL'}"
    )
    month = per_million * bill.jobs_per_month / 1e6 + idle
    print(f"a month at {bill.jobs_per_month:,.0f} jobs: ${money(month)} (idle + jobs)")
    print(
        f"prices: {prices.region}, list prices as of {prices.prices_as_of} (written {prices.written}), "
        "benchmarks/prices.json; no free tier; storage, data transfer and the provider excluded"
    )
    return ok_jobs and ok_idle


# --- cost against load (the figure) ---------------------------------------------------------


def monthly_at(bill: Bill, run: RunRecord, jobs_per_month: float, prices: PriceList) -> float:
    """The month's bill at another load, from this run's measurements: per-job counts scale with
    the jobs; the poller's busy ticks with the chance a minute has a job pending (M/G/inf: jobs
    arrive as a Poisson process and each keeps the poller busy for its pending time plus a tick);
    X-Ray's sampled share with the rate; the load-only metrics are there as soon as there is load."""
    per_second = jobs_per_month / SECONDS_PER_MONTH
    pending = statistics.mean(run.pending_seconds) if run.pending_seconds else 0.0
    busy_share = 1 - math.exp(-per_second * (pending + 60 * run.facts.schedule_minutes))
    base_share = 1 - math.exp(-run.workload.arrivals_per_second * (pending + 60 * run.facts.schedule_minutes))
    total = bill.idle_usd_per_month
    for line in bill.per_job:
        usd_per_job = line.usd / 1e6
        if line.what.startswith("GB-s poller"):
            total += usd_per_job * bill.jobs_per_month * busy_share / base_share
        elif line.what.startswith("custom metrics sent only under load"):
            total += usd_per_job * bill.jobs_per_month
        elif line.service == "X-Ray":
            scale = sampled_fraction(per_second) / sampled_fraction(run.workload.arrivals_per_second)
            total += usd_per_job * jobs_per_month * scale
        else:
            total += usd_per_job * jobs_per_month
    return total


def draw(bill: Bill, run: RunRecord, prices: PriceList, path: Path) -> str:
    plt = figures.pyplot()
    if plt is None:
        return figures.not_drawn(path)
    fig, (bars, curve) = plt.subplots(1, 2, figsize=(12, 5))
    services = sorted(Bill.by_service(bill.per_job).items(), key=lambda kv: kv[1])
    bars.barh([s for s, _ in services], [u for _, u in services], color="tab:blue")
    for y, (_, usd) in enumerate(services):
        bars.text(usd, y, rf" \${usd:,.2f}", va="center", fontsize=8)
    bars.axvline(
        TARGET_PER_MILLION, color="red", linestyle="--", label=rf"target: the whole bill <= \${TARGET_PER_MILLION:.0f}"
    )
    bars.set_xlabel(r"\$ per 1M jobs")
    bars.set_title(
        rf"\$ per 1M jobs by service at {bill.jobs_per_month:,.0f} jobs a month: "
        rf"\${bill.usd_per_million_jobs:,.2f} in all",
        fontsize=9,
    )
    bars.legend(loc="lower right", fontsize=8)
    loads = [10 ** (k / 4) for k in range(12, 29)]  # 1k .. 10M jobs a month
    curve.loglog(loads, [monthly_at(bill, run, n, prices) for n in loads], label="this code (model from the run)")
    targets = [TARGET_IDLE + TARGET_PER_MILLION * n / 1e6 for n in loads]
    curve.loglog(loads, targets, "--", color="red", label=r"target: \$1 + \$10 per 1M jobs")
    curve.axhline(
        bill.idle_usd_per_month, color="grey", linewidth=0.8, label=rf"idle: \${bill.idle_usd_per_month:.2f} a month"
    )
    simulated = bill.idle_usd_per_month + bill.usd_per_million_jobs * bill.jobs_per_month / 1e6
    curve.plot([bill.jobs_per_month], [simulated], "o", color="black", label="the simulated run")
    curve.set_xlabel("jobs a month")
    curve.set_ylabel(r"\$ a month")
    curve.set_title("the month's bill against the load", fontsize=9)
    curve.grid(alpha=0.3, which="both")
    curve.legend(fontsize=8)
    return figures.save(fig, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=150, help="generation requests in each run")
    parser.add_argument("--jobs-per-month", type=float, default=1_000_000, help="the load they arrive at")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--video-mib", type=float, default=5.0)
    parser.add_argument("--failed-share", type=float, default=0.05, help="provider jobs that fail (no video)")
    parser.add_argument("--create-latency", type=float, default=1.0, help="seconds a create call takes (modelled)")
    parser.add_argument("--download-mib-per-s", type=float, default=25.0, help="video download speed (modelled)")
    parser.add_argument("--idle-minutes", type=int, default=5, help="idle ticks before the load (the baseline)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--png", type=Path, default=DEFAULT_PNG, help="figure of the median run (needs matplotlib)")
    args = parser.parse_args()
    workload = Workload(
        jobs=args.jobs,
        jobs_per_month=args.jobs_per_month,
        video_bytes=int(args.video_mib * MiB),
        failed_share=args.failed_share,
        create_latency=args.create_latency,
        download_mib_per_s=args.download_mib_per_s,
        idle_minutes=args.idle_minutes,
        seed=args.seed,
    )
    prices = PriceList.load()
    print(f"machine: {describe()}")
    print(
        f"workload: {workload.jobs} generation requests put on the bus at {workload.jobs_per_month:,.0f} jobs a month "
        f"({workload.arrivals_per_second * 60:.1f}/min, Poisson), provider jobs ready "
        f"{workload.ready_after[0]:.0f}-{workload.ready_after[1]:.0f} s after the create, {workload.failed_share:.0%} "
        f"failing, {workload.video_bytes / MiB:g} MiB videos; create {workload.create_latency:g} s, download "
        f"{workload.download_mib_per_s:g} MiB/s (modelled); {workload.idle_minutes} idle ticks first"
    )
    runs: list[RunRecord] = []
    bills: list[Bill] = []
    for number in range(1, args.repeat + 1):
        run = run_once(workload)
        problems = check(run)
        bill = price(run, prices)
        runs.append(run)
        bills.append(bill)
        print(
            f"run {number}/{args.repeat}: {len(run.arrivals)} jobs, {len(run.events_of('Video Stored'))} stored, "
            f"{run.virtual_seconds / 60:.1f} virtual minutes in {run.wall_seconds:.0f} s; "
            f"${bill.usd_per_million_jobs:,.2f} per 1M jobs, idle ${bill.idle_usd_per_month:.2f}/month",
            flush=True,
        )
        for problem in problems:
            print(f"  PROBLEM: {problem}")
        if problems:
            return 2
    median = sorted(range(len(bills)), key=lambda k: bills[k].usd_per_million_jobs)[len(bills) // 2]
    ok = print_bill(bills[median], runs, bills, prices)
    print(draw(bills[median], runs[median], prices, args.png))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
