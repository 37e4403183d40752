"""Cold start: how long importing each handler module takes in a fresh interpreter.

Run alone: ``python benchmarks/cold_start.py [--runs 7]``. Target: <= 300 ms.
Each run is a new process (nothing cached in memory; the OS file cache is warm, as on a warm
Lambda host). The import includes Powertools, boto3 and the package, as Lambda's init does.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402

PROBE = """
import importlib.util, os, sys, time
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
sys.path.insert(0, {layer!r})
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print((time.perf_counter() - started) * 1000)
"""
TARGET_MS = 300.0


def import_ms(function: str) -> float:
    code = PROBE.format(layer=str(ROOT / "layers" / "shared"), path=str(ROOT / "functions" / function / "app.py"))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {describe()}")
    ok = True
    for function in ("poller", "register", "copier"):
        times = [import_ms(function) for _ in range(args.runs)]
        median = statistics.median(times)
        ok &= median <= TARGET_MS
        print(
            f"{function:<9} import median {median:6.1f} ms  (min {min(times):.1f}, max {max(times):.1f}, "
            f"{args.runs} runs)  target <= {TARGET_MS:.0f} ms {'PASS' if median <= TARGET_MS else 'FAIL'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
