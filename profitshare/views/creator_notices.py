"""The creator's Telegram notices panel on the dashboard: a one-time link code to send to the
product's bot, the linked state, which notices to get, unlink. Each action is a POST whose
outcome replaces the panel in place under htmx (a redirect to the dashboard without it)."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from profitshare.selectors import dashboard, notices
from profitshare.services import telegram_links
from profitshare.services.telegram_links import NOTICE_KINDS
from profitshare.views.common import wallet_required


def panel(request, wallet: str, *, message: str = ""):
    """The panel as it stands now (after an action)."""
    creator = dashboard.creator_by_address(wallet)
    context = {"telegram": notices.telegram_link(creator), "telegram_message": message}
    if not request.htmx:
        return redirect("pages:creator")
    return render(request, "profitshare/creator/_telegram.html", context)


def _own_creator(wallet: str) -> None:
    if dashboard.creator_by_address(wallet) is None:
        raise Http404("no creator with this wallet")


@require_POST
@wallet_required
def link_code(request, wallet: str):
    """Issue a one-time code (the panel then shows it with the bot's link)."""
    _own_creator(wallet)
    telegram_links.issue_link_code(wallet)
    return panel(request, wallet)


@require_POST
@wallet_required
def save_notices(request, wallet: str):
    """Save the notice choices (a checked box is on, an unchecked one off)."""
    _own_creator(wallet)
    telegram_links.set_notices(wallet, **{kind: request.POST.get(kind) == "on" for kind in NOTICE_KINDS})
    return panel(request, wallet, message="Notice choices saved.")


@require_POST
@wallet_required
def unlink(request, wallet: str):
    """Forget the linked chat."""
    _own_creator(wallet)
    telegram_links.unlink(wallet)
    return panel(request, wallet, message="Telegram chat unlinked.")
