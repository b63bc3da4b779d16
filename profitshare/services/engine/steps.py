"""The Drift steps before the transfer: start, settle PnL, SOL pre-flight, withdraw from Drift
(measured on the agent's token account). The recipients' side before them (carries folded,
dust carried, legs held) is ``carries``. Each step costs a few RPC calls and database
statements for the whole batch."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from profitshare.chain.addresses import parse_address, usdc_ata
from profitshare.chain.errors import (
    BlockhashExpired,
    ChainError,
    InsufficientSol,
    SettleFailed,
    TransactionFailed,
    WithdrawFailed,
)
from profitshare.chain.transactions import SignatureStatus, SignedTransaction, describe_error
from profitshare.models import (
    AttemptStatus,
    Distribution,
    DistributionStatus,
    DriftAction,
    DriftActionKind,
    IouReason,
)
from profitshare.services.audit import append_events, event
from profitshare.services.engine import drift_actions
from profitshare.services.engine.batch import Batch, Item, group
from profitshare.services.engine.ledger import owe

logger = logging.getLogger(__name__)


def start(batch: Batch) -> None:
    """Pending distributions become ``processing`` (attempts + 1), one UPDATE for the batch."""
    pending = [i for i in batch.live() if i.dist.status == DistributionStatus.PENDING]
    if not pending:
        return
    with transaction.atomic():
        events = []
        for item in pending:
            item.dist.status = DistributionStatus.PROCESSING
            item.dist.attempts += 1
            events.append(event("distribution", item.dist.pk, actor=batch.actor, from_status="pending", to_status="processing"))
        Distribution.objects.filter(pk__in=[i.dist.pk for i in pending]).update(
            status=DistributionStatus.PROCESSING, attempts=F("attempts") + 1, updated_at=timezone.now()
        )
        append_events(events)


def _sign_unique(batch: Batch, items: list[Item], sign, unbuildable) -> dict[int, SignedTransaction]:
    """Sign one Drift transaction per item with a shared blockhash (an item whose transaction
    cannot be built, ``SettleFailed`` / ``WithdrawFailed`` e.g. for a subaccount Drift does not
    know, is handed to ``unbuildable(item, error)`` and left out); re-sign the few whose
    signature the chain already knows (equal bytes would be answered AlreadyProcessed) or an
    earlier run recorded (a send the node dropped within the same blockhash: same bytes, and a
    second DriftAction row for them would be refused). Raises ``ChainError`` if collisions
    persist (practically impossible)."""
    recent = batch.gateway.latest_blockhash()
    by_pk = {item.dist.pk: item for item in items}
    signed = {}
    for pk, item in by_pk.items():
        try:
            signed[pk] = sign(item, recent)
        except (SettleFailed, WithdrawFailed) as exc:
            unbuildable(item, str(exc))
    for _ in range(3):
        if not signed:
            return signed
        signatures = [tx.signature for tx in signed.values()]
        statuses = batch.gateway.statuses(signatures)
        recorded = set(DriftAction.objects.filter(signature__in=signatures).values_list("signature", flat=True))
        known = [
            pk for pk, tx in signed.items() if statuses[tx.signature].state != "unknown" or tx.signature in recorded
        ]
        if not known:
            return signed
        for pk in known:
            signed[pk] = sign(by_pk[pk], recent)
    raise ChainError("could not sign Drift transactions distinct from earlier ones")


def _send_all(batch: Batch, signed: dict[int, SignedTransaction], items: list[Item], on_refused) -> dict[str, int]:
    """Send each signed transaction once; returns ``{signature: last_valid_block_height}`` of
    those that may land. ``on_refused(item, error_text)`` for preflight refusals."""
    by_pk = {item.dist.pk: item for item in items}
    results = batch.gateway.send_many(list(signed.values()))
    pending = {}
    for pk, tx in signed.items():
        error = results[tx.signature]
        if isinstance(error, TransactionFailed):
            on_refused(by_pk[pk], describe_error(error.err, tx.program_ids))
            continue
        if isinstance(error, BlockhashExpired):
            on_refused(by_pk[pk], "BlockhashExpired")
            continue
        if error is not None:
            logger.info("send of %s unknown: %s", tx.signature, error)
        pending[tx.signature] = tx.last_valid_block_height
    return pending


#: The status of a transaction that was never sent (refused by preflight): undecided.
UNSENT = SignatureStatus("unknown")

#: Drift's answers to a settle with nothing left to settle in that market: ``settle_pnl`` settles a
#: position's whole unsettled PnL, so an earlier settle (another close's, or this one's before a
#: crash) may already have settled this close's PnL. Drift refuses the repeat rather than doing
#: nothing; for the payout it means "settled".
NOTHING_TO_SETTLE = frozenset({"UserHasNoPositionInMarket", "NoUnsettledPnl"})


def settle(batch: Batch) -> None:
    """Settle PnL on Drift for the items not settled yet and wait for confirmation; a refusal or
    failure owes the share (``settle_failed``), no answer owes it as ``rpc_unavailable``. Drift's
    "nothing to settle" (``NOTHING_TO_SETTLE``) counts as settled: the PnL is in collateral."""
    items = [i for i in batch.live() if not i.dist.settled]
    if not items:
        return
    gateway = batch.gateway

    def sign(item: Item, recent):
        market = item.dist.close.market_index if item.dist.close else 0
        return gateway.build_settle(item.keypair, item.dist.subscription.drift_subaccount_id, market, recent, check_unique=False)

    already: dict[int, str] = {}

    def refused(item: Item, error: str) -> None:
        if error in NOTHING_TO_SETTLE:
            already[item.dist.pk] = error
            return
        owe(batch, item, IouReason.SETTLE_FAILED, f"SettleFailed: {error}")

    try:
        gateway.prefetch_drift([(i.keypair.pubkey(), i.dist.subscription.drift_subaccount_id) for i in items])
        signed = _sign_unique(batch, items, sign, lambda item, error: owe(batch, item, IouReason.SETTLE_FAILED, error))
        items = [i for i in items if i.dist.pk in signed]
        drift_actions.record(batch, DriftActionKind.SETTLE, signed)
        pending = _send_all(batch, signed, items, refused)
        outcome = gateway.wait_for(pending, timeout=gateway.confirm_timeout) if pending else {}
    except (ChainError, ValueError) as exc:
        for item in items:
            if item.active:
                owe(batch, item, IouReason.RPC_UNAVAILABLE, f"settle: {exc}")
        return
    drift_actions.finish([
        (tx.signature, drift_actions.status_of(outcome.get(tx.signature)) if tx.signature in pending else AttemptStatus.FAILED,
         None, "" if tx.signature in pending else "refused by preflight")
        for tx in signed.values()
    ])
    settled, events = [], []
    for item in items:
        if not item.active:
            continue
        tx = signed[item.dist.pk]
        status = outcome.get(tx.signature, UNSENT)
        error = describe_error(status.err, tx.program_ids) if status.state == "failed" else None
        if item.dist.pk in already or error in NOTHING_TO_SETTLE:
            item.dist.settled = True
            settled.append(item.dist)
            why = already.get(item.dist.pk) or error
            events.append(event("distribution", item.dist.pk, actor=batch.actor, reason=f"PnL already settled (Drift: {why})"))
        elif status.state == "landed":
            item.dist.settled = True
            settled.append(item.dist)
            events.append(event("distribution", item.dist.pk, actor=batch.actor, reason="PnL settled", settle_signature=tx.signature))
        elif status.state == "failed":
            owe(batch, item, IouReason.SETTLE_FAILED, f"SettleFailed: {describe_error(status.err, tx.program_ids)}")
        else:
            owe(batch, item, IouReason.RPC_UNAVAILABLE, f"settle {tx.signature} {status}")
    if settled:
        with transaction.atomic():
            Distribution.objects.filter(pk__in=[d.pk for d in settled]).update(settled=True)
            append_events(events)


def preflight(batch: Batch, items: list[Item] | None = None, *, atomic: bool = False) -> bool:
    """SOL pre-flight before any transaction of a payout is sent (docs/design.md, "SOL
    pre-flight"), for ``items`` (default: the live ones): with ``atomic``, the one-transaction
    payout's fee and priority fee; otherwise the step-by-step path's settle (when not settled),
    withdraw (when funds are missing) and transfer; and the rent of the token accounts it
    creates. Short of lamports owes the share (``insufficient_sol``, with the lamports needed).
    Reads the agents' balances (kept as ``usdc_before``) and whether the creators' and agents'
    token accounts exist. Returns False when the chain could not be read (every item then owes
    ``rpc_unavailable``)."""
    items = batch.live() if items is None else items
    if not items:
        return True
    gateway = batch.gateway
    unknown = [i for i in items if i.creator_ata_exists is None]
    try:
        states = gateway.wallet_states([i.agent for i in items])
        gateway.token_account_rent()  # read (and cached) here, where a failure owes rpc_unavailable
        if unknown:
            atas = gateway.multiple_accounts(
                [usdc_ata(parse_address(i.dist.creator.address), gateway.usdc_mint) for i in unknown]
            )
            for item, ata in zip(unknown, atas, strict=True):
                item.creator_ata_exists = ata is not None
    except ChainError as exc:
        for item in items:
            owe(batch, item, IouReason.RPC_UNAVAILABLE, f"pre-flight: {exc}")
        return False
    for item in items:
        state = states[str(item.agent)]
        item.usdc_before = state.usdc or 0
        item.agent_ata_exists = state.usdc is not None
        need_withdraw = item.dist.withdrawn < item.payable
        missing = int(not item.creator_ata_exists) + int(need_withdraw and not item.agent_ata_exists)
        needed = gateway.payout_lamports_needed(
            atomic=atomic, include_settle=not item.dist.settled, include_withdraw=need_withdraw,
            missing_token_accounts=missing, legs=max(1, len(item.payable_legs())),
        )
        if state.lamports < needed:
            owe(batch, item, IouReason.INSUFFICIENT_SOL, str(InsufficientSol(needed, state.lamports)), sol_needed=needed)
    return True


def withdraw(batch: Batch) -> None:
    """Withdraw what each item still needs from Drift; what arrived is measured on the agent's
    USDC token account (under the wallet lock) and kept as ``withdrawn``; a shortfall is
    remembered as the reason for what stays owed."""
    items = [i for i in batch.live() if i.dist.withdrawn < i.payable]
    if not items:
        return
    gateway = batch.gateway
    blocked, earlier = drift_actions.resolve_withdraws(batch, items)
    items = [i for i in items if i.dist.pk not in blocked and i.dist.withdrawn < i.payable]
    if not items:
        return
    if earlier:  # an earlier withdraw may have landed since pre-flight read the balances
        try:
            states = gateway.wallet_states([i.agent for i in items])
        except ChainError as exc:
            for item in items:
                item.fall_short(IouReason.RPC_UNAVAILABLE, f"withdraw: {exc}")
            return
        for item in items:
            item.usdc_before = states[str(item.agent)].usdc or 0
    asked = {i.dist.pk: i.payable - i.dist.withdrawn for i in items}

    def sign(item: Item, recent):
        return gateway.build_withdraw(
            item.keypair, item.dist.subscription.drift_subaccount_id, asked[item.dist.pk], True, recent,
            check_unique=False,
        )

    def refused(item: Item, error: str) -> None:
        item.fall_short(IouReason.WITHDRAW_FAILED, f"WithdrawFailed: {error}")

    try:
        gateway.prefetch_drift(
            [(i.keypair.pubkey(), i.dist.subscription.drift_subaccount_id) for i in items], with_usdc_accounts=True
        )
        signed = _sign_unique(
            batch, items, sign, lambda item, error: item.fall_short(IouReason.WITHDRAW_FAILED, error)
        )
        items = [i for i in items if i.dist.pk in signed]
        drift_actions.record(batch, DriftActionKind.WITHDRAW, signed, asked)
        pending = _send_all(batch, signed, items, refused)
        outcome = gateway.wait_for(pending, timeout=gateway.confirm_timeout) if pending else {}
        after = gateway.wallet_states([i.agent for i in items])
    except (ChainError, ValueError) as exc:
        for item in items:
            item.fall_short(IouReason.RPC_UNAVAILABLE, f"withdraw: {exc}")
        return  # nothing measured: pay from funds already on record only
    changed, events, finished = [], [], []
    for item in items:
        tx = signed[item.dist.pk]
        status = outcome.get(tx.signature, UNSENT)
        state = status.state
        if state == "failed":
            item.fall_short(IouReason.WITHDRAW_FAILED, f"WithdrawFailed: {describe_error(status.err, tx.program_ids)}")
        elif state != "landed" and tx.signature in pending:
            item.fall_short(IouReason.RPC_UNAVAILABLE, f"withdraw {tx.signature} {status}")
        # what arrived, read on the token account (we hold the wallet's lock)
        delivered = max(0, min(asked[item.dist.pk], (after[str(item.agent)].usdc or 0) - item.usdc_before))
        if delivered:
            changed.append((delivered, item.dist.pk))
            events.append(event(
                "distribution", item.dist.pk, actor=batch.actor, reason="withdrawn from Drift",
                requested=asked[item.dist.pk], delivered=delivered, withdraw_signature=tx.signature,
            ))
        if delivered < asked[item.dist.pk]:
            item.fall_short(IouReason.WITHDRAW_SHORT, f"withdraw delivered {delivered} of {asked[item.dist.pk]} ({tx.signature})")
        finished.append(_withdraw_outcome(tx.signature, tx.signature in pending, status, delivered))
    drift_actions.finish(finished)
    if changed:
        with transaction.atomic():
            for delivered, pks in group(changed).items():  # one UPDATE per amount, not per row
                Distribution.objects.filter(pk__in=pks).update(withdrawn=F("withdrawn") + delivered)
            append_events(events)
        delivered_by_pk = {pk: delivered for delivered, pk in changed}
        for item in items:
            item.dist.withdrawn += delivered_by_pk.get(item.dist.pk, 0)


def _withdraw_outcome(signature: str, sent: bool, status, delivered: int) -> tuple[str, str, int | None, str]:
    """A withdraw's DriftAction outcome: refused by preflight is failed; funds that arrived
    mean it landed (its delivery is counted now); undecided with nothing arrived stays
    uncounted, for a later run to resolve by its signature."""
    if not sent:
        return signature, AttemptStatus.FAILED, None, "refused by preflight"
    decided = drift_actions.status_of(status)
    if decided == AttemptStatus.LANDED or delivered:
        return signature, AttemptStatus.LANDED, delivered, ""
    return signature, decided, None, ""
