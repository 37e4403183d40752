"""How the command shows things: tables, times, sizes and progress bars for people, JSON for scripts.

Pure functions of their arguments, so every one is shown (and tested) here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, Any

from grokvideo.jobs import Job, JobSummary


def when(epoch: int | float | None) -> str:
    """An epoch time as UTC ISO 8601, or "-".

    >>> when(1_700_000_000)
    '2023-11-14T22:13:20Z'
    >>> when(None)
    '-'
    """
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def span(seconds: float | None) -> str:
    """A duration for people.

    >>> [span(s) for s in (4.2, 75, 3600 * 5 + 60, 86400 * 3)]
    ['4s', '1m15s', '5h01m', '3d00h']
    """
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def size(n: int | None) -> str:
    """Bytes for people.

    >>> [size(n) for n in (512, 1_591_000, 3 * 1024**3)]
    ['512 B', '1.5 MiB', '3.0 GiB']
    """
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def bar(fraction: float | None, width: int = 24) -> str:
    """A text progress bar; an unknown fraction is drawn empty with a "?".

    >>> bar(0.5, 10)
    '[#####.....]'
    >>> bar(None, 10)
    '[????......]'
    """
    if fraction is None:
        return "[" + "?" * (width * 4 // 10) + "." * (width - width * 4 // 10) + "]"
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Rows under headers in aligned columns (the last one unpadded).

    >>> print(table(["ID", "STATE"], [["a1", "STORED"], ["b", "PENDING"]]))
    ID  STATE
    a1  STORED
    b   PENDING
    """
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def s3_uri(bucket: str | None, key: str | None) -> str | None:
    """``s3://bucket/key``, or None when either is missing.

    >>> s3_uri("videos", "grokvideo/a.mp4")
    's3://videos/grokvideo/a.mp4'
    """
    return f"s3://{bucket}/{key}" if bucket and key else None


def job_record(job: Job) -> dict[str, Any]:
    """What ``status --json`` prints for a job: its state, progress, times, cost and location."""
    record: dict[str, Any] = {
        "request_id": job.request_id,
        "state": job.state.value,
        "client_ref": job.client_ref,
        "progress": job.progress,
        "model": job.model,
        "registered_at": when(job.registered_at),
        "submitted_at": when(job.submitted_at) if job.submitted_at else None,
        "completed_at": when(job.completed_at) if job.completed_at else None,
        "stored_at": when(job.stored_at) if job.stored_at else None,
        "deadline_at": when(job.deadline_at),
        "duration_seconds": job.duration,
        "cost_usd": job.cost_usd,
        "reason": job.reason,
        "message": job.message,
        "s3_uri": s3_uri(job.bucket, job.key),
        "size_bytes": job.size_bytes,
        "sha256": job.sha256,
        "manifest_key": job.manifest_key,
        "provider_request_id": job.job_request_id,
        "metadata": job.metadata or None,
    }
    return {k: v for k, v in record.items() if v is not None}


def status_text(job: Job, *, now: float) -> str:
    """``status`` for people: one ``name  value`` line per known fact."""
    record = job_record(job)
    lines = [
        ("job", job.request_id),
        (
            "state",
            job.state.value
            + (
                f"  {bar(job.progress / 100)} {job.progress}%"
                if job.progress is not None and job.state.value == "PENDING"
                else ""
            ),
        ),
    ]
    for name, label in (("client_ref", "ref"), ("model", "model"), ("provider_request_id", "provider job")):
        if name in record:
            lines.append((label, str(record[name])))
    lines.append(("registered", f"{record['registered_at']} ({span(now - job.registered_at)} ago)"))
    if job.completed_at:
        lines.append(
            ("completed", f"{record['completed_at']} ({span(job.completed_at - job.registered_at)} after registering)")
        )
    if job.stored_at:
        lines.append(("stored", f"{record['stored_at']}"))
    if job.duration is not None:
        lines.append(("duration", f"{job.duration:g} s"))
    if job.cost_usd is not None:
        lines.append(("cost", f"${job.cost_usd:.4f}"))
    if "s3_uri" in record:
        lines.append(("video", f"{record['s3_uri']} ({size(job.size_bytes)})"))
    if job.sha256:
        lines.append(("sha256", job.sha256))
    if job.reason:
        lines.append(("reason", job.reason + (f": {job.message}" if job.message else "")))
    width = max(len(label) for label, _ in lines)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in lines)


def summary_record(job: JobSummary) -> dict[str, Any]:
    """One line of ``list --json``."""
    record = {
        "request_id": job.request_id,
        "state": job.state.value,
        "registered_at": when(job.registered_at),
        "client_ref": job.client_ref,
        "reason": job.reason,
        "s3_uri": s3_uri(job.bucket, job.key),
        "provider_request_id": job.job_request_id,
    }
    return {k: v for k, v in record.items() if v is not None}


def list_text(jobs: Sequence[JobSummary]) -> str:
    """``list`` for people: a table, newest first."""
    rows = [
        [
            j.request_id,
            j.state.value,
            when(j.registered_at),
            j.client_ref or "-",
            s3_uri(j.bucket, j.key) or j.reason or j.job_request_id or "-",
        ]
        for j in jobs
    ]
    return table(["REQUEST_ID", "STATE", "REGISTERED", "REF", "VIDEO / REASON"], rows)


DETAIL_TYPE_WIDTH = 26  # "Video Generation Succeeded", the longest output detail-type
REQUEST_ID_WIDTH = 36  # a UUID, as the provider makes them


def event_line(event: Mapping[str, Any]) -> str:
    """``events`` for people: ``time  detail-type  request_id  facts``, the facts being what the
    event says about the job (state, progress, reason, where the video is, its length and cost)
    when it says it.

    >>> print(event_line({"time": "2026-11-25T21:28:23Z", "detail-type": "Video Stored",
    ...     "detail": {"request_id": "4b2cd27e", "s3_uri": "s3://v/a.mp4", "size_bytes": 1591000, "duration": 6}}))
    2026-11-25T21:28:23Z  Video Stored                4b2cd27e                              s3://v/a.mp4 (1.5 MiB) 6 s
    >>> print(event_line({"time": "2026-11-25T21:29:00Z", "detail-type": "Video Generation Failed",
    ...     "detail": {"request_id": "4b2cd27e", "reason": "EXPIRED", "message": "too old"}}))
    2026-11-25T21:29:00Z  Video Generation Failed     4b2cd27e                              EXPIRED: too old
    """
    detail = event.get("detail") or {}
    facts: list[str] = []
    if detail.get("state"):
        facts.append(str(detail["state"]))
    if detail.get("progress") is not None:
        facts.append(f"{detail['progress']}%")
    if detail.get("reason"):
        message = str(detail.get("message") or "; ".join(map(str, detail.get("errors") or [])))
        facts.append(str(detail["reason"]) + (f": {_clip(message, 100)}" if message else ""))
    where = detail.get("s3_uri") or s3_uri(detail.get("bucket"), detail.get("key"))
    if where:
        facts.append(str(where) + (f" ({size(detail['size_bytes'])})" if detail.get("size_bytes") is not None else ""))
    if isinstance(detail.get("duration"), int | float):
        facts.append(f"{detail['duration']:g} s")
    if isinstance(detail.get("cost_usd"), int | float):
        facts.append(f"${detail['cost_usd']:.4f}")
    request = detail.get("request_id") or (f"ref {detail['client_ref']}" if detail.get("client_ref") else "-")
    columns = [
        str(event.get("time", "-")),
        str(event.get("detail-type", "-")).ljust(DETAIL_TYPE_WIDTH),
        str(request).ljust(REQUEST_ID_WIDTH),
        " ".join(facts),
    ]
    return "  ".join(columns).rstrip()


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def print_json(value: Mapping[str, Any] | Sequence[Any], stream: IO[str] | None = None) -> None:
    """One JSON document on stdout (scripts read it with ``jq``)."""
    print(json.dumps(value, indent=2, sort_keys=False, default=str), file=stream or sys.stdout)
