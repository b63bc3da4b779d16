"""django-tables2 tables of the pages. Cells are formatted here (money through
``format_usdc``: Decimal, 6 decimals); the templates only lay the cells out, so they hold no
logic. The tables render through ``templates/profitshare/_table.html``."""

from __future__ import annotations

from datetime import UTC

import django_tables2 as tables
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from profitshare.templatetags.money import explorer_url, format_bps, format_usdc

TEMPLATE = "profitshare/_table.html"


def signature_links(signatures) -> str:
    """Explorer links for a list of signatures (shortened), or an em dash."""
    if not signatures:
        return "—"
    return format_html_join(
        " ", '<a class="sig" href="{}" title="{}" rel="noopener">{}</a>',
        ((explorer_url(s), s, f"{s[:6]}…{s[-4:]}") for s in signatures),
    )


def usdc_cell(value) -> str:
    """A right-aligned money cell (negative PnL gets the ``neg`` class)."""
    if value is None:
        return "—"
    css = "num neg" if int(value) < 0 else "num"
    return format_html('<span class="{}">{}</span>', css, format_usdc(value))


def status_cell(status: str | None, label: str | None = None) -> str:
    """A status badge."""
    if not status:
        return "—"
    return format_html('<span class="badge badge-{}">{}</span>', status, label or status.replace("_", " "))


def when(value) -> str:
    """A timestamp in UTC, ISO-like, to the second."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


class MoneyColumn(tables.Column):
    """A USDC column (base units in, ``1,234.567890`` out)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("attrs", {"td": {"class": "num"}, "th": {"class": "num"}})
        super().__init__(*args, **kwargs)

    def render(self, value):
        return usdc_cell(value)


class DistributionHistoryTable(tables.Table):
    """A creator's distribution history (rows from ``selectors.dashboard.distribution_history``)."""

    created_at = tables.Column("Time (UTC)", orderable=False)
    bot_name = tables.Column("Bot", orderable=False)
    subscriber_wallet = tables.Column("Subscriber", orderable=False)
    realized_pnl = MoneyColumn("PnL (USDC)", orderable=False)
    profit_share_bps = tables.Column("Percent", orderable=False)
    share = MoneyColumn("Share (USDC)", orderable=False)
    paid = MoneyColumn("Paid (USDC)", orderable=False)
    owed = MoneyColumn("Owed (USDC)", orderable=False)
    status = tables.Column("Status", orderable=False)
    signatures = tables.Column("Signature", orderable=False, empty_values=())

    class Meta:
        template_name = TEMPLATE
        attrs = {"class": "data", "id": "history-table"}
        orderable = False

    def render_created_at(self, value):
        return when(value)

    def render_subscriber_wallet(self, value):
        return format_html('<span class="addr" title="{}">{}…{}</span>', value, value[:4], value[-4:])

    def render_profit_share_bps(self, value):
        return format_bps(value)

    def render_status(self, value):
        return status_cell(value)

    def render_signatures(self, value):
        return signature_links(value)


class TradeTable(tables.Table):
    """A subscriber's closes (rows from ``selectors.history.trade_history``)."""

    closed_at = tables.Column("Closed (UTC)")
    close_id = tables.Column("Close")
    kind = tables.Column("Kind")
    realized_pnl = MoneyColumn("Realized PnL")
    profit_share_bps = tables.Column("Rate")
    share = MoneyColumn("Creator share")
    paid = MoneyColumn("Paid")
    paid_at = tables.Column("Paid at (UTC)")
    signatures = tables.Column("Signature", empty_values=())
    owed = MoneyColumn("Still owed")
    owed_reason_label = tables.Column("Why owed")
    net_pnl = MoneyColumn("Net PnL")

    class Meta:
        template_name = TEMPLATE
        attrs = {"class": "data", "id": "trades-table"}
        orderable = False

    def render_closed_at(self, value):
        return when(value)

    def render_paid_at(self, value):
        return when(value)

    def render_profit_share_bps(self, value):
        return format_bps(value)

    def render_signatures(self, value):
        return signature_links(value)


class OpenIouTable(tables.Table):
    """The admin console's pending debts (an annotated IOU queryset from
    ``selectors.admin_console.open_ious``); sortable in SQL, paginated by django-tables2."""

    id = tables.Column("IOU", accessor="pk")
    subscriber = tables.Column("Subscriber", accessor="subscriber_wallet")
    creator_address = tables.Column("Creator")
    remaining_owed = MoneyColumn("Amount (USDC)")
    reason = tables.Column("Reason")
    status = tables.Column("Status")
    created_at = tables.Column("Age")
    attempts = tables.Column("Attempts")
    next_retry_at = tables.Column("Next retry (UTC)")
    actions = tables.TemplateColumn(
        template_name="profitshare/console/_iou_actions.html", verbose_name="Actions", orderable=False,
        empty_values=(),
    )

    class Meta:
        template_name = TEMPLATE
        attrs = {"class": "data", "id": "debts-table"}
        row_attrs = {
            "id": lambda record: f"iou-{record.pk}",
            "data-status": lambda record: record.status,
            # while a retry runs, htmx polls the row until it settles
            "hx-get": lambda record: _row_url(record) if record.status == "processing" else None,
            "hx-trigger": lambda record: "every 1s" if record.status == "processing" else None,
            "hx-swap": lambda record: "outerHTML" if record.status == "processing" else None,
        }
        order_by = "created_at"

    def render_id(self, value):
        return format_html('<a href="{}">#{}</a>', reverse("pages:console-iou", args=[value]), value)

    def render_subscriber(self, value):
        return format_html('<span class="addr" title="{}">{}…{}</span>', value, value[:4], value[-4:])

    def render_creator_address(self, value):
        return format_html('<span class="addr" title="{}">{}…{}</span>', value, value[:4], value[-4:])

    def render_reason(self, value, record):
        return format_html('<span title="{}">{}</span>', record.get_reason_display(), value)

    def render_status(self, value, record):
        return status_cell(value, record.get_status_display().split(" (")[0])

    def render_created_at(self, value):
        return format_html('<span title="{}">{}</span>', when(value), _age(value))

    def render_next_retry_at(self, value):
        return when(value)


def _row_url(record) -> str:
    return reverse("pages:console-iou-row", args=[record.pk])


def _age(value) -> str:
    seconds = int((timezone.now() - value).total_seconds())
    if seconds < 3600:
        return f"{max(seconds, 0) // 60} min"
    if seconds < 86_400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} d"
