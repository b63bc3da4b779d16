"""Django admin for the profit-share domain: read-only views for support and audit.

Every model can be listed, filtered, searched and viewed; nothing can be added, changed or
deleted here, because every write goes through ``profitshare.services`` (audit trail, locks,
invariants). Money columns are integers in USDC base units. Key material and signed
transaction bytes (``AgentWallet.encrypted_secret``, ``PayoutAttempt.raw_transaction``) are
never shown.
"""

from __future__ import annotations

from django.contrib import admin

from profitshare.models import (
    IOU,
    AgentWallet,
    Alert,
    AuditEvent,
    CreatorWallet,
    Distribution,
    DistributionLeg,
    DriftAction,
    LegCarry,
    PayoutAttempt,
    PublishedBot,
    Referral,
    Subscription,
    TradeClose,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """View-only admin: every field read-only, no add, change or delete (and so no bulk delete
    action). ``hidden_fields``: fields never displayed (secrets, raw bytes)."""

    hidden_fields: tuple[str, ...] = ()
    list_per_page = 50
    show_full_result_count = False

    def get_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.concrete_fields if f.name not in self.hidden_fields]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CreatorWallet)
class CreatorWalletAdmin(ReadOnlyAdmin):
    """Creators' own wallets (receive USDC)."""

    list_display = ("address", "telegram_chat_id", "created_at")
    search_fields = ("address", "telegram_chat_id")
    date_hierarchy = "created_at"


@admin.register(Referral)
class ReferralAdmin(ReadOnlyAdmin):
    """Who referred whom (a referrer once set never changes)."""

    list_display = ("wallet", "referrer_wallet", "created_at")
    search_fields = ("wallet", "referrer_wallet")
    date_hierarchy = "created_at"


@admin.register(AgentWallet)
class AgentWalletAdmin(ReadOnlyAdmin):
    """Server-managed agent wallets; the encrypted key is never displayed."""

    hidden_fields = ("encrypted_secret",)
    list_display = ("pubkey", "created_at")
    search_fields = ("pubkey",)
    date_hierarchy = "created_at"


@admin.register(PublishedBot)
class PublishedBotAdmin(ReadOnlyAdmin):
    """Published bots and their current terms (bps = basis points, 1000 = 10 %)."""

    list_display = ("bot_id", "name", "creator", "profit_share_bps", "policy", "deleted_at", "created_at")
    list_filter = ("policy", ("deleted_at", admin.EmptyFieldListFilter))
    search_fields = ("bot_id", "name", "creator__address")
    list_select_related = ("creator",)
    date_hierarchy = "created_at"


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    """Subscriptions with their snapshotted terms, pending changes and dust carry."""

    list_display = (
        "subscription_id", "bot", "subscriber_wallet", "agent_wallet", "drift_subaccount_id", "status",
        "profit_share_bps", "policy", "dust_carry", "created_at",
    )
    list_filter = ("status", "policy")
    search_fields = ("subscription_id", "subscriber_wallet", "agent_wallet__pubkey", "bot__bot_id")
    list_select_related = ("bot", "agent_wallet")
    date_hierarchy = "created_at"


@admin.register(TradeClose)
class TradeCloseAdmin(ReadOnlyAdmin):
    """Closes reported by the platform (``realized_pnl`` signed, base units)."""

    list_display = ("close_id", "subscription", "market_index", "kind", "realized_pnl", "closed_at", "received_at")
    list_filter = ("kind",)
    search_fields = ("close_id", "subscription__subscription_id")
    list_select_related = ("subscription",)
    date_hierarchy = "closed_at"


@admin.register(Distribution)
class DistributionAdmin(ReadOnlyAdmin):
    """What each close owes: share + carry_in = paid + owed + carried + voided (base units)."""

    list_display = (
        "id", "close", "subscription", "creator", "status", "share", "carry_in", "paid", "owed", "carried",
        "voided", "attempts", "created_at",
    )
    list_filter = ("status", "policy", "settled")
    search_fields = ("close__close_id", "subscription__subscription_id", "creator__address", "bot__bot_id")
    list_select_related = ("close", "subscription", "creator")
    date_hierarchy = "created_at"


@admin.register(DistributionLeg)
class DistributionLegAdmin(ReadOnlyAdmin):
    """Who is paid what of each distribution: amount + carry_in = paid + owed + carried + voided
    (base units); ``bps`` is the rate (empty for the creator's remainder)."""

    list_display = ("id", "distribution", "role", "wallet", "bps", "amount", "carry_in", "paid", "owed", "carried",
                    "voided", "created_at")
    list_filter = ("role",)
    search_fields = ("wallet", "distribution__close__close_id")
    date_hierarchy = "created_at"


@admin.register(LegCarry)
class LegCarryAdmin(ReadOnlyAdmin):
    """What a subscription carries for a platform or referral recipient (base units), and why."""

    list_display = ("id", "subscription", "role", "wallet", "amount", "reason", "updated_at")
    list_filter = ("role", "reason")
    search_fields = ("wallet", "subscription__subscription_id")
    list_select_related = ("subscription",)


@admin.register(IOU)
class IOUAdmin(ReadOnlyAdmin):
    """Debts: ``amount`` and ``paid_amount`` in base units; void and retry go through the API
    (``/api/v1/ious/{id}/void`` and ``/retry``) so the audit trail records them."""

    list_display = (
        "id", "subscription", "creator", "status", "reason", "amount", "paid_amount", "attempts",
        "next_retry_at", "expires_at", "created_at",
    )
    list_filter = ("status", "reason")
    search_fields = ("=id", "subscription__subscription_id", "creator__address", "distribution__close__close_id")
    list_select_related = ("subscription", "creator")
    date_hierarchy = "created_at"


@admin.register(DriftAction)
class DriftActionAdmin(ReadOnlyAdmin):
    """Settle and withdraw transactions of the engine, recorded before sending."""

    list_display = ("signature", "kind", "distribution", "iou", "agent_wallet", "amount", "delivered", "status", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("signature", "agent_wallet__pubkey")
    list_select_related = ("distribution", "iou", "agent_wallet")
    date_hierarchy = "created_at"


@admin.register(PayoutAttempt)
class PayoutAttemptAdmin(ReadOnlyAdmin):
    """Signed payouts, recorded before sending; the raw transaction bytes are not shown."""

    hidden_fields = ("raw_transaction",)
    list_display = (
        "signature", "distribution", "iou", "agent_wallet", "amount", "status", "destination_owner", "slot",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("signature", "destination_owner", "destination_ata", "agent_wallet__pubkey")
    list_select_related = ("distribution", "iou", "agent_wallet")
    date_hierarchy = "created_at"


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    """Admin alerts (IOU created / expired / voided, delinquency, reconciliation)."""

    list_display = ("created_at", "kind", "severity", "subject", "amount", "acknowledged_by", "acknowledged_at")
    list_filter = ("severity", "kind", ("acknowledged_at", admin.EmptyFieldListFilter))
    search_fields = ("kind", "subject")
    date_hierarchy = "created_at"


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The append-only audit trail: fully read-only (the database refuses changes too)."""

    list_display = ("created_at", "entity", "entity_id", "actor", "from_status", "to_status", "reason")
    list_filter = ("entity", "actor")
    search_fields = ("entity_id", "actor", "reason")
    date_hierarchy = "created_at"
    actions = None
