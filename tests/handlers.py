"""Helpers to call the Lambda handlers in-process as Lambda would."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load_handler(function: str) -> ModuleType:
    """Import ``functions/<function>/app.py`` under a unique module name (each folder has an app.py)."""
    from grokvideo import runtime

    for factory in (
        runtime.job_store,
        runtime.publisher,
        runtime.poller_settings,
        runtime.poll_client,
        runtime.registrar,
        runtime.submit_settings,
        runtime.submitter,
        runtime.submit_requeue,
        runtime.copier_settings,
        runtime.copy_requeue,
        runtime.copier,
        runtime.task_resumer,  # its stepfunctions client belongs to the test's moto
    ):
        factory.cache_clear()  # each test brings its own environment
    _fresh_log_handlers()
    name = f"handler_{function}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _fresh_log_handlers() -> None:
    """Point the service logger's stream at this test's stdout, not a closed earlier one.

    Powertools configures the service's logger once per process and keeps its stream; pytest
    swaps sys.stdout per test. Lambda has one stdout per process, so this is a test-only concern.
    """
    service = logging.getLogger(os.environ.get("POWERTOOLS_SERVICE_NAME", "grokvideo"))
    for handler in service.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = sys.stdout  # not setStream(): it flushes the old, closed stream


@dataclass
class FakeContext:
    """The parts of the Lambda context that Powertools and our handlers read."""

    function_name: str = "grokvideo-test"
    timeout_seconds: float = 70.0
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000)
