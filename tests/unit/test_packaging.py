"""The installable package (pyproject.toml) against the layer's pinned files, and the CLI's frame.

Building and installing the wheel for real is tests/integration/test_install.py.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import grokvideo
from grokvideo.cli import app as cli

ROOT = Path(__file__).resolve().parents[2]
LAYER_REQUIREMENTS = ROOT / "layers" / "shared" / "requirements.txt"
DEV_REQUIREMENTS = ROOT / "requirements-dev.txt"
OUTSIDE_LAMBDA = {"boto3"}  # the Lambda runtime provides it, so the layer leaves it out


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _requirements(path: Path) -> list[Requirement]:
    """Every requirement of a pip requirements file; an option line (``-r`` ...) fails to parse."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-r ")]


def _by_name(requirements: list[Requirement]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in requirements}


def _pinned(requirement: Requirement) -> str:
    (spec,) = requirement.specifier
    assert spec.operator == "==", f"{requirement} is not pinned"
    return spec.version


def test_dependencies_are_the_layers_plus_boto3() -> None:
    declared = _by_name([Requirement(d) for d in _pyproject()["project"]["dependencies"]])
    layer = _by_name(_requirements(LAYER_REQUIREMENTS))
    assert set(declared) == set(layer) | OUTSIDE_LAMBDA
    assert not OUTSIDE_LAMBDA & set(layer), "the layer must keep leaving boto3 to the Lambda runtime"


def test_pinned_versions_satisfy_the_declared_ranges() -> None:
    """The versions the layer ships and the tests run on are ones the package accepts."""
    declared = _by_name([Requirement(d) for d in _pyproject()["project"]["dependencies"]])
    pins = _by_name(_requirements(LAYER_REQUIREMENTS) + _requirements(DEV_REQUIREMENTS))
    for name, requirement in declared.items():
        assert name in pins, f"{name} is pinned nowhere"
        version = _pinned(pins[name])
        assert requirement.specifier.contains(version), f"{name}=={version} is outside {requirement}"


def test_build_backend_and_layout() -> None:
    project = _pyproject()
    (backend,) = project["build-system"]["requires"]
    assert canonicalize_name(Requirement(backend).name) == "setuptools"
    assert Requirement(backend).specifier, "pin a minimum setuptools"
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    setuptools = project["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"": "layers/shared"}
    assert setuptools["packages"]["find"] == {"where": ["layers/shared"], "include": ["grokvideo", "grokvideo.*"]}
    # One version, grokvideo.__version__, which --version prints.
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert setuptools["dynamic"]["version"] == {"attr": "grokvideo.__version__"}
    assert project["project"]["scripts"] == {"grokvideo": "grokvideo.cli.app:main"}


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"grokvideo {grokvideo.__version__}\n"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_cli_help(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([flag]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: grokvideo ")
    assert "--version" in out
    for command in ("submit", "edit", "track", "status", "list", "wait", "fetch", "redrive", "events", "doctor"):
        assert f"    {command} " in out, command
    assert "exit codes:" in out


def test_cli_without_a_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("usage: grokvideo ")
    assert "error: no command given" in captured.err


def test_cli_refuses_what_it_does_not_know(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["publish"]) == 2
    assert "invalid choice: 'publish'" in capsys.readouterr().err


def test_cli_names_a_missing_argument(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["submit"]) == 2
    assert "the following arguments are required: prompt" in capsys.readouterr().err
