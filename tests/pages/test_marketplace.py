"""The public marketplace snippet: percent, policy and the creator's last-30-days earnings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from profitshare.models import Distribution, PublishedBot
from tests.factories import PublishedBotFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_snippet_shows_terms_and_30_day_earnings(client, earnings):
    bot = earnings.paid_world.subscription.bot
    old = earnings.paid[0]
    Distribution.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    response = client.get(f"/bots/{bot.bot_id}/snippet/")
    assert response.status_code == 200
    snippet = response.context["snippet"]
    # 2.5 + 1.25 paid and 3.0 owed (still earned) in the window; the 31-day-old 4.0 is out
    assert (snippet["earned_30d"], snippet["closes_30d"], snippet["subscribers_30d"]) == (6_750_000, 3, 2)
    html = response.content.decode()
    assert "10.00 % profit share" in html and "Per trade" in html and "6.750000 USDC" in html
    assert b"<html" not in response.content  # a fragment
    assert b"<html" in client.get(f"/bots/{bot.bot_id}/snippet/?page=1").content


def test_deleted_or_unknown_bots_have_no_snippet(client):
    bot = PublishedBotFactory()
    assert client.get(f"/bots/{bot.bot_id}/snippet/").status_code == 200
    PublishedBot.objects.filter(pk=bot.pk).update(deleted_at=timezone.now())
    assert client.get(f"/bots/{bot.bot_id}/snippet/").status_code == 404
    assert client.get("/bots/nope/snippet/").status_code == 404
