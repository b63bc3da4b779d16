"""factory-boy factories for the domain (rows only; chain state is built by tests/world.py)."""

from __future__ import annotations

import factory
from solders.keypair import Keypair

from profitshare.chain import keys
from profitshare.models import AgentWallet, CreatorWallet, Policy, PublishedBot, Subscription


class CreatorWalletFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CreatorWallet

    address = factory.LazyFunction(lambda: str(Keypair().pubkey()))


class PublishedBotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PublishedBot

    bot_id = factory.Sequence(lambda n: f"bot-{n}")
    creator = factory.SubFactory(CreatorWalletFactory)
    name = factory.Sequence(lambda n: f"Signal bot {n}")
    profit_share_bps = 1_000
    policy = Policy.PER_TRADE


class AgentWalletFactory(factory.django.DjangoModelFactory):
    """An agent wallet with a real keypair, encrypted with the test's key."""

    class Meta:
        model = AgentWallet

    class Params:
        keypair = factory.LazyFunction(Keypair)

    pubkey = factory.LazyAttribute(lambda o: str(o.keypair.pubkey()))
    encrypted_secret = factory.LazyAttribute(lambda o: keys.encrypt_keypair(o.keypair))


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    subscription_id = factory.Sequence(lambda n: f"sub-{n}")
    bot = factory.SubFactory(PublishedBotFactory)
    subscriber_wallet = factory.LazyFunction(lambda: str(Keypair().pubkey()))
    agent_wallet = factory.SubFactory(AgentWalletFactory)
    drift_subaccount_id = 0
    profit_share_bps = factory.LazyAttribute(lambda o: o.bot.profit_share_bps)
    policy = factory.LazyAttribute(lambda o: o.bot.policy)
