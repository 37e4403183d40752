"""Print template.yaml as SAM transforms it (JSON), offline: ``<sam venv>/bin/python tests/sam_transform.py``.

Run by tests/unit/test_template.py with the SAM CLI's own interpreter (.venvs/sam, where
aws-sam-translator lives), so the tests can read the IAM roles SAM generates, which the template
does not show. Nothing is built or uploaded: code locations become placeholder S3 URIs, and
managed policies stay ARNs (an empty managed-policy map; SAM does not need it for ARNs).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def transformed(template_path: Path = TEMPLATE, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse(template_path.read_text())
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = f"s3://placeholder-bucket/{props[key]}"
    return dict(transform(template, parameters or {}, _NoManagedPolicies()))


if __name__ == "__main__":
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    params = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    json.dump(transformed(parameters=params), sys.stdout, indent=1, default=str)
