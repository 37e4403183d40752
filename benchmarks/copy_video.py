"""Copy benchmark: VideoArchiver (stream URL -> S3 multipart) against download-then-upload.

    python benchmarks/copy_video.py [--size-mib 1024] [--repeat 3]

Targets: peak RSS of the copying process <= 200 MB for a 1 GiB video; throughput
>= 70 % of a plain download of the same bytes to a temp file followed by ``s3.upload_file``.

Layout, so each measurement is of one process alone:

- this process runs the fake CometAPI (``local/fake_cometapi/``), serving the video over http
  on 127.0.0.1;
- a child process runs moto's S3 as a real HTTP endpoint (``python -m moto.server`` on 127.0.0.1,
  ``benchmarks/services.py``; it keeps objects in memory, so every copy's object is deleted after
  it is checked);
- each copy runs in a fresh child process (multiprocessing "spawn"): its peak RSS is its own
  ``VmHWM`` from ``/proc/self/status``, read at the end of the copy.

After one unmeasured 16 MiB warm-up copy each (moto's first requests are slow), runs alternate
in order (archive then baseline, then baseline then archive, ...); the table shows the median
time and the highest peak RSS of each method.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "layers" / "shared", ROOT):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from benchmarks.machine import describe  # noqa: E402
from benchmarks.services import moto_server  # noqa: E402

MiB = 1 << 20
BUCKET = "grokvideo-bench"
RSS_TARGET_MB = 200
THROUGHPUT_TARGET = 0.70
CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench", "region_name": "us-east-1"}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _s3(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS)


def _usage(started: float, idle_kib: int, size: int, digest: str) -> dict[str, Any]:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": _status_kib("VmHWM") * 1024 / 1e6,
        "idle_rss_mb": idle_kib * 1024 / 1e6,
        "cpu_seconds": ru.ru_utime + ru.ru_stime,
        "size": size,
        "sha256": digest,
    }


def archive_child(url: str, endpoint: str, key: str, max_bytes: int, out: Any) -> None:
    """The copier's way: stream the URL into S3 through the guard (runs in its own process)."""
    from grokvideo.archive import VideoArchiver
    from grokvideo.urlguard import UrlGuard

    archiver = VideoArchiver(UrlGuard(["127.0.0.1"], allow_private=True), _s3(endpoint), max_video_bytes=max_bytes)
    idle = _status_kib("VmRSS")
    started = time.perf_counter()
    stored = archiver.archive(url, BUCKET, key, metadata={"request-id": "bench"})
    out.put(_usage(started, idle, stored.size_bytes, stored.sha256))


def baseline_child(url: str, endpoint: str, key: str, max_bytes: int, out: Any) -> None:
    """Plain download of the same bytes to a temp file, then ``upload_file`` with boto3 defaults."""
    import urllib3

    s3 = _s3(endpoint)
    http = urllib3.PoolManager()
    idle = _status_kib("VmRSS")
    started = time.perf_counter()
    with tempfile.NamedTemporaryFile(prefix="copy-baseline-", suffix=".mp4") as tmp:
        response = http.request("GET", url, preload_content=False)
        size = 0
        for chunk in response.stream(MiB):
            tmp.write(chunk)
            size += len(chunk)
        response.release_conn()
        tmp.flush()
        s3.upload_file(tmp.name, BUCKET, key)
    out.put(_usage(started, idle, size, ""))


def run_child(ctx: Any, target: Any, *args: Any) -> dict[str, Any]:
    out = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, out))
    proc.start()
    result = out.get(timeout=1800)
    proc.join(60)
    if proc.exitcode != 0:
        raise RuntimeError(f"{target.__name__} exited with {proc.exitcode}")
    return dict(result)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="video size (default 1024 = 1 GiB)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each method (median time reported)")
    args = parser.parse_args(argv)
    size = args.size_mib * MiB

    from local.fake_cometapi import FakeCometAPI

    ctx = mp.get_context("spawn")
    services = ExitStack()
    fake = FakeCometAPI(ready_after=0).start()
    results: dict[str, list[dict[str, Any]]] = {"archive": [], "baseline": []}
    methods = [("archive", archive_child), ("baseline", baseline_child)]
    try:
        endpoint = services.enter_context(moto_server()).url
        s3 = _s3(endpoint)
        s3.create_bucket(Bucket=BUCKET)
        rid = fake.add_job(outcome="done", video_size=size)
        url = fake.video_url(rid)
        print(f"video {args.size_mib} MiB at {url}; S3 at {endpoint}", flush=True)
        print("computing the served video's sha256 ...", flush=True)
        expected = fake.video_sha256(rid)
        warm = fake.add_job(outcome="done", video_size=16 * MiB)
        for _name, child in methods:  # warm the S3 server up (its first requests are slow); not measured
            run_child(ctx, child, fake.video_url(warm), endpoint, "videos/warm-up.mp4", 2 << 30)
            s3.delete_object(Bucket=BUCKET, Key="videos/warm-up.mp4")
        for run in range(args.repeat):
            for name, child in methods if run % 2 == 0 else methods[::-1]:
                key = f"videos/{name}-{run}.mp4"
                result = run_child(ctx, child, url, endpoint, key, max(size, 2 << 30))
                head = s3.head_object(Bucket=BUCKET, Key=key)
                assert head["ContentLength"] == size, head["ContentLength"]
                assert result["size"] == size
                if name == "archive":
                    assert result["sha256"] == expected, "archived digest differs from the served bytes"
                s3.delete_object(Bucket=BUCKET, Key=key)
                results[name].append(result)
                print(
                    f"  run {run + 1} {name:8} {result['seconds']:7.2f} s  "
                    f"{size / MiB / result['seconds']:7.1f} MiB/s  peak RSS {result['peak_rss_mb']:6.1f} MB",
                    flush=True,
                )
    finally:
        fake.stop()
        services.close()
    report(args.size_mib, size, results)
    return 0


def report(size_mib: int, size: int, results: dict[str, list[dict[str, Any]]]) -> None:
    rows = {}
    for name, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        rows[name] = {
            "seconds": seconds,
            "mibs": size / MiB / seconds,
            "peak": max(r["peak_rss_mb"] for r in runs),
            "idle": max(r["idle_rss_mb"] for r in runs),
            "cpu": statistics.median(r["cpu_seconds"] for r in runs),
        }
    ratio = rows["archive"]["mibs"] / rows["baseline"]["mibs"]
    print()
    print(f"machine: {describe()}")
    print(f"size: {size_mib} MiB ({size} bytes), runs per method: {len(results['archive'])}, median time")
    print()
    header = f"{'method':<34} {'seconds':>8} {'MiB/s':>8} {'peak RSS MB':>12} {'RSS before':>11} {'CPU s':>7}"
    print(header)
    print("-" * len(header))
    labels = {
        "archive": "archive (stream -> S3 multipart)",
        "baseline": "baseline (download, upload_file)",
    }
    for name, row in rows.items():
        print(
            f"{labels[name]:<34} {row['seconds']:>8.2f} {row['mibs']:>8.1f} {row['peak']:>12.1f} "
            f"{row['idle']:>11.1f} {row['cpu']:>7.2f}"
        )
    print()
    rss_ok = rows["archive"]["peak"] <= RSS_TARGET_MB
    tput_ok = ratio >= THROUGHPUT_TARGET
    print(f"target peak RSS <= {RSS_TARGET_MB} MB: {rows['archive']['peak']:.1f} MB  {'PASS' if rss_ok else 'FAIL'}")
    print(
        f"target throughput >= {THROUGHPUT_TARGET:.0%} of baseline: {ratio:.0%} "
        f"(archive/baseline = {ratio:.2f})  {'PASS' if tput_ok else 'FAIL'}"
    )


if __name__ == "__main__":
    sys.exit(main())
