"""Registration: a ``Video Job Track Requested`` event becomes a pending job, or a rejection.

An invalid request never reaches a URL or the table: it is answered with ``Video Request
Rejected`` naming every offending field.

Use (needs AWS or the provider, so not a doctest)::

    Registrar(store, publisher).register({"request_id": "4b2cd27e"}, now=0)
    # -> Registration(request_id='4b2cd27e', created=True, errors=[])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from grokvideo import events
from grokvideo.errors import ValidationError
from grokvideo.jobs import JobStore
from grokvideo.tasks import TaskResumer
from grokvideo.validation import parse_track_request


@dataclass(frozen=True, slots=True)
class Registration:
    request_id: str | None
    created: bool
    errors: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        return bool(self.errors)


@dataclass(frozen=True, slots=True)
class Registrar:
    """The register function's logic on its store and publisher (and Step Functions, for the
    task of a rejected request: default boto3's, its client made only when a token needs it)."""

    store: JobStore
    publisher: events.Publisher
    tasks: TaskResumer = field(default_factory=TaskResumer)

    def register(self, detail: Mapping[str, Any], *, now: int) -> Registration:
        """See ``register_track_request``."""
        return register_track_request(detail, store=self.store, publisher=self.publisher, now=now, tasks=self.tasks)


def register_track_request(
    detail: Mapping[str, Any],
    *,
    store: JobStore,
    publisher: events.Publisher,
    now: int,
    tasks: TaskResumer,
) -> Registration:
    """Validate the detail of a track request and add the job (idempotent on ``request_id``).

    A rejected request that carried a valid ``task_token`` fails its task too; if Step Functions
    does not take that (``TaskResumeError``), the invocation fails and is retried like a refused
    PutEvents.
    """
    try:
        request = parse_track_request(detail)
    except ValidationError as err:
        tasks.reject(detail, err.errors, publisher)
        return Registration(request_id=None, created=False, errors=err.errors)
    created = store.register(
        request.request_id,
        now=now,
        client_ref=request.client_ref,
        metadata=request.metadata,
        task_token=request.task_token,
    )
    return Registration(request_id=request.request_id, created=created)
