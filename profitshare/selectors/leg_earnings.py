"""Read-only queries for the earnings of anyone paid a leg of a split share (docs/design.md,
"Splits add up", "All legs are paid together"): the creator, the platform treasury and the three
referral levels, each seen from its own wallet. Amounts in USDC base units.

The totals per role come from the legs' running totals (``LegTotals``, kept by
``services.leg_totals`` in step with every leg), the last 30 UTC days per day and role from
their per-day rows (``LegDay``, its key ``leg_day_key``); the keyset-paginated history is read
from the wallet's ``DistributionLeg`` rows, which the index ``leg_wallet_role_created``
(wallet, role, -created_at) serves. What is carried comes from
``LegCarry`` (index ``leg_carry_wallet``) for the platform and referral legs and from the
subscriptions' ``dust_carry`` for the creator's own leg ("Dust is carried").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db.models import F, QuerySet, Sum
from django.utils import timezone

from profitshare.filters import LegHistoryFilter
from profitshare.models import (
    IOU,
    AttemptStatus,
    CarryReason,
    DistributionLeg,
    DistributionStatus,
    IouReason,
    IouStatus,
    LegCarry,
    LegDay,
    LegRole,
    LegTotals,
    PayoutAttempt,
    Subscription,
)
from profitshare.selectors.history import Cursor, keyset_page

HISTORY_PAGE_SIZE = 25
CSV_CHUNK = 2_000
WINDOW_DAYS = 30
REFERRAL_ROLES = frozenset({LegRole.REFERRAL_1, LegRole.REFERRAL_2, LegRole.REFERRAL_3})
#: Where each role comes in listings: creator, platform, referral levels 1-3 (``LegRole`` order).
ROLE_ORDER = {role: n for n, role in enumerate(LegRole.values)}
_ROLE_LABELS = dict(LegRole.choices)
#: A leg's status as the history shows it: the distribution's words, and "voided".
LEG_STATUS_LABELS = {**dict(DistributionStatus.choices), "voided": "Voided"}
_IN_FLIGHT = frozenset({DistributionStatus.PENDING, DistributionStatus.PROCESSING})

HISTORY_FIELDS = (
    "pk",
    "created_at",
    "role",
    "bps",
    "amount",
    "carry_in",
    "paid",
    "owed",
    "carried",
    "voided",
    "distribution_id",
)


@dataclass(frozen=True)
class RoleTotals:
    """What one wallet earned in one role (``LegRole`` value, ``label`` its words).

    ``legs``: how many legs; ``earned``: their amounts (the wallet's part of the shares, before
    carried dust folded in); ``paid``: landed payouts; ``owed``: not paid yet (payouts on their
    way and IOUs, both retried); ``voided``: forgiven by an admin; ``carried``: what the
    subscriptions carry for the wallet right now, of which ``carried_no_token_account`` waits for
    the wallet's USDC token account (the rest is dust below the payout threshold);
    ``owed_no_token_account``: of ``owed``, what active IOUs hold back until that account exists
    (docs/design.md, "A recipient without a token account")."""

    role: str
    label: str
    legs: int
    earned: int
    paid: int
    owed: int
    voided: int
    carried: int
    carried_no_token_account: int
    owed_no_token_account: int = 0


#: The amounts of ``RoleTotals`` that add up over roles.
TOTAL_KEYS = ("legs", "earned", "paid", "owed", "voided", "carried", "carried_no_token_account", "owed_no_token_account")


def role_totals(wallet: str) -> list[RoleTotals]:
    """The wallet's totals per role it earned in (``RoleTotals``), in the order creator,
    platform, referral levels 1-3; empty for a wallet that never earned a leg. Four
    statements at most: the legs' running totals (``LegTotals``: a row per creator the wallet
    earned from) grouped by role, ``LegCarry`` grouped by role and reason, the
    IOUs owed for lack of the wallet's token account, and (when the wallet earned a creator's
    leg) the dust its bots' subscriptions carry."""
    sums = {f"{key}_sum": Sum(key) for key in ("legs", "earned", "paid", "owed", "voided")}
    legs = {
        row["role"]: {key.removesuffix("_sum"): value for key, value in row.items()}
        for row in LegTotals.objects.filter(wallet=wallet).values("role").annotate(**sums).order_by()
        if row["legs_sum"]
    }
    carried: dict[str, list[int]] = {}
    carries = (
        LegCarry.objects.filter(wallet=wallet, amount__gt=0)
        .values("role", "reason")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    for row in carries:
        acc = carried.setdefault(row["role"], [0, 0])
        acc[0] += row["total"]
        if row["reason"] == CarryReason.NO_TOKEN_ACCOUNT:
            acc[1] += row["total"]
    waiting = dict(
        IOU.objects.filter(leg__wallet=wallet, reason=IouReason.NO_TOKEN_ACCOUNT, status__in=IouStatus.ACTIVE)
        .values("leg__role")
        .annotate(total=Sum(F("amount") - F("paid_amount")))
        .values_list("leg__role", "total")
        .order_by()
    ) if legs else {}
    if LegRole.CREATOR in legs:
        dust = Subscription.objects.filter(
            bot__creator__address=wallet, dust_carry__gt=0
        ).aggregate(total=Sum("dust_carry"))["total"]
        if dust:
            carried.setdefault(LegRole.CREATOR, [0, 0])[0] += dust
    out = []
    for role in sorted(set(legs) | set(carried), key=ROLE_ORDER.__getitem__):
        row = legs.get(role, {})
        total, no_account = carried.get(role, (0, 0))
        out.append(
            RoleTotals(
                role=role,
                label=_ROLE_LABELS[role],
                legs=row.get("legs", 0),
                earned=row.get("earned") or 0,
                paid=row.get("paid") or 0,
                owed=row.get("owed") or 0,
                voided=row.get("voided") or 0,
                carried=total,
                carried_no_token_account=no_account,
                owed_no_token_account=waiting.get(role) or 0,
            )
        )
    return out


def overall(totals: list[RoleTotals]) -> dict:
    """The sums over every role of ``role_totals``: ``{key: base units}`` for each of
    ``TOTAL_KEYS`` (``legs`` counts)."""
    return {key: sum(getattr(t, key) for t in totals) for key in TOTAL_KEYS}


def _window_start(days: int, now: datetime | None) -> date:
    return (now or timezone.now()).astimezone(UTC).date() - timedelta(days=days - 1)


def daily_earnings(
    wallet: str, *, days: int = WINDOW_DAYS, now: datetime | None = None
) -> list[dict]:
    """Per UTC day of the last ``days`` days (today included; legs keyed by their
    distribution's day, like the creator's dashboard), every day present, oldest first:
    ``[{"day": date, "earned": int, "paid": int, "by_role": {role: paid}}, ...]``. One
    statement over the window's per-day running totals (``LegDay``: at most one row per day,
    role and shard, however many legs the wallet has)."""
    first = _window_start(days, now)
    # every role named: the key (wallet, role, day, shard) then bounds the window by day
    rows = (
        LegDay.objects.filter(wallet=wallet, role__in=LegRole.values, day__gte=first)
        .values("day", "role")
        .annotate(earned=Sum("earned"), paid=Sum("paid"))
        .order_by()
    )
    by_day: dict[date, dict] = {}
    for row in rows:
        acc = by_day.setdefault(row["day"], {"earned": 0, "paid": 0, "by_role": {}})
        acc["earned"] += row["earned"]
        acc["paid"] += row["paid"]
        acc["by_role"][row["role"]] = row["paid"]
    out = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        acc = by_day.get(day, {"earned": 0, "paid": 0, "by_role": {}})
        out.append({"day": day, **acc})
    return out


def leg_status(row: dict) -> str:
    """The status of one leg row (``owed``, ``paid``, ``carried``, ``voided`` and its
    distribution's ``distribution_status``): a leg still owed is ``pending`` while its
    distribution's payout is on its way, ``partially_paid`` when part of it landed, else
    ``owed``; a leg owing nothing is ``carried`` when all of it was carried forward,
    ``voided`` when all was voided, else ``paid``."""
    if row["owed"] > 0:
        if row["distribution_status"] in _IN_FLIGHT:
            return DistributionStatus.PENDING
        return DistributionStatus.PARTIALLY_PAID if row["paid"] > 0 else DistributionStatus.OWED
    if row["paid"] == 0 and row["carried"] > 0:
        return DistributionStatus.CARRIED
    if row["paid"] == 0 and row["voided"] > 0:
        return "voided"
    return DistributionStatus.PAID


def history_filter(wallet: str, data) -> LegHistoryFilter:
    """The history FilterSet (``LegHistoryFilter``: role and UTC date range) bound to ``data``
    (a query dict) and the wallet's legs."""
    return LegHistoryFilter(data, queryset=DistributionLeg.objects.filter(wallet=wallet))


def _history_rows(qs: QuerySet) -> list[dict]:
    rows = list(
        qs.values(
            *HISTORY_FIELDS,
            distribution_status=F("distribution__status"),
            bot_ext_id=F("distribution__bot__bot_id"),
            bot_name=F("distribution__bot__name"),
            close_ext_id=F("distribution__close__close_id"),
        )
    )
    for row in rows:
        row["status"] = leg_status(row)
        row["status_label"] = LEG_STATUS_LABELS[row["status"]]
        row["role_label"] = _ROLE_LABELS[row["role"]]
    return rows


def attach_signatures(rows: list[dict]) -> list[dict]:
    """Add ``signatures`` (the landed payouts that paid each leg, oldest first) and ``paid_at``
    (when the last one landed) to one wallet's leg rows (one statement). A payout attempt names
    the legs it paid (``PayoutAttempt.legs``); one recorded without them paid its
    distribution's creator leg, as the engine's ledger counts it."""
    by_leg: dict[int, list] = {row["pk"]: [] for row in rows}
    creator_leg = {
        row["distribution_id"]: row["pk"] for row in rows if row["role"] == LegRole.CREATOR
    }
    attempts = (
        PayoutAttempt.objects.filter(
            distribution_id__in={row["distribution_id"] for row in rows},
            status=AttemptStatus.LANDED,
        )
        .order_by("created_at", "pk")
        .values_list("distribution_id", "legs", "signature", "resolved_at")
    )
    for dist_id, legs, signature, resolved_at in attempts:
        paid_legs = [leg[0] for leg in legs] if legs else [creator_leg.get(dist_id)]
        for leg_id in paid_legs:
            if leg_id in by_leg:
                by_leg[leg_id].append((signature, resolved_at))
    for row in rows:
        landed = by_leg[row["pk"]]
        row["signatures"] = [sig for sig, _ in landed]
        row["paid_at"] = max((at for _, at in landed if at), default=None)
    return rows


def _page_by_role(qs: QuerySet, *, after: Cursor | None, before: Cursor | None, limit: int) -> dict:
    """``keyset_page`` of ``qs`` (one wallet's legs) read one role at a time and merged: the
    index ``leg_wallet_role_created`` gives each role's legs in time order, so every read is a
    short index range however many legs the wallet has (over all roles at once, PostgreSQL would
    sort them all). Each role's page holds the ``limit`` rows nearest the cursor on its side,
    so the merged page's ``limit`` nearest are the right ones. Returns ``{"rows", "older",
    "newer"}`` as ``keyset_page`` does with ``probe=False``."""
    pages = [
        keyset_page(
            qs.filter(role=role),
            after=after,
            before=before,
            limit=limit,
            fetch=_history_rows,
            probe=False,
        )
        for role in LegRole.values
    ]
    rows = sorted(
        (row for page in pages for row in page["rows"]),
        key=lambda r: (r["created_at"], r["pk"]),
        reverse=True,
    )
    beyond = len(rows) > limit
    if before is None:
        rows = rows[:limit]
        older = bool(rows) and (beyond or any(page["older"] for page in pages))
        newer = bool(rows) and after is not None
    else:
        rows = rows[-limit:]
        older = bool(rows)
        newer = bool(rows) and (beyond or any(page["newer"] for page in pages))
    return {
        "rows": rows,
        "older": str(Cursor(rows[-1]["created_at"], rows[-1]["pk"])) if older else None,
        "newer": str(Cursor(rows[0]["created_at"], rows[0]["pk"])) if newer else None,
    }


def leg_history(
    wallet: str,
    data,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = HISTORY_PAGE_SIZE,
) -> dict:
    """One page of the wallet's legs, newest first, filtered by ``data`` (``LegHistoryFilter``)
    and keyset-paginated like the creator's history (``after``: older than that cursor;
    ``before``: newer). Rows: ``pk``, ``created_at``, ``role`` (and ``role_label``), ``bps``,
    ``amount``, ``carry_in``, ``paid``, ``owed``, ``carried``, ``voided``, ``distribution_id``,
    ``bot_ext_id``, ``bot_name``, ``close_ext_id``, ``status`` (``leg_status``) and its
    ``status_label``, ``signatures``, ``paid_at``. One statement per role, one for the
    signatures.

    Returns ``{"filter": FilterSet, "valid": bool, "rows": [...], "older": cursor | None,
    "newer": cursor | None}``; an invalid filter (a role that does not exist) gives no rows."""
    filterset = history_filter(wallet, data)
    if not filterset.is_valid():
        return {"filter": filterset, "valid": False, "rows": [], "older": None, "newer": None}
    page = _page_by_role(
        filterset.qs, after=Cursor.parse(after), before=Cursor.parse(before), limit=limit
    )
    attach_signatures(page["rows"])
    return {"filter": filterset, "valid": True, **page}


def history_for_export(wallet: str, data) -> Iterator[dict]:
    """Every leg of the wallet matching ``data``, newest first, rows as ``leg_history``'s,
    fetched ``CSV_CHUNK`` at a time by keyset (bounded memory). Yields nothing for an invalid
    filter."""
    filterset = history_filter(wallet, data)
    if not filterset.is_valid():
        return
    cursor = None
    while True:
        page = _page_by_role(filterset.qs, after=cursor, before=None, limit=CSV_CHUNK)
        yield from attach_signatures(page["rows"])
        if page["older"] is None:
            return
        cursor = Cursor.parse(page["older"])


@dataclass(frozen=True)
class SplitPart:
    """One line of a creator's split: ``amount`` of the shares (USDC base units), ``paid``
    and ``owed`` of it."""

    amount: int
    paid: int
    owed: int


@dataclass(frozen=True)
class CreatorSplit:
    """Where a creator's shares went (docs/design.md, "Splits add up"): ``gross`` (the whole
    shares, every leg), ``referrals`` (levels 1-3), ``platform`` (the fee) and ``net`` (the
    creator's own leg: the gross less the others)."""

    gross: SplitPart
    referrals: SplitPart
    platform: SplitPart
    net: SplitPart


def creator_split(creator_id: int) -> CreatorSplit:
    """The legs of the creator's distributions summed by role, from their running totals
    (``LegTotals``: a row per recipient and role, one statement): see ``CreatorSplit``."""
    rows = (
        LegTotals.objects.filter(creator_id=creator_id)
        .values("role")
        .annotate(amount=Sum("earned"), paid_sum=Sum("paid"), owed_sum=Sum("owed"))
        .order_by()
    )
    by_role = {row["role"]: row for row in rows}

    def part(roles) -> SplitPart:
        picked = [by_role[r] for r in roles if r in by_role]
        return SplitPart(*(sum(row[k] for row in picked) for k in ("amount", "paid_sum", "owed_sum")))

    return CreatorSplit(
        gross=part(LegRole.values),
        referrals=part(REFERRAL_ROLES),
        platform=part([LegRole.PLATFORM]),
        net=part([LegRole.CREATOR]),
    )


def treasury_totals(treasury: str) -> dict | None:
    """The platform's legs paid to ``treasury`` (``QV_PLATFORM_TREASURY``; None when it is
    empty, no fee configured): ``{"wallet", and each of TOTAL_KEYS}``, from ``role_totals``
    (platform role only)."""
    if not treasury:
        return None
    platform = next((t for t in role_totals(treasury) if t.role == LegRole.PLATFORM), None)
    return {"wallet": treasury, **{k: getattr(platform, k) if platform else 0 for k in TOTAL_KEYS}}
