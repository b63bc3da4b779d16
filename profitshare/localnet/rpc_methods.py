"""JSON-RPC methods of the local node, in the shapes Solana's RPC documents.

Standard methods answer as https://solana.com/docs/rpc describes, so solana-py's ``Client`` and
``AsyncClient`` (which parse with solders) work unchanged. ``localnet_*`` methods build worlds and
inject faults; they exist only here. Every bad parameter is a -32602 error that changes nothing.

**Views.** Each call is answered as of a *view slot*: the node's slot, or ``lag_slots`` before it
for a server that plays a replica behind (the ``lagSlots`` fault). Slots, block heights,
blockhashes, signature statuses, transactions and address histories are those of the view slot,
and every ``context.slot`` is it; account reads answer the current state under that context
(the node keeps no history of accounts). A config object with ``minContextSlot`` above the view
slot is refused with -32016 "Minimum context slot has not been reached" (``data.contextSlot``:
the view slot), on every standard method, as Solana's RPC does for the methods that take it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import base58
from solders.message import MessageV0, from_bytes_versioned
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from spl.token.instructions import get_associated_token_address

from profitshare.localnet.drift_world import DriftWorldError
from profitshare.localnet.errors import (
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    MIN_CONTEXT_SLOT_NOT_REACHED,
    SEND_TRANSACTION_PREFLIGHT_FAILURE,
    TRANSACTION_SIGNATURE_VERIFICATION_FAILURE,
    RpcError,
    invalid_params,
)
from profitshare.localnet.faults import Faults
from profitshare.localnet.ledger import (
    BLOCKHASH_VALIDITY_BLOCKS,
    COMMITMENT_FINALIZED_DEPTH,
    LAMPORTS_PER_SIGNATURE,
    MAX_TRANSACTION_BYTES,
    RECENT_STATUS_SLOTS,
    TOKEN_ACCOUNT_LEN,
    TOKEN_PROGRAM_ID,
    TransactionRejected,
    TxRecord,
    ui_token_amount,
)
from profitshare.localnet.node import LocalNode
from profitshare.localnet.tx_errors import describe

API_VERSION = "2.1.0"
U64_MAX = 2**64 - 1
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
MAX_SIGNATURE_STATUSES = 256
MAX_MULTIPLE_ACCOUNTS = 100
RENT_EPOCH_EXEMPT = 18446744073709551615


# --- parameter helpers -------------------------------------------------------------------------
def _param(params: list, index: int, name: str, *, default: Any = ...) -> Any:
    if index < len(params):
        return params[index]
    if default is ...:
        raise invalid_params(f"missing parameter {index} ({name})")
    return default


def _pubkey(params: list, index: int, name: str) -> Pubkey:
    value = _param(params, index, name)
    return parse_pubkey(value, name)


def parse_pubkey(value: Any, name: str) -> Pubkey:
    """A base58 32-byte address; anything else is a -32602 error."""
    if not isinstance(value, str):
        raise invalid_params(f"{name} must be a base58 string")
    try:
        return Pubkey.from_string(value)
    except ValueError as exc:
        raise invalid_params(f"{name} is not a valid address: {value!r}") from exc


def _int(params: list, index: int, name: str, lo: int, hi: int, *, default: Any = ...) -> int:
    value = _param(params, index, name, default=default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise invalid_params(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def _config(params: list, index: int) -> dict[str, Any]:
    value = _param(params, index, "config", default=None)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid_params("config must be an object")
    return value


def _decode_transaction(data: Any, encoding: str) -> tuple[VersionedTransaction, bytes]:
    if not isinstance(data, str):
        raise invalid_params("transaction must be an encoded string")
    try:
        raw = base64.b64decode(data, validate=True) if encoding == "base64" else base58.b58decode(data)
    except ValueError as exc:
        raise invalid_params(f"transaction is not valid {encoding}") from exc
    if len(raw) > MAX_TRANSACTION_BYTES:
        raise invalid_params(
            f"{encoding} encoded solana_sdk::transaction::versioned::VersionedTransaction too large: "
            f"{len(raw)} bytes (max: encoded/raw {MAX_TRANSACTION_BYTES})"
        )
    try:
        return VersionedTransaction.from_bytes(raw), raw
    except Exception as exc:  # solders raises its own error types for malformed bytes
        raise invalid_params(f"failed to deserialize transaction: {exc}") from exc


def _encoding(config: dict[str, Any], default: str, allowed: tuple[str, ...]) -> str:
    encoding = config.get("encoding", default)
    if encoding not in allowed:
        raise invalid_params(f"unsupported encoding {encoding!r}; use one of {list(allowed)}")
    return encoding


def _min_context_slot(params: list) -> int | None:
    """The ``minContextSlot`` of a call's config object, if it has one (null: none; -32602 if
    not an int)."""
    for value in params:
        if isinstance(value, dict) and value.get("minContextSlot") is not None:
            slot = value["minContextSlot"]
            if isinstance(slot, bool) or not isinstance(slot, int) or slot < 0:
                raise invalid_params(f"minContextSlot must be a non-negative integer, got {slot!r}")
            return slot
    return None


class RpcMethods:
    """Method table of the node: ``call(method, params, lag_slots=0) -> result`` or ``RpcError``.

    ``view_slot``: the slot the current call is answered as of (see the module docstring); set
    by ``call`` under the node's lock, which every handler runs under."""

    def __init__(self, node: LocalNode) -> None:
        self.node = node
        self.ledger = node.ledger
        self.view_slot = 0
        self.table: dict[str, Callable[[list], Any]] = {
            name[len("rpc_"):]: getattr(self, name) for name in dir(self) if name.startswith("rpc_")
        }

    def call(self, method: str, params: list, *, lag_slots: int = 0) -> Any:
        """Run one method (under the node's lock) as of ``lag_slots`` slots ago; raises
        ``RpcError`` (-32016 when its ``minContextSlot`` is past that view)."""
        handler = self.table.get(method)
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND, f"Method not found: {method}")
        with self.node.lock:
            self.view_slot = max(0, self.ledger.slot - lag_slots)
            wanted = None if method.startswith("localnet_") else _min_context_slot(params)
            if wanted is not None and wanted > self.view_slot:
                raise RpcError(
                    MIN_CONTEXT_SLOT_NOT_REACHED,
                    "Minimum context slot has not been reached",
                    {"contextSlot": self.view_slot},
                )
            return handler(params)

    def _context(self, value: Any) -> dict[str, Any]:
        return {"context": {"slot": self.view_slot, "apiVersion": API_VERSION}, "value": value}

    def _seen(self, record: TxRecord | None) -> TxRecord | None:
        """``record`` if it landed at or before the view slot, else None (not seen yet)."""
        return record if record is not None and record.slot <= self.view_slot else None

    # --- cluster --------------------------------------------------------------------------------
    def rpc_getHealth(self, params: list) -> str:
        return "ok"

    def rpc_getVersion(self, params: list) -> dict[str, Any]:
        return {"solana-core": f"{API_VERSION}-localnet-litesvm", "feature-set": 0}

    def rpc_getGenesisHash(self, params: list) -> str:
        return next(iter(self.ledger.blockhash_heights), self.ledger.latest_blockhash)

    def rpc_getSlot(self, params: list) -> int:
        return self.view_slot

    def rpc_getBlockHeight(self, params: list) -> int:
        return self.view_slot  # slot == block height (no skipped slots)

    def rpc_getEpochInfo(self, params: list) -> dict[str, Any]:
        slot = self.view_slot
        return {
            "absoluteSlot": slot,
            "blockHeight": slot,
            "epoch": 0,
            "slotIndex": slot,
            "slotsInEpoch": 432_000,
            "transactionCount": len(self.ledger.transactions),
        }

    def rpc_getLatestBlockhash(self, params: list) -> dict[str, Any]:
        slot = self.view_slot
        blockhash = self.ledger.blockhash_at(slot)
        return self._context({"blockhash": blockhash, "lastValidBlockHeight": slot + BLOCKHASH_VALIDITY_BLOCKS})

    def rpc_isBlockhashValid(self, params: list) -> dict[str, Any]:
        blockhash = _param(params, 0, "blockhash")
        if not isinstance(blockhash, str):
            raise invalid_params("blockhash must be a base58 string")
        return self._context(self.ledger.is_blockhash_valid(blockhash, at=self.view_slot))

    def rpc_getMinimumBalanceForRentExemption(self, params: list) -> int:
        size = _int(params, 0, "dataLength", 0, 10 * 1024 * 1024)
        return self.ledger.svm.minimum_balance_for_rent_exemption(size)

    def rpc_getFeeForMessage(self, params: list) -> dict[str, Any]:
        data = _param(params, 0, "message")
        try:
            message = from_bytes_versioned(base64.b64decode(data, validate=True))
        except Exception as exc:
            raise invalid_params(f"message is not a base64 serialized message: {exc}") from exc
        if not self.ledger.is_blockhash_valid(str(message.recent_blockhash)):
            return self._context(None)
        # LiteSVM charges 5,000 lamports per signature and no priority fee (see README).
        return self._context(LAMPORTS_PER_SIGNATURE * message.header.num_required_signatures)

    def rpc_getRecentPrioritizationFees(self, params: list) -> list:
        return []

    # --- accounts -------------------------------------------------------------------------------
    def _account_json(self, pubkey: Pubkey, encoding: str, account=None) -> dict[str, Any] | None:
        """The UiAccount JSON of ``pubkey`` (``account``: a state to render instead of the
        ledger's, e.g. a simulation's post-state); None when it does not exist."""
        account = account if account is not None else self.ledger.get_account(pubkey)
        if account is None or (account.lamports == 0 and not bytes(account.data)):
            return None
        data = bytes(account.data)
        if encoding == "jsonParsed" and account.owner == TOKEN_PROGRAM_ID and len(data) == TOKEN_ACCOUNT_LEN:
            rendered: Any = self._parsed_token_account(pubkey)
        elif encoding == "base58":
            rendered = [base58.b58encode(data).decode(), "base58"]
        elif encoding == "base64+zstd":
            import zstandard

            rendered = [base64.b64encode(zstandard.compress(data)).decode(), "base64+zstd"]
        else:
            rendered = [base64.b64encode(data).decode(), "base64"]
        return {
            "data": rendered,
            "executable": account.executable,
            "lamports": account.lamports,
            "owner": str(account.owner),
            "rentEpoch": RENT_EPOCH_EXEMPT,
            "space": len(data),
        }

    def _parsed_token_account(self, pubkey: Pubkey) -> dict[str, Any]:
        state = self.ledger.token_account(pubkey)
        mint = str(state.mint)
        return {
            "program": "spl-token",
            "parsed": {
                "type": "account",
                "info": {
                    "isNative": False,
                    "mint": mint,
                    "owner": str(state.owner),
                    "state": "initialized",
                    "tokenAmount": ui_token_amount(state.amount, self.ledger.mint_decimals(mint)),
                },
            },
            "space": TOKEN_ACCOUNT_LEN,
        }

    _ACCOUNT_ENCODINGS = ("base58", "base64", "base64+zstd", "jsonParsed")

    def rpc_getAccountInfo(self, params: list) -> dict[str, Any]:
        pubkey = _pubkey(params, 0, "pubkey")
        encoding = _encoding(_config(params, 1), "base58", self._ACCOUNT_ENCODINGS)
        return self._context(self._account_json(pubkey, encoding))

    def rpc_getMultipleAccounts(self, params: list) -> dict[str, Any]:
        keys = _param(params, 0, "pubkeys")
        if not isinstance(keys, list) or len(keys) > MAX_MULTIPLE_ACCOUNTS:
            raise invalid_params(f"pubkeys must be a list of at most {MAX_MULTIPLE_ACCOUNTS}")
        encoding = _encoding(_config(params, 1), "base64", self._ACCOUNT_ENCODINGS)
        pubkeys = [parse_pubkey(k, "pubkey") for k in keys]
        return self._context([self._account_json(k, encoding) for k in pubkeys])

    def rpc_getBalance(self, params: list) -> dict[str, Any]:
        account = self.ledger.get_account(_pubkey(params, 0, "pubkey"))
        return self._context(0 if account is None else account.lamports)

    def rpc_getTokenAccountBalance(self, params: list) -> dict[str, Any]:
        pubkey = _pubkey(params, 0, "pubkey")
        state = self.ledger.token_account(pubkey)
        if state is None:
            raise RpcError(INVALID_PARAMS, "Invalid param: could not find account or not a Token account")
        return self._context(ui_token_amount(state.amount, self.ledger.mint_decimals(str(state.mint))))

    def rpc_getTokenAccountsByOwner(self, params: list) -> dict[str, Any]:
        owner = _pubkey(params, 0, "owner")
        selector = _param(params, 1, "filter")
        if not isinstance(selector, dict) or len(selector) != 1 or not ({"mint", "programId"} & set(selector)):
            raise invalid_params('filter must be {"mint": <address>} or {"programId": <address>}')
        mint = parse_pubkey(selector["mint"], "mint") if "mint" in selector else None
        if "programId" in selector and parse_pubkey(selector["programId"], "programId") != TOKEN_PROGRAM_ID:
            return self._context([])
        encoding = _encoding(_config(params, 2), "base64", self._ACCOUNT_ENCODINGS)
        found = []
        for pubkey in sorted(self.ledger.token_accounts_by_owner.get(owner, ()), key=str):
            key = str(pubkey)
            state = self.ledger.token_account(pubkey)
            if state is None or state.owner != owner or (mint is not None and state.mint != mint):
                continue
            found.append({"pubkey": key, "account": self._account_json(pubkey, encoding)})
        return self._context(found)

    def rpc_requestAirdrop(self, params: list) -> str:
        pubkey = _pubkey(params, 0, "pubkey")
        lamports = _int(params, 1, "lamports", 1, 10**18)
        return self.node.airdrop(pubkey, lamports).signature

    # --- transactions ---------------------------------------------------------------------------
    def rpc_simulateTransaction(self, params: list) -> dict[str, Any]:
        config = _config(params, 1)
        tx, _raw = _decode_transaction(_param(params, 0, "transaction"), _encoding(config, "base58", ("base58", "base64")))
        replacement = None
        if config.get("replaceRecentBlockhash"):
            replacement = {
                "blockhash": self.ledger.latest_blockhash,
                "lastValidBlockHeight": self.ledger.last_valid_block_height(self.ledger.latest_blockhash),
            }
        elif not self.ledger.is_blockhash_valid(str(tx.message.recent_blockhash)):
            return self._context(_simulation_value("BlockhashNotFound", [], 0))
        wanted = config.get("accounts")
        addresses = []
        if wanted is not None:
            if not isinstance(wanted, dict) or not isinstance(wanted.get("addresses"), list):
                raise invalid_params("accounts must be {addresses: [...], encoding}")
            addresses = [parse_pubkey(a, "accounts.addresses") for a in wanted["addresses"]]
            account_encoding = _encoding(wanted, "base64", ("base64", "base58", "base64+zstd"))
        outcome = self.node.simulate(tx, sig_verify=bool(config.get("sigVerify", False)), want=tuple(addresses))
        value = _simulation_value(outcome.err, outcome.logs, outcome.units)
        value["replacementBlockhash"] = replacement
        if wanted is not None:
            # Solana answers the accounts' state after the simulated transaction (null when it
            # failed); accounts it did not write are as they are now.
            post = outcome.post_accounts or {}
            value["accounts"] = None if outcome.err is not None else [
                self._account_json(key, account_encoding, post.get(key)) for key in addresses
            ]
        return self._context(value)

    def rpc_sendTransaction(self, params: list) -> str:
        config = _config(params, 1)
        encoding = _encoding(config, "base58", ("base58", "base64"))
        tx, raw = _decode_transaction(_param(params, 0, "transaction"), encoding)
        signature = str(tx.signatures[0])
        preflight = not config.get("skipPreflight", False)
        keys = tx.message.account_keys
        invoked = [str(keys[ix.program_id_index]) for ix in tx.message.instructions]
        if self.node.faults.drops(invoked):
            return signature  # dropped: accepted by RPC, never lands
        try:
            self.node.send_transaction_parsed(tx, raw, preflight=preflight)
        except TransactionRejected as exc:
            if exc.err == "SignatureFailure":
                raise RpcError(
                    TRANSACTION_SIGNATURE_VERIFICATION_FAILURE,
                    "Transaction signature verification failure",
                ) from exc
            if not preflight:
                return signature  # a validator forwards it; it never lands
            raise RpcError(
                SEND_TRANSACTION_PREFLIGHT_FAILURE,
                f"Transaction simulation failed: {describe(exc.err)}",
                _simulation_value(exc.err, exc.logs, exc.units),
            ) from exc
        return signature

    def _status_json(self, record: TxRecord) -> dict[str, Any]:
        depth = self.view_slot - record.slot
        finalized = depth >= COMMITMENT_FINALIZED_DEPTH
        return {
            "slot": record.slot,
            "confirmations": None if finalized else depth,
            "err": record.err,
            "status": {"Ok": None} if record.err is None else {"Err": record.err},
            "confirmationStatus": "finalized" if finalized else "confirmed",
        }

    def rpc_getSignatureStatuses(self, params: list) -> dict[str, Any]:
        signatures = _param(params, 0, "signatures")
        if not isinstance(signatures, list) or len(signatures) > MAX_SIGNATURE_STATUSES:
            raise invalid_params(f"signatures must be a list of at most {MAX_SIGNATURE_STATUSES}")
        search = bool(_config(params, 1).get("searchTransactionHistory", False))
        values = []
        for signature in signatures:
            if not isinstance(signature, str):
                raise invalid_params("each signature must be a base58 string")
            record = self._seen(self.ledger.transactions.get(signature))
            recent = record is not None and self.view_slot - record.slot <= RECENT_STATUS_SLOTS
            values.append(self._status_json(record) if record and (search or recent) else None)
        return self._context(values)

    def rpc_getTransaction(self, params: list) -> dict[str, Any] | None:
        signature = _param(params, 0, "signature")
        if not isinstance(signature, str):
            raise invalid_params("signature must be a base58 string")
        config = _config(params, 1)
        encoding = _encoding(config, "json", ("json", "jsonParsed", "base64", "base58"))
        record = self._seen(self.ledger.transactions.get(signature))
        if record is None:
            return None
        max_version = config.get("maxSupportedTransactionVersion")
        return transaction_json(
            record, encoding, max_version, self.ledger.latest_blockhash, self.ledger.mint_decimals
        )

    def rpc_getSignaturesForAddress(self, params: list) -> list[dict[str, Any]]:
        address = _pubkey(params, 0, "address")
        config = _config(params, 1)
        limit = config.get("limit") or 1000
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise invalid_params("limit must be an integer in [1, 1000]")
        before, until = config.get("before"), config.get("until")
        signatures = self.ledger.signatures_by_address.get(address, [])
        out: list[dict[str, Any]] = []
        started = before is None
        for signature in reversed(signatures):
            if not started:
                started = signature == before
                continue
            if signature == until:
                break
            record = self.ledger.transactions[signature]
            if record.slot > self.view_slot:
                continue  # not seen yet by this view
            status = self._status_json(record)
            out.append(
                {
                    "signature": signature,
                    "slot": record.slot,
                    "err": record.err,
                    "memo": None,
                    "blockTime": record.block_time,
                    "confirmationStatus": status["confirmationStatus"],
                }
            )
            if len(out) >= limit:
                break
        return out

    # --- localnet_: world building and faults ----------------------------------------------------
    def rpc_localnet_info(self, params: list) -> dict[str, Any]:
        return self.node.info()

    def rpc_localnet_fundUsdc(self, params: list) -> dict[str, Any]:
        owner = _pubkey(params, 0, "owner")
        amount = _int(params, 1, "amount", 1, U64_MAX)
        record = self.node.fund_usdc(owner, amount)
        ata = get_associated_token_address(owner, self.node.usdc_mint)
        return {
            "owner": str(owner),
            "ata": str(ata),
            "amount": amount,
            "balance": self.ledger.token_account(ata).amount,
            "signature": record.signature,
        }

    def _drift_args(self, params: list) -> tuple[Pubkey, int]:
        return _pubkey(params, 0, "authority"), _int(params, 1, "subaccountId", 0, 65_535)

    def _drift_call(self, build):
        """Run a world-building call under the node lock; Drift's refusals and the world's own
        checks become invalid params; the self-check runs after it."""
        with self.node.lock:
            try:
                result = build()
            except DriftWorldError as exc:
                raise invalid_params(str(exc)) from exc
            except TransactionRejected as exc:
                raise invalid_params(f"Drift refused it: {describe(exc.err)}; {' | '.join(exc.logs[-3:])}") from exc
            self.node.checked()
            return result

    def _account(self, authority: Pubkey, sub_id: int) -> dict[str, Any] | None:
        return self.node.drift.account_json(authority, sub_id)

    def rpc_localnet_driftDeposit(self, params: list) -> dict[str, Any]:
        authority, sub_id = self._drift_args(params)
        amount = _int(params, 2, "amount", 1, U64_MAX)
        record = self._drift_call(lambda: self.node.drift.deposit(authority, sub_id, amount))
        return {**self._account(authority, sub_id), "signature": record.signature}

    def rpc_localnet_driftRealizePnl(self, params: list) -> dict[str, Any]:
        authority, sub_id = self._drift_args(params)
        pnl = _int(params, 2, "pnl", I64_MIN, I64_MAX)
        market = _int(params, 3, "perpMarketIndex", 0, 65_535, default=0)
        self._drift_call(lambda: self.node.drift.realize_pnl(authority, sub_id, pnl, market))
        return self._account(authority, sub_id)

    def rpc_localnet_driftAccount(self, params: list) -> dict[str, Any] | None:
        authority, sub_id = self._drift_args(params)
        with self.node.lock:
            return self._account(authority, sub_id)

    def rpc_localnet_driftSetDelegate(self, params: list) -> dict[str, Any]:
        authority, sub_id = self._drift_args(params)
        delegate = _param(params, 2, "delegate", default=None)
        key = None if delegate is None else parse_pubkey(delegate, "delegate")
        record = self._drift_call(lambda: self.node.drift.set_delegate(authority, sub_id, key))
        return {**self._account(authority, sub_id), "signature": record.signature}

    def rpc_localnet_driftConfigure(self, params: list) -> dict[str, Any]:
        config = _config(params, 0)
        unknown = set(config) - {"pnlPool", "pnlPools", "dailyWithdrawLimit", "perpMarketIndex"}
        if unknown:
            raise invalid_params(f"unknown keys {sorted(unknown)}")
        drift = self.node.drift
        markets = [m.index for m in drift.perp_markets]
        if "perpMarketIndex" in config:
            markets = [_int([config["perpMarketIndex"]], 0, "perpMarketIndex", 0, 65_535)]

        def configure():
            if "dailyWithdrawLimit" in config:
                limit = config["dailyWithdrawLimit"]
                if limit is not None:
                    limit = _int([limit], 0, "dailyWithdrawLimit", 0, U64_MAX)
                drift.set_daily_withdraw_limit(limit)
            pools = config.get("pnlPools") or {}
            if not isinstance(pools, dict):
                raise invalid_params("pnlPools must be an object {perpMarketIndex: amount}")
            for index, amount in pools.items():
                drift.set_pnl_pool(
                    _int([int(index) if str(index).isdigit() else index], 0, "pnlPools key", 0, 65_535),
                    _int([amount], 0, "pnlPools amount", 0, U64_MAX),
                )
            if "pnlPool" in config:
                amount = _int([config["pnlPool"]], 0, "pnlPool", 0, U64_MAX)
                for index in markets:
                    drift.set_pnl_pool(index, amount)

        self._drift_call(configure)
        with self.node.lock:
            pools = {str(m.index): drift.pnl_pool(m.index) for m in drift.perp_markets}
        return {
            "pnlPool": pools[str(markets[0])],
            "pnlPools": pools,
            "dailyWithdrawLimit": drift.daily_withdraw_limit,
        }

    def rpc_localnet_driftTransferOut(self, params: list) -> dict[str, Any]:
        authority, sub_id = self._drift_args(params)
        amount = _int(params, 2, "amount", 1, U64_MAX)
        destination_owner = _pubkey(params, 3, "to")
        ata = self.node.ensure_usdc_ata(destination_owner)
        record = self._drift_call(lambda: self.node.drift.transfer_out(authority, sub_id, amount, ata))
        return {"signature": record.signature, "to": str(ata), "account": self._account(authority, sub_id)}

    def rpc_localnet_setOraclePrice(self, params: list) -> dict[str, Any]:
        """``[perpMarketIndex, price]``: price as an integer with 6 decimals (PRICE_PRECISION,
        e.g. 150000000 = 150 USDC), set on the market's Prelaunch oracle by Drift's admin."""
        index = _int(params, 0, "perpMarketIndex", 0, 65_535)
        price = _int(params, 1, "price", 1, I64_MAX)
        record = self._drift_call(lambda: self.node.drift.set_oracle_price(index, price))
        return {"perpMarketIndex": index, "price": price, "signature": record.signature}

    def rpc_localnet_advanceSlots(self, params: list) -> dict[str, Any]:
        slots = _int(params, 0, "slots", 0, 1_000_000)
        self.ledger.advance(slots)
        return {"slot": self.ledger.slot, "blockHeight": self.ledger.block_height}

    def rpc_localnet_setFaults(self, params: list) -> dict[str, Any]:
        try:
            faults = Faults.from_json(_param(params, 0, "faults", default={}))
        except ValueError as exc:
            raise invalid_params(str(exc)) from exc
        self.node.set_faults(faults)
        return faults.to_json()

    def rpc_localnet_getFaults(self, params: list) -> dict[str, Any]:
        return self.node.faults.to_json()


def _simulation_value(err: Any, logs: list[str], units: int) -> dict[str, Any]:
    return {
        "err": err,
        "logs": logs,
        "accounts": None,
        "unitsConsumed": units,
        "returnData": None,
        "innerInstructions": None,
        "replacementBlockhash": None,
    }


def transaction_json(
    record: TxRecord, encoding: str, max_version: Any, latest_blockhash: str, decimals_of
) -> dict[str, Any]:
    """The ``getTransaction`` answer for a landed record (json, base64 or base58 encoding).

    ``decimals_of(mint: str) -> int`` gives each mint's decimals for the token balances.
    """
    version: Any = "legacy"
    if record.raw:
        tx = VersionedTransaction.from_bytes(record.raw)
        message = tx.message
        if isinstance(message, MessageV0):
            version = 0
            if max_version is None:
                raise RpcError(
                    -32015,
                    "Transaction version (0) is not supported by the requesting client. Please try "
                    'the request again with the following configuration parameter: '
                    '"maxSupportedTransactionVersion": 0',
                )
        header = message.header
        body: dict[str, Any] = {
            "signatures": [str(s) for s in tx.signatures],
            "message": {
                "accountKeys": [str(k) for k in message.account_keys],
                "header": {
                    "numRequiredSignatures": header.num_required_signatures,
                    "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
                    "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
                },
                "recentBlockhash": str(message.recent_blockhash),
                "instructions": [
                    {
                        "programIdIndex": ix.program_id_index,
                        "accounts": list(bytes(ix.accounts)),
                        "data": base58.b58encode(bytes(ix.data)).decode(),
                        "stackHeight": None,
                    }
                    for ix in message.instructions
                ],
            },
        }
        if version == 0:
            body["message"]["addressTableLookups"] = [
                {
                    "accountKey": str(lookup.account_key),
                    "writableIndexes": list(bytes(lookup.writable_indexes)),
                    "readonlyIndexes": list(bytes(lookup.readonly_indexes)),
                }
                for lookup in message.address_table_lookups
            ]
        if encoding == "base64":
            transaction: Any = [base64.b64encode(record.raw).decode(), "base64"]
        elif encoding == "base58":
            transaction = [base58.b58encode(record.raw).decode(), "base58"]
        else:
            transaction = body
    else:  # a record without signed bytes (none are made today; kept for old snapshots)
        transaction = {
            "signatures": [record.signature],
            "message": {
                "accountKeys": [str(k) for k in record.account_keys],
                "header": {
                    "numRequiredSignatures": 1,
                    "numReadonlySignedAccounts": 0,
                    "numReadonlyUnsignedAccounts": 0,
                },
                "recentBlockhash": latest_blockhash,
                "instructions": [],
            },
        }
    result: dict[str, Any] = {
        "slot": record.slot,
        "blockTime": record.block_time,
        "transaction": transaction,
        "meta": {
            "err": record.err,
            "status": {"Ok": None} if record.err is None else {"Err": record.err},
            "fee": record.fee,
            "preBalances": record.pre_balances,
            "postBalances": record.post_balances,
            "innerInstructions": [],
            "logMessages": record.logs,
            "preTokenBalances": [b.to_json(decimals_of) for b in record.pre_token_balances],
            "postTokenBalances": [b.to_json(decimals_of) for b in record.post_token_balances],
            "rewards": [],
            "loadedAddresses": {"writable": [], "readonly": []},
            "computeUnitsConsumed": record.compute_units,
        },
    }
    if max_version is not None:
        result["version"] = version
    return result
