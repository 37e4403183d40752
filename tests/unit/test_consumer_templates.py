"""The consumer templates in README.md deploy as written: each is a whole CloudFormation template
that cfn-lint passes, and every name it imports is an export of template.yaml under the default
stack name. A README snippet is a consumer template when the line before its fenced ```yaml block
is ``<!-- consumer-template -->``.
"""

from __future__ import annotations

import doctest
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint
from cfnlint.decode import decode, decode_str

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TEMPLATE = ROOT / "template.yaml"
STACK_NAME = "grokvideo"  # samconfig.toml's stack_name, the name the README's imports assume

MARKER = "<!-- consumer-template -->"
_MARKED = re.compile(re.escape(MARKER) + r"\n```yaml\n(.*?)\n```", re.S)
_YAML_BLOCK = re.compile(r"```yaml\n(.*?)\n```", re.S)
# Outputs other stacks can rely on: the bus to put on and listen to, and where videos land.
REQUIRED_EXPORTS = {"EventBusName", "EventBusArn", "EventSource", "VideoBucketName"}


def consumer_templates(markdown: str) -> list[str]:
    """The YAML of every block marked as a consumer template.

    >>> consumer_templates("<!-- consumer-template -->\\n```yaml\\nResources: {}\\n```\\n```yaml\\nx: 1\\n```")
    ['Resources: {}']
    """
    return _MARKED.findall(markdown)


def imported_names(node: Any) -> list[str]:
    """Every literal name given to Fn::ImportValue anywhere in a decoded template.

    >>> imported_names({"A": [{"Fn::ImportValue": "s-Bus"}, {"B": {"Fn::ImportValue": "s-Arn"}}]})
    ['s-Bus', 's-Arn']
    """
    if isinstance(node, list):
        return [name for item in node for name in imported_names(item)]
    if not isinstance(node, dict):
        return []
    if set(node) == {"Fn::ImportValue"}:
        name = node["Fn::ImportValue"]
        assert isinstance(name, str), f"an import of a computed name cannot be checked: {name!r}"
        return [name]
    return [name for value in node.values() for name in imported_names(value)]


def export_names(template: dict[str, Any], stack_name: str) -> dict[str, str]:
    """{export name: output} of a template deployed as ``stack_name``; every export must be spelled
    ``!Sub "${AWS::StackName}-<output>"``, so consumers can guess it from the output's name."""
    out: dict[str, str] = {}
    for output, spec in template["Outputs"].items():
        if "Export" not in spec:
            continue
        name = spec["Export"]["Name"]
        assert name == {"Fn::Sub": f"${{AWS::StackName}}-{output}"}, (output, name)
        out[f"{stack_name}-{output}"] = output
    return out


@pytest.fixture(scope="module")
def snippets() -> list[str]:
    found = consumer_templates(README.read_text(encoding="utf-8"))
    assert len(found) >= 2, f"README.md has {len(found)} blocks marked {MARKER}"
    return found


@pytest.fixture(scope="module")
def exports() -> dict[str, str]:
    template, matches = decode(str(TEMPLATE))
    assert not matches and template is not None
    return export_names(template, STACK_NAME)


def test_the_outputs_consumers_need_are_exported(exports: dict[str, str]) -> None:
    assert REQUIRED_EXPORTS <= set(exports.values())


def test_every_readme_yaml_that_imports_is_marked_as_a_consumer_template() -> None:
    """A snippet that imports and is not marked would escape the checks below."""
    text = README.read_text(encoding="utf-8")
    marked = set(consumer_templates(text))
    unmarked = [block for block in _YAML_BLOCK.findall(text) if "ImportValue" in block and block not in marked]
    assert not unmarked, unmarked


def test_each_consumer_template_passes_cfn_lint(snippets: list[str]) -> None:
    for snippet in snippets:
        template, errors = decode_str(snippet)
        assert not errors and template is not None, [str(e) for e in errors]
        assert "Resources" in template, "a consumer template is a whole template, not a fragment"
        problems = lint(snippet, config=ManualArgs(regions=["us-east-1"]))
        assert not problems, "\n".join(str(p) for p in problems) + "\n---\n" + snippet


def test_every_imported_name_is_an_export_of_the_stack(snippets: list[str], exports: dict[str, str]) -> None:
    imported: set[str] = set()
    for snippet in snippets:
        template, _ = decode_str(snippet)
        imported |= set(imported_names(template))
    assert imported, "no consumer template imports anything"
    assert imported <= set(exports), sorted(imported - set(exports))


def test_a_misspelled_import_is_caught(exports: dict[str, str]) -> None:
    """The check above compares names, not just shapes: a wrong stack name or output fails it."""
    template, _ = decode_str(
        "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n"
        "      QueueName: !ImportValue grokvideo-EventBus\n"
    )
    assert not set(imported_names(template)) <= set(exports)


def test_the_lint_check_fails_a_broken_template() -> None:
    """The lint above is not vacuous: a rule pointing at a queue the template lacks is an error."""
    broken = (
        "Resources:\n  Rule:\n    Type: AWS::Events::Rule\n    Properties:\n"
        "      EventPattern: { source: [grokvideo] }\n"
        "      Targets: [{ Id: q, Arn: !GetAtt MissingQueue.Arn }]\n"
    )
    assert lint(broken, config=ManualArgs(regions=["us-east-1"]))


def test_the_helpers_examples_run() -> None:
    result = doctest.testmod(sys.modules[__name__])
    assert result.attempted and not result.failed
