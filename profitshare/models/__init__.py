"""The profit-share domain: wallets, referrals, bots, subscriptions, closes, distributions, payouts, IOUs,
alerts and the append-only audit trail. Money fields are integers in USDC base units (6
decimals); models stay thin (state and constraints), the rules live in ``profitshare.services``."""

from profitshare.models import delinquency, outbox, reconciliation  # noqa: F401  (operations models: registered here)
from profitshare.models.alerts import Alert
from profitshare.models.audit import AuditEvent
from profitshare.models.bots import Policy, PublishedBot
from profitshare.models.closes import (
    CloseKind,
    Distribution,
    DistributionStatus,
    LegRole,
    TradeClose,
)
from profitshare.models.earnings import EarningsDay, LegDay, LegTotals, SubscriptionEarnings
from profitshare.models.ious import IOU, IouReason, IouStatus
from profitshare.models.legs import CarryReason, DistributionLeg, LegCarry
from profitshare.models.notices import CreatorNotices, TelegramLinkCode, TelegramUpdateOffset
from profitshare.models.payouts import (
    AttemptStatus,
    DriftAction,
    DriftActionKind,
    PayoutAttempt,
    PayoutPath,
)
from profitshare.models.referrals import Referral
from profitshare.models.siws import SiwsNonce as SiwsNonce
from profitshare.models.subscriptions import Subscription, SubscriptionStatus
from profitshare.models.wallets import AgentWallet, CreatorWallet
from profitshare.models.webhooks import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEvent,
    WebhookEventType,
)

__all__ = [
    "IOU",
    "AgentWallet",
    "Alert",
    "AttemptStatus",
    "AuditEvent",
    "CarryReason",
    "CloseKind",
    "CreatorNotices",
    "CreatorWallet",
    "Distribution",
    "DriftAction",
    "DriftActionKind",
    "DistributionStatus",
    "DistributionLeg",
    "DeliveryStatus",
    "EarningsDay",
    "IouReason",
    "IouStatus",
    "LegCarry",
    "LegDay",
    "LegTotals",
    "LegRole",
    "PayoutAttempt",
    "PayoutPath",
    "Policy",
    "PublishedBot",
    "Referral",
    "Subscription",
    "SubscriptionEarnings",
    "SubscriptionStatus",
    "TelegramLinkCode",
    "TelegramUpdateOffset",
    "TradeClose",
    "WebhookDelivery",
    "WebhookEvent",
    "WebhookEventType",
]
