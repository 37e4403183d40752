"""Tracing is optional: off, no handler imports the X-Ray SDK; on, they trace with Powertools' Tracer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grokvideo.tracing import NoTracer, handler_tracer, traces

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("poller", "register", "copier", "submit")
IN_LAMBDA = {"LAMBDA_TASK_ROOT": "/var/task", "AWS_LAMBDA_FUNCTION_NAME": "grokvideo-test"}
PROBE = """
import importlib.util, json, sys
sys.path.insert(0, {layer!r})
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({{"xray": "aws_xray_sdk" in sys.modules, "tracer": type(module.tracer).__name__}}))
"""


def import_handler(function: str, **env: str) -> dict[str, object]:
    """Import a handler in a fresh interpreter with Lambda's variables (and ``env``): what it loaded."""
    code = PROBE.format(layer=str(ROOT / "layers" / "shared"), path=str(ROOT / "functions" / function / "app.py"))
    variables = {k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_TRACE")}
    variables.update({"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "grokvideo", **IN_LAMBDA, **env})
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=variables)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_handler_of_a_stack_that_does_not_trace_never_imports_the_xray_sdk(function: str) -> None:
    assert import_handler(function, POWERTOOLS_TRACE_DISABLED="true") == {"xray": False, "tracer": "NoTracer"}


@pytest.mark.parametrize("function", ["poller", "copier"])
def test_a_handler_of_a_stack_that_traces_uses_powertools_tracer(function: str) -> None:
    assert import_handler(function, POWERTOOLS_TRACE_DISABLED="false") == {"xray": True, "tracer": "Tracer"}


def test_traces_follows_powertools_rule() -> None:
    assert traces(IN_LAMBDA) is True
    assert traces({**IN_LAMBDA, "POWERTOOLS_TRACE_DISABLED": "TRUE"}) is False
    assert traces({**IN_LAMBDA, "POWERTOOLS_TRACE_DISABLED": "false"}) is True
    assert traces({"POWERTOOLS_TRACE_DISABLED": "false"}) is False  # outside Lambda: no daemon
    assert traces({**IN_LAMBDA, "AWS_CHALICE_CLI_MODE": "true"}) is False


def test_the_no_tracer_decorators_hand_the_function_back_in_both_forms() -> None:
    tracer = handler_tracer({"POWERTOOLS_TRACE_DISABLED": "true"})
    assert isinstance(tracer, NoTracer)

    def handler(event: object, context: object) -> str:
        return "done"

    assert tracer.capture_lambda_handler(handler) is handler
    assert tracer.capture_lambda_handler(capture_response=False)(handler) is handler
    assert tracer.capture_method(handler) is handler
    assert tracer.capture_method(capture_response=False, capture_error=True)(handler) is handler
