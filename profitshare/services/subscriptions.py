"""Subscribing to a bot: snapshot of its terms and a new agent wallet with an encrypted key."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from profitshare.chain import keys
from profitshare.models import AgentWallet, PublishedBot, Subscription
from profitshare.services.audit import record_event
from profitshare.services.bots import validate_wallet_address
from profitshare.services.errors import Conflict, InvalidInput, NotFound


@dataclass(frozen=True)
class SubscribeResult:
    subscription: Subscription
    created: bool


@transaction.atomic
def create_subscription(
    *, subscription_id: str, bot_id: str, subscriber_wallet: str, drift_subaccount_id: int, actor: str
) -> SubscribeResult:
    """Subscribe ``subscriber_wallet`` to ``bot_id``; generates the agent wallet (its key is
    encrypted at rest and never returned). The bot's current rate and policy are snapshotted.

    The same request again returns the existing subscription (``created=False``); the same id
    with different fields raises ``Conflict``. Raises ``NotFound`` (bot missing or deleted),
    ``InvalidInput`` (address, subaccount id outside 0..65535); nothing is written on error.
    """
    wallet = validate_wallet_address("subscriber_wallet", subscriber_wallet)
    if isinstance(drift_subaccount_id, bool) or not isinstance(drift_subaccount_id, int) or not (
        0 <= drift_subaccount_id <= 65_535
    ):
        raise InvalidInput("drift_subaccount_id", "must be an integer in 0..65535")
    existing = Subscription.objects.select_related("bot", "agent_wallet").filter(subscription_id=subscription_id).first()
    if existing is not None:
        same = (
            existing.bot.bot_id == bot_id
            and existing.subscriber_wallet == wallet
            and existing.drift_subaccount_id == drift_subaccount_id
        )
        if not same:
            raise Conflict(f"subscription {subscription_id!r} exists with different fields")
        return SubscribeResult(existing, False)
    bot = PublishedBot.objects.filter(bot_id=bot_id, deleted_at__isnull=True).first()
    if bot is None:
        raise NotFound("bot", bot_id)
    keypair, ciphertext = keys.generate_agent_keypair()
    agent = AgentWallet.objects.create(pubkey=str(keypair.pubkey()), encrypted_secret=ciphertext)
    sub = Subscription.objects.create(
        subscription_id=subscription_id,
        bot=bot,
        subscriber_wallet=wallet,
        agent_wallet=agent,
        drift_subaccount_id=drift_subaccount_id,
        profit_share_bps=bot.profit_share_bps,
        policy=bot.policy,
    )
    record_event(
        "subscription", subscription_id, actor=actor, to_status=sub.status, bot=bot_id,
        bps=sub.profit_share_bps, policy=sub.policy, agent_wallet=agent.pubkey,
    )
    return SubscribeResult(sub, True)


def agent_keypair(agent: AgentWallet):
    """The agent wallet's decrypted ``Keypair`` (never log it: its repr shows the secret)."""
    return keys.decrypt_keypair(bytes(agent.encrypted_secret))
