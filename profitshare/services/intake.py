"""Recording closes reported by the trading platform, exactly once per close id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils import timezone

from profitshare.db.bulk import insert_rows
from profitshare.models import (
    CloseKind,
    CreatorWallet,
    Distribution,
    DistributionLeg,
    Policy,
    PublishedBot,
    Subscription,
    SubscriptionStatus,
    TradeClose,
)
from profitshare.services.audit import PLATFORM, append_events, event
from profitshare.services.bots import apply_due_terms
from profitshare.services.errors import Conflict, InvalidInput, NotFound
from profitshare.services.leg_totals import utc_day
from profitshare.services.policy import high_water_mark_step, per_trade_share
from profitshare.services.running_totals import add_to_running_totals
from profitshare.services.splits import split_share, terms_in_force

I64_MIN, I64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class CloseReport:
    """A close as the platform reports it. ``realized_pnl``: signed USDC base units of this
    close only (a partial close or a flip's closing leg reports its own realized PnL)."""

    close_id: str
    subscription_id: str
    market_index: int
    realized_pnl: int
    kind: str
    closed_at: datetime

    def sha256(self) -> str:
        """Hash of the canonical body (sorted JSON), to tell a replay from a conflict."""
        body = {
            "close_id": self.close_id,
            "subscription_id": self.subscription_id,
            "market_index": self.market_index,
            "realized_pnl": self.realized_pnl,
            "kind": self.kind,
            "closed_at": self.closed_at.astimezone(UTC).isoformat(),  # one instant, one hash
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class IntakeResult:
    close: TradeClose
    distribution: Distribution | None
    created: bool


def _validate(report: CloseReport) -> None:
    if not report.close_id or len(report.close_id) > 64:
        raise InvalidInput("close_id", "must be 1..64 characters")
    if isinstance(report.market_index, bool) or not 0 <= report.market_index <= 65_535:
        raise InvalidInput("market_index", "must be an integer in 0..65535")
    if isinstance(report.realized_pnl, bool) or not I64_MIN <= report.realized_pnl <= I64_MAX:
        raise InvalidInput("realized_pnl", "must be a signed 64-bit integer (USDC base units)")
    if report.kind not in CloseKind.values:
        raise InvalidInput("kind", f"must be one of {CloseKind.values}")
    if report.closed_at.tzinfo is None:
        raise InvalidInput("closed_at", "must carry a timezone")


def record_close(report: CloseReport, *, actor: str = PLATFORM, on_commit=None) -> IntakeResult:
    """Record one close and, if it owes the creator anything, its distribution (fully owed).

    Under the subscription's row lock: pending terms whose timelock passed take effect, the
    policy computes the share (``per_trade`` or ``high_water_mark``) and the cumulative PnL
    and peak move; a distribution records the split terms in force at that moment
    (``services.splits.terms_in_force``: the settings' rates and the creator's referral chain;
    docs/design.md, "Split terms are snapshotted"). ``on_commit(distribution_id)`` runs after
    commit (the engine task is enqueued there). The same close id with the same body returns the
    first result (``created=False``); with another body raises ``Conflict``. A new close of an
    ended subscription raises ``Conflict`` (docs/design.md, "A subscription ends"); a replay of
    one recorded before the end still answers as first. Raises ``InvalidInput``, ``NotFound``;
    nothing is written on error.
    """
    _validate(report)
    digest = report.sha256()
    with transaction.atomic():
        sub = _lock_subscription(report.subscription_id)
        if sub is None:
            existing = TradeClose.objects.filter(close_id=report.close_id).first()
            if existing is not None:  # replay of a close whose subscription id was mistyped
                return _replay(existing, digest)
            raise NotFound("subscription", report.subscription_id)
        # under the lock (a statement of its own: it must see a concurrent intake that won)
        existing = None
        if _close_exists(report.close_id):
            existing = TradeClose.objects.filter(close_id=report.close_id).first()
        if existing is not None:
            return _replay(existing, digest)
        if sub.status == SubscriptionStatus.ENDED:  # docs/design.md, "A subscription ends"
            raise Conflict(f"subscription {report.subscription_id!r} has ended: it takes no new closes")
        changed = apply_due_terms(sub)
        if sub.policy == Policy.HIGH_WATER_MARK:
            step = high_water_mark_step(sub.cumulative_pnl, sub.high_water_mark, report.realized_pnl, sub.profit_share_bps)
            share, sub.cumulative_pnl, sub.high_water_mark = step.share, step.cumulative_pnl, step.high_water_mark
        else:
            share = per_trade_share(report.realized_pnl, sub.profit_share_bps)
            sub.cumulative_pnl += report.realized_pnl
        if changed:  # rare: pending terms took effect
            sub.save(update_fields=["cumulative_pnl", "high_water_mark", "profit_share_bps", "policy", "pending_bps",
                                    "pending_policy", "pending_effective_at"])
        else:
            _update_pnl(sub)
        close = TradeClose(
            close_id=report.close_id, subscription=sub, market_index=report.market_index,
            realized_pnl=report.realized_pnl, kind=report.kind, closed_at=report.closed_at, body_sha256=digest,
        )
        _insert(close, "close_id", ("close_id", "subscription_id", "market_index", "realized_pnl", "kind",
                                    "closed_at", "body_sha256"))
        distribution = None
        events = []
        if share > 0:
            terms = terms_in_force(sub.creator_address)
            split_terms = terms.snapshot()
            distribution = Distribution(
                close=close, subscription=sub, creator_id=sub.bot_creator_id, bot_id=sub.bot_id,
                realized_pnl=report.realized_pnl, profit_share_bps=sub.profit_share_bps, policy=sub.policy,
                share=share, owed=share, split_terms=split_terms,
            )
            _insert(distribution, "close_id", ("close_id", "subscription_id", "creator_id", "bot_id", "realized_pnl",
                                               "profit_share_bps", "policy", "share", "owed", "split_terms"))
            legs = split_share(share, creator=sub.creator_address, terms=terms)
            insert_rows(DistributionLeg, _LEG_COLUMNS, [
                (distribution.pk, leg.role, leg.wallet, leg.bps, leg.amount, leg.amount, distribution.created_at)
                for leg in legs
            ])
            day = utc_day(distribution.created_at)
            totals = [(distribution.creator_id, leg.wallet, leg.role, 1, leg.amount, 0, leg.amount, 0, day) for leg in legs]
            events.append(event(
                "distribution", distribution.pk, actor=actor, to_status=distribution.status,
                close_id=close.close_id, realized_pnl=report.realized_pnl, bps=sub.profit_share_bps,
                policy=sub.policy, share=share, split_terms=split_terms,
                legs=[[leg.role, leg.wallet, leg.amount] for leg in legs],
            ))
            if on_commit is not None:
                distribution_id = distribution.pk
                transaction.on_commit(lambda: on_commit(distribution_id))
        events.append(event(
            "close", close.close_id, actor=actor, to_status="recorded", realized_pnl=report.realized_pnl,
            kind=report.kind, share=share,
        ))
        append_events(events)
        if distribution is not None:  # last (docs/design.md, "Running totals are written last")
            add_to_running_totals(legs=totals)
    return IntakeResult(close, distribution, True)


_LEG_COLUMNS = ("distribution_id", "role", "wallet", "bps", "amount", "owed", "created_at")


def _replay(existing: TradeClose, digest: str) -> IntakeResult:
    if existing.body_sha256 != digest:
        raise Conflict(f"close {existing.close_id!r} was already reported with a different body")
    return IntakeResult(existing, Distribution.objects.filter(close=existing).first(), False)


# --- the hot path's statements, in plain SQL (each ORM statement cost ~1 ms of CPU to compile,
# several times the database's own work; benchmarks/engine.py measures intake CPU per close)
def _lock_subscription(subscription_id: str) -> Subscription | None:
    """The subscription with its bot's creator (``bot_creator_id``, and its wallet address
    ``creator_address``), its row locked (FOR NO KEY UPDATE OF the subscription only: locking
    the bot row too would serialise every subscriber's intake behind it, and a key-changing lock
    would block the foreign-key checks of rows that merely refer to the subscription;
    docs/design.md, "Running totals are written last"). Only the fields intake reads are
    loaded."""
    sub_table = connection.ops.quote_name(Subscription._meta.db_table)
    bot_table = connection.ops.quote_name(PublishedBot._meta.db_table)
    creator_table = connection.ops.quote_name(CreatorWallet._meta.db_table)
    features = connection.features
    lock = " FOR NO KEY UPDATE OF s" if features.has_select_for_update_of and features.has_select_for_no_key_update else ""
    rows = list(Subscription.objects.raw(
        "SELECT s.id, s.subscription_id, s.status, s.bot_id, s.profit_share_bps, s.policy, s.pending_bps, s.pending_policy, "
        "s.pending_effective_at, s.cumulative_pnl, s.high_water_mark, b.creator_id AS bot_creator_id, "
        "c.address AS creator_address "
        f"FROM {sub_table} s JOIN {bot_table} b ON b.id = s.bot_id JOIN {creator_table} c ON c.id = b.creator_id "
        f"WHERE s.subscription_id = %s{lock}",
        [subscription_id],
    ))
    return rows[0] if rows else None


def _close_exists(close_id: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {connection.ops.quote_name(TradeClose._meta.db_table)} WHERE close_id = %s", [close_id]
        )
        return cursor.fetchone() is not None


def _update_pnl(sub: Subscription) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(Subscription._meta.db_table)} "
            "SET cumulative_pnl = %s, high_water_mark = %s WHERE id = %s",
            [sub.cumulative_pnl, sub.high_water_mark, sub.pk],
        )


def _insert(obj, key: str, columns: tuple[str, ...]) -> None:
    """Insert one new model instance by ``db.bulk.insert_rows`` (its ``auto_now`` and
    ``auto_now_add`` fields stamped here, so the instance matches its row) and mark it saved."""
    now = timezone.now()
    stamped = tuple(
        f.attname for f in type(obj)._meta.concrete_fields
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
    )
    for name in stamped:
        setattr(obj, name, now)
    names = (*columns, *stamped)
    ((_, pk),) = insert_rows(type(obj), names, [tuple(getattr(obj, c) for c in names)], returning=key)
    obj.pk = pk
    obj._state.adding, obj._state.db = False, connection.alias
