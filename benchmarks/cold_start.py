"""Cold start: each handler's import in a fresh interpreter, as a ratio to a bare ``import boto3``.

Run alone: ``python benchmarks/cold_start.py [--runs 9]``. Target: every handler <= 1.5x boto3.

A time in milliseconds does not travel (the same handlers took 230-243 ms on one machine and
367-392 ms on another); a ratio to ``import boto3`` measured in the same run does. Every probe is a
new process (the OS file cache warm, as on a warm Lambda host), and the probes take turns (boto3,
poller, register, copier, submit, boto3, ...) so the machine's noise falls on all of them alike.

A handler's process gets what Lambda gives a function: the layer on ``sys.path``, LAMBDA_TASK_ROOT
and the function's name (Powertools decides whether to trace by them) and template.yaml's common
variables as a default deploy sets them (POWERTOOLS_*: tracing is on exactly when a default deploy
has it on). The import includes Powertools, boto3 and the package, as Lambda's INIT does.

Bytecode: every probe reads compiled modules from one cache of this run's own (PYTHONPYCACHEPREFIX,
filled by a first, uncounted probe of each), whatever the shell says (PYTHONDONTWRITEBYTECODE=1
alone made the package compile from source at every probe: copier 1.74x, boto3's bytecode being
cached). The layer ships its bytecode too (layers/shared/Makefile), as Lambda cannot write any.

What a handler imports at module level and what it costs: ``python -X importtime -c "..."`` with
the probe below (``PROBE``), sorted by the cumulative column.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT)]

from benchmarks.machine import describe  # noqa: E402
from benchmarks.stack_facts import stack_facts  # noqa: E402

FUNCTIONS = ("poller", "register", "copier", "submit")
BASELINE = "import boto3"
PROBE = """
import importlib.util, sys, time
started = time.perf_counter()
sys.path.insert(0, {layer!r})
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print((time.perf_counter() - started) * 1000, "aws_xray_sdk" in sys.modules)
"""
BASELINE_PROBE = """
import time
started = time.perf_counter()
import boto3
print((time.perf_counter() - started) * 1000, False)
"""
TARGET_RATIO = 1.5


def lambda_environment(function: str, bytecode: Path) -> dict[str, str]:
    """The variables a default deploy's function starts with (those the import may read), and the
    run's bytecode cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_LAMBDA_", "LAMBDA_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(bytecode)
    env.update(stack_facts().environment)
    env.update(
        {
            "LAMBDA_TASK_ROOT": "/var/task",
            "AWS_LAMBDA_FUNCTION_NAME": f"grokvideo-{function}",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    return env


def probe(function: str | None, bytecode: Path) -> tuple[float, bool]:
    """Milliseconds to import ``function``'s handler (or boto3 alone for None) in a new interpreter,
    and whether the X-Ray SDK got imported."""
    if function is None:
        code = BASELINE_PROBE
    else:
        code = PROBE.format(layer=str(ROOT / "layers" / "shared"), path=str(ROOT / "functions" / function / "app.py"))
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        cwd="/",
        env=lambda_environment(function or "baseline", bytecode),
    ).stdout
    millis, xray = out.strip().splitlines()[-1].split()
    return float(millis), xray == "True"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="probes of each, taking turns")
    args = parser.parse_args()
    print(f"machine: {describe()}")
    facts = stack_facts()
    disabled = facts.environment.get("POWERTOOLS_TRACE_DISABLED", "unset")
    print(
        f"{args.runs} fresh interpreters each, in turns; tracing as a default deploy: "
        f"{facts.tracing} (POWERTOOLS_TRACE_DISABLED={disabled})"
    )
    names: list[str | None] = [None, *FUNCTIONS]
    times: dict[str | None, list[float]] = {name: [] for name in names}
    xray: dict[str | None, bool] = {}
    with tempfile.TemporaryDirectory(prefix="cold-start-bytecode-") as bytecode:
        for name in names:
            probe(name, Path(bytecode))  # compiles what it imports into the cache: not counted
        for _ in range(args.runs):
            for name in names:
                millis, imported = probe(name, Path(bytecode))
                times[name].append(millis)
                xray[name] = imported
    base_min, base_median = min(times[None]), statistics.median(times[None])
    print(f"{BASELINE:<16} min {base_min:6.1f} ms  median {base_median:6.1f} ms  (the baseline: 1.00x)")
    ok = True
    for function in FUNCTIONS:
        values = times[function]
        ratio = statistics.median(values) / base_median
        ok &= ratio <= TARGET_RATIO
        print(
            f"{function + ' handler':<16} min {min(values):6.1f} ms  median {statistics.median(values):6.1f} ms  "
            f"{ratio:.2f}x (min/min {min(values) / base_min:.2f}x)  "
            f"X-Ray SDK {'imported' if xray[function] else 'not imported'}"
            f"  target <= {TARGET_RATIO}x {'PASS' if ratio <= TARGET_RATIO else 'FAIL'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
