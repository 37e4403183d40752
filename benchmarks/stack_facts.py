"""What template.yaml deploys that the bill depends on, read from it (never copied by hand).

Memory and timeout of each function, its event source mapping's batch size, the queues'
visibility timeouts and receive limits, the poller's schedule, tracing, how many alarms and
dashboards there are, and whether the stack creates the key's secret. Values that are conditions of the template
(``!If``, ``!FindInMap``) are resolved with the parameters' defaults, as a default deploy would.

>>> facts = stack_facts()
>>> facts.memory_mb["poller"], facts.schedule_minutes, facts.batch_size["submit"]
(256, 1, 5)
>>> facts.environment["POWERTOOLS_SERVICE_NAME"]
'grokvideo'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
FUNCTIONS = {
    "poller": "PollerFunction",
    "register": "RegisterFunction",
    "submit": "SubmitFunction",
    "copier": "CopierFunction",
}
QUEUES = {"submit": "SubmitQueue", "copy": "CopyQueue"}


@dataclass(frozen=True)
class StackFacts:
    memory_mb: dict[str, int]
    timeout_seconds: dict[str, float]
    batch_size: dict[str, int]  # functions fed by an SQS event source mapping
    visibility_timeout: dict[str, float]  # by queue
    max_receives: dict[str, int]  # by queue
    schedule_minutes: int  # the poller's rate
    tracing: str  # Active | PassThrough
    alarms: int
    dashboards: int
    creates_secret: bool
    sqs_mappings: int  # event source mappings polling a queue (Lambda's pollers bill receives)
    parameters: dict[str, str]  # the stack parameters' defaults
    environment: dict[str, str]  # the functions' common variables (Globals) that are plain values


@cache
def stack_facts(path: Path = TEMPLATE) -> StackFacts:
    from cfnlint.decode import decode

    template, errors = decode(str(path))
    assert template is not None, errors
    resolver = _Resolver(template)
    resources = template["Resources"]
    defaults = template.get("Globals", {}).get("Function", {})

    def prop(function: str, name: str) -> Any:
        properties = resources[FUNCTIONS[function]]["Properties"]
        return resolver.value(properties.get(name, defaults.get(name)))

    mappings = {
        function: resolver.value(event["Properties"])
        for function, logical in FUNCTIONS.items()
        for event in resources[logical]["Properties"].get("Events", {}).values()
        if event["Type"] == "SQS"
    }
    queues = {name: resolver.value(resources[logical]["Properties"]) for name, logical in QUEUES.items()}
    schedule = next(
        str(event["Properties"]["ScheduleExpression"])
        for event in resources["PollerFunction"]["Properties"]["Events"].values()
        if event["Type"] in ("ScheduleV2", "Schedule")
    )
    minutes = re.fullmatch(r"rate\((\d+) minutes?\)", schedule)
    assert minutes, f"the poller's schedule is not a rate in minutes: {schedule}"
    return StackFacts(
        memory_mb={f: int(prop(f, "MemorySize")) for f in FUNCTIONS},
        timeout_seconds={f: float(prop(f, "Timeout")) for f in FUNCTIONS},
        batch_size={f: int(m.get("BatchSize", 10)) for f, m in mappings.items()},
        visibility_timeout={q: float(p.get("VisibilityTimeout", 30)) for q, p in queues.items()},
        max_receives={q: int(p["RedrivePolicy"]["maxReceiveCount"]) for q, p in queues.items()},
        schedule_minutes=int(minutes.group(1)),
        tracing=str(resolver.value(defaults.get("Tracing", "PassThrough"))),
        alarms=sum(
            1
            for r in resources.values()
            if r["Type"] == "AWS::CloudWatch::Alarm" and resolver.condition(r.get("Condition"))
        ),
        dashboards=sum(
            1
            for r in resources.values()
            if r["Type"] == "AWS::CloudWatch::Dashboard" and resolver.condition(r.get("Condition"))
        ),
        creates_secret=resolver.condition(resources["ApiKeySecret"].get("Condition")),
        sqs_mappings=len(mappings),
        parameters={k: str(v) for k, v in resolver.parameters.items() if v is not None},
        environment={
            str(k): str(v)
            for k, v in resolver.value(defaults.get("Environment", {}).get("Variables", {})).items()
            if isinstance(v, str)
        },
    )


class _Resolver:
    """Just enough of CloudFormation's intrinsics to read a default deploy's values."""

    def __init__(self, template: Any) -> None:
        self.template = template
        self.parameters = {k: v.get("Default") for k, v in template.get("Parameters", {}).items()}

    def condition(self, name: Any) -> bool:
        if name is None:
            return True
        return bool(self._truth(self.template["Conditions"][str(name)]))

    def _truth(self, node: Any) -> bool:
        (function, args), *_ = node.items()
        if function == "Fn::Equals":
            left, right = (self.value(a) for a in args)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self._truth(args[0])
        if function == "Fn::And":
            return all(self._truth(a) for a in args)
        if function == "Fn::Or":
            return any(self._truth(a) for a in args)
        if function == "Condition":
            return self.condition(args)
        raise ValueError(f"unsupported condition {function}")

    def value(self, node: Any) -> Any:
        if isinstance(node, dict):
            if len(node) == 1:
                (key, args), *_ = node.items()
                if key == "Ref":
                    return self.parameters.get(str(args), str(args))
                if key == "Fn::If":
                    return self.value(args[1] if self.condition(args[0]) else args[2])
                if key == "Fn::FindInMap":
                    name, top, second = (str(self.value(a)) for a in args)
                    return self.value(self.template["Mappings"][name][top][second])
                if key.startswith("Fn::"):
                    return node  # not needed for the facts read here
            return {str(k): self.value(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.value(v) for v in node]
        return node
