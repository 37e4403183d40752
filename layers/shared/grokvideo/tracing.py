"""X-Ray tracing of the handlers, optional: the X-Ray SDK is imported only by a function that traces.

Powertools' ``Tracer()`` imports the X-Ray SDK even when tracing is disabled, and when it is on
patches every library the SDK knows at import time (requests, sqlite3, httpx...). Measured
(``benchmarks/cold_start.py``), that was the largest part of a handler's import: 1.9x-2.1x a bare
``import boto3``. And ``Tracing: Active`` records a trace for most invocations, billed per trace
(``benchmarks/cost.py``). So tracing is off unless the stack's ``EnableTracing`` parameter is true,
which sets ``Tracing: Active`` on the functions and ``POWERTOOLS_TRACE_DISABLED=false``.

``handler_tracer()`` is Powertools' ``Tracer`` when the function traces (in Lambda, and
POWERTOOLS_TRACE_DISABLED not true: Powertools' own rule) and otherwise a ``NoTracer`` whose
decorators hand the function back unchanged, in both the ``@tracer.capture_method`` and the
``@tracer.capture_method(capture_response=False)`` forms.

>>> tracer = handler_tracer({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"})
>>> @tracer.capture_method(capture_response=False)
... def plus_one(x):
...     return x + 1
>>> plus_one(1), type(tracer).__name__
(2, 'NoTracer')
>>> in_lambda = {"LAMBDA_TASK_ROOT": "/var/task"}
>>> traces(in_lambda), traces({}), traces({**in_lambda, "AWS_SAM_LOCAL": "true"})
(True, False, False)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar, cast, overload

from aws_lambda_powertools.shared import constants
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

F = TypeVar("F", bound=Callable[..., Any])


class HandlerTracer(Protocol):
    """What the handlers use of Powertools' ``Tracer``: its two decorators, bare or with options
    (typed so that a decorated handler keeps its own signature)."""

    @overload
    def capture_lambda_handler(self, lambda_handler: F) -> F: ...
    @overload
    def capture_lambda_handler(
        self, lambda_handler: None = None, capture_response: bool | None = None, capture_error: bool | None = None
    ) -> Callable[[F], F]: ...

    @overload
    def capture_method(self, method: F) -> F: ...
    @overload
    def capture_method(
        self, method: None = None, capture_response: bool | None = None, capture_error: bool | None = None
    ) -> Callable[[F], F]: ...


class NoTracer:
    """A tracer that traces nothing: each decorator returns the function it is given."""

    @overload
    def capture_lambda_handler(self, lambda_handler: F) -> F: ...
    @overload
    def capture_lambda_handler(
        self, lambda_handler: None = None, capture_response: bool | None = None, capture_error: bool | None = None
    ) -> Callable[[F], F]: ...
    def capture_lambda_handler(
        self, lambda_handler: F | None = None, capture_response: bool | None = None, capture_error: bool | None = None
    ) -> F | Callable[[F], F]:
        return _unchanged(lambda_handler)

    @overload
    def capture_method(self, method: F) -> F: ...
    @overload
    def capture_method(
        self, method: None = None, capture_response: bool | None = None, capture_error: bool | None = None
    ) -> Callable[[F], F]: ...
    def capture_method(
        self, method: F | None = None, capture_response: bool | None = None, capture_error: bool | None = None
    ) -> F | Callable[[F], F]:
        return _unchanged(method)


def _unchanged(function: F | None) -> F | Callable[[F], F]:
    if function is not None:
        return function
    return _identity  # called with options only: the decorator comes next


def _identity(decorated: F) -> F:
    return decorated


def traces(env: Mapping[str, str] | None = None) -> bool:
    """Whether Powertools would trace here: in Lambda (not SAM local or Chalice local) and not
    disabled by POWERTOOLS_TRACE_DISABLED (read by Powertools' own helper and names)."""
    e = os.environ if env is None else env
    if resolve_truthy_env_var_choice(env=e.get(constants.TRACER_DISABLED_ENV, "false")):
        return False
    local = e.get(constants.SAM_LOCAL_ENV) or e.get(constants.CHALICE_LOCAL_ENV)
    return bool(e.get(constants.LAMBDA_TASK_ROOT_ENV)) and not local


def handler_tracer(env: Mapping[str, str] | None = None, **options: Any) -> HandlerTracer:
    """Powertools' ``Tracer(**options)`` (and the X-Ray SDK) when the function traces, else a
    ``NoTracer``."""
    if not traces(env):
        return NoTracer()
    from aws_lambda_powertools import Tracer

    return cast(HandlerTracer, Tracer(**options))
