"""Output event builders against the JSON Schemas, entry sizes, serialisation."""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from grokvideo import events as ev
from grokvideo.events import DetailType, EventPublisher, OutputEvent
from grokvideo.models import MAX_COST_USD, MAX_DURATION_SECONDS, ArchiveFailureReason, FailureReason
from grokvideo.status import VIDEO_URL_MAX_LENGTH
from tests.schema_check import (
    SCHEMAS,
    assert_valid_entry,
    assert_valid_event,
    errors_for,
    schema_path,
)
from tests.schema_check import sample_output_events as samples

ROOT = Path(__file__).resolve().parents[2]
RID = "4b2cd27e-0b0d-3dec-c31c-7572daf74bb3"
URL = "https://vidgen.x.ai/xai-vidgen-bucket/xai-video-72924fdc-e6d7-4885-b318-8a367aaa9a02.mp4"
SHA = "a" * 64
OUTPUTS = [
    DetailType.SUBMITTED,
    DetailType.REJECTED,
    DetailType.SUCCEEDED,
    DetailType.FAILED,
    DetailType.STORED,
    DetailType.ARCHIVE_FAILED,
]
INPUTS = [DetailType.GENERATION_REQUESTED, DetailType.EDIT_REQUESTED, DetailType.TRACK_REQUESTED]


# --- the contract -----------------------------------------------------------------------------


def test_detail_types_match_design() -> None:
    assert {d.value for d in DetailType} == {
        "Video Generation Requested",
        "Video Edit Requested",
        "Video Job Track Requested",
        "Video Generation Submitted",
        "Video Request Rejected",
        "Video Generation Succeeded",
        "Video Generation Failed",
        "Video Stored",
        "Video Archive Failed",
    }
    assert ev.SCHEMA_VERSION == "1"


def test_every_schema_file_is_a_valid_2020_12_schema_and_nothing_else_is_there() -> None:
    outputs = sorted(p.name for p in SCHEMAS.glob("*.json"))
    inputs = sorted(p.name for p in (SCHEMAS / "input").glob("*.json"))
    assert outputs == sorted(schema_path(d).name for d in OUTPUTS)
    assert inputs == sorted(schema_path(d).name for d in INPUTS)
    for path in [*SCHEMAS.glob("*.json"), *(SCHEMAS / "input").glob("*.json")]:
        schema = json.loads(path.read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("detail_type", OUTPUTS)
def test_output_schemas_are_closed_and_require_every_field(detail_type: DetailType) -> None:
    schema = json.loads(schema_path(detail_type).read_text())
    assert schema["additionalProperties"] is False
    optional = {"request_id"} if detail_type is DetailType.REJECTED else set()
    assert set(schema["required"]) == set(schema["properties"]) - optional
    assert {"client_ref", "metadata", "schema_version", "request_id"} <= set(schema["properties"])


@pytest.mark.parametrize("detail_type", OUTPUTS)
def test_every_builder_output_matches_its_schema(detail_type: DetailType) -> None:
    event = samples()[detail_type]
    assert event.detail_type is detail_type
    assert_valid_event(detail_type, event.detail)
    # and survives the round trip through a PutEvents entry
    assert_valid_entry(EventPublisher("bus").entry(event))


@pytest.mark.parametrize("detail_type", OUTPUTS)
def test_schema_rejects_a_missing_field(detail_type: DetailType) -> None:
    detail = dict(samples()[detail_type].detail)
    for name in ["metadata", "schema_version", *[k for k in detail if k not in ("request_id",)]]:
        broken = {k: v for k, v in detail.items() if k != name}
        assert errors_for(detail_type, broken), f"{detail_type}: missing {name} was accepted"


@pytest.mark.parametrize("detail_type", OUTPUTS)
def test_schema_rejects_an_extra_field(detail_type: DetailType) -> None:
    detail = {**samples()[detail_type].detail, "api_key": "sk-leak"}
    with pytest.raises(AssertionError, match="Additional properties"):
        assert_valid_event(detail_type, detail)


def test_request_id_is_required_except_in_a_rejection() -> None:
    failed = dict(samples()[DetailType.FAILED].detail)
    del failed["request_id"]
    assert errors_for(DetailType.FAILED, failed)
    assert "request_id" not in samples()[DetailType.REJECTED].detail
    assert_valid_event(DetailType.REJECTED, samples()[DetailType.REJECTED].detail)


@pytest.mark.parametrize(
    ("detail_type", "field", "bad"),
    [
        (DetailType.FAILED, "reason", "SOMETHING_ELSE"),
        (DetailType.ARCHIVE_FAILED, "reason", "MODERATED"),
        (DetailType.STORED, "sha256", "A" * 64),
        (DetailType.STORED, "sha256", "ab"),
        (DetailType.STORED, "s3_uri", "https://bucket/key"),
        (DetailType.STORED, "size_bytes", 1.5),
        (DetailType.SUCCEEDED, "request_id", "../etc/passwd"),
        (DetailType.SUCCEEDED, "completed_at", "yesterday"),
        (DetailType.SUCCEEDED, "completed_at", "2026-02-30T00:00:00Z"),
        (DetailType.SUCCEEDED, "video_url", "ftp://vidgen.x.ai/a.mp4"),
        (DetailType.SUCCEEDED, "video_url", "HTTPS://vidgen.x.ai/a.mp4"),
        (DetailType.SUCCEEDED, "video_url", "https://vidgen.x.ai/" + "a" * 2029),
        (DetailType.SUCCEEDED, "video_url", "https://vidgen.x.ai/a b.mp4"),
        (DetailType.SUCCEEDED, "video_url", "https://vidgen.x.ai/vidéo.mp4"),
        (DetailType.SUCCEEDED, "video_url", "https://vidgen.x.ai/a%zz.mp4"),
        (DetailType.SUCCEEDED, "duration", 0),
        (DetailType.SUCCEEDED, "duration", 3600.001),
        (DetailType.SUCCEEDED, "cost_usd", -0.01),
        (DetailType.SUCCEEDED, "cost_usd", 1_000_000.01),
        (DetailType.STORED, "duration", 0),
        (DetailType.STORED, "duration", 1e200),
        (DetailType.SUBMITTED, "submitted_at", None),
        (DetailType.SUBMITTED, "schema_version", "2"),
        (DetailType.SUBMITTED, "metadata", None),
        (DetailType.SUBMITTED, "client_ref", "x" * 129),
        (DetailType.SUBMITTED, "client_ref", "line\nbreak"),
    ],
)
def test_schema_rejects_bad_values(detail_type: DetailType, field: str, bad: object) -> None:
    detail = {**samples()[detail_type].detail, field: bad}
    assert errors_for(detail_type, detail), f"{field}={bad!r} was accepted"


def test_reason_enums_follow_the_models() -> None:
    failed = json.loads(schema_path(DetailType.FAILED).read_text())
    archive = json.loads(schema_path(DetailType.ARCHIVE_FAILED).read_text())
    assert failed["properties"]["reason"]["enum"] == [r.value for r in FailureReason]
    assert archive["properties"]["reason"]["enum"] == [r.value for r in ArchiveFailureReason]


def test_unknown_values_of_a_tracked_job_are_null_and_valid() -> None:
    event = ev.generation_succeeded(
        request_id=RID,
        client_ref=None,
        metadata=None,
        video_url=URL,
        duration=None,
        model=None,
        cost_usd=None,
        submitted_at=None,
        completed_at=None,
    )
    assert event.detail["metadata"] == {}
    assert event.detail["submitted_at"] is None
    assert event.detail["client_ref"] is None
    assert_valid_event(event.detail_type, event.detail)


# --- builder details --------------------------------------------------------------------------


def test_timestamps_are_iso_utc() -> None:
    assert ev.iso_utc(1795642103) == "2026-11-25T21:28:23Z"
    assert ev.iso_utc(0) == "1970-01-01T00:00:00Z"
    assert ev.iso_utc(Decimal("1795642103")) == "2026-11-25T21:28:23Z"
    assert ev.iso_utc(None) is None
    detail = samples()[DetailType.SUCCEEDED].detail
    assert detail["submitted_at"] == "2026-03-12T06:30:02Z"
    assert detail["completed_at"] == "2026-03-12T06:30:14Z"


ISO_UTC = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z")


def test_iso_utc_covers_every_four_digit_year() -> None:
    assert ev.iso_utc(0.9) == "1970-01-01T00:00:00Z"
    assert ev.iso_utc(253402300799) == "9999-12-31T23:59:59Z"
    assert ev.iso_utc(Decimal("253402300799.5")) == "9999-12-31T23:59:59Z"


@pytest.mark.parametrize(
    "epoch",
    [
        3e11, 253402300800, 10**30, -1, -1e20, float("nan"), float("inf"), float("-inf"), Decimal("NaN"),
        Decimal("sNaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("1E+1000000"), Decimal("-1E+1000000"),
    ],
)  # fmt: skip
def test_iso_utc_is_none_for_a_time_no_timestamp_can_show(epoch: float | Decimal) -> None:
    assert ev.iso_utc(epoch) is None


@given(st.one_of(st.integers(), st.floats(), st.decimals(), st.integers(-(10**400), 10**400)))
def test_iso_utc_never_raises_and_always_matches_the_schemas(epoch: int | float | Decimal) -> None:
    got = ev.iso_utc(epoch)
    assert got is None or (ISO_UTC.match(got) and datetime.fromisoformat(got))


HOSTILE_NUMBERS = [
    # duration, cost_usd -> what the detail carries
    ((float("nan"), float("inf")), (None, None)),
    ((Decimal("NaN"), Decimal("sNaN")), (None, None)),
    ((Decimal("Infinity"), Decimal("-Infinity")), (None, None)),
    ((0, -0.01), (None, None)),
    ((3600.001, 1_000_000.01), (None, None)),
    ((Decimal("1E+200"), Decimal("1E+200")), (None, None)),
    ((Decimal("3600"), Decimal("1000000")), (3600, 1_000_000)),
    ((Decimal("1E-3"), Decimal("0")), (0.001, 0)),
]


@pytest.mark.parametrize(("given_numbers", "expected"), HOSTILE_NUMBERS)
def test_numbers_a_schema_refuses_are_left_out_of_the_event(
    given_numbers: tuple[object, object], expected: tuple[object, object]
) -> None:
    duration, cost = given_numbers
    succeeded = ev.generation_succeeded(
        request_id=RID, client_ref=None, metadata=None, video_url=URL, duration=duration,  # type: ignore[arg-type]
        model=None, cost_usd=cost, submitted_at=3e11, completed_at=float("nan"),  # type: ignore[arg-type]
    )  # fmt: skip
    assert (succeeded.detail["duration"], succeeded.detail["cost_usd"]) == expected
    assert (succeeded.detail["submitted_at"], succeeded.detail["completed_at"]) == (None, None)
    assert_valid_event(succeeded.detail_type, succeeded.detail)
    stored = ev.video_stored(
        request_id=RID, client_ref=None, metadata=None, bucket="b-1", key="k", size_bytes=1, sha256=SHA,
        content_type="video/mp4", duration=duration, model=None,  # type: ignore[arg-type]
    )  # fmt: skip
    assert stored.detail["duration"] == expected[0]
    assert_valid_event(stored.detail_type, stored.detail)
    for event in (succeeded, stored):
        EventPublisher("bus").entry(event)  # serialisable: no NaN, no infinity


def test_the_schemas_bound_numbers_and_the_url_as_the_parser_does() -> None:
    succeeded = json.loads(schema_path(DetailType.SUCCEEDED).read_text())["properties"]
    stored = json.loads(schema_path(DetailType.STORED).read_text())["properties"]
    for duration in (succeeded["duration"], stored["duration"]):
        assert (duration["exclusiveMinimum"], duration["maximum"]) == (0, MAX_DURATION_SECONDS)
        assert "minimum" not in duration
    assert (succeeded["cost_usd"]["minimum"], succeeded["cost_usd"]["maximum"]) == (0, MAX_COST_USD)
    url = succeeded["video_url"]
    assert (url["maxLength"], url["pattern"], url["format"]) == (VIDEO_URL_MAX_LENGTH, "^https?://", "uri")


def test_stored_s3_uri_defaults_to_bucket_and_key() -> None:
    event = ev.video_stored(
        request_id=RID,
        client_ref=None,
        metadata=None,
        bucket="b-1",
        key="videos/x.mp4",
        size_bytes=Decimal("48925"),
        sha256=SHA,
        content_type="video/mp4",
        duration=Decimal("8.5"),
        model="grok-imagine-video",
    )
    assert event.detail["s3_uri"] == "s3://b-1/videos/x.mp4"
    assert event.detail["size_bytes"] == 48925 and isinstance(event.detail["size_bytes"], int)
    assert event.detail["duration"] == 8.5
    assert_valid_event(event.detail_type, event.detail)


def test_rejection_echoes_only_what_is_safe() -> None:
    event = ev.request_rejected(
        reason="INVALID_REQUEST",
        errors=["request_id: may contain only ..."],
        request_id="../etc/passwd",
        client_ref="bad\x00ref",
        metadata="not an object",
    )
    assert "request_id" not in event.detail
    assert event.detail["client_ref"] is None
    assert event.detail["metadata"] == {}
    assert_valid_event(event.detail_type, event.detail)
    kept = ev.request_rejected(reason="PROVIDER_REJECTED", errors=[], request_id=RID, metadata={"a": 1})
    assert kept.detail["request_id"] == RID and kept.detail["metadata"] == {"a": 1}
    assert_valid_event(kept.detail_type, kept.detail)


def test_long_messages_are_cut() -> None:
    event = ev.generation_failed(
        request_id=RID,
        client_ref=None,
        metadata=None,
        reason=FailureReason.PROVIDER_FAILED,
        message="x" * 5000,
    )
    assert len(event.detail["message"]) == ev.MAX_MESSAGE_LENGTH
    assert_valid_event(event.detail_type, event.detail)


def test_builders_refuse_an_unknown_reason() -> None:
    with pytest.raises(ValueError):
        ev.generation_failed(request_id=RID, client_ref=None, metadata=None, reason="NOPE", message="")


# --- serialisation and size -------------------------------------------------------------------


def test_decimal_from_dynamodb_serialises_as_int_or_float() -> None:
    text = ev.serialize_detail(
        {"n": Decimal("48925"), "f": Decimal("0.05"), "nested": {"list": [Decimal("1.0"), Decimal("2.5")]}}
    )
    assert text == '{"n":48925,"f":0.05,"nested":{"list":[1,2.5]}}'
    event = OutputEvent(DetailType.FAILED, {"metadata": {"price": Decimal("9.99")}})
    assert json.loads(EventPublisher("bus").entry(event)["Detail"]) == {"metadata": {"price": 9.99}}


def test_serialisation_is_compact_and_keeps_unicode() -> None:
    assert ev.serialize_detail({"a": "é", "b": [1, 2]}) == '{"a":"é","b":[1,2]}'


def test_unserialisable_detail_is_a_publish_error() -> None:
    from grokvideo.errors import EventPublishError

    with pytest.raises(EventPublishError, match="Video Generation Failed"):
        EventPublisher("bus").entry(OutputEvent(DetailType.FAILED, {"x": object()}))
    with pytest.raises(EventPublishError):
        EventPublisher("bus").entry(OutputEvent(DetailType.FAILED, {"x": float("nan")}))
    with pytest.raises(EventPublishError):
        EventPublisher("bus").entry(OutputEvent(DetailType.FAILED, {"x": "\ud800"}))


def test_entry_size_counts_like_eventbridge() -> None:
    entry = {"Source": "grokvideo", "DetailType": "Video Stored", "Detail": '{"a":"é"}', "EventBusName": "b"}
    # EventBusName does not count; é is two bytes in UTF-8.
    assert ev.entry_size(entry) == len("grokvideo") + len("Video Stored") + len('{"a":"') + 2 + len('"}')
    assert ev.entry_size({**entry, "Time": "2026-01-01T00:00:00Z"}) == ev.entry_size(entry) + 14
    assert ev.entry_size({**entry, "Resources": ["arn:x", "ab"]}) == ev.entry_size(entry) + 7


def test_publisher_entry_shape() -> None:
    event = samples()[DetailType.FAILED]
    entry = EventPublisher("grokvideo-bus").entry(event)
    assert entry == {
        "Source": "grokvideo",
        "DetailType": "Video Generation Failed",
        "Detail": ev.serialize_detail(event.detail),
        "EventBusName": "grokvideo-bus",
    }
    assert EventPublisher("b", "my.source").entry(event)["Source"] == "my.source"


# --- sample events ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "detail_type"),
    [
        ("track-requested.json", DetailType.TRACK_REQUESTED),
        ("generation-requested.json", DetailType.GENERATION_REQUESTED),
        ("edit-requested.json", DetailType.EDIT_REQUESTED),
    ],
)
def test_sample_input_events_match_the_input_schemas(name: str, detail_type: DetailType) -> None:
    event = json.loads((ROOT / "events" / name).read_text())
    assert event["detail-type"] == detail_type
    assert event["source"] != "grokvideo"
    assert {"version", "id", "account", "time", "region", "resources"} <= set(event)
    assert_valid_entry(event, input_event=True)


def test_invalid_sample_fails_the_input_schema() -> None:
    event = json.loads((ROOT / "events" / "track-requested-invalid.json").read_text())
    assert event["detail"]["request_id"] == "../etc/passwd"
    with pytest.raises(AssertionError, match="request_id"):
        assert_valid_entry(event, input_event=True)


def test_sqs_copy_message_carries_a_valid_succeeded_event() -> None:
    message = json.loads((ROOT / "events" / "sqs-copy-message.json").read_text())
    body = json.loads(message["Records"][0]["body"])
    assert body["source"] == "grokvideo"
    detail = assert_valid_entry(message["Records"][0]["body"])
    assert detail["video_url"] == URL
    assert (detail["duration"], detail["model"], detail["cost_usd"]) == (1, "grok-imagine-video", 0.05)
