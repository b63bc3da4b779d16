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
* JSON-RPC -32016 "Minimum context slot has not been reached" (the endpoint is behind the slot
  the request asked for) is retryable like -32005: another endpoint, or a later round, may have
  reached it.
* Any other JSON-RPC error object raises ``RpcRequestError`` at once (retrying will not fix it).

**Caught-up endpoints first.** With several endpoints the pool reads each one's slot
(``getSlot`` at ``confirmed``, every ``slot_probe_seconds``; ``measure_slots``) and orders every
round: endpoints at most ``max_lag_slots`` behind the highest first, then those whose slot is
unknown (the probe failed), then the lagging ones, least behind first. A replica behind answers
old blockhashes (they expire early) and old statuses; ``slot_lags()`` says how far behind each
endpoint was at the last probe (for ``/healthz`` and metrics).

**One endpoint per decision.** ``on_one_endpoint(method, fn)`` runs ``fn(endpoint)``, whose calls
all go to one endpoint; a retryable failure of any of them moves the whole ``fn`` to the next
endpoint. A decision that needs several answers to agree (a block height and the statuses read
after it) is made this way, never from two endpoints (docs/design.md, "Expired only from a
caught-up node").

Every failure is counted per ``(url, kind)``; ``rpc_error_counts()`` is for the metrics module.
"""

from __future__ import annotations

import base64
import itertools
import logging
import threading
import time
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
from solders.rpc.errors import MinContextSlotNotReachedMessage, NodeUnhealthyMessage
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from profitshare.chain.errors import RpcRequestError, RpcUnavailable, SendOutcomeUnknown

__all__ = [
    "RpcPool",
    "PinnedEndpoint",
    "rpc_error_counts",
    "rpc_errors_total",
    "reset_rpc_error_counts",
    "endpoint_health",
    "endpoint_slots",
    "slots_behind",
    "NODE_UNHEALTHY",
    "MIN_CONTEXT_SLOT_NOT_REACHED",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: JSON-RPC error code of an unhealthy / lagging node (Solana RPC): the request was not served.
NODE_UNHEALTHY = -32005
#: JSON-RPC error code of an answer refused because the node has not reached the request's
#: ``minContextSlot`` (Solana RPC): it is behind; another endpoint may serve it.
MIN_CONTEXT_SLOT_NOT_REACHED = -32016
#: Retryable JSON-RPC error codes and the counter kind of each.
_RETRYABLE_CODES = {NODE_UNHEALTHY: "node_unhealthy", MIN_CONTEXT_SLOT_NOT_REACHED: "behind"}
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
    ``node_unhealthy``, ``behind`` (-32016), ``rpc_error``, ``send_outcome_unknown``.
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


def slots_behind(slots: dict[str, int | None]) -> dict[str, int | None]:
    """How many slots each endpoint is behind the highest of ``slots`` (``{url: slot or None}``,
    None: unknown): ``{url: 0.. or None}``."""
    known = [slot for slot in slots.values() if slot is not None]
    highest = max(known, default=None)
    return {url: None if slot is None or highest is None else highest - slot for url, slot in slots.items()}


@dataclass
class _Endpoint:
    url: str
    client: Client
    http: httpx.Client
    slot: int | None = None  # at the last probe; None: unknown


class PinnedEndpoint:
    """One endpoint of an ``RpcPool`` for the calls of one decision (``RpcPool.on_one_endpoint``).

    ``url``: the endpoint; ``call(method, *params)``: its JSON-RPC ``result`` (JSON). A retryable
    failure of a call is raised to the pool, which moves the whole decision to the next
    endpoint; other JSON-RPC errors raise ``RpcRequestError``."""

    def __init__(self, pool: RpcPool, endpoint: _Endpoint) -> None:
        self._pool = pool
        self._endpoint = endpoint

    @property
    def url(self) -> str:
        """The endpoint's URL."""
        return self._endpoint.url

    def call(self, method: str, *params: Any) -> Any:
        """Call ``method`` with ``params`` on this endpoint; returns its ``result``."""
        return self._pool._call_on(self._endpoint, next(self._pool._ids), method, params, {})


class RpcPool:
    """Solana JSON-RPC endpoints with failover and retries (see the module docstring).

    ``urls``: endpoint URLs, in order of preference (``QV_RPC_URLS``); ``timeout_seconds``: per
    HTTP request (``QV_RPC_TIMEOUT_SECONDS``); ``max_attempts``: rounds over all endpoints for
    reads (``QV_RPC_MAX_ATTEMPTS``); ``backoff_initial`` / ``backoff_max``: seconds of the
    exponential backoff between rounds (jitter up to ``backoff_initial``); ``commitment``:
    commitment of solana-py reads; ``max_lag_slots``: an endpoint more slots than this behind
    the highest is tried after the caught-up ones (``QV_RPC_MAX_LAG_SLOTS``);
    ``slot_probe_seconds``: how often the endpoints' slots are read for that ordering
    (``QV_RPC_SLOT_PROBE_SECONDS``; None: only when ``measure_slots`` is called; a pool of one
    endpoint never probes). Raises ``ValueError`` on an empty URL list or ``max_attempts < 1``.
    Thread-safe (httpx clients are).
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
        max_lag_slots: int = 20,
        slot_probe_seconds: float | None = 10.0,
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
        self.max_lag_slots = max_lag_slots
        self.slot_probe_seconds = slot_probe_seconds
        self._probe_timeout = min(timeout_seconds, 2.0)
        self._probe_lock = threading.Lock()
        self._probed_at: float | None = None

    @classmethod
    def from_settings(cls) -> RpcPool:
        """Build from Django settings ``QV_RPC_URLS``, ``QV_RPC_TIMEOUT_SECONDS``,
        ``QV_RPC_MAX_ATTEMPTS``, ``QV_RPC_MAX_LAG_SLOTS``, ``QV_RPC_SLOT_PROBE_SECONDS``."""
        from django.conf import settings

        return cls(
            settings.QV_RPC_URLS,
            timeout_seconds=settings.QV_RPC_TIMEOUT_SECONDS,
            max_attempts=settings.QV_RPC_MAX_ATTEMPTS,
            max_lag_slots=settings.QV_RPC_MAX_LAG_SLOTS,
            slot_probe_seconds=settings.QV_RPC_SLOT_PROBE_SECONDS,
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

    # --- slots and scheduling ----------------------------------------------------------------------
    def measure_slots(self) -> dict[str, int | None]:
        """Read every endpoint's ``confirmed`` slot now (``getSlot``, one short try each; a
        failure is counted and leaves that slot unknown) and keep them for the ordering:
        ``{url: slot or None}``."""
        slots: dict[str, int | None] = {}
        for ep in self._endpoints:
            try:
                slot = self._call_on(ep, next(self._ids), "getSlot", ({"commitment": "confirmed"},),
                                     {"timeout": self._probe_timeout})
                ep.slot = slot if isinstance(slot, int) and not isinstance(slot, bool) else None
            except _Retryable as exc:
                _count(ep.url, exc.kind)
                ep.slot = None
            except RpcRequestError:
                ep.slot = None
            slots[ep.url] = ep.slot
        self._probed_at = time.monotonic()
        return slots

    def slot_lags(self) -> dict[str, int | None]:
        """How far behind the highest each endpoint was at the last slot probe: ``{url: slots
        behind, or None when unknown}`` (all None before the first probe)."""
        return slots_behind({ep.url: ep.slot for ep in self._endpoints})

    def _maybe_probe(self) -> None:
        if len(self._endpoints) < 2 or self.slot_probe_seconds is None:
            return
        due = self._probed_at is None or time.monotonic() - self._probed_at >= self.slot_probe_seconds
        if due and self._probe_lock.acquire(blocking=False):  # one thread probes; others go on
            try:
                self.measure_slots()
            finally:
                self._probe_lock.release()

    def _order(self) -> list[_Endpoint]:
        """This round's endpoints: from the one that last answered, caught-up ones first, then
        unknown, then lagging (least behind first)."""
        self._maybe_probe()
        with self._lock:
            start = self._preferred
        n = len(self._endpoints)
        rotation = [self._endpoints[(start + i) % n] for i in range(n)]
        behind = self.slot_lags()

        def rank(ep: _Endpoint) -> tuple[int, int]:
            lag = behind[ep.url]
            if lag is None:
                return (1, 0)
            return (0, 0) if lag <= self.max_lag_slots else (2, lag)

        return sorted(rotation, key=rank)

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
                if isinstance(parsed, MinContextSlotNotReachedMessage):
                    raise _Retryable("behind", parsed.message) from exc
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
            return self._call_on(ep, body_id, method, params, timeout)

        return self._run(method, attempt, rounds=1 if quick is not None else self.max_attempts)

    def on_one_endpoint(self, method: str, fn: Callable[[PinnedEndpoint], T]) -> T:
        """Run ``fn(endpoint)`` with every call of it on one endpoint (``PinnedEndpoint``), in
        the pool's order and with its retries: a retryable failure of any call (HTTP 429/5xx,
        timeout, -32005, -32016 "behind") moves the whole ``fn`` to the next endpoint, so what
        ``fn`` decides rests on one endpoint's answers. ``method``: names the decision in errors
        and logs. Returns what ``fn`` returns; raises ``RpcUnavailable`` / ``RpcRequestError``."""
        return self._run(method, lambda ep: fn(PinnedEndpoint(self, ep)), rounds=self.max_attempts)

    def _call_on(self, ep: _Endpoint, body_id: int, method: str, params: Sequence[Any], timeout: dict) -> Any:
        """One JSON-RPC call on ``ep``: its ``result``, ``_Retryable``, or ``RpcRequestError``."""
        body = {"jsonrpc": "2.0", "id": body_id, "method": method, "params": list(params)}
        return self._result(ep, method, self._post(ep, method, body, timeout))

    def _post(self, ep: _Endpoint, method: str, body: Any, timeout: dict) -> Any:
        """POST an idempotent JSON-RPC request (one call or a batch) to ``ep``; the decoded JSON.
        Raises ``_Retryable`` (HTTP 429/5xx, transport errors, an unparsable body) or
        ``RpcRequestError`` (another HTTP error)."""
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
            return response.json()
        except ValueError as exc:
            raise _Retryable("bad_body", f"unparsable response: {exc}") from exc

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
            payload = self._post(ep, method, body, {})
            try:
                answers = {a["id"]: a for a in payload}
            except (TypeError, KeyError) as exc:
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
            if code in _RETRYABLE_CODES:
                raise _Retryable(_RETRYABLE_CODES[code], message)
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
                if exc.kind in _RETRYABLE_CODES.values():  # not served: the bytes were not taken
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


def endpoint_slots(urls: list[str], *, timeout: float) -> dict[str, int | None]:
    """``getSlot`` (``confirmed``) on each endpoint, once, within ``timeout`` seconds: ``{url:
    slot, or None when it did not answer one}``. With ``slots_behind`` this says how far behind
    each endpoint is (``/healthz``, metrics)."""
    out: dict[str, int | None] = {}
    with httpx.Client(timeout=timeout) as client:
        for url in urls:
            try:
                body = client.post(
                    url, json={"jsonrpc": "2.0", "id": 1, "method": "getSlot", "params": [{"commitment": "confirmed"}]}
                ).json()
                slot = body.get("result") if isinstance(body, dict) else None
                out[url] = slot if isinstance(slot, int) and not isinstance(slot, bool) else None
            except (httpx.HTTPError, ValueError):
                out[url] = None
    return out
