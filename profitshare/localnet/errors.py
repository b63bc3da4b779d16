"""Errors of the local node, mapped onto JSON-RPC 2.0 error objects.

Codes follow the JSON-RPC 2.0 spec (-32700 parse error, -32600 invalid request, -32601 method not
found, -32602 invalid params, -32603 internal error) and Solana's RPC server (-32002 transaction
simulation failed, -32003 signature verification failure, -32004 block not available,
-32009 slot skipped, -32016 minimum context slot not reached).
"""

from __future__ import annotations

from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SEND_TRANSACTION_PREFLIGHT_FAILURE = -32002
TRANSACTION_SIGNATURE_VERIFICATION_FAILURE = -32003
MIN_CONTEXT_SLOT_NOT_REACHED = -32016


class RpcError(Exception):
    """A JSON-RPC error answered to the client as ``{"code", "message", "data"?}``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` member."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            body["data"] = self.data
        return body


def invalid_params(message: str) -> RpcError:
    """A -32602 error (the request's params are not what the method takes)."""
    return RpcError(INVALID_PARAMS, f"Invalid params: {message}")
