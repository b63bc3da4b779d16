"""The demo's split shares: a referral chain above two demo creators, the platform's treasury,
their USDC token accounts, and how a share's legs read in the demo's output.

The links are recorded through the real API (``POST /api/v1/referrals``: 201 new, 200 on a
re-run), so the product splits the demo's shares by its own rules (docs/design.md, "The
referral chain", "Splits add up"): ada's chain is rhea (level 1), ines (level 2) and bao
(level 3, a creator who also refers); dara's is kai alone. Every referrer gets an empty USDC
token account on the node before any share is split, except kai, on purpose: a referral leg
whose wallet has no USDC token account is carried until the account exists (docs/design.md,
"Dust is carried per recipient"), so kai's legs show that case.

The platform fee is not the demo's to set (the web server computes the legs at intake, from its
settings): ``run_product`` gives its processes ``PLATFORM_FEE_BPS`` (1 %) to the demo treasury
(``platform_env``) unless ``QV_PLATFORM_FEE_BPS`` or ``QV_PLATFORM_TREASURY`` is set in its
environment; the setting's default (production's) stays no fee.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from solders.keypair import Keypair

from profitshare.demo.clients import ApiError, IntakeClient, NodeClient
from profitshare.demo.wallets import CREATOR, PLATFORM, REFERRER, keypair
from profitshare.demo.world import CREATORS
from profitshare.money import format_usdc

#: (wallet label, label of who referred it): ada <- rhea <- ines <- bao, and dara <- kai.
REFERRALS: tuple[tuple[str, str], ...] = (
    ("ada", "rhea"),
    ("rhea", "ines"),
    ("ines", "bao"),
    ("dara", "kai"),
)
#: Referrers left without a USDC token account on purpose: their legs are carried.
NO_ACCOUNT = ("kai",)
#: The platform fee ``make run`` runs with (basis points of the share: 1 %).
PLATFORM_FEE_BPS = 100


def creator_labels() -> set[str]:
    """Labels of the demo's creators (``world.CREATORS``)."""
    return {c.label for c in CREATORS}


def wallet(seed: int, label: str) -> str:
    """Address (base58) of the demo wallet ``label``: the creator's when it names a creator,
    else the referrer's."""
    return str(keypair(seed, CREATOR if label in creator_labels() else REFERRER, label).pubkey())


def referrer_labels() -> list[str]:
    """Labels of the referrers that are not creators, in the order of ``REFERRALS``."""
    creators = creator_labels()
    return [r for _, r in REFERRALS if r not in creators]


def referred_by(label: str) -> list[str]:
    """Labels of the wallets ``label`` referred."""
    return [w for w, r in REFERRALS if r == label]


def treasury(seed: int) -> str:
    """The demo platform treasury's address (base58) for ``seed``."""
    return str(keypair(seed, PLATFORM, "treasury").pubkey())


def platform_settings(seed: int) -> dict[str, str]:
    """The demo's platform fee as environment variables: ``{"QV_PLATFORM_FEE_BPS": "100",
    "QV_PLATFORM_TREASURY": <the demo treasury of seed>}``."""
    return {"QV_PLATFORM_FEE_BPS": str(PLATFORM_FEE_BPS), "QV_PLATFORM_TREASURY": treasury(seed)}


def platform_env(environ: Mapping[str, str], seed: int, referral_bps: Iterable[int]) -> dict[str, str]:
    """What ``run_product`` adds to its demo processes' environment: ``platform_settings(seed)``
    when ``environ`` sets neither ``QV_PLATFORM_FEE_BPS`` nor ``QV_PLATFORM_TREASURY`` and the
    fee leaves room beside ``referral_bps`` (basis points of levels 1-3: the rates must add up to
    less than 10,000, docs/design.md "Splits add up"); otherwise ``{}`` (the operator's settings,
    or the default of no fee, stand)."""
    if "QV_PLATFORM_FEE_BPS" in environ or "QV_PLATFORM_TREASURY" in environ:
        return {}
    if sum(referral_bps) + PLATFORM_FEE_BPS >= 10_000:
        return {}
    return platform_settings(seed)


def link_referrals(seed: int, api: IntakeClient, say) -> int:
    """Record every link of ``REFERRALS`` with ``POST /referrals`` (idempotent: 200 when it
    exists); returns how many this call created. A link the API refuses (409: that wallet has
    another referrer already, say from a hand-made link) is said with ``say`` and skipped."""
    created = 0
    for label, referrer in REFERRALS:
        body = {"wallet": wallet(seed, label), "referrer_wallet": wallet(seed, referrer)}
        try:
            status, _ = api.post("/referrals", body)
        except ApiError as exc:
            if exc.status != 409:
                raise
            say(f"[referrals] {referrer} -> {label} not recorded: HTTP 409 {exc.body}")
            continue
        created += status == 201
    return created


def open_accounts(seed: int, node: NodeClient, payer: Keypair, platform_treasury: str | None) -> int:
    """Open an empty USDC token account on the node for every referrer but ``NO_ACCOUNT``'s and
    for ``platform_treasury`` (when set), rent and fee paid by ``payer`` (the platform's demo
    key). Returns how many this call created. Raises ``NodeError`` when the node refuses."""
    owners = [wallet(seed, r) for _, r in REFERRALS if r not in NO_ACCOUNT]
    if platform_treasury:
        owners.append(platform_treasury)
    return sum(node.open_usdc_account(owner, payer) for owner in dict.fromkeys(owners))


def leg_text(leg: dict, names: dict[str, str], why: dict[str, str] | None = None) -> str:
    """One leg, compact: ``role name amount (state)``, e.g. ``referral_1 rhea 0.500000 (paid
    0.500000)``. ``leg`` has ``role``, ``wallet``, ``amount``, ``paid``, ``owed``, ``carried``
    (USDC base units: an API leg or a leg row's values); ``names`` maps addresses to labels
    (else ``treasury`` for the platform's leg, the address's first 6 characters and an ellipsis
    for any other); ``why`` maps an address to why its
    carried part is carried (e.g. ``no USDC token account``)."""
    name = names.get(leg["wallet"]) or ("treasury" if leg["role"] == "platform" else f"{leg['wallet'][:6]}…")
    parts = [f"{k} {format_usdc(leg[k])}" for k in ("paid", "owed", "carried") if leg[k]]
    if leg["carried"] and (why or {}).get(leg["wallet"]):
        parts[-1] += f": {why[leg['wallet']]}"
    return f"{leg['role']} {name} {format_usdc(leg['amount'])} ({', '.join(parts) or 'nothing due'})"


def legs_text(legs: Iterable[dict], names: dict[str, str], why: dict[str, str] | None = None) -> str:
    """Every leg of a share on one line, ``; ``-separated (see ``leg_text``), in the order given."""
    return "; ".join(leg_text(leg, names, why) for leg in legs)


def wallet_names(seed: int) -> dict[str, str]:
    """Address -> label of the demo's creators and referrers."""
    return {wallet(seed, label): label for label in creator_labels() | set(referrer_labels())}


def no_account_reasons(node: NodeClient, legs: Iterable[dict]) -> dict[str, str]:
    """For ``leg_text``'s ``why``: the carried non-creator legs' wallets that have no USDC token
    account on the node, each ``"no USDC token account"`` (their legs wait for one)."""
    return {
        leg["wallet"]: "no USDC token account" for leg in legs
        if leg["carried"] and leg["role"] != "creator" and node.usdc_balance(leg["wallet"]) is None
    }
