"""``ChainGateway``: the one door the product has to Solana and Drift.

All amounts are integers: lamports for SOL, base units (6 decimals) for USDC. Addresses may be
given as ``Pubkey`` or base58 text (parsed by ``parse_address``: ``InvalidAddress`` on bad input,
code ``invalid_creator_wallet``). Errors are the typed ``profitshare.chain.errors``; each has a
stable ``code`` for IOU reasons.

The money path it serves is the engine's batch (docs/design.md, "The money path"): signed
settles and withdraws (``build_settle`` / ``build_withdraw``, Drift instructions from the driftpy
adapter, read in one round per batch with ``prefetch_drift``), signed payouts
(``build_payout``: ``signature`` + ``last_valid_block_height`` known before sending, recorded
durably by the engine first), then the batched primitives of ``BatchOps`` (``send_many``,
``wait_for``, ``statuses``, ``wallet_states``). What a withdraw delivered is read from the
transaction's token balances (``withdraw_delivered``; docs/design.md, "Measure what arrived").
Reads for the operations services are typed here too (``transaction``, ``slot``,
``signatures_for_address``, ``latest_blockhash``), so no module outside ``chain/`` speaks
JSON-RPC.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from profitshare.chain.addresses import parse_address, usdc_ata
from profitshare.chain.batch import BatchOps
from profitshare.chain.drift.interface import DriftAdapter, DriftSubaccountState
from profitshare.chain.errors import (
    ChainError,
    DriftSubaccountMissing,
    SettleFailed,
    WithdrawFailed,
)
from profitshare.chain.fees import (
    DEFAULT_ATOMIC_COMPUTE_UNIT_LIMIT,
    DEFAULT_DRIFT_COMPUTE_UNIT_LIMIT,
    TOKEN_ACCOUNT_SIZE,
    TxFeeBudget,
    payout_compute_unit_limit,
    payout_sol_needed,
)
from profitshare.chain.landed import LandedTransaction, parse_transaction
from profitshare.chain.payouts import (
    USDC_DECIMALS,
    LandedPayout,
    SignedPayout,
    parse_landed_payout,
    sign_payout,
)
from profitshare.chain.rpc import RpcPool
from profitshare.chain.transactions import (
    RecentBlockhash,
    SignatureStatus,
    SignedTransaction,
    Transactions,
    sign_transaction,
)

__all__ = ["ChainGateway", "get_gateway"]

Address = Pubkey | str
_CU_NONCE_RANGE = 1_000
_UNIQUE_SIGNING_TRIES = 5


def _check_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError(f"amount must be a positive int (USDC base units), got {amount!r}")


class ChainGateway(BatchOps):
    """Solana + Drift access for the engine.

    ``pool``: RPC endpoints; ``usdc_mint``: USDC mint; ``drift``: a ``DriftAdapter`` (None: Drift
    methods raise ``ChainError``); ``usdc_decimals``: 6; ``payout_compute_unit_limit`` /
    ``priority_fee_microlamports``: the payout's compute budget (``QV_PAYOUT_COMPUTE_UNIT_LIMIT``,
    ``QV_PRIORITY_FEE_MICROLAMPORTS``); ``drift_compute_unit_limit``: the Drift transactions'
    (same priority price); ``atomic_compute_unit_limit``: the one-transaction payout's
    (``QV_ATOMIC_COMPUTE_UNIT_LIMIT``); ``drift_spot_market_index``: Drift's USDC spot market
    (``QV_DRIFT_USDC_MARKET_INDEX``);
    ``confirm_timeout``: default seconds for ``confirm``; ``poll_interval``: seconds between polls.
    """

    def __init__(
        self,
        pool: RpcPool,
        *,
        usdc_mint: Address,
        drift: DriftAdapter | None = None,
        usdc_decimals: int = USDC_DECIMALS,
        payout_compute_unit_limit: int = 60_000,
        priority_fee_microlamports: int = 0,
        drift_compute_unit_limit: int = DEFAULT_DRIFT_COMPUTE_UNIT_LIMIT,
        atomic_compute_unit_limit: int = DEFAULT_ATOMIC_COMPUTE_UNIT_LIMIT,
        drift_spot_market_index: int = 0,
        confirm_timeout: float = 60.0,
        poll_interval: float = 0.5,
        transactions: Transactions | None = None,
    ) -> None:
        self.pool = pool
        self.transactions = transactions or Transactions(pool, poll_interval=poll_interval)
        self.usdc_mint = parse_address(usdc_mint)
        self.usdc_decimals = usdc_decimals
        self.drift = drift
        self.payout_compute_unit_limit = payout_compute_unit_limit
        self.priority_fee_microlamports = priority_fee_microlamports
        self.drift_compute_unit_limit = drift_compute_unit_limit
        self.atomic_compute_unit_limit = atomic_compute_unit_limit
        self.drift_spot_market_index = drift_spot_market_index
        self.confirm_timeout = confirm_timeout
        self._rent: dict[int, int] = {}

    # --- reads ------------------------------------------------------------------------------------
    def token_account_rent(self) -> int:
        """Rent-exempt minimum of a 165-byte token account in lamports
        (``getMinimumBalanceForRentExemption(165)``, cached per gateway)."""
        if TOKEN_ACCOUNT_SIZE not in self._rent:
            self._rent[TOKEN_ACCOUNT_SIZE] = self.pool.read(
                "getMinimumBalanceForRentExemption",
                lambda c: c.get_minimum_balance_for_rent_exemption(TOKEN_ACCOUNT_SIZE).value,
            )
        return self._rent[TOKEN_ACCOUNT_SIZE]

    def payout_lamports_needed(
        self, *, include_withdraw: bool, missing_token_accounts: int, include_settle: bool = False,
        atomic: bool = False, legs: int = 1,
    ) -> int:
        """Lamports a payout needs before it is attempted (docs/design.md, "SOL pre-flight"):
        the fees (signature + priority fee) of exactly the transactions it will send, and the
        rent of each of ``missing_token_accounts`` token accounts it creates (read once, cached).

        ``atomic``: one transaction (``atomic_compute_unit_limit``). Otherwise the step-by-step
        path: the Drift settle's transaction when ``include_settle`` and the withdraw's when
        ``include_withdraw`` (``drift_compute_unit_limit`` each), and the transfer's
        (``payout_compute_unit_limit``). The payout's limit grows with the ``legs`` it pays
        (``fees.payout_compute_unit_limit``)."""
        price = self.priority_fee_microlamports
        if atomic:
            budgets = [TxFeeBudget(payout_compute_unit_limit(self.atomic_compute_unit_limit, legs), price)]
        else:
            budgets = [TxFeeBudget(payout_compute_unit_limit(self.payout_compute_unit_limit, legs), price)]
            budgets += [TxFeeBudget(self.drift_compute_unit_limit, price)] * (int(include_settle) + int(include_withdraw))
        return payout_sol_needed(
            budgets,
            token_account_rent=self.token_account_rent() if missing_token_accounts else 0,
            missing_token_accounts=missing_token_accounts,
        )

    def latest_blockhash(self) -> RecentBlockhash:
        """A blockhash to sign with and its last valid block height (``confirmed``)."""
        return self.transactions.latest_blockhash()

    def slot(self, *, quick: float | None = None) -> int:
        """The ``confirmed`` slot (``getSlot``), with the pool's retries and failover; ``quick``
        (seconds): one short try per endpoint, for the payout path. Raises ``RpcUnavailable``."""
        return int(self.pool.call("getSlot", {"commitment": "confirmed"}, quick=quick))

    def transaction(self, signature: str) -> LandedTransaction | None:
        """The landed transaction ``signature`` (``getTransaction``, parsed once for every
        reader), or None when the node does not have it. Raises ``RpcUnavailable``."""
        tx = self.transactions.get_transaction(signature)
        if not tx or not tx.get("meta"):
            return None
        return parse_transaction(signature, tx)

    def signatures_for_address(
        self, address: Address, *, limit: int, before: str | None = None, until: str | None = None
    ) -> list[dict]:
        """``getSignaturesForAddress`` of ``address`` at ``confirmed``, newest first: up to
        ``limit`` (1..1000) entries ``{"signature", "slot", "err", "blockTime", ...}`` before
        ``before`` and after ``until`` (signatures). Raises ``RpcUnavailable``."""
        config: dict = {"limit": limit, "commitment": "confirmed"}
        if before:
            config["before"] = before
        if until:
            config["until"] = until
        return self.pool.call("getSignaturesForAddress", str(parse_address(address)), config) or []

    # --- payouts ---------------------------------------------------------------------------------
    def build_payout(
        self,
        agent_keypair: Keypair,
        creator_owner: Address,
        amount: int,
        *,
        reference: str | None = None,
        recent: RecentBlockhash | None = None,
        create_destination_ata: bool = True,
        more_legs: Sequence[tuple[Address, int]] = (),
    ) -> SignedPayout:
        """Sign a payout of ``amount`` USDC base units to ``creator_owner`` (not sent), and of
        each of ``more_legs`` (``[(owner, base units)]``: the other legs of a split share, whose
        token accounts must exist) in the same transaction.

        ``reference``: memo text identifying the payout (e.g. ``"qv:dist:42"``; 1..64 bytes;
        random when None) — it also keeps two equal payouts in one blockhash distinct.
        ``recent``: a blockhash to sign with (batches sign many payouts with one).
        ``create_destination_ata``: prepend the idempotent creation of the creator's ATA.
        Raises ``InvalidAddress``, ``ValueError`` (amount, reference), ``RpcUnavailable``.
        The SOL pre-flight is the engine's, for the whole batch (``fees.payout_sol_needed``).
        """
        creator = parse_address(creator_owner)
        _check_amount(amount)
        return sign_payout(
            agent_keypair,
            creator,
            self.usdc_mint,
            amount,
            recent or self.transactions.latest_blockhash(),
            reference=reference,
            decimals=self.usdc_decimals,
            compute_unit_limit=payout_compute_unit_limit(self.payout_compute_unit_limit, 1 + len(more_legs)),
            compute_unit_price=self.priority_fee_microlamports,
            create_destination_ata=create_destination_ata,
            more_legs=_legs(more_legs),
        )

    def build_atomic_payout(
        self,
        agent_keypair: Keypair,
        creator_owner: Address,
        amount: int,
        *,
        subaccount_id: int,
        settle_market_index: int | None,
        withdraw_amount: int,
        reference: str,
        recent: RecentBlockhash,
        create_destination_ata: bool = True,
        more_legs: Sequence[tuple[Address, int]] = (),
    ) -> SignedPayout:
        """Sign (not send) the one-transaction payout (docs/design.md, "A payout is one
        transaction where it can be"): compute budget (``atomic_compute_unit_limit``, the
        priority fee), Drift ``settle_pnl`` of ``settle_market_index`` (None: no settle; also
        left out when the subaccount holds no position there, see ``settles`` on the result),
        a reduce-only Drift ``withdraw`` of ``withdraw_amount`` base units to the agent's USDC
        ATA (0: none), the creator's ATA created idempotently (``create_destination_ata``),
        ``transfer_checked`` of ``amount`` base units (and one per ``more_legs``, ``[(owner, base
        units)]``), and the memo ``reference``; ``withdraw_amount`` is at most the sum of the legs.
        Reads the Drift user (prefetched by ``prefetch_drift``). Raises ``InvalidAddress``,
        ``ValueError`` (amounts, reference, size), ``WithdrawFailed`` (no Drift subaccount),
        ``RpcUnavailable``."""
        creator = parse_address(creator_owner)
        _check_amount(amount)
        legs = _legs(more_legs)
        total = amount + sum(leg_amount for _, leg_amount in legs)
        if isinstance(withdraw_amount, bool) or not isinstance(withdraw_amount, int) or not 0 <= withdraw_amount <= total:
            raise ValueError(f"withdraw_amount must be an int in 0..{total} (the legs' sum), got {withdraw_amount!r}")
        try:
            drift = self._drift().build_payout_instructions(
                agent_keypair, subaccount_id, settle_market_index, self.drift_spot_market_index, withdraw_amount,
                user_token_account=usdc_ata(agent_keypair.pubkey(), self.usdc_mint),
            )
        except LookupError as exc:
            raise WithdrawFailed(f"AccountNotFound: {exc}", None) from exc
        return sign_payout(
            agent_keypair, creator, self.usdc_mint, amount, recent, reference=reference, decimals=self.usdc_decimals,
            compute_unit_limit=payout_compute_unit_limit(self.atomic_compute_unit_limit, 1 + len(legs)),
            compute_unit_price=self.priority_fee_microlamports,
            create_destination_ata=create_destination_ata, drift=drift, withdraw_amount=withdraw_amount,
            more_legs=legs,
        )

    def signature_status(self, signature: str) -> SignatureStatus:
        """The ``SignatureStatus`` of one ``signature`` (see ``BatchOps.statuses`` for many)."""
        return self.transactions.signature_status(signature)

    def read_payout(self, signature: str, *, landed_slot: int | None = None) -> LandedPayout | None:
        """The payout transaction ``signature`` as recorded on chain, or None if not found.
        ``landed_slot``: the slot it is recorded to have landed in: only an endpoint that has
        reached it answers (see ``Transactions.get_transaction``).

        Raises ``NotAPayout`` if that transaction is not a payout.
        """
        tx = self.transactions.get_transaction(signature, seen_slot=landed_slot)
        return None if tx is None else parse_landed_payout(tx)

    # --- Drift -----------------------------------------------------------------------------------
    def _drift(self) -> DriftAdapter:
        if self.drift is None:
            raise ChainError("this gateway was built without a Drift adapter")
        return self.drift

    def sign_drift(
        self,
        signer: Keypair,
        instructions: list[Instruction],
        failure: Callable[[str, str | None], ChainError],
        recent: RecentBlockhash | None = None,
        *,
        check_unique: bool = True,
    ) -> SignedTransaction:
        """Sign Drift instructions (compute budget first) into bytes no earlier transaction has:
        the compute-unit limit carries a random nonce and a signature the chain already knows
        is re-signed. ``recent``: a blockhash to reuse (batches);
        ``check_unique=False`` skips the status check (a batch checks all its signatures in one
        ``statuses`` call and re-signs the few that collide)."""
        recent = recent or self.transactions.latest_blockhash()
        for _ in range(_UNIQUE_SIGNING_TRIES):
            limit = self.drift_compute_unit_limit - secrets.randbelow(_CU_NONCE_RANGE)
            budget = [set_compute_unit_limit(limit)]
            if self.priority_fee_microlamports:
                budget.append(set_compute_unit_price(self.priority_fee_microlamports))
            signed = sign_transaction(signer, [*budget, *instructions], recent)
            if not check_unique or self.transactions.signature_status(signed.signature).state == "unknown":
                return signed
        raise failure("could not sign a transaction distinct from earlier ones", None)

    def build_settle(
        self, agent_keypair: Keypair, subaccount_id: int, perp_market_index: int, recent=None, *, check_unique=True
    ) -> SignedTransaction:
        """Signed (not sent) settle PnL of the agent's subaccount. Raises ``SettleFailed``."""
        try:
            instructions = self._drift().build_settle_pnl_instructions(agent_keypair, subaccount_id, perp_market_index)
        except LookupError as exc:
            raise SettleFailed(f"AccountNotFound: {exc}", None) from exc
        return self.sign_drift(agent_keypair, instructions, SettleFailed, recent, check_unique=check_unique)

    def build_withdraw(
        self,
        agent_keypair: Keypair,
        subaccount_id: int,
        amount: int,
        reduce_only: bool = True,
        recent=None,
        *,
        check_unique=True,
    ) -> SignedTransaction:
        """Signed (not sent) Drift withdraw of ``amount`` USDC base units to the agent's USDC
        ATA (created idempotently). Raises ``WithdrawFailed``, ``ValueError``."""
        _check_amount(amount)
        ata = usdc_ata(agent_keypair.pubkey(), self.usdc_mint)
        try:
            instructions = self._drift().build_withdraw_instructions(
                agent_keypair, subaccount_id, self.drift_spot_market_index, amount, reduce_only, user_token_account=ata
            )
        except LookupError as exc:
            raise WithdrawFailed(f"AccountNotFound: {exc}", None) from exc
        return self.sign_drift(agent_keypair, instructions, WithdrawFailed, recent, check_unique=check_unique)

    def prefetch_drift(self, agents: list[tuple[Pubkey, int]], *, with_usdc_accounts: bool = False) -> None:
        """Read many agents' Drift ``User`` accounts (and, ``with_usdc_accounts``, their USDC
        ATAs) in one round for the ``build_settle`` / ``build_withdraw`` calls of a batch step
        that follow (``DriftpyAdapter.prefetch``). Raises ``RpcUnavailable``."""
        also = [usdc_ata(agent, self.usdc_mint) for agent, _ in agents] if with_usdc_accounts else []
        self._drift().prefetch(agents, also=also)

    def drift_subaccount(self, authority: Address, subaccount_id: int) -> DriftSubaccountState:
        """``DriftSubaccountState(collateral, withdrawable, settled_pnl, unsettled_pnl)`` (ints,
        USDC base units). Raises ``DriftSubaccountMissing``, ``RpcUnavailable``."""
        key = parse_address(authority)
        try:
            state = self._drift().read_subaccount(key, subaccount_id)
        except LookupError as exc:
            raise DriftSubaccountMissing(str(key), subaccount_id) from exc
        return DriftSubaccountState(
            collateral=state.collateral,
            withdrawable=state.withdrawable,
            settled_pnl=state.settled_pnl,
            unsettled_pnl=state.unsettled_pnl,
        )

    def withdraw_delivered(self, signature: str, agent: Address) -> int | None:
        """USDC base units the agent's token account gained in the landed transaction
        ``signature`` (its token balances), or None if the node cannot return that
        transaction. Raises ``RpcUnavailable``."""
        landed = self.transaction(signature)
        if landed is None:
            return None
        return landed.token_change(str(usdc_ata(parse_address(agent), self.usdc_mint)))


def _legs(legs: Sequence[tuple[Address, int]]) -> list[tuple[Pubkey, int]]:
    """``[(owner, base units)]`` with each owner parsed (raises ``InvalidAddress``) and each
    amount checked (``ValueError``)."""
    parsed = []
    for owner, amount in legs:
        _check_amount(amount)
        parsed.append((parse_address(owner), amount))
    return parsed


def get_gateway() -> ChainGateway:
    """Build the gateway from Django settings: ``QV_RPC_URLS``, ``QV_RPC_TIMEOUT_SECONDS``,
    ``QV_RPC_MAX_ATTEMPTS``, ``QV_USDC_MINT``, ``QV_USDC_DECIMALS``,
    ``QV_PAYOUT_COMPUTE_UNIT_LIMIT``, ``QV_PRIORITY_FEE_MICROLAMPORTS``, ``QV_DRIFT_ENV``,
    ``QV_DRIFT_USDC_MARKET_INDEX`` and optionally ``QV_DRIFT_COMPUTE_UNIT_LIMIT`` and
    ``QV_ATOMIC_COMPUTE_UNIT_LIMIT``. Drift is
    reached through the one driftpy adapter, on mainnet and on the local node alike."""
    from django.conf import settings

    pool = RpcPool.from_settings()
    transactions = Transactions(pool)
    mint = parse_address(settings.QV_USDC_MINT)
    drift_limit = getattr(settings, "QV_DRIFT_COMPUTE_UNIT_LIMIT", DEFAULT_DRIFT_COMPUTE_UNIT_LIMIT)
    atomic_limit = getattr(settings, "QV_ATOMIC_COMPUTE_UNIT_LIMIT", DEFAULT_ATOMIC_COMPUTE_UNIT_LIMIT)
    from profitshare.chain.drift.driftpy_adapter import DriftpyAdapter

    drift = DriftpyAdapter(pool, env=settings.QV_DRIFT_ENV)
    return ChainGateway(
        pool,
        usdc_mint=mint,
        drift=drift,
        usdc_decimals=settings.QV_USDC_DECIMALS,
        payout_compute_unit_limit=settings.QV_PAYOUT_COMPUTE_UNIT_LIMIT,
        priority_fee_microlamports=settings.QV_PRIORITY_FEE_MICROLAMPORTS,
        drift_compute_unit_limit=drift_limit,
        atomic_compute_unit_limit=atomic_limit,
        drift_spot_market_index=settings.QV_DRIFT_USDC_MARKET_INDEX,
        transactions=transactions,
    )
