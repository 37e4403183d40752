"""Provenance beside every stored video: ``<prefix><request_id>.json``.

What was asked (prompt and parameters, for a submitted job), what came back (model, duration, cost,
times) and what was stored (size, SHA-256). A tracked job holds what is known of it. Never the
task token, the temporary video URL or a presigned input URL.

>>> manifest_key("videos/4b2cd27e.mp4")
'videos/4b2cd27e.json'
"""

from __future__ import annotations

from typing import Any

from grokvideo.archive import StoredVideo
from grokvideo.events import SCHEMA_VERSION, iso_utc
from grokvideo.jobs import Job


def manifest_key(video_key: str) -> str:
    """The manifest's key: the video's, with ``.json`` for ``.mp4``."""
    return video_key.removesuffix(".mp4") + ".json"


def build_manifest(job: Job, stored: StoredVideo, *, stored_at: int) -> dict[str, Any]:
    """The manifest document of ``job``'s video as stored."""
    return {
        "schema_version": SCHEMA_VERSION,
        "request_id": job.request_id,
        "origin": "submitted" if job.request else "tracked",
        "idempotency_key": job.idempotency_key,
        "client_ref": job.client_ref,
        "metadata": job.metadata,
        "request": job.request or None,
        "model": job.model,
        "duration": job.duration,
        "cost_usd": job.cost_usd,
        "submitted_at": iso_utc(job.submitted_at),
        "completed_at": iso_utc(job.completed_at),
        "stored_at": iso_utc(stored_at),
        "video": {
            "bucket": stored.bucket,
            "key": stored.key,
            "s3_uri": stored.s3_uri,
            "size_bytes": stored.size_bytes,
            "sha256": stored.sha256,
            "content_type": stored.content_type,
        },
    }
