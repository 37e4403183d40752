"""The installable package (pyproject.toml) against the layer's pinned files, the hashed locks
against the pins they were written from, and the CLI's frame.

Building and installing the wheel for real is tests/integration/test_install.py; building the
layer from its lock, tests/integration/test_layer_build.py.
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
CHECKOV_REQUIREMENTS = ROOT / "requirements-checkov.txt"
# What is installed: each pinned file's lock (`make lock`), every file by its hash.
LOCKS = {
    LAYER_REQUIREMENTS: ROOT / "layers" / "shared" / "requirements.lock",
    DEV_REQUIREMENTS: ROOT / "requirements-dev.lock",
    CHECKOV_REQUIREMENTS: ROOT / "requirements-checkov.lock",
}
OUTSIDE_LAMBDA = {"boto3"}  # the Lambda runtime provides it, so the layer leaves it out


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _requirements(path: Path) -> list[Requirement]:
    """Every requirement of a pip requirements file; an option line (``-r`` ...) fails to parse."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-r ")]


def _locked(path: Path) -> list[tuple[Requirement, list[str]]]:
    """A hashed lock's entries: each requirement with its ``--hash`` values (continued lines joined)."""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    entries = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement, *options = line.split(" --hash=")
        entries.append((Requirement(requirement.strip()), [o.strip() for o in options]))
    return entries


def _pins(path: Path) -> dict[str, str]:
    """{name: version} of a requirements file and the files it includes (``-r``)."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            pins |= _pins(path.parent / line.removeprefix("-r ").strip())
        elif line:
            requirement = Requirement(line)
            pins[canonicalize_name(requirement.name)] = _pinned(requirement)
    return pins


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


def test_a_lock_entry_is_its_requirement_and_hashes(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    lock.write_text(
        "# make lock\nsix==1.17.0 \\\n    --hash=sha256:ab \\\n    --hash=sha256:cd\n    # via x\n"
        "numpy==2.4.6 ; python_full_version < '3.12' \\\n    --hash=sha256:ef\n",
        encoding="utf-8",
    )
    entries = [(str(r), hashes) for r, hashes in _locked(lock)]
    assert entries == [
        ("six==1.17.0", ["sha256:ab", "sha256:cd"]),
        ('numpy==2.4.6; python_full_version < "3.12"', ["sha256:ef"]),
    ]


@pytest.mark.parametrize("pinned", list(LOCKS), ids=lambda p: p.name)
def test_each_lock_holds_every_pin_at_its_version_with_hashes(pinned: Path) -> None:
    """A pin changed without `make lock` fails here: the lock is what gets installed."""
    entries = _locked(LOCKS[pinned])
    assert entries and all(hashes for _, hashes in entries), "every locked file needs its hashes"
    assert all(h.startswith("sha256:") for _, hashes in entries for h in hashes)
    locked: dict[str, set[str]] = {}
    for requirement, _ in entries:
        locked.setdefault(canonicalize_name(requirement.name), set()).add(_pinned(requirement))
    pins = _pins(pinned)
    assert pins
    for name, version in pins.items():
        assert locked.get(name) == {version}, f"{name}=={version} is locked as {locked.get(name)}: run make lock"
    # Extras a pin asks for are locked too (moto[dynamodb,...] needs what its extras pull in).
    if pinned == DEV_REQUIREMENTS:
        assert {"py-partiql-parser", "flask"} <= set(locked)


def test_the_layer_lock_leaves_boto3_to_the_runtime_and_holds_only_what_the_layer_needs() -> None:
    locked = {canonicalize_name(r.name) for r, _ in _locked(LOCKS[LAYER_REQUIREMENTS])}
    assert "boto3" not in locked and "s3transfer" not in locked
    # Powertools' tracer extra: the X-Ray SDK (and its botocore, which the build drops again).
    assert {"aws-lambda-powertools", "urllib3", "aws-xray-sdk", "wrapt"} <= locked


def test_every_install_checks_the_lock_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements-dev.lock" in makefile
    assert "--require-hashes -r requirements-checkov.lock" in makefile
    assert "--no-build-isolation -e ." in makefile  # the editable install builds with the locked setuptools
    layer = (ROOT / "layers" / "shared" / "Makefile").read_text(encoding="utf-8")
    assert "--require-hashes" in layer and "--requirement requirements.lock" in layer
    # Pure Python by construction: pip may take only wheels built for no machine.
    assert "--platform any" in layer and "--only-binary=:all:" in layer
