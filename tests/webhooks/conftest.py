"""A real receiving HTTP server for webhook tests: it records every request (headers and raw
body) and answers from a queue of statuses (then 200); it can go down (connection refused)
and come back on the same port."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

SECRET = "test-webhook-secret-0123456789abcdef"  # 36 bytes


@dataclass
class Received:
    """One request the receiver got: path, headers (lower-case names), raw body."""

    path: str
    headers: dict[str, str]
    body: bytes
    message: object = None  # the request's headers as http.server parsed them (case-insensitive)

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers["x-qv-event-id"]


class Receiver:
    """The trading platform's endpoint, in a thread. ``answers``: statuses to give, in order
    (then 200); ``refuse``: a predicate of requests to answer 503; ``delay``: seconds to wait
    before answering (or a callable giving them)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answers: list[int] = []
        self.delay = 0.0
        self.refuse = None  # optional predicate on a Received: answer 503 to it
        self.port = 0
        self._lock = threading.Lock()
        self.start()

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                delay = receiver.delay() if callable(receiver.delay) else receiver.delay
                if delay:  # the network's latency: requests sent together may arrive in any order
                    time.sleep(delay)
                received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, self.headers)
                with receiver._lock:
                    receiver.requests.append(received)
                    status = receiver.answers.pop(0) if receiver.answers else 200
                if receiver.refuse is not None and receiver.refuse(received):
                    status = 503
                payload = b'{"ok":true}' if status < 300 else b'{"error":"boom"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/qv"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Go down: the port refuses connections until ``start`` again."""
        self.server.shutdown()
        self.server.server_close()

    def types(self) -> list[str]:
        return [r.json["type"] for r in self.requests]


@pytest.fixture
def receiver(settings):
    """A running receiver configured as the only webhook endpoint (with ``SECRET``)."""
    r = Receiver()
    settings.QV_WEBHOOK_URLS = [r.url]
    settings.QV_WEBHOOK_SECRET = SECRET
    settings.QV_WEBHOOK_RETRY_BASE_SECONDS = 30
    settings.QV_WEBHOOK_TIMEOUT_SECONDS = 2
    yield r
    r.stop()


@pytest.fixture
def q_sync(monkeypatch):
    """django-q2 runs queued tasks at once, in this process (its ``sync`` mode)."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


from tests.pages.conftest import staff_client  # noqa: E402, F401 - the console tests' staff sign-in
