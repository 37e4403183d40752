"""What every part of the local stack shares: where its files live, what it deploys, `say`."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCAL = REPO / ".local"
OUTPUTS_FILE = LOCAL / "outputs.json"

REGION = "us-east-1"
ACCOUNT_ID = "000000000000"
STACK_NAME = "grokvideo"


def say(msg: str) -> None:
    print(f"[stack] {msg}", flush=True)
