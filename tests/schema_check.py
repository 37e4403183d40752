"""Validate event details against the JSON Schemas in ``schemas/`` (draft 2020-12).

>>> from tests.schema_check import assert_valid_event
>>> assert_valid_event("Video Generation Failed", detail)  # doctest: +SKIP

``date-time`` (RFC 3339) and ``uri`` (RFC 3986) are checked here even without jsonschema's
optional format extras, so a detail that breaks a ``format`` fails the tests as any other rule.
"""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from grokvideo import events as ev
from grokvideo.models import ArchiveFailureReason, FailureReason

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
INPUT_SCHEMAS = SCHEMAS / "input"

SAMPLE_REQUEST_ID = "4b2cd27e-0b0d-3dec-c31c-7572daf74bb3"
SAMPLE_VIDEO_URL = "https://vidgen.x.ai/xai-vidgen-bucket/xai-video-72924fdc-e6d7-4885-b318-8a367aaa9a02.mp4"
_RFC3339 = re.compile(r"\A\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")


def _rfc3986_uri() -> re.Pattern[str]:
    """``URI = scheme ":" hier-part [ "?" query ] [ "#" fragment ]``, spelled from RFC 3986's ABNF.

    An IP-literal is only shaped here (``[...]``); ``_uri`` checks its address.
    """
    unreserved, sub_delims, pct = r"[A-Za-z0-9._~-]", r"[!$&'()*+,;=]", r"%[0-9A-Fa-f]{2}"
    pchar = rf"(?:{unreserved}|{pct}|{sub_delims}|[:@])"
    userinfo = rf"(?:{unreserved}|{pct}|{sub_delims}|:)*"
    reg_name = rf"(?:{unreserved}|{pct}|{sub_delims})*"
    ip_literal = r"\[(?P<ip>[^\[\]/?#@]*)\]"
    authority = rf"(?:{userinfo}@)?(?:{ip_literal}|{reg_name})(?::[0-9]*)?"
    segment, segment_nz = rf"{pchar}*", rf"{pchar}+"
    hier_part = (
        rf"(?://{authority}(?:/{segment})*"  # "//" authority path-abempty
        rf"|/(?:{segment_nz}(?:/{segment})*)?"  # path-absolute
        rf"|{segment_nz}(?:/{segment})*"  # path-rootless
        r"|)"  # path-empty
    )
    tail = rf"(?:{pchar}|[/?])*"
    return re.compile(rf"[A-Za-z][A-Za-z0-9+.-]*:{hier_part}(?:\?{tail})?(?:#{tail})?")


_URI = _rfc3986_uri()
_IPV_FUTURE = re.compile(r"v[0-9A-Fa-f]+\.[A-Za-z0-9._~!$&'()*+,;=:-]+")


def _format_checker() -> FormatChecker:
    checker = FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True  # formats apply to strings only
        if not _RFC3339.match(value):
            return False
        datetime.fromisoformat(value.upper())  # raises ValueError on 2026-02-30 and the like
        return True

    @checker.checks("uri")
    def _uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        match = _URI.fullmatch(value)
        if match is None:
            return False
        ip = match.group("ip")
        if ip is None or _IPV_FUTURE.fullmatch(ip):
            return True
        try:
            ipaddress.IPv6Address(ip)  # RFC 3986 allows no zone id ("%25eth0")
        except ValueError:
            return False
        return "%" not in ip

    return checker


def schema_path(detail_type: str, *, input_event: bool = False) -> Path:
    """``Video Stored`` -> ``schemas/Video-Stored.json`` (inputs under ``schemas/input/``)."""
    return (INPUT_SCHEMAS if input_event else SCHEMAS) / f"{detail_type.replace(' ', '-')}.json"


@cache
def validator(detail_type: str, *, input_event: bool = False) -> Draft202012Validator:
    path = schema_path(detail_type, input_event=input_event)
    if not path.is_file():
        raise AssertionError(f"no schema for detail-type {detail_type!r} (expected {path})")
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=_format_checker())


def errors_for(detail_type: str, detail: Any, *, input_event: bool = False) -> list[str]:
    """Every schema violation of ``detail``, as ``"<path>: <message>"`` strings (empty when valid)."""
    v = validator(detail_type, input_event=input_event)
    return [
        f"{'/'.join(str(p) for p in err.absolute_path) or '<detail>'}: {err.message}"
        for err in sorted(v.iter_errors(detail), key=lambda e: list(map(str, e.absolute_path)))
    ]


def assert_valid_event(detail_type: str, detail: dict[str, Any], *, input_event: bool = False) -> None:
    """Fail with every violation listed when ``detail`` does not match its detail-type's schema."""
    problems = errors_for(str(detail_type), detail, input_event=input_event)
    if problems:
        raise AssertionError(f"{detail_type} detail does not match its schema:\n  " + "\n  ".join(problems))


def assert_valid_entry(entry: dict[str, Any] | str, *, input_event: bool = False) -> dict[str, Any]:
    """Validate a PutEvents entry (``DetailType``/``Detail`` string) or a delivered EventBridge event
    (``detail-type``/``detail``; also as a JSON string, e.g. an SQS body). Returns the parsed detail."""
    if isinstance(entry, str):
        entry = json.loads(entry)
        assert isinstance(entry, dict), "an event must be a JSON object"
    detail_type = entry.get("DetailType", entry.get("detail-type"))
    detail = entry.get("Detail", entry.get("detail"))
    assert isinstance(detail_type, str), f"no detail-type in {sorted(entry)}"
    if isinstance(detail, str):
        detail = json.loads(detail)
    assert isinstance(detail, dict), f"{detail_type}: detail must be a JSON object, got {type(detail).__name__}"
    assert_valid_event(detail_type, detail, input_event=input_event)
    return detail


def sample_output_events() -> dict[ev.DetailType, ev.OutputEvent]:
    """One fully populated, valid event per output detail-type (for tests)."""
    common: dict[str, Any] = {
        "request_id": SAMPLE_REQUEST_ID,
        "client_ref": "order-7",
        "metadata": {"k": [1, "two"]},
    }
    return {
        ev.DetailType.SUBMITTED: ev.generation_submitted(
            **common,
            idempotency_key="order-7/v1",
            model="grok-imagine-video",
            duration=6,
            resolution="720p",
            aspect_ratio="16:9",
            submitted_at=1773297002,
        ),
        ev.DetailType.REJECTED: ev.request_rejected(
            reason="INVALID_REQUEST", errors=["request_id: is required"], client_ref="order-7"
        ),
        ev.DetailType.SUCCEEDED: ev.generation_succeeded(
            **common,
            video_url=SAMPLE_VIDEO_URL,
            duration=1,
            model="grok-imagine-video",
            cost_usd=0.05,
            submitted_at=1773297002,
            completed_at=1773297014,
        ),
        ev.DetailType.FAILED: ev.generation_failed(**common, reason=FailureReason.MODERATED, message="blocked"),
        ev.DetailType.STORED: ev.video_stored(
            **common,
            bucket="grokvideo-videos",
            key=f"videos/{SAMPLE_REQUEST_ID}.mp4",
            s3_uri=f"s3://grokvideo-videos/videos/{SAMPLE_REQUEST_ID}.mp4",
            size_bytes=48925,
            sha256="a" * 64,
            content_type="video/mp4",
            duration=1,
            model="grok-imagine-video",
            manifest_key=f"videos/{SAMPLE_REQUEST_ID}.json",
        ),
        ev.DetailType.ARCHIVE_FAILED: ev.archive_failed(
            **common, reason=ArchiveFailureReason.URL_EXPIRED, message="video host answered 410"
        ),
    }
