"""Helpers to call the Lambda handlers in-process as Lambda would."""

from __future__ import annotations

import importlib.util
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

    for factory in (runtime.settings, runtime.job_store, runtime.publisher, runtime.cometapi):
        factory.cache_clear()  # each test brings its own environment
    name = f"handler_{function}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


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
