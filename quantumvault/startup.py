"""Start-up checks of production settings: with DEBUG off, no development default is ever used.

``settings.py`` calls :func:`production_problem` when ``QV_DEBUG`` is off and, when it names a
problem, :func:`refuse_to_start` stops the process before Django is set up. Settings load in every
entry point (gunicorn's workers, ``manage.py qcluster``, every management command), so a missing
or weak secret stops all of them with the same single line on stderr.

The rules (README, "Configuration"):

* ``QV_SECRET_KEY``: at least 50 characters with at least 5 distinct ones (Django's own
  ``check --deploy`` rule, security.W009), not Django's ``django-insecure-`` prefix;
* ``QV_INTAKE_SECRET`` and ``QV_ADMIN_SECRET``: at least 32 bytes (UTF-8), not blank, and not
  equal to each other (the admin secret would otherwise be handed to the trading platform);
* ``QV_KEY_ENCRYPTION_KEYS``: one or more keys, each a valid Fernet key (32 url-safe base64
  bytes), the key agent wallets are encrypted with;
* ``QV_DEMO``: the demo market signs anyone in without a wallet; it never runs with DEBUG off.

The split settings are checked with DEBUG on too (a bad one would route money wrongly in any
mode): :func:`split_settings` parses them and names the first problem (docs/design.md,
"Splits add up").
"""

from __future__ import annotations

import sys
from typing import NamedTuple

MIN_SECRET_KEY_CHARS = 50
MIN_SECRET_KEY_UNIQUE_CHARS = 5
MIN_API_SECRET_BYTES = 32

#: Exit status of a refused start. 3 is also gunicorn's "worker failed to boot", so the
#: gunicorn master stops instead of respawning workers that can never boot.
EXIT_STATUS = 3


def _secret_key_problem(value: str) -> str | None:
    if not value:
        return "QV_SECRET_KEY is required when QV_DEBUG is off"
    if (
        len(value) < MIN_SECRET_KEY_CHARS
        or len(set(value)) < MIN_SECRET_KEY_UNIQUE_CHARS
        or value.startswith("django-insecure-")
    ):
        return (
            f"QV_SECRET_KEY is too weak: use at least {MIN_SECRET_KEY_CHARS} random characters "
            f"(e.g. python -c 'import secrets; print(secrets.token_urlsafe(64))')"
        )
    return None


def _api_secret_problem(name: str, value: str) -> str | None:
    if not value.strip():
        return f"{name} is required when QV_DEBUG is off"
    if len(value.encode("utf-8")) < MIN_API_SECRET_BYTES:
        return f"{name} is too short: use at least {MIN_API_SECRET_BYTES} random bytes"
    return None


def _fernet_keys_problem(keys: list[str]) -> str | None:
    from cryptography.fernet import Fernet

    if not keys:
        return "QV_KEY_ENCRYPTION_KEYS is required when QV_DEBUG is off (comma-separated Fernet keys)"
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return f"QV_KEY_ENCRYPTION_KEYS: key {position} is not a valid Fernet key"
    return None


def production_problem(
    *, secret_key: str, intake_secret: str, admin_secret: str, key_encryption_keys: list[str], demo: bool
) -> str | None:
    """The first reason these settings may not run with DEBUG off, as one line naming the
    variable, or ``None`` when they may. Never includes a secret's value."""
    if demo:
        return "QV_DEMO=1 needs QV_DEBUG=1: the demo market signs anyone in and never runs in production"
    checks = (
        _secret_key_problem(secret_key),
        _api_secret_problem("QV_INTAKE_SECRET", intake_secret),
        _api_secret_problem("QV_ADMIN_SECRET", admin_secret),
        _fernet_keys_problem(key_encryption_keys),
    )
    for problem in checks:
        if problem:
            return problem
    if intake_secret == admin_secret:
        return "QV_ADMIN_SECRET must differ from QV_INTAKE_SECRET"
    return None


#: Referral rates of levels 1-3 when ``QV_REFERRAL_BPS`` is unset, basis points of the share.
DEFAULT_REFERRAL_BPS = (500, 200, 100)
REFERRAL_LEVELS = 3
#: Basis points in a whole share.
BPS_PER_SHARE = 10_000


class ConfigurationError(ValueError):
    """A setting that may not be used; the message is one line naming the variable (never a
    secret's value)."""


class SplitSettings(NamedTuple):
    """The split settings as the product uses them: ``referral_bps`` (levels 1-3) and
    ``platform_fee_bps`` in basis points of the creator's share, ``treasury`` the base58 wallet
    that receives the platform fee ("" when unset)."""

    referral_bps: tuple[int, ...]
    platform_fee_bps: int
    treasury: str


def _bps(name: str, text: str) -> int:
    value = text.strip()
    if not value.isascii() or not value.isdigit():
        raise ConfigurationError(f"{name} must be a non-negative integer (basis points), got {text!r}")
    return int(value)


def split_settings(referral_bps: str | None, platform_fee_bps: str | None, treasury: str | None) -> SplitSettings:
    """Parse ``QV_REFERRAL_BPS``, ``QV_PLATFORM_FEE_BPS`` and ``QV_PLATFORM_TREASURY`` (their raw
    environment text; ``None`` or empty: the default).

    Rules: ``QV_REFERRAL_BPS`` is exactly three comma-separated non-negative integers (default
    ``500,200,100``); ``QV_PLATFORM_FEE_BPS`` a non-negative integer (default 0); the fee and the
    three referral rates add up to less than 10,000 bps, so the creator's leg is positive at any
    positive share; ``QV_PLATFORM_TREASURY`` is required when the fee is above 0 and, when set, is
    a valid Solana address (base58 of 32 bytes, not the all-zero address). Raises
    ``ConfigurationError`` naming the first variable that breaks a rule.
    """
    if referral_bps is None or not referral_bps.strip():
        referral = DEFAULT_REFERRAL_BPS
    else:
        parts = referral_bps.split(",")
        if len(parts) != REFERRAL_LEVELS or not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
            raise ConfigurationError(
                f"QV_REFERRAL_BPS must be {REFERRAL_LEVELS} comma-separated non-negative integers "
                f"(basis points of levels 1-3, e.g. 500,200,100), got {referral_bps!r}"
            )
        referral = tuple(int(p) for p in parts)
    fee = 0 if platform_fee_bps is None or not platform_fee_bps.strip() else _bps("QV_PLATFORM_FEE_BPS", platform_fee_bps)
    total = fee + sum(referral)
    if total >= BPS_PER_SHARE:
        raise ConfigurationError(
            f"QV_PLATFORM_FEE_BPS + QV_REFERRAL_BPS add up to {total} bps; they must stay below "
            f"{BPS_PER_SHARE} so the creator keeps part of every share"
        )
    address = treasury if treasury and treasury.strip() else ""
    if fee > 0 and not address:
        raise ConfigurationError("QV_PLATFORM_TREASURY is required when QV_PLATFORM_FEE_BPS is above 0")
    if address:
        from profitshare.chain.addresses import parse_address
        from profitshare.chain.errors import InvalidAddress

        try:
            address = str(parse_address(address))
        except InvalidAddress as exc:
            raise ConfigurationError(f"QV_PLATFORM_TREASURY is not a valid Solana address ({exc.why})") from None
    return SplitSettings(referral, fee, address)


def refuse_to_start(problem: str) -> None:
    """Print ``problem`` as one line on stderr and exit with :data:`EXIT_STATUS`."""
    sys.stderr.write(f"quantumvault: refusing to start: {problem}\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_STATUS)
