"""The package as a user gets it: ``pip wheel .``, installed into a fresh virtualenv, ``grokvideo`` run.

Needs the package registry (or a pip cache holding setuptools and the runtime dependencies):
the wheel is built in an isolated build environment, and installed with its declared
dependencies, so a dependency missing from pyproject.toml fails here. About 20 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import grokvideo

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "shared" / "grokvideo"


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def script(self) -> Path:
        return self.venv / "bin" / "grokvideo"


def _env() -> dict[str, str]:
    """This environment without what would let the test's own interpreter or sources leak in."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def _ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    command = " ".join(result.args)
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    tmp = tmp_path_factory.mktemp("install")
    # Build from a copy of what the build reads (pyproject.toml, the package in its layer folder),
    # so setuptools' build/ and egg-info never land in the working tree.
    source = tmp / "source"
    (source / "layers" / "shared").mkdir(parents=True)
    shutil.copy2(ROOT / "pyproject.toml", source / "pyproject.toml")
    shutil.copytree(PACKAGE, source / "layers" / "shared" / "grokvideo", ignore=shutil.ignore_patterns("__pycache__"))
    pip = ("-m", "pip", "--disable-pip-version-check", "--no-input")
    _ok(_run(sys.executable, *pip, "wheel", ".", "--no-deps", "-w", tmp / "dist", cwd=source))
    (wheel,) = (tmp / "dist").glob("grokvideo-*.whl")
    venv = tmp / "venv"
    _ok(_run(sys.executable, "-m", "venv", venv, cwd=tmp))
    _ok(_run(venv / "bin" / "python", *pip, "install", "--quiet", wheel, cwd=tmp))
    yield Installed(wheel, venv)


def test_wheel_holds_the_package_and_nothing_else(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as whl:
        names = whl.namelist()
    dist_info = f"grokvideo-{grokvideo.__version__}.dist-info/"
    assert {n.split("/", 1)[0] + "/" for n in names} == {"grokvideo/", dist_info}
    shipped = {n.removeprefix("grokvideo/") for n in names if n.startswith("grokvideo/")}
    assert shipped == {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")}


def test_grokvideo_help_and_version(installed: Installed) -> None:
    assert installed.script.is_file()
    help_ = _ok(_run(installed.script, "--help", cwd=installed.venv))
    assert help_.stdout.startswith("usage: grokvideo ") and "--version" in help_.stdout
    version = _ok(_run(installed.script, "--version", cwd=installed.venv))
    assert version.stdout == f"grokvideo {grokvideo.__version__}\n"
    bare = _run(installed.script, cwd=installed.venv)
    assert bare.returncode == 2 and "no command given" in bare.stderr


def test_installed_commands_run_and_explain_a_missing_stack(installed: Installed) -> None:
    """A command that needs a stack runs from the installed package (boto3 and all) and, with no
    local stack anywhere above its folder, says how to start one (exit 6)."""
    result = _run(installed.script, "--local", "list", cwd=installed.venv)
    assert result.returncode == 6, result.stderr
    assert "no local stack here: run `make local-up`" in result.stderr


def test_declared_dependencies_import_every_module(installed: Installed) -> None:
    """The installed package imports whole with only what pyproject.toml declares (isolated mode:
    nothing from the repository or the test's own virtualenv on the path)."""
    _ok(_run(installed.python, "-m", "pip", "check", "--disable-pip-version-check", cwd=installed.venv))
    code = (
        "import importlib, pkgutil, grokvideo\n"
        "for m in pkgutil.iter_modules(grokvideo.__path__, 'grokvideo.'):\n"
        "    importlib.import_module(m.name)\n"
        "import boto3\n"
        "print(grokvideo.__file__)\n"
    )
    result = _ok(_run(installed.python, "-I", "-c", code, cwd=installed.venv))
    assert Path(result.stdout.strip()).is_relative_to(installed.venv)


def test_pipx_install_from_the_clone(tmp_path: Path) -> None:
    """``pipx install .`` in the repository, into a pipx home of the test's own (the user's is
    untouched); pipx is pinned in requirements-dev.txt."""
    env = _env() | {
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(tmp_path / "bin"),
        "PIPX_MAN_DIR": str(tmp_path / "man"),
        "PIPX_DEFAULT_PYTHON": sys.executable,
    }
    installing = subprocess.run(
        [sys.executable, "-m", "pipx", "install", "."],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    _ok(installing)
    version = _ok(_run(tmp_path / "bin" / "grokvideo", "--version", cwd=tmp_path))
    assert version.stdout == f"grokvideo {grokvideo.__version__}\n"
