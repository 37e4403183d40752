"""The ``/_fake/`` admin routes: control a fake running in another process over HTTP."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from .replies import Reply, json_reply

if TYPE_CHECKING:
    from .fake import FakeCometAPI


class _Admin:
    """The ``/_fake/`` control routes, for a fake running in another process. Never faulted or logged."""

    def __init__(self, fake: FakeCometAPI) -> None:
        self.fake = fake

    def handle(self, method: str, path: str, body: bytes) -> Reply:
        try:
            payload = json.loads(body) if body else {}
            if not isinstance(payload, dict):
                raise ValueError("body must be a JSON object")
            return self._route(method, path.rstrip("/"), payload)
        except (ValueError, TypeError) as exc:
            return json_reply(400, {"error": str(exc)})
        except KeyError as exc:
            return json_reply(404, {"error": f"unknown job {exc}"})

    def _route(self, method: str, path: str, payload: dict[str, Any]) -> Reply:
        fake = self.fake
        if (method, path) == ("GET", "/_fake/health"):
            return json_reply(200, {"ok": True})
        if (method, path) == ("GET", "/_fake/jobs"):
            return json_reply(200, {"jobs": fake.jobs()})
        if (method, path) == ("POST", "/_fake/jobs"):
            allowed = {
                "request_id",
                "outcome",
                "ready_after",
                "shape",
                "video_size",
                "model",
                "duration",
                "not_found_for",
                "hostile",
            }
            unknown = payload.keys() - allowed
            if unknown:
                raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
            request_id = fake.add_job(payload.pop("request_id", None), **payload)
            return json_reply(200, {"request_id": request_id, "video_url": fake._video_url(request_id)})
        finish = re.match(r"^/_fake/jobs/([^/]+)/finish$", path)
        if method == "POST" and finish:
            fake.finish_now(finish.group(1))
            return json_reply(200, fake.job(finish.group(1)).summary(fake._video_url(finish.group(1))))
        if (method, path) == ("GET", "/_fake/faults"):
            return json_reply(200, {"faults": fake.faults.pending(), "injected": fake.faults_injected()})
        if (method, path) == ("POST", "/_fake/fault_seed"):
            seed = payload.get("seed")
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
                raise ValueError("seed must be an integer or null")
            fake.seed_faults(seed)
            return json_reply(200, {"seed": seed})
        if (method, path) == ("POST", "/_fake/faults"):
            name = payload.pop("fault", None)
            if not isinstance(name, str):
                raise ValueError("fault (a string) is required")
            fake.inject(name, **payload)
            return json_reply(200, {"faults": fake.faults.pending()})
        if (method, path) == ("DELETE", "/_fake/faults"):
            fake.clear_faults()
            return json_reply(200, {"faults": []})
        if (method, path) == ("POST", "/_fake/latency"):
            fake.set_latency(payload.get("seconds", 0))
            return json_reply(200, {"seconds": fake._latency})
        if (method, path) == ("POST", "/_fake/api_key"):
            fake.set_api_key(payload.get("api_key"))
            return json_reply(200, {"revoked": fake.api_key is None})
        if (method, path) == ("POST", "/_fake/create_rate"):
            unknown = payload.keys() - {"per_second", "burst"}
            if unknown:
                raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
            fake.set_create_rate(payload.get("per_second"), payload.get("burst", 1))
            rate = fake.create_rate
            return json_reply(200, {"per_second": rate[0] if rate else None, "burst": rate[1] if rate else None})
        if (method, path) == ("GET", "/_fake/creates"):
            accepted = [list(item) for item in fake.create_log]
            return json_reply(200, {"accepted": accepted, "rate_limited": fake.rate_limited_creates})
        if (method, path) == ("GET", "/_fake/requests"):
            return json_reply(200, {"requests": [list(item) for item in fake.requests]})
        if (method, path) == ("POST", "/_fake/reset"):
            fake.reset()
            return json_reply(200, {"ok": True})
        return json_reply(404, {"error": f"no admin route {method} {path}"})
