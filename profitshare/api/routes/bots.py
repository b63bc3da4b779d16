"""``POST /bots``: publish or update a bot (platform)."""

from __future__ import annotations

from ninja import Router, Status

from profitshare.api.auth import PlatformAuth
from profitshare.api.routes.common import AUTH_ERRORS, actor, refuse_unknown_query
from profitshare.api.schemas import BotIn, BotOut, ErrorOut
from profitshare.models import PublishedBot
from profitshare.services.bots import publish_bot

router = Router(tags=["bots"], auth=PlatformAuth())


def render_bot(bot: PublishedBot) -> dict:
    """The ``BotOut`` body of a published bot."""
    return {
        "bot_id": bot.bot_id,
        "creator_wallet": bot.creator.address,
        "name": bot.name,
        "profit_share_bps": bot.profit_share_bps,
        "policy": bot.policy,
    }


@router.post("/bots", response={200: BotOut, 201: BotOut, 409: ErrorOut, **AUTH_ERRORS})
def publish(request, payload: BotIn):
    """Publish a bot (201) or update its name and terms (200). A rate decrease reaches existing
    subscribers at once, an increase or a policy change after the fee timelock. 422 for an
    invalid creator address, bps outside 0..1000 or an unknown policy; 409 when the bot id was
    deleted or belongs to another creator wallet (nothing written either way)."""
    refuse_unknown_query(request)
    result = publish_bot(**payload.model_dump(), actor=actor(request))
    return Status(201 if result.created else 200, render_bot(result.bot))
