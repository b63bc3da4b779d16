"""Helpers for the chain gateway tests: a gateway on the local node, funded agent wallets."""

from __future__ import annotations

from dataclasses import dataclass

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from profitshare.chain.drift.driftpy_adapter import DriftpyAdapter
from profitshare.chain.gateway import ChainGateway
from profitshare.chain.rpc import RpcPool
from profitshare.chain.transactions import Transactions

USDC = Pubkey.from_string("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")
ATA_RENT = 2_039_280  # rent-exempt minimum of a 165-byte token account (LiteSVM, mainnet)
FEE = 5_000  # lamports per signature


def make_pool(*urls: str, max_attempts: int = 3, timeout: float = 5, slot_probe_seconds: float | None = None) -> RpcPool:
    """A pool with short backoff, for tests; its endpoints' slots are read only when a test
    asks (``slot_probe_seconds`` None) so scripted servers see only the calls under test."""
    return RpcPool(
        list(urls),
        timeout_seconds=timeout,
        max_attempts=max_attempts,
        backoff_initial=0.01,
        backoff_max=0.05,
        slot_probe_seconds=slot_probe_seconds,
    )


def make_gateway(
    localnet, *, priority: int = 0, max_attempts: int = 3, urls: list[str] | None = None,
    slot_probe_seconds: float | None = None, **kwargs,
) -> ChainGateway:
    """A gateway on the test node (the real Drift program, reached through driftpy); ``urls``:
    its endpoints instead of the node's one URL (e.g. the node and its replica), whose slots
    are read every ``slot_probe_seconds`` (None: never)."""
    pool = make_pool(*(urls or [localnet.url]), max_attempts=max_attempts, slot_probe_seconds=slot_probe_seconds)
    return ChainGateway(
        pool,
        usdc_mint=USDC,
        drift=DriftpyAdapter(pool),
        priority_fee_microlamports=priority,
        payout_compute_unit_limit=60_000,
        transactions=Transactions(pool, poll_interval=0.02),
        confirm_timeout=kwargs.pop("confirm_timeout", 2.0),
        **kwargs,
    )


def funded_agent(localnet, *, lamports: int = 10**9, usdc: int = 0) -> Keypair:
    """A new agent keypair with ``lamports`` SOL and ``usdc`` base units in its USDC ATA."""
    agent = Keypair()
    localnet.rpc("requestAirdrop", str(agent.pubkey()), lamports)
    if usdc:
        localnet.rpc("localnet_fundUsdc", str(agent.pubkey()), usdc)
    return agent


# --- the engine's path, one transaction at a time ---------------------------------------------------
# The gateway has one money path, the engine's batch (sign, send_many, wait_for, what arrived from
# the token balances). These helpers drive exactly those primitives for one transaction, so the
# chain tests prove what the engine relies on.


def sol(localnet, owner) -> int:
    """Lamports held by ``owner`` (read from the node)."""
    return int(localnet.rpc("getBalance", str(owner))["value"])


def usdc(localnet, owner) -> int:
    """USDC base units in ``owner``'s ATA (0 when it does not exist), read from the node."""
    from spl.token.instructions import get_associated_token_address

    ata = get_associated_token_address(Pubkey.from_string(str(owner)), USDC)
    if localnet.rpc("getAccountInfo", str(ata), {"encoding": "base64"})["value"] is None:
        return 0
    return int(localnet.rpc("getTokenAccountBalance", str(ata))["value"]["amount"])


def ata_exists(localnet, owner) -> bool:
    """Whether ``owner``'s USDC ATA exists on the node."""
    from spl.token.instructions import get_associated_token_address

    ata = get_associated_token_address(Pubkey.from_string(str(owner)), USDC)
    return localnet.rpc("getAccountInfo", str(ata), {"encoding": "base64"})["value"] is not None


def send(gateway, signed) -> None:
    """Send a signed payout (``SignedPayout``) or Drift transaction once, as the engine does."""
    gateway.send_signed(getattr(signed, "transaction", signed))


def confirm(gateway, signed, timeout: float | None = None):
    """``wait_for`` one signature and raise as the engine decides it: ``TransactionFailed``
    (landed with an error), ``BlockhashExpired`` (never landed, never will), ``SendOutcomeUnknown``
    (undecided at ``timeout``). Returns the landed ``SignatureStatus``."""
    from profitshare.chain.errors import BlockhashExpired, SendOutcomeUnknown, TransactionFailed

    timeout = gateway.confirm_timeout if timeout is None else timeout
    status = gateway.wait_for({signed.signature: signed.last_valid_block_height}, timeout=timeout)[signed.signature]
    if status.state == "failed":
        raise TransactionFailed(signed.signature, status.err)
    if status.state == "expired":
        raise BlockhashExpired(signed.signature)
    if status.state == "unknown":
        raise SendOutcomeUnknown(signed.signature)
    return status


def _drift(gateway, signed, failure):
    """Send a signed Drift transaction and wait; name a refusal or failure with ``failure``."""
    from profitshare.chain.errors import BlockhashExpired, SendOutcomeUnknown, TransactionFailed
    from profitshare.chain.transactions import describe_error

    error = gateway.send_many([signed])[signed.signature]
    if isinstance(error, TransactionFailed):  # refused by preflight: nothing landed, no fee
        raise failure(describe_error(error.err, signed.program_ids), None)
    if isinstance(error, BlockhashExpired):
        raise failure("BlockhashExpired", None)
    if error is not None and not isinstance(error, SendOutcomeUnknown):
        raise error
    status = gateway.wait_for({signed.signature: signed.last_valid_block_height}, timeout=gateway.confirm_timeout)[signed.signature]
    if status.state == "failed":
        raise failure(describe_error(status.err, signed.program_ids), signed.signature)
    if status.state != "landed":
        raise failure(status.state, signed.signature)
    return signed.signature


def settle_pnl(gateway, agent: Keypair, subaccount_id: int = 0, market: int = 0) -> str:
    """Settle as the engine's settle step does (build, send, wait); returns the signature.
    Raises ``SettleFailed(reason, signature|None)``."""
    from profitshare.chain.errors import SettleFailed

    return _drift(gateway, gateway.build_settle(agent, subaccount_id, market), SettleFailed)


@dataclass(frozen=True)
class Withdrawn:
    """A landed withdraw: ``signature``, ``requested`` and ``delivered`` (what the agent's token
    account gained in that transaction, base units)."""

    signature: str
    requested: int
    delivered: int

    @property
    def shortfall(self) -> int:
        return max(0, self.requested - self.delivered)


def withdraw(gateway, agent: Keypair, subaccount_id: int, amount: int, reduce_only: bool = True) -> Withdrawn:
    """Withdraw as the engine's withdraw step does (build, send, wait, read what arrived from the
    transaction's token balances). Raises ``WithdrawFailed``."""
    from profitshare.chain.errors import WithdrawFailed

    signature = _drift(gateway, gateway.build_withdraw(agent, subaccount_id, amount, reduce_only), WithdrawFailed)
    return Withdrawn(signature, amount, gateway.withdraw_delivered(signature, agent.pubkey()))


def wallet(gateway, owner):
    """``WalletState(lamports, usdc)`` of ``owner`` read through the gateway (with its pool's
    retries and failover), as the engine's pre-flight reads it."""
    return gateway.wallet_states([owner])[str(owner)]
