"""The dashboard (template.yaml, ``Dashboard``): its body is JSON once CloudFormation has filled it
in, and every metric it plots is one the code emits or an AWS metric of this stack's resources, so
a renamed metric or resource cannot leave an empty graph behind. And the README's table of alarms
names every alarm of the template.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grokvideo import errors
from tests.unit.test_template import Intrinsics

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
# Where metrics are emitted: the package (grokvideo.telemetry) and the handlers.
EMITTERS = [*sorted((ROOT / "layers" / "shared" / "grokvideo").glob("*.py")), *sorted(ROOT.glob("functions/*/app.py"))]
# The dimensions our metrics carry besides ``service``: single_metric's, in grokvideo.telemetry.
OUR_DIMENSIONS = {"error", "reason"}
AWS_METRICS = {
    "AWS/SQS": (
        "QueueName",
        "AWS::SQS::Queue",
        {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"},
    ),
    "AWS/Lambda": ("FunctionName", "AWS::Serverless::Function", {"Errors", "Throttles", "Duration", "Invocations"}),
}
SEARCH = re.compile(r"SEARCH\('\{(?P<ns>[^,}]+),(?P<dims>[^}]+)\} MetricName=\"(?P<name>\w+)\" (?P<filters>[^']*)'")
PLACEHOLDER = re.compile(r"<(\w+)(?:\.(\w+))?>")  # Intrinsics' stand-in for ${Resource} or ${Resource.Attr}


@pytest.fixture(scope="module")
def body(tpl: dict[str, Any]) -> dict[str, Any]:
    """The body as CloudFormation would write it for stack ``grokvideo`` in us-east-1."""
    dashboard = tpl["Resources"]["Dashboard"]
    assert dashboard["Type"] == "AWS::CloudWatch::Dashboard"
    props = dashboard["Properties"]
    assert props["DashboardName"] == {"Ref": "AWS::StackName"}
    assert set(props["DashboardBody"]) == {"Fn::Sub"}  # names this stack's resources, not fixed text
    text = Intrinsics(tpl)(props["DashboardBody"])
    return dict(json.loads(text))


@pytest.fixture(scope="module")
def globals_env(tpl: dict[str, Any]) -> dict[str, str]:
    return dict(tpl["Globals"]["Function"]["Environment"]["Variables"])


def emitted_names() -> set[str]:
    """Every string literal of the emitting modules that could be a metric's name (CamelCase)."""
    names = set()
    for path in EMITTERS:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if re.fullmatch(r"[A-Z][a-z]+(?:[A-Z][a-z0-9]+)+", node.value):
                    names.add(node.value)
    return names


def metric_rows(body: dict[str, Any]) -> Iterator[tuple[str, list[Any]]]:
    """(widget title, row) for every row of every metric widget; ``"."`` repeats the row above."""
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        previous: list[Any] = []
        for row in widget["properties"]["metrics"]:
            row = [previous[i] if v == "." else v for i, v in enumerate(row)]
            previous = row
            yield widget["properties"]["title"], row


def plotted(body: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric, dimensions) of every metric plotted, SEARCH expressions included."""
    found = []
    for title, row in metric_rows(body):
        if isinstance(row[0], dict):
            (options,) = row
            match = SEARCH.search(options["expression"])
            assert match, (title, options["expression"])
            filters = dict(re.findall(r'(\w+)="([^"]*)"', match["filters"]))
            assert set(filters) <= set(match["dims"].split(",")), (title, filters)
            dims = {name: filters.get(name, "*") for name in match["dims"].split(",")}
            found.append((match["ns"], match["name"], dims))
            continue
        strings = [v for v in row if isinstance(v, str)]
        namespace, metric, *pairs = strings
        assert len(pairs) % 2 == 0, (title, row)
        found.append((namespace, metric, dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return found


def test_the_body_is_json_whose_metric_widgets_show_this_stacks_region(body: dict[str, Any]) -> None:
    widgets = body["widgets"]
    assert {w["type"] for w in widgets} == {"text", "alarm", "metric"}
    for w in widgets:
        assert 0 <= w["x"] and w["x"] + w["width"] <= 24, w  # the grid is 24 wide
        if w["type"] == "metric":
            assert w["properties"]["region"] == "us-east-1", w["properties"]["title"]
    assert "grokvideo" in widgets[0]["properties"]["markdown"]  # the stack's name


def test_every_metric_of_ours_is_one_the_code_emits_with_its_dimensions(
    body: dict[str, Any], globals_env: dict[str, str]
) -> None:
    names = emitted_names()
    ours = [(m, d) for ns, m, d in plotted(body) if not ns.startswith("AWS/")]
    assert ours
    for metric, dims in ours:
        assert metric in names, f"{metric}: no module emits it"
        assert dims.pop("service") == globals_env["POWERTOOLS_SERVICE_NAME"], metric
        assert set(dims) <= OUR_DIMENSIONS, metric
        if dims.get("error", "*") != "*":  # an error class a status call raises
            assert issubclass(getattr(errors, dims["error"]), errors.CometApiError), dims
    namespaces = {ns for ns, _, _ in plotted(body) if not ns.startswith("AWS/")}
    assert namespaces == {globals_env["POWERTOOLS_METRICS_NAMESPACE"]}
    # What the brief of the dashboard asks for is there: the latencies the code added for it.
    assert {"ProviderLatency", "StoredLatency", "PollErrors"} <= {m for m, _ in ours}


def test_every_aws_metric_is_of_a_resource_of_this_stack(body: dict[str, Any], tpl: dict[str, Any]) -> None:
    resources = tpl["Resources"]
    shown: dict[str, set[str]] = {}
    for namespace, metric, dims in plotted(body):
        if not namespace.startswith("AWS/"):
            continue
        dimension, resource_type, metrics = AWS_METRICS[namespace]
        assert metric in metrics, (namespace, metric)
        assert list(dims) == [dimension], (namespace, metric, dims)
        match = PLACEHOLDER.fullmatch(dims[dimension])
        assert match, dims  # ${Resource} or ${Resource.Attr}, never a name written by hand
        logical, attribute = match[1], match[2]
        assert resources[logical]["Type"] == resource_type, logical
        assert attribute == ("QueueName" if resource_type == "AWS::SQS::Queue" else None), dims
        shown.setdefault(metric, set()).add(logical)
    dead_letter_queues = {k for k, v in resources.items() if v["Type"] == "AWS::SQS::Queue" and "DeadLetter" in k}
    assert shown["ApproximateNumberOfMessagesVisible"] == dead_letter_queues  # every DLQ's depth
    functions = {k for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
    assert shown["Errors"] == functions


def test_the_alarm_widget_shows_every_alarm(body: dict[str, Any], tpl: dict[str, Any]) -> None:
    [widget] = [w for w in body["widgets"] if w["type"] == "alarm"]
    prefix = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:"
    arns = widget["properties"]["alarms"]
    assert all(arn.startswith(prefix) for arn in arns), arns
    shown = [PLACEHOLDER.fullmatch(arn.removeprefix(prefix)) for arn in arns]
    alarms = {k for k, v in tpl["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert sorted(m[1] for m in shown if m) == sorted(alarms)


def test_a_search_for_poll_errors_is_read_as_its_metric_and_dimensions() -> None:
    """The parser the tests above rely on, on a row of the kind the body uses."""
    row = {
        "expression": "SEARCH('{GrokVideo,error,service} MetricName=\"PollErrors\" service=\"grokvideo\"', 'Sum', 300)"
    }
    body = {"widgets": [{"type": "metric", "properties": {"title": "t", "metrics": [[row], ["A", "B", "k", "v"]]}}]}
    assert plotted(body) == [
        ("GrokVideo", "PollErrors", {"error": "*", "service": "grokvideo"}),
        ("A", "B", {"k": "v"}),
    ]


def test_the_readme_tells_what_every_alarm_means_and_what_to_do(tpl: dict[str, Any]) -> None:
    operations = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## Operations\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| (.+?) \| (.+?) \|$", operations, re.M)
    alarms = {k for k, v in tpl["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert sorted(name for name, _, _ in rows) == sorted(alarms)
    assert all(meaning and todo for _, meaning, todo in rows)


def test_the_dashboard_is_on_by_default_and_can_be_left_out(tpl: dict[str, Any]) -> None:
    """A dashboard bills $3 a month past an account's first three: EnableDashboard=false leaves it out."""
    assert tpl["Resources"]["Dashboard"]["Condition"] == "DashboardEnabled"
    assert tpl["Conditions"]["DashboardEnabled"] == {"Fn::Equals": [{"Ref": "EnableDashboard"}, "true"]}
    assert tpl["Parameters"]["EnableDashboard"]["Default"] == "true"
    assert not any("Dashboard" in str(output.get("Value")) for output in tpl["Outputs"].values())
