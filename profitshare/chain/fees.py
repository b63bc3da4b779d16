"""The SOL (lamports) a payout needs before it is attempted (docs/design.md, "SOL pre-flight").

Rules (Solana docs, "Fees"; "Compute budget"; SPL Token docs):

* base fee: 5,000 lamports per signature of every transaction;
* prioritization fee: ``ceil(compute_unit_price [micro-lamports] × compute_unit_limit / 1e6)``
  lamports per transaction that sets a compute-unit price;
* rent: a new SPL token account is 165 bytes and must be rent-exempt; at today's rent that is
  2,039,280 lamports (read from ``getMinimumBalanceForRentExemption``, never hard-coded into a
  decision), paid by the payer of ``create_idempotent_associated_token_account``.

A payout is one transaction where it can be (settle, withdraw and ``transfer_checked`` under the
agent's one signature); on the step-by-step path it is the Drift settle and withdraw transactions
(each only when needed) and the ``transfer_checked`` transaction, each signed by the agent only.
The local node (LiteSVM) does not charge prioritization fees; a real cluster does, so the
pre-flight always counts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BASE_FEE_LAMPORTS_PER_SIGNATURE",
    "TOKEN_ACCOUNT_SIZE",
    "MICRO_LAMPORTS_PER_LAMPORT",
    "DEFAULT_DRIFT_COMPUTE_UNIT_LIMIT",
    "DEFAULT_ATOMIC_COMPUTE_UNIT_LIMIT",
    "COMPUTE_UNITS_PER_EXTRA_LEG",
    "payout_compute_unit_limit",
    "TxFeeBudget",
    "priority_fee_lamports",
    "transaction_fee_lamports",
    "payout_sol_needed",
]

BASE_FEE_LAMPORTS_PER_SIGNATURE = 5_000
TOKEN_ACCOUNT_SIZE = 165
MICRO_LAMPORTS_PER_LAMPORT = 1_000_000
#: Compute-unit limit we set on Drift transactions (settlePnl, withdraw) unless
#: ``QV_DRIFT_COMPUTE_UNIT_LIMIT`` says otherwise. Measured on the real Drift v2.84.0 program on
#: the local node (whole transaction): settlePnl 47-59k, withdraw 47-52k, withdraw with the
#: idempotent creation of the agent's USDC account 72.5k; 120k leaves headroom for subaccounts
#: with more positions (Drift's margin check reads every market) without paying priority fees
#: on Solana's 200k default.
DEFAULT_DRIFT_COMPUTE_UNIT_LIMIT = 120_000
#: Compute-unit limit of the one-transaction payout (settlePnl + withdraw + transfer_checked +
#: memo, and the idempotent creation of the creator's and the agent's ATAs when missing) unless
#: ``QV_ATOMIC_COMPUTE_UNIT_LIMIT`` says otherwise; measured on the local node (see
#: ``benchmarks/drift.py``).
DEFAULT_ATOMIC_COMPUTE_UNIT_LIMIT = 200_000
#: Compute units added to a payout's limit (either path) for each leg beyond the first: one
#: more ``transfer_checked``, measured at 6.2k on the local node (``benchmarks/drift.py``: 60.8k
#: for one leg, 79.3k for four; the step-by-step transfer with a new creator ATA and five legs
#: 55.8-61.8k, over a flat 60k limit). A transaction that runs out of compute units fails whole
#: (Solana docs, "Compute budget"), so the limit grows with the legs it pays.
COMPUTE_UNITS_PER_EXTRA_LEG = 8_000


def payout_compute_unit_limit(base: int, legs: int) -> int:
    """The compute-unit limit of a payout paying ``legs`` (>= 1) legs whose one-leg limit is
    ``base``: ``base + (legs - 1) × COMPUTE_UNITS_PER_EXTRA_LEG``. Raises ``ValueError`` for
    fewer than one leg."""
    if legs < 1:
        raise ValueError(f"a payout pays at least one leg, got {legs}")
    return base + (legs - 1) * COMPUTE_UNITS_PER_EXTRA_LEG


def _non_negative_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")


@dataclass(frozen=True)
class TxFeeBudget:
    """Fee inputs of one transaction: ``compute_unit_limit`` (CU), ``compute_unit_price``
    (micro-lamports per CU; 0 = no priority fee), ``signatures`` (count, >= 1)."""

    compute_unit_limit: int
    compute_unit_price: int
    signatures: int = 1

    def __post_init__(self) -> None:
        _non_negative_int("compute_unit_limit", self.compute_unit_limit)
        _non_negative_int("compute_unit_price", self.compute_unit_price)
        _non_negative_int("signatures", self.signatures)
        if self.signatures < 1:
            raise ValueError("a transaction has at least one signature")


def priority_fee_lamports(compute_unit_price: int, compute_unit_limit: int) -> int:
    """Prioritization fee in lamports: ``ceil(price_microlamports × limit / 1_000_000)``.

    Ints only; raises ``ValueError`` on negative or non-int input.
    Example: price 10,000 µ-lamports × 60,000 CU = 600 lamports.
    """
    _non_negative_int("compute_unit_price", compute_unit_price)
    _non_negative_int("compute_unit_limit", compute_unit_limit)
    return -(-(compute_unit_price * compute_unit_limit) // MICRO_LAMPORTS_PER_LAMPORT)


def transaction_fee_lamports(budget: TxFeeBudget) -> int:
    """Total fee of one transaction in lamports: base fee × signatures + prioritization fee."""
    return BASE_FEE_LAMPORTS_PER_SIGNATURE * budget.signatures + priority_fee_lamports(
        budget.compute_unit_price, budget.compute_unit_limit
    )


def payout_sol_needed(
    transactions: Sequence[TxFeeBudget],
    *,
    token_account_rent: int,
    missing_token_accounts: int,
) -> int:
    """Lamports the agent must hold to attempt a payout (pure; ints in, int out).

    ``transactions``: the budget of every transaction the payout sends (the atomic payout's
    one; or the step-by-step path's settle, withdraw and ``transfer_checked``);
    ``token_account_rent``: rent-exempt minimum of a 165-byte token account (lamports, from
    ``getMinimumBalanceForRentExemption(165)``); ``missing_token_accounts``: how many token
    accounts the payout creates (the creator's ATA, and the agent's when missing).
    Raises ``ValueError`` on negative input or no transaction.
    """
    _non_negative_int("token_account_rent", token_account_rent)
    _non_negative_int("missing_token_accounts", missing_token_accounts)
    if not transactions:
        raise ValueError("a payout sends at least one transaction")
    total = sum(transaction_fee_lamports(budget) for budget in transactions)
    return total + token_account_rent * missing_token_accounts
