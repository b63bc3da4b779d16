"""django-tables2 tables of the pages. Cells are formatted here (money through
``format_usdc``: Decimal, 6 decimals); the templates only lay the cells out, so they hold no
logic. The tables render through ``templates/profitshare/_table.html``."""

from __future__ import annotations

import inspect
from datetime import UTC
from html import escape as _html_escape

import django_tables2 as tables
from django.urls import reverse
from django.utils import timezone
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django_tables2 import utils as _t2utils

from profitshare.models import LegRole
from profitshare.money import explorer_url, format_bps, format_usdc

TEMPLATE = "profitshare/_table.html"


def _cached_signature(fn, _inspect=_t2utils.signature, _cache={}):  # noqa: B006 - the cache
    """django-tables2 inspects the signature of every ``render_*`` method for every cell
    (``inspect.signature`` each time), a large share of a table's rendering time. The answer
    depends only on the function, so it is computed once per function (bound methods share
    their underlying function's entry; their ``self`` is not part of the answer)."""
    key = getattr(fn, "__func__", fn)
    try:
        return _cache[key]
    except (KeyError, TypeError):
        answer = _inspect(fn)
        try:
            if len(_cache) < 10_000:
                _cache[key] = answer
        except TypeError:  # an unhashable callable: not cached
            pass
        return answer


_t2utils.signature = _cached_signature


_URL_PLACEHOLDER = 987654321987
_url_templates: dict[str, str] = {}


def pk_url(name: str, pk: int) -> str:
    """``reverse(name, args=[pk])`` for the pages' ``<int:…>`` URLs, resolving each name once
    (a table row needs several links; ``reverse`` per cell is a visible share of its time)."""
    template = _url_templates.get(name)
    if template is None:
        template = _url_templates[name] = reverse(name, args=[_URL_PLACEHOLDER])
    return template.replace(str(_URL_PLACEHOLDER), str(int(pk)))


def _esc(text) -> str:
    # django.utils.html.escape without its lazy-string wrapper (a visible share of a table's
    # time at hundreds of cells per page); the same five characters are replaced
    return _html_escape(str(text), quote=True)


def signature_links(signatures) -> str:
    """Explorer links for a list of signatures (shortened), or an em dash."""
    if not signatures:
        return "—"
    return mark_safe(" ".join(  # noqa: S308 - every value is escaped
        f'<a class="sig" href="{_esc(explorer_url(s))}" title="{_esc(s)}" rel="noopener">{_esc(s[:6])}…{_esc(s[-4:])}</a>'
        for s in signatures
    ))


def usdc_cell(value) -> str:
    """A right-aligned money cell (negative PnL gets the ``neg`` class)."""
    if value is None:
        return "—"
    css = "num neg" if int(value) < 0 else "num"
    return mark_safe(f'<span class="{css}">{format_usdc(value)}</span>')  # noqa: S308 - digits, commas and a dot


def status_cell(status: str | None, label: str | None = None) -> str:
    """A status badge."""
    if not status:
        return "—"
    return mark_safe(  # noqa: S308 - escaped
        f'<span class="badge badge-{_esc(status)}">{_esc(label or status.replace("_", " "))}</span>'
    )


def address_cell(value: str) -> str:
    """A wallet address, shortened (the full address on hover)."""
    return mark_safe(f'<span class="addr" title="{_esc(value)}">{_esc(value[:4])}…{_esc(value[-4:])}</span>')  # noqa: S308


def when(value) -> str:
    """A timestamp in UTC, ISO-like, to the second."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


class MoneyColumn(tables.Column):
    """A USDC column (base units in, ``1,234.567890`` out)."""

    def __init__(self, *args, **kwargs):
        """Right-align the column's header and cells."""
        kwargs.setdefault("attrs", {"td": {"class": "num"}, "th": {"class": "num"}})
        kwargs.setdefault("default", mark_safe('<span class="num">—</span>'))  # noqa: S308 - a constant
        super().__init__(*args, **kwargs)

    def render(self, value):
        """A USDC cell."""
        return usdc_cell(value)


_wants_record: dict = {}


def _arguments(fn) -> tuple[bool, bool]:
    """Whether a cell renderer takes ``value`` and whether it takes ``record`` (once per
    function)."""
    key = getattr(fn, "__func__", fn)
    answer = _wants_record.get(key)
    if answer is None:
        params = inspect.signature(fn).parameters
        answer = _wants_record[key] = ("value" in params, "record" in params)
    return answer


class LightTable(tables.Table):
    """A django-tables2 table (columns, headers, sorting and pagination stay django-tables2's)
    whose body rows are rendered in one pass per row: each visible column's ``render_<name>``
    (or the column's ``render``) is called with the cell's ``value`` and/or ``record``, as it
    asks, empty values get the column's default, and the row is joined into one safe
    ``<tr>`` string. django-tables2's own per-cell machinery (a bound row and cell objects,
    signature inspection and a template variable per cell) was most of a page's rendering
    time; the output is the same markup without the even/odd classes, which no style uses."""

    def _plan(self) -> list[tuple]:
        plan = getattr(self, "_light_plan", None)
        if plan is None:
            plan = []
            for bound in self.columns:
                render = getattr(self, f"render_{bound.name}", None) or bound.column.render
                accessor = bound.accessor
                plain = "__" not in accessor and "." not in accessor
                plan.append((accessor, plain, render, _arguments(render), bound.column.empty_values,
                             conditional_escape(bound.default)))
            self._light_plan = plan
        return plan

    def render_row(self, record) -> SafeString:
        """One body row (``<tr …>`` with the ``row_attrs`` of ``Meta``) for ``record`` (a dict
        or a model instance)."""
        cells = []
        is_dict = isinstance(record, dict)
        for accessor, plain, render, (with_value, with_record), empty, default in self._plan():
            if plain and is_dict:
                value = record.get(accessor)
            elif plain:
                value = getattr(record, accessor, None)
            else:
                value = accessor.resolve(record, quiet=True)
            if value in empty:
                cells.append(default)
                continue
            if with_value and with_record:
                out = render(value=value, record=record)
            elif with_record:
                out = render(record=record)
            else:
                out = render(value)
            cells.append(out if isinstance(out, SafeString) else _esc(out))
        attrs = ""
        for name, value in (self.row_attrs or {}).items():
            if callable(value):
                value = value(record)
            if value is not None:
                attrs += f' {name}="{_esc(value)}"'
        return mark_safe(f"<tr{attrs}><td>" + "</td><td>".join(cells) + "</td></tr>")  # noqa: S308 - escaped above

    def body_rows(self) -> list[SafeString]:
        """The rows of the current page (all rows when not paginated), rendered."""
        rows = self.page.object_list if getattr(self, "page", None) is not None else self.rows
        return [self.render_row(row.record) for row in rows]


class _HistoryTable(LightTable):
    """What the keyset-paginated histories' tables share: the time (UTC) and the landed
    payout signatures, linked to the explorer."""

    def render_created_at(self, value):
        """The time, UTC."""
        return when(value)

    def render_signatures(self, value):
        """Landed payout signatures, linked to the explorer."""
        return signature_links(value)


class DistributionHistoryTable(_HistoryTable):
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

    def render_subscriber_wallet(self, value):
        """The subscriber's wallet, shortened (full address on hover)."""
        return address_cell(value)

    def render_profit_share_bps(self, value):
        """The rate as a percent."""
        return format_bps(value)

    def render_status(self, value):
        """A status badge."""
        return status_cell(value)


class LegHistoryTable(_HistoryTable):
    """A wallet's legs, every role it earned in (rows from
    ``selectors.leg_earnings.leg_history``)."""

    created_at = tables.Column("Time (UTC)", orderable=False)
    bot_name = tables.Column("Bot", orderable=False)
    role = tables.Column("Role", orderable=False)
    amount = MoneyColumn("Amount (USDC)", orderable=False)
    paid = MoneyColumn("Paid (USDC)", orderable=False)
    owed = MoneyColumn("Owed (USDC)", orderable=False)
    carried = MoneyColumn("Carried (USDC)", orderable=False)
    status = tables.Column("Status", orderable=False)
    signatures = tables.Column("Signature", orderable=False, empty_values=())

    class Meta:
        template_name = TEMPLATE
        attrs = {"class": "data", "id": "legs-table"}
        orderable = False
        row_attrs = {"data-role": lambda record: record["role"], "data-status": lambda record: record["status"]}
        empty_text = "No legs match these filters."

    def render_role(self, value, record):
        """The role in words, with its rate (basis points of the share) when it has one."""
        rate = f" · {format_bps(record['bps'])}" if record.get("bps") is not None else ""
        return f"{record['role_label']}{rate}"

    def render_status(self, value, record):
        """A status badge."""
        return status_cell(value, record["status_label"])


def recipient_cell(iou) -> str:
    """Whom an IOU owes (``IOU.recipient_role`` and ``recipient_wallet``): a role badge and the
    wallet, shortened (full on hover)."""
    role = iou.recipient_role
    label = LegRole(role).label
    return mark_safe(  # noqa: S308 - escaped
        f'<span class="badge badge-role" data-role="{_esc(role)}">{_esc(label)}</span> {address_cell(iou.recipient_wallet)}'
    )


class TradeTable(LightTable):
    """A subscriber's closes (rows from ``selectors.history.trade_history``)."""

    closed_at = tables.Column("Closed (UTC)")
    close_id = tables.Column("Close")
    realized_pnl = MoneyColumn("Realized PnL")
    profit_share_bps = tables.Column("Rate")
    share = MoneyColumn("Creator share")
    paid = MoneyColumn("Paid")
    paid_at = tables.Column("Paid (UTC)")
    signatures = tables.Column("Signature", empty_values=())
    owed = MoneyColumn("Still owed")
    owed_reason_label = tables.Column("Why owed")
    net_pnl = MoneyColumn("Net PnL")

    class Meta:
        template_name = TEMPLATE
        attrs = {"class": "data", "id": "trades-table"}
        orderable = False

    def render_closed_at(self, value):
        """The time, UTC."""
        return when(value)

    def render_paid_at(self, value):
        """When the last payout landed, UTC."""
        return when(value)

    def render_profit_share_bps(self, value):
        """The rate as a percent."""
        return format_bps(value)

    def render_signatures(self, value):
        """Landed payout signatures, linked to the explorer."""
        return signature_links(value)


class OpenIouTable(LightTable):
    """The admin console's pending debts (an annotated IOU queryset from
    ``selectors.admin_console.open_ious``); sortable in SQL, paginated by django-tables2."""

    id = tables.Column("IOU", accessor="pk")
    subscriber = tables.Column("Subscriber", accessor="subscription__subscriber_wallet")
    creator_address = tables.Column("Creator", accessor="creator__address")
    recipient = tables.Column("Owed to", accessor="pk", orderable=False, empty_values=())
    remaining_owed = MoneyColumn("Amount (USDC)", order_by=("remaining_owed", "pk"))
    reason = tables.Column("Reason")
    status = tables.Column("Status")
    created_at = tables.Column("Age", order_by=("pk",))  # ids grow with creation: index order
    attempts = tables.Column("Attempts")
    next_retry_at = tables.Column("Next retry (UTC)")
    actions = tables.Column("Actions", orderable=False, empty_values=(), accessor="pk")
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

    def __init__(self, *args, csrf_token: str = "", **kwargs):
        """``csrf_token``: put in the row forms (they also work without JavaScript)."""
        super().__init__(*args, **kwargs)
        self.csrf_token = csrf_token

    def render_actions(self, record):
        """Retry now / void forms, or the IOU's state."""
        return iou_actions(record, self.csrf_token)

    def render_id(self, value):
        """The IOU's id, linked to its detail page."""
        return mark_safe(f'<a href="{_esc(pk_url("pages:console-iou", value))}">#{int(value)}</a>')  # noqa: S308

    def render_subscriber(self, value):
        """The subscriber's wallet, shortened (full address on hover)."""
        return address_cell(value)

    def render_creator_address(self, value):
        """The creator's wallet, shortened (full address on hover)."""
        return address_cell(value)

    def render_recipient(self, record):
        """The IOU's recipient: role and wallet."""
        return recipient_cell(record)

    def render_reason(self, value, record):
        """The reason (its description on hover)."""
        return mark_safe(f'<span title="{_esc(record.get_reason_display())}">{_esc(value)}</span>')  # noqa: S308

    def render_status(self, value, record):
        """A status badge."""
        return status_cell(value, record.get_status_display().split(" (")[0])

    def render_created_at(self, value):
        """The time, UTC."""
        return mark_safe(f'<span title="{_esc(when(value))}">{_esc(_age(value))}</span>')  # noqa: S308

    def render_next_retry_at(self, value):
        """When the engine retries next, UTC."""
        return when(value)


def iou_actions(record, csrf_token: str) -> str:
    """The actions cell of a debts row: "Retry now" and "Void" (reason required, confirmed)
    for open and expired IOUs, progress while a retry runs, and the last action's outcome
    (``record.notice`` / ``record.error``). Plain forms that htmx enhances."""
    pk = int(record.pk)
    csrf = f'<input type="hidden" name="csrfmiddlewaretoken" value="{_esc(csrf_token)}">'
    parts = []
    if record.status in ("open", "expired"):
        retry = _esc(pk_url("pages:console-iou-retry", pk))
        void = _esc(pk_url("pages:console-iou-void", pk))
        parts.append(
            f'<form method="post" action="{retry}" class="inline" hx-post="{retry}" hx-target="closest tr" '
            f'hx-swap="outerHTML">{csrf}<button type="submit" class="retry">Retry now</button></form> '
        )
        parts.append(
            f'<form method="post" action="{void}" class="inline" hx-post="{void}" hx-target="closest tr" '
            f'hx-swap="outerHTML" hx-vals=\'{{"confirm": "yes"}}\' hx-confirm="Void IOU #{pk}? What remains is '
            f'forgiven and the creator will not be paid it.">{csrf}<input name="reason" placeholder="Reason to void" '
            f'maxlength="500" required size="16"> <button type="submit" class="danger void">Void</button></form>'
        )
    elif record.status == "processing":
        parts.append('<span class="spinner">retrying…</span>')
    else:
        parts.append(f'<span class="hint">{_esc(record.get_status_display())}</span>')
    if getattr(record, "notice", ""):
        parts.append(f' <span class="notice">{_esc(record.notice)}</span>')
    if getattr(record, "error", ""):
        parts.append(f' <span class="error" role="alert">{_esc(record.error)}</span>')
    return mark_safe("".join(parts))  # noqa: S308 - every value is escaped


def _row_url(record) -> str:
    return pk_url("pages:console-iou-row", record.pk)


def _age(value) -> str:
    seconds = int((timezone.now() - value).total_seconds())
    if seconds < 3600:
        return f"{max(seconds, 0) // 60} min"
    if seconds < 86_400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} d"


class AlertTable(LightTable):
    """The admin console's alerts feed (``Alert`` rows from ``selectors.admin_console.alerts_feed``)
    with an "Acknowledge" form on each unacknowledged one (htmx replaces the row)."""

    created_at = tables.Column("When (UTC)")
    severity = tables.Column("Severity")
    kind = tables.Column("Kind")
    subject = tables.Column("Subject")
    amount = MoneyColumn("Amount")
    acknowledged = tables.Column("Acknowledged", accessor="pk", empty_values=())

    class Meta:
        template_name = TEMPLATE
        attrs = {"class": "data", "id": "alerts"}
        orderable = False
        row_attrs = {"id": lambda record: f"alert-{record.pk}"}
        empty_text = "No alerts."

    def __init__(self, *args, csrf_token: str = "", error: str = "", **kwargs):
        """``csrf_token``: put in the acknowledge forms; ``error``: shown in the row (a
        single-row answer to an acknowledge that failed)."""
        super().__init__(*args, **kwargs)
        self.csrf_token, self.error = csrf_token, error

    def render_created_at(self, value):
        """The time, UTC."""
        return when(value)

    def render_severity(self, value):
        """A severity badge."""
        return status_cell(value)

    def render_acknowledged(self, record):
        """Who acknowledged it and when, or the "Acknowledge" form."""
        if record.acknowledged_at:
            out = f"{_esc(record.acknowledged_by)} at {record.acknowledged_at.astimezone(UTC):%Y-%m-%d %H:%M}"
        else:
            url = _esc(pk_url("pages:console-alert-ack", record.pk))
            out = (
                f'<form method="post" action="{url}" class="inline" hx-post="{url}" hx-target="closest tr" '
                f'hx-swap="outerHTML"><input type="hidden" name="csrfmiddlewaretoken" value="{_esc(self.csrf_token)}">'
                f'<button type="submit">Acknowledge</button></form>'
            )
        if self.error:
            out += f' <span class="error">{_esc(self.error)}</span>'
        return mark_safe(out)  # noqa: S308 - every value is escaped


class WebhookDeliveryTable(LightTable):
    """The console's webhook deliveries (``selectors.webhooks.deliveries``) with a
    "Redeliver" form on each row (htmx replaces the row)."""

    id = tables.Column("#", accessor="pk")
    event_type = tables.Column("Event", accessor="event__type")
    ordering_key = tables.Column("Subscription")
    endpoint = tables.Column("Endpoint")
    status = tables.Column("Status")
    attempts = tables.Column("Attempts")
    last_status_code = tables.Column("Last status")
    last_error = tables.Column("Last error")
    next_attempt_at = tables.Column("Next try (UTC)", empty_values=())
    actions = tables.Column("Actions", accessor="pk", empty_values=())

    class Meta:
        template_name = TEMPLATE
        attrs = {"class": "data", "id": "deliveries-table"}
        orderable = False
        row_attrs = {"id": lambda record: f"delivery-{record.pk}", "data-status": lambda record: record.status}
        empty_text = "No webhook deliveries."

    def __init__(self, *args, csrf_token: str = "", **kwargs):
        """``csrf_token``: put in the row forms (they also work without JavaScript)."""
        super().__init__(*args, **kwargs)
        self.csrf_token = csrf_token

    def render_event_type(self, value, record):
        """The event's type; its id (``X-QV-Event-Id``) on hover."""
        return mark_safe(f'<span title="event id {_esc(record.event.uuid)}">{_esc(value)}</span>')  # noqa: S308

    def render_status(self, value):
        """A status badge."""
        return status_cell(value)

    def render_last_error(self, value):
        """The newest error, shortened (full on hover)."""
        text = str(value)
        return mark_safe(f'<span title="{_esc(text)}">{_esc(text[:60])}{"…" if len(text) > 60 else ""}</span>')  # noqa: S308

    def render_next_attempt_at(self, record):
        """When a pending delivery is tried next, UTC; delivered ones show when they were."""
        if record.status == "pending":
            return when(record.next_attempt_at)
        if record.status == "delivered":
            return f"delivered {when(record.delivered_at)}"
        return "gave up"

    def render_actions(self, record):
        """The "Redeliver" form, and the last action's outcome (``record.notice`` / ``record.error``)."""
        url = _esc(pk_url("pages:console-webhook-redeliver", record.pk))
        out = (
            f'<form method="post" action="{url}" class="inline" hx-post="{url}" hx-target="closest tr" '
            f'hx-swap="outerHTML"><input type="hidden" name="csrfmiddlewaretoken" value="{_esc(self.csrf_token)}">'
            f'<button type="submit" class="retry">Redeliver</button></form>'
        )
        if getattr(record, "notice", ""):
            out += f' <span class="notice">{_esc(record.notice)}</span>'
        if getattr(record, "error", ""):
            out += f' <span class="error" role="alert">{_esc(record.error)}</span>'
        return mark_safe(out)  # noqa: S308 - every value is escaped
