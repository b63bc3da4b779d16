"""The staged hard cases: each makes one thing happen for real, so the pages show it.

Each case is idempotent: it looks at what the database and the node already show (a resumed
run skips what happened before) and does only the next step. They run one after the other,
before the close stream starts, in this order:

* ``newata``: a creator whose USDC token account does not exist yet; the first payout creates it
  (rent paid by the agent) and the pre-flight counted that rent; the creator's referrer (kai)
  has no USDC token account, so its referral leg is carried, not paid;
* ``split``: a share split into its legs, all paid in one transaction: the platform fee to the
  treasury (when the fee is on) and referral levels 1-3 up the creator's chain (rhea, ines,
  bao: see ``splits``), the creator the rest;
* ``dust``: a share below the dust threshold is carried on the subscription, not paid;
* ``invalid``: publishing a bot with an invalid creator address (the all-zero System Program
  address) is refused by the API with 422 and nothing is written; the product never holds an
  invalid creator wallet, so this refusal is the case;
* ``expired``: a share's IOUs (too little SOL; one per leg) pass their TTL: the TTL service is
  run at their ``expires_at`` (only when they are the oldest open IOUs, so no other debt is
  touched); they stop blocking (the guard allows withdrawal) but stay owed; SOL is then topped
  up and the retry sweep collects them;
* ``lowsol``: an agent with too little SOL: the payout becomes an ``insufficient_sol`` IOU per
  leg; the subscriber tops up SOL and asks to withdraw (``POST /subscriptions/{id}/guard``
  retries the open IOUs first), which pays them all in one transaction;
* ``short``: Drift delivers only half of a withdraw (the node's ``partialWithdrawRatio`` fault,
  on for this one payout): half of each leg is paid, the rest is a ``withdraw_short`` IOU per
  leg (retried later);
* ``delinquent``: while an IOU is open the subscriber moves 100 USDC out of the Drift
  subaccount on-chain, behind the platform's back (``localnet_driftTransferOut``); the
  delinquency watch marks the subscription delinquent (the demo queues the watch task instead of
  waiting for its minute).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from profitshare.demo import splits
from profitshare.demo.clients import ApiError
from profitshare.demo.stage import Stage, run_task_now
from profitshare.demo.world import AGENT_SOL, DRIFT_SUBACCOUNT, LOW_SOL, bot_id
from profitshare.models import IOU, IouStatus, Subscription
from profitshare.models.delinquency import DelinquencyWatch
from profitshare.money import USDC, format_usdc
from profitshare.services import ttl

INVALID_CREATOR = "11111111111111111111111111111111"  # the System Program: cannot own tokens
DELINQUENCY_TASK = "profitshare.tasks.detect_delinquency_task"


def usdc(amount: int) -> str:
    """``amount`` base units as USDC text with 6 decimals (the pages' formatting)."""
    return f"{format_usdc(amount)} USDC"


@dataclass(frozen=True)
class Case:
    """A staged case: ``name``, what it shows (``title``), its subscription (label -> bot slug
    and the agent's initial lamports; None for ``invalid``) and ``run(stage) -> done``."""

    name: str
    title: str
    bot_slug: str | None
    lamports: int
    run: Callable[[Stage], bool]


def _newata(stage: Stage) -> bool:
    creator = stage.world.creators["dara"]
    if stage.has_closes("newata"):
        return True
    before = stage.node.usdc_balance(creator)
    close = stage.close("newata", 30 * USDC)
    body = stage.resolved(close)
    after = stage.node.usdc_balance(creator)
    stage.say(
        f"[newata] creator {creator[:8]}… token account "
        f"{'did not exist' if before is None else 'existed'} before; payout {body['status']}, "
        f"{usdc(body['paid'])} in {body['signatures'][:1]}; token account now holds {usdc(after or 0)}"
    )
    stage.say(f"[newata] legs: {_legs(stage, body['legs'])}")
    return True


def _legs(stage: Stage, legs: list[dict]) -> str:
    """The legs of a ``GET /trade-closes`` answer on one line, named, with why a leg is carried."""
    return splits.legs_text(legs, splits.wallet_names(stage.world.seed), splits.no_account_reasons(stage.node, legs))


def _split(stage: Stage) -> bool:
    if stage.has_closes("split"):
        return True
    body = stage.resolved(stage.close("split", 100 * USDC))  # 100 USDC at 10 %: a 10 USDC share
    stage.say(f"[split] share {usdc(body['share'])} {body['status']} in {body['signatures'][:1]}: {_legs(stage, body['legs'])}")
    return True


def _dust(stage: Stage) -> bool:
    if stage.has_closes("dust"):
        return True
    body = stage.resolved(stage.close("dust", 200_000))  # 0.2 USDC at 2.5 %: a 0.005 USDC share
    stage.say(f"[dust] share {usdc(body['share'])}: {body['status']}, carried {usdc(body['carried'])}")
    return True


def _invalid(stage: Stage) -> bool:
    body = {
        "bot_id": bot_id(stage.world.seed, "invalid-creator"), "creator_wallet": INVALID_CREATOR,
        "name": "Bot with an invalid creator wallet", "profit_share_bps": 500, "policy": "per_trade",
    }
    try:
        stage.api.post("/bots", body)
    except ApiError as exc:
        stage.say(f"[invalid] POST /bots with creator_wallet {INVALID_CREATOR}: HTTP {exc.status} {exc.body}")
        return exc.status == 422
    stage.say("[invalid] the API accepted an invalid creator address: this is a bug")
    return False


def _expired(stage: Stage) -> bool:
    sub = stage.sub("expired")
    stage.first_close("expired", 25 * USDC, " (agent has too little SOL)")
    if IOU.objects.filter(subscription__subscription_id=sub.subscription_id, status__in=[
        IouStatus.EXPIRED, IouStatus.PAID,
    ]).exists():
        return True
    # one IOU per unpaid leg of the share (docs/design.md, "All legs are paid together"), all
    # written together with the same expiry
    ious = stage.wait_for("the IOUs of the expired case", lambda: list(IOU.objects.filter(
        subscription__subscription_id=sub.subscription_id, status=IouStatus.OPEN).order_by("expires_at", "id")))
    ids = [iou.pk for iou in ious]
    oldest = list(IOU.objects.filter(status=IouStatus.OPEN).order_by("expires_at", "id").values_list("pk", flat=True)[:len(ids)])
    if oldest != ids:
        stage.say(f"[expired] IOUs {ids} are not the oldest open IOUs: not fast-forwarding their TTL")
        return False
    expired = ttl.expire_due_ious(now=max(iou.expires_at for iou in ious), limit=len(ids))
    if expired != ids:
        return False
    guard = stage.api.get(f"/subscriptions/{sub.subscription_id}/guard")
    stage.say(
        f"[expired] IOUs {ids} (one per leg) reached their TTL: can_withdraw={guard['can_withdraw']}, still owed "
        f"{usdc(guard['owed'])}; topping up SOL so the retry sweep collects them"
    )
    stage.node.rpc("requestAirdrop", sub.agent_wallet, AGENT_SOL)
    return True


def _lowsol(stage: Stage) -> bool:
    sub = stage.sub("lowsol")
    stage.first_close("lowsol", 20 * USDC, " (agent has too little SOL)")
    if stage.ious("lowsol", "paid"):
        return True
    if stage.node.lamports(sub.agent_wallet) < AGENT_SOL // 2:
        stage.node.rpc("requestAirdrop", sub.agent_wallet, AGENT_SOL)
        stage.say(f"[lowsol] subscriber topped up the agent wallet with {AGENT_SOL} lamports")

    def paid():
        stage.api.request("POST", f"/subscriptions/{sub.subscription_id}/guard")  # retries open IOUs first
        return stage.ious("lowsol", "paid")

    ious = stage.wait_for("the low-SOL IOUs to be paid", paid, poll=1.0)
    stage.say(f"[lowsol] withdrawal guard retried IOUs {[i['iou_id'] for i in ious]} (one per leg): paid")
    return True


def _short(stage: Stage) -> bool:
    if stage.has_closes("short"):
        return True
    faults = stage.node.rpc("localnet_getFaults")
    stage.node.rpc("localnet_setFaults", {**faults, "partialWithdrawRatio": 0.5})
    try:
        body = stage.resolved(stage.close("short", 80 * USDC))
    finally:
        stage.node.rpc("localnet_setFaults", {**faults, "partialWithdrawRatio": faults.get("partialWithdrawRatio")})
    stage.say(f"[short] Drift delivered half: paid {usdc(body['paid'])}, owed {usdc(body['owed'])} "
              f"({[i['reason'] for i in stage.ious('short')]})")
    return True


def _delinquent(stage: Stage) -> bool:
    sub = stage.sub("delinquent")
    stage.first_close("delinquent", 50 * USDC)
    row = Subscription.objects.get(subscription_id=sub.subscription_id)
    if row.status == "delinquent":
        return True
    nudge = lambda: run_task_now(DELINQUENCY_TASK)  # noqa: E731
    stage.wait_for("the delinquency watch to start", lambda: DelinquencyWatch.objects.filter(subscription=row).exists(), nudge=nudge)
    if not stage.node.usdc_balance(sub.subscriber_wallet):
        moved = stage.node.rpc("localnet_driftTransferOut", sub.agent_wallet, DRIFT_SUBACCOUNT, 100 * USDC, sub.subscriber_wallet)
        stage.say(f"[delinquent] subscriber moved {usdc(100 * USDC)} out of Drift on-chain ({moved['signature'][:12]}…)")
    stage.wait_for("the subscription to be marked delinquent", lambda: Subscription.objects.filter(
        pk=row.pk, status="delinquent").exists(), nudge=nudge)
    stage.say(f"[delinquent] {sub.subscription_id} is delinquent")
    return True


CASES: tuple[Case, ...] = (
    Case("newata", "A creator's token account created by its first payout", "breakout", AGENT_SOL, _newata),
    Case("split", "A share split: platform fee and three referral levels", "momentum", AGENT_SOL, _split),
    Case("dust", "Dust carried, not paid", "carry", AGENT_SOL, _dust),
    Case("invalid", "An invalid creator address is refused", None, 0, _invalid),
    Case("expired", "An IOU past its TTL: no longer blocking, still owed", "momentum", LOW_SOL, _expired),
    Case("lowsol", "Too little SOL: an IOU, then topped up and paid", "momentum", LOW_SOL, _lowsol),
    Case("short", "A withdraw that delivered only half", "meanrev", AGENT_SOL, _short),
    Case("delinquent", "Funds moved out on-chain while owing", "meanrev", LOW_SOL, _delinquent),
)


def staged_subscriptions() -> dict[str, tuple[str, int]]:
    """Label -> (bot slug, initial agent lamports) of the cases' subscriptions."""
    return {c.name: (c.bot_slug, c.lamports) for c in CASES if c.bot_slug is not None}
