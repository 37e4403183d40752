"""Copy a finished video from its temporary URL into S3: streamed, bounded memory, no disk.

Use::

    archiver = VideoArchiver(UrlGuard(["vidgen.x.ai"]), boto3.client("s3"), max_video_bytes=2 << 30)
    done = archiver.existing(bucket, key) or archiver.archive(url, bucket, key, metadata={"request-id": rid})
    done.s3_uri, done.size_bytes, done.sha256

How a copy goes:

1. ``UrlGuard.check_url`` vets the URL and resolves it once; the request connects to a vetted
   address (``urlguard.connection_pool``), so DNS rebinding cannot move it. Redirects are not
   followed by urllib3: each hop (at most ``max_redirects``) goes through ``check_redirect``.
2. The answer must be 200 with a video ``Content-Type`` and an announced size within
   ``max_video_bytes``; the first body bytes must carry the MP4 ``ftyp`` box. All of this is
   checked before any S3 call, so a bad answer never creates an object or an upload.
3. ``s3_client.upload_fileobj`` reads a ``_BodyReader`` over the response. It is not seekable,
   so s3transfer reads it sequentially from one thread (its submission thread) in part-sized
   ``read(n)`` calls, and holds at most ``max_in_memory_upload_chunks`` parts in memory (set
   to ``max_concurrency + 2``; with 8 MiB parts and 4 threads that is ~48 MiB whatever the
   video size). The reader hashes (SHA-256) and counts every byte as it passes, stops the
   stream past ``max_video_bytes`` (TOO_LARGE) or past the announced length, and at the end
   of the stream checks the announced length was reached (truncated otherwise): it raises
   from ``read``, s3transfer aborts the multipart upload, and we abort any leftover upload of
   the key as well (``abort_stale_uploads``).
4. A video that announces at most ``MULTIPART_THRESHOLD`` bytes (most: a few MiB) is read whole,
   then stored with one ``PutObject`` that carries its tags (``sha256``, ``size``) and its
   ``ChecksumSHA256``, which S3 checks against the bytes it received: one billed request where
   an upload, a tagging and a HEAD were three. For a larger one, read on.
   The whole-object SHA-256 is only known at the end, so it cannot be sent as metadata with
   the upload. S3's own ``ChecksumAlgorithm=SHA256`` gives a checksum of part checksums for a
   multipart upload, not the file's digest, and setting metadata afterwards needs a
   ``copy_object`` (a full server-side copy, limited to 5 GB). So: the digest is stored in the
   object's tags (``sha256``, ``size``) with ``put_object_tagging`` right after the upload (no
   copy), and returned so the caller stores it on the job. Metadata known up front (the
   caller's, e.g. ``request-id``, plus ``source-host``) goes with the upload. ``existing``
   reads it back: an object with a ``sha256`` tag is complete, so a retry can skip the copy.

Decisions on what the video host answers (``ArchiveError.retryable`` drives the queue's retries):

- 403/404/410 (and 401): ``PermanentArchiveError`` URL_EXPIRED: a temporary URL that no longer
  serves. 408/425/429 and 5xx: retryable TRANSFER_FAILED. Any other 4xx, a 2xx other than 200,
  a 3xx that is not a redirect or has no Location: permanent TRANSFER_FAILED (asking again gets
  the same answer). More than ``max_redirects`` hops: permanent URL_REFUSED.
- Timeouts, connection errors, TLS failures, a body that ends before its Content-Length:
  retryable TRANSFER_FAILED.
- ``Content-Type``: ``video/*`` is stored as sent. ``application/octet-stream``,
  ``binary/octet-stream`` or no type at all are accepted, because object stores and CDNs
  serve files uploaded without a type that way; the ``ftyp`` check is what proves it is a
  video, and the object is stored as ``video/mp4``. Anything else (``text/html``,
  ``application/json``, ``image/*``): permanent NOT_A_VIDEO. A ``Content-Encoding`` other
  than identity: NOT_A_VIDEO (we store bytes as served and ask for identity).
- Over ``max_video_bytes``, announced or streamed: permanent TOO_LARGE.
- A malformed Content-Length (anything but ASCII digits, or values that disagree): permanent
  TRANSFER_FAILED. A server sending garbage framing headers is broken, not busy: asking again
  gets the same answer, and a body it frames wrongly cannot be trusted.
- A body longer than its Content-Length: HTTP framing (RFC 9112 section 6.3) makes the body
  exactly the announced bytes, and http.client stops reading there and closes the connection,
  so bytes beyond it are never seen (the object is stored as announced). The reader still
  refuses a stream that passes the announced length (retryable TRANSFER_FAILED) in case a
  transport ever delivers it. A chunked answer (no Content-Length) is bounded by the cap only.
- S3 errors: retryable TRANSFER_FAILED.

- ``archive(..., time_limit=seconds)`` ends the transfer by then whatever the server does:
  retryable TRANSFER_FAILED, multipart upload aborted. Checking the clock between reads is not
  enough (one read blocks until its bytes arrive, and a byte every 29 s keeps a 30 s read
  timeout happy for ever), so a ``_Deadline`` thread shuts the connection's socket down at the
  deadline: a read blocked in the headers or the body returns at once, and the reader reports
  the time limit (never a clean end of stream: a body without a length would look complete).
  The S3 calls after the last byte (completing the upload, tagging) are bounded by boto3's own
  timeouts, not by the limit: the caller keeps a margin for them.

Measured (``benchmarks/copy_video.py``, 1 GiB through moto's S3 server): peak RSS ~140 MB for the
whole process, ~53 MB of it Python and boto3 before the copy starts.

IAM the copier needs on the bucket: ``s3:PutObject``, ``s3:PutObjectTagging``, ``s3:GetObject``
(HeadObject), ``s3:GetObjectTagging``, ``s3:AbortMultipartUpload`` and, on the bucket itself,
``s3:ListBucketMultipartUploads`` and ``s3:ListBucket`` (limited to its prefix: see ``existing``).

Messages and logs carry ``redact(url)`` only: never a query string (signed URLs). urllib3's own
DEBUG request-line log gets a filter that drops the query too.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import math
import re
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError
from urllib3 import BaseHTTPResponse, HTTPConnectionPool, Timeout
from urllib3.exceptions import ConnectTimeoutError, HTTPError, InvalidHeader, NewConnectionError

from grokvideo.errors import ArchiveError, PermanentArchiveError
from grokvideo.models import ArchiveFailureReason as Reason
from grokvideo.urlguard import GuardedTarget, UrlGuard, connection_pool, redact

__all__ = [
    "StoredVideo",
    "VideoArchiver",
    "redact",
    "transfer_config",
]

log = logging.getLogger(__name__)


MiB = 1 << 20
MULTIPART_THRESHOLD = 8 * MiB
MIN_PART_SIZE = 8 * MiB
MAX_PARTS = 9_000  # S3 allows 10,000; keep headroom
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
EXPIRED_STATUSES = frozenset({401, 403, 404, 410})
RETRYABLE_4XX = frozenset({408, 425, 429})
GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
DEFAULT_CONTENT_TYPE = "video/mp4"
SIGNATURE_BYTES = 12
_VIDEO_TYPE = re.compile(r"video/[a-z0-9][a-z0-9.+-]{0,63}")
_META_KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DIGITS = re.compile(r"[0-9]{1,30}")  # ASCII digits only; 30 is far past any cap, well inside int()
_S3_ERRORS = (ClientError, BotoCoreError, Boto3Error)


class _DropQueryFilter(logging.Filter):
    """urllib3 logs each request line at DEBUG, query string included: drop the query there."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                a.split("?", 1)[0] + "?<redacted>" if isinstance(a, str) and "?" in a else a for a in record.args
            )
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_DropQueryFilter())


@dataclass(frozen=True, slots=True)
class StoredVideo:
    """A video in S3 (what ``Video Stored`` reports)."""

    bucket: str
    key: str
    s3_uri: str
    size_bytes: int
    sha256: str
    content_type: str
    etag: str

    @classmethod
    def from_head(
        cls, bucket: str, key: str, head: Mapping[str, Any], *, sha256: str, content_type: str | None
    ) -> StoredVideo:
        """Describe an object from its ``head_object`` answer and the digest we recorded for it."""
        return cls(
            bucket=bucket,
            key=key,
            s3_uri=f"s3://{bucket}/{key}",
            size_bytes=int(head.get("ContentLength", -1)),
            sha256=sha256,
            content_type=str(content_type or DEFAULT_CONTENT_TYPE),
            etag=str(head.get("ETag", "")).strip('"'),
        )


def transfer_config(expected_size: int, *, max_concurrency: int = 4) -> TransferConfig:
    """boto3 multipart settings for a stream of about ``expected_size`` bytes.

    Parts are at least 8 MiB and large enough that the upload needs at most 9,000 of them;
    at most ``max_concurrency + 2`` parts are in memory at once.

    >>> [transfer_config(n << 30).multipart_chunksize // MiB for n in (1, 100)]
    [8, 12]
    """
    part = max(MIN_PART_SIZE, math.ceil(max(expected_size, 1) / MAX_PARTS / MiB) * MiB)
    config = TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD,
        multipart_chunksize=part,
        max_concurrency=max_concurrency,
        max_io_queue=max_concurrency + 2,
        use_threads=True,
    )
    # s3transfer's bound on buffered parts for non-seekable streams (boto3 does not expose it).
    config.max_in_memory_upload_chunks = max_concurrency + 2
    return config


class _Deadline:
    """A transfer's time limit, enforced whatever the server does (a no-op without a limit).

    ``watch(pool)`` registers the pool's connections; at the deadline a timer thread shuts their
    sockets down (and keeps doing so for one still connecting), so a blocked read returns at once.
    Use as a context manager: leaving it stops the thread.
    """

    POLL_SECONDS = 0.05

    def __init__(self, seconds: float | None, clock: Any = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._at = None if seconds is None else clock() + seconds
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fired = False

    def __enter__(self) -> _Deadline:
        if self._at is not None:
            self._thread = threading.Thread(target=self._run, name="archive-deadline", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def left(self) -> float | None:
        """Seconds until the deadline (None without a limit)."""
        return None if self._at is None else self._at - self._clock()

    def passed(self) -> bool:
        left = self.left()
        return self.fired or (left is not None and left <= 0)

    def error(self, received: int) -> ArchiveError:
        return ArchiveError(
            f"copy stopped at its {self.seconds:g} s time limit after {received} bytes",
            reason=Reason.TRANSFER_FAILED,
        )

    def check(self, received: int = 0) -> None:
        if self.passed():
            raise self.error(received)

    def watch(self, pool: HTTPConnectionPool) -> None:
        """Track every connection ``pool`` makes, so the deadline can cut it."""
        if self._at is None:
            return
        # urllib3's own factory (private, stable since 1.x): the only point where a connection
        # exists before its answer does, so slow headers can be cut as well as a slow body.
        new_conn = pool._new_conn

        def tracked() -> Any:
            conn = new_conn()
            with self._lock:
                self._connections.append(conn)
            return conn

        pool._new_conn = tracked  # type: ignore[method-assign]

    def _run(self) -> None:
        assert self._at is not None
        if self._stop.wait(max(0.0, self._at - self._clock())):
            return
        self.fired = True
        while True:
            with self._lock:
                connections = list(self._connections)
            for conn in connections:
                sock = getattr(conn, "sock", None)
                if isinstance(sock, socket.socket):
                    # The plain socket's shutdown, also under TLS: SSLSocket.shutdown would unwrap
                    # the TLS object under a reader in another thread. Shutdown, not close: the fd
                    # stays ours until the reader's own cleanup closes it.
                    with contextlib.suppress(OSError):
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
            if self._stop.wait(self.POLL_SECONDS):
                return


class _BodyReader:
    """File-like ``read(n)`` over a urllib3 response: hashes, counts and enforces the caps.

    ``read(n)`` returns exactly ``n`` bytes until the end of the stream (s3transfer needs full
    parts), pulling ``chunk_size`` bytes at a time so the caps and the time limit are checked
    often. Not seekable on purpose, so s3transfer streams it instead of seeking around.
    """

    def __init__(
        self,
        response: BaseHTTPResponse,
        *,
        announced: int | None,
        max_bytes: int,
        chunk_size: int,
        deadline: _Deadline | None = None,
    ) -> None:
        self._response = response
        self._deadline = deadline or _Deadline(None)
        self._announced = announced
        self._max_bytes = max_bytes
        self._chunk_size = chunk_size
        self._pending = b""
        self._digest = hashlib.sha256()
        self.received = 0
        self.eof = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

    def prime(self, n: int) -> bytes:
        """Buffer at least ``n`` bytes (fewer only at the end) and return the first ``n``."""
        pieces = [self._pending]
        have = len(self._pending)
        while have < n and not self.eof:
            data = self._pull(max(n - have, self._chunk_size))
            pieces.append(data)
            have += len(data)
        self._pending = b"".join(pieces)
        return self._pending[:n]

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            pieces = [self._pending]
            self._pending = b""
            while not self.eof:
                pieces.append(self._pull(self._chunk_size))
            return b"".join(pieces)
        if len(self._pending) >= n:
            out, self._pending = self._pending[:n], self._pending[n:]
            return out
        pieces = [self._pending]
        need = n - len(self._pending)
        self._pending = b""
        while need > 0 and not self.eof:
            data = self._pull(min(need, self._chunk_size))
            pieces.append(data)
            need -= len(data)
        return pieces[1] if len(pieces) == 2 and not pieces[0] else b"".join(pieces)

    def _pull(self, amount: int) -> bytes:
        self._deadline.check(self.received)
        amount = max(1, min(amount, self._max_bytes - self.received + 1))
        try:
            data = self._response.read(amount)
        except Exception as exc:
            if self._deadline.fired:  # the deadline cut the connection under this read
                raise self._deadline.error(self.received) from None
            if isinstance(exc, (HTTPError, OSError)):
                raise ArchiveError(
                    f"video transfer interrupted after {self.received} bytes ({type(exc).__name__})",
                    reason=Reason.TRANSFER_FAILED,
                ) from None
            raise
        if not data:
            if self._deadline.fired:  # a cut stream ends like a whole one when no length was announced
                raise self._deadline.error(self.received)
            self.eof = True
            if self._announced is not None and self.received != self._announced:
                raise ArchiveError(
                    f"video body ended after {self.received} of {self._announced} announced bytes",
                    reason=Reason.TRANSFER_FAILED,
                )
            return b""
        self.received += len(data)
        if self.received > self._max_bytes:
            raise PermanentArchiveError(
                f"video is larger than the {self._max_bytes} byte limit", reason=Reason.TOO_LARGE
            )
        if self._announced is not None and self.received > self._announced:
            raise ArchiveError(
                f"video body is longer than its announced {self._announced} bytes",
                reason=Reason.TRANSFER_FAILED,
            )
        self._digest.update(data)
        return data


class VideoArchiver:
    """Streams videos from guarded URLs into S3; see the module docstring for every decision."""

    def __init__(
        self,
        guard: UrlGuard,
        s3_client: Any,
        *,
        max_video_bytes: int,
        connect_timeout: float = 5,
        read_timeout: float = 30,
        max_redirects: int = 3,
        chunk_size: int = MiB,
        max_concurrency: int = 4,
        ca_certs: str | None = None,
    ) -> None:
        self._guard = guard
        self._s3 = s3_client
        self._max_bytes = max_video_bytes
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_redirects = max_redirects
        self._chunk_size = chunk_size
        self._max_concurrency = max_concurrency
        self._ca_certs = ca_certs

    def archive(
        self,
        url: str,
        bucket: str,
        key: str,
        *,
        metadata: Mapping[str, str] | None = None,
        time_limit: float | None = None,
    ) -> StoredVideo:
        """Copy the video at ``url`` to ``s3://bucket/key``; raise ``ArchiveError`` (or a subclass).

        ``time_limit`` (seconds) ends the transfer by then, whatever the server does (slow
        headers, a body that trickles in), with a retryable error and the multipart upload
        aborted, so a Lambda can pass its remaining time minus a margin and still clean up and
        report before it is killed.
        """
        extra_metadata = _checked_metadata(metadata)
        with _Deadline(time_limit) as deadline, contextlib.ExitStack() as cleanup:
            target, response = self._fetch(self._guard.check_url(url), cleanup, deadline)
            announced, content_type = self._check_headers(response)
            reader = _BodyReader(
                response,
                announced=announced,
                max_bytes=self._max_bytes,
                chunk_size=self._chunk_size,
                deadline=deadline,
            )
            head = reader.prime(SIGNATURE_BYTES)
            if head[4:8] != b"ftyp":
                raise PermanentArchiveError(
                    f"{target.redacted} is not an MP4 video (no ftyp box)", reason=Reason.NOT_A_VIDEO
                )
            extra_metadata.setdefault("source-host", target.host)
            if announced is not None and announced <= MULTIPART_THRESHOLD:
                return self._put_whole(reader, bucket, key, content_type, extra_metadata)
            size_hint = announced if announced is not None else self._max_bytes
            self._upload(reader, bucket, key, content_type, extra_metadata, size_hint)
        digest = reader.hexdigest()
        return self._finish(bucket, key, reader.received, digest, content_type)

    def existing(self, bucket: str, key: str, *, listable_prefix: str | None = None) -> StoredVideo | None:
        """The object at ``key`` if a previous copy completed (it has a ``sha256`` tag), else None.

        S3 answers HeadObject of a missing key with 404 only to a caller allowed ``s3:ListBucket``
        on the bucket, else 403. The copier's ListBucket is limited to its prefix (a condition on
        ``s3:prefix``), and AWS does not document whether such a grant counts for that check (Ceph
        RGW, matching AWS, says it does for keys under the prefix), so a caller passes the prefix
        it may list as ``listable_prefix``: a 403 on a key under it means "no finished copy" (the
        copy then runs, and a real lack of access fails its upload). Anywhere else a 403 is an
        error, as before.
        """
        try:
            head = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = _error_code(exc)
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            forbidden = code in ("403", "Forbidden", "AccessDenied")
            if forbidden and listable_prefix is not None and key.startswith(listable_prefix):
                log.info("HeadObject of s3://%s/%s refused (403): taken as no earlier copy", bucket, key)
                return None
            raise _s3_error("head_object", exc) from None
        except _S3_ERRORS as exc:
            raise _s3_error("head_object", exc) from None
        tags = self._tags(bucket, key)
        digest = tags.get("sha256", "")
        size = int(head.get("ContentLength", -1))
        if not _SHA256.fullmatch(digest) or tags.get("size", str(size)) != str(size):
            return None
        return StoredVideo.from_head(bucket, key, head, sha256=digest, content_type=head.get("ContentType"))

    def abort_stale_uploads(self, bucket: str, key: str) -> int:
        """Abort every unfinished multipart upload of exactly ``key``; return how many. Best effort.

        Another copier working on the same key at that moment would lose its upload and retry.
        """
        aborted = 0
        try:
            paginator = self._s3.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=bucket, Prefix=key):
                for upload in page.get("Uploads", []):
                    if upload.get("Key") == key:
                        self._s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"])
                        aborted += 1
        except _S3_ERRORS as exc:
            log.warning("could not abort stale uploads of s3://%s/%s: %s", bucket, key, type(exc).__name__)
        return aborted

    # --- HTTP --------------------------------------------------------------------------------

    def _fetch(
        self, target: GuardedTarget, cleanup: contextlib.ExitStack, deadline: _Deadline
    ) -> tuple[GuardedTarget, BaseHTTPResponse]:
        """GET ``target``, following up to ``max_redirects`` vetted redirects; return a 200 answer."""
        for hop in range(self._max_redirects + 1):
            with contextlib.ExitStack() as hop_cleanup:
                response = self._open(target, hop_cleanup, deadline)
                status = response.status
                if status == 200:
                    cleanup.push(hop_cleanup.pop_all())
                    return target, response
                location = response.headers.get("Location")
                if status not in REDIRECT_STATUSES or not location:
                    raise _status_error(status, target)
            if hop == self._max_redirects:
                break
            log.info("video redirect %s from %s", status, target.redacted)
            target = self._guard.check_redirect(target.url, location)
        raise PermanentArchiveError(
            f"more than {self._max_redirects} redirects from {target.redacted}", reason=Reason.URL_REFUSED
        )

    def _open(self, target: GuardedTarget, cleanup: contextlib.ExitStack, deadline: _Deadline) -> BaseHTTPResponse:
        """Send the GET to the vetted addresses in turn until one accepts the connection."""
        headers = {
            "Host": target.host_header,
            "Accept": "video/mp4, video/*;q=0.9, application/octet-stream;q=0.5",
            "Accept-Encoding": "identity",
            "User-Agent": "grokvideo-archiver/1",
            "Connection": "close",
        }
        failure = "no address"
        for address in target.addresses:
            deadline.check()
            pool: HTTPConnectionPool = connection_pool(
                target, address, timeout=self._timeout(deadline.left()), ca_certs=self._ca_certs
            )
            deadline.watch(pool)
            try:
                response = pool.urlopen(
                    "GET",
                    target.path,
                    headers=headers,
                    redirect=False,
                    retries=False,
                    assert_same_host=False,
                    preload_content=False,
                    decode_content=False,
                    release_conn=False,
                )
            except (NewConnectionError, ConnectTimeoutError) as exc:
                pool.close()
                deadline.check()
                failure = type(exc).__name__
                continue
            except InvalidHeader:  # urllib3's own check: Content-Length values that disagree
                pool.close()
                raise PermanentArchiveError(
                    f"invalid Content-Length from {target.redacted} (values disagree)", reason=Reason.TRANSFER_FAILED
                ) from None
            except (HTTPError, OSError) as exc:
                pool.close()
                deadline.check()
                raise ArchiveError(
                    f"request to {target.redacted} failed ({type(exc).__name__})",
                    reason=Reason.TRANSFER_FAILED,
                ) from None
            cleanup.callback(pool.close)
            cleanup.callback(response.release_conn)
            cleanup.callback(response.close)
            return response
        raise ArchiveError(f"cannot connect to {target.redacted} ({failure})", reason=Reason.TRANSFER_FAILED)

    def _timeout(self, left: float | None) -> Timeout:
        """The configured timeouts, none longer than the time left (the deadline thread cuts the rest)."""
        if left is None:
            return Timeout(connect=self._connect_timeout, read=self._read_timeout)
        left = max(left, 0.001)
        return Timeout(connect=min(self._connect_timeout, left), read=min(self._read_timeout, left))

    def _check_headers(self, response: BaseHTTPResponse) -> tuple[int | None, str]:
        """``(announced length or None, content type to store)``; raise for a non-video answer."""
        media_type = (response.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if _VIDEO_TYPE.fullmatch(media_type):
            content_type = media_type
        elif media_type in GENERIC_TYPES:
            content_type = DEFAULT_CONTENT_TYPE
        else:
            raise PermanentArchiveError(f"answer is {media_type[:64]!r}, not a video", reason=Reason.NOT_A_VIDEO)
        encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding != "identity":
            raise PermanentArchiveError(
                f"video is served with Content-Encoding {encoding[:32]!r}", reason=Reason.NOT_A_VIDEO
            )
        announced = _content_length(response)
        if announced is not None and announced > self._max_bytes:
            raise PermanentArchiveError(
                f"video announces {announced} bytes, over the {self._max_bytes} byte limit",
                reason=Reason.TOO_LARGE,
            )
        return announced, content_type

    # --- S3 ----------------------------------------------------------------------------------

    def _upload(
        self,
        reader: _BodyReader,
        bucket: str,
        key: str,
        content_type: str,
        metadata: dict[str, str],
        size_hint: int,
    ) -> None:
        config = transfer_config(size_hint, max_concurrency=self._max_concurrency)
        extra = {"ContentType": content_type, "Metadata": metadata}
        try:
            self._s3.upload_fileobj(reader, bucket, key, ExtraArgs=extra, Config=config)
        except _S3_ERRORS as exc:
            self.abort_stale_uploads(bucket, key)
            raise _s3_error("upload", exc) from None
        except BaseException:
            self.abort_stale_uploads(bucket, key)
            raise
        if not reader.eof:  # s3transfer stops at the first empty read, which only the end gives
            raise ArchiveError("upload ended before the video did", reason=Reason.TRANSFER_FAILED)

    def _put_whole(
        self, reader: _BodyReader, bucket: str, key: str, content_type: str, metadata: dict[str, str]
    ) -> StoredVideo:
        """Store a small video in one request, its tags and its checksum with it."""
        body = reader.read()  # the reader enforces the announced length, the cap and the deadline
        digest = reader.hexdigest()
        try:
            answer = self._s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                Metadata=metadata,
                Tagging=urlencode({"sha256": digest, "size": str(len(body))}),
                ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode("ascii"),
            )
        except _S3_ERRORS as exc:
            raise _s3_error("put_object", exc) from None
        log.info("stored s3://%s/%s (%d bytes, sha256 %s)", bucket, key, len(body), digest)
        head = {"ContentLength": len(body), "ETag": answer.get("ETag", "")}
        return StoredVideo.from_head(bucket, key, head, sha256=digest, content_type=content_type)

    def _finish(self, bucket: str, key: str, size: int, digest: str, content_type: str) -> StoredVideo:
        """Record the digest in the object's tags and describe the stored object."""
        try:
            self._s3.put_object_tagging(
                Bucket=bucket,
                Key=key,
                Tagging={"TagSet": [{"Key": "sha256", "Value": digest}, {"Key": "size", "Value": str(size)}]},
            )
            head = self._s3.head_object(Bucket=bucket, Key=key)
        except _S3_ERRORS as exc:
            raise _s3_error("tagging", exc) from None
        if int(head.get("ContentLength", -1)) != size:
            raise ArchiveError(
                f"s3://{bucket}/{key} holds {head.get('ContentLength')} bytes, {size} were sent",
                reason=Reason.TRANSFER_FAILED,
            )
        log.info("stored s3://%s/%s (%d bytes, sha256 %s)", bucket, key, size, digest)
        return StoredVideo.from_head(bucket, key, head, sha256=digest, content_type=content_type)

    def put_json(self, bucket: str, key: str, document: Mapping[str, Any]) -> None:
        """Write a small JSON document (the manifest) beside a video; S3 errors are retryable."""
        body = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        except _S3_ERRORS as exc:
            raise _s3_error("put_object", exc) from None

    def _tags(self, bucket: str, key: str) -> dict[str, str]:
        try:
            tag_set = self._s3.get_object_tagging(Bucket=bucket, Key=key).get("TagSet", [])
        except _S3_ERRORS as exc:
            raise _s3_error("get_object_tagging", exc) from None
        return {str(t.get("Key")): str(t.get("Value")) for t in tag_set}


def _status_error(status: int, target: GuardedTarget) -> ArchiveError:
    where = target.redacted
    if status in EXPIRED_STATUSES:
        return PermanentArchiveError(
            f"video URL answered {status}: expired or gone ({where})", reason=Reason.URL_EXPIRED
        )
    if status >= 500 or status in RETRYABLE_4XX:
        return ArchiveError(f"video host answered {status} ({where})", reason=Reason.TRANSFER_FAILED)
    return PermanentArchiveError(f"video host answered {status} ({where})", reason=Reason.TRANSFER_FAILED)


def _content_length(response: BaseHTTPResponse) -> int | None:
    """The announced body length: ASCII digits (RFC 9110 section 8.6), repeated equal values allowed.

    Anything else is a permanent TRANSFER_FAILED: ``str.isdigit`` and ``int`` accept far more
    than HTTP does (``"²".isdigit()`` is True, ``int("٣")`` is 3, ``int("1_0")`` is 10).
    """
    if "chunked" in (response.headers.get("Transfer-Encoding") or "").lower():
        return None
    raw = response.headers.get("Content-Length")
    if raw is None:
        return None
    values = {v.strip(" \t") for v in raw.split(",")}
    value = values.pop() if len(values) == 1 else ""
    if not _DIGITS.fullmatch(value):
        raise _invalid_length(raw)
    return int(value)


def _invalid_length(raw: str) -> PermanentArchiveError:
    shown = raw[:40].encode("ascii", "backslashreplace").decode("ascii")
    return PermanentArchiveError(f"invalid Content-Length {shown!r}", reason=Reason.TRANSFER_FAILED)


def _checked_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """S3 user metadata: lower-case keys of letters, digits and dashes; printable ASCII values."""
    checked: dict[str, str] = {}
    for name, value in (metadata or {}).items():
        if not _META_KEY.fullmatch(name) or not (value.isascii() and value.isprintable()) or len(value) > 512:
            raise ValueError(f"invalid S3 metadata entry {name[:64]!r}")
        checked[name] = value
    return checked


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _s3_error(operation: str, exc: BaseException) -> ArchiveError:
    detail = _error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
    return ArchiveError(f"S3 {operation} failed ({detail})", reason=Reason.TRANSFER_FAILED)
