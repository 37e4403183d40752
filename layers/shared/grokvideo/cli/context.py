"""What every command gets: the parsed options, the stack (found on first use), the clock and the
terminal. Tests build one around moto-backed resources and a fake clock."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from grokvideo.cli.deployment import Deployment


@dataclass
class Context:
    args: argparse.Namespace
    find: Callable[[], Deployment]  # the stack named by --stack/--local, resolved on first use
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    err: IO[str] = field(default_factory=lambda: sys.stderr)
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    _deployment: Deployment | None = None

    @property
    def deployment(self) -> Deployment:
        if self._deployment is None:
            self._deployment = self.find()
        return self._deployment

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    @property
    def interactive(self) -> bool:
        """Whether progress may redraw lines in place (stderr is a terminal)."""
        return bool(getattr(self.err, "isatty", lambda: False)())

    def say(self, message: str) -> None:
        """A line for the person (stderr: stdout stays for results, and for JSON)."""
        print(message, file=self.err, flush=True)
