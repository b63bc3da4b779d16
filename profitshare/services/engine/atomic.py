"""The one-transaction payout (docs/design.md, "A payout is one transaction where it can be").

For each item that still needs USDC from Drift, the engine signs one transaction of the agent:
compute budget, Drift ``settle_pnl`` of the close's market (when not settled yet), a reduce-only
Drift ``withdraw`` of exactly what is missing, the creator's ATA created idempotently when
missing, ``transfer_checked`` of everything owed, and the memo. It runs in this order:

1. **SOL pre-flight** for exactly that transaction: one signature, its priority fee, the rent of
   the token accounts it creates. Too little owes ``insufficient_sol`` (the step-by-step path
   would need more).
2. **Simulate** every transaction of the batch (``simulateTransaction``) and decide the path:
   - it succeeds and the agent's USDC account ends where it should (funds held for this
     distribution gone, nothing else touched: Drift delivered all it was asked) — the atomic path;
   - Drift refuses the settle because there is nothing left to settle (``NOTHING_TO_SETTLE``) —
     the distribution is settled; sign again without the settle and simulate once more;
   - anything else (a PnL pool that cannot settle, too little collateral, Drift's withdraw
     guard, a withdraw that would deliver less, no answer) — the step-by-step path
     (``steps.settle`` / ``withdraw``, ``payouts.transfer``), which pays what can be paid and
     owes the rest with the reason code of the step that refused.
3. **Record, send, decide** the atomic attempts as every payout attempt (``payouts``): recorded
   before the first send, decided once by signature. Refused or expired unlanded, nothing moved:
   the item takes the step-by-step path in the same run. Undecided: the resolver finishes it.

A simulation is advice, not a record: whatever is then sent follows the exactly-once rules.
"""

from __future__ import annotations

import logging

from django.db import transaction

from profitshare.chain.addresses import usdc_ata
from profitshare.chain.batch import Simulation
from profitshare.chain.errors import ChainError
from profitshare.chain.payouts import SignedPayout
from profitshare.chain.transactions import describe_error
from profitshare.models import AttemptStatus, Distribution, DriftAction, DriftActionKind, IouReason
from profitshare.services.audit import append_events, event
from profitshare.services.engine.batch import UNRESOLVED_ATTEMPTS, Batch, Item, refresh
from profitshare.services.engine.carries import NO_ACCOUNT
from profitshare.services.engine.ledger import owe
from profitshare.services.engine.payouts import (
    attempt_numbers,
    payout_reference,
    record_attempts,
    send_and_decide,
)
from profitshare.services.engine.steps import NOTHING_TO_SETTLE, preflight

logger = logging.getLogger(__name__)


def pay_atomically(batch: Batch) -> None:
    """Pay the batch's items that need a Drift withdraw in one transaction each (see the module
    docstring). Items left live afterwards take the step-by-step path; paid, owed and
    undecided ones leave the batch."""
    items = _eligible(batch)
    if not items:
        return
    gateway = batch.gateway
    if not preflight(batch, items, atomic=True):
        return
    clean = []
    for item in (i for i in items if i.active):
        if item.usdc_before == item.dist.withdrawn:
            clean.append(item)
        else:
            _step_by_step(batch, [item], (
                f"not used: the agent's token account holds {item.usdc_before - item.dist.withdrawn} base units "
                "that are not this payout's"
            ))
    if not clean:
        return
    chosen: dict[int, SignedPayout] = {}
    pending = clean
    try:
        gateway.prefetch_drift(
            [(i.agent, i.dist.subscription.drift_subaccount_id) for i in clean], with_usdc_accounts=True
        )
        recent = gateway.latest_blockhash()
        numbers = attempt_numbers(clean)
        for _ in range(2):  # a second round only for settles Drift had nothing left for
            signed = _sign_all(batch, pending, recent, numbers)
            pending = [i for i in pending if i.dist.pk in signed]
            if not pending:
                break
            simulations = gateway.simulate_many(
                [tx.transaction for tx in signed.values()],
                accounts={signed[i.dist.pk].signature: [usdc_ata(i.agent, gateway.usdc_mint)] for i in pending},
            )
            pending = _decide(batch, pending, signed, simulations, chosen)
    except (ChainError, ValueError) as exc:
        _step_by_step(batch, pending, f"not simulated: {exc}")  # those already decided keep their path
    ready = [i for i in clean if i.dist.pk in chosen]
    if ready:
        _send(batch, ready, chosen)


def _eligible(batch: Batch) -> list[Item]:
    """Live items that still need USDC from Drift and may take it in the payout's transaction:
    no earlier withdraw of theirs undecided (the step-by-step path resolves it first), and no
    other distribution of the same agent holding withdrawn funds (the transfer must spend only
    this payout's USDC, even if Drift delivered less than it simulated)."""
    items = [i for i in batch.live() if i.dist.withdrawn < i.payable]
    if not items:
        return []
    open_withdraws = set(
        DriftAction.objects.filter(
            distribution__in=[i.dist.pk for i in items], kind=DriftActionKind.WITHDRAW, delivered__isnull=True,
        ).exclude(status__in=(AttemptStatus.FAILED, AttemptStatus.EXPIRED)).values_list("distribution_id", flat=True)
    )
    holding = set(
        Distribution.objects.filter(
            withdrawn__gt=0, subscription__agent_wallet_id__in={i.dist.subscription.agent_wallet_id for i in items},
        ).exclude(pk__in=[i.dist.pk for i in items]).values_list("subscription__agent_wallet_id", flat=True)
    )
    return [
        i for i in items
        if i.dist.pk not in open_withdraws and i.dist.subscription.agent_wallet_id not in holding
    ]


def _sign_all(batch: Batch, items: list[Item], recent, numbers: dict[int, int]) -> dict[int, SignedPayout]:
    """Sign each item's atomic payout; one that cannot be built (e.g. too many Drift positions
    for one transaction's 1,232 bytes, or a subaccount Drift does not know) goes step by step."""
    signed = {}
    for item in items:
        try:
            signed[item.dist.pk] = _sign(batch, item, recent, numbers)
        except (ChainError, ValueError) as exc:
            _step_by_step(batch, [item], f"not built: {exc}")
    return signed


def _sign(batch: Batch, item: Item, recent, numbers: dict[int, int]) -> SignedPayout:
    dist = item.dist
    market = None
    if not dist.settled:
        market = dist.close.market_index if dist.close else 0
    return batch.gateway.build_atomic_payout(
        item.keypair, subaccount_id=dist.subscription.drift_subaccount_id, settle_market_index=market,
        withdraw_amount=item.payable - dist.withdrawn, reference=payout_reference(item, numbers), recent=recent,
        **item.payout_legs(item.transfers(item.payable), item.creator_ata_exists),
    )


def _decide(
    batch: Batch, items: list[Item], signed: dict[int, SignedPayout], simulations: dict[str, Simulation | Exception],
    chosen: dict[int, SignedPayout],
) -> list[Item]:
    """Sort simulated items: into ``chosen`` (the atomic path), the step-by-step path, or (the
    returned list) to be signed again without a settle Drift had nothing left for."""
    again: list[Item] = []
    settled: list[tuple[Item, str]] = []
    fallback: dict[str, list[Item]] = {}
    for item in items:
        tx = signed[item.dist.pk]
        simulation = simulations[tx.signature]
        if not item.dist.settled and not tx.settles:  # no position left in the market
            settled.append((item, "UserHasNoPositionInMarket"))
        if isinstance(simulation, Exception):
            fallback.setdefault(f"simulation refused: {simulation}", []).append(item)
            continue
        if simulation.err is None:
            expected = item.usdc_before - item.dist.withdrawn
            after = simulation.token_amount(0)
            if after == expected:
                chosen[item.dist.pk] = tx
            else:
                fallback.setdefault(
                    f"the withdraw would deliver {tx.withdraw_amount - (expected - (after or 0))} of {tx.withdraw_amount}",
                    [],
                ).append(item)
            continue
        step = tx.failed_step(simulation.err) or "transaction"
        name = describe_error(simulation.err, tx.program_ids)
        if step == "settle" and name in NOTHING_TO_SETTLE:
            settled.append((item, name))
            again.append(item)
            continue
        fallback.setdefault(f"{step} would fail: {name}", []).append(item)
    _mark_settled(batch, settled)
    for why, group in fallback.items():
        _step_by_step(batch, group, why)
    return again


def _mark_settled(batch: Batch, items: list[tuple[Item, str]]) -> None:
    """Drift has nothing left to settle for these (``[(item, Drift's answer)]``): their PnL is
    in collateral already (docs/design.md, "Nothing to settle is settled")."""
    if not items:
        return
    with transaction.atomic():
        Distribution.objects.filter(pk__in=[i.dist.pk for i, _ in items]).update(settled=True)
        append_events([
            event("distribution", i.dist.pk, actor=batch.actor, reason=f"PnL already settled (Drift: {why})")
            for i, why in items
        ])
    for item, _ in items:
        item.dist.settled = True


def _step_by_step(batch: Batch, items: list[Item], why: str) -> None:
    """These items take the step-by-step path in this run; the audit trail says why."""
    append_events([
        event("distribution", i.dist.pk, actor=batch.actor, reason=f"step-by-step payout: atomic {why}", path="transfer")
        for i in items
    ])
    logger.info("%d payouts step by step: atomic %s", len(items), why)


def _send(batch: Batch, items: list[Item], chosen: dict[int, SignedPayout]) -> None:
    """Record, send and decide the atomic attempts; refused, failed or expired ones (nothing
    moved) go on step by step in this run."""
    attempts = record_attempts(batch, items, chosen)
    by_sig = {a.signature: item for a, item in zip(attempts, items, strict=True)}
    send_and_decide(batch, attempts, first_send=True)
    refresh(items)
    retry = []
    for attempt in attempts:
        item = by_sig[attempt.signature]
        if attempt.status in UNRESOLVED_ATTEMPTS:
            item.stop()  # outcome unknown: the resolver finishes it from the chain
        elif attempt.status == AttemptStatus.LANDED:
            if item.held and item.dist.owed:  # what its held legs owe stays owed
                owe(batch, item, IouReason.NO_TOKEN_ACCOUNT, NO_ACCOUNT)
            item.stop()
        else:
            retry.append(item)
    if retry:
        _step_by_step(batch, retry, "transaction did not land")
