"""Recording closes reported by the trading platform, exactly once per close id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction

from profitshare.models import CloseKind, Distribution, Policy, Subscription, TradeClose
from profitshare.services.audit import PLATFORM, append_events, event
from profitshare.services.bots import apply_due_terms
from profitshare.services.errors import Conflict, InvalidInput, NotFound
from profitshare.services.policy import high_water_mark_step, per_trade_share

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
    and peak move. ``on_commit(distribution_id)`` runs after commit (the engine task is
    enqueued there). The same close id with the same body returns the first result
    (``created=False``); with another body raises ``Conflict``. Raises ``InvalidInput``,
    ``NotFound``; nothing is written on error.
    """
    _validate(report)
    digest = report.sha256()
    with transaction.atomic():
        # lock the subscription row only (of=self): a plain FOR UPDATE with the join would also
        # lock the bot row and serialise every subscriber's intake behind it
        sub = Subscription.objects.select_for_update(of=("self",)).select_related("bot").filter(
            subscription_id=report.subscription_id
        ).first()
        if sub is None:
            existing = TradeClose.objects.filter(close_id=report.close_id).first()
            if existing is not None:  # replay of a close whose subscription id was mistyped
                return _replay(existing, digest)
            raise NotFound("subscription", report.subscription_id)
        # under the lock: a replay, or a concurrent intake of the same close that won
        existing = TradeClose.objects.filter(close_id=report.close_id).first()
        if existing is not None:
            return _replay(existing, digest)
        changed = apply_due_terms(sub)
        if sub.policy == Policy.HIGH_WATER_MARK:
            step = high_water_mark_step(sub.cumulative_pnl, sub.high_water_mark, report.realized_pnl, sub.profit_share_bps)
            share, sub.cumulative_pnl, sub.high_water_mark = step.share, step.cumulative_pnl, step.high_water_mark
        else:
            share = per_trade_share(report.realized_pnl, sub.profit_share_bps)
            sub.cumulative_pnl += report.realized_pnl
        fields = ["cumulative_pnl", "high_water_mark"]
        if changed:
            fields += ["profit_share_bps", "policy", "pending_bps", "pending_policy", "pending_effective_at"]
        sub.save(update_fields=fields)
        close = TradeClose.objects.create(
            close_id=report.close_id,
            subscription=sub,
            market_index=report.market_index,
            realized_pnl=report.realized_pnl,
            kind=report.kind,
            closed_at=report.closed_at,
            body_sha256=digest,
        )
        distribution = None
        events = []
        if share > 0:
            distribution = Distribution.objects.create(
                close=close,
                subscription=sub,
                creator_id=sub.bot.creator_id,
                bot=sub.bot,
                realized_pnl=report.realized_pnl,
                profit_share_bps=sub.profit_share_bps,
                policy=sub.policy,
                share=share,
                owed=share,
            )
            events.append(event(
                "distribution", distribution.pk, actor=actor, to_status=distribution.status,
                close_id=close.close_id, realized_pnl=report.realized_pnl, bps=sub.profit_share_bps,
                policy=sub.policy, share=share,
            ))
            if on_commit is not None:
                distribution_id = distribution.pk
                transaction.on_commit(lambda: on_commit(distribution_id))
        events.append(event(
            "close", close.close_id, actor=actor, to_status="recorded", realized_pnl=report.realized_pnl,
            kind=report.kind, share=share,
        ))
        append_events(events)
    return IntakeResult(close, distribution, True)


def _replay(existing: TradeClose, digest: str) -> IntakeResult:
    if existing.body_sha256 != digest:
        raise Conflict(f"close {existing.close_id!r} was already reported with a different body")
    return IntakeResult(existing, Distribution.objects.filter(close=existing).first(), False)
