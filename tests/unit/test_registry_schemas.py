"""The schema registry's schemas (EnableSchemaRegistry): generated from schemas/ by
schemas/to_draft4.py into template.yaml, in step with schemas/, valid JSON Schema draft 4, and
saying of each event exactly what the repository's 2020-12 schema says of its detail.
"""

from __future__ import annotations

import copy
import doctest
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator

from grokvideo import events as ev
from schemas import to_draft4
from tests.schema_check import _format_checker, sample_output_events, schema_path, validator

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SOURCE = "grokvideo"

# Values each property of a sample detail is replaced with, one at a time: wrong types, bounds,
# patterns, the empty and the huge.
ODD_VALUES: list[Any] = [None, 0, -1, 0.5, 1e300, "", "x", "x" * 5000, "2026-13-01T00:00:00Z", True, [], {}, ["a"]]


def registry_schemas(res: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{SchemaName: its content as the stack with the default EventSource deploys it}."""
    out = {}
    for r in res.values():
        if r["Type"] == "AWS::EventSchemas::Schema":
            props = r["Properties"]
            content = props["Content"]["Fn::Sub"]
            assert isinstance(content, str), "Content is a plain Fn::Sub string"
            out[props["SchemaName"]] = json.loads(content.replace("${EventSource}", SOURCE))
    return out


def envelope(detail_type: str, detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": detail_type,
        "source": SOURCE,
        "account": "123456789012",
        "time": "2026-03-12T06:30:20Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def test_the_generators_examples_run() -> None:
    result = doctest.testmod(to_draft4)
    assert result.attempted and not result.failed


def test_template_yaml_is_what_the_generator_writes() -> None:
    assert to_draft4.main(["--check"]) == 0, "run: python schemas/to_draft4.py"


def test_the_check_fails_when_a_schema_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above sees a change in schemas/: a stricter maxLength makes the block stale."""
    folder = tmp_path / "schemas"
    folder.mkdir()
    for path in to_draft4.SCHEMAS.glob("*.json"):
        (folder / path.name).write_text(path.read_text())
    stored = json.loads((folder / "Video-Stored.json").read_text())
    stored["properties"]["key"]["maxLength"] = 512
    (folder / "Video-Stored.json").write_text(json.dumps(stored))
    monkeypatch.setattr(to_draft4, "SCHEMAS", folder)
    assert to_draft4.main(["--check"]) == 1


def test_one_registry_schema_per_output_detail_type(res: dict[str, Any]) -> None:
    schemas = registry_schemas(res)
    outputs = {dt for dt in ev.DetailType if schema_path(dt).is_file()}
    assert len(outputs) == 6
    assert set(schemas) == {schema_path(dt).stem for dt in outputs}
    for r in res.values():
        if r["Type"] == "AWS::EventSchemas::Schema":
            assert r["Condition"] == "SchemaRegistryEnabled"
            assert r["Properties"]["Type"] == "JSONSchemaDraft4"
            assert r["Properties"]["RegistryName"] == {"Fn::GetAtt": ["EventSchemaRegistry", "RegistryName"]}


def test_no_discoverer(res: dict[str, Any]) -> None:
    """A discoverer fills the AWS-managed discovered-schemas registry, not ours, and bills every event."""
    assert not [r for r in res.values() if r["Type"] == "AWS::EventSchemas::Discoverer"]


@pytest.mark.parametrize("detail_type", [dt for dt in ev.DetailType if schema_path(dt).is_file()])
def test_registry_schema_is_draft4_and_judges_events_as_the_repository_schema(
    res: dict[str, Any], detail_type: ev.DetailType
) -> None:
    schema = registry_schemas(res)[schema_path(detail_type).stem]
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    Draft4Validator.check_schema(schema)
    draft4 = Draft4Validator(schema, format_checker=_format_checker())
    reference = validator(detail_type)

    sample = sample_output_events()[detail_type].detail
    assert draft4.is_valid(envelope(detail_type, sample))
    variants: list[tuple[str, Any, dict[str, Any]]] = [
        ("", None, sample),
        ("unexpected", 1, {**sample, "unexpected": 1}),
    ]
    for key in sample:
        variants.append((key, "<missing>", {k: v for k, v in sample.items() if k != key}))
        variants += [(key, odd, {**copy.deepcopy(sample), key: odd}) for odd in ODD_VALUES]
    disagreements = [
        (key, value)
        for key, value, d in variants
        if reference.is_valid(d) != draft4.is_valid(envelope(detail_type, d))
        # The one difference between the drafts: 2020-12 counts a number with a zero fraction
        # (1e300, 1.0) as an integer, draft 4 does not. Every integer the stack emits is a JSON integer.
        and not (isinstance(value, float) and value.is_integer())
    ]
    assert not disagreements, disagreements
    assert sum(not reference.is_valid(d) for _, _, d in variants) > len(sample), "too few invalid variants"

    # The envelope: its detail-type and source are this event's, and none of its fields may be missing.
    assert not draft4.is_valid(envelope("Video Something Else", sample))
    assert not draft4.is_valid({**envelope(detail_type, sample), "source": "com.example.app"})
    assert not draft4.is_valid({k: v for k, v in envelope(detail_type, sample).items() if k != "time"})
