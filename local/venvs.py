"""The two virtualenvs the local stack runs from, both on python3.13 (what Lambda runs).

.venvs/ministack holds the emulator (ministack runs handlers on its own interpreter) and .venvs/sam
the SAM CLI; each is (re)installed only when its pinned requirements change.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from local.common import REPO, say

VENVS = REPO / ".venvs"
MINISTACK_VENV = VENVS / "ministack"
SAM_VENV = VENVS / "sam"

# Pinned: the emulator, the SAM transform it applies server-side, and the boto3 that Lambda code
# imports there (ministack runs handlers on its own interpreter; boto3 must match its botocore).
MINISTACK_REQUIREMENTS = ["ministack==1.5.33", "aws-sam-translator==1.115.0", "boto3==1.43.106"]
SAM_REQUIREMENTS = ["aws-sam-cli==1.170.0"]


def _python313() -> str:
    """A working python3.13: $PYTHON313, PATH (pyenv shims may lie), then pyenv's versions."""
    candidates = [os.environ.get("PYTHON313", ""), shutil.which("python3.13") or ""]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(str(p) for p in pyenv_root.glob("versions/3.13*/bin/python3.13"))
    candidates += ["/usr/local/bin/python3.13", "/usr/bin/python3.13"]
    for cand in filter(None, candidates):
        try:
            out = subprocess.run(
                [cand, "-c", "import sys, venv; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == "(3, 13)":
            return cand
    raise SystemExit(
        "python3.13 not found (Lambda runs python3.13 and ministack runs handlers on "
        "its own interpreter): install it or set PYTHON313=/path/to/python3.13"
    )


def _ensure_venv(path: Path, requirements: list[str], python: str | None = None) -> None:
    marker = path / ".requirements"
    wanted = "\n".join(requirements)
    if (path / "bin" / "python").exists() and marker.exists() and marker.read_text() == wanted:
        return
    if not (path / "bin" / "python").exists():
        say(f"creating {path.relative_to(REPO)}")
        subprocess.run([python or _python313(), "-m", "venv", str(path)], check=True)
    say(f"installing {' '.join(requirements)} into {path.relative_to(REPO)}")
    subprocess.run(
        [
            str(path / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-qq",  # errors only: this machine's pip config warns about every package otherwise
            "--disable-pip-version-check",
            *requirements,
        ],
        check=True,
    )
    marker.write_text(wanted)


def ensure_venvs() -> None:
    _ensure_venv(MINISTACK_VENV, MINISTACK_REQUIREMENTS)
    _ensure_venv(SAM_VENV, SAM_REQUIREMENTS)
