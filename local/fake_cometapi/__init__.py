"""A fake CometAPI (Grok video routes) for tests, benchmarks and the demo. Standard library only.

It speaks the provider's API as ``docs/PROVIDER.md`` describes it, serves the video bytes the
status answer points at, and injects faults on demand. Three ways to use it:

In a test (in-process, one thread per connection)::

    with FakeCometAPI(ready_after=0.5) as fake:
        rid = fake.add_job(outcome="done")
        fake.inject("503", count=2)                       # the next two API calls answer 503
        fake.set_create_rate(2, burst=1)                  # creates past 2 a second answer 429
        ...  # point the client at fake.base_url with api key "test-key"

Alone (prints ``fake CometAPI listening on http://127.0.0.1:PORT`` and serves until SIGTERM/SIGINT)::

    python -m local.fake_cometapi --port 0 --ready-after 5 --auto-jobs --create-rate 2 --verbose

From another process (demo, system tests), over the admin routes under ``/_fake/``::

    POST   /_fake/jobs              {"outcome": "done", "ready_after": 2, "video_size": 1048576}
                                    (also request_id, shape, model, duration, not_found_for, hostile)
                                    -> {"request_id": "...", "video_url": "http://.../videos/<id>.mp4"}
    GET    /_fake/jobs              -> {"jobs": [{"request_id", "outcome", "status", "nested_status",
                                                  "progress", "final", "polls", ...}]}
    POST   /_fake/jobs/{id}/finish  -> the job's summary, now final
    POST   /_fake/faults            {"fault": "429", "count": 2, "path": "/grok/v1/videos/", "retry_after": 1}
                                    (also method, probability, first_per_path and the fault's own)
    GET    /_fake/faults            -> {"faults": [not yet consumed], "injected": [{"fault", "path",
                                        "method", "count"}, ...]} (requests that took each fault)
    DELETE /_fake/faults            drop the faults not yet consumed (the tally stays)
    POST   /_fake/fault_seed        {"seed": 7}: restart the draws of probabilistic faults
    POST   /_fake/latency           {"seconds": 0.2}
    POST   /_fake/api_key           {"api_key": "new"} or {"api_key": null} (revoked: every call 401)
    POST   /_fake/create_rate       {"per_second": 2, "burst": 1} or {"per_second": null} (no limit)
                                    -> {"per_second": 2.0, "burst": 1} (both null: no limit)
    GET    /_fake/creates           -> {"accepted": [[wall_time, "generations", "<id>"], ...], "rate_limited": 0}
    GET    /_fake/requests          -> {"requests": [["GET", "/grok/v1/videos/<id>"], ...]}
    POST   /_fake/reset             forget jobs, faults (and their tally), requests, creates; latency 0;
                                    initial key and create rate
    GET    /_fake/health

Provider routes (``Authorization: Bearer <api_key>`` required, else 401 in the global error envelope):

- ``POST /grok/v1/videos/generations`` and ``/edits`` -> ``{"request_id": "<uuid4>"}``. ``prompt`` is
  required; generations take ``duration`` int 1-15 (omitted: the job reports 8 s, as billed); edits
  need ``video.url``; ``size``/``seconds`` answer 422; multipart or non-JSON bodies answer 400.
  Markers in the prompt steer the job: ``[fail]``, ``[moderated]``, ``[expired]``, ``[no_url]``,
  ``[not_found]`` pick the outcome (default ``done``), ``[ready_after=SECONDS]`` and
  ``[video_size=BYTES]`` override those settings, ``[hostile]`` makes the job hostile (below).
- Create rate limit (``create_rate=``/``create_burst=``, :meth:`FakeCometAPI.set_create_rate`, off by
  default): a token bucket shared by both create routes, ``burst`` tokens refilled at ``per_second``.
  A valid, authorized create that finds no token answers HTTP 429 ``rate_limit_exceeded`` in the global
  error envelope with ``Retry-After`` (whole seconds until a token is back, at least 1) and makes no job.
  401s and bad bodies take no token; polls are never limited. :attr:`FakeCometAPI.create_log` lists
  ``(wall_time, route, request_id)`` of every create that made a job (route ``generations`` or
  ``edits``); :attr:`FakeCometAPI.rate_limited_creates` counts the 429s of this limit (not injected ones).
- ``GET /grok/v1/videos/{id}`` -> the job's state at this moment (see :class:`Job`); unknown id ->
  HTTP 400 ``{"code": "task_not_exist", ...}`` unless ``auto_jobs`` creates it (outcome picked from
  the id by :func:`outcome_from_id`).

Video route (no auth, like the provider's public temporary URL): ``GET|HEAD /videos/{id}.mp4``.

Outcomes: ``done``, ``failed``, ``expired``, ``moderated`` (success envelope, respect_moderation false,
no URL), ``no_url`` (done, no URL anywhere), ``not_found`` (HTTP 400 ``task_not_exist`` forever).
A ``hostile`` job (``POST /_fake/jobs {"hostile": true}``, ``add_job(hostile=True)`` or ``[hostile]``) answers,
once final, with numbers no real job has: ``finish_time`` 3e11 (the year 11476, envelope shape), the video's
``duration`` 1e200 and ``cost_in_usd_ticks`` 1e-200.

Shapes: ``envelope`` (CometAPI wrapper, as in ``tests/fixtures/get-video-success.json``), ``bare``
(the xAI object; HTTP 202 while pending), ``request_id_only`` (``{"request_id"}`` with HTTP 202 while
pending, then like ``bare``).

Faults (:meth:`FakeCometAPI.inject`) are consumed one per matching request, first injected first
(``count=N`` uses; a negative count lasts until cleared). With ``probability=P`` a matching request
takes the fault only with that chance; the probabilistic faults one request matches share one
draw from a seeded RNG (``fault_seed=``, ``--fault-seed``, ``POST /_fake/fault_seed``), each taking
its own band of it, so ``500`` at 0.2 and ``timeout`` at 0.1 hit 20 % and 10 % of the requests
(never both). ``first_per_path=True`` considers only the first request for each distinct path (e.g.
the first download of each video). ``fake.faults_injected()`` (``GET /_fake/faults``) counts the
requests that took each fault.
Without ``path`` the API faults match ``/grok/v1/`` and the video faults match ``/videos/``; with
``path`` any fault matches requests whose path starts with it (``method=`` narrows further).
An API fault answers in place of the request, which is not handled (a create makes no job), except
``latency`` and ``timeout``: they sleep, then the request is handled as usual (a create makes its job,
even if the client stopped waiting). With ``after_create=True`` (5xx and ``drop`` only) the request is
handled first (a valid create within the rate limit makes its job: pollable, in ``create_log``), then
the fault answers.

==============  ========================================================================================
API faults      ``latency`` (seconds=1), ``timeout`` (seconds=15: no answer that long, then the request
                is handled; stop() still prompt, then nothing is), ``429`` (retry_after=1, None omits
                the header), ``400`` (code=task_not_exist), ``422``, ``500`` ``502`` ``503`` ``504``
                ``524`` (body="json"|"html", code=..., after_create=False), ``malformed`` (200 HTML),
                ``empty_202`` (202, empty body), ``401``, ``403``, ``drop`` (close the connection
                without an answer; after_create=False)
Video faults    ``wrong_length`` (announce=N bytes in Content-Length; default real+1024; the connection
                closes after the body), ``content_type`` (value="text/html"), ``html_body`` (200 HTML
                page), ``slow_body`` (delay=0.05 s per chunk, chunk=65536), ``disconnect`` (close the
                socket after ``after`` bytes, default half), ``redirect`` (location=same URL, code=302),
                ``status`` (code=404)
==============  ========================================================================================
"""

from __future__ import annotations

from .fake import FakeCometAPI
from .faults import AFTER_CREATE_FAULTS, API_FAULTS, FAULTS, VIDEO_FAULTS, Fault, FaultBook
from .jobs import (
    DEFAULT_MODEL,
    OUTCOMES,
    SHAPES,
    Job,
    outcome_from_id,
    outcome_from_prompt,
    render_poll,
    task_not_exist,
)
from .ratelimit import TokenBucket, retry_after_seconds
from .replies import Reply, comet_error, html_reply, json_reply, rate_limited
from .video import DEFAULT_VIDEO_PATH, REPO_ROOT, VideoSource

__all__ = [
    "AFTER_CREATE_FAULTS",
    "API_FAULTS",
    "DEFAULT_MODEL",
    "DEFAULT_VIDEO_PATH",
    "FAULTS",
    "OUTCOMES",
    "REPO_ROOT",
    "SHAPES",
    "VIDEO_FAULTS",
    "FakeCometAPI",
    "Fault",
    "FaultBook",
    "Job",
    "Reply",
    "TokenBucket",
    "VideoSource",
    "comet_error",
    "html_reply",
    "json_reply",
    "outcome_from_id",
    "outcome_from_prompt",
    "rate_limited",
    "render_poll",
    "retry_after_seconds",
    "task_not_exist",
]
