"""Run the ``grokvideo`` command in-process against a given deployment, capturing what it prints."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grokvideo.cli import app
from grokvideo.cli.context import Context
from grokvideo.cli.deployment import Deployment


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Cli:
    """``cli("status", "abc")`` runs ``grokvideo status abc`` on ``deployment``.

    ``clock`` and ``sleep`` default to the real ones; a test that waits can make ``sleep`` move
    its own clock and drive the stack forward (``on_sleep``).
    """

    deployment: Deployment
    clock: Callable[[], float] | None = None
    on_sleep: Callable[[float], None] | None = None
    slept: list[float] = field(default_factory=list)

    def __call__(self, *argv: str) -> CliResult:
        out, err = io.StringIO(), io.StringIO()

        def sleep(seconds: float) -> None:
            self.slept.append(seconds)
            if self.on_sleep:
                self.on_sleep(seconds)

        def context(args: Any) -> Context:
            ctx = Context(args, lambda: self.deployment, out=out, err=err)
            if self.clock:
                ctx.clock = self.clock
            if self.on_sleep or self.clock:
                ctx.sleep = sleep
            return ctx

        code = app.main(list(argv), context=context)
        return CliResult(code, out.getvalue(), err.getvalue())
