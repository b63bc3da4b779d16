"""A pool of Solana JSON-RPC endpoints with failover, retries and error counters.

Reads go through solana-py's sync ``solana.rpc.api.Client`` (typed solders responses); methods
solana-py lacks or parses lossily (``getTransaction`` in json with raw token balances,
``sendTransaction`` whose error ``data`` we need verbatim, the local node's ``localnet_*``) go
through raw JSON-RPC 2.0 over httpx. Both use the same endpoints, timeouts and rules:

* Idempotent reads are retried on HTTP 429/5xx, timeouts, connection errors, unparsable bodies
  and JSON-RPC -32005 "node unhealthy". One *round* tries every endpoint once, starting with the
  one that last answered; rounds are retried by tenacity with exponential backoff and jitter, up
  to ``max_attempts`` rounds (``QV_RPC_MAX_ATTEMPTS``). Then ``RpcUnavailable``.
* ``sendTransaction`` is never re-sent once the request may have reached a node. It moves on only
  when the bytes provably were not taken: the connection could not be opened (connect error or
  connect/pool timeout), or the endpoint answered HTTP 429 / 503 or JSON-RPC -32005. A read
  timeout, a dropped connection without a response, another 5xx (502/504 are proxies that may have
  forwarded) or an unparsable 200 raise ``SendOutcomeUnknown(signature)``: the caller resolves it
  by signature status (Solana RPC docs, "Retrying transactions").
* Any other JSON-RPC error object raises ``RpcRequestError`` at once (retrying will not fix it).

Every failure is counted per ``(url, kind)``; ``rpc_error_counts()`` is for the metrics module.
"""

from __future__ import annotations

import base64
import itertools
import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import solders
from solana.exceptions import SolanaRpcException
from solana.rpc.api import Client
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solders.rpc.errors import NodeUnhealthyMessage
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from profitshare.chain.errors import RpcRequestError, RpcUnavailable, SendOutcomeUnknown

__all__ = [
    "RpcPool",
    "rpc_error_counts",
    "rpc_errors_total",
    "reset_rpc_error_counts",
    "NODE_UNHEALTHY",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: JSON-RPC error code of an unhealthy / lagging node (Solana RPC): the request was not served.
NODE_UNHEALTHY = -32005
#: HTTP statuses meaning "this request was not served": safe to send the same bytes elsewhere.
_SEND_NOT_TAKEN_STATUSES = frozenset({429, 503})

# --- error counters (read by the metrics module) ------------------------------------------------
_counts_lock = threading.Lock()
_counts: Counter[tuple[str, str]] = Counter()


def _count(url: str, kind: str) -> None:
    with _counts_lock:
        _counts[(url, kind)] += 1


def rpc_error_counts() -> dict[tuple[str, str], int]:
    """Return a copy of the RPC error counters: ``{(url, kind): count}`` since process start.

    ``kind`` is one of ``http_<status>``, ``timeout``, ``connect``, ``transport``, ``bad_body``,
    ``node_unhealthy``, ``rpc_error``, ``send_outcome_unknown``.
    """
    with _counts_lock:
        return dict(_counts)


def rpc_errors_total() -> int:
    """Total number of RPC errors counted so far (int)."""
    with _counts_lock:
        return sum(_counts.values())


def reset_rpc_error_counts() -> None:
    """Zero the counters (tests, metrics scrapes that want deltas)."""
    with _counts_lock:
        _counts.clear()


# --- internals -----------------------------------------------------------------------------------
class _Retryable(Exception):
    """One endpoint failed in a way another try may fix."""

    def __init__(self, kind: str, description: str) -> None:
        super().__init__(description)
        self.kind = kind
        self.description = description


class _RoundFailed(Exception):
    """Every endpoint of one round failed retryably."""


def _transport_kind(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    return "transport"


def _classify_http(exc: httpx.HTTPError) -> _Retryable | None:
    """A retryable failure for a read, or None when retrying cannot help."""
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        if status == 429 or 500 <= status <= 599:
            return _Retryable(f"http_{status}", f"HTTP {status}")
        return None
    if isinstance(exc, httpx.TransportError):
        return _Retryable(_transport_kind(exc), f"{type(exc).__name__}: {exc}")
    return None


@dataclass
class _Endpoint:
    url: str
    client: Client
    http: httpx.Client


class RpcPool:
    """Solana JSON-RPC endpoints with failover and retries (see the module docstring).

    ``urls``: endpoint URLs, in order of preference (``QV_RPC_URLS``); ``timeout_seconds``: per
    HTTP request (``QV_RPC_TIMEOUT_SECONDS``); ``max_attempts``: rounds over all endpoints for
    reads (``QV_RPC_MAX_ATTEMPTS``); ``backoff_initial`` / ``backoff_max``: seconds of the
    exponential backoff between rounds (jitter up to ``backoff_initial``); ``commitment``:
    commitment of solana-py reads. Raises ``ValueError`` on an empty URL list or
    ``max_attempts < 1``. Thread-safe (httpx clients are).
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        timeout_seconds: float = 10,
        max_attempts: int = 4,
        backoff_initial: float = 0.25,
        backoff_max: float = 4.0,
        commitment=Confirmed,
    ) -> None:
        if not urls:
            raise ValueError("RpcPool needs at least one RPC URL")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._endpoints = [
            _Endpoint(
                url=url,
                client=Client(url, commitment=commitment, timeout=timeout_seconds),
                http=httpx.Client(timeout=timeout_seconds),
            )
            for url in urls
        ]
        self._preferred = 0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    @classmethod
    def from_settings(cls) -> RpcPool:
        """Build from Django settings ``QV_RPC_URLS``, ``QV_RPC_TIMEOUT_SECONDS``,
        ``QV_RPC_MAX_ATTEMPTS``."""
        from django.conf import settings

        return cls(
            settings.QV_RPC_URLS,
            timeout_seconds=settings.QV_RPC_TIMEOUT_SECONDS,
            max_attempts=settings.QV_RPC_MAX_ATTEMPTS,
        )

    @property
    def urls(self) -> list[str]:
        """The endpoint URLs, in configured order."""
        return [ep.url for ep in self._endpoints]

    def close(self) -> None:
        """Close every HTTP connection of the pool."""
        for ep in self._endpoints:
            ep.http.close()
            ep.client._provider.session.close()

    # --- scheduling ------------------------------------------------------------------------------
    def _order(self) -> list[_Endpoint]:
        with self._lock:
            start = self._preferred
        n = len(self._endpoints)
        return [self._endpoints[(start + i) % n] for i in range(n)]

    def _prefer(self, ep: _Endpoint) -> None:
        with self._lock:
            self._preferred = self._endpoints.index(ep)

    def _run(
        self,
        method: str,
        attempt: Callable[[_Endpoint], T],
        *,
        rounds: int,
        signature: str | None = None,
    ) -> T:
        failures: list[tuple[str, str]] = []

        def one_round() -> T:
            for ep in self._order():
                try:
                    result = attempt(ep)
                except _Retryable as exc:
                    _count(ep.url, exc.kind)
                    failures.append((ep.url, exc.description))
                    logger.info("rpc %s failed on %s: %s", method, ep.url, exc.description)
                    continue
                self._prefer(ep)
                return result
            raise _RoundFailed()

        retrying = Retrying(
            stop=stop_after_attempt(rounds),
            wait=wait_exponential_jitter(
                multiplier=self.backoff_initial, max=self.backoff_max, jitter=self.backoff_initial
            ),
            retry=retry_if_exception_type(_RoundFailed),
            reraise=True,
        )
        try:
            return retrying(one_round)
        except _RoundFailed:
            raise RpcUnavailable(method, failures, signature) from None

    # --- reads -----------------------------------------------------------------------------------
    def read(self, method: str, fn: Callable[[Client], T]) -> T:
        """Run an idempotent solana-py read ``fn(client)`` with retries and failover.

        ``method``: the JSON-RPC method name (for errors and logs). Returns what ``fn`` returns.
        Raises ``RpcUnavailable`` after all rounds fail, ``RpcRequestError`` on a JSON-RPC error
        that retrying will not fix.
        """

        def attempt(ep: _Endpoint) -> T:
            try:
                return fn(ep.client)
            except SolanaRpcException as exc:
                cause = exc.__cause__
                retryable = _classify_http(cause) if isinstance(cause, httpx.HTTPError) else None
                if retryable is None:
                    _count(ep.url, "rpc_error")
                    raise RpcRequestError(method, None, str(cause or exc)) from exc
                raise retryable from exc
            except RPCException as exc:
                parsed = exc.args[0] if exc.args else exc
                if isinstance(parsed, NodeUnhealthyMessage):
                    raise _Retryable("node_unhealthy", parsed.message) from exc
                _count(ep.url, "rpc_error")
                raise RpcRequestError(method, None, getattr(parsed, "message", str(parsed))) from exc
            except solders.SerdeJSONError as exc:
                raise _Retryable("bad_body", f"unparsable response: {exc}") from exc
            except AttributeError as exc:  # solders parsed an unknown error object as a bare int
                _count(ep.url, "rpc_error")
                raise RpcRequestError(method, None, f"unexpected response shape: {exc}") from exc

        return self._run(method, attempt, rounds=self.max_attempts)

    def call(self, method: str, *params: Any, quick: float | None = None) -> Any:
        """Call an idempotent JSON-RPC ``method`` with ``params``; return its ``result`` (JSON).

        Same retries and failover as ``read``; ``quick`` (seconds): one try per endpoint with
        that timeout and no backoff, for reads on a hot path that may do without an answer.
        Raises ``RpcUnavailable`` / ``RpcRequestError``.
        """
        body_id = next(self._ids)
        timeout = {} if quick is None else {"timeout": quick}

        def attempt(ep: _Endpoint) -> Any:
            body = {"jsonrpc": "2.0", "id": body_id, "method": method, "params": list(params)}
            try:
                response = ep.http.post(ep.url, json=body, **timeout)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                retryable = _classify_http(exc)
                if retryable is None:
                    _count(ep.url, "rpc_error")
                    raise RpcRequestError(method, None, str(exc)) from exc
                raise retryable from exc
            try:
                payload = response.json()
            except ValueError as exc:
                raise _Retryable("bad_body", f"unparsable response: {exc}") from exc
            return self._result(ep, method, payload)

        return self._run(method, attempt, rounds=1 if quick is not None else self.max_attempts)

    def call_batch(self, method: str, params: Sequence[Sequence[Any]]) -> list[Any]:
        """Call an idempotent JSON-RPC ``method`` once per entry of ``params`` in one JSON-RPC
        batch request (JSON-RPC 2.0, "Batch"); same retries and failover as ``call`` for the
        request as a whole. Returns, in order, each call's ``result`` or the
        ``RpcRequestError`` its JSON-RPC error object raised (one call's error does not fail
        the others). Raises ``RpcUnavailable`` when no endpoint answers the batch."""
        if not params:
            return []
        ids = [next(self._ids) for _ in params]
        body = [
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(p)}
            for request_id, p in zip(ids, params, strict=True)
        ]

        def attempt(ep: _Endpoint) -> list[Any]:
            try:
                response = ep.http.post(ep.url, json=body)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                retryable = _classify_http(exc)
                if retryable is None:
                    _count(ep.url, "rpc_error")
                    raise RpcRequestError(method, None, str(exc)) from exc
                raise retryable from exc
            try:
                answers = {a["id"]: a for a in response.json()}
            except (ValueError, TypeError, KeyError) as exc:
                raise _Retryable("bad_body", f"unparsable batch response: {exc}") from exc
            out: list[Any] = []
            for request_id in ids:
                if request_id not in answers:
                    raise _Retryable("bad_body", f"batch response lacks id {request_id}")
                try:
                    out.append(self._result(ep, method, answers[request_id]))
                except RpcRequestError as exc:
                    out.append(exc)
            return out

        return self._run(method, attempt, rounds=self.max_attempts)

    def _result(self, ep: _Endpoint, method: str, payload: Any) -> Any:
        if not isinstance(payload, dict):
            raise _Retryable("bad_body", f"response is not a JSON-RPC object: {payload!r:.200}")
        error = payload.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            message = error.get("message", "") if isinstance(error, dict) else str(error)
            if code == NODE_UNHEALTHY:
                raise _Retryable("node_unhealthy", message)
            _count(ep.url, "rpc_error")
            data = error.get("data") if isinstance(error, dict) else None
            raise RpcRequestError(method, code, message, data)
        if "result" not in payload:
            raise _Retryable("bad_body", "JSON-RPC response has neither result nor error")
        return payload["result"]

    # --- send ------------------------------------------------------------------------------------
    def _post_send(self, ep: _Endpoint, body: Any, signature: str) -> Any:
        """POST a send (single or batch) and return the decoded JSON. Fails over
        (``_Retryable``) only when the bytes provably were not taken: connection refused,
        connect/pool timeout, HTTP 429/503. Anything after the request may have reached the node
        (read timeout, lost response, other status, unparsable body) is ``SendOutcomeUnknown``."""
        try:
            response = ep.http.post(ep.url, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # The request never left this process: another endpoint may take it.
            raise _Retryable(_transport_kind(exc), f"{type(exc).__name__}: {exc}") from exc
        except httpx.TransportError as exc:
            _count(ep.url, _transport_kind(exc))
            _count(ep.url, "send_outcome_unknown")
            raise SendOutcomeUnknown(signature, f"{type(exc).__name__} from {ep.url}: {exc}") from exc
        status = response.status_code
        if status in _SEND_NOT_TAKEN_STATUSES:
            raise _Retryable(f"http_{status}", f"HTTP {status}")
        if status != 200:
            _count(ep.url, f"http_{status}")
            _count(ep.url, "send_outcome_unknown")
            raise SendOutcomeUnknown(signature, f"HTTP {status} from {ep.url}")
        try:
            return response.json()
        except ValueError as exc:
            _count(ep.url, "send_outcome_unknown")
            raise SendOutcomeUnknown(signature, f"unparsable answer from {ep.url}") from exc

    def send_transaction(
        self, raw: bytes, signature: str, *, skip_preflight: bool = False
    ) -> str:
        """``sendTransaction`` of signed wire bytes ``raw`` (base64; preflight at ``confirmed``).

        ``signature``: the transaction's first signature (base58), known before sending.
        Returns the signature the node answered. Raises ``SendOutcomeUnknown(signature)`` when the
        request may have reached a node without an answer, ``RpcUnavailable`` (with
        ``signature``) when no endpoint took the bytes after all rounds, ``RpcRequestError`` for
        a JSON-RPC error (e.g. -32002 preflight failure; its ``data`` holds ``err`` and ``logs``).
        """
        body_id = next(self._ids)
        encoded = base64.b64encode(raw).decode()
        config = {
            "encoding": "base64",
            "skipPreflight": skip_preflight,
            "preflightCommitment": "confirmed",
        }

        def attempt(ep: _Endpoint) -> Any:
            body = {
                "jsonrpc": "2.0",
                "id": body_id,
                "method": "sendTransaction",
                "params": [encoded, config],
            }
            payload = self._post_send(ep, body, signature)
            try:
                return self._result(ep, "sendTransaction", payload)
            except _Retryable as exc:
                if exc.kind == "node_unhealthy":
                    raise
                _count(ep.url, "send_outcome_unknown")
                raise SendOutcomeUnknown(signature, exc.description) from exc

        return self._run("sendTransaction", attempt, rounds=self.max_attempts, signature=signature)

    def send_transactions(self, items: list[tuple[bytes, str]]) -> list[RpcRequestError | None]:
        """Send many signed transactions in one JSON-RPC batch request (``[(raw, signature)]``).

        Returns, in order, None for each transaction a node accepted and the ``RpcRequestError``
        of each it refused (e.g. -32002 preflight failure). Raises ``SendOutcomeUnknown`` (first
        signature) when the batch may have reached a node without a usable answer — every
        transaction in it must then be resolved by signature status — and ``RpcUnavailable``
        when no endpoint took it. Same failover rules as ``send_transaction``.
        """
        if not items:
            return []
        ids = [0] * len(items)
        config = {"encoding": "base64", "skipPreflight": False, "preflightCommitment": "confirmed"}
        body = []
        for n, (raw, _signature) in enumerate(items):
            ids[n] = next(self._ids)
            body.append({
                "jsonrpc": "2.0", "id": ids[n], "method": "sendTransaction",
                "params": [base64.b64encode(raw).decode(), config],
            })
        signature = items[0][1]

        def attempt(ep: _Endpoint) -> list[RpcRequestError | None]:
            payload = self._post_send(ep, body, signature)
            try:
                answers = {a["id"]: a for a in payload}
            except (TypeError, KeyError) as exc:
                _count(ep.url, "send_outcome_unknown")
                raise SendOutcomeUnknown(signature, f"unparsable batch answer from {ep.url}") from exc
            out: list[RpcRequestError | None] = []
            for request_id in ids:
                answer = answers.get(request_id)
                if answer is None:
                    raise SendOutcomeUnknown(signature, f"batch answer from {ep.url} lacks id {request_id}")
                try:
                    self._result(ep, "sendTransaction", answer)
                    out.append(None)
                except RpcRequestError as exc:
                    out.append(exc)
                except _Retryable as exc:  # e.g. node unhealthy for this one: outcome unknown
                    out.append(RpcRequestError("sendTransaction", None, exc.description, None))
            return out

        return self._run("sendTransaction", attempt, rounds=self.max_attempts, signature=signature)


def endpoint_health(urls: list[str], *, timeout: float) -> dict[str, str]:
    """``getHealth`` on each endpoint, once, within ``timeout`` seconds: ``{url: "ok" or what
    went wrong}`` (the node's error, the HTTP status, or the exception's class name: never its
    message, which may repeat a URL with credentials)."""
    out: dict[str, str] = {}
    with httpx.Client(timeout=timeout) as client:
        for url in urls:
            try:
                response = client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "getHealth"})
                body = response.json()
                out[url] = "ok" if body.get("result") == "ok" else str(body.get("error") or response.status_code)
            except (httpx.HTTPError, ValueError) as exc:
                out[url] = type(exc).__name__
    return out
