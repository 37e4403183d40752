"""Fixtures of the unit tests: template.yaml as cfn-lint decodes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(scope="module")
def tpl() -> dict[str, Any]:
    """The whole template, decoded once per test module (a module may not change it for another)."""
    template, matches = decode(str(TEMPLATE))
    assert not matches, [str(m) for m in matches]
    assert template is not None
    return template


@pytest.fixture(scope="module")
def res(tpl: dict[str, Any]) -> dict[str, Any]:
    """Its resources by logical id."""
    return dict(tpl["Resources"])
