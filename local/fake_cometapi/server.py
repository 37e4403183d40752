"""HTTP plumbing: a threading server that can drop its connections, and a keep-alive request handler."""

from __future__ import annotations

import socket
import socketserver
import sys
import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .replies import _REASONS, Reply, comet_error

if TYPE_CHECKING:
    from .fake import FakeCometAPI

MAX_REQUEST_BODY = 16 << 20

Headers = Message  # what BaseHTTPRequestHandler parses request headers into (``.get`` is all we use)


class _Server(ThreadingHTTPServer):
    """Thread per connection; tracks open connections so ``stop()`` can drop keep-alive ones."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeCometAPI) -> None:
        self.fake = fake
        self.connections_accepted = 0
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup (``getfqdn``), which can be slow."""
        socketserver.TCPServer.server_bind(self)
        host, self.server_port = self.server_address[:2]
        self.server_name = str(host)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
            self.connections_accepted += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Shut down every open connection (idle keep-alive ones included)."""
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connection errors are the client's business; print anything else (a bug in the fake)."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive plumbing: read the request, ask the fake for a :class:`Reply`, write it."""

    protocol_version = "HTTP/1.1"
    server_version = "fake-cometapi/1.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections close after this
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between headers and body
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, fmt: str, *args: Any) -> None:
        """Quiet unless the fake is verbose (never logs headers, so never the key)."""
        if self.server.fake.verbose:
            sys.stderr.write(f"fake-cometapi {self.address_string()} {fmt % args}\n")

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
            if body is None:
                return
            reply = self.server.fake._handle(self.command, urlsplit(self.path).path, self.headers, body)
            if reply is None:
                self._abort()
            else:
                self._send(reply)
        except OSError:
            self.close_connection = True

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked); None after answering 400/413 itself."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            total = 0
            while True:
                try:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    self._send(comet_error(400, "invalid_request", "bad chunked body", close=True))
                    return None
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                total += size
                if total > MAX_REQUEST_BODY:
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        else:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self._send(comet_error(400, "invalid_request", "bad Content-Length", close=True))
                return None
            if length <= MAX_REQUEST_BODY:
                return self.rfile.read(length) if length > 0 else b""
        self._send(comet_error(413, "invalid_request", "request body too large", close=True))
        return None

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status, reply.reason or _REASONS.get(reply.status))
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        announced = reply.length if reply.announce is None else reply.announce
        self.send_header("Content-Length", str(announced))
        if reply.close or reply.announce is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            return
        sent = 0
        for piece in reply.chunks():
            if reply.cut_after is not None and sent + len(piece) >= reply.cut_after:
                self.wfile.write(piece[: reply.cut_after - sent])
                self._abort()
                return
            self.wfile.write(piece)
            sent += len(piece)
            if reply.chunk_delay and not self.server.fake._sleep(reply.chunk_delay):
                self._abort()
                return

    def _abort(self) -> None:
        """Drop the connection without (the rest of) an answer."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
