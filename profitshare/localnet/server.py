"""HTTP JSON-RPC front of the local node (``python manage.py localnet``).

One thread per connection (``ThreadingTCPServer`` with a lean HTTP/1.1 keep-alive handler); requests are parsed and
answers encoded on that thread, and ``RpcMethods.call`` takes the node's lock to touch the SVM.
Errors are always JSON-RPC error objects (never an HTML page): -32700 for unparsable JSON,
-32600 for a request that is not JSON-RPC 2.0, -32601 for an unknown method, -32602 for bad
params, -32603 for a bug in the node (logged with its traceback).

Faults (``profitshare.localnet.faults``) are applied here, to standard methods only: latency,
HTTP 429/503 answers, a replica's lag (passed to ``RpcMethods.call``), and a landed
``sendTransaction`` whose response is lost (the connection is closed with nothing written).
Latency, HTTP errors and lag are the view of the server that took the request
(``Faults.view_for(server.name)``): a second server over the same node (``name="replica"``)
answers as a replica behind the first.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from socketserver import StreamRequestHandler, ThreadingTCPServer
from typing import Any

from profitshare.localnet.errors import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    PARSE_ERROR,
    RpcError,
)
from profitshare.localnet.node import LocalNode
from profitshare.localnet.rpc_methods import RpcMethods

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_HEADER_LINE = 65_536
MAX_HEADERS = 100
REASONS = {
    200: b"OK",
    400: b"Bad Request",
    405: b"Method Not Allowed",
    411: b"Length Required",
    413: b"Payload Too Large",
    429: b"Too Many Requests",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}
LOCALNET_PREFIX = "localnet_"


class _LoseResponse(Exception):
    """The call ran, and its answer must never reach the client (the loseResponse fault)."""


def _error(code: int, message: str, request_id: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": request_id}


class RpcHandler(StreamRequestHandler):
    """A lean HTTP/1.1 keep-alive handler: POST / (JSON-RPC, single or batch), GET /health.

    Written for the node rather than on ``http.server.BaseHTTPRequestHandler``, whose header
    parsing (the ``email`` package) cost more per request than executing a transfer did
    (``benchmarks/chain.py``). It reads a request line, headers up to a blank line and a body
    of Content-Length bytes; chunked request bodies are refused with 411.
    """

    # Answers are one write each; TCP_NODELAY keeps small keep-alive answers from waiting for
    # the client's delayed ACK (~40 ms per request otherwise).
    disable_nagle_algorithm = True
    server: RpcHttpServer

    def handle(self) -> None:
        while self._serve_one():
            pass

    def _serve_one(self) -> bool:
        """Serve one request; False when the connection must close."""
        request_line = self.rfile.readline(MAX_HEADER_LINE)
        if not request_line:
            return False
        parts = request_line.split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            self._write(400, json.dumps(_error(INVALID_REQUEST, "bad HTTP request line")).encode(), close=True)
            return False
        method, path, version = parts
        length, keep_alive, chunked = 0, version == b"HTTP/1.1", False
        for _ in range(MAX_HEADERS):
            line = self.rfile.readline(MAX_HEADER_LINE)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
            elif name == b"connection":
                token = value.strip().lower()
                keep_alive = token == b"keep-alive" or (keep_alive and token != b"close")
            elif name == b"transfer-encoding":
                chunked = True
        else:
            self._write(431, b'{"error":"too many headers"}', close=True)
            return False
        if chunked:
            self._write(411, json.dumps(_error(INVALID_REQUEST, "send Content-Length")).encode(), close=True)
            return False
        if not 0 <= length <= MAX_BODY_BYTES:
            self._write(413, json.dumps(_error(INVALID_REQUEST, "bad Content-Length")).encode(), close=True)
            return False
        body = self.rfile.read(length) if length else b""
        if method == b"GET":
            if path.rstrip(b"/") == b"/health":
                self._write(200, b"ok", content_type=b"text/plain", close=not keep_alive)
            else:
                error = json.dumps(_error(INVALID_REQUEST, "use POST for JSON-RPC")).encode()
                self._write(405, error, close=not keep_alive)
            return keep_alive
        if method != b"POST":
            self._write(405, json.dumps(_error(INVALID_REQUEST, "use POST")).encode(), close=True)
            return False
        status, answer = self._answer(body)
        if answer is None:  # the loseResponse fault: close with nothing written
            return False
        self._write(status, answer, close=not keep_alive)
        return keep_alive

    def _write(
        self, status: int, body: bytes, *, content_type: bytes = b"application/json", close: bool = False
    ) -> None:
        head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n" % (
            status,
            REASONS.get(status, b"Error"),
            content_type,
            len(body),
            b"Connection: close\r\n" if close else b"",
        )
        self.wfile.write(head + body)

    def _answer(self, body: bytes) -> tuple[int, bytes | None]:
        """(HTTP status, JSON body) for a POST body; body None means lose the response."""
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return 200, json.dumps(_error(PARSE_ERROR, "Parse error")).encode()
        node = self.server.node
        requests = payload if isinstance(payload, list) else [payload]
        methods = [
            r["method"] for r in requests
            if isinstance(r, dict) and isinstance(r.get("method"), str) and not r["method"].startswith(LOCALNET_PREFIX)
        ]
        faults = node.faults
        view = faults.view_for(self.server.name)
        if methods:
            if view.latency_ms:
                time.sleep(view.latency_ms / 1000)
            status = faults.http_error_status(view, methods)
            if status is not None:
                message = "Too Many Requests" if status == 429 else "Service Unavailable"
                return status, json.dumps({"error": {"code": status, "message": message}}).encode()
        try:
            if isinstance(payload, list):
                if not payload:
                    answer: Any = _error(INVALID_REQUEST, "Invalid request: empty batch")
                else:
                    answer = [self._one(request, view.lag_slots) for request in payload]
            else:
                answer = self._one(payload, view.lag_slots)
        except _LoseResponse:
            return 200, None
        return 200, json.dumps(answer, separators=(",", ":")).encode()

    def _one(self, request: Any, lag_slots: int) -> dict[str, Any]:
        if not isinstance(request, dict):
            return _error(INVALID_REQUEST, "Invalid request")
        request_id = request.get("id")
        method = request.get("method")
        params = request.get("params", [])
        if request.get("jsonrpc") != "2.0" or not isinstance(method, str):
            return _error(INVALID_REQUEST, "Invalid request", request_id)
        if params is None:
            params = []
        if not isinstance(params, list):
            return {
                "jsonrpc": "2.0",
                "error": RpcError(-32602, "Invalid params: params must be an array").to_json(),
                "id": request_id,
            }
        server = self.server
        try:
            result = server.methods.call(method, params, lag_slots=lag_slots)
        except RpcError as exc:
            return {"jsonrpc": "2.0", "error": exc.to_json(), "id": request_id}
        except Exception:
            logger.exception("localnet: internal error in %s", method)
            return _error(INTERNAL_ERROR, f"Internal error in {method}", request_id)
        if method == "sendTransaction" and server.node.faults.roll(server.node.faults.lose_response_rate):
            raise _LoseResponse
        return {"jsonrpc": "2.0", "result": result, "id": request_id}


class RpcHttpServer(ThreadingTCPServer):
    """The node's HTTP server; ``node`` and ``methods`` are shared by all handler threads.

    ``name``: which ``endpoints`` entry of the faults this server answers with (``"primary"``
    for the node's own; a second server over the same node, e.g. ``"replica"``, can lag or fail
    on its own). ``clock``: whether ``start``/``stop`` run the node's slot clock (one server per
    node does; a replica's does not)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, node: LocalNode, host: str = "127.0.0.1", port: int = 8899, *, name: str = "primary", clock: bool = True
    ) -> None:
        super().__init__((host, port), RpcHandler)
        self.node = node
        self.name = name
        self.clock = clock
        self.methods = RpcMethods(node)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` of this server."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        """Serve in a background thread and start the node's slot clock (``clock``)."""
        if self.clock:
            self.node.start_clock()
        self._thread = threading.Thread(target=self.serve_forever, name=f"localnet-http-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, stop the clock (``clock``), close the socket."""
        self.shutdown()
        if self.clock:
            self.node.stop_clock()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
