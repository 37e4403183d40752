"""grokvideo.contract's TypedDicts against the JSON Schemas, and against what grokvideo.events builds."""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from grokvideo import contract
from grokvideo import events as ev
from grokvideo.contract import DETAIL_MODELS, INPUT_MODELS, OUTPUT_MODELS
from grokvideo.events import DetailType
from grokvideo.models import ArchiveFailureReason, FailureReason
from tests.schema_check import (
    INPUT_SCHEMAS,
    SAMPLE_REQUEST_ID,
    SAMPLE_VIDEO_URL,
    SCHEMAS,
    assert_valid_event,
    sample_output_events,
    schema_path,
)

SCHEMA_FILES = sorted(SCHEMAS.glob("*.json")) + sorted(INPUT_SCHEMAS.glob("*.json"))

# A JSON Schema ``type`` -> the Python type a model annotates it with. ``number`` is ``float``,
# which type checkers let an int into as well; ``array`` takes its ``items`` type (see below).
JSON_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "null": types.NoneType,
    "object": dict[str, Any],
}


def _schema(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _keys(model: type) -> set[str]:
    return set(typing.get_type_hints(model))


def expected_types(prop: dict[str, Any]) -> set[Any]:
    """``{"type": ["string", "null"]}`` -> ``{str, NoneType}``; an array of strings -> ``{list[str]}``."""
    names = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    out: set[Any] = set()
    for name in names:
        if name == "array":
            (item,) = expected_types(prop["items"])
            out.add(list[item])
        else:
            out.add(JSON_TYPES[name])
    return out


def annotated_types(annotation: Any) -> set[Any]:
    """``str | None`` (or ``Optional[str]``) -> ``{str, NoneType}``; anything else -> ``{it}``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set(typing.get_args(annotation))
    return {annotation}


def conforms(value: Any, annotation: Any) -> bool:
    """Does a JSON value fit a model's annotation (``float`` takes an int; bool is no number)?"""
    members = annotated_types(annotation)
    if len(members) > 1:
        return any(conforms(value, m) for m in members)
    if annotation is types.NoneType:
        return value is None
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if annotation == dict[str, Any]:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if annotation == list[str]:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    raise AssertionError(f"no rule for {annotation!r}")


# --- models against the schemas ------------------------------------------------------------


def test_every_detail_type_has_a_model_and_a_schema() -> None:
    assert set(DETAIL_MODELS) == set(DetailType)
    assert set(INPUT_MODELS) | set(OUTPUT_MODELS) == set(DETAIL_MODELS)
    assert not set(INPUT_MODELS) & set(OUTPUT_MODELS)
    assert len(SCHEMA_FILES) == len(DetailType)
    for detail_type in DetailType:
        assert schema_path(detail_type, input_event=detail_type in INPUT_MODELS).is_file(), detail_type


def test_models_are_importable_by_name() -> None:
    for name, model in {m.__name__: m for m in DETAIL_MODELS.values()}.items():
        assert getattr(contract, name) is model and name in contract.__all__
        assert typing.is_typeddict(model)
        assert model.__doc__ and model.__doc__.startswith(f"``{_detail_type(model)}``"), name


def _detail_type(model: type) -> str:
    (detail_type,) = (dt for dt, m in DETAIL_MODELS.items() if m is model)
    return detail_type


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.relative_to(SCHEMAS).as_posix())
def test_model_matches_its_schema(path: Path) -> None:
    schema = _schema(path)
    detail_type = schema["title"]
    is_input = path.parent == INPUT_SCHEMAS
    assert schema_path(detail_type, input_event=is_input) == path
    model = (INPUT_MODELS if is_input else OUTPUT_MODELS)[detail_type]
    assert DETAIL_MODELS[detail_type] is model

    properties: dict[str, Any] = schema["properties"]
    assert _keys(model) == set(properties)
    assert model.__required_keys__ == set(schema["required"])
    assert model.__optional_keys__ == set(properties) - set(schema["required"])
    hints = typing.get_type_hints(model)
    for key, prop in properties.items():
        mismatch = f"{detail_type}.{key}: annotated {hints[key]}, schema type {prop['type']}"
        assert annotated_types(hints[key]) == expected_types(prop), mismatch


def test_type_mapping_reads_nullable_and_arrays() -> None:
    assert expected_types({"type": ["string", "null"]}) == annotated_types(str | None)
    assert expected_types({"type": ["number", "null"]}) == annotated_types(typing.Optional[float])  # noqa: UP045
    assert expected_types({"type": "array", "items": {"type": "string"}}) == annotated_types(list[str])
    assert expected_types({"type": "object"}) == annotated_types(dict[str, Any])
    assert expected_types({"type": "integer"}) != annotated_types(float)
    assert expected_types({"type": "string"}) != annotated_types(str | None)


# --- models against the builders -----------------------------------------------------------


def _sparse_output_events() -> dict[DetailType, ev.OutputEvent]:
    """One event per output detail-type with every nullable value null and no echo given."""
    common: dict[str, Any] = {"request_id": SAMPLE_REQUEST_ID, "client_ref": None, "metadata": None}
    return {
        DetailType.SUBMITTED: ev.generation_submitted(
            **common,
            idempotency_key="k",
            model="grok-imagine-video",
            duration=None,
            resolution=None,
            aspect_ratio=None,
            submitted_at=1773297002,
        ),
        DetailType.REJECTED: ev.request_rejected(reason="INVALID_REQUEST", errors=[]),
        DetailType.SUCCEEDED: ev.generation_succeeded(
            **common,
            video_url=SAMPLE_VIDEO_URL,
            duration=None,
            model=None,
            cost_usd=None,
            submitted_at=None,
            completed_at=None,
        ),
        DetailType.FAILED: ev.generation_failed(**common, reason=FailureReason.TIMED_OUT, message=""),
        DetailType.STORED: ev.video_stored(
            **common,
            bucket="grokvideo-videos",
            key="videos/x.mp4",
            size_bytes=0,
            sha256="0" * 64,
            content_type="video/mp4",
            duration=None,
            model=None,
        ),
        DetailType.ARCHIVE_FAILED: ev.archive_failed(
            **common, reason=ArchiveFailureReason.TOO_LARGE, message="over 2147483648 bytes"
        ),
    }


def _full_rejection() -> ev.OutputEvent:
    return ev.request_rejected(
        reason="INVALID_REQUEST", errors=["prompt: is required"], request_id=SAMPLE_REQUEST_ID, client_ref="order-7"
    )


@pytest.mark.parametrize("detail_type", list(OUTPUT_MODELS), ids=str)
def test_builders_produce_exactly_the_models_keys(detail_type: DetailType) -> None:
    model = OUTPUT_MODELS[detail_type]
    full = _full_rejection() if detail_type is DetailType.REJECTED else sample_output_events()[detail_type]
    sparse = _sparse_output_events()[detail_type]
    assert full.detail_type == sparse.detail_type == detail_type
    assert set(full.detail) == _keys(model)
    expected_sparse = model.__required_keys__ if detail_type is DetailType.REJECTED else _keys(model)
    assert set(sparse.detail) == expected_sparse
    hints = typing.get_type_hints(model)
    for event in (full, sparse):
        assert_valid_event(detail_type, event.detail)
        for key, value in event.detail.items():
            assert conforms(value, hints[key]), f"{detail_type}.{key} = {value!r} is not {hints[key]}"


def test_the_schema_samples_rejection_leaves_request_id_out() -> None:
    """tests/schema_check.py's rejection has no request_id: the one key a model may lack."""
    detail = sample_output_events()[DetailType.REJECTED].detail
    assert set(detail) == contract.VideoRequestRejected.__required_keys__
    assert contract.VideoRequestRejected.__optional_keys__ == {"request_id"}
