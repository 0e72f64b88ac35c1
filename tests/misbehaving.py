"""A small HTTP server that misbehaves the way real providers have: over raw sockets, so nothing
between it and the client smooths the misbehaviour away.

Paths (any method; the request is read and ignored):

- ``/drip/...``: ``200`` with a ``Content-Length``, then the JSON body one byte per ``interval``.
- ``/huge/...``: ``200`` with a ``Content-Length`` of ``size`` bytes, sent as fast as the client
  reads, never held in memory (a JSON object with one very long string).
- ``/codeless/...``: ``200`` with an error body that names no code, ``{"error": {}}`` (the
  error envelope Dexatel and DT A2P answer with, empty).
- anything else: ``404``.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time

DRIP_BODY = b'{"message_id": "msg_drip", "status": "queued", "recipient": "+12025550143"}'
CODELESS_BODY = b'{"error": {}}'


class _Handler(socketserver.BaseRequestHandler):
    server: MisbehavingServer

    def handle(self) -> None:
        connection: socket.socket = self.request
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = connection.recv(65536)
            if not chunk:
                return
            request += chunk
        path = request.split(b" ", 2)[1].decode()
        try:
            if path.startswith("/drip"):
                self._drip(connection)
            elif path.startswith("/huge"):
                self._huge(connection)
            elif path.startswith("/codeless"):
                self._headers(connection, len(CODELESS_BODY))
                connection.sendall(CODELESS_BODY)
            else:
                connection.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except OSError:
            return

    def _headers(self, connection: socket.socket, length: int) -> None:
        connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n".encode())

    def _drip(self, connection: socket.socket) -> None:
        self._headers(connection, len(DRIP_BODY))
        for byte in DRIP_BODY:
            if self.server.closing.wait(self.server.interval):
                return
            connection.sendall(bytes([byte]))
            self.server.dripped += 1

    def _huge(self, connection: socket.socket) -> None:
        head, tail = b'{"message_id": "msg_huge", "status": "queued", "padding": "', b'"}'
        self._headers(connection, self.server.size)
        connection.sendall(head)
        left = self.server.size - len(head) - len(tail)
        block = b"x" * 65536
        while left > 0:
            connection.sendall(block[: min(left, len(block))])
            left -= min(left, len(block))
            self.server.sent += min(left, len(block))
        connection.sendall(tail)


class MisbehavingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, interval: float = 1.0, size: int = 100 * 1024 * 1024) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.interval, self.size = interval, size
        self.closing = threading.Event()
        self.dripped = 0
        self.sent = 0
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> MisbehavingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self.shutdown()
        self.server_close()
        time.sleep(0.05)
