"""grokvideo.cometapi against a real HTTP server on 127.0.0.1 serving canned answers."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3

from grokvideo.cometapi import CometApiClient
from grokvideo.errors import (
    AuthError,
    CometApiError,
    ConfigurationError,
    InvalidRequestError,
    RateLimitedError,
    RetryableError,
)
from grokvideo.models import Pending, Succeeded

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SUCCESS = (FIXTURES / "get-video-success.json").read_bytes()
CREATED = (FIXTURES / "create-video.json").read_bytes()
CREATED_ID = "4b2cd27e-0b0d-3dec-c31c-7572daf74bb3"
KEY = "ck_live_SUPERSECRET_0123456789abcdef"
VIDEO = "/grok/v1/videos/abc-123"
GENERATIONS = "/grok/v1/videos/generations"
EDITS = "/grok/v1/videos/edits"


@dataclass
class Canned:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    echo_auth: bool = False  # put the received Authorization header in the body (a hostile provider)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int]

    def json(self) -> Any:
        return json.loads(self.body)


class FakeServer:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Canned] = {}
        self.requests: list[Seen] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def route(self, method: str, path: str, canned: Canned) -> None:
        self.routes[(method, path)] = canned

    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.requests]


def _handler(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            seen = Seen(self.command, self.path, dict(self.headers.items()), body, self.client_address[:2])
            with fake.lock:
                fake.requests.append(seen)
            canned = fake.routes.get((self.command, self.path)) or Canned(
                404, b'{"error":{"message":"no route","type":"test","code":"not_found"}}'
            )
            if canned.delay:
                fake.stop.wait(canned.delay)
            payload = canned.body
            if canned.echo_auth:
                payload = json.dumps(
                    {
                        "error": {
                            "message": f"bad key {self.headers.get('Authorization', '')[7:]}",
                            "code": "x",
                        }
                    }
                ).encode()
            self.send_response(canned.status)
            for name, value in canned.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve

    return Handler


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.stop.set()
        fake.httpd.shutdown()
        fake.httpd.server_close()


def make_client(base_url: str, key: Callable[[], str] = lambda: KEY, **kwargs: Any) -> CometApiClient:
    kwargs.setdefault("read_timeout", 2.0)
    kwargs.setdefault("connect_timeout", 1.0)
    return CometApiClient(base_url, key, **kwargs)


def assert_no_key(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), repr(exc.args)):
        assert KEY not in text and "SUPERSECRET" not in text


# --- happy paths ------------------------------------------------------------------------------


def test_get_video_sends_bearer_and_parses_the_envelope(server: FakeServer) -> None:
    server.route("GET", VIDEO, Canned(200, SUCCESS, {"Content-Type": "application/json"}))
    result = make_client(server.url).get_video("abc-123")
    assert isinstance(result, Succeeded) and result.cost_usd == 0.05 and result.duration == 1
    (seen,) = server.requests
    assert seen.method == "GET" and seen.path == VIDEO and seen.body == b""
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert seen.headers["Accept"] == "application/json"


def test_create_generation_always_sends_duration_and_never_size(server: FakeServer) -> None:
    server.route("POST", GENERATIONS, Canned(200, CREATED))
    client = make_client(server.url)
    assert client.create_generation("a red fox", duration=5) == CREATED_ID
    assert client.create_generation(
        "a red fox", model="grok-imagine-video-1.5", duration=1, aspect_ratio="16:9", resolution="720p",
        image_url="https://example.com/fox.png", user="u-1",
    ) == CREATED_ID  # fmt: skip
    first, second = server.requests
    assert first.json() == {"model": "grok-imagine-video", "prompt": "a red fox", "duration": 5}
    assert second.json() == {
        "model": "grok-imagine-video-1.5", "prompt": "a red fox", "duration": 1, "aspect_ratio": "16:9",
        "resolution": "720p", "user": "u-1", "image": {"url": "https://example.com/fox.png"},
    }  # fmt: skip
    for seen in (first, second):
        assert seen.headers["Content-Type"] == "application/json"
        assert seen.headers["Authorization"] == f"Bearer {KEY}"
        assert "size" not in seen.json() and "seconds" not in seen.json()


def test_create_edit(server: FakeServer) -> None:
    server.route("POST", EDITS, Canned(200, CREATED))
    assert make_client(server.url).create_edit("make it night", "https://example.com/in.mp4") == CREATED_ID
    (seen,) = server.requests
    assert seen.json() == {
        "model": "grok-imagine-video", "prompt": "make it night", "video": {"url": "https://example.com/in.mp4"}
    }  # fmt: skip


@pytest.mark.parametrize("duration", [0, 16, -1, True, 5.0, "5"])
def test_bad_duration_is_refused_locally(server: FakeServer, duration: Any) -> None:
    with pytest.raises(InvalidRequestError):
        make_client(server.url).create_generation("a fox", duration=duration)
    assert server.requests == []


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [(202, b"", Pending("accepted")), (200, b'{"status":"pending","progress":30}', Pending("pending", 30))],
)
def test_pending_answers(server: FakeServer, status: int, body: bytes, expected: Pending) -> None:
    server.route("GET", VIDEO, Canned(status, body))
    assert make_client(server.url).get_video("abc-123") == expected


# --- refusals and failures --------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("own_pool", [False, True])
def test_redirects_are_never_followed(server: FakeServer, status: int, own_pool: bool) -> None:
    server.route("GET", VIDEO, Canned(status, b"", {"Location": f"{server.url}/elsewhere"}))
    server.route("POST", GENERATIONS, Canned(status, b"", {"Location": f"{server.url}/elsewhere"}))
    server.route("GET", "/elsewhere", Canned(200, SUCCESS))
    server.route("POST", "/elsewhere", Canned(200, CREATED))
    pool = urllib3.PoolManager() if own_pool else None  # a default pool would follow redirects
    client = make_client(server.url, pool=pool)
    with pytest.raises(CometApiError) as info:
        client.get_video("abc-123")
    assert type(info.value) is CometApiError and info.value.status == status
    with pytest.raises(CometApiError):
        client.create_generation("a fox", duration=1)
    assert "/elsewhere" not in server.paths()


def test_read_timeout_is_retryable_and_quick(server: FakeServer) -> None:
    server.route("GET", VIDEO, Canned(200, SUCCESS, delay=5.0))
    started = time.monotonic()
    with pytest.raises(RetryableError) as info:
        make_client(server.url, read_timeout=0.3).get_video("abc-123")
    assert time.monotonic() - started < 2.0
    assert "timed out" in str(info.value)
    assert server.paths() == [VIDEO]  # read errors are not retried by urllib3


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(RetryableError) as info:
        make_client(f"http://127.0.0.1:{port}").get_video("abc-123")
    assert time.monotonic() - started < 5.0
    assert "could not connect" in str(info.value)
    assert_no_key(info.value)


def test_429_surfaces_at_once_with_retry_after(server: FakeServer) -> None:
    server.route("GET", VIDEO, Canned(429, b'{"error":{"message":"slow down","code":"rate"}}', {"Retry-After": "7"}))
    with pytest.raises(RateLimitedError) as info:
        make_client(server.url).get_video("abc-123")
    assert info.value.retry_after == 7 and info.value.status == 429
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504, 524])
def test_5xx_is_retryable_and_not_retried_by_the_client(server: FakeServer, status: int) -> None:
    server.route("GET", VIDEO, Canned(status, b"<html>oops</html>", {"Retry-After": "1"}))
    with pytest.raises(RetryableError):
        make_client(server.url).get_video("abc-123")
    assert len(server.requests) == 1


def test_html_page_is_an_error_not_a_success(server: FakeServer) -> None:
    server.route("GET", VIDEO, Canned(200, b"<!doctype html><h1>Welcome</h1>", {"Content-Type": "text/html"}))
    with pytest.raises(RetryableError):
        make_client(server.url).get_video("abc-123")


def test_oversized_answer_is_refused_and_the_connection_recovers(server: FakeServer) -> None:
    server.route("GET", VIDEO, Canned(200, b"{" + b" " * (2 * 1024 * 1024) + b"}"))
    server.route("GET", "/grok/v1/videos/ok", Canned(200, SUCCESS))
    client = make_client(server.url)
    with pytest.raises(RetryableError):
        client.get_video("abc-123")
    assert isinstance(client.get_video("ok"), Succeeded)


@pytest.mark.parametrize(
    "request_id", ["../x", "a/b", "", "x" * 200, "a?b=c", "a b", "abc\n", "\u00e9t\u00e9", "%2e%2e", "a#b"]
)
def test_bad_request_id_never_reaches_the_server(server: FakeServer, request_id: str) -> None:
    with pytest.raises(InvalidRequestError):
        make_client(server.url).get_video(request_id)
    assert server.requests == []


# --- the key ----------------------------------------------------------------------------------


def test_key_never_appears_in_errors_or_repr(server: FakeServer) -> None:
    server.route("GET", VIDEO, Canned(401, echo_auth=True))
    server.route("GET", "/grok/v1/videos/bad", Canned(400, echo_auth=True))
    server.route("GET", "/grok/v1/videos/slow", Canned(200, SUCCESS, delay=5.0))
    client = make_client(server.url, read_timeout=0.3)
    assert KEY not in repr(client)
    assert not hasattr(client, "__dict__")
    with pytest.raises(AuthError) as auth:
        client.get_video("abc-123")
    with pytest.raises(InvalidRequestError) as invalid:
        client.get_video("bad")
    with pytest.raises(RetryableError) as timeout:
        client.get_video("slow")
    for exc in (auth.value, invalid.value, timeout.value):
        assert_no_key(exc)


def test_key_is_fetched_on_every_call(server: FakeServer) -> None:
    server.route("GET", VIDEO, Canned(200, SUCCESS))
    calls: list[int] = []

    def provider() -> str:
        calls.append(1)
        return f"  {KEY}\n"  # pasted with whitespace: stripped

    client = make_client(server.url, key=provider)
    client.get_video("abc-123")
    client.get_video("abc-123")
    assert len(calls) == 2
    assert [r.headers["Authorization"] for r in server.requests] == [f"Bearer {KEY}"] * 2


@pytest.mark.parametrize("key", ["", "   ", "abc\r\nX-Evil: 1", "caf\u00e9-key", "two words"])
def test_empty_or_malformed_key_is_an_auth_error_before_any_request(server: FakeServer, key: str) -> None:
    with pytest.raises(AuthError) as info:
        make_client(server.url, key=lambda: key).get_video("abc-123")
    assert server.requests == []
    if key.strip():
        assert key.strip() not in str(info.value)


def test_failing_key_provider_is_an_auth_error_without_its_text(server: FakeServer) -> None:
    def provider() -> str:
        raise RuntimeError(f"secret value was {KEY}")

    def config_provider() -> str:
        raise ConfigurationError("the API key secret is empty: store the CometAPI key in it")

    with pytest.raises(AuthError) as info:
        make_client(server.url, key=provider).get_video("abc-123")
    assert_no_key(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(AuthError, match="secret is empty"):
        make_client(server.url, key=config_provider).create_generation("a fox", duration=1)
    assert server.requests == []


# --- configuration and pooling ----------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url", ["", "api.cometapi.com", "ftp://api.cometapi.com", "https://u:p@api.cometapi.com",
                 "https://api.cometapi.com/?x=1", "https://", "http://[::1"],
)  # fmt: skip
def test_bad_base_url_is_a_configuration_error(base_url: str) -> None:
    with pytest.raises(ConfigurationError):
        CometApiClient(base_url, lambda: KEY)


def test_max_call_seconds_bounds_a_call_that_gets_no_answer() -> None:
    with socket.socket() as listener:  # accepts connections (its backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        client = make_client(f"http://127.0.0.1:{listener.getsockname()[1]}", read_timeout=0.5, connect_timeout=0.2)
        assert client.max_call_seconds == 3 * 0.2 + 0.4 + 0.5  # 3 connects, the backoff before the 2nd retry, a read
        started = time.monotonic()
        with pytest.raises(RetryableError):
            client.get_video("abc-123")
        assert time.monotonic() - started <= client.max_call_seconds


def test_base_url_with_trailing_slash_and_prefix(server: FakeServer) -> None:
    server.route("GET", "/proxy" + VIDEO, Canned(200, SUCCESS))
    assert isinstance(make_client(server.url + "/proxy/").get_video("abc-123"), Succeeded)


def test_concurrent_polls_share_kept_alive_connections(server: FakeServer) -> None:
    server.route("GET", VIDEO, Canned(200, SUCCESS))
    client = make_client(server.url, maxsize=8)
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(4):
            results = list(pool.map(lambda _: client.get_video("abc-123"), range(8)))
            assert all(isinstance(r, Succeeded) for r in results)
    assert len(server.requests) == 32
    assert len({r.peer for r in server.requests}) <= 8  # block=False never opens more than needed
    client.close()
