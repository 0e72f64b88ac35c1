"""The runtime's HTTP client (sms_worker.providers.transport.guarded_client): what it sends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sms_worker.providers.transport import guarded_client


class _SetsCookies(BaseHTTPRequestHandler):
    """Answers every request with a session cookie, and keeps the Cookie header each request carried."""

    seen: list[str | None] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).seen.append(self.headers.get("Cookie"))
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Set-Cookie", "session=account-a-secret; Path=/")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def cookie_server() -> Iterator[str]:
    _SetsCookies.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SetsCookies)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_cookie_one_account_was_given_never_rides_along_on_the_next_request(cookie_server):
    """One client serves every account of a process: a provider's Set-Cookie for one account's
    session must not be sent with another account's request to the same host."""
    client = guarded_client(5.0, 1 << 16)
    try:
        assert client.post(f"{cookie_server}/account-a/send", json={}).json() == {"ok": True}
        assert client.post(f"{cookie_server}/account-b/send", json={}).json() == {"ok": True}
    finally:
        client.close()
    assert _SetsCookies.seen == [None, None]
    assert not client.cookies


def test_cookies_cannot_be_given_to_the_client():
    client = guarded_client(5.0, 1 << 16)
    try:
        with pytest.raises(ValueError, match="no cookies"):
            client.cookies = {"session": "x"}
        with pytest.raises(ValueError, match="no cookies"):
            client.cookies.set("session", "x")
    finally:
        client.close()
