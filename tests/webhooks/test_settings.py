"""Start-up refuses unusable webhook settings with one line naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start(**env: str) -> subprocess.CompletedProcess:
    """``manage.py check`` in a fresh process with ``env`` on top of this one's."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QV_WEBHOOK")}
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("secret", [None, "", "   " * 12, "short-secret"])
def test_endpoints_without_a_strong_secret_are_refused(secret):
    env = {"QV_WEBHOOK_URLS": "https://platform.example/hooks"}
    if secret is not None:
        env["QV_WEBHOOK_SECRET"] = secret
    result = start(**env)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "configuration error: QV_WEBHOOK_SECRET must be set, not blank and at least 32 bytes long when "
        "QV_WEBHOOK_URLS is set"]


def test_a_url_that_is_not_http_is_refused():
    result = start(QV_WEBHOOK_URLS="ftp://platform.example/hooks", QV_WEBHOOK_SECRET="x" * 32)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "configuration error: QV_WEBHOOK_URLS: 'ftp://platform.example/hooks' is not an http(s) URL"]


def test_a_strong_secret_and_no_endpoints_both_start():
    assert start(QV_WEBHOOK_URLS="https://a.example/h,http://b.example:8080/h", QV_WEBHOOK_SECRET="s" * 32).returncode == 0
    assert start().returncode == 0  # unset: no webhooks
