"""The URL space the fake answers: the provider's API, the public video files, the admin routes."""

from __future__ import annotations

import re

API_PREFIX = "/grok/v1/"
VIDEO_PREFIX = "/videos/"
ADMIN_PREFIX = "/_fake/"
CREATE_ROUTES = {"/grok/v1/videos/generations": "generations", "/grok/v1/videos/edits": "edits"}
POLL_RE = re.compile(r"^/grok/v1/videos/([^/]+)$")
VIDEO_RE = re.compile(r"^/videos/([^/]+)\.mp4$")
AUTO_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
