"""Injected faults: their names, the queue that hands them out, and what each does to an answer."""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .replies import _REASONS, Reply, comet_error, html_reply, json_reply, rate_limited
from .urls import ADMIN_PREFIX, API_PREFIX, VIDEO_PREFIX

API_FAULTS = frozenset(
    {"latency", "timeout", "429", "400", "422", "500", "502", "503", "504", "524"}
    | {"malformed", "empty_202", "401", "403", "drop"}
)
AFTER_CREATE_FAULTS = frozenset({"500", "502", "503", "504", "524", "drop"})  # the ones taking after_create=True
VIDEO_FAULTS = frozenset({"wrong_length", "content_type", "html_body", "slow_body", "disconnect", "redirect", "status"})
FAULTS = API_FAULTS | VIDEO_FAULTS


@dataclass
class Fault:
    """One injected fault: ``remaining`` uses left (negative: until cleared).

    ``probability`` (None: always) is the chance a matching request takes it; ``first_per_path``
    lets only the first request for each distinct path be considered (``seen`` holds those paths).
    """

    name: str
    remaining: int
    path: str
    method: str | None
    params: dict[str, Any]
    probability: float | None = None
    first_per_path: bool = False
    seen: set[str] = field(default_factory=set)

    @property
    def after_create(self) -> bool:
        """True if the request is handled (a create makes its job) before this fault answers."""
        return bool(self.params.get("after_create"))

    def matches(self, method: str, path: str) -> bool:
        """True if this fault applies to a ``method`` request for ``path``."""
        return path.startswith(self.path) and (self.method is None or self.method == method)

    def describe(self) -> dict[str, Any]:
        """JSON view for ``GET /_fake/faults``."""
        view: dict[str, Any] = {
            "fault": self.name,
            "remaining": self.remaining,
            "path": self.path,
            "method": self.method,
            **self.params,
        }
        if self.probability is not None:
            view["probability"] = self.probability
        if self.first_per_path:
            view["first_per_path"] = True
        return view


class FaultBook:
    """Thread-safe queue of faults, consumed one per matching request (first injected first).

    A fault with a ``probability`` is taken by a matching request only when the request's draw
    says so. The probabilistic faults a request matches share one draw ``u`` (uniform in [0, 1),
    from the book's RNG, seeded by ``seed``): in the order they were added, the first is taken
    if ``u < p1``, the second if ``p1 <= u < p1 + p2``, and so on, so each is taken with its own
    probability as long as they add up to at most 1. ``injected()`` tallies every fault taken.

    >>> book = FaultBook(); book.add("503", count=1); book.take("GET", "/grok/v1/videos/x").name
    '503'
    >>> book = FaultBook(seed=1); book.add("500", count=-1, probability=0.25)
    >>> sum(book.take("GET", f"/grok/v1/videos/{i}") is not None for i in range(4000)) in range(900, 1100)
    True
    """

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._rng = random.Random(seed)
        self._taken: Counter[tuple[str, str, str | None]] = Counter()

    def seed(self, seed: int | None) -> None:
        """Restart the draws of probabilistic faults from ``seed`` (None: from the OS)."""
        with self._lock:
            self._rng = random.Random(seed)

    def add(
        self,
        fault: str,
        *,
        count: int = 1,
        path: str | None = None,
        method: str | None = None,
        probability: float | None = None,
        first_per_path: bool = False,
        **params: Any,
    ) -> None:
        """Queue ``fault``; see the package docstring for names and parameters."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(sorted(FAULTS))}")
        if count == 0:
            raise ValueError("count must be >= 1, or negative for 'until cleared'")
        if probability is not None:
            if isinstance(probability, bool) or not isinstance(probability, int | float) or not 0 < probability <= 1:
                raise ValueError("probability must be a number in (0, 1]")
            probability = float(probability)
        if not isinstance(first_per_path, bool):
            raise ValueError("first_per_path must be true or false")
        if "after_create" in params:
            if not isinstance(params["after_create"], bool):
                raise ValueError("after_create must be true or false")
            if params["after_create"] and fault not in AFTER_CREATE_FAULTS:
                raise ValueError(f"after_create applies to {', '.join(sorted(AFTER_CREATE_FAULTS))}, not {fault!r}")
        if path is None:
            path = API_PREFIX if fault in API_FAULTS else VIDEO_PREFIX
        if not path.startswith("/") or path.startswith(ADMIN_PREFIX):
            raise ValueError(f"fault path must start with '/' and not be an admin route: {path!r}")
        entry = Fault(
            fault,
            int(count),
            path,
            method.upper() if method else None,
            dict(params),
            probability=probability,
            first_per_path=first_per_path,
        )
        with self._lock:
            self._faults.append(entry)

    def take(self, method: str, path: str) -> Fault | None:
        """Consume and return the first fault this request takes, if any (see the class docstring)."""
        with self._lock:
            draw: float | None = None
            band = 0.0
            for index, fault in enumerate(self._faults):
                if not fault.matches(method, path):
                    continue
                if fault.first_per_path:
                    if path in fault.seen:
                        continue
                    fault.seen.add(path)
                if fault.probability is not None:
                    if draw is None:
                        draw = self._rng.random()
                    band += fault.probability
                    if draw >= band:
                        continue
                if fault.remaining > 0:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        del self._faults[index]
                self._taken[(fault.name, fault.path, fault.method)] += 1
                return fault
        return None

    def injected(self) -> list[dict[str, Any]]:
        """How many requests took each fault (by name, path and method), since the book was made or reset."""
        with self._lock:
            return [
                {"fault": name, "path": path, "method": method, "count": count}
                for (name, path, method), count in self._taken.items()
            ]

    def pending(self) -> list[dict[str, Any]]:
        """Faults not yet consumed."""
        with self._lock:
            return [fault.describe() for fault in self._faults]

    def clear(self) -> None:
        """Drop every queued fault (the tally of faults taken stays)."""
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """Drop every queued fault and forget the tally."""
        with self._lock:
            self._faults.clear()
            self._taken.clear()


def fault_reply(fault: Fault, path: str) -> Reply | None:
    """The answer that replaces the normal one, or None for faults that alter it instead (and ``drop``)."""
    name, params = fault.name, fault.params
    if name == "429":
        return rate_limited(params.get("retry_after", 1))
    if name == "400":
        code = params.get("code", "task_not_exist")
        return json_reply(400, {"code": code, "message": params.get("message", code), "data": None})
    if name == "422":
        return comet_error(422, "unprocessable_entity", params.get("message", "unprocessable request"))
    if name == "401":
        return comet_error(401, "invalid_api_key", "invalid token")
    if name == "403":
        return comet_error(403, params.get("code", "access_denied"), "access denied")
    if name in ("500", "502", "503", "504", "524"):
        status = int(name)
        if params.get("body", "json") == "html":
            return html_reply(status, f"{status} {_REASONS.get(status, 'Server Error')}")
        return comet_error(status, params.get("code", "upstream_error"), f"upstream error {status}")
    if name == "malformed":
        return html_reply(200, "Welcome", "This is not the JSON you are looking for.")
    if name == "empty_202":
        return Reply(202, b"", content_type=None)
    if name == "html_body":
        return html_reply(200, "Video unavailable", "The requested video is not available.")
    if name == "redirect":
        location = params.get("location", path)
        return Reply(int(params.get("code", 302)), b"", content_type=None, headers={"Location": location})
    if name == "status":
        status = int(params.get("code", 404))
        return html_reply(status, f"{status} Error", "Access to this object failed.")
    return None


def alter_reply(fault: Fault, reply: Reply) -> None:
    """Apply a body fault (wrong_length, content_type, slow_body, disconnect) to ``reply``."""
    params = fault.params
    if fault.name == "wrong_length":
        reply.announce = int(params.get("announce", (reply.length or 0) + 1024))
    elif fault.name == "content_type":
        reply.content_type = params.get("value", "text/html")
    elif fault.name == "slow_body":
        reply.chunk_delay = float(params.get("delay", 0.05))
        reply.chunk = int(params.get("chunk", 65536))
    elif fault.name == "disconnect":
        reply.cut_after = int(params.get("after", (reply.length or 0) // 2))
