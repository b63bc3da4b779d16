"""``ChainGateway``: the one interface the payout engine uses to reach Solana and Drift.

All amounts are integers: lamports for SOL, base units (6 decimals) for USDC. Addresses may be
given as ``Pubkey`` or base58 text (parsed by ``parse_address``: ``InvalidAddress`` on bad input,
code ``invalid_creator_wallet``). Errors are the typed ``profitshare.chain.errors``; each has a
stable ``code`` for IOU reasons.

The money path it serves (DESIGN.md; seeds 000 and 001 correct seed 002):
``settle_pnl`` → ``withdraw`` (delivered measured on the agent's USDC token account, seed 001
#6) → ``payout_sol_needed`` / ``check_payout_funds`` (seed 000 #7) → ``build_payout`` (record
``signature`` + ``last_valid_block_height`` durably) → ``send`` → ``confirm`` → ``read_payout``.
A payout whose send outcome is unknown is resolved with ``signature_status`` and ``is_expired``;
the same ``SignedPayout.raw`` may be re-sent until expiry, and only an expired, unlanded payout
may be replaced by a newly built one.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from solana.rpc.commitment import Confirmed
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.token.state import TokenAccount
from spl.token.constants import TOKEN_PROGRAM_ID

from profitshare.chain.addresses import parse_address, usdc_ata
from profitshare.chain.batch import BatchOps
from profitshare.chain.drift.interface import DriftAdapter, DriftSubaccountState
from profitshare.chain.errors import (
    BlockhashExpired,
    ChainError,
    DriftSubaccountMissing,
    InsufficientSol,
    InsufficientUsdc,
    SendOutcomeUnknown,
    SettleFailed,
    TokenAccountMissing,
    TransactionFailed,
    WithdrawFailed,
    WithdrawShort,
)
from profitshare.chain.fees import (
    DEFAULT_DRIFT_COMPUTE_UNIT_LIMIT,
    TOKEN_ACCOUNT_SIZE,
    TxFeeBudget,
    payout_sol_needed,
)
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
    describe_error,
    sign_transaction,
)

__all__ = ["ChainGateway", "WithdrawResult", "get_gateway"]

Address = Pubkey | str
_CU_NONCE_RANGE = 1_000
_UNIQUE_SIGNING_TRIES = 5


@dataclass(frozen=True)
class WithdrawResult:
    """A landed Drift withdraw: ``signature`` (base58), ``requested`` and ``delivered`` (USDC
    base units; delivered = what the agent's USDC token account gained in that transaction)."""

    signature: str
    requested: int
    delivered: int

    @property
    def shortfall(self) -> int:
        """``requested - delivered`` (>= 0): what the engine owes as an IOU."""
        return max(0, self.requested - self.delivered)


def _check_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError(f"amount must be a positive int (USDC base units), got {amount!r}")


class ChainGateway(BatchOps):
    """Solana + Drift access for the engine.

    ``pool``: RPC endpoints; ``usdc_mint``: USDC mint; ``drift``: a ``DriftAdapter`` (None: Drift
    methods raise ``ChainError``); ``usdc_decimals``: 6; ``payout_compute_unit_limit`` /
    ``priority_fee_microlamports``: the payout's compute budget (``QV_PAYOUT_COMPUTE_UNIT_LIMIT``,
    ``QV_PRIORITY_FEE_MICROLAMPORTS``); ``drift_compute_unit_limit``: the Drift transactions'
    (same priority price); ``drift_spot_market_index``: Drift's USDC spot market
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
        self.drift_spot_market_index = drift_spot_market_index
        self.confirm_timeout = confirm_timeout
        self._rent: dict[int, int] = {}

    # --- balances --------------------------------------------------------------------------------
    def sol_balance(self, owner: Address) -> int:
        """Lamports held by ``owner`` (``getBalance`` at confirmed; 0 for a missing account)."""
        key = parse_address(owner)
        return self.pool.read("getBalance", lambda c: c.get_balance(key, Confirmed).value)

    def _token_account(self, pubkey: Pubkey) -> TokenAccount | None:
        account = self.pool.read(
            "getAccountInfo", lambda c: c.get_account_info(pubkey, Confirmed, "base64").value
        )
        if account is None:
            return None
        if account.owner != TOKEN_PROGRAM_ID or len(account.data) != TOKEN_ACCOUNT_SIZE:
            raise TokenAccountMissing(str(pubkey))
        return TokenAccount.from_bytes(bytes(account.data))

    def usdc_balance(self, owner: Address) -> int:
        """USDC base units in ``owner``'s USDC associated token account; 0 if it does not exist.

        The SPL token account, never Drift collateral (seed 001 #6).
        """
        state = self._token_account(usdc_ata(parse_address(owner), self.usdc_mint))
        return 0 if state is None else state.amount

    def token_account_balance(self, pubkey: Address) -> int:
        """Base units held by the SPL token account at ``pubkey``.

        Raises ``TokenAccountMissing`` if there is no token account there.
        """
        key = parse_address(pubkey)
        state = self._token_account(key)
        if state is None:
            raise TokenAccountMissing(str(key))
        return state.amount

    def ata_exists(self, owner: Address) -> bool:
        """True if ``owner``'s USDC associated token account exists."""
        return self._token_account(usdc_ata(parse_address(owner), self.usdc_mint)) is not None

    # --- fees ------------------------------------------------------------------------------------
    def token_account_rent(self) -> int:
        """Rent-exempt minimum of a 165-byte token account in lamports
        (``getMinimumBalanceForRentExemption(165)``, cached per gateway)."""
        if TOKEN_ACCOUNT_SIZE not in self._rent:
            self._rent[TOKEN_ACCOUNT_SIZE] = self.pool.read(
                "getMinimumBalanceForRentExemption",
                lambda c: c.get_minimum_balance_for_rent_exemption(TOKEN_ACCOUNT_SIZE).value,
            )
        return self._rent[TOKEN_ACCOUNT_SIZE]

    def payout_sol_needed(
        self, creator_owner: Address, include_withdraw: bool, *, agent_owner: Address | None = None
    ) -> int:
        """Lamports the agent needs for a payout to ``creator_owner`` (see ``fees``).

        Counts the transfer transaction, the Drift withdraw transaction when
        ``include_withdraw``, the rent of the creator's USDC ATA when it is missing, and, if
        ``agent_owner`` is given, the rent of the agent's USDC ATA when it is missing.
        """
        missing = 0 if self.ata_exists(creator_owner) else 1
        if agent_owner is not None and not self.ata_exists(agent_owner):
            missing += 1
        return payout_sol_needed(
            transfer=TxFeeBudget(self.payout_compute_unit_limit, self.priority_fee_microlamports),
            withdraw=(
                TxFeeBudget(self.drift_compute_unit_limit, self.priority_fee_microlamports)
                if include_withdraw
                else None
            ),
            token_account_rent=self.token_account_rent() if missing else 0,
            missing_token_accounts=missing,
        )

    def check_payout_funds(
        self, agent_owner: Address, creator_owner: Address, amount: int, *, include_withdraw: bool
    ) -> int:
        """Pre-flight of a payout; returns the lamports needed.

        Raises ``InsufficientSol(needed, available)`` when the agent's SOL is short;
        ``InsufficientUsdc(amount, available)`` when, without a withdraw still to come, the
        agent's USDC token account holds less than ``amount``.
        """
        _check_amount(amount)
        needed = self.payout_sol_needed(
            creator_owner, include_withdraw, agent_owner=agent_owner if include_withdraw else None
        )
        available = self.sol_balance(agent_owner)
        if available < needed:
            raise InsufficientSol(needed, available)
        if not include_withdraw:
            usdc = self.usdc_balance(agent_owner)
            if usdc < amount:
                raise InsufficientUsdc(amount, usdc)
        return needed

    # --- payouts ---------------------------------------------------------------------------------
    def build_payout(
        self,
        agent_keypair: Keypair,
        creator_owner: Address,
        amount: int,
        *,
        reference: str | None = None,
        check_funds: bool = True,
        recent: RecentBlockhash | None = None,
        create_destination_ata: bool = True,
    ) -> SignedPayout:
        """Sign a payout of ``amount`` USDC base units to ``creator_owner`` (not sent).

        ``reference``: memo text identifying the payout (e.g. ``"qv:dist:42"``; 1..64 bytes;
        random when None) — it also keeps two equal payouts in one blockhash distinct.
        With ``check_funds`` (default) runs ``check_payout_funds`` first. Raises
        ``InvalidAddress``, ``ValueError`` (amount, reference), ``InsufficientSol``,
        ``InsufficientUsdc``, ``RpcUnavailable``. ``recent``: a blockhash to sign with (batches
        sign many payouts with one).
        """
        creator = parse_address(creator_owner)
        _check_amount(amount)
        if check_funds:
            self.check_payout_funds(agent_keypair.pubkey(), creator, amount, include_withdraw=False)
        return sign_payout(
            agent_keypair,
            creator,
            self.usdc_mint,
            amount,
            recent or self.transactions.latest_blockhash(),
            reference=reference,
            decimals=self.usdc_decimals,
            compute_unit_limit=self.payout_compute_unit_limit,
            compute_unit_price=self.priority_fee_microlamports,
            create_destination_ata=create_destination_ata,
        )

    def send(self, signed: SignedPayout) -> None:
        """Send the payout's bytes once. Safe to call again with the same ``signed`` until expiry.

        Raises ``BlockhashExpired`` (refused: blockhash too old, it can never land),
        ``TransactionFailed`` (refused by preflight, e.g. insufficient funds: nothing landed),
        ``SendOutcomeUnknown`` (response lost: resolve by ``signature_status``),
        ``RpcUnavailable``. Returns normally once a node accepted it (or it landed already).
        """
        self.transactions.send(
            SignedTransaction(
                signature=signed.signature,
                raw=signed.raw,
                blockhash=signed.blockhash,
                last_valid_block_height=signed.last_valid_block_height,
                program_ids=(),
            )
        )

    def signature_status(self, signature: str) -> SignatureStatus:
        """``SignatureStatus(state="landed"|"failed"|"unknown", slot, err)`` of ``signature``."""
        return self.transactions.signature_status(signature)

    def block_height(self) -> int:
        """Current block height at ``confirmed``."""
        return self.transactions.block_height()

    def is_expired(self, last_valid_block_height: int) -> bool:
        """True when the finalized block height is past ``last_valid_block_height``."""
        return self.transactions.is_expired(last_valid_block_height)

    def confirm(
        self, signature: str, last_valid_block_height: int, timeout: float | None = None
    ) -> SignatureStatus:
        """Wait until ``signature`` lands (returns its status) — see ``Transactions.confirm``.

        Raises ``TransactionFailed`` (landed with an error), ``BlockhashExpired`` (never landed
        and never will), ``SendOutcomeUnknown`` (still undecided after ``timeout`` seconds).
        """
        return self.transactions.confirm(
            signature, last_valid_block_height, self.confirm_timeout if timeout is None else timeout
        )

    def read_payout(self, signature: str) -> LandedPayout | None:
        """The payout transaction ``signature`` as recorded on chain, or None if not found.

        Raises ``NotAPayout`` if that transaction is not a payout.
        """
        tx = self.transactions.get_transaction(signature)
        return None if tx is None else parse_landed_payout(tx)

    # --- Drift -----------------------------------------------------------------------------------
    def _drift(self) -> DriftAdapter:
        if self.drift is None:
            raise ChainError("this gateway was built without a Drift adapter")
        return self.drift

    def _submit_drift(
        self,
        signer: Keypair,
        instructions: list[Instruction],
        failure: Callable[[str, str | None], ChainError],
    ) -> str:
        """Sign (compute budget first), send once, confirm; name failures with ``failure``.

        Two equal Drift instructions signed with one blockhash would be byte-identical (ed25519
        is deterministic): the second would answer ``AlreadyProcessed`` and report the first's
        result. So the compute-unit limit carries a random nonce (limit − 0..999; the fee
        pre-flight counts the full limit) and a signature already known to the chain is
        re-signed. (The local node's Drift emulator refuses a Memo in a Drift transaction.)
        A lost send response is resolved by the signature's status, never by re-signing.
        """
        signed = self.sign_drift(signer, instructions, failure)
        try:
            self.transactions.send(signed)
        except TransactionFailed as exc:  # refused by preflight: nothing landed, no fee
            raise failure(describe_error(exc.err, signed.program_ids), None) from exc
        except BlockhashExpired as exc:
            raise failure("BlockhashExpired", None) from exc
        except SendOutcomeUnknown:
            pass  # resolved below by the signature's status
        try:
            self.transactions.confirm(
                signed.signature, signed.last_valid_block_height, self.confirm_timeout
            )
        except TransactionFailed as exc:  # landed with an error: fee charged, nothing moved
            raise failure(describe_error(exc.err, signed.program_ids), signed.signature) from exc
        except BlockhashExpired as exc:  # never landed and never will
            raise failure("BlockhashExpired", signed.signature) from exc
        return signed.signature

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
        is re-signed (see ``_submit_drift``). ``recent``: a blockhash to reuse (batches);
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

    def settle_pnl(self, agent_keypair: Keypair, subaccount_id: int, perp_market_index: int) -> str:
        """Settle the perp market's PnL of the agent's subaccount and wait for confirmation;
        returns the signature. Raises ``SettleFailed(reason, signature|None)`` where reason is
        the Drift error name (e.g. ``"PnlPoolCantSettleUser"``) or ``"BlockhashExpired"``;
        ``SendOutcomeUnknown`` (undecided after ``confirm_timeout``), ``RpcUnavailable``."""
        drift = self._drift()
        try:
            instructions = drift.build_settle_pnl_instructions(
                agent_keypair, subaccount_id, perp_market_index
            )
        except LookupError as exc:
            raise SettleFailed(f"AccountNotFound: {exc}", None) from exc
        return self._submit_drift(agent_keypair, instructions, SettleFailed)

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

    def withdraw(
        self,
        agent_keypair: Keypair,
        subaccount_id: int,
        amount: int,
        reduce_only: bool = True,
        *,
        strict: bool = False,
    ) -> WithdrawResult:
        """Withdraw ``amount`` USDC base units from Drift to the agent's USDC token account.

        ``delivered`` is what the agent's token account gained in the landed withdraw
        transaction (its pre/post token balances; if the node cannot return the transaction,
        the balance change read around it). By default a short delivery is *returned*, not
        raised: the engine pays what arrived and owes the rest as an IOU (seed 000 #2). With
        ``strict=True`` it raises ``WithdrawShort(requested, delivered, signature)``.
        Raises ``WithdrawFailed(reason, signature|None)`` (nothing moved; reason = Drift error
        name such as ``"DailyWithdrawLimit"``), ``SendOutcomeUnknown``, ``RpcUnavailable``.
        """
        _check_amount(amount)
        drift = self._drift()
        agent = agent_keypair.pubkey()
        ata = usdc_ata(agent, self.usdc_mint)
        before = self.usdc_balance(agent)
        try:
            instructions = drift.build_withdraw_instructions(
                agent_keypair,
                subaccount_id,
                self.drift_spot_market_index,
                amount,
                reduce_only,
                user_token_account=ata,
            )
        except LookupError as exc:
            raise WithdrawFailed(f"AccountNotFound: {exc}", None) from exc
        signature = self._submit_drift(agent_keypair, instructions, WithdrawFailed)
        delivered = self._gained(signature, ata)
        if delivered is None:
            delivered = self.usdc_balance(agent) - before
        if strict and delivered < amount:
            raise WithdrawShort(amount, delivered, signature)
        return WithdrawResult(signature=signature, requested=amount, delivered=delivered)

    def withdraw_delivered(self, signature: str, agent: Address) -> int | None:
        """USDC base units the agent's token account gained in the landed transaction
        ``signature`` (its pre/post token balances), or None if the node cannot return that
        transaction. Raises ``RpcUnavailable``."""
        return self._gained(signature, usdc_ata(parse_address(agent), self.usdc_mint))

    def _gained(self, signature: str, token_account: Pubkey) -> int | None:
        tx = self.transactions.get_transaction(signature)
        if not tx or not tx.get("meta"):
            return None
        keys = tx["transaction"]["message"]["accountKeys"]
        if str(token_account) not in keys:
            return 0
        index = keys.index(str(token_account))

        def amount(entries) -> int:
            for entry in entries or []:
                if entry["accountIndex"] == index:
                    return int(entry["uiTokenAmount"]["amount"])
            return 0

        meta = tx["meta"]
        return amount(meta.get("postTokenBalances")) - amount(meta.get("preTokenBalances"))


def get_gateway() -> ChainGateway:
    """Build the gateway from Django settings: ``QV_RPC_URLS``, ``QV_RPC_TIMEOUT_SECONDS``,
    ``QV_RPC_MAX_ATTEMPTS``, ``QV_USDC_MINT``, ``QV_USDC_DECIMALS``,
    ``QV_PAYOUT_COMPUTE_UNIT_LIMIT``, ``QV_PRIORITY_FEE_MICROLAMPORTS``, ``QV_DRIFT_ENV``,
    ``QV_DRIFT_USDC_MARKET_INDEX`` and optionally ``QV_DRIFT_COMPUTE_UNIT_LIMIT``. Drift is
    reached through the one driftpy adapter, on mainnet and on the local node alike."""
    from django.conf import settings

    pool = RpcPool.from_settings()
    transactions = Transactions(pool)
    mint = parse_address(settings.QV_USDC_MINT)
    drift_limit = getattr(settings, "QV_DRIFT_COMPUTE_UNIT_LIMIT", DEFAULT_DRIFT_COMPUTE_UNIT_LIMIT)
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
        drift_spot_market_index=settings.QV_DRIFT_USDC_MARKET_INDEX,
        transactions=transactions,
    )
