"""The public marketplace snippet of a bot: what a subscriber sees before subscribing."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from profitshare.selectors import marketplace


@require_GET
def bot_snippet(request, bot_id: str):
    """``/bots/<bot_id>/snippet/``: profit-share percent, policy and the creator's estimated
    earnings over the last 30 days (an HTML fragment; a deleted or unknown bot is a 404)."""
    snippet = marketplace.bot_snippet(bot_id)
    if snippet is None:
        raise Http404("no such bot")
    template = "profitshare/marketplace/_snippet.html"
    if request.GET.get("page") == "1":
        template = "profitshare/marketplace/snippet_page.html"
    return render(request, template, {"snippet": snippet})
