"""HTTP JSON-RPC front of the local node (``python manage.py localnet``).

One thread per connection (``ThreadingHTTPServer``, HTTP/1.1 keep-alive); requests are parsed and
answers encoded on that thread, and ``RpcMethods.call`` takes the node's lock to touch the SVM.
Errors are always JSON-RPC error objects (never an HTML page): -32700 for unparsable JSON,
-32600 for a request that is not JSON-RPC 2.0, -32601 for an unknown method, -32602 for bad
params, -32603 for a bug in the node (logged with its traceback).

Faults (``profitshare.localnet.faults``) are applied here, to standard methods only: latency,
HTTP 429/503 answers, and a landed ``sendTransaction`` whose response is lost (the connection is
closed with nothing written).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
LOCALNET_PREFIX = "localnet_"


class _LoseResponse(Exception):
    """The call ran, and its answer must never reach the client (the loseResponse fault)."""


def _error(code: int, message: str, request_id: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": request_id}


class RpcHandler(BaseHTTPRequestHandler):
    """Serves POST / (JSON-RPC, single or batch) and GET /health."""

    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes; without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True
    server: RpcHttpServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s " + format, self.address_string(), *args)

    def _write(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/health":
            self._write(200, b"ok", "text/plain")
        else:
            self._write(405, json.dumps(_error(INVALID_REQUEST, "use POST for JSON-RPC")).encode())

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._write(413, json.dumps(_error(INVALID_REQUEST, "bad Content-Length")).encode())
            self.close_connection = True
            return
        body = self.rfile.read(length)
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            self._write(200, json.dumps(_error(PARSE_ERROR, "Parse error")).encode())
            return
        node = self.server.node
        methods = [r.get("method") for r in (payload if isinstance(payload, list) else [payload]) if isinstance(r, dict)]
        faultable = any(isinstance(m, str) and not m.startswith(LOCALNET_PREFIX) for m in methods)
        if faultable:
            faults = node.faults
            if faults.latency_ms:
                time.sleep(faults.latency_ms / 1000)
            status = faults.http_error_status()
            if status is not None:
                message = "Too Many Requests" if status == 429 else "Service Unavailable"
                self._write(status, json.dumps({"error": {"code": status, "message": message}}).encode())
                return
        try:
            if isinstance(payload, list):
                if not payload:
                    answer: Any = _error(INVALID_REQUEST, "Invalid request: empty batch")
                else:
                    answer = [self._one(request) for request in payload]
            else:
                answer = self._one(payload)
        except _LoseResponse:
            self.close_connection = True
            return
        self._write(200, json.dumps(answer, separators=(",", ":")).encode())

    def _one(self, request: Any) -> dict[str, Any]:
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
            result = server.methods.call(method, params)
        except RpcError as exc:
            return {"jsonrpc": "2.0", "error": exc.to_json(), "id": request_id}
        except Exception:
            logger.exception("localnet: internal error in %s", method)
            return _error(INTERNAL_ERROR, f"Internal error in {method}", request_id)
        if method == "sendTransaction" and server.node.faults.roll(server.node.faults.lose_response_rate):
            raise _LoseResponse
        return {"jsonrpc": "2.0", "result": result, "id": request_id}


class RpcHttpServer(ThreadingHTTPServer):
    """The node's HTTP server; ``node`` and ``methods`` are shared by all handler threads."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, node: LocalNode, host: str = "127.0.0.1", port: int = 8899) -> None:
        super().__init__((host, port), RpcHandler)
        self.node = node
        self.methods = RpcMethods(node)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` of this server."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        """Serve in a background thread and start the node's slot clock."""
        self.node.start_clock()
        self._thread = threading.Thread(target=self.serve_forever, name="localnet-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, stop the clock, close the socket."""
        self.shutdown()
        self.node.stop_clock()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
