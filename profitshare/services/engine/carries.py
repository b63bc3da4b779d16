"""The recipients' side of a payout, before anything is sent (docs/design.md, "Dust is
carried", "Dust is carried per recipient", "A recipient without a token account"): each
recipient's carry folded into its leg, invalid creator addresses refused, legs below the dust
threshold or without a token account carried, legs held out of a retry whose recipient has no
token account, and distributions left owing nothing put to rest. A few RPC calls and database
statements for the whole batch."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from profitshare.chain.addresses import parse_address, usdc_ata
from profitshare.chain.errors import ChainError, InvalidAddress
from profitshare.models import (
    CarryReason,
    Distribution,
    DistributionLeg,
    DistributionStatus,
    IouReason,
    LegCarry,
    LegRole,
    Subscription,
    SubscriptionStatus,
)
from profitshare.services import leg_totals
from profitshare.services.audit import append_events, event
from profitshare.services.engine.batch import Batch, Item, refresh
from profitshare.services.engine.ledger import owe
from profitshare.services.running_totals import add_to_running_totals


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
        subs = {s.pk: s for s in Subscription.objects.select_for_update(no_key=True).filter(pk__in=[i.dist.subscription_id for i in items])}
        dists = {d.pk: d for d in Distribution.objects.select_for_update(no_key=True).filter(pk__in=[i.dist.pk for i in items])}
        legs: dict[int, list[DistributionLeg]] = {}
        for leg in DistributionLeg.objects.select_for_update(no_key=True).filter(distribution__in=list(dists)).order_by("pk"):
            legs.setdefault(leg.distribution_id, []).append(leg)
        carries: dict[int, list[LegCarry]] = {}
        for carry in LegCarry.objects.select_for_update(no_key=True).filter(subscription__in=list(subs), amount__gt=0).order_by("pk"):
            carries.setdefault(carry.subscription_id, []).append(carry)
        events, touched, emptied, changed, totals = [], set(), [], {}, []
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
                    totals.append(leg_totals.delta(dist.creator_id, leg, legs=1))
                totals.append(leg_totals.delta(dist.creator_id, leg, owed=amount))
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
            add_to_running_totals(legs=totals)  # last (docs/design.md, "Running totals are written last")
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
        subs = {s.pk: s for s in Subscription.objects.select_for_update(no_key=True).filter(pk__in=sub_ids)}
        carries = {(c.subscription_id, c.wallet): c for c in LegCarry.objects.select_for_update(no_key=True).filter(subscription__in=sub_ids)}
        events, legs, new_carries, totals = [], [], [], []
        for item, leg, reason, why in carried:
            dist, sub = item.dist, subs[item.dist.subscription_id]
            amount = leg.owed
            leg.carried += amount
            leg.owed = 0
            legs.append(leg)
            totals.append(leg_totals.delta(dist.creator_id, leg, owed=-amount))
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
        add_to_running_totals(legs=totals)  # last (docs/design.md, "Running totals are written last")
