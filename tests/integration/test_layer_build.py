"""The shared layer as ``sam build`` makes it (layers/shared/Makefile): exactly its lock, pure Python.

The layer used to say "pure Python" and ship wrapt's C extension (the X-Ray SDK's, through
Powertools' tracer extra), built for arm64. It is pure now by construction (pip may take only
wheels built for no machine: wrapt's pure-Python wheel), and these tests hold it to that, and
check that tracing (EnableTracing) still works on the pure wrapt.

Needs the package registry (or a pip cache holding the locked files). About 5 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "shared"
# What the build removes again: the Lambda runtime provides it (RUNTIME_PROVIDED in the Makefile).
RUNTIME_PROVIDED = {"botocore", "python-dateutil", "six"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("layer")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "MAKEFLAGS")}
    proc = subprocess.run(
        ["make", "-C", str(LAYER), "build-SharedLayer", f"ARTIFACTS_DIR={out}", f"PYTHON={sys.executable}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    yield out / "python"


def _locked() -> dict[str, str]:
    text = (LAYER / "requirements.lock").read_text(encoding="utf-8").replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        line = line.split(" --hash=", 1)[0].split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def _wheels(site: Path) -> dict[str, dict[str, object]]:
    """{distribution: {"version", "purelib", "tags"}} from each installed .dist-info."""
    found: dict[str, dict[str, object]] = {}
    for dist in site.glob("*.dist-info"):
        meta = Parser().parsestr((dist / "METADATA").read_text(encoding="utf-8"), headersonly=True)
        wheel = Parser().parsestr((dist / "WHEEL").read_text(encoding="utf-8"), headersonly=True)
        found[canonicalize_name(meta["Name"])] = {
            "version": meta["Version"],
            "purelib": wheel["Root-Is-Purelib"],
            "tags": set(wheel.get_all("Tag") or []),
        }
    return found


def test_the_layer_holds_no_compiled_extension(site: Path) -> None:
    compiled = [str(p.relative_to(site)) for p in site.rglob("*") if p.suffix in (".so", ".pyd", ".dylib")]
    assert compiled == []
    for name, wheel in _wheels(site).items():
        assert wheel["purelib"] == "true", name
        assert all(str(tag).endswith("-none-any") for tag in wheel["tags"]), (name, wheel["tags"])  # type: ignore[attr-defined]


def test_the_layer_is_the_lock_less_what_the_runtime_provides(site: Path) -> None:
    installed = {name: wheel["version"] for name, wheel in _wheels(site).items()}
    locked = _locked()
    assert installed == {name: version for name, version in locked.items() if name not in RUNTIME_PROVIDED}
    assert "wrapt" in installed  # the X-Ray SDK's, for EnableTracing
    assert (site / "grokvideo" / "__init__.py").is_file() and not (site / "grokvideo" / "cli").exists()
    assert not (site / "botocore").exists() and not (site / "boto3").exists()


_TRACE = """
import json, sys
sys.path.insert(0, sys.argv[1])  # the layer first, as Lambda puts /opt/python before the runtime's boto3
import wrapt
from aws_xray_sdk.core import xray_recorder
from aws_lambda_powertools import Tracer


class Collector:  # instead of the UDP emitter to the X-Ray daemon
    sent = []

    def send_entity(self, entity):
        self.sent.append(entity.to_dict())

    def set_daemon_address(self, address):
        pass


xray_recorder.configure(emitter=Collector(), context_missing="IGNORE_ERROR")
tracer = Tracer(service="grokvideo", auto_patch=False)


@tracer.capture_method(capture_response=False)
def plus_one(x):
    return x + 1


answer = plus_one(1)
print(json.dumps({
    "answer": answer,
    "sent": [s.get("name") for e in Collector.sent for s in [e, *e.get("subsegments", [])]],
    "wrapt": wrapt.__file__,
    "compiled": sorted(
        name for name, m in sys.modules.items() if str(getattr(m, "__file__", "")).endswith((".so", ".pyd"))
        and str(m.__file__).startswith(sys.argv[1])
    ),
    "c_wrappers": "wrapt._wrappers" in sys.modules,
}))
"""


def test_tracing_works_on_the_pure_wrapt(site: Path) -> None:
    """What a function does when the stack traces: Powertools' Tracer decorates through the X-Ray
    SDK, whose wrappers are wrapt's, here its pure-Python ones."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_XRAY", "PYTHONPATH"))},
        "LAMBDA_TASK_ROOT": "/var/task",  # Powertools traces in Lambda only
        "POWERTOOLS_TRACE_DISABLED": "false",
        # What Lambda gives a traced invocation: the SDK hangs the function's subsegments on it.
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    }
    proc = subprocess.run(
        [sys.executable, "-c", _TRACE, str(site)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["answer"] == 2
    assert seen["sent"] == ["## __main__.plus_one"]  # its subsegment reached the emitter
    assert Path(seen["wrapt"]).is_relative_to(site)
    assert seen["compiled"] == [] and seen["c_wrappers"] is False
