"""Input validation: request ids, optional echo fields, the three input details."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grokvideo.errors import ValidationError
from grokvideo.validation import (
    DEFAULT_DURATION,
    DEFAULT_MODEL,
    REQUEST_ID_PATTERN,
    EditRequest,
    GenerationRequest,
    TrackRequest,
    parse_edit_request,
    parse_generation_request,
    parse_track_request,
    validate_client_ref,
    validate_metadata,
    validate_request_id,
)

STRICT = re.compile(r"[A-Za-z0-9_-]{1,128}")


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
    for bad, message in [
        (7, "must be a string"),
        ("x" * 129, "at most 128"),
        ("a\nb", "non-printable"),
        ("a\x1bb", "non-printable"),
        ("\u202eevil", "non-printable"),
    ]:
        with pytest.raises(ValidationError, match=message):
            validate_client_ref(bad)


def test_metadata() -> None:
    assert validate_metadata(None) == {}
    assert validate_metadata({"a": [1, 2.5, None, True, {"b": "c"}]}) == {
        "a": [1, 2.5, None, True, {"b": "c"}]
    }
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
    assert parse_track_request({"request_id": "abc", "client_ref": None, "metadata": None}) == TrackRequest(
        "abc"
    )


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
    assert got.aspect_ratio is None and got.resolution is None and got.image_url is None
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
    assert got.image_url == "https://example.com/a.png?x=1"
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
    assert parse_generation_request({"prompt": "p", "image_url": image_url}).image_url == image_url


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
    assert got == EditRequest(prompt="snow", video_url="https://vidgen.x.ai/a.mp4")
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
