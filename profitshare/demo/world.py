"""The demo world: creators and their bots, subscribers with funded agent wallets.

Built through the intake API (``POST /bots``, ``POST /subscriptions``: the answer names the new
agent wallet) and funded on the local node (``requestAirdrop`` for SOL, ``localnet_driftDeposit``
for USDC collateral in the agent's emulated Drift subaccount). Every step is idempotent: the API
answers 200 for a bot or subscription that already exists with the same fields, and an agent is
funded only when its Drift subaccount does not exist on the node yet, so a re-run resumes.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

from profitshare.demo.clients import IntakeClient, NodeClient
from profitshare.demo.wallets import CREATOR, SUBSCRIBER, keypair
from profitshare.money import LAMPORTS_PER_SOL, USDC

logger = logging.getLogger(__name__)

AGENT_SOL = LAMPORTS_PER_SOL // 10  # 0.1 SOL: thousands of payouts' fees and one ATA rent
LOW_SOL = 1_000_000  # 0.001 SOL: pays a Drift settle, not a payout that creates a token account
DRIFT_SUBACCOUNT = 0


@dataclass(frozen=True)
class BotSpec:
    """A bot to publish: ``slug`` (the bot id is ``demo{seed}-{slug}``), name, basis points
    (0..1000) and policy (``per_trade`` / ``high_water_mark``)."""

    slug: str
    name: str
    bps: int
    policy: str


@dataclass(frozen=True)
class CreatorSpec:
    """A creator (its wallet is the demo keypair of that label) and its bots."""

    label: str
    bots: tuple[BotSpec, ...]


CREATORS: tuple[CreatorSpec, ...] = (
    CreatorSpec("ada", (BotSpec("momentum", "Momentum", 1000, "per_trade"),)),
    CreatorSpec("bao", (BotSpec("meanrev", "Mean reversion", 500, "high_water_mark"),)),
    CreatorSpec("chen", (
        BotSpec("carry", "Funding carry", 250, "per_trade"),
        BotSpec("open", "Open signals (free)", 0, "per_trade"),
    )),
    CreatorSpec("dara", (BotSpec("breakout", "Breakout", 750, "high_water_mark"),)),
)


def bot_id(seed: int, slug: str) -> str:
    """The published bot id of ``slug`` in the world of ``seed``."""
    return f"demo{seed}-{slug}"


def stream_label(index: int) -> str:
    """The subscriber label of the ``index``-th stream subscriber."""
    return f"s{index:03d}"


def subscription_id(seed: int, label: str) -> str:
    """The subscription id of the subscriber ``label`` in the world of ``seed``."""
    return f"demo{seed}-{label}"


@dataclass
class DemoSubscription:
    """A subscription of the demo: ids, the subscriber's own wallet, the agent wallet (from the
    API's answer), its bot and what the node funds it with (lamports, USDC base units)."""

    label: str
    subscription_id: str
    bot_id: str
    subscriber_wallet: str
    lamports: int
    collateral: int
    staged: bool = False
    agent_wallet: str = ""


@dataclass
class World:
    """What ``build`` created or found: bots by slug, creators' wallets, subscriptions by label."""

    seed: int
    creators: dict[str, str] = field(default_factory=dict)  # label -> address
    bot_creator: dict[str, str] = field(default_factory=dict)  # bot id -> creator label
    subscriptions: dict[str, DemoSubscription] = field(default_factory=dict)

    def stream(self) -> list[DemoSubscription]:
        """The subscriptions that trade in the close stream (not the staged cases')."""
        return [s for _, s in sorted(self.subscriptions.items()) if not s.staged]


def plan(seed: int, subscribers: int, staged: dict[str, tuple[str, int]]) -> World:
    """The world of ``seed`` with ``subscribers`` stream subscribers spread over the bots
    (round robin, collateral 1,000–5,000 USDC, 0.1 SOL) and the staged subscriptions
    ``staged`` (label -> (bot slug, lamports))."""
    rng = random.Random(seed)
    world = World(seed)
    slugs = []
    for creator in CREATORS:
        world.creators[creator.label] = str(keypair(seed, CREATOR, creator.label).pubkey())
        for bot in creator.bots:
            world.bot_creator[bot_id(seed, bot.slug)] = creator.label
            slugs.append(bot.slug)
    for index in range(subscribers):
        label = stream_label(index)
        world.subscriptions[label] = DemoSubscription(
            label, subscription_id(seed, label), bot_id(seed, slugs[index % len(slugs)]),
            str(keypair(seed, SUBSCRIBER, label).pubkey()), AGENT_SOL, rng.randint(1_000, 5_000) * USDC,
        )
    for label, (slug, lamports) in staged.items():
        world.subscriptions[label] = DemoSubscription(
            label, subscription_id(seed, label), bot_id(seed, slug),
            str(keypair(seed, SUBSCRIBER, label).pubkey()), lamports, 2_000 * USDC, staged=True,
        )
    return world


def build(world: World, api: IntakeClient, node: NodeClient) -> dict[str, int]:
    """Publish the bots, subscribe every subscriber and fund new agent wallets. Returns counts
    ``{"bots", "subscriptions", "funded"}`` of what this call created (0 on a full resume).
    Raises ``ApiError`` / ``NodeError`` when the API or the node refuses a step."""
    counts = {"bots": 0, "subscriptions": 0, "funded": 0}
    for creator in CREATORS:
        for bot in creator.bots:
            status, _ = api.post("/bots", {
                "bot_id": bot_id(world.seed, bot.slug), "creator_wallet": world.creators[creator.label],
                "name": bot.name, "profit_share_bps": bot.bps, "policy": bot.policy,
            })
            counts["bots"] += status == 201
    for sub in world.subscriptions.values():
        status, body = api.post("/subscriptions", {
            "subscription_id": sub.subscription_id, "bot_id": sub.bot_id,
            "subscriber_wallet": sub.subscriber_wallet, "drift_subaccount_id": DRIFT_SUBACCOUNT,
        })
        counts["subscriptions"] += status == 201
        sub.agent_wallet = body["agent_wallet"]
        if node.rpc("localnet_driftAccount", sub.agent_wallet, DRIFT_SUBACCOUNT) is None:
            if node.lamports(sub.agent_wallet) == 0:
                node.rpc("requestAirdrop", sub.agent_wallet, sub.lamports)
            node.rpc("localnet_driftDeposit", sub.agent_wallet, DRIFT_SUBACCOUNT, sub.collateral)
            counts["funded"] += 1
    return counts
