"""Request and response shapes of the intake API (pydantic 2 via django-ninja).

Money is always an integer in USDC base units (6 decimals); addresses are base58 text.
Inputs are strict: integers must be JSON integers (``1.5``, ``"15"`` and ``true`` are refused),
unknown fields are refused, datetimes are RFC 3339 strings with a timezone. The OpenAPI schema
states what the server enforces (the API's fuzz test, ``tests/api/test_fuzz.py``, holds it to
that): ids and text are printable (no control characters, no surrounding whitespace, not blank),
addresses base58 (the services also check they decode to 32 bytes and are not the all-zero
address: the ``solana-address`` format), PnL within ±10^15 base units (no running sum can
overflow a 64-bit column), ``closed_at`` from 1970 to a day ahead.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from ninja import Path, Schema
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)

# C0 and C1 control characters (NUL included: PostgreSQL refuses it in text). A lone surrogate
# (valid JSON, not UTF-8) is refused by pydantic itself.
_CONTROL = r"\x00-\x1f\x7f-\x9f"
# Unicode whitespace beyond the controls, spelled out (Python's str.isspace, which the services'
# strip() uses); "\s" means different sets in Python, ECMA-262 and Rust regular expressions.
_SPACE = r" \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
#: Printable text that is not blank and has no surrounding whitespace.
PRINTABLE_PATTERN = rf"^[^{_SPACE}{_CONTROL}](?:[^{_CONTROL}]*[^{_SPACE}{_CONTROL}])?$"
#: Base58 (Bitcoin alphabet) text of the length a 32-byte key has.
BASE58_PATTERN = r"^[1-9A-HJ-NP-Za-km-z]{32,44}$"
#: RFC 3339 date-time with seconds and an explicit offset (``Z`` or ``±hh:mm``), year 1970 on.
DATETIME_PATTERN = (
    r"^(19[7-9][0-9]|[2-9][0-9]{3})-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
#: Largest |realized_pnl| of one close, USDC base units (10^9 USDC).
MAX_ABS_PNL = 10**15
#: How far ahead of the server's clock a ``closed_at`` may be.
CLOSED_AT_MAX_AHEAD = timedelta(days=1)

Id = Annotated[
    StrictStr,
    Field(min_length=1, max_length=64, pattern=PRINTABLE_PATTERN,
          description="1..64 printable characters, no surrounding whitespace"),
]
#: A Solana address: in the OpenAPI schema the string format ``solana-address`` (no regular
#: expression can say "decodes to 32 bytes"), checked here against :data:`BASE58_PATTERN` and by
#: the services (decodes to exactly 32 bytes, not the all-zero address).
Address = Annotated[
    StrictStr,
    Field(pattern=BASE58_PATTERN,
          description="solana-address: base58 (alphabet 1-9 A-H J-N P-Z a-k m-z), 32..44 characters, "
                      "decoding to exactly 32 bytes, not the all-zero address"),
    WithJsonSchema({"type": "string", "format": "solana-address",
                    "description": "base58 Solana address: decodes to exactly 32 bytes, not the all-zero address"}),
]
#: An address in a URL path (``/referrals/{wallet}``): the same rule as an address in a body.
PathAddress = Annotated[
    str,
    Path(pattern=BASE58_PATTERN),
    WithJsonSchema({"type": "string", "format": "solana-address",
                    "description": "base58 Solana address: decodes to exactly 32 bytes, not the all-zero address"}),
]
U16 = Annotated[StrictInt, Field(ge=0, le=65_535)]
BaseUnits = Annotated[StrictInt, Field(description="USDC base units (6 decimals)")]

#: An id in a URL path (``/trade-closes/{close_id}``): the same rule as an id in a body.
PathId = Annotated[str, Path(min_length=1, max_length=64, pattern=PRINTABLE_PATTERN)]

PolicyName = Literal["per_trade", "high_water_mark"]
KindName = Literal["full", "partial", "flip"]
IouStatusName = Literal["open", "processing", "expired", "paid", "voided"]
CloseStatusName = Literal[
    "pending", "processing", "paid", "partially_paid", "owed", "carried", "voided", "nothing_owed"
]
LegRoleName = Literal["creator", "platform", "referral_1", "referral_2", "referral_3"]

# These literals mirror the model choices (``Policy``, ``CloseKind``, ``IouStatus``,
# ``DistributionStatus`` + ``nothing_owed``, ``LegRole``); tests/api/test_openapi.py keeps them in step.


_DATETIME = re.compile(DATETIME_PATTERN)


def _iso_string(value: Any) -> Any:
    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time from 1970 with seconds and a timezone, e.g. 2026-01-02T03:04:05Z")
    return value


def _not_far_ahead(value: datetime) -> datetime:
    if value - datetime.now(UTC) > CLOSED_AT_MAX_AHEAD:
        raise ValueError("must not be more than a day ahead of the server's clock")
    return value


IsoDatetime = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_string),
    AfterValidator(_not_far_ahead),
    WithJsonSchema({
        "type": "string", "format": "date-time",
        "description": "RFC 3339 with seconds (up to 6 fraction digits) and a timezone (Z or ±hh:mm), "
                       "from 1970-01-01 up to a day ahead of the server's clock",
    }),
]


class StrictIn(Schema):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


# --- bots ------------------------------------------------------------------------------------------
class BotIn(StrictIn):
    """``POST /bots``: publish or update a bot. ``profit_share_bps`` 0..1000 (0–10 %)."""

    bot_id: Id
    creator_wallet: Address
    name: Annotated[StrictStr, Field(min_length=1, max_length=120, pattern=PRINTABLE_PATTERN)]
    profit_share_bps: Annotated[StrictInt, Field(ge=0, le=1_000, description="basis points, 0..1000")]
    policy: PolicyName = "per_trade"


class BotOut(Schema):
    """A published bot as stored."""

    bot_id: str
    creator_wallet: str
    name: str
    profit_share_bps: int
    policy: PolicyName


# --- subscriptions ---------------------------------------------------------------------------------
class SubscriptionIn(StrictIn):
    """``POST /subscriptions``: subscribe a wallet to a bot on a Drift subaccount (0..65535)."""

    subscription_id: Id
    bot_id: Id
    subscriber_wallet: Address
    drift_subaccount_id: U16


class SubscriptionOut(Schema):
    """The subscription and its server-generated agent wallet (public key only)."""

    subscription_id: str
    agent_wallet: str


class SubscriptionEndOut(Schema):
    """``POST /subscriptions/{id}/end``: the subscription has ended (at ``ended_at``, UTC);
    ``flush_distribution_id``: the distribution paying what it carried (dust, legs of recipients
    without a token account then), or null when it carried nothing or a payout still in flight
    takes the carries."""

    subscription_id: str
    status: Literal["ended"]
    ended_at: datetime
    flush_distribution_id: int | None


class GuardOut(Schema):
    """May the subscriber withdraw / delete the bot now. ``owed``: USDC base units still owed
    (open, processing and expired IOUs); ``delinquent``: no new copied entries."""

    can_withdraw: bool
    can_delete: bool
    owed: int
    delinquent: bool


# --- closes ----------------------------------------------------------------------------------------
class CloseIn(StrictIn):
    """``POST /trade-closes``: one close, reported once. ``realized_pnl``: signed USDC base units
    of this close only."""

    close_id: Id
    subscription_id: Id
    market_index: U16
    realized_pnl: Annotated[
        StrictInt, Field(ge=-MAX_ABS_PNL, le=MAX_ABS_PNL, description="signed USDC base units, |pnl| <= 10^15")
    ]
    kind: KindName
    closed_at: IsoDatetime


class CloseAccepted(Schema):
    """What intake answers: the close id and its distribution's status."""

    close_id: str
    status: CloseStatusName


class CloseLegOut(Schema):
    """One recipient's part of a close's share (docs/design.md, "Splits add up"): ``role``,
    ``wallet`` (base58), ``amount`` (its part of the share), ``paid`` / ``owed`` / ``carried``
    (USDC base units; dust carried in from earlier closes counts here too), ``signature`` of the
    last landed payout that paid it (null: none yet)."""

    role: LegRoleName
    wallet: str
    amount: int
    paid: int
    owed: int
    carried: int
    signature: str | None


class CloseStatusOut(Schema):
    """A close's payout: amounts in USDC base units, the distribution's sums; ``signatures`` of
    landed payouts, oldest first; ``legs``: who the share pays, creator first, then platform,
    referral levels 1-3 (their ``amount`` adds up to ``share``; empty when nothing is owed)."""

    close_id: str
    status: CloseStatusName
    share: int
    paid: int
    owed: int
    carried: int
    signatures: list[str]
    legs: list[CloseLegOut]


# --- IOUs ------------------------------------------------------------------------------------------
class IouFilters(Schema):
    """Query of ``GET /ious``: optional filters, keyset cursor (the ``next`` of the previous
    page) and page size 1..200."""

    # optional, never null: absent means "any" (the schema has no null to send)
    status: IouStatusName = None
    subscription_id: Annotated[str, Field(min_length=1, max_length=64, pattern=PRINTABLE_PATTERN)] = None
    cursor: Annotated[int, Field(ge=0, le=2**63 - 1)] = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class IouOut(Schema):
    """One IOU; ``amount`` is what remains owed (amount − paid so far), USDC base units.
    ``close_id`` is null for the final dust flush of an ended subscription."""

    iou_id: int
    close_id: str | None
    subscription_id: str
    amount: int
    reason: str
    status: IouStatusName
    attempts: int
    created_at: datetime


class IouPage(Schema):
    """A page of IOUs by ascending id; ``next`` is the cursor of the next page or null."""

    items: list[IouOut]
    next: int | None


class VoidIn(StrictIn):
    """``POST /ious/{id}/void``: why the debt is forgiven (required, non-empty)."""

    reason: Annotated[StrictStr, Field(min_length=1, max_length=2000, pattern=PRINTABLE_PATTERN,
                                       description="printable text, not blank, no surrounding whitespace")]


class IouActionOut(Schema):
    """An IOU after a retry or void: ``remaining`` USDC base units still owed."""

    iou_id: int
    status: IouStatusName
    remaining: int


# --- referrals -------------------------------------------------------------------------------------
class ReferralIn(StrictIn):
    """``POST /referrals``: ``referrer_wallet`` referred ``wallet``."""

    wallet: Address
    referrer_wallet: Address


class ReferralOut(Schema):
    """A wallet's referral link: ``referrer_wallet`` (null when nobody referred it) and its
    ``chain`` of referrers, nearest first: ``[level 1, level 2, level 3]`` (fewer when the chain
    is shorter; ``chain[0]`` is ``referrer_wallet``)."""

    wallet: str
    referrer_wallet: str | None
    chain: list[str]


# --- errors ----------------------------------------------------------------------------------------
class FieldError(Schema):
    """One invalid field: its name (dotted for nested fields; ``body`` for the whole body)."""

    field: str
    message: str


class ValidationErrorOut(Schema):
    """422 answer."""

    detail: list[FieldError]


class ErrorOut(Schema):
    """401/403/404/409 answer."""

    detail: str


__all__ = [
    "BotIn",
    "BotOut",
    "CloseAccepted",
    "CloseIn",
    "CloseStatusOut",
    "ErrorOut",
    "FieldError",
    "GuardOut",
    "IouActionOut",
    "IouFilters",
    "IouOut",
    "IouPage",
    "PathAddress",
    "ReferralIn",
    "ReferralOut",
    "SubscriptionIn",
    "SubscriptionOut",
    "ValidationErrorOut",
    "VoidIn",
]
