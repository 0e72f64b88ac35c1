"""A TCP proxy in front of PostgreSQL that fails where a network does: it loses the answer to a
COMMIT, and it turns new connections away. Over raw sockets, speaking just enough of the
PostgreSQL wire protocol (a length-prefixed message stream) to see a COMMIT and its answer.

- :meth:`PgProxy.lose_commit_answer`: the next COMMIT of a transaction that wrote ``sms_message``
  goes to the server, which commits it; its answer is dropped and the client's connection closed
  (the client sees the connection lost during its COMMIT, and cannot tell whether it committed).
  With ``then_refuse``, the proxy starts refusing before it closes that connection, so the
  client cannot ask on another one.
  With ``before_closing``, that function runs once the server has committed and before the
  client learns anything (another connection's work in between, the proxy's state changed).
- :attr:`PgProxy.refusing`: new connections are closed at once (the database away); the ones
  open are left alone.
- :attr:`PgProxy.hanging`: new connections are accepted and never answered (a host that does
  not answer); the ones open are left alone.

The client must not ask for TLS or GSS encryption (``sslmode=disable&gssencmode=disable``,
which :meth:`PgProxy.url` adds): the proxy reads the stream.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import make_url

from sms_worker.embedded import free_port

_WRITES_MESSAGES = (b"INSERT INTO sms_message", b"COPY sms_message")


@dataclass(frozen=True, slots=True)
class _Loss:
    then_refuse: bool
    before_closing: Callable[[], None] | None


class _Link:
    """One client connection and its own connection to the server."""

    def __init__(self, proxy: PgProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy, self.client, self.server = proxy, client, server
        self.wrote_messages = False
        self.losing = threading.Event()
        self.loss = _Loss(False, None)
        self.closed = threading.Event()

    def close(self) -> None:
        self.closed.set()
        for sock in (self.client, self.server):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def client_to_server(self) -> None:
        try:
            length = struct.unpack("!i", _read(self.client, 4))[0]
            self.server.sendall(struct.pack("!i", length) + _read(self.client, length - 4))
            while not self.closed.is_set():
                kind, payload = _read_message(self.client)
                if kind in (b"Q", b"P") and any(marker in payload for marker in _WRITES_MESSAGES):
                    self.wrote_messages = True
                if kind == b"Q" and payload.rstrip(b"\0").strip().upper() == b"COMMIT":
                    loss = self.proxy._take_commit_to_lose() if self.wrote_messages else None
                    if loss is not None:
                        self.loss = loss
                        self.losing.set()
                    self.wrote_messages = False
                self.server.sendall(kind + struct.pack("!i", len(payload) + 4) + payload)
        except OSError:
            self.close()

    def server_to_client(self) -> None:
        try:
            while not self.closed.is_set():
                kind, payload = _read_message(self.server)
                if self.losing.is_set():
                    if kind == b"Z":  # ready for query: the COMMIT is answered, and the answer lost
                        self.proxy.refusing = self.proxy.refusing or self.loss.then_refuse
                        if self.loss.before_closing is not None:
                            self.loss.before_closing()
                        self.proxy.commits_lost += 1
                        self.close()
                    continue
                self.client.sendall(kind + struct.pack("!i", len(payload) + 4) + payload)
        except OSError:
            self.close()


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError("closed")
        data += chunk
    return data


def _read_message(sock: socket.socket) -> tuple[bytes, bytes]:
    header = _read(sock, 5)
    return header[:1], _read(sock, struct.unpack("!i", header[1:])[0] - 4)


class PgProxy:
    """Listens on a free loopback port and forwards to ``upstream_url``'s server."""

    def __init__(self, upstream_url: str) -> None:
        self.upstream_url = make_url(upstream_url)
        self.port = free_port()
        self.refusing = False
        self.hanging = False
        self.commits_lost = 0
        self._to_lose: list[_Loss] = []
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def url(self) -> str:
        """``upstream_url`` through the proxy, unencrypted."""
        proxied = self.upstream_url.set(host="127.0.0.1", port=self.port)
        return proxied.update_query_dict({"sslmode": "disable", "gssencmode": "disable"}).render_as_string(hide_password=False)

    def lose_commit_answer(self, *, then_refuse: bool = False, before_closing: Callable[[], None] | None = None) -> None:
        """Lose the answer to the next COMMIT of a transaction that wrote messages; with
        ``then_refuse``, refuse new connections from then on; ``before_closing`` runs after the
        server committed and before the client's connection is closed."""
        with self._lock:
            self._to_lose.append(_Loss(then_refuse, before_closing))

    def _take_commit_to_lose(self) -> _Loss | None:
        """The next loss to make, or None."""
        with self._lock:
            return self._to_lose.pop(0) if self._to_lose else None

    def __enter__(self) -> PgProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        for link in self._links:
            link.close()
        for held in self._held:
            held.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            if self.hanging:
                self._held.append(client)
                continue
            server = socket.create_connection((self.upstream_url.host or "127.0.0.1", self.upstream_url.port or 5432))
            link = _Link(self, client, server)
            self._links.append(link)
            threading.Thread(target=link.client_to_server, daemon=True).start()
            threading.Thread(target=link.server_to_client, daemon=True).start()
