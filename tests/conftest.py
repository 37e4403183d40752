"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

# Tests never reach a real AWS account: dummy credentials, one region, no X-Ray daemon.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "grokvideo")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "GrokVideo")
os.environ.setdefault("POWERTOOLS_DEV", "false")


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
