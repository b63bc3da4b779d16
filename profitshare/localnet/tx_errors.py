"""Transaction errors in the JSON shape Solana's RPC uses (``TransactionError`` serde form).

Examples: ``"BlockhashNotFound"``, ``{"InstructionError": [0, {"Custom": 6003}]}``,
``{"InstructionError": [1, "InvalidAccountData"]}``, ``{"InsufficientFundsForRent":
{"account_index": 2}}``.
"""

from __future__ import annotations

from typing import Any

import solders.transaction_status as ts

# Errors that keep a transaction out of any block: no fee is charged and nothing is stored.
NOT_LANDED_ERRORS = frozenset(
    {
        "AccountNotFound",
        "AlreadyProcessed",
        "BlockhashNotFound",
        "InsufficientFundsForFee",
        "InvalidAccountForFee",
        "SignatureFailure",
        "AccountInUse",
        "AccountLoadedTwice",
        "SanitizeFailure",
        "TooManyAccountLocks",
        "WouldExceedMaxBlockCostLimit",
    }
)


def _fieldless_name(value: Any) -> str:
    return str(value).rsplit(".", 1)[-1]


def instruction_error_json(err: Any) -> Any:
    """An ``InstructionError``'s inner error: ``{"Custom": n}``, a name, or ``{"BorshIoError": s}``."""
    if isinstance(err, ts.InstructionErrorCustom):
        return {"Custom": err.code}
    if isinstance(err, ts.InstructionErrorBorshIO):
        return {"BorshIoError": str(err.value) if hasattr(err, "value") else ""}
    return _fieldless_name(err)


def transaction_error_json(err: Any) -> Any:
    """Convert a solders ``TransactionErrorType`` into Solana's RPC JSON form."""
    if err is None:
        return None
    if isinstance(err, ts.TransactionErrorInstructionError):
        return {"InstructionError": [err.index, instruction_error_json(err.err)]}
    if isinstance(err, ts.TransactionErrorInsufficientFundsForRent):
        return {"InsufficientFundsForRent": {"account_index": err.account_index}}
    if isinstance(err, ts.TransactionErrorDuplicateInstruction):
        return {"DuplicateInstruction": err.index}
    if isinstance(err, ts.TransactionErrorProgramExecutionTemporarilyRestricted):
        return {"ProgramExecutionTemporarilyRestricted": {"account_index": err.account_index}}
    return _fieldless_name(err)


def error_name(err: Any) -> str:
    """The top-level name of an error in JSON form (``"InstructionError"``, ``"BlockhashNotFound"``)."""
    if isinstance(err, str):
        return err
    if isinstance(err, dict) and err:
        return next(iter(err))
    return str(err)


def describe(err: Any) -> str:
    """A human sentence like a validator's preflight message."""
    if isinstance(err, dict) and "InstructionError" in err:
        index, inner = err["InstructionError"]
        if isinstance(inner, dict) and "Custom" in inner:
            return f"Error processing Instruction {index}: custom program error: {inner['Custom']:#x}"
        return f"Error processing Instruction {index}: {inner}"
    names = {
        "BlockhashNotFound": "Blockhash not found",
        "AlreadyProcessed": "This transaction has already been processed",
        "AccountNotFound": "Attempt to debit an account but found no record of a prior credit.",
        "InsufficientFundsForFee": "Insufficient funds for fee",
        "SignatureFailure": "Transaction did not pass signature verification",
    }
    name = error_name(err)
    return names.get(name, name)
