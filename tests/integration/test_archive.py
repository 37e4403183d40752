"""VideoArchiver end to end: real HTTP over loopback (the fake CometAPI, or a scripted server for
what the fake cannot do: chunked bodies, non-MP4 bytes, TLS) into S3 under moto ``mock_aws``.

moto patches botocore, so S3 calls stay in-process, while urllib3 fetches from real local sockets.
``aws`` and ``fake`` come from ``tests/integration/conftest.py``.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from grokvideo import archive as archive_module
from grokvideo.archive import StoredVideo, VideoArchiver
from grokvideo.errors import ArchiveError, PermanentArchiveError, UrlRefusedError
from grokvideo.urlguard import GuardedTarget, UrlGuard
from local.fake_cometapi import FakeCometAPI

BUCKET = "grokvideo-test-videos"
MiB = 1 << 20
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sample-1s-480p.mp4"


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def s3_calls(s3: Any) -> list[str]:
    """Names of the S3 operations called from now on (any thread)."""
    calls: list[str] = []
    s3.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    return calls


def loopback_guard() -> UrlGuard:
    """Local-emulator mode: the fake serves http on 127.0.0.1."""
    return UrlGuard(["127.0.0.1"], allow_private=True)


def make_archiver(s3: Any, guard: Any = None, **options: Any) -> VideoArchiver:
    options.setdefault("max_video_bytes", 64 * MiB)
    options.setdefault("read_timeout", 5)
    return VideoArchiver(guard or loopback_guard(), s3, **options)


def uploads_left(s3: Any) -> list[dict[str, Any]]:
    return list(s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


def object_exists(s3: Any, key: str) -> bool:
    return bool(s3.list_objects_v2(Bucket=BUCKET, Prefix=key).get("KeyCount"))


def served_bytes(fake: FakeCometAPI, rid: str) -> bytes:
    return b"".join(bytes(c) for c in fake.video.chunks(fake._video_size(rid)))


class NameResolver:
    """A resolver for the guard mapping made-up names to loopback; counts lookups."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table
        self.calls: list[str] = []

    def __call__(self, host: str, port: int, *args: object) -> list[tuple[Any, ...]]:
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (self.table[host], port))]


# --- a scripted server for what the fake cannot do ------------------------------------------------


class ScriptedServer:
    """HTTP(S) on 127.0.0.1 whose GET answer is ``script(handler)``; records Host headers and SNI."""

    def __init__(self, script: Callable[[BaseHTTPRequestHandler], None], tls: ssl.SSLContext | None = None):
        self.hosts: list[str] = []
        self.sni: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.hosts.append(self.headers.get("Host", ""))
                try:
                    script(self)
                except OSError:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            tls.sni_callback = lambda sock, name, ctx: outer.sni.append(name)
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Callable[[BaseHTTPRequestHandler], None], tls: ssl.SSLContext | None = None) -> ScriptedServer:
        servers.append(ScriptedServer(script, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def send_fixed(body: bytes, content_type: str = "video/mp4") -> Callable[[BaseHTTPRequestHandler], None]:
    def script(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return script


def send_chunked(total: int, content_type: str = "video/mp4") -> Callable[[BaseHTTPRequestHandler], None]:
    """``total`` bytes (the fixture's head, then filler) with chunked encoding: no Content-Length."""
    head = FIXTURE.read_bytes()

    def script(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for piece in video_pieces(head, total):
            h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        h.wfile.write(b"0\r\n\r\n")

    return script


def video_pieces(head: bytes, total: int) -> Iterator[bytes]:
    yield head[:total]
    filler = bytes(range(256)) * 4096  # 1 MiB
    left = total - min(total, len(head))
    while left > 0:
        yield filler[: min(left, len(filler))]
        left -= len(filler)


# --- success paths ------------------------------------------------------------------------------


def test_small_video_is_stored_with_its_sha256(fake: FakeCometAPI, s3: Any, s3_calls: list[str]) -> None:
    rid = fake.add_job(outcome="done")
    url = fake.video_url(rid) + "?sig=abc"
    stored = make_archiver(s3).archive(url, BUCKET, f"videos/{rid}.mp4", metadata={"request-id": rid})

    body = FIXTURE.read_bytes()
    assert stored == StoredVideo(
        bucket=BUCKET,
        key=f"videos/{rid}.mp4",
        s3_uri=f"s3://{BUCKET}/videos/{rid}.mp4",
        size_bytes=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
        content_type="video/mp4",
        etag=stored.etag,
    )
    assert stored.sha256 == fake.video_sha256(rid)
    obj = s3.get_object(Bucket=BUCKET, Key=stored.key)
    assert obj["Body"].read() == body
    assert obj["ContentType"] == "video/mp4"
    assert obj["Metadata"] == {"request-id": rid, "source-host": "127.0.0.1"}
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=BUCKET, Key=stored.key)["TagSet"]}
    assert tags == {"sha256": stored.sha256, "size": str(len(body))}
    assert "PutObject" in s3_calls and "CreateMultipartUpload" not in s3_calls


def test_large_video_goes_multipart(fake: FakeCometAPI, s3: Any, s3_calls: list[str]) -> None:
    rid = fake.add_job(outcome="done", video_size=40 * MiB)
    stored = make_archiver(s3).archive(fake.video_url(rid), BUCKET, "videos/big.mp4")

    assert stored.size_bytes == 40 * MiB
    assert stored.sha256 == fake.video_sha256(rid)
    assert stored.etag.endswith("-5")  # 8 MiB parts
    assert s3_calls.count("UploadPart") == 5
    assert "CompleteMultipartUpload" in s3_calls
    got = hashlib.sha256(s3.get_object(Bucket=BUCKET, Key="videos/big.mp4")["Body"].read()).hexdigest()
    assert got == stored.sha256
    assert uploads_left(s3) == []


def test_stream_is_read_sequentially_from_one_thread(
    fake: FakeCometAPI, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the design relies on: s3transfer reads a non-seekable stream in order, one thread."""
    seen: list[tuple[int, int]] = []
    active = threading.Lock()
    original = archive_module._BodyReader.read

    def spying_read(self: Any, n: int | None = -1) -> bytes:
        assert active.acquire(blocking=False), "concurrent read"
        try:
            data = original(self, n)
        finally:
            active.release()
        seen.append((threading.get_ident(), len(data)))
        return data

    monkeypatch.setattr(archive_module._BodyReader, "read", spying_read)
    rid = fake.add_job(outcome="done", video_size=20 * MiB)
    stored = make_archiver(s3).archive(fake.video_url(rid), BUCKET, "videos/seq.mp4")
    assert stored.sha256 == fake.video_sha256(rid)
    assert len({ident for ident, _ in seen}) == 1
    assert sum(size for _, size in seen) == 20 * MiB
    assert all(size == 8 * MiB for _, size in seen[:2])  # full parts, never short reads


def test_chunked_body_without_length_is_stored(scripted: Callable[..., ScriptedServer], s3: Any) -> None:
    server = scripted(send_chunked(10 * MiB))
    stored = make_archiver(s3).archive(f"http://127.0.0.1:{server.port}/v.mp4", BUCKET, "videos/chunked.mp4")
    expected = hashlib.sha256(b"".join(video_pieces(FIXTURE.read_bytes(), 10 * MiB))).hexdigest()
    assert (stored.size_bytes, stored.sha256) == (10 * MiB, expected)


@pytest.mark.parametrize(
    ("served", "stored"),
    [
        ("application/octet-stream", "video/mp4"),
        ("binary/octet-stream", "video/mp4"),
        ("video/quicktime", "video/quicktime"),
        ("Video/MP4; codecs=avc1", "video/mp4"),
    ],
)
def test_accepted_content_types(fake: FakeCometAPI, s3: Any, served: str, stored: str) -> None:
    rid = fake.add_job(outcome="done")
    fake.inject("content_type", value=served)
    result = make_archiver(s3).archive(fake.video_url(rid), BUCKET, "videos/ct.mp4")
    assert result.content_type == stored
    assert s3.head_object(Bucket=BUCKET, Key="videos/ct.mp4")["ContentType"] == stored


def test_relative_redirect_is_followed(fake: FakeCometAPI, s3: Any) -> None:
    rid = fake.add_job(outcome="done")
    other = fake.add_job(outcome="done", video_size=100_000)
    fake.inject("redirect", location=f"/videos/{other}.mp4", code=307)
    stored = make_archiver(s3).archive(fake.video_url(rid), BUCKET, "videos/r.mp4")
    assert stored.sha256 == fake.video_sha256(other)
    assert fake.count("GET", "/videos/") == 2


def test_connection_goes_to_the_vetted_address(fake: FakeCometAPI, s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the name is resolved once, by the guard; urllib3 connects to that address."""
    resolver = NameResolver({"videos.test": "127.0.0.1"})
    guard = UrlGuard(["videos.test"], allow_private=True, resolver=resolver)
    real_getaddrinfo = socket.getaddrinfo

    def no_second_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        assert host != "videos.test", "the download resolved the name again"
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_second_lookup)
    rid = fake.add_job(outcome="done")
    stored = make_archiver(s3, guard).archive(
        f"http://videos.test:{fake.port}/videos/{rid}.mp4", BUCKET, "videos/pinned.mp4"
    )
    assert stored.sha256 == fake.video_sha256(rid)
    assert resolver.calls == ["videos.test"]


# --- TLS: pinned address, SNI and certificate on the name -----------------------------------------


def _tls_material(tmp_path: Path, name: str) -> tuple[Path, ssl.SSLContext]:
    """A throwaway CA and a server certificate for ``name``; returns (CA file, server context)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "grokvideo test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain = tmp_path / "server.pem"
    chain.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain)
    return ca_file, context


def test_https_download_keeps_sni_and_certificate_on_the_name(
    tmp_path: Path, scripted: Callable[..., ScriptedServer], s3: Any
) -> None:
    ca_file, context = _tls_material(tmp_path, "videos.test")
    server = scripted(send_fixed(FIXTURE.read_bytes()), tls=context)
    guard = UrlGuard(["videos.test"], allow_private=True, resolver=NameResolver({"videos.test": "127.0.0.1"}))
    archiver = make_archiver(s3, guard, ca_certs=str(ca_file))
    stored = archiver.archive(f"https://videos.test:{server.port}/v.mp4?sig=x", BUCKET, "videos/tls.mp4")
    assert stored.sha256 == hashlib.sha256(FIXTURE.read_bytes()).hexdigest()
    assert server.sni == ["videos.test"]
    assert server.hosts == [f"videos.test:{server.port}"]


def test_https_certificate_for_another_name_is_rejected(
    tmp_path: Path, scripted: Callable[..., ScriptedServer], s3: Any, s3_calls: list[str]
) -> None:
    ca_file, context = _tls_material(tmp_path, "other.test")
    server = scripted(send_fixed(FIXTURE.read_bytes()), tls=context)
    guard = UrlGuard(["videos.test"], allow_private=True, resolver=NameResolver({"videos.test": "127.0.0.1"}))
    with pytest.raises(ArchiveError) as info:
        make_archiver(s3, guard, ca_certs=str(ca_file)).archive(
            f"https://videos.test:{server.port}/v.mp4", BUCKET, "videos/tls.mp4"
        )
    assert info.value.retryable and info.value.reason == "TRANSFER_FAILED"
    assert "SSLError" in str(info.value)
    assert s3_calls == []


# --- what the host answers ----------------------------------------------------------------------


@pytest.mark.parametrize("code", [403, 404, 410])
def test_gone_url_is_permanent_url_expired(fake: FakeCometAPI, s3: Any, s3_calls: list[str], code: int) -> None:
    rid = fake.add_job(outcome="done")
    fake.inject("status", code=code)
    with pytest.raises(PermanentArchiveError) as info:
        make_archiver(s3).archive(fake.video_url(rid) + "?sig=SECRET", BUCKET, "videos/x.mp4")
    assert info.value.reason == "URL_EXPIRED" and not info.value.retryable
    assert str(code) in str(info.value) and "SECRET" not in str(info.value)
    assert s3_calls == []


@pytest.mark.parametrize(("code", "retryable"), [(503, True), (500, True), (429, True), (408, True), (400, False)])
def test_other_statuses(fake: FakeCometAPI, s3: Any, s3_calls: list[str], code: int, retryable: bool) -> None:
    rid = fake.add_job(outcome="done")
    fake.inject("status", code=code)
    with pytest.raises(ArchiveError) as info:
        make_archiver(s3).archive(fake.video_url(rid), BUCKET, "videos/x.mp4")
    assert info.value.reason == "TRANSFER_FAILED"
    assert info.value.retryable is retryable
    assert s3_calls == []


def test_html_page_with_200_is_not_a_video(fake: FakeCometAPI, s3: Any, s3_calls: list[str]) -> None:
    rid = fake.add_job(outcome="done")
    fake.inject("html_body")
    with pytest.raises(PermanentArchiveError) as info:
        make_archiver(s3).archive(fake.video_url(rid), BUCKET, "videos/x.mp4")
    assert info.value.reason == "NOT_A_VIDEO" and "text/html" in str(info.value)
    assert s3_calls == []


@pytest.mark.parametrize("value", ["text/html", "application/json", "image/png", "text/plain; charset=utf-8"])
def test_wrong_content_type_is_not_a_video(fake: FakeCometAPI, s3: Any, s3_calls: list[str], value: str) -> None:
    rid = fake.add_job(outcome="done")
    fake.inject("content_type", value=value)
    with pytest.raises(PermanentArchiveError) as info:
        make_archiver(s3).archive(fake.video_url(rid), BUCKET, "videos/x.mp4")
    assert info.value.reason == "NOT_A_VIDEO"
    assert s3_calls == []


@pytest.mark.parametrize(
    "body",
    [b"\x1aE\xdf\xa3" + b"\x00" * 5000, b"<html>not a video</html>", b"", b"\x00\x00\x00\x20ftx"],
    ids=["webm", "html-as-mp4", "empty", "short"],
)
def test_bytes_without_ftyp_are_not_a_video_and_never_reach_s3(
    scripted: Callable[..., ScriptedServer], s3: Any, s3_calls: list[str], body: bytes
) -> None:
    server = scripted(send_fixed(body))
    with pytest.raises(PermanentArchiveError) as info:
        make_archiver(s3).archive(f"http://127.0.0.1:{server.port}/v.mp4", BUCKET, "videos/x.mp4")
    assert info.value.reason == "NOT_A_VIDEO" and "ftyp" in str(info.value)
    assert s3_calls == []


# --- broken transfers -----------------------------------------------------------------------------


def test_truncated_small_body_is_retryable(fake: FakeCometAPI, s3: Any, s3_calls: list[str]) -> None:
    rid = fake.add_job(outcome="done", video_size=3 * MiB)
    fake.inject("disconnect", after=MiB + 5)
    with pytest.raises(ArchiveError) as info:
        make_archiver(s3).archive(fake.video_url(rid), BUCKET, "videos/x.mp4")
    assert info.value.retryable and info.value.reason == "TRANSFER_FAILED"
    assert "PutObject" not in s3_calls
    assert not object_exists(s3, "videos/x.mp4")


def test_truncated_multipart_body_is_retryable_and_leaves_no_upload(
    fake: FakeCometAPI, s3: Any, s3_calls: list[str]
) -> None:
    rid = fake.add_job(outcome="done", video_size=40 * MiB)
    fake.inject("disconnect", after=20 * MiB)
    with pytest.raises(ArchiveError) as info:
        make_archiver(s3).archive(fake.video_url(rid), BUCKET, "videos/x.mp4")
    assert info.value.retryable and info.value.reason == "TRANSFER_FAILED"
    assert "CreateMultipartUpload" in s3_calls and "AbortMultipartUpload" in s3_calls
    assert uploads_left(s3) == []
    assert not object_exists(s3, "videos/x.mp4")


def test_boto3_itself_aborts_the_multipart_upload(fake: FakeCometAPI, s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Verified rather than assumed: without our cleanup helper, s3transfer still aborts."""
    archiver = make_archiver(s3)
    monkeypatch.setattr(archiver, "abort_stale_uploads", lambda bucket, key: 0)
    rid = fake.add_job(outcome="done", video_size=40 * MiB)
    fake.inject("disconnect", after=30 * MiB)
    with pytest.raises(ArchiveError):
        archiver.archive(fake.video_url(rid), BUCKET, "videos/x.mp4")
    assert uploads_left(s3) == []


def test_body_shorter_than_announced_is_retryable(fake: FakeCometAPI, s3: Any) -> None:
    rid = fake.add_job(outcome="done", video_size=12 * MiB)
    fake.inject("wrong_length", announce=12 * MiB + 1024)
    with pytest.raises(ArchiveError) as info:
        make_archiver(s3).archive(fake.video_url(rid), BUCKET, "videos/x.mp4")
    assert info.value.retryable and info.value.reason == "TRANSFER_FAILED"
    assert uploads_left(s3) == [] and not object_exists(s3, "videos/x.mp4")


def test_body_longer_than_announced_is_cut_at_content_length(fake: FakeCometAPI, s3: Any) -> None:
    """HTTP framing: the body is the announced bytes; http.client never hands over the excess."""
    rid = fake.add_job(outcome="done", video_size=12 * MiB)
    announce = 10 * MiB + 123
    fake.inject("wrong_length", announce=announce)
    stored = make_archiver(s3).archive(fake.video_url(rid), BUCKET, "videos/x.mp4")
    assert stored.size_bytes == announce
    assert stored.sha256 == hashlib.sha256(served_bytes(fake, rid)[:announce]).hexdigest()


def test_slow_body_times_out_retryably(fake: FakeCometAPI, s3: Any) -> None:
    rid = fake.add_job(outcome="done", video_size=2 * MiB)
    fake.inject("slow_body", delay=2.0, chunk=256 * 1024)
    with pytest.raises(ArchiveError) as info:
        make_archiver(s3, read_timeout=0.3).archive(fake.video_url(rid), BUCKET, "videos/x.mp4")
    assert info.value.retryable and info.value.reason == "TRANSFER_FAILED"
    assert "ReadTimeoutError" in str(info.value)


def test_trickling_body_stops_at_the_time_limit(fake: FakeCometAPI, s3: Any) -> None:
    rid = fake.add_job(outcome="done", video_size=MiB)
    fake.inject("slow_body", delay=0.1, chunk=64 * 1024)  # each read is quick, the whole is slow
    started = time.monotonic()
    with pytest.raises(ArchiveError) as info:
        make_archiver(s3, chunk_size=64 * 1024).archive(fake.video_url(rid), BUCKET, "videos/x.mp4", time_limit=0.5)
    assert info.value.retryable and "time limit" in str(info.value)
    assert time.monotonic() - started < 1.5


def finishes_within(seconds: float, call: Callable[[], Any]) -> BaseException | None:
    """Run ``call`` in a thread; fail unless it ends within ``seconds``; return what it raised."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running {seconds} s later"
    return raised[0] if raised else None


def test_a_read_that_blocks_past_the_time_limit_ends_at_the_deadline(
    fake: FakeCometAPI, s3: Any, s3_calls: list[str]
) -> None:
    """One 1 MiB read of a body trickling 1 KiB every 0.25 s (each piece well inside the read
    timeout) would take four minutes: the limit must not wait for the read to come back."""
    rid = fake.add_job(outcome="done", video_size=2 * MiB)
    fake.inject("slow_body", delay=0.25, chunk=1024)
    archiver = make_archiver(s3, read_timeout=5)
    started = time.monotonic()
    error = finishes_within(4.0, lambda: archiver.archive(fake.video_url(rid), BUCKET, "videos/x.mp4", time_limit=1.0))
    assert time.monotonic() - started < 1.0 + 0.75
    assert isinstance(error, ArchiveError) and error.retryable and error.reason == "TRANSFER_FAILED"
    assert "time limit" in str(error)
    assert not {"PutObject", "CreateMultipartUpload"} & set(s3_calls)
    assert uploads_left(s3) == [] and not object_exists(s3, "videos/x.mp4")


def test_a_multipart_copy_cut_at_the_deadline_leaves_no_upload(
    fake: FakeCometAPI, s3: Any, s3_calls: list[str]
) -> None:
    """The deadline falls inside an 8 MiB read, after the multipart upload has begun."""
    rid = fake.add_job(outcome="done", video_size=64 * MiB)
    fake.inject("slow_body", delay=0.02, chunk=64 * 1024)  # ~3 MiB/s: 8 MiB in ~2.6 s
    archiver = make_archiver(s3, read_timeout=5, chunk_size=8 * MiB)
    started = time.monotonic()
    error = finishes_within(10.0, lambda: archiver.archive(fake.video_url(rid), BUCKET, "videos/x.mp4", time_limit=4.0))
    assert time.monotonic() - started < 4.0 + 0.75
    assert isinstance(error, ArchiveError) and error.retryable and "time limit" in str(error)
    assert "CreateMultipartUpload" in s3_calls and "AbortMultipartUpload" in s3_calls
    assert uploads_left(s3) == [] and not object_exists(s3, "videos/x.mp4")


def trickle_headers(stop: threading.Event) -> Callable[[BaseHTTPRequestHandler], None]:
    """A status line, then one header byte every 0.2 s, never finishing the headers."""

    def script(h: BaseHTTPRequestHandler) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nX-Slow: ")
        h.wfile.flush()
        while not stop.wait(0.2):
            h.wfile.write(b"a")
            h.wfile.flush()

    return script


def test_headers_that_never_end_stop_at_the_deadline(
    scripted: Callable[..., ScriptedServer], s3: Any, s3_calls: list[str]
) -> None:
    stop = threading.Event()
    server = scripted(trickle_headers(stop))
    archiver = make_archiver(s3, read_timeout=5)
    started = time.monotonic()
    try:
        error = finishes_within(
            4.0,
            lambda: archiver.archive(f"http://127.0.0.1:{server.port}/v.mp4", BUCKET, "videos/x.mp4", time_limit=1.0),
        )
    finally:
        stop.set()
    assert time.monotonic() - started < 1.0 + 0.75
    assert isinstance(error, ArchiveError) and error.retryable and "time limit" in str(error)
    assert s3_calls == []


def test_https_body_that_trickles_stops_at_the_deadline(
    tmp_path: Path, scripted: Callable[..., ScriptedServer], s3: Any
) -> None:
    """The deadline cuts a TLS socket too (the plain socket's shutdown under the TLS object)."""
    ca_file, context = _tls_material(tmp_path, "videos.test")
    stop = threading.Event()
    head = FIXTURE.read_bytes()[:4096]

    def trickle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("Content-Length", str(10 * MiB))
        h.end_headers()
        h.wfile.write(head)
        while not stop.wait(0.2):
            h.wfile.write(b"\\0")
            h.wfile.flush()

    server = scripted(trickle, tls=context)
    guard = UrlGuard(["videos.test"], allow_private=True, resolver=NameResolver({"videos.test": "127.0.0.1"}))
    archiver = make_archiver(s3, guard, ca_certs=str(ca_file), read_timeout=5)
    started = time.monotonic()
    try:
        error = finishes_within(
            4.0,
            lambda: archiver.archive(
                f"https://videos.test:{server.port}/v.mp4", BUCKET, "videos/t.mp4", time_limit=1.0
            ),
        )
    finally:
        stop.set()
    assert time.monotonic() - started < 1.0 + 0.75
    assert isinstance(error, ArchiveError) and error.retryable and "time limit" in str(error)
    assert uploads_left(s3) == [] and not object_exists(s3, "videos/t.mp4")


def test_connection_refused_is_retryable(s3: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ArchiveError) as info:
        make_archiver(s3, connect_timeout=1).archive(f"http://127.0.0.1:{port}/v.mp4", BUCKET, "videos/x.mp4")
    assert info.value.retryable and "cannot connect" in str(info.value)


# --- Content-Length -------------------------------------------------------------------------------


def send_with_length(announced: str, body: bytes | None = None) -> Callable[[BaseHTTPRequestHandler], None]:
    """The fixture video under a Content-Length header sent exactly as ``announced`` (latin-1 on the wire)."""
    payload = FIXTURE.read_bytes() if body is None else body

    def script(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("Content-Length", announced)
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        h.wfile.write(payload)

    return script


@pytest.mark.parametrize(
    "announced",
    [
        "\N{SUPERSCRIPT TWO}",
        "1\N{SUPERSCRIPT TWO}",
        "\N{SUPERSCRIPT ONE}0",
        "1_024",
        "+1024",
        " 0x400",
        "-1",
        "",
        "1024, 2048",
    ],
)
def test_malformed_content_length_is_a_permanent_transfer_failure(
    scripted: Callable[..., ScriptedServer], s3: Any, s3_calls: list[str], announced: str
) -> None:
    """A server that sends garbage framing headers is broken for good: asking again gets the same."""
    server = scripted(send_with_length(announced))
    with pytest.raises(PermanentArchiveError) as info:
        make_archiver(s3).archive(f"http://127.0.0.1:{server.port}/v.mp4", BUCKET, "videos/x.mp4")
    assert info.value.reason == "TRANSFER_FAILED" and not info.value.retryable
    assert "Content-Length" in str(info.value)
    assert s3_calls == []


def test_a_repeated_equal_content_length_is_accepted(scripted: Callable[..., ScriptedServer], s3: Any) -> None:
    body = FIXTURE.read_bytes()
    server = scripted(send_with_length(f"{len(body)}, {len(body)}"))
    stored = make_archiver(s3).archive(f"http://127.0.0.1:{server.port}/v.mp4", BUCKET, "videos/x.mp4")
    assert (stored.size_bytes, stored.sha256) == (len(body), hashlib.sha256(body).hexdigest())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0", 0), ("1024", 1024), (" 1024 ", 1024), ("7, 7", 7), (None, None)],
)
def test_content_length_parser_accepts_ascii_digits(raw: str | None, expected: int | None) -> None:
    assert archive_module._content_length(_Headers({} if raw is None else {"Content-Length": raw})) == expected


@pytest.mark.parametrize("raw", ["\N{SUPERSCRIPT TWO}", "\N{ARABIC-INDIC DIGIT THREE}", "1_0", "+1", "1e3", "1, 2", ""])
def test_content_length_parser_refuses_anything_else(raw: str) -> None:
    with pytest.raises(PermanentArchiveError, match="Content-Length"):
        archive_module._content_length(_Headers({"Content-Length": raw}))


def test_content_length_is_ignored_under_chunked_framing() -> None:
    headers = {"Content-Length": "\N{SUPERSCRIPT TWO}", "Transfer-Encoding": "chunked"}
    assert archive_module._content_length(_Headers(headers)) is None


class _Headers:
    """The one attribute of a urllib3 response that ``_content_length`` reads."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


# --- size cap -----------------------------------------------------------------------------------


def test_announced_size_over_the_cap_is_refused_before_s3(fake: FakeCometAPI, s3: Any, s3_calls: list[str]) -> None:
    rid = fake.add_job(outcome="done", video_size=5 * MiB)
    with pytest.raises(PermanentArchiveError) as info:
        make_archiver(s3, max_video_bytes=4 * MiB).archive(fake.video_url(rid), BUCKET, "videos/x.mp4")
    assert info.value.reason == "TOO_LARGE" and "announces" in str(info.value)
    assert s3_calls == []


def test_exactly_the_cap_is_accepted(fake: FakeCometAPI, s3: Any) -> None:
    rid = fake.add_job(outcome="done", video_size=9 * MiB)
    stored = make_archiver(s3, max_video_bytes=9 * MiB).archive(fake.video_url(rid), BUCKET, "videos/x.mp4")
    assert stored.size_bytes == 9 * MiB


def test_unannounced_stream_over_the_cap_is_cut_off(
    scripted: Callable[..., ScriptedServer], s3: Any, s3_calls: list[str]
) -> None:
    server = scripted(send_chunked(30 * MiB))
    with pytest.raises(PermanentArchiveError) as info:
        make_archiver(s3, max_video_bytes=20 * MiB).archive(
            f"http://127.0.0.1:{server.port}/v.mp4", BUCKET, "videos/x.mp4"
        )
    assert info.value.reason == "TOO_LARGE" and not info.value.retryable
    assert "CreateMultipartUpload" in s3_calls
    assert uploads_left(s3) == [] and not object_exists(s3, "videos/x.mp4")


# --- redirects ----------------------------------------------------------------------------------


def test_redirect_loop_stops_after_max_redirects(fake: FakeCometAPI, s3: Any, s3_calls: list[str]) -> None:
    rid = fake.add_job(outcome="done")
    fake.inject("redirect", count=10)
    with pytest.raises(PermanentArchiveError) as info:
        make_archiver(s3, max_redirects=3).archive(fake.video_url(rid), BUCKET, "videos/x.mp4")
    assert info.value.reason == "URL_REFUSED" and "more than 3 redirects" in str(info.value)
    assert fake.count("GET", "/videos/") == 4
    assert s3_calls == []


def test_redirect_to_a_loopback_literal_is_refused(fake: FakeCometAPI, s3: Any, s3_calls: list[str]) -> None:
    guard = UrlGuard(["videos.test"], allow_private=True, resolver=NameResolver({"videos.test": "127.0.0.1"}))
    rid = fake.add_job(outcome="done")
    fake.inject("redirect", location=f"http://127.0.0.1:{fake.port}/videos/{rid}.mp4")
    with pytest.raises(UrlRefusedError, match=r"IP address literal 127\.0\.0\.1"):
        make_archiver(s3, guard).archive(f"http://videos.test:{fake.port}/videos/{rid}.mp4", BUCKET, "v/x.mp4")
    assert fake.count("GET", "/videos/") == 1
    assert s3_calls == []


class SplitGuard:
    """First hop through a permissive guard (the fake is on loopback), redirects through a strict one."""

    def __init__(self, first: UrlGuard, redirects: UrlGuard) -> None:
        self.first, self.redirects = first, redirects

    def check_url(self, url: str) -> GuardedTarget:
        return self.first.check_url(url)

    def check_redirect(self, current_url: str, location: str) -> GuardedTarget:
        return self.redirects.check_redirect(current_url, location)


def test_redirect_to_a_name_resolving_to_loopback_is_refused(fake: FakeCometAPI, s3: Any, s3_calls: list[str]) -> None:
    strict = UrlGuard(["videos.test"], resolver=NameResolver({"cdn.videos.test": "127.0.0.1"}))
    rid = fake.add_job(outcome="done")
    fake.inject("redirect", location="https://cdn.videos.test/v.mp4?sig=SECRET")
    with pytest.raises(UrlRefusedError) as info:
        make_archiver(s3, SplitGuard(loopback_guard(), strict)).archive(fake.video_url(rid), BUCKET, "v/x.mp4")
    assert "127.0.0.1: loopback" in str(info.value) and "SECRET" not in str(info.value)
    assert s3_calls == []


def test_refused_url_never_connects(fake: FakeCometAPI, s3: Any, s3_calls: list[str]) -> None:
    rid = fake.add_job(outcome="done")
    strict = UrlGuard(["vidgen.x.ai"])
    with pytest.raises(UrlRefusedError):
        make_archiver(s3, strict).archive(fake.video_url(rid), BUCKET, "v/x.mp4")
    assert fake.count() == 0 and s3_calls == []


# --- S3 side, idempotency, cleanup, logs ----------------------------------------------------------


def test_s3_failure_is_retryable(fake: FakeCometAPI, s3: Any) -> None:
    rid = fake.add_job(outcome="done")
    with pytest.raises(ArchiveError) as info:
        make_archiver(s3).archive(fake.video_url(rid), "no-such-bucket-here", "videos/x.mp4")
    assert info.value.retryable and "NoSuchBucket" in str(info.value)


def test_existing_detects_a_previous_upload(fake: FakeCometAPI, s3: Any) -> None:
    archiver = make_archiver(s3)
    key = "videos/again.mp4"
    assert archiver.existing(BUCKET, key) is None
    rid = fake.add_job(outcome="done")
    stored = archiver.archive(fake.video_url(rid), BUCKET, key)
    assert archiver.existing(BUCKET, key) == stored


def test_existing_ignores_objects_without_a_recorded_digest(s3: Any) -> None:
    archiver = make_archiver(s3)
    s3.put_object(Bucket=BUCKET, Key="videos/untagged.mp4", Body=b"x")
    assert archiver.existing(BUCKET, "videos/untagged.mp4") is None
    s3.put_object(Bucket=BUCKET, Key="videos/badsize.mp4", Body=b"xy", Tagging=f"sha256={'a' * 64}&size=3")
    assert archiver.existing(BUCKET, "videos/badsize.mp4") is None
    s3.put_object(Bucket=BUCKET, Key="videos/ok.mp4", Body=b"xy", Tagging=f"sha256={'a' * 64}&size=2")
    assert archiver.existing(BUCKET, "videos/ok.mp4") is not None


def forbidden(operation: str = "HeadObject") -> ClientError:
    """What botocore raises for a 403 answer to a HEAD (no body, so the code is the status)."""
    return ClientError(
        {"Error": {"Code": "403", "Message": "Forbidden"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, operation
    )


def test_a_refused_head_means_missing_only_under_the_prefix_the_caller_may_list(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copier's ListBucket is limited to its prefix (s3:prefix); whether S3 then answers a
    missing key's HeadObject with 404 or 403 is not documented, so a 403 under that prefix is
    "no earlier copy". Anywhere else, or without a listable prefix, a 403 stays an error."""
    archiver = make_archiver(s3)
    refusal = forbidden()

    def refuse(**kwargs: Any) -> Any:
        raise refusal

    monkeypatch.setattr(s3, "head_object", refuse)
    assert archiver.existing(BUCKET, "videos/x.mp4", listable_prefix="videos/") is None
    assert archiver.existing(BUCKET, "x.mp4", listable_prefix="") is None  # VideoPrefix may be empty
    for key, prefix in (("videos/x.mp4", None), ("other/x.mp4", "videos/"), ("videosx.mp4", "videos/")):
        with pytest.raises(ArchiveError) as info:
            archiver.existing(BUCKET, key, listable_prefix=prefix)
        assert info.value.retryable and "403" in str(info.value), key
    for code in ("AccessDenied", "Forbidden"):  # the same refusal, as a GET-style error body names it
        refusal = ClientError({"Error": {"Code": code, "Message": "no"}}, "HeadObject")
        assert archiver.existing(BUCKET, "videos/x.mp4", listable_prefix="videos/") is None
        with pytest.raises(ArchiveError):
            archiver.existing(BUCKET, "videos/x.mp4")


def test_abort_stale_uploads_only_touches_the_key(s3: Any) -> None:
    for key in ("videos/a.mp4", "videos/a.mp4", "videos/a.mp4.other"):
        s3.create_multipart_upload(Bucket=BUCKET, Key=key)
    assert make_archiver(s3).abort_stale_uploads(BUCKET, "videos/a.mp4") == 2
    assert [u["Key"] for u in uploads_left(s3)] == ["videos/a.mp4.other"]


def test_logs_and_errors_never_carry_the_query(fake: FakeCometAPI, s3: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rid = fake.add_job(outcome="done")
    other = fake.add_job(outcome="done")
    fake.inject("redirect", location=f"/videos/{other}.mp4?sig=SECRET2")
    make_archiver(s3).archive(fake.video_url(rid) + "?sig=SECRET1", BUCKET, "videos/x.mp4")
    fake.inject("status", code=404)
    with pytest.raises(ArchiveError) as info:
        make_archiver(s3).archive(fake.video_url(rid) + "?sig=SECRET3", BUCKET, "videos/y.mp4")
    assert "SECRET" not in caplog.text and "SECRET" not in str(info.value)


def test_bad_metadata_is_refused_before_any_io(fake: FakeCometAPI, s3: Any, s3_calls: list[str]) -> None:
    rid = fake.add_job(outcome="done")
    with pytest.raises(ValueError):
        make_archiver(s3).archive(fake.video_url(rid), BUCKET, "videos/x.mp4", metadata={"Bad Key": "x"})
    assert fake.count() == 0 and s3_calls == []
