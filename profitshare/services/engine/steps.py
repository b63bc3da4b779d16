"""The steps before the transfer: start, dust carry and creator-address checks, settle PnL,
SOL pre-flight, withdraw from Drift (measured on the agent's token account). Each step costs a
few RPC calls and database statements for the whole batch."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from profitshare.chain.addresses import parse_address, usdc_ata
from profitshare.chain.errors import (
    BlockhashExpired,
    ChainError,
    InsufficientSol,
    InvalidAddress,
    SettleFailed,
    TransactionFailed,
    WithdrawFailed,
)
from profitshare.chain.transactions import SignatureStatus, SignedTransaction, describe_error
from profitshare.models import (
    AttemptStatus,
    CarryReason,
    Distribution,
    DistributionLeg,
    DistributionStatus,
    DriftAction,
    DriftActionKind,
    IouReason,
    LegCarry,
    LegRole,
    Subscription,
    SubscriptionStatus,
)
from profitshare.services.audit import append_events, event
from profitshare.services.engine import drift_actions
from profitshare.services.engine.batch import Batch, Item, group, refresh
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


def fold_dust_and_check(batch: Batch) -> None:
    """Fold each recipient's dust carry into its leg, refuse invalid creator addresses, and carry
    legs that are not paid now (docs/design.md, "Dust is carried", "Dust is carried per
    recipient"): a leg below the dust threshold (the creator's: the higher one when its ATA
    does not exist yet), and a platform or referral leg whose wallet has no USDC token account
    (whatever its amount: the subscriber pays the rent of the creator's account only). Such a
    leg of a distribution that already holds withdrawn USDC is held instead: it stays owed
    (docs/design.md, "A recipient without a token account")."""
    items = [i for i in batch.live() if i.iou is None]
    if not items:
        return
    _fold_carries(batch, items)
    creators = {}
    for item in items:
        try:
            creators[item.dist.pk] = parse_address(item.dist.creator.address)
        except InvalidAddress as exc:
            owe(batch, item, IouReason.INVALID_CREATOR_WALLET, str(exc))
    items = [i for i in items if i.active]
    mint = batch.gateway.usdc_mint
    others = sorted({leg.wallet for i in items for leg in i.owed_legs() if leg.role != LegRole.CREATOR})
    try:
        accounts = batch.gateway.multiple_accounts(
            [usdc_ata(creators[i.dist.pk], mint) for i in items] + [usdc_ata(parse_address(w), mint) for w in others]
        )
    except ChainError as exc:
        for item in items:
            owe(batch, item, IouReason.RPC_UNAVAILABLE, f"token accounts: {exc}")
        return
    has_account = {w: a is not None for w, a in zip(others, accounts[len(items):], strict=True)}
    carried = []
    for item, ata in zip(items, accounts[:len(items)], strict=True):
        item.creator_ata_exists = ata is not None
        dist = item.dist
        fresh = not (dist.paid or dist.withdrawn or dist.subscription.status == SubscriptionStatus.ENDED)
        for leg in item.owed_legs():
            if leg.role != LegRole.CREATOR and not has_account[leg.wallet]:
                if dist.withdrawn:  # its USDC may sit in the agent's account already: it stays owed
                    item.held[leg.pk] = NO_ACCOUNT
                else:
                    carried.append((item, leg, CarryReason.NO_TOKEN_ACCOUNT, NO_ACCOUNT))
                continue
            if not fresh:
                continue  # a resumed run, or the final flush of an ended subscription: pay it
            threshold = settings.QV_DUST_THRESHOLD
            if leg.role == LegRole.CREATOR and ata is None:
                threshold = settings.QV_DUST_THRESHOLD_NEW_ATA
            if leg.owed < threshold:
                carried.append((item, leg, CarryReason.DUST, f"below dust threshold {threshold}"))
    if carried:
        _carry(batch, carried)
    _note_held(batch, items)


def finish_owing_nothing(batch: Batch) -> None:
    """Items that owe nothing once their carries are folded (a flush distribution whose carries
    another payout took) rest in their status now (``Distribution.resting_status``) and leave
    the batch: nothing is settled, withdrawn or sent for them."""
    items = [i for i in batch.live() if i.iou is None and i.dist.owed == 0]
    if not items:
        return
    with transaction.atomic():
        events = []
        for item in items:
            before, item.dist.status = item.dist.status, item.dist.resting_status()
            events.append(event("distribution", item.dist.pk, actor=batch.actor, from_status=before,
                                to_status=item.dist.status, reason="nothing owed"))
            item.stop()
        Distribution.objects.bulk_update([i.dist for i in items], ["status"])
        append_events(events)


#: Why a leg is carried or held when its recipient has no USDC token account.
NO_ACCOUNT = "no USDC token account"


def hold_legs_without_accounts(batch: Batch) -> None:
    """Before an IOU retry pays: hold each platform or referral leg whose wallet has no USDC
    token account now (its recipient may have closed it since the IOU was opened): the
    payout pays the other legs without it, and it stays owed on its IOU, reason
    ``no_token_account``, until the account exists (docs/design.md, "A recipient without a
    token account"). A distribution left with nothing payable is owed at once, with nothing
    sent. One ``getMultipleAccounts`` for the batch; unread, the batch owes ``rpc_unavailable``."""
    items = [i for i in batch.live() if i.iou is not None]
    others = sorted({leg.wallet for i in items for leg in i.owed_legs() if leg.role != LegRole.CREATOR})
    if not others:
        return
    mint = batch.gateway.usdc_mint
    try:
        accounts = batch.gateway.multiple_accounts([usdc_ata(parse_address(w), mint) for w in others])
    except ChainError as exc:
        for item in items:
            owe(batch, item, IouReason.RPC_UNAVAILABLE, f"token accounts: {exc}")
        return
    missing = {w for w, account in zip(others, accounts, strict=True) if account is None}
    for item in items:
        for leg in item.owed_legs():
            if leg.role != LegRole.CREATOR and leg.wallet in missing:
                item.held[leg.pk] = NO_ACCOUNT
    _note_held(batch, items)


def _note_held(batch: Batch, items: list[Item]) -> None:
    """The audit trail of the items' held legs; an item with nothing left to pay is owed now."""
    held = [(item, leg) for item in items if item.active for leg in item.owed_legs() if leg.pk in item.held]
    if not held:
        return
    append_events([
        event("distribution", item.dist.pk, actor=batch.actor, reason=f"{leg.role} leg held: {item.held[leg.pk]}",
              owed=leg.owed, **_whose(leg))
        for item, leg in held
    ])
    for item in {id(i): i for i, _ in held}.values():
        if item.payable == 0:
            owe(batch, item, IouReason.NO_TOKEN_ACCOUNT, NO_ACCOUNT)


def _fold_carries(batch: Batch, items: list[Item]) -> None:
    """Move each recipient's carry on the items' subscriptions into its leg of the item's
    distribution (a new leg when the distribution has none for that wallet): one transaction,
    rows locked subscription, distribution, legs, carries."""
    with transaction.atomic():
        subs = {s.pk: s for s in Subscription.objects.select_for_update().filter(pk__in=[i.dist.subscription_id for i in items])}
        dists = {d.pk: d for d in Distribution.objects.select_for_update().filter(pk__in=[i.dist.pk for i in items])}
        legs: dict[int, list[DistributionLeg]] = {}
        for leg in DistributionLeg.objects.select_for_update().filter(distribution__in=list(dists)).order_by("pk"):
            legs.setdefault(leg.distribution_id, []).append(leg)
        carries: dict[int, list[LegCarry]] = {}
        for carry in LegCarry.objects.select_for_update().filter(subscription__in=list(subs), amount__gt=0).order_by("pk"):
            carries.setdefault(carry.subscription_id, []).append(carry)
        events, touched, emptied, changed = [], set(), [], {}
        for item in items:
            sub, dist = subs[item.dist.subscription_id], dists[item.dist.pk]
            item.dist.subscription.status = sub.status
            by_wallet = {leg.wallet: leg for leg in legs.get(dist.pk, [])}
            folds = [(item.dist.creator.address, LegRole.CREATOR, sub.dust_carry)] if sub.dust_carry else []
            sub.dust_carry = 0 if folds else sub.dust_carry
            for carry in carries.pop(sub.pk, []):
                folds.append((carry.wallet, carry.role, carry.amount))
                carry.amount = 0
                emptied.append(carry)
            for wallet, role, amount in folds:
                leg = by_wallet.get(wallet)
                if leg is None:  # the recipient has no part of this share: its carry makes one
                    leg = by_wallet[wallet] = DistributionLeg.objects.create(
                        distribution=dist, role=role, wallet=wallet, bps=None, amount=0, owed=0,
                        created_at=dist.created_at,
                    )
                leg.carry_in += amount
                leg.owed += amount
                changed[leg.pk] = leg
                dist.carry_in += amount
                dist.owed += amount
                touched.add(dist.pk)
                events.append(event("distribution", dist.pk, actor=batch.actor, reason="dust carry folded in",
                                    carry_in=amount, **_whose(leg)))
            item.dist.carry_in, item.dist.owed = dist.carry_in, dist.owed
        if touched:
            Subscription.objects.bulk_update(list(subs.values()), ["dust_carry"])
            Distribution.objects.bulk_update([dists[pk] for pk in sorted(touched)], ["carry_in", "owed"])
            DistributionLeg.objects.bulk_update([changed[pk] for pk in sorted(changed)], ["carry_in", "owed"])
            LegCarry.objects.bulk_update(emptied, ["amount"])
            append_events(events)
    if touched:
        refresh(items)


def _whose(leg: DistributionLeg) -> dict[str, str]:
    """Audit facts naming a leg's recipient (none for the creator's, as before splits)."""
    return {} if leg.role == LegRole.CREATOR else {"role": leg.role, "wallet": leg.wallet}


def _carry(batch: Batch, carried: list[tuple[Item, DistributionLeg, str, str]]) -> None:
    """Carry these legs (``[(item, leg, CarryReason, why)]``): each leg's ``owed`` moves to its
    ``carried`` and onto its recipient's carry on the subscription (the creator's:
    ``Subscription.dust_carry``; another's: its ``LegCarry``); a distribution left owing
    nothing is ``carried`` and leaves the batch."""
    with transaction.atomic():
        sub_ids = sorted({i.dist.subscription_id for i, _, _, _ in carried})
        subs = {s.pk: s for s in Subscription.objects.select_for_update().filter(pk__in=sub_ids)}
        carries = {(c.subscription_id, c.wallet): c for c in LegCarry.objects.select_for_update().filter(subscription__in=sub_ids)}
        events, legs, new_carries = [], [], []
        for item, leg, reason, why in carried:
            dist, sub = item.dist, subs[item.dist.subscription_id]
            amount = leg.owed
            leg.carried += amount
            leg.owed = 0
            legs.append(leg)
            dist.carried += amount
            dist.owed -= amount
            if leg.role == LegRole.CREATOR:
                sub.dust_carry += amount
                total = sub.dust_carry
            else:
                carry = carries.get((sub.pk, leg.wallet))
                if carry is None:
                    carry = carries[(sub.pk, leg.wallet)] = LegCarry(subscription=sub, wallet=leg.wallet, role=leg.role)
                    new_carries.append(carry)
                carry.amount += amount
                carry.reason = reason
                total = carry.amount
            before = dist.status
            if dist.owed == 0:
                dist.status = DistributionStatus.CARRIED
                item.stop()
            events.append(event(
                "distribution", dist.pk, actor=batch.actor, from_status=before, to_status=dist.status,
                reason=f"{why}" if leg.role == LegRole.CREATOR else f"{leg.role} leg carried: {why}",
                carried=amount, dust_carry=total, **_whose(leg),
            ))
        Distribution.objects.bulk_update(list({i.dist.pk: i.dist for i, _, _, _ in carried}.values()),
                                         ["carried", "owed", "status"])
        DistributionLeg.objects.bulk_update(legs, ["carried", "owed"])
        Subscription.objects.bulk_update(list(subs.values()), ["dust_carry"])
        LegCarry.objects.bulk_create(new_carries)
        LegCarry.objects.bulk_update([c for c in carries.values() if c.pk and c not in new_carries], ["amount", "reason"])
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
