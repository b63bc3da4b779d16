"""Request and response shapes of the intake API (pydantic 2 via django-ninja).

Money is always an integer in USDC base units (6 decimals); addresses are base58 text.
Inputs are strict: integers must be JSON integers (``1.5``, ``"15"`` and ``true`` are refused),
unknown fields are refused, datetimes are ISO 8601 strings with a timezone. Range checks here
mirror the services' own checks (which run again and answer ``InvalidInput``); base58 addresses
are checked by the services.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import AwareDatetime, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr

Id = Annotated[StrictStr, Field(min_length=1, max_length=64)]
Address = Annotated[StrictStr, Field(min_length=1, max_length=64, description="base58 Solana address")]
U16 = Annotated[StrictInt, Field(ge=0, le=65_535)]
BaseUnits = Annotated[StrictInt, Field(description="USDC base units (6 decimals)")]

PolicyName = Literal["per_trade", "high_water_mark"]
KindName = Literal["full", "partial", "flip"]
IouStatusName = Literal["open", "processing", "expired", "paid", "voided"]
CloseStatusName = Literal["pending", "processing", "paid", "partially_paid", "owed", "carried", "nothing_owed"]

# These literals mirror the model choices (``Policy``, ``CloseKind``, ``IouStatus``,
# ``DistributionStatus`` + ``nothing_owed``); tests/api/test_schemas.py keeps them in step.


def _iso_string(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 datetime string with a timezone")
    return value


IsoDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_string)]


class StrictIn(Schema):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


# --- bots ------------------------------------------------------------------------------------------
class BotIn(StrictIn):
    """``POST /bots``: publish or update a bot. ``profit_share_bps`` 0..1000 (0–10 %)."""

    bot_id: Id
    creator_wallet: Address
    name: Annotated[StrictStr, Field(min_length=1, max_length=120)]
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
    realized_pnl: Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1, description="signed USDC base units")]
    kind: KindName
    closed_at: IsoDatetime


class CloseAccepted(Schema):
    """What intake answers: the close id and its distribution's status."""

    close_id: str
    status: CloseStatusName


class CloseStatusOut(Schema):
    """A close's payout: amounts in USDC base units; ``signatures`` of landed payouts, oldest
    first."""

    close_id: str
    status: CloseStatusName
    share: int
    paid: int
    owed: int
    carried: int
    signatures: list[str]


# --- IOUs ------------------------------------------------------------------------------------------
class IouFilters(Schema):
    """Query of ``GET /ious``: optional filters, keyset cursor (the ``next`` of the previous
    page) and page size 1..200."""

    status: IouStatusName | None = None
    subscription_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    cursor: Annotated[int, Field(ge=0)] | None = None
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

    reason: Annotated[StrictStr, Field(min_length=1, max_length=2000)]


class IouActionOut(Schema):
    """An IOU after a retry or void: ``remaining`` USDC base units still owed."""

    iou_id: int
    status: IouStatusName
    remaining: int


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
    "SubscriptionIn",
    "SubscriptionOut",
    "ValidationErrorOut",
    "VoidIn",
]
