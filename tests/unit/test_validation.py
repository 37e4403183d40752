"""Input validation: request ids, optional echo fields, the three input details."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from grokvideo.errors import ValidationError
from grokvideo.validation import (
    CLIENT_REF_FORBIDDEN,
    CLIENT_REF_MAX_LENGTH,
    DEFAULT_DURATION,
    DEFAULT_MODEL,
    IDEMPOTENCY_KEY_MAX_LENGTH,
    REQUEST_ID_PATTERN,
    S3_KEY_MAX_LENGTH,
    SUBMISSION_PREFIX,
    TASK_TOKEN_MAX_LENGTH,
    EditRequest,
    GenerationRequest,
    S3Location,
    TrackRequest,
    parse_edit_request,
    parse_generation_request,
    parse_track_request,
    validate_client_ref,
    validate_idempotency_key,
    validate_metadata,
    validate_request_id,
    validate_task_token,
)
from tests.schema_check import errors_for, sample_output_events, schema_path

STRICT = re.compile(r"[A-Za-z0-9_-]{1,128}")
SAMPLE_OUTPUTS = {str(d): e.detail for d, e in sample_output_events().items()}


# --- request_id -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["4b2cd27e-0b0d-3dec-c31c-7572daf74bb3", "a", "A_b-9", "x" * 128, "-", "_"],
)
def test_good_request_ids(value: str) -> None:
    assert validate_request_id(value) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must not be empty"),
        (None, "is required"),
        (123, "must be a string, got int"),
        (b"abc", "must be a string, got bytes"),
        ("a" * 129, "at most 128 characters, got 129"),
        ("../x", "may contain only"),
        ("a/b", "may contain only"),
        ("a b", "may contain only"),
        ("%2e%2e", "may contain only"),
        ("id\n", "may contain only"),
        ("\u00e9", "may contain only"),
        ("..", "may contain only"),
        ("abc\x00", "may contain only"),
        ("\uff21", "may contain only"),  # fullwidth A
        ("\u0661", "may contain only"),  # Arabic-Indic digit one
    ],
)
def test_bad_request_ids(value: object, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_request_id(value)
    assert len(info.value.errors) == 1
    assert info.value.errors[0].startswith("request_id: ")
    assert message in info.value.errors[0]


def test_bad_request_id_is_shown_escaped_and_cut() -> None:
    with pytest.raises(ValidationError) as info:
        validate_request_id("../" + "\n" * 20 + "/" * 100)
    text = info.value.errors[0]
    assert "\n" not in text  # escaped by repr
    assert "\\n" in text and text.endswith("...")
    assert len(text) < 64 * 2 + 100


@given(st.text(max_size=200))
def test_any_accepted_string_is_strictly_well_formed(value: str) -> None:
    try:
        result = validate_request_id(value)
    except ValidationError:
        assert not STRICT.fullmatch(value)
    else:
        assert result == value
        assert STRICT.fullmatch(value)


@given(st.from_regex(STRICT, fullmatch=True))
def test_every_well_formed_id_is_accepted(value: str) -> None:
    assert validate_request_id(value) == value
    assert REQUEST_ID_PATTERN.match(value)


@given(
    st.one_of(
        st.none(),
        st.integers(),
        st.floats(allow_nan=True),
        st.binary(),
        st.lists(st.text()),
        st.dictionaries(st.text(), st.text()),
        st.booleans(),
    )
)
def test_non_strings_raise_only_validation_error(value: object) -> None:
    with pytest.raises(ValidationError):
        validate_request_id(value)


# --- client_ref and metadata ------------------------------------------------------------------


def test_client_ref() -> None:
    assert validate_client_ref(None) is None
    assert validate_client_ref("order 7 / ünïcode") == "order 7 / ünïcode"
    assert validate_client_ref("x" * 128) == "x" * 128
    for good in ["a\u00a0b", "\ue000", "\U0010fffd", "😀", "注文-7"]:  # no-break space, private use, emoji
        assert validate_client_ref(good) == good
    for bad, message in [
        (7, "must be a string"),
        ("x" * 129, "at most 128"),
        ("a\nb", "non-printable"),
        ("ab\n", "non-printable"),
        ("a\x1bb", "non-printable"),
        ("a\x85b", "non-printable"),
        ("\u202eevil", "non-printable"),
        ("a\u2028b", "non-printable"),
        ("a\u2029b", "non-printable"),
        ("a\u200bb", "non-printable"),
        ("\ufeffa", "non-printable"),
        ("a\ud800", "non-printable"),
    ]:
        with pytest.raises(ValidationError, match=message):
            validate_client_ref(bad)


CLIENT_REF_SCHEMAS = [
    *[(d, False) for d in ("Video Job Track Requested", "Video Generation Requested", "Video Edit Requested")],
    *[
        (d, True)
        for d in (
            "Video Generation Submitted", "Video Request Rejected", "Video Generation Succeeded",
            "Video Generation Failed", "Video Stored", "Video Archive Failed",
        )
    ],
]  # fmt: skip
# The rule in words: no control character (C0, DEL, C1), no surrogate, no line or paragraph
# separator, and none of the invisible format characters that can disguise text.
INVISIBLE = {0x00AD, 0x061C, 0x180E, *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2070), 0xFEFF}
INVISIBLE |= set(range(0xFFF9, 0xFFFC))


def _client_ref_schema(detail_type: str, output: bool) -> dict[str, Any]:
    schema = json.loads(schema_path(detail_type, input_event=not output).read_text())
    prop: dict[str, Any] = schema["properties"]["client_ref"]
    return prop


def test_client_ref_is_one_rule_in_the_validator_and_every_schema() -> None:
    for detail_type, output in CLIENT_REF_SCHEMAS:
        prop = _client_ref_schema(detail_type, output)
        assert prop["type"] == ["string", "null"], detail_type
        assert prop["maxLength"] == CLIENT_REF_MAX_LENGTH, detail_type
        # "must contain none of", not "^[^...]*$": Python's "$" also matches before a final "\n"
        assert prop["not"] == {"type": "string", "pattern": CLIENT_REF_FORBIDDEN}, detail_type
        assert "pattern" not in prop, detail_type


def test_client_ref_rule_for_every_code_point() -> None:
    refused = {cp for cp in range(0x110000) if re.search(CLIENT_REF_FORBIDDEN, chr(cp))}
    controls = {*range(0x20), *range(0x7F, 0xA0)}
    assert refused == controls | set(range(0xD800, 0xE000)) | {0x2028, 0x2029} | INVISIBLE
    # a relaxation of the former rule (str.isprintable): no reference accepted before is refused now
    assert all(not chr(cp).isprintable() for cp in refused)
    for cp in range(0x110000):
        accepted = _accepts(validate_client_ref, chr(cp))
        assert accepted is (cp not in refused), hex(cp)


ANY_CODE_POINT = st.characters(codec=None, exclude_categories=())  # lone surrogates too
EDGE_CHARS = st.sampled_from(
    ["\n", "\r", "\x00", "\x7f", "\x85", "\u00a0", "\u2028", "\u2029", "\u202e", "\ud800", "é", "😀"]
)
CLIENT_REFS = st.one_of(
    st.text(ANY_CODE_POINT | EDGE_CHARS, max_size=20),
    st.text(st.sampled_from("ab") | EDGE_CHARS, min_size=120, max_size=135),
    st.builds(lambda s, c: s + c, st.text("ab", max_size=10), EDGE_CHARS),  # a trailing newline and the like
)


def _accepts(check: Any, value: object) -> bool:
    try:
        check(value)
    except ValidationError:
        return False
    return True


@example(value="order\u20281042")  # the reviewer's case: the schema let it through
@example(value="order-1042\n")  # Python's "$" before a final newline
@example(value="a\ud800")
@given(value=CLIENT_REFS)
def test_validator_and_every_schema_agree_on_any_client_ref(value: str) -> None:
    valid = _accepts(validate_client_ref, value)
    for detail_type, output in CLIENT_REF_SCHEMAS:
        if output:
            detail = {**SAMPLE_OUTPUTS[detail_type], "client_ref": value}
        else:
            detail = {**BASE[detail_type], "client_ref": value}
        schema_errors = errors_for(detail_type, detail, input_event=not output)
        assert (not schema_errors) is valid, f"{detail_type}: validator says {valid}, schema {schema_errors}"


def test_metadata() -> None:
    assert validate_metadata(None) == {}
    assert validate_metadata({"a": [1, 2.5, None, True, {"b": "c"}]}) == {"a": [1, 2.5, None, True, {"b": "c"}]}
    cases: list[tuple[Any, str]] = [
        ([1], "must be an object, got list"),
        ("{}", "must be an object, got str"),
        ({1: "a"}, "keys must be strings"),
        ({"a": {2: "b"}}, "keys must be strings"),
        ({"a": float("nan")}, "finite"),
        ({"a": object()}, "values must be JSON"),
        ({"a": "x" * 5000}, "at most 4096 bytes"),
        ({"a": "\ud800"}, "UTF-8 JSON"),
    ]
    for bad, message in cases:
        with pytest.raises(ValidationError, match=message):
            validate_metadata(bad)
    deep: dict[str, Any] = {}
    cursor = deep
    for _ in range(100):
        cursor["d"] = {}
        cursor = cursor["d"]
    with pytest.raises(ValidationError, match="nest"):
        validate_metadata(deep)


def test_metadata_size_counts_utf8_bytes() -> None:
    ok = {"a": "é" * 2040}  # {"a":"..."} = 8 + 4080 bytes
    assert validate_metadata(ok) == ok
    with pytest.raises(ValidationError, match="4096 bytes"):
        validate_metadata({"a": "é" * 2045})


# --- track ------------------------------------------------------------------------------------


def test_parse_track_request() -> None:
    got = parse_track_request({"request_id": "abc", "client_ref": "r", "metadata": {"k": 1}, "future": "x"})
    assert got == TrackRequest(request_id="abc", client_ref="r", metadata={"k": 1})
    assert parse_track_request({"request_id": "abc", "client_ref": None, "metadata": None}) == TrackRequest("abc")


def test_parse_track_request_collects_every_error() -> None:
    with pytest.raises(ValidationError) as info:
        parse_track_request({"request_id": "../etc/passwd", "client_ref": 5, "metadata": []})
    fields = [e.split(":")[0] for e in info.value.errors]
    assert fields == ["request_id", "client_ref", "metadata"]


@pytest.mark.parametrize("detail", [None, [], "request_id", 7])
def test_detail_must_be_an_object(detail: Any) -> None:
    with pytest.raises(ValidationError, match="detail: must be an object"):
        parse_track_request(detail)


# --- generation -------------------------------------------------------------------------------


def test_generation_defaults() -> None:
    got = parse_generation_request({"prompt": "a fox"})
    assert got == GenerationRequest(prompt="a fox")
    assert got.duration == DEFAULT_DURATION == 6
    assert got.model == DEFAULT_MODEL == "grok-imagine-video"
    assert got.aspect_ratio is None and got.resolution is None and got.image is None
    assert got.metadata == {}


def test_generation_full() -> None:
    detail = {
        "prompt": "a fox\nin snow",
        "duration": 15,
        "aspect_ratio": "9:16",
        "resolution": "1080p",
        "model": "grok-imagine-video-1.5",
        "image_url": "https://example.com/a.png?x=1",
        "client_ref": "c",
        "metadata": {"m": 1},
        "unknown_future_field": {"ignored": True},
    }
    got = parse_generation_request(detail)
    assert (got.duration, got.aspect_ratio, got.resolution, got.model) == (
        15,
        "9:16",
        "1080p",
        "grok-imagine-video-1.5",
    )
    assert got.image == "https://example.com/a.png?x=1"
    assert parse_generation_request({"prompt": "p", "duration": 3.0}).duration == 3


@pytest.mark.parametrize(
    "image_url",
    [
        "data:image/png;base64,iVBORw0KGgo=",
        "data:image/jpeg;base64,/9j/4AAQ",
        "data:image/webp;base64,UklGRg==",
    ],
)
def test_generation_accepts_image_data_urls(image_url: str) -> None:
    assert parse_generation_request({"prompt": "p", "image_url": image_url}).image == image_url


def test_generation_collects_every_error() -> None:
    with pytest.raises(ValidationError) as info:
        parse_generation_request(
            {
                "prompt": "   ",
                "duration": 16,
                "aspect_ratio": "21:9",
                "resolution": "4k",
                "model": "sora",
                "image_url": "http://example.com/a.png",
                "client_ref": "x" * 200,
                "metadata": "{}",
            }
        )
    fields = [e.split(":")[0] for e in info.value.errors]
    assert fields == [
        "prompt",
        "duration",
        "aspect_ratio",
        "resolution",
        "model",
        "image_url",
        "client_ref",
        "metadata",
    ]


@pytest.mark.parametrize(
    ("detail", "field", "message"),
    [
        ({}, "prompt", "is required"),
        ({"prompt": 5}, "prompt", "must be a string"),
        ({"prompt": "x" * 4097}, "prompt", "at most 4096"),
        ({"prompt": "a\x00b"}, "prompt", "control characters"),
        ({"prompt": "p", "duration": 0}, "duration", "between 1 and 15"),
        ({"prompt": "p", "duration": True}, "duration", "integer"),
        ({"prompt": "p", "duration": "6"}, "duration", "integer"),
        ({"prompt": "p", "duration": 6.5}, "duration", "integer"),
        ({"prompt": "p", "resolution": "1080p"}, "resolution", "1080p requires model grok-imagine-video-1.5"),
        ({"prompt": "p", "image_url": "ftp://x/a.png"}, "image_url", "https"),
        ({"prompt": "p", "image_url": "https://user:pw@x/a.png"}, "image_url", "credentials"),
        ({"prompt": "p", "image_url": "https:///a.png"}, "image_url", "host"),
        ({"prompt": "p", "image_url": "https://x/a b.png"}, "image_url", "spaces"),
        ({"prompt": "p", "image_url": "data:image/gif;base64,R0lG"}, "image_url", "png|jpeg|webp"),
        ({"prompt": "p", "image_url": "data:image/png;base64,abc"}, "image_url", "malformed"),
        ({"prompt": "p", "image_url": "data:image/png;base64," + "A" * 300_000}, "image_url", "at most"),
        ({"prompt": "p", "image_url": "https://x/" + "a" * 3000}, "image_url", "at most 2048"),
        ({"prompt": "p", "model": 3}, "model", "must be one of"),
    ],
)
def test_generation_field_errors(detail: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_generation_request(detail)
    assert len(info.value.errors) == 1, info.value.errors
    assert info.value.errors[0].startswith(f"{field}: ")
    assert message in info.value.errors[0]


# --- edit -------------------------------------------------------------------------------------


def test_edit_request() -> None:
    got = parse_edit_request({"prompt": "snow", "video_url": "https://vidgen.x.ai/a.mp4", "x": 1})
    assert got == EditRequest(prompt="snow", video="https://vidgen.x.ai/a.mp4")
    assert got.model == DEFAULT_MODEL


def test_edit_collects_every_error() -> None:
    with pytest.raises(ValidationError) as info:
        parse_edit_request({"video_url": "file:///etc/passwd", "model": "x", "metadata": [1]})
    fields = [e.split(":")[0] for e in info.value.errors]
    assert fields == ["prompt", "video_url", "model", "metadata"]
    with pytest.raises(ValidationError, match="video_url: is required"):
        parse_edit_request({"prompt": "p"})


@given(
    st.dictionaries(
        st.sampled_from(["prompt", "video_url", "model", "client_ref", "metadata", "x"]),
        st.one_of(st.none(), st.text(), st.integers(), st.lists(st.integers())),
    )
)
def test_parsers_raise_only_validation_error(detail: dict[str, Any]) -> None:
    for parse in (parse_edit_request, parse_generation_request, parse_track_request):
        try:
            parse(detail)
        except ValidationError as exc:
            assert exc.errors and all(": " in e for e in exc.errors)


# --- the submit path's new fields, row by row -------------------------------------------------
#
# Every row is one input detail and what the validator must say about it: accepted (with the
# parsed attributes it must produce) or refused with exactly one error for one field. The same
# rows are then checked against the input JSON Schemas, except where a schema cannot say it.

GENERATION, EDIT, TRACK = "Video Generation Requested", "Video Edit Requested", "Video Job Track Requested"
INPUT_BUCKETS = ("grokvideo-inputs", "other.inputs-2", "abc", "b" * 63)
SAMPLE_ID = "4b2cd27e-0b0d-3dec-c31c-7572daf74bb3"
BASE: dict[str, dict[str, Any]] = {
    GENERATION: {"prompt": "a red fox in snow"},
    EDIT: {"prompt": "make it snow", "video_url": "https://example.com/in.mp4"},
    TRACK: {"request_id": SAMPLE_ID},
}
ALLOW_LIST = "the bucket allow-list (InputBucketNames) is a deployment setting, not in the schema"
PYTHON_DOLLAR = "jsonschema runs patterns with Python's re, whose '$' also matches before a final newline"
UTF8_BYTES = "JSON Schema's maxLength counts characters, not UTF-8 bytes"
SURROGATE = "a lone surrogate is not a character a JSON Schema pattern can portably name"


@dataclass(frozen=True)
class Row:
    detail_type: str
    detail: dict[str, Any]
    error: tuple[str, ...] = ()  # refused: (field, message fragment, ...)
    expect: dict[str, Any] = field(default_factory=dict)  # accepted: attributes of the parsed request
    schema_skip: str = ""  # why the JSON Schema cannot agree on this row (left out of the agreement test)


def _row(
    row_id: str,
    detail_type: str,
    fields: dict[str, Any],
    *,
    error: tuple[str, ...] = (),
    expect: dict[str, Any] | None = None,
    schema_skip: str = "",
    base: dict[str, Any] | None = None,
) -> Any:
    detail = {**(BASE[detail_type] if base is None else base), **fields}
    short = {GENERATION: "gen", EDIT: "edit", TRACK: "track"}[detail_type]
    return pytest.param(Row(detail_type, detail, error, expect or {}, schema_skip), id=f"{short}-{row_id}")


def _token_rows(name: str, max_length: int, detail_types: tuple[str, ...]) -> list[Any]:
    ascii_all = "".join(chr(c) for c in range(33, 127))
    cases: list[tuple[str, object, tuple[str, ...], str]] = [
        ("none-is-absent", None, (), ""),
        ("one-char", "k", (), ""),
        ("max-length", "k" * max_length, (), ""),
        ("every-printable-ascii", ascii_all[:max_length], (), ""),
        ("empty", "", (name, f"must be 1-{max_length} characters, got 0"), ""),
        ("too-long", "k" * (max_length + 1), (name, f"got {max_length + 1}"), ""),
        ("space", "order 1042", (name, "printable ASCII without spaces"), ""),
        ("tab", "order\t1042", (name, "printable ASCII without spaces"), ""),
        ("trailing-newline", "order-1042\n", (name, "printable ASCII without spaces"), PYTHON_DOLLAR),
        ("nul", "order\x001042", (name, "printable ASCII without spaces"), ""),
        ("del", "order\x7f", (name, "printable ASCII without spaces"), ""),
        ("non-ascii", "commande-n°1042", (name, "printable ASCII without spaces"), ""),
        ("non-ascii-digit", "\u0661", (name, "printable ASCII without spaces"), ""),
        ("fullwidth", "\uff21\uff22", (name, "printable ASCII without spaces"), ""),
        ("int", 1042, (name, "must be a string, got int"), ""),
        ("bool", True, (name, "must be a string, got bool"), ""),
        ("list", ["k"], (name, "must be a string, got list"), ""),
        ("object", {"k": 1}, (name, "must be a string, got dict"), ""),
    ]
    return [
        _row(
            f"{name}-{case}",
            detail_type,
            {name: value},
            error=error,
            expect=None if error else {name: value},
            schema_skip=skip,
        )
        for detail_type in detail_types
        for case, value, error, skip in cases
    ]


def _s3_rows(name: str, attr: str, detail_type: str, base: dict[str, Any]) -> list[Any]:
    shape = (name, "must be s3://<bucket>/<key>")
    bad_key = (name, "the S3 key must not contain control characters")
    long_key = (name, f"the S3 key must be at most {S3_KEY_MAX_LENGTH} bytes as UTF-8")
    cases: list[tuple[str, str, tuple[str, ...], object, str]] = [
        ("s3-allowed", "s3://grokvideo-inputs/cats/1.png", (), S3Location("grokvideo-inputs", "cats/1.png"), ""),
        ("s3-other-allowed", "s3://other.inputs-2/x", (), S3Location("other.inputs-2", "x"), ""),
        ("s3-bucket-3-chars", "s3://abc/k", (), S3Location("abc", "k"), ""),
        ("s3-bucket-63-chars", f"s3://{'b' * 63}/k", (), S3Location("b" * 63, "k"), ""),
        ("s3-key-with-spaces-unicode", "s3://abc/my cats/über 1.png", (), S3Location("abc", "my cats/über 1.png"), ""),
        ("s3-key-nested-slashes", "s3://abc/a//b/", (), S3Location("abc", "a//b/"), ""),
        ("s3-key-max", f"s3://abc/{'k' * S3_KEY_MAX_LENGTH}", (), S3Location("abc", "k" * S3_KEY_MAX_LENGTH), ""),
        (
            "s3-bucket-not-listed",
            "s3://someone-elses-bucket/cats/1.png",
            (name, "'someone-elses-bucket'", "InputBucketNames"),
            None,
            ALLOW_LIST,
        ),
        ("s3-no-key", "s3://grokvideo-inputs", shape, None, ""),
        ("s3-empty-key", "s3://grokvideo-inputs/", shape, None, ""),
        ("s3-no-bucket", "s3:///cats/1.png", shape, None, ""),
        ("s3-nothing", "s3://", shape, None, ""),
        ("s3-bucket-2-chars", "s3://ab/k", shape, None, ""),
        ("s3-bucket-64-chars", f"s3://{'b' * 64}/k", shape, None, ""),
        ("s3-bucket-uppercase", "s3://GrokVideo-Inputs/a.png", shape, None, ""),
        ("s3-bucket-underscore", "s3://grokvideo_inputs/a.png", shape, None, ""),
        ("s3-bucket-leading-hyphen", "s3://-grokvideo/a.png", shape, None, ""),
        ("s3-bucket-with-port", "s3://grokvideo-inputs:443/a.png", shape, None, ""),
        ("s3-key-newline", "s3://grokvideo-inputs/a\nb.png", bad_key, None, ""),
        ("s3-key-nul", "s3://grokvideo-inputs/a\x00", bad_key, None, ""),
        ("s3-key-del", "s3://grokvideo-inputs/a\x7f", bad_key, None, ""),
        ("s3-key-too-long", f"s3://abc/{'k' * (S3_KEY_MAX_LENGTH + 1)}", long_key, None, ""),
        # S3 bounds a key's UTF-8 encoding (1024 bytes), not its characters: 513 x 'é' is 1026 bytes
        ("s3-key-over-1024-utf8-bytes", f"s3://abc/{'é' * 513}", long_key, None, UTF8_BYTES),
        # a lone surrogate cannot be encoded as UTF-8: presigning the key raises UnicodeEncodeError
        ("s3-key-lone-surrogate", "s3://grokvideo-inputs/a\ud800.png", bad_key, None, SURROGATE),
    ]
    return [
        _row(
            case,
            detail_type,
            {name: value},
            error=error,
            expect=None if error else {attr: parsed},
            schema_skip=skip,
            base=base,
        )
        for case, value, error, parsed, skip in cases
    ]


EDIT_NO_VIDEO = {"prompt": "make it snow"}
VIDEO = "https://example.com/in.mp4"

NEW_FIELD_ROWS = [
    *_token_rows("idempotency_key", IDEMPOTENCY_KEY_MAX_LENGTH, (GENERATION, EDIT)),
    *_token_rows("task_token", TASK_TOKEN_MAX_LENGTH, (GENERATION, EDIT, TRACK)),
    *_s3_rows("image_url", "image", GENERATION, BASE[GENERATION]),
    *_s3_rows("video_url", "video", EDIT, EDIT_NO_VIDEO),
    # an https image or video is kept as given
    _row(
        "https-image",
        GENERATION,
        {"image_url": "https://x.example/a.png?sig=1"},
        expect={"image": "https://x.example/a.png?sig=1"},
    ),
    _row("https-video", EDIT, {}, expect={"video": VIDEO, "source_request_id": None}),
    # edits: exactly one of video_url and source_request_id
    _row(
        "source-only",
        EDIT,
        {"source_request_id": SAMPLE_ID},
        expect={"source_request_id": SAMPLE_ID, "video": None},
        base=EDIT_NO_VIDEO,
    ),
    _row(
        "source-null-is-absent",
        EDIT,
        {"video_url": VIDEO, "source_request_id": None},
        expect={"video": VIDEO, "source_request_id": None},
        base=EDIT_NO_VIDEO,
    ),
    _row(
        "video-null-is-absent",
        EDIT,
        {"video_url": None, "source_request_id": SAMPLE_ID},
        expect={"video": None, "source_request_id": SAMPLE_ID},
        base=EDIT_NO_VIDEO,
    ),
    _row("neither", EDIT, {}, error=("video_url", "is required", "source_request_id"), base=EDIT_NO_VIDEO),
    _row(
        "neither-both-null",
        EDIT,
        {"video_url": None, "source_request_id": None},
        error=("video_url", "is required"),
        base=EDIT_NO_VIDEO,
    ),
    _row(
        "both",
        EDIT,
        {"video_url": VIDEO, "source_request_id": SAMPLE_ID},
        error=("source_request_id", "not both"),
        base=EDIT_NO_VIDEO,
    ),
    _row(
        "both-s3",
        EDIT,
        {"video_url": "s3://abc/in.mp4", "source_request_id": SAMPLE_ID},
        error=("source_request_id", "not both"),
        base=EDIT_NO_VIDEO,
    ),
    _row(
        "source-malformed",
        EDIT,
        {"source_request_id": "../etc/passwd"},
        error=("source_request_id", "may contain only"),
        base=EDIT_NO_VIDEO,
    ),
    _row(
        "source-empty",
        EDIT,
        {"source_request_id": ""},
        error=("source_request_id", "must not be empty"),
        base=EDIT_NO_VIDEO,
    ),
    _row(
        "source-too-long",
        EDIT,
        {"source_request_id": "a" * 129},
        error=("source_request_id", "at most 128 characters"),
        base=EDIT_NO_VIDEO,
    ),
    _row(
        "source-int",
        EDIT,
        {"source_request_id": 42},
        error=("source_request_id", "must be a string, got int"),
        base=EDIT_NO_VIDEO,
    ),
    # track: the stack's own submission ids may not be tracked
    _row(
        "submission-id",
        TRACK,
        {"request_id": SUBMISSION_PREFIX + "bff83cdfb94d8087b6fd49cb20c427dc6013ae2c"},
        error=("request_id", "'submission-'", "reserved"),
    ),
    _row("submission-prefix-alone", TRACK, {"request_id": "submission-"}, error=("request_id", "reserved")),
    _row("submission-prefix-short", TRACK, {"request_id": "submission-x"}, error=("request_id", "reserved")),
    _row("submission-without-hyphen", TRACK, {"request_id": "submission"}, expect={"request_id": "submission"}),
    _row("submission-inside", TRACK, {"request_id": "my-submission-1"}, expect={"request_id": "my-submission-1"}),
    _row("submission-other-case", TRACK, {"request_id": "Submission-x"}, expect={"request_id": "Submission-x"}),
    _row(
        "submission-malformed",
        TRACK,
        {"request_id": "submission-../x"},
        error=("request_id", "may contain only"),
    ),
]


def _parse(detail_type: str, detail: dict[str, Any]) -> Any:
    if detail_type == GENERATION:
        return parse_generation_request(detail, input_buckets=INPUT_BUCKETS)
    if detail_type == EDIT:
        return parse_edit_request(detail, input_buckets=INPUT_BUCKETS)
    return parse_track_request(detail)


@pytest.mark.parametrize("row", NEW_FIELD_ROWS)
def test_new_field_rows(row: Row) -> None:
    if row.error:
        with pytest.raises(ValidationError) as info:
            _parse(row.detail_type, row.detail)
        assert len(info.value.errors) == 1, info.value.errors
        name, *fragments = row.error
        assert info.value.errors[0].startswith(f"{name}: "), info.value.errors
        for fragment in fragments:
            assert fragment in info.value.errors[0]
        assert len(info.value.errors[0]) < 400  # a bad value is cut, never echoed whole
    else:
        got = _parse(row.detail_type, row.detail)
        for attr, value in row.expect.items():
            assert getattr(got, attr) == value, attr


AGREEMENT_ROWS = [p for p in NEW_FIELD_ROWS if not p.values[0].schema_skip]


@pytest.mark.parametrize("row", AGREEMENT_ROWS)
def test_input_schema_agrees_with_the_validator(row: Row) -> None:
    schema_errors = errors_for(row.detail_type, row.detail, input_event=True)
    try:
        _parse(row.detail_type, row.detail)
    except ValidationError as exc:
        validator_errors = exc.errors
    else:
        validator_errors = []
    assert bool(schema_errors) == bool(validator_errors), (
        f"schema says {schema_errors or 'valid'}, validator says {validator_errors or 'valid'}"
    )


def test_every_skipped_agreement_row_says_why() -> None:
    skipped = [p.values[0] for p in NEW_FIELD_ROWS if p.values[0].schema_skip]
    assert {r.schema_skip for r in skipped} == {ALLOW_LIST, PYTHON_DOLLAR, UTF8_BYTES, SURROGATE}
    assert all("InputBucketNames" in r.error for r in skipped if r.schema_skip == ALLOW_LIST)


def test_s3_input_without_configured_buckets_is_refused_and_says_none_are_listed() -> None:
    for parse, name in ((parse_generation_request, "image_url"), (parse_edit_request, "video_url")):
        with pytest.raises(ValidationError) as info:
            parse({"prompt": "p", name: "s3://grokvideo-inputs/a.png"})
        assert info.value.errors == [
            f"{name}: bucket 'grokvideo-inputs' is not an input bucket of this stack (InputBucketNames: none)"
        ]


def test_s3_location_uri_round_trips() -> None:
    got = parse_generation_request({"prompt": "p", "image_url": "s3://abc/my cats/1.png"}, input_buckets=["abc"])
    assert got.image == S3Location("abc", "my cats/1.png")
    assert isinstance(got.image, S3Location) and got.image.uri == "s3://abc/my cats/1.png"


@pytest.mark.parametrize(
    ("check", "limit"),
    [(validate_idempotency_key, IDEMPOTENCY_KEY_MAX_LENGTH), (validate_task_token, TASK_TOKEN_MAX_LENGTH)],
)
def test_token_validators_name_the_given_field(check: Any, limit: int) -> None:
    assert check(None) is None
    assert check("k" * limit) == "k" * limit
    with pytest.raises(ValidationError) as info:
        check("k" * (limit + 1), "detail.key")
    assert info.value.errors == [f"detail.key: must be 1-{limit} characters, got {limit + 1}"]


def test_limits_are_the_documented_ones() -> None:
    assert (IDEMPOTENCY_KEY_MAX_LENGTH, TASK_TOKEN_MAX_LENGTH, S3_KEY_MAX_LENGTH) == (128, 8192, 1024)
    assert SUBMISSION_PREFIX == "submission-"


def test_track_request_keeps_its_task_token() -> None:
    got = parse_track_request({"request_id": SAMPLE_ID, "task_token": "AAAA+/=="})
    assert got == TrackRequest(request_id=SAMPLE_ID, task_token="AAAA+/==")


def test_full_generation_and_edit_keep_every_new_field() -> None:
    gen = parse_generation_request(
        {"prompt": "p", "image_url": "s3://abc/in.png", "idempotency_key": "order-1/v2", "task_token": "tok=="},
        input_buckets=INPUT_BUCKETS,
    )
    assert gen == GenerationRequest(
        prompt="p", image=S3Location("abc", "in.png"), idempotency_key="order-1/v2", task_token="tok=="
    )
    edit = parse_edit_request(
        {"prompt": "p", "source_request_id": SAMPLE_ID, "idempotency_key": "k", "task_token": "t"},
        input_buckets=INPUT_BUCKETS,
    )
    assert edit == EditRequest(prompt="p", source_request_id=SAMPLE_ID, idempotency_key="k", task_token="t")


# --- several bad fields: one error, every field, in order -------------------------------------


def test_generation_lists_every_bad_field_including_the_new_ones() -> None:
    with pytest.raises(ValidationError) as info:
        parse_generation_request(
            {
                "prompt": "   ",
                "duration": 16,
                "aspect_ratio": "21:9",
                "resolution": "4k",
                "model": "sora",
                "image_url": "s3://someone-elses-bucket/a.png",
                "client_ref": "x" * 200,
                "metadata": "{}",
                "idempotency_key": "order 1042",
                "task_token": "",
            },
            input_buckets=INPUT_BUCKETS,
        )
    assert [e.split(":")[0] for e in info.value.errors] == [
        "prompt",
        "duration",
        "aspect_ratio",
        "resolution",
        "model",
        "image_url",
        "client_ref",
        "metadata",
        "idempotency_key",
        "task_token",
    ]


def test_edit_lists_every_bad_field_including_the_new_ones() -> None:
    with pytest.raises(ValidationError) as info:
        parse_edit_request(
            {
                "prompt": None,
                "video_url": "s3://grokvideo-inputs/",
                "source_request_id": "../x",
                "model": "x",
                "client_ref": 5,
                "metadata": [1],
                "idempotency_key": "é",
                "task_token": "t" * (TASK_TOKEN_MAX_LENGTH + 1),
            },
            input_buckets=INPUT_BUCKETS,
        )
    assert [e.split(":")[0] for e in info.value.errors] == [
        "prompt",
        "video_url",
        "source_request_id",  # malformed
        "source_request_id",  # and given together with video_url
        "model",
        "client_ref",
        "metadata",
        "idempotency_key",
        "task_token",
    ]


def test_track_lists_every_bad_field_including_the_new_ones() -> None:
    with pytest.raises(ValidationError) as info:
        parse_track_request({"request_id": "submission-abc", "client_ref": 5, "metadata": [], "task_token": 7})
    assert [e.split(":")[0] for e in info.value.errors] == ["request_id", "client_ref", "metadata", "task_token"]
