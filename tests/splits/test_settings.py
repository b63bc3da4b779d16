"""Start-up refuses unusable split settings (QV_REFERRAL_BPS, QV_PLATFORM_FEE_BPS,
QV_PLATFORM_TREASURY) with one line naming the variable, in every mode; good ones are parsed
into integers."""

from __future__ import annotations

import pytest
from solders.keypair import Keypair

from quantumvault.startup import ConfigurationError, split_settings
from tests.security.test_startup import MANAGE, clean_env, refusal_lines, run

TREASURY = str(Keypair().pubkey())
PREFIX = "quantumvault: refusing to start: "


def debug_env(**overrides: str | None) -> dict:
    """A development environment (QV_DEBUG=1: the production secret checks are not the point)
    with the split variables of ``overrides``."""
    return clean_env(QV_DEBUG="1", **overrides)


REFUSALS = [
    ({"QV_REFERRAL_BPS": "500,200"},
     "QV_REFERRAL_BPS must be 3 comma-separated non-negative integers (basis points of levels 1-3, "
     "e.g. 500,200,100), got '500,200'"),
    ({"QV_REFERRAL_BPS": "500,200,100,50"}, "QV_REFERRAL_BPS must be 3 comma-separated non-negative integers"),
    ({"QV_REFERRAL_BPS": "500,-1,100"}, "QV_REFERRAL_BPS must be 3 comma-separated non-negative integers"),
    ({"QV_REFERRAL_BPS": "500,,100"}, "QV_REFERRAL_BPS must be 3 comma-separated non-negative integers"),
    ({"QV_REFERRAL_BPS": "5.5,1,1"}, "QV_REFERRAL_BPS must be 3 comma-separated non-negative integers"),
    ({"QV_PLATFORM_FEE_BPS": "ten"}, "QV_PLATFORM_FEE_BPS must be a non-negative integer (basis points), got 'ten'"),
    ({"QV_PLATFORM_FEE_BPS": "-5"}, "QV_PLATFORM_FEE_BPS must be a non-negative integer (basis points), got '-5'"),
    ({"QV_PLATFORM_FEE_BPS": "100"}, "QV_PLATFORM_TREASURY is required when QV_PLATFORM_FEE_BPS is above 0"),
    ({"QV_PLATFORM_FEE_BPS": "100", "QV_PLATFORM_TREASURY": "not-an-address"},
     "QV_PLATFORM_TREASURY is not a valid Solana address (not base58 (characters '-'))"),
    ({"QV_PLATFORM_TREASURY": "3" * 20}, "QV_PLATFORM_TREASURY is not a valid Solana address (decodes to 15 bytes, not 32)"),
    ({"QV_PLATFORM_TREASURY": "1" * 32},
     "QV_PLATFORM_TREASURY is not a valid Solana address (the all-zero (System Program) address cannot own tokens)"),
    ({"QV_PLATFORM_FEE_BPS": "9200", "QV_PLATFORM_TREASURY": TREASURY},
     "QV_PLATFORM_FEE_BPS + QV_REFERRAL_BPS add up to 10000 bps; they must stay below 10000 so the creator "
     "keeps part of every share"),
    ({"QV_REFERRAL_BPS": "5000,4000,1001"}, "QV_PLATFORM_FEE_BPS + QV_REFERRAL_BPS add up to 10001 bps"),
]


@pytest.mark.parametrize(("overrides", "message"), REFUSALS, ids=[c[1][:60] + str(i) for i, c in enumerate(REFUSALS)])
def test_a_bad_split_setting_stops_start_up_with_one_line(overrides, message):
    result = run([*MANAGE, "check"], debug_env(**overrides))
    assert result.returncode == 3, result.stderr
    lines = refusal_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith(PREFIX + message), result.stderr
    assert "Traceback" not in result.stderr


def test_production_refuses_them_too():
    result = run([*MANAGE, "check"], clean_env(QV_PLATFORM_FEE_BPS="50"))
    assert result.returncode == 3
    assert refusal_lines(result.stderr) == [
        PREFIX + "QV_PLATFORM_TREASURY is required when QV_PLATFORM_FEE_BPS is above 0"]


def test_good_split_settings_start_and_are_integers():
    probe = ("from django.conf import settings; "
             "print(settings.QV_REFERRAL_BPS, settings.QV_PLATFORM_FEE_BPS, settings.QV_PLATFORM_TREASURY)")
    result = run([*MANAGE, "shell", "--no-imports", "-c", probe],
                 debug_env(QV_REFERRAL_BPS=" 300, 0 ,50", QV_PLATFORM_FEE_BPS="9649", QV_PLATFORM_TREASURY=TREASURY))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"(300, 0, 50) 9649 {TREASURY}"
    defaults = run([*MANAGE, "shell", "--no-imports", "-c", probe], debug_env())
    assert defaults.returncode == 0, defaults.stderr
    assert defaults.stdout.strip() == "(500, 200, 100) 0"


@pytest.mark.parametrize(
    ("referral", "fee", "treasury", "expected"),
    [
        (None, None, None, ((500, 200, 100), 0, "")),
        ("", " ", "", ((500, 200, 100), 0, "")),
        ("0,0,0", "0", None, ((0, 0, 0), 0, "")),
        ("0,0,0", "9999", TREASURY, ((0, 0, 0), 9999, TREASURY)),
        ("500,200,100", "0", TREASURY, ((500, 200, 100), 0, TREASURY)),  # a treasury without a fee: checked, kept
    ],
)
def test_split_settings_parse(referral, fee, treasury, expected):
    assert tuple(split_settings(referral, fee, treasury)) == expected


@pytest.mark.parametrize(
    ("referral", "fee", "treasury"),
    [
        ("1,2", None, None), ("a,b,c", None, None), ("1,2,3", "1e3", None), ("1,2,3", "٣", TREASURY),
        (None, "0", " " + TREASURY), ("0,0,0", "10000", TREASURY),
    ],
)
def test_split_settings_refuse(referral, fee, treasury):
    with pytest.raises(ConfigurationError):
        split_settings(referral, fee, treasury)
